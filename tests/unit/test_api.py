"""dicomtls.api reads a run back as the types the run held: a captured results.json (a real local run of
envoy-sni-named-hosts) becomes a MatrixResult whose cells carry enum outcomes, verdicts and reasons, and writes back
the same cells; bad input is a UsageError before anything runs."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from dicomtls import api
from dicomtls.report import json as json_report

CAPTURED = Path(__file__).parents[1] / "fixtures" / "results_envoy_sni_named_hosts.json"


@pytest.fixture(scope="module")
def result() -> api.MatrixResult:
    return api.read_results(CAPTURED)


def test_read_results_gives_typed_cells_with_enum_outcomes_verdicts_and_reasons(result: api.MatrixResult) -> None:
    assert all(isinstance(c, api.CellResult) for c in result.cells)
    assert Counter((c.outcome, c.reason, c.verdict) for c in result.cells) == {
        (api.Outcome.PASS, None, api.Verdict.OK): 18,
        (api.Outcome.FAIL, api.Reason.TLS_NO_MATCHING_SNI, api.Verdict.OK): 12,
        (api.Outcome.FAIL, api.Reason.TLS_HOSTNAME_MISMATCH, api.Verdict.OK): 4,
    }
    assert result.exit_code == 0


def test_read_results_keeps_each_cell_its_expectation_and_probe(result: api.MatrixResult) -> None:
    recorded = json.loads(CAPTURED.read_text())["cells"]
    assert [c.cell.id for c in result.cells] == [r["id"] for r in recorded]
    refused = next(c for c in result.cells if c.reason is api.Reason.TLS_NO_MATCHING_SNI)
    assert refused.cell.expected_reason is api.Reason.TLS_NO_MATCHING_SNI
    assert refused.cell.probe.sni in {"none", "wrong"}


def test_read_results_gives_the_run_and_environments_typed(result: api.MatrixResult) -> None:
    assert isinstance(result.run, api.RunInfo) and result.run.backend == "local"
    assert [e.name for e in result.environments] == ["envoy-named-hosts", "envoy-wildcard-hosts"]
    assert all(isinstance(e, api.EnvironmentInfo) and e.scan is not None for e in result.environments)
    assert isinstance(result.environments[0].scan, api.ScanResult)


def test_typed_results_write_back_the_cells_they_were_read_from(result: api.MatrixResult) -> None:
    recorded = json.loads(CAPTURED.read_text())["cells"]
    written = json_report.to_dict(result)["cells"]
    # An older file lacks later fields (sites, faults, deadlines): what it has comes back unchanged.
    assert [{k: w[k] for k in r} for r, w in zip(recorded, written)] == recorded


def test_read_results_takes_the_out_directory_of_a_run(tmp_path: Path) -> None:
    shutil.copy(CAPTURED, tmp_path / "results.json")
    assert len(api.read_results(tmp_path).cells) == 34


def test_write_reports_writes_the_four_reports_that_read_back_the_same(result: api.MatrixResult,
                                                                       tmp_path: Path) -> None:
    written = api.write_reports(result, tmp_path / "again")
    assert [p.name for p in written] == ["results.json", "junit.xml", "summary.md", "report.html"]
    assert [c.cell.id for c in api.read_results(written[0]).cells] == [c.cell.id for c in result.cells]


def test_a_damaged_results_file_is_a_usage_error_naming_the_field(tmp_path: Path) -> None:
    doc = json.loads(CAPTURED.read_text())
    doc["cells"][0]["actual"] = 1
    (tmp_path / "results.json").write_text(json.dumps(doc))
    with pytest.raises(api.UsageError, match=r"cells\.0\.actual"):
        api.read_results(tmp_path)


def test_matrix_of_an_unknown_scenario_is_a_usage_error_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(api.UsageError, match="no-such-scenario"):
        api.matrix(["no-such-scenario"], out=tmp_path / "out", backend="local")
    assert not (tmp_path / "out").exists()


def test_matrix_with_no_environment_at_once_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(api.UsageError, match="jobs 0"):
        api.matrix(["haproxy-tls"], out=tmp_path / "out", backend="local", jobs=0)


def test_scan_with_a_certificate_but_no_key_is_a_usage_error() -> None:
    with pytest.raises(api.UsageError, match="client_cert and client_key go together"):
        api.scan("127.0.0.1:1", client_cert=CAPTURED)


def test_the_default_progress_is_silent(capsys: pytest.CaptureFixture[str], result: api.MatrixResult) -> None:
    progress: api.Progress = api.SilentProgress()
    progress.start(1)
    progress.environment("e", "starting")
    progress.cell_done(result.cells[0])
    progress.stop()
    assert capsys.readouterr() == ("", "")
