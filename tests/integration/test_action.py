"""The Action's own steps (action.yml), run as a GitHub runner runs them: each `run:` step in order, its
expressions filled in, GITHUB_OUTPUT / GITHUB_ENV / GITHUB_PATH / GITHUB_STEP_SUMMARY as files, in a clean
environment, a failed step skipping the rest but for `always()` ones. Left out: the `uses:` steps (setup-python,
the caches, the artifact upload: other people's actions) and the pip install of the action's checkout (it needs
PyPI; the project's venv comes first on PATH instead, as that step's GITHUB_PATH line puts its own venv).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
ENVOY_2023 = "tests/fixtures/manifests/orthweb-envoy-2023"
NEEDS_PYPI = "Install dicomtls from the action's own checkout"

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_REFERENCE = re.compile(r"(inputs|github|runner)\.([\w-]+)|steps\.([\w-]+)\.outputs\.([\w-]+)")


@dataclass
class ActionRun:
    """What the runner would have shown: each step's exit status and outputs, the log, the step summary."""

    statuses: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    log: str = ""
    summary: str = ""
    action_outputs: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(self.statuses.values())


class Contexts:
    """The expression contexts the action uses, and an evaluator of exactly its forms: a reference
    (inputs.X, github.X, runner.X, steps.ID.outputs.X) or always(). Anything else fails the test, so the
    action's expressions stay as plain as this runner."""

    def __init__(self, inputs: dict[str, str], github: dict[str, str], runner: dict[str, str]) -> None:
        self.inputs, self.github, self.runner = inputs, github, runner
        self.steps: dict[str, dict[str, str]] = {}

    def value(self, expression: str) -> str:
        match = _REFERENCE.fullmatch(expression)
        assert match, f"an expression this runner does not evaluate: {expression!r}"
        context, name, step, output = match.groups()
        if step is not None:
            return self.steps.get(step, {}).get(output, "")  # a step that did not run has no outputs
        found = {"inputs": self.inputs, "github": self.github, "runner": self.runner}[context]
        assert name in found, f"{context}.{name} is not defined"
        return found[name]

    def fill(self, text: str) -> str:
        return _EXPRESSION.sub(lambda m: self.value(m.group(1)), text)

    def runs(self, condition: str | None, failed: bool) -> bool:
        """Whether a step runs: without `if:` only while nothing failed (success()); `always()` regardless."""
        if condition is None:
            return not failed
        assert condition.strip() == "always()", f"an if: this runner does not evaluate: {condition!r}"
        return True


def _read_commands_file(path: Path) -> dict[str, str]:
    """name=value lines, and name<<DELIMITER blocks for multi-line values, as GITHUB_OUTPUT and GITHUB_ENV hold."""
    found: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    while lines:
        line = lines.pop(0)
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            while (item := lines.pop(0)) != delimiter:
                block.append(item)
            found[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            found[name] = value
    return found


def run_action(inputs: dict[str, str], tmp_path: Path) -> ActionRun:
    """Run action.yml's `run:` steps with ``inputs`` (the rest at their defaults) in the repository as workspace."""
    metadata = yaml.safe_load(ACTION.read_text())
    unknown = set(inputs) - set(metadata["inputs"])
    assert not unknown, f"the action declares no input {unknown}"
    given = {name: inputs.get(name, str(spec.get("default", ""))) for name, spec in metadata["inputs"].items()}
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    contexts = Contexts(given, {"action_path": str(ROOT), "workspace": str(ROOT)},
                        {"temp": str(temp), "os": "Linux"})
    venv_bin = str(Path(sys.executable).parent)
    summary = tmp_path / "step-summary.md"
    summary.touch()
    env_file, path_file = tmp_path / "github-env", tmp_path / "github-path"
    base = {"PATH": os.pathsep.join([venv_bin, "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]),
            "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8", "XDG_STATE_HOME": str(tmp_path / "state"),
            "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(ROOT), "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ENV": str(env_file), "GITHUB_PATH": str(path_file),
            "RUNNER_TEMP": str(temp), "RUNNER_OS": "Linux"}
    if "PYTHONPATH" in os.environ:  # a worktree's sources over the venv's editable install
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    result = ActionRun()
    for index, step in enumerate(metadata["runs"]["steps"]):
        if "uses" in step or step["name"] == NEEDS_PYPI:
            continue
        assert step.get("shell") == "bash", step["name"]
        if not contexts.runs(step.get("if"), result.failed):
            continue
        output = tmp_path / f"output-{index}"
        script = tmp_path / f"step-{index}.sh"
        script.write_text(contexts.fill(step["run"]))
        added = path_file.read_text().split() if path_file.exists() else []
        env = {**base, **_read_commands_file(env_file),
               **{name: contexts.fill(str(value)) for name, value in step.get("env", {}).items()},
               "GITHUB_OUTPUT": str(output)}
        env["PATH"] = os.pathsep.join([*reversed(added), env["PATH"]])
        # the runner's `shell: bash`: bash --noprofile --norc -eo pipefail {0}
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        name = step.get("id", step["name"])
        result.statuses[name] = proc.returncode
        result.log += proc.stdout + proc.stderr
        result.outputs[name] = _read_commands_file(output)
        if "id" in step:
            contexts.steps[step["id"]] = result.outputs[name]
    result.summary = summary.read_text()
    result.action_outputs = {name: contexts.fill(spec["value"]) for name, spec in metadata["outputs"].items()}
    return result


def annotation_at(run: ActionRun, level: str, file: str, line: int) -> list[str]:
    return [entry for entry in run.log.splitlines() if entry.startswith(f"::{level} file={file},line={line},")]


def line_of(path: Path, needle: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_the_client_auth_preset_fails_the_action_on_orthweb_2023_at_the_allow_expired_line(tmp_path: Path) -> None:
    run = run_action({"command": "matrix", "manifests": ENVOY_2023, "policy": "preset:client-auth",
                      "backend": "local", "out": str(tmp_path / "out")}, tmp_path)
    assert run.statuses["run"] == 1, run.log
    outputs = run.action_outputs
    assert outputs["conclusion"] == "failure"
    assert int(outputs["unexpected"]) > 0 and int(outputs["passed"]) > 0
    assert outputs["report"] == str(tmp_path / "out" / "report.html") and Path(outputs["report"]).is_file()
    envoy = f"{ENVOY_2023}/envoy.yaml"
    errors = annotation_at(run, "error", envoy, line_of(ROOT / envoy, "allow_expired_certificate: true"))
    assert errors and "client-auth" in errors[0] and "cert=expired" in errors[0], run.log
    assert "client-auth: an expired client certificate is refused" in run.summary  # the rule, on the run's page


def test_without_a_policy_the_action_succeeds_on_orthweb_2023_and_still_warns_at_the_line(tmp_path: Path) -> None:
    run = run_action({"manifests": ENVOY_2023, "out": str(tmp_path / "out")}, tmp_path)
    assert not run.failed, run.log
    assert run.action_outputs["conclusion"] == "success"
    assert run.action_outputs["unexpected"] == "0"
    envoy = f"{ENVOY_2023}/envoy.yaml"
    assert annotation_at(run, "warning", envoy, line_of(ROOT / envoy, "allow_expired_certificate: true")), run.log
    assert not [entry for entry in run.log.splitlines() if entry.startswith("::error")]


def test_an_unknown_command_fails_the_action_with_an_error_and_no_report(tmp_path: Path) -> None:
    run = run_action({"command": "scna", "out": str(tmp_path / "out")}, tmp_path)
    assert run.statuses["run"] == 2
    assert "::error title=dicomtls::command: scna: use matrix, fix or probe" in run.log
    assert run.action_outputs["conclusion"] == "failure"
    assert "no results.json" in run.summary
