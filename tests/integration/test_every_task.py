"""Every task on every default scenario: soak, fix and up/down run over each default scenario the local backend
runs, and over the first scenario that has a client or component kind none of those has (korthweb-istio: dcmtk
via stunnel), so a client or proxy that one task forgets fails here rather than for a user. Each task ends with
its normal exit status, prints no traceback, and leaves nothing running.

Soak once built a client table of its own without dcmtk-stunnel and crashed with KeyError on korthweb-istio's
first such cell; `test_soak_of_korthweb_istio_runs_its_dcmtk_via_stunnel_cells` holds that case alone."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from dicomtls.scenario import Scenario, available, load_scenario

from .conftest import leftovers_under, run_invoke

pytestmark = pytest.mark.integration

BACKEND = "local"
SOAK_MINUTES = "0.01"  # soak runs two rounds whatever the length: the shortest soak is two rounds


def _features(scenario: Scenario) -> set[str]:
    """What a task could leave out for this scenario: the clients its cells name and its components' kinds."""
    clients = {f"client {c.probe.client}" for c in scenario.cells()}
    return clients | {f"component {c.kind}" for env in scenario.environments for c in env.components()}


def every_task_scenarios() -> list[str]:
    """The default scenarios the local backend runs, then each one that alone brings a client or component kind."""
    runs_here = [s for s in (load_scenario(n) for n in available()) if BACKEND in s.backends]
    chosen = [s for s in runs_here if s.default]
    for scenario in runs_here:
        if not scenario.default and _features(scenario) - set().union(*map(_features, chosen)):
            chosen.append(scenario)
    return [s.name for s in chosen]


SCENARIOS = every_task_scenarios()
NAMED = [arg for name in SCENARIOS for arg in ("--scenario", name)]


def assert_ended_normally(proc: Any, code: int = 0) -> None:
    assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]


def test_soak_of_every_scenario_at_once_runs_two_rounds_of_every_cell(tmp_path: Path, clean_slate: Path) -> None:
    proc = run_invoke(["soak", *NAMED, "--minutes", SOAK_MINUTES, "--backend", BACKEND,
                       "--out", str(tmp_path / "out")], tmp_path)
    assert_ended_normally(proc)
    doc = json.loads((tmp_path / "out" / "soak.json").read_text())
    assert doc["rounds"] == 2
    assert sorted(c["id"] for c in doc["cells"]) == sorted(c.id for n in SCENARIOS for c in load_scenario(n).cells())
    assert all(len(c["outcomes"]) == 2 and not c["unexpected_rounds"] for c in doc["cells"]), doc["cells"]
    assert doc["leftovers"] == [] and doc["stopped"] is None
    assert len({m["environment"] for m in doc["memory"]}) == len(list((tmp_path / "out" / "logs").iterdir()))


def test_soak_of_korthweb_istio_runs_its_dcmtk_via_stunnel_cells(tmp_path: Path, clean_slate: Path) -> None:
    proc = run_invoke(["soak", "--scenario", "korthweb-istio", "--minutes", SOAK_MINUTES, "--backend", BACKEND,
                       "--out", str(tmp_path / "out")], tmp_path)
    assert_ended_normally(proc)
    doc = json.loads((tmp_path / "out" / "soak.json").read_text())
    via_stunnel = [c for c in doc["cells"] if "/dcmtk-stunnel " in c["id"]]
    assert len(via_stunnel) == 8
    for cell in via_stunnel:  # stunnel sends the SNI the named hosts route by, or none when told to
        expected = "pass" if " sni=right " in cell["id"] else "fail: tls-no-matching-sni"
        assert cell["outcomes"] == [expected, expected] and not cell["unexpected_rounds"], cell


def test_fix_over_every_scenario_proves_candidates_and_leaves_nothing(tmp_path: Path) -> None:
    proc = run_invoke(["fix", *NAMED, "--backend", BACKEND, "--out", str(tmp_path / "out")], tmp_path)
    assert_ended_normally(proc)
    assert leftovers_under(tmp_path) == (set(), set())
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["run"]["scenarios"] == SCENARIOS
    assert [e["name"] for e in doc["environments"] if e.get("error")] == []
    assert {c["verdict"] for c in doc["cells"]} == {"ok"}
    assert doc["fixes"]["broken"] == []
    marks = {(t["candidate"]["id"], t["mark"]) for c in doc["fixes"]["cells"] for t in c["trials"]}
    assert ("stunnel-sidecar", "passes") in marks  # a client-side proof runs dcmtk via stunnel


def test_up_of_every_scenario_at_once_serves_each_and_down_stops_it_all(tmp_path: Path, clean_slate: Path) -> None:
    up = run_invoke(["up", *NAMED, "--backend", BACKEND, "--out", str(tmp_path / "out")], tmp_path)
    records: list[dict[str, Any]] = []
    try:
        assert_ended_normally(up)
        records = json.loads((tmp_path / "state" / "dicomtls" / "up.json").read_text())
        assert {s for r in records for s in r["scenarios"]} == set(SCENARIOS)
        for r in records:
            with socket.create_connection((r["address"], r["port"]), timeout=5):
                pass
    finally:
        down = run_invoke(["down"], tmp_path)
    assert_ended_normally(down)
    assert f"stopped {sum(len(r['handles']) for r in records)} components" in down.stdout
    assert not (tmp_path / "state" / "dicomtls" / "up.json").exists()
    for r in records:
        with socket.socket() as s:
            assert s.connect_ex((r["address"], r["port"])) != 0, f"{r['environment']} still listens"
