"""C-FIND and C-MOVE through every proxy kind (the dimse-operations scenario): the query names the study the cell
stored, the moved object arrives intact at the client's own Storage SCP, which Orthanc reaches as a modality over
plain DICOM, and a destination where nothing listens is diagnosed from Orthanc's own log line."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import EACH_BACKEND, cells, matrix_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=EACH_BACKEND)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp(f"dimse-operations-{request.param}"), "--backend", request.param,
                      "--scenario", "dimse-operations")


def test_find_and_move_pass_through_every_proxy_and_an_unreachable_destination_is_named(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert run["leftovers"] == (set(), set())
    environments = {c["environment"] for c in run["results"]["cells"]}
    assert len(environments) == 5
    for name in ("find", "move"):
        passed = cells(run, operation=name)
        assert {c["actual"] for c in passed} == {"pass"} and {c["environment"] for c in passed} == environments
        assert all("holds the sent dataset" in c["detail"] for c in passed)  # the object stored first, verified
    assert all("C-FIND named the stored study" in c["detail"] for c in cells(run, operation="find"))
    assert all("the moved object arrived at the client's SCP, intact" in c["detail"]
               for c in cells(run, operation="move"))
    unreachable = cells(run, operation="move-unreachable")
    assert {(c["actual"], c["reason"]) for c in unreachable} == {("fail", "move-destination-unreachable")}
    for cell in unreachable:
        assert any("connecting to AET \"DICOMTLS-SCP\"" in line for line in cell["evidence"]), cell["evidence"]
