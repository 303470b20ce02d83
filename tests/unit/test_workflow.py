"""The GitHub Actions workflow: valid for actionlint, shards the matrix, merges, summarises and fails on surprises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "dicomtls.yml"


def actionlint() -> str:
    found = shutil.which("actionlint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    assert found, "actionlint is missing: install the test extras (pip install -e '.[test]')"
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, timeout=60)


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(job: str) -> list[dict[str, Any]]:
    return workflow()["jobs"][job]["steps"]


def step(job: str, needle: str) -> dict[str, Any]:
    return next(s for s in steps(job) if needle in s.get("run", "") or needle in s.get("uses", ""))


def test_actionlint_finds_nothing_wrong_with_the_workflow() -> None:
    proc = lint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("matrix.shard }}/", "matrix.shrad }}/"))
    proc = lint(broken)
    assert proc.returncode == 1
    assert "shrad" in proc.stdout


def test_runs_on_push_and_pull_request() -> None:
    triggers = workflow().get("on", workflow().get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"push", "pull_request"}


def test_each_shard_installs_and_runs_its_share_on_ubuntu() -> None:
    job = workflow()["jobs"]["shard"]
    assert job["runs-on"] == "ubuntu-latest"
    shards = job["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, int(workflow()["env"]["SHARDS"]) + 1))
    assert job["strategy"]["fail-fast"] is False
    assert workflow()["env"]["DICOMTLS_BACKEND"] == "local"  # no Debian mirror on the runners for Docker images
    assert step("shard", "install.sh")["run"] == "sudo ./install.sh"
    run = step("shard", "invoke matrix")["run"]
    assert run.startswith(".venv/bin/invoke matrix --shard ")
    assert "${{ matrix.shard }}/${SHARDS}" in run and "--out out" in run


def test_each_shard_uploads_its_results_always_but_never_the_pki() -> None:
    upload = step("shard", "actions/upload-artifact")
    assert upload["if"] == "always()"
    paths = upload["with"]["path"].split()
    assert "out/" in paths and "!out/pki/" in paths
    assert upload["with"]["name"].startswith("dicomtls-shard-")


def test_the_report_job_merges_every_shard_even_after_a_failed_one() -> None:
    job = workflow()["jobs"]["report"]
    assert job["needs"] == "shard"
    assert "!cancelled()" in job["if"]
    download = step("report", "actions/download-artifact")
    assert download["with"]["pattern"] == "dicomtls-shard-*"
    merge = step("report", "invoke merge")["run"]
    assert merge == f".venv/bin/invoke merge --shards {download['with']['path']} --out out"
    assert "if" not in step("report", "invoke merge")  # its exit status (1 on unexpected cells) fails the job


def test_the_report_job_publishes_the_summary_and_the_report() -> None:
    summary = step("report", "GITHUB_STEP_SUMMARY")
    assert summary["if"] == "always()"
    assert "cat out/summary.md >> \"$GITHUB_STEP_SUMMARY\"" in summary["run"]
    upload = step("report", "actions/upload-artifact")
    assert upload["if"] == "always()"
    assert "out/report.html" in upload["with"]["path"].split()
    assert "out/logs/" in upload["with"]["path"].split()


@pytest.mark.parametrize("job", ["shard", "report"])
def test_every_action_is_pinned_to_a_major_version(job: str) -> None:
    for s in steps(job):
        if "uses" in s:
            assert "@v" in s["uses"], s["uses"]
