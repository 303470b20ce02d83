"""`invoke bench --load` and `invoke soak` on real environments: every object verified, nothing changed, nothing left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_invoke

pytestmark = pytest.mark.integration


def test_load_through_envoy_and_direct_verifies_every_object_it_sent(tmp_path: Path, clean_slate: Path) -> None:
    proc = run_invoke(["bench", "--load", "--target", "envoy", "--target", "direct", "--concurrency", "1,4",
                       "--runs", "1", "--associations", "1", "--objects", "2", "--out", str(tmp_path / "out")],
                      tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "out" / "bench-load.json").read_text())
    cells = {(c["target"], c["concurrency"]): c for c in doc["cells"]}
    assert set(cells) == {("envoy", 1), ("envoy", 4), ("direct", 1), ("direct", 4)}
    for (target, level), cell in cells.items():
        assert cell["associations"] == level and cell["objects"] == 2 * level, cell
        assert cell["failed"] == 0 and cell["unverified"] == 0, cell["errors"]
        assert cell["bytes"] == pytest.approx(2 * level * doc["object_bytes"], rel=0.01)  # UIDs differ in length
        assert cell["p99_s"] >= cell["p50_s"] > 0
    assert cells[("envoy", 4)]["ratio_to_direct"] > 0 and cells[("direct", 4)]["ratio_to_direct"] is None
    assert "MB/s vs direct" in proc.stdout and "0 unverified objects" in proc.stdout


def test_soak_of_orthweb_envoy_changes_no_cell_reports_memory_and_leaves_nothing(
        tmp_path: Path, clean_slate: Path) -> None:
    proc = run_invoke(["soak", "--scenario", "orthweb-envoy", "--minutes", "0.25", "--backend", "local",
                       "--out", str(tmp_path / "out")], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "out" / "soak.json").read_text())
    assert doc["rounds"] >= 2
    assert all(len(c["outcomes"]) == doc["rounds"] and not c["changed"] for c in doc["cells"])
    assert any(o == "pass" for c in doc["cells"] for o in c["outcomes"])
    assert doc["leftovers"] == [] and doc["stopped"] is None
    memory = {m["component"]: m for m in doc["memory"]}
    assert set(memory) == {"orthanc", "envoy"}
    assert all(len(m["samples"]) == doc["rounds"] + 1 and min(m["samples"]) > 0 for m in memory.values())
    assert "0 changed cells" in proc.stdout and "0 leftovers" in proc.stdout
