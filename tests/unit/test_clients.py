"""The one place a run's clients are built: every registered client a scenario may name, checked before a run."""

from __future__ import annotations

import pytest

from dicomtls.clients import client_class, names
from dicomtls.errors import UsageError
from dicomtls.probes.clients import clients_for
from dicomtls.probes.dcmtk import Dcmtk
from dicomtls.probes.pynetdicom import Pynetdicom
from dicomtls.probes.stunnel import DcmtkViaStunnel
from dicomtls.scenario import Probe, available, load_scenario, parse_scenario


@pytest.mark.parametrize("name", names())
def test_every_registered_client_is_built_for_the_docker_backend(name: str) -> None:
    clients = clients_for([Probe(name, "none", "none", "echo")], installed=False)
    assert set(clients.by_name) == {name}
    assert (clients.dcmtk is not None) == client_class(name).is_command_line


def test_a_scenario_naming_an_unregistered_client_lists_the_registered_ones() -> None:
    text = """\
name: under-test
description: a scenario for unit tests
pki:
  server_names: [dicom.example.test]
environments:
  - name: edge
    proxy: { kind: envoy }
probes:
  - client: dcm4che
expect:
  - match: {}
    outcome: pass
"""
    with pytest.raises(UsageError) as caught:
        parse_scenario(text, "scenarios/under-test.yaml")
    assert "unknown client 'dcm4che'" in str(caught.value)
    assert all(name in str(caught.value) for name in names())


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


def test_the_run_header_names_dcmtk_once_for_both_command_line_clients_and_pynetdicom_by_its_own() -> None:
    clients = clients_for([Probe("dcmtk-stunnel", "right", "valid", "echo"),
                           Probe("pynetdicom", "right", "valid", "echo")], installed=False)
    versions = clients.versions({"3.6.9"})
    assert list(versions) == ["dcmtk", "pynetdicom"] and versions["dcmtk"] == "3.6.9"
