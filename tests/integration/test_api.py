"""dicomtls.api on the local backend, in this process, as a library user calls it: a small matrix runs silently,
returns typed cells (a stored object verified in Orthanc, a refusal diagnosed), leaves nothing running, and its
reports read back to the same cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtls import api

from .conftest import leftovers_under

pytestmark = pytest.mark.integration

SCENARIO = """\
name: api-small
description: One Envoy, a valid client through it, and one with the wrong name.
default: false
pki:
  topology: one-level
  server_names: [dicom.api.test]
environments:
  - name: envoy-any
    proxy: { kind: envoy, client_cert: optional, sni: any }
probes:
  - client: pynetdicom
    sni: [right, wrong]
    client_cert: valid
    operation: [echo, store-ct]
expect:
  - match: { sni: wrong }
    outcome: fail
    reason: tls-hostname-mismatch
  - match: {}
    outcome: pass
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[api.MatrixResult, Path]:
    tmp = tmp_path_factory.mktemp("api")
    scenario = tmp / "api-small.yaml"
    scenario.write_text(SCENARIO)
    result = api.run_matrix([scenario], out=tmp / "out", backend="local", jobs=1)
    assert leftovers_under(tmp) == (set(), set())
    return result, tmp / "out"


def test_api_matrix_returns_typed_cells_as_expected(run: tuple[api.MatrixResult, Path]) -> None:
    result, _ = run
    assert result.exit_code == 0
    assert result.run.backend == "local"
    by_sni = {(c.cell.probe.sni, c.cell.probe.operation): (c.outcome, c.reason, c.verdict) for c in result.cells}
    assert by_sni == {
        ("right", "echo"): (api.Outcome.PASS, None, api.Verdict.OK),
        ("right", "store-ct"): (api.Outcome.PASS, None, api.Verdict.OK),
        ("wrong", "echo"): (api.Outcome.FAIL, api.Reason.TLS_HOSTNAME_MISMATCH, api.Verdict.OK),
        ("wrong", "store-ct"): (api.Outcome.FAIL, api.Reason.TLS_HOSTNAME_MISMATCH, api.Verdict.OK),
    }
    refused = next(c for c in result.cells if c.reason is api.Reason.TLS_HOSTNAME_MISMATCH)
    assert refused.facts.refused_by is api.Side.CLIENT  # the client turned the server's certificate away


def test_api_matrix_store_is_verified_in_orthanc(run: tuple[api.MatrixResult, Path]) -> None:
    result, _ = run
    [stored] = [c for c in result.cells if c.cell.probe.operation == "store-ct" and c.outcome is api.Outcome.PASS]
    assert "holds the sent dataset" in stored.detail


def test_api_reports_read_back_to_the_same_cells(run: tuple[api.MatrixResult, Path]) -> None:
    result, out = run
    api.write_reports(result, out)
    again = api.read_results(out)
    assert [(c.cell.id, c.outcome, c.reason, c.verdict) for c in again.cells] == \
        [(c.cell.id, c.outcome, c.reason, c.verdict) for c in result.cells]


def test_api_matrix_prints_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "api-small.yaml"
    scenario.write_text(SCENARIO.replace("sni: [right, wrong]", "sni: right").replace("[echo, store-ct]", "echo"))
    result = api.run_matrix([scenario], out=tmp_path / "out", backend="local", jobs=1)
    assert [c.outcome for c in result.cells] == [api.Outcome.PASS]
    assert capfd.readouterr() == ("", "")
    assert leftovers_under(tmp_path) == (set(), set())
