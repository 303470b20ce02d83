"""The GitHub Actions workflow and the repository's Action (action.yml): valid for actionlint (the Action's
scripts through shellcheck), shards the matrix, merges, summarises, and fails on surprises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "dicomtls.yml"
ACTION = ROOT / "action.yml"


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


@pytest.mark.parametrize("job", ["shard", "report", "action", "docker-shard", "docker-report", "regression"])
def test_every_action_is_pinned_to_a_major_version(job: str) -> None:
    for s in steps(job):
        if "uses" in s and s["uses"] != "./":  # ./ is this checkout's own action.yml
            assert "@v" in s["uses"], s["uses"]


def test_docker_shards_run_in_containers_with_base_images_from_docker_hub() -> None:
    job = workflow()["jobs"]["docker-shard"]
    assert job["env"] == {"DICOMTLS_BACKEND": "docker", "DICOMTLS_REGISTRY": "docker.io"}
    assert job["strategy"]["matrix"]["shard"] == workflow()["jobs"]["shard"]["strategy"]["matrix"]["shard"]
    assert step("docker-shard", "install.sh")["run"] == "sudo --preserve-env=DICOMTLS_REGISTRY ./install.sh"
    assert "--backend docker --shard" in step("docker-shard", "invoke matrix")["run"]
    assert step("docker-shard", "actions/upload-artifact")["with"]["name"].startswith("dicomtls-docker-shard-")
    download = step("docker-report", "actions/download-artifact")
    assert download["with"]["pattern"] == "dicomtls-docker-shard-*"
    assert "if" not in step("docker-report", "invoke merge")


def test_the_regression_job_runs_the_real_releases_and_requires_the_flip_at_1_23_0() -> None:
    from dicomtls.bisect import select_cell

    job = workflow()["jobs"]["regression"]
    assert job["env"]["DICOMTLS_REGISTRY"] == "docker.io"
    matrix = step("regression", "invoke matrix")["run"]
    assert "--backend docker --scenario envoy-upstream-regression" in matrix
    bisect = step("regression", "invoke bisect")
    assert bisect["shell"] == "bash"  # pipefail: a failed bisect fails the step despite the tee
    assert "--backend docker --component envoy --versions 1.22.5,1.23.0,1.24.0,1.25.0" in bisect["run"]
    assert 'grep -F "first flip at envoy 1.23.0: 1.22.5 pass → 1.23.0 fail tls-no-shared-cipher"' in bisect["run"]
    _, cell = select_cell(job["env"]["BISECT_CELL"], None)
    assert cell.environment == "envoy-1-22-5" and cell.probe.profile == "dcm4che-tls-aes"


def test_every_action_the_action_uses_is_pinned_to_a_major_version() -> None:
    for s in action()["runs"]["steps"]:
        if "uses" in s:
            assert "@v" in s["uses"], s["uses"]


def action() -> dict[str, Any]:
    return yaml.safe_load(ACTION.read_text())


def action_step(needle: str) -> dict[str, Any]:
    return next(s for s in action()["runs"]["steps"] if needle in s.get("run", "") or needle in s.get("uses", ""))


def action_as_workflow(metadata: dict[str, Any]) -> dict[str, Any]:
    """The Action's steps as the one job of a reusable workflow with the same inputs: actionlint lints workflows,
    not action metadata, and so checks the steps' expressions and runs shellcheck on their scripts."""
    inputs = {name: {"type": "string", "required": False, "default": spec.get("default", "")}
              for name, spec in metadata["inputs"].items()}
    return {"name": "action.yml as a workflow", "on": {"workflow_call": {"inputs": inputs}},
            "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": metadata["runs"]["steps"]}}}


def lint_action(metadata: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert shutil.which("shellcheck"), "shellcheck is missing: install.sh installs it (apt-get install shellcheck)"
    path = tmp_path / "action-steps.yml"
    path.write_text(yaml.safe_dump(action_as_workflow(metadata), sort_keys=False))
    return lint(path)


def test_actionlint_and_shellcheck_find_nothing_wrong_with_the_actions_steps(tmp_path: Path) -> None:
    proc = lint_action(action(), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shellcheck_would_catch_an_unquoted_variable_in_the_actions_scripts(tmp_path: Path) -> None:
    broken = yaml.safe_load(ACTION.read_text().replace('cat "$REPORTS/summary.md"', "cat $REPORTS/summary.md"))
    proc = lint_action(broken, tmp_path)
    assert proc.returncode == 1
    assert "shellcheck" in proc.stdout and "SC2086" in proc.stdout


def test_the_action_is_composite_and_uses_every_input_it_declares() -> None:
    metadata = action()
    assert metadata["runs"]["using"] == "composite"
    assert {"manifests", "scenario", "backend", "baseline", "shard", "args"} <= set(metadata["inputs"])
    text = yaml.safe_dump(metadata["runs"]["steps"])
    for name in metadata["inputs"]:
        assert f"inputs.{name} }}}}" in text, f"input {name} is declared but never used"
    for s in metadata["runs"]["steps"]:
        assert "uses" in s or s.get("shell") == "bash", s.get("name")


def test_the_action_installs_its_own_checkout_and_runs_the_command_with_the_inputs() -> None:
    install = action_step("pip install")
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert 'pip install -q "$ACTION_PATH"' in install["run"]
    run = action_step("dicomtls \"${args[@]}\"")
    assert "if" not in run  # its exit status (1 on unexpected cells or a regression) fails the step
    assert 'args=("$INPUT_COMMAND" --out "$INPUT_OUT")' in run["run"] and "args=(probe --out" in run["run"]
    for option, variable in (("--manifests", "INPUT_MANIFESTS"), ("--backend", "INPUT_BACKEND"),
                             ("--baseline", "INPUT_BASELINE"), ("--shard", "INPUT_SHARD"), ("--scenario", "scenario"),
                             ("--target", "INPUT_TARGET"), ("--inventory", "INPUT_INVENTORY"),
                             ("--policy", "policy"), ("--fail-on", "INPUT_FAIL_ON")):
        assert f'args+=({option} "${variable}")' in run["run"], option


def test_the_action_annotates_summarises_and_uploads_the_reports_even_after_a_failure() -> None:
    report = action_step("GITHUB_STEP_SUMMARY")
    assert report["if"] == "always()"
    assert 'cat "$REPORTS/summary.md" >> "$GITHUB_STEP_SUMMARY"' in report["run"]
    assert 'dicomtls annotations "$REPORTS/results.json"' in report["run"]
    upload = action_step("actions/upload-artifact")
    assert upload["if"] == "always()" and "@v" in upload["uses"]
    paths = upload["with"]["path"].splitlines()
    for name in ("report.html", "results.json", "junit.xml"):
        assert f"${{{{ steps.plan.outputs.reports }}}}/{name}" in paths
    assert "${{ steps.plan.outputs.reports }}/fixes/**/*.patch" in paths  # what report.html links, no more
    assert not any("pki" in p for p in paths)


def test_the_action_caches_pip_and_the_docker_images_by_their_sources() -> None:
    caches = [s for s in action()["runs"]["steps"] if s.get("uses", "").startswith("actions/cache@")]
    keys = {c["with"]["key"] for c in caches}
    assert keys == {"dicomtls-pip-${{ runner.os }}-${{ steps.plan.outputs.pip-key }}",
                    "dicomtls-images-${{ runner.os }}-${{ steps.plan.outputs.images-key }}"}
    plan = action_step("pip-key=")["run"]
    assert '"$ACTION_PATH/pyproject.toml"' in plan and "find images" in plan


def test_the_workflow_runs_the_action_from_this_checkout_on_a_fixture_repository() -> None:
    used = step("action", "./")
    assert used["uses"] == "./"
    manifests = ROOT / used["with"]["manifests"]
    assert manifests.is_dir() and any(manifests.glob("*.yaml"))
