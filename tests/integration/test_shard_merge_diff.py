"""Sharded runs merge into the reports of one run, and a baseline diff catches a cell that broke.

One scenario (two environments) runs unsharded, as shard 1/2 and 2/2, and once more with the named-hosts
proxy requiring client certificates: the same cell ids, some of which must now fail.

What "the same as an unsharded run" means, exactly (README: Sharding): two runs differ in timing and in
what quotes their live traffic, so before comparing, ``comparable`` drops ``run.started``, ``run.wall_s``
and every ``duration_s``; drops ``environments[].entry`` and ``pki_dir`` (free ports, output paths); keeps
only whether ``cells[].evidence``, ``command``, ``detail`` are there (they quote ports, paths, log
timestamps, generated UIDs and Orthanc ids) and drops ``sent_bytes`` (a generated object's size depends on
its random UIDs) and each scanned certificate's ``sha256`` (every run makes its own PKI); and in every other string replaces loopback ports, output paths and ISO timestamps (the
validity of each run's freshly generated certificates) with placeholders. Everything else must be equal.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from junitparser import JUnitXml

from dicomtls.report.markdown import RUN_LINE

from .conftest import ROOT, leftovers_under, run_invoke

pytestmark = pytest.mark.integration

SCENARIO = "envoy-sni-named-hosts"
REGRESSED = {f"{SCENARIO}/envoy-named-hosts/pynetdicom sni=right cert=none {op}" for op in ("echo", "store-ct")}

_DROPPED = {"started", "wall_s", "duration_s", "association_s", "entry", "pki_dir", "sent_bytes", "sha256"}
_PRESENCE_ONLY = {"evidence", "command", "detail"}


def comparable(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: (bool(v) if k in _PRESENCE_ONLY else comparable(v, k))
                for k, v in value.items() if k not in _DROPPED}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, str):
        value = re.sub(r"127\.0\.0\.1([: ])\d+", r"127.0.0.1\1PORT", value)
        value = re.sub(r"(?:/[^\s/]+)+/(pki|objects|envs)/", r"OUT/\1/", value)
        return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?", "TIME", value)
    return value


def matrix(tmp: Path, out: str, *args: str) -> Any:
    return run_invoke(["matrix", "--out", str(tmp / out), *args], tmp)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("shards")
    procs = {
        "whole": matrix(tmp, "whole", "--scenario", SCENARIO),
        "shard1": matrix(tmp, "shard1", "--scenario", SCENARIO, "--shard", "1/2"),
        "shard2": matrix(tmp, "shard2", "--scenario", SCENARIO, "--shard", "2/2"),
    }
    procs["merge"] = run_invoke(["merge", "--shards", str(tmp / "shard2"), "--shards", str(tmp / "shard1"),
                                 "--out", str(tmp / "merged")], tmp)
    # The same scenario, names and cells, but the named-hosts proxy now requires client certificates.
    text = (ROOT / "scenarios" / f"{SCENARIO}.yaml").read_text()
    changed = text.replace("{ kind: envoy, client_cert: optional, sni: named }",
                           "{ kind: envoy, client_cert: required, sni: named }")
    assert changed != text
    (tmp / f"{SCENARIO}.yaml").write_text(changed)
    procs["broken"] = matrix(tmp, "broken", "--scenario", str(tmp / f"{SCENARIO}.yaml"),
                             "--baseline", str(tmp / "whole" / "results.json"))
    left = leftovers_under(tmp)
    assert left == (set(), set()), left
    docs = {name: json.loads((tmp / name / "results.json").read_text())
            for name in ("whole", "shard1", "shard2", "merged", "broken")}
    return {"tmp": tmp, "procs": procs, "docs": docs}


def test_every_run_and_the_merge_succeed(runs: dict[str, Any]) -> None:
    for name in ("whole", "shard1", "shard2", "merge"):
        proc = runs["procs"][name]
        assert proc.returncode == 0, name + proc.stdout[-2000:] + proc.stderr[-2000:]


def test_each_shard_runs_a_balanced_share_of_whole_environments(runs: dict[str, Any]) -> None:
    docs = runs["docs"]
    envs = [[e["name"] for e in docs[s]["environments"]] for s in ("shard1", "shard2")]
    assert sorted(envs) == [["envoy-named-hosts"], ["envoy-wildcard-hosts"]]
    assert [len(docs[s]["cells"]) for s in ("shard1", "shard2")] == [17, 17]
    assert (docs["shard1"]["run"]["shard"], docs["shard2"]["run"]["shard"]) == ("1/2", "2/2")


def test_merged_results_are_the_unsharded_run(runs: dict[str, Any]) -> None:
    whole, merged = runs["docs"]["whole"], runs["docs"]["merged"]
    assert [c["id"] for c in merged["cells"]] == [c["id"] for c in whole["cells"]]
    assert comparable(merged) == comparable(whole)


def test_merging_is_exact_on_the_shards_own_data(runs: dict[str, Any]) -> None:
    """Apart from the run's timing, the merged file is the shards' records, reordered as one run orders them."""
    docs = runs["docs"]
    by_id = {c["id"]: c for s in ("shard1", "shard2") for c in docs[s]["cells"]}
    assert docs["merged"]["cells"] == [by_id[c["id"]] for c in docs["whole"]["cells"]]
    envs = {e["key"]: e for s in ("shard1", "shard2") for e in docs[s]["environments"]}
    assert docs["merged"]["environments"] == [envs[e["key"]] for e in docs["whole"]["environments"]]


def test_merged_junit_summary_and_report_match_the_unsharded_run(runs: dict[str, Any]) -> None:
    tmp = runs["tmp"]

    def junit(name: str) -> list[tuple[str, str, bool]]:
        return [(c.classname, c.name, c.is_passed) for s in JUnitXml.fromfile(str(tmp / name / "junit.xml")) for c in s]

    def summary(name: str) -> list[str]:
        return [l for l in (tmp / name / "summary.md").read_text().splitlines() if not l.startswith(RUN_LINE)]

    assert junit("merged") == junit("whole")
    assert summary("merged") == summary("whole")
    assert grid(tmp / "merged" / "report.html") == grid(tmp / "whole" / "report.html")


def test_merged_logs_hold_every_environment(runs: dict[str, Any]) -> None:
    merged = runs["tmp"] / "merged"
    for env in runs["docs"]["merged"]["environments"]:
        for link in env["logs"].values():
            assert (merged / link).stat().st_size > 0, link


def test_matrix_against_a_baseline_flags_the_cells_that_broke(runs: dict[str, Any]) -> None:
    proc = runs["procs"]["broken"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    broken = {c["id"]: c for c in runs["docs"]["broken"]["cells"]}
    for cell_id in REGRESSED:
        assert (broken[cell_id]["actual"], broken[cell_id]["reason"]) == ("fail", "tls-cert-required")
        assert f"regression {cell_id}: pass → fail (tls-cert-required)" in proc.stdout
    summary = (runs["tmp"] / "broken" / "summary.md").read_text()
    assert "### Since the baseline:" in summary
    assert summary.index("### Unexpected cells") < summary.index(f"### {SCENARIO}")


def test_invoke_diff_lists_regressions_and_exits_1(runs: dict[str, Any]) -> None:
    tmp = runs["tmp"]
    proc = run_invoke(["diff", str(tmp / "whole"), str(tmp / "broken" / "results.json")], tmp)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    regressions = {l.split("regression ", 1)[1].split(": pass")[0] for l in proc.stdout.splitlines()
                   if l.strip().startswith("regression ")}
    old = {c["id"]: c for c in runs["docs"]["whole"]["cells"]}
    new = {c["id"]: c for c in runs["docs"]["broken"]["cells"]}
    expected = {i for i in old if i in new and old[i]["actual"] == "pass" and new[i]["actual"] == "fail"}
    assert REGRESSED <= regressions == expected


def test_invoke_diff_of_a_run_with_itself_exits_0(runs: dict[str, Any]) -> None:
    tmp = runs["tmp"]
    proc = run_invoke(["diff", str(tmp / "whole"), str(tmp / "merged")], tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no cell changed" in proc.stdout


@pytest.mark.parametrize("args, needle", [
    (["diff", "nowhere/results.json", "nowhere-else"], "no such file"),
    (["merge", "--shards", "{tmp}/shard1", "--out", "{tmp}/half"], "shard 2/2 missing"),
    (["merge", "--shards", "{tmp}/whole", "--out", "{tmp}/bad"], "not from a sharded run"),
    (["matrix", "--scenario", SCENARIO, "--shard", "3/2", "--out", "{tmp}/bad"], "--shard 3/2"),
    (["matrix", "--scenario", SCENARIO, "--baseline", "{tmp}/README.md", "--out", "{tmp}/bad"], "no such file"),
])
def test_bad_input_is_one_line_and_exit_2(runs: dict[str, Any], args: list[str], needle: str) -> None:
    tmp = runs["tmp"]
    proc = run_invoke([a.format(tmp=tmp) for a in args], tmp)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


class _Grid(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and "data-id" in a:
            self.cells.append((a["data-id"] or "", a.get("data-status") or ""))


def grid(path: Path) -> list[tuple[str, str]]:
    parser = _Grid()
    parser.feed(path.read_text())
    return parser.cells
