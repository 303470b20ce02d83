"""Operations are a registry: each is one module that says what a cell does around it; C-FIND's answer and a failed
C-MOVE are judged from real outputs (findscu 3.6.7, movescu 3.6.7 and Orthanc 1.10.1's log, captured)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dicomtls import clients, dicomdata, operations
from dicomtls.diagnose import Symptoms, diagnose
from dicomtls.errors import UsageError
from dicomtls.probes.dcmtk_query_retrieve import answered_studies, find_problem, query_argv
from dicomtls.reasons import Reason

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "operations"
STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"  # the study the captured findscu asked for
SENT = dicomdata.TestObject(Path("ct.dcm"), "1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2.1", "0" * 64, 1, STUDY)


def orthanc_log() -> tuple[str, ...]:
    return tuple(f"orthanc: {line}" for line in (FIXTURES / "orthanc-1.10.1-move-failures.log").read_text().splitlines())


def test_every_operation_module_registers_one_operation_with_its_dimse_service() -> None:
    listed = operations.listed()
    assert [o.name for o in listed] == ["echo", "store-ct", "store-large", "store-file", "find", "move",
                                        "move-unreachable"]
    assert {o.dimse for o in listed} == {"C-ECHO", "C-STORE", "C-FIND", "C-MOVE"}
    assert "store-file" not in operations.names()  # only `probe --store` has the file


def test_queries_and_retrieves_store_their_object_in_a_study_of_its_own_first() -> None:
    for name in ("find", "move", "move-unreachable"):
        op = operations.operation(name)
        assert op.sends == "store-ct" and op.own_study
    assert operations.operation("move-unreachable").destination == "closed"


def test_an_unknown_operation_is_a_usage_error_naming_the_registered_ones() -> None:
    with pytest.raises(UsageError, match="unknown operation 'get': use one of echo, store-ct"):
        operations.operation("get")


def test_dcmtk_runs_no_c_move_over_tls_and_its_sidecar_runs_no_query() -> None:
    assert "move" not in clients.client_class("dcmtk").operations
    assert "find" in clients.client_class("dcmtk").operations
    assert set(clients.client_class("dcmtk-stunnel").operations) == {"echo", "store-ct", "store-large"}
    assert {"find", "move", "move-unreachable"} <= set(clients.client_class("pynetdicom").operations)


def test_findscu_answer_naming_the_stored_study_passes_and_another_study_does_not() -> None:
    output = (FIXTURES / "findscu-3.6.7-study-found.txt").read_text()
    assert answered_studies(output) == [STUDY]
    assert find_problem(output, SENT) is None
    other = dataclasses.replace(SENT, study_instance_uid="1.2.3.4")
    assert find_problem(output, other) == "C-FIND answered 1 studies, none the stored study 1.2.3.4"


def test_findscu_keeps_the_stores_tls_options_and_address() -> None:
    store = ["/usr/bin/storescu", "-aet", "DICOMTLS", "+tls", "k", "c", "127.0.0.1", "11112", "ct.dcm"]
    argv = query_argv(store, Path("/usr/bin/findscu"), SENT)
    assert argv[:6] == ["/usr/bin/findscu", "-aet", "DICOMTLS", "+tls", "k", "c"]
    assert argv[-2:] == ["127.0.0.1", "11112"] and f"StudyInstanceUID={STUDY}" in argv


@pytest.mark.parametrize(("destination", "reason"), [("DEADDEST", Reason.MOVE_DESTINATION_UNREACHABLE),
                                                     ("NOSUCHDEST", Reason.MOVE_DESTINATION_UNKNOWN)])
def test_failed_c_move_is_diagnosed_from_orthancs_log_line_not_the_bare_status(destination: str,
                                                                             reason: Reason) -> None:
    client = (FIXTURES / f"movescu-3.6.7-destination-{'unreachable' if destination == 'DEADDEST' else 'unknown'}.txt")
    lines = tuple(line for line in client.read_text().splitlines() if "Move Response" in line)
    # Both answer "Failed: UnableToProcess": only the server's log tells them apart.
    assert all("UnableToProcess" in line for line in lines)
    logged = tuple(line for line in orthanc_log() if destination in line or "MoveScp" in line)
    found = diagnose(Symptoms(client_lines=lines, proxy_lines=logged, dicom_stage="dimse",
                              operation_failure=operations.operation("move").failure(logged)))
    assert found.reason is reason
    assert any(destination in line for line in found.evidence if line.startswith("proxy: "))


def test_a_c_move_failure_the_server_does_not_explain_stays_a_dimse_failure() -> None:
    found = diagnose(Symptoms(client_lines=("DIMSE status 0xc000",), dicom_stage="dimse",
                              operation_failure=operations.operation("move").failure(())))
    assert found.reason is Reason.DIMSE_FAILURE
