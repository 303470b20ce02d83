"""The one place a run's clients are built: every client a scenario may name is there, checked before a run."""

from __future__ import annotations

from typing import get_args

import pytest

from dicomtls.errors import UsageError
from dicomtls.probes.clients import BUILDERS, clients_for
from dicomtls.probes.dcmtk import Dcmtk
from dicomtls.probes.pynetdicom import Pynetdicom
from dicomtls.probes.stunnel import DcmtkViaStunnel
from dicomtls.scenario import Client, Probe, available, load_scenario


def test_every_client_name_a_scenario_accepts_has_a_builder() -> None:
    assert set(BUILDERS) == set(get_args(Client))


@pytest.mark.parametrize("name", available())
def test_every_client_a_scenarios_cells_name_is_built(name: str) -> None:
    cells = load_scenario(name).cells()
    clients = clients_for((c.probe for c in cells), installed=False)
    assert set(clients.by_name) == {c.probe.client for c in cells}


def test_stunnel_shares_the_runs_dcmtk_whose_versions_the_run_header_names() -> None:
    clients = clients_for([Probe("dcmtk-stunnel", "right", "valid", "echo")], installed=False)
    via = clients.by_name["dcmtk-stunnel"]
    assert isinstance(via, DcmtkViaStunnel) and via.dcmtk is clients.dcmtk
    assert clients.dcmtk == Dcmtk(installed=False)


def test_a_run_of_pynetdicom_alone_needs_no_dcmtk() -> None:
    clients = clients_for([Probe("pynetdicom", "right", "valid", "echo")], installed=True)
    assert clients.dcmtk is None and clients.by_name == {"pynetdicom": Pynetdicom()}


def test_stunnel_missing_on_this_machine_is_a_usage_error_before_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UsageError, match="stunnel4 not found on PATH"):
        clients_for([Probe("dcmtk-stunnel", "right", "valid", "echo")], installed=True)


def test_a_dcmtk_version_this_machine_lacks_is_a_usage_error_before_the_run() -> None:
    with pytest.raises(UsageError, match="dcmtk 3.6.9 is asked for"):
        clients_for([Probe("dcmtk", "right", "valid", "echo", client_version="3.6.9")], installed=True)
