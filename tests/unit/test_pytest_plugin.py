"""The pytest plugin's assertions on a captured run, and its import: pytest loads it in every suite of an environment
where dicomtls is installed, so importing it must load nothing of dicomtls's running parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtls import api
from dicomtls.pytest_plugin import Probed

from .test_import_layers import HEAVY, RUNNING, loaded_by, within

ORTHWEB_2023 = Path(__file__).resolve().parents[1] / "fixtures" / "results_manifests_orthweb_envoy_2023.json"


@pytest.fixture
def probed() -> Probed:
    return Probed(api.read_results(ORTHWEB_2023), "dicom.example.test:11112")


def test_importing_the_plugin_loads_neither_dicomtls_api_nor_what_runs() -> None:
    loaded = loaded_by("import dicomtls.pytest_plugin")
    assert "dicomtls.pytest_plugin" in loaded
    assert [m for m in loaded if within(m, (*HEAVY, *RUNNING, "dicomtls.api", "testinfra"))] == []


def test_assertions_that_hold_pass_silently(probed: Probed) -> None:
    probed.assert_fail("tls-unknown-ca", client_cert="untrusted")
    probed.assert_fail(sni="wrong")
    probed.assert_pass(client="dcmtk", client_cert="valid", profile="default")
    assert probed.passed(client_cert="expired") and not probed.passed(sni="wrong")


def test_a_wrong_expectation_lists_each_cell_with_its_diagnosis(probed: Probed) -> None:
    with pytest.raises(AssertionError) as failed:
        probed.assert_fail("tls-cert-expired", client_cert="expired")
    lines = str(failed.value).splitlines()
    assert lines[0] == ("dicom.example.test:11112: 3 of 3 cells with client_cert=expired did not fail with "
                        "tls-cert-expired:")
    assert lines[1:] == ["  dcmtk sni=none cert=expired echo: pass", "  dcmtk sni=none cert=expired store-ct: pass",
                         "  pynetdicom sni=right cert=expired echo: pass"]


def test_an_assertion_on_no_cell_fails_rather_than_holding(probed: Probed) -> None:
    with pytest.raises(AssertionError, match="no cell has client=dcmtk, sni=wrong"):
        probed.assert_pass(client="dcmtk", sni="wrong")
    with pytest.raises(TypeError, match="no axis 'cert'"):
        probed.cells(cert="valid")
