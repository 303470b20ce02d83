"""Run outputs: results.json, junit.xml and the terminal matrix say the same thing, and never leak a private key."""

from __future__ import annotations

import dataclasses
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from dicomtls.diagnose import EXPLANATIONS, Reason
from dicomtls.report import console as console_report
from dicomtls.report import json as json_report
from dicomtls.report import junit as junit_report
from dicomtls.report import redact
from dicomtls.results import NOT_VERIFIED, CellResult, EnvironmentInfo, MatrixResult, RunInfo
from dicomtls.scenario import Cell, Probe

SCENARIO = "envoy-mtls"
ENV = "envoy-client-cert-required"
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
KEY_BLOCK = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\nMIIEpAIBAAKCAQEA\n-----END PRIVATE KEY-----"
CELL_KEYS = {"scenario", "environment", "client", "sni", "client_cert", "operation", "expected", "actual",
             "verdict", "reason", "evidence", "duration_s"}


def cell(client: str, sni: str, cert: str, op: str, expected: str, reason: Reason | None) -> Cell:
    return Cell(SCENARIO, ENV, Probe(client, sni, cert, op), expected, reason)


def passed() -> CellResult:
    return CellResult(cell=cell("pynetdicom", "right", "valid", "echo", "pass", None), actual="pass", reason=None,
                      summary="", fix="", evidence=(), command="pynetdicom echo", detail="", duration_s=0.123)


def expected_failure() -> CellResult:
    reason = Reason.TLS_CERT_REQUIRED
    return CellResult(
        cell=cell("dcmtk", "none", "none", "echo", "fail", reason), actual="fail", reason=reason,
        summary=EXPLANATIONS[reason][0], fix=EXPLANATIONS[reason][1],
        evidence=("client: F: Association Request Failed: 0006:031d TCP I/O Error (Broken pipe)",),
        command="echoscu +tla -rc +cf ca.crt 127.0.0.1 41104", detail="", duration_s=0.2,
    )


def unexpected_failure() -> CellResult:
    reason = Reason.TLS_UNKNOWN_CA
    return CellResult(
        cell=cell("dcmtk", "none", "valid", "store-ct", "pass", None), actual="fail", reason=reason,
        summary="the server rejected the client certificate (valid): not issued by a CA it trusts",
        fix=EXPLANATIONS[reason][1],
        evidence=("client: TLS error: tlsv1 alert unknown ca", f"proxy: envoy: loaded {KEY_BLOCK} from disk"),
        command="storescu +tls client.key client.crt 127.0.0.1 41104 ct.dcm", detail="", duration_s=1.5,
    )


def result(*cells: CellResult) -> MatrixResult:
    run = RunInfo(started="2026-11-27T23:33:50+00:00", backend="local",
                  versions={"envoy": "1.36.2", "dcmtk": "3.6.7"}, scenarios=[SCENARIO], wall_s=4.2)
    env = EnvironmentInfo(key="ab7d411e2cf0", name=ENV, scenarios=[SCENARIO], components=["orthanc", "envoy"],
                          entry="127.0.0.1:41104", server_names=["dicom.orthweb.test"], pki_dir="/tmp/pki",
                          logs={"envoy": "/tmp/envoy.log"})
    return MatrixResult(run, [env], list(cells))


@pytest.fixture
def mixed() -> MatrixResult:
    return result(passed(), expected_failure(), unexpected_failure())


# --- verdicts ---------------------------------------------------------------------------------------------------


def test_verdict_is_ok_when_pass_or_failure_reason_matches() -> None:
    assert passed().verdict == "ok"
    assert expected_failure().verdict == "ok"
    assert unexpected_failure().verdict == "unexpected"


def test_failure_for_another_reason_than_expected_is_unexpected() -> None:
    wrong = expected_failure()
    wrong.reason = Reason.TLS_UNKNOWN_CA
    assert wrong.verdict == "unexpected"


def test_unexpected_pass_is_unexpected() -> None:
    surprise = expected_failure()
    surprise.actual, surprise.reason = "pass", None
    assert surprise.verdict == "unexpected"


def test_exit_code_is_1_with_an_unexpected_cell(mixed: MatrixResult) -> None:
    assert mixed.exit_code == 1


def test_exit_code_is_0_when_every_cell_is_as_expected() -> None:
    assert result(passed(), expected_failure()).exit_code == 0


# --- results.json -----------------------------------------------------------------------------------------------


def test_results_json_has_run_and_one_record_per_cell(mixed: MatrixResult, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    json_report.write(mixed, path)
    data = json.loads(path.read_text())
    assert data["run"]["backend"] == "local"
    assert data["run"]["versions"] == {"envoy": "1.36.2", "dcmtk": "3.6.7"}
    assert len(data["cells"]) == 3
    for record in data["cells"]:
        assert CELL_KEYS <= set(record), CELL_KEYS - set(record)
    ok, expected, unexpected = data["cells"]
    assert (ok["actual"], ok["verdict"], ok["reason"], ok["evidence"]) == ("pass", "ok", None, [])
    assert (expected["expected"], expected["actual"], expected["verdict"], expected["reason"]) == (
        "fail", "fail", "ok", "tls-cert-required")
    assert (unexpected["expected"], unexpected["actual"], unexpected["verdict"], unexpected["reason"]) == (
        "pass", "fail", "unexpected", "tls-unknown-ca")
    assert (unexpected["scenario"], unexpected["environment"], unexpected["client"], unexpected["sni"],
            unexpected["client_cert"], unexpected["operation"], unexpected["duration_s"]) == (
        SCENARIO, ENV, "dcmtk", "none", "valid", "store-ct", 1.5)


def test_results_json_redacts_private_keys_in_evidence(mixed: MatrixResult, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    json_report.write(mixed, path)
    text = path.read_text()
    assert KEY_BODY not in text
    assert "BEGIN PRIVATE KEY" not in text
    evidence = json.loads(text)["cells"][2]["evidence"]
    assert evidence == ["client: TLS error: tlsv1 alert unknown ca", "proxy: envoy: loaded [private key redacted] from disk"]


# --- junit.xml --------------------------------------------------------------------------------------------------


def test_junit_has_one_testcase_per_cell_and_fails_only_the_unexpected(mixed: MatrixResult, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    junit_report.write(mixed, path)
    root = ET.parse(path).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 3
    assert {c.get("classname") for c in cases} == {f"{SCENARIO}.{ENV}"}
    assert [c.get("name") for c in cases] == [r.cell.probe.label() for r in mixed.cells]
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["dcmtk sni=none cert=valid store-ct"]
    failure = failed[0].find("failure")
    assert failure.get("type") == "tls-unknown-ca"
    assert "expected pass, got fail (tls-unknown-ca)" in failure.get("message")
    assert root.get("tests") == "3" and root.get("failures") == "1"


def test_junit_redacts_private_keys_in_evidence(mixed: MatrixResult, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    junit_report.write(mixed, path)
    text = path.read_text()
    assert KEY_BODY not in text
    assert "BEGIN PRIVATE KEY" not in text
    assert "[private key redacted]" in text


def test_junit_marks_an_unexpected_pass_as_failure(tmp_path: Path) -> None:
    surprise = expected_failure()
    surprise.actual, surprise.reason, surprise.summary = "pass", None, ""
    path = tmp_path / "junit.xml"
    junit_report.write(result(surprise), path)
    failure = ET.parse(path).getroot().find(".//testcase/failure")
    assert failure is not None
    assert failure.get("type") == "unexpected-pass"


def test_redact_removes_a_truncated_key_block() -> None:
    assert redact("before -----BEGIN RSA PRIVATE KEY-----\nMIIabc") == "before [private key redacted]"
    assert redact("-----BEGIN CERTIFICATE-----\nMIIabc") == "-----BEGIN CERTIFICATE-----\nMIIabc"


# --- the terminal -----------------------------------------------------------------------------------------------


def printed(matrix: MatrixResult) -> str:
    out = io.StringIO()
    console_report.print_result(matrix, Console(file=out, width=200))
    return out.getvalue()


def test_console_shows_the_matrix_the_reasons_and_the_count(mixed: MatrixResult) -> None:
    text = printed(mixed)
    assert SCENARIO in text
    assert "✔" in text
    assert "tls-cert-required" in text  # the expected failure's reason
    assert "tls-unknown-ca, expected pass" in text  # the unexpected one, explained
    assert "2/3 cells as expected, 1 unexpected" in text


def test_console_redacts_private_keys_in_evidence(mixed: MatrixResult) -> None:
    text = printed(mixed)
    assert KEY_BODY not in text
    assert "[private key redacted]" in text


def test_console_reports_no_unexpected_cells_when_all_as_expected() -> None:
    text = printed(result(passed(), expected_failure()))
    assert "2/2 cells as expected, 0 unexpected" in text
    assert "‼" not in text


def test_progress_prints_an_environment_failure_with_brackets_verbatim() -> None:
    import io

    from rich.console import Console

    from dicomtls.report.console import ConsoleProgress

    out = io.StringIO()
    progress = ConsoleProgress(Console(file=out, width=200))
    progress.environment("haproxy-tls", "failed: [ALERT] parsing [/tmp/x/haproxy.cfg:19] : unknown keyword")
    assert "[/tmp/x/haproxy.cfg:19]" in out.getvalue()


def test_console_marks_a_store_no_rest_api_could_check_as_not_verified() -> None:
    unchecked = dataclasses.replace(passed(), detail=f"{NOT_VERIFIED}: the C-STORE answered success, but no "
                                                     "Orthanc REST API was given to check it")
    text = printed(result(unchecked))
    assert "✔ not verified" in text
    assert "1/1 cells as expected" in text


def test_an_observed_run_whose_environment_did_not_start_exits_one() -> None:
    from dicomtls.diagnose import Reason
    from dicomtls.results import OBSERVE, CellResult, EnvironmentInfo, MatrixResult, RunInfo
    from dicomtls.scenario import Cell, Probe

    cell = Cell(scenario="m", environment="e", probe=Probe(client="dcmtk", sni="none", client_cert="none",
                                                           operation="echo"), expected=OBSERVE, expected_reason=None)
    result = MatrixResult(RunInfo("now", "local", {}, ["m"]))
    result.environments.append(EnvironmentInfo("k", "e", ["m"], ["envoy-bootstrap"], "", [], "", {},
                                               error="e: envoy exited: unable to open file"))
    result.cells.append(CellResult(cell, "fail", Reason.ENVIRONMENT_FAILED, "the environment did not start", "",
                                   ("envoy exited",), "", "", 0.0))
    assert result.cells[0].verdict == "ok"
    assert result.exit_code == 1
