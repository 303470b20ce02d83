"""A locked-down Orthanc (known modalities only, DicomCheckCalledAet) behind Envoy: every client calling as an AE title
it does not know is rejected with the association's own reason, read from the A-ASSOCIATE-RJ, and passes calling as
a known modality, named by the scenario's calling_aet or by --calling-aet; calling another AE title than Orthanc's is
rejected with the called-AE reason."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import EACH_BACKEND, cells, matrix_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=EACH_BACKEND)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp(f"calling-aet-{request.param}"), "--backend", request.param,
                      "--scenario", "calling-aet")


def test_unknown_calling_aet_is_rejected_by_the_server_and_a_known_one_passes(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert run["leftovers"] == (set(), set())
    unknown, known = cells(run, calling_aet="DICOMTLS"), cells(run, calling_aet="MODALITY1", called_aet="")
    assert len(unknown) == len(known) == 6
    assert {(c["actual"], c["reason"]) for c in unknown} == {("fail", "association-rejected-calling-aet")}
    assert {c["actual"] for c in known} == {"pass"}
    for cell in unknown:  # the reject's own words, and Orthanc's log line for it
        assert any("Calling AE" in line for line in cell["evidence"]), cell["evidence"]
        assert any("Rejected association for remote AET DICOMTLS" in line for line in cell["evidence"]), cell["id"]
    wrong_called = cells(run, called_aet="NOT-ORTHANC")
    assert len(wrong_called) == 2
    assert {(c["actual"], c["reason"]) for c in wrong_called} == {("fail", "association-rejected-called-aet")}


def test_calling_aet_option_makes_the_probes_a_known_modality(tmp_path_factory: pytest.TempPathFactory) -> None:
    run = matrix_run(tmp_path_factory.mktemp("calling-aet-option"), "--backend", "local", "--scenario", "calling-aet",
                     "--calling-aet", "MODALITY1")
    assert run["proc"].returncode == 0, run["proc"].stdout[-3000:]
    calling_as_server_expects = [c for c in run["results"]["cells"] if not c["called_aet"]]
    assert {(c["calling_aet"], c["actual"]) for c in calling_as_server_expects} == {("MODALITY1", "pass")}
    assert all("-aet MODALITY1" in c["command"] or "calling=MODALITY1" in c["command"]
               for c in run["results"]["cells"])
