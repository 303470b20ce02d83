"""`invoke probe` against an endpoint `invoke up` left running reaches the same verdicts as the matrix.

No environment is started by the probe: it gets an address, the CA, the client
certificate and Envoy's access log, as a person pointing it at their own proxy would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_invoke, started_under

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("probe")
    up = run_invoke(["up", "--backend", "local", "--scenario", "orthweb-envoy", "--out", str(tmp / "up")], tmp)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        env = json.loads((tmp / "state" / "dicomtls" / "up.json").read_text())[0]
        probe = run_invoke(
            ["probe", "--target", f"{env['address']}:{env['port']}", "--sni", env["sni_names"][0], "--ca", env["ca"],
             "--client-cert", env["client_cert"], "--client-key", env["client_key"],
             "--log", env["logs"]["envoy:access.log"], "--out", str(tmp / "probe")], tmp)
    finally:
        down = run_invoke(["down"], tmp)
    assert down.returncode == 0 and not started_under(tmp)
    matrix = run_invoke(["matrix", "--backend", "local", "--scenario", "orthweb-envoy",
                         "--out", str(tmp / "matrix")], tmp)
    yield {
        "probe": probe,
        "probe_cells": json.loads((tmp / "probe" / "probe" / "results.json").read_text())["cells"],
        "matrix": matrix,
        "matrix_cells": json.loads((tmp / "matrix" / "results.json").read_text())["cells"],
    }


def label(cell: dict[str, Any]) -> str:
    return cell["id"].split("/", 2)[2]


def test_probe_prints_the_matrix_and_the_scan(runs: dict[str, Any]) -> None:
    proc = runs["probe"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "DICOM TLS profiles (PS3.15 Annex B):" in proc.stdout
    assert "failures (evidence per cell in results.json):" in proc.stdout
    assert "passed," in proc.stdout and "failed in" in proc.stdout


def test_probe_reaches_the_matrix_verdicts_for_the_same_cells(runs: dict[str, Any]) -> None:
    assert runs["matrix"].returncode == 0, runs["matrix"].stdout[-3000:]
    matrix = {label(c): (c["actual"], c["reason"]) for c in runs["matrix_cells"]}
    probe = {label(c): (c["actual"], c["reason"]) for c in runs["probe_cells"]}
    shared = sorted(set(matrix) & set(probe))
    assert len(shared) >= 12, shared  # dcmtk and pynetdicom, every SNI and certificate choice, plain DICOM
    assert {k: probe[k] for k in shared} == {k: matrix[k] for k in shared}


def test_probe_tries_profiles_the_matrix_scenario_does_not(runs: dict[str, Any]) -> None:
    by_label = {label(c): c for c in runs["probe_cells"]}
    aes = by_label["pynetdicom sni=right cert=valid echo profile=dcm4che-tls-aes"]
    assert (aes["actual"], aes["reason"]) == ("fail", "tls-no-shared-cipher")
    assert "the server accepts" in aes["summary"]
    assert by_label["pynetdicom sni=right cert=valid echo profile=bcp195-rfc8996"]["actual"] == "pass"


def test_probe_refuses_to_run_without_a_ca_in_one_line(tmp_path: Path) -> None:
    proc = run_invoke(["probe", "--target", "127.0.0.1:11112"], tmp_path)
    assert proc.returncode == 2 and "--ca is needed" in proc.stderr and proc.stderr.strip().count("\n") == 0
