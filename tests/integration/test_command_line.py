"""The command line as people meet it, through the clone's `invoke` and the `dicomtls` entry: -h is help on every
task, --help shows dicomtls's options only, and the shell completion script completes tasks and options."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Program

from .conftest import ROOT, invoke_env, run_invoke

pytestmark = pytest.mark.integration


def run_dicomtls(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dicomtls", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=invoke_env(tmp_path), stdin=subprocess.DEVNULL)


ENTRIES = {"invoke": run_invoke, "dicomtls": run_dicomtls}


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("args", [["matrix", "-h"], ["diff", "-h"], ["probe", "--help"]])
def test_h_prints_the_tasks_help(entry: str, args: list[str], tmp_path: Path) -> None:
    proc = ENTRIES[entry](args, tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith(f"Usage: {entry} {args[0]} [--options]")
    assert "-h, --help" in proc.stdout and "Options:" in proc.stdout


def test_dicomtls_help_lists_its_tasks_and_no_invoke_core_option(tmp_path: Path) -> None:
    proc = run_dicomtls(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "matrix" in proc.stdout and "--version" in proc.stdout
    for arg in Program().core_args():
        if arg.name not in ("help", "version", "list", "print-completion-script"):
            assert f"--{arg.name}" not in proc.stdout, arg.name


def _listed(stdout: str) -> dict[str, str]:
    """Task name -> the first line of its description, as --list prints them."""
    rows = [line.split(maxsplit=1) for line in stdout.splitlines() if line.startswith("  ") and line[2] != " "]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def test_invoke_in_the_clone_lists_the_tasks_of_dicomtls_and_the_clones_developer_tasks(tmp_path: Path) -> None:
    clone, installed = run_invoke(["--list"], tmp_path), run_dicomtls(["--list"], tmp_path)
    assert clone.returncode == installed.returncode == 0
    in_clone, in_dicomtls = _listed(clone.stdout), _listed(installed.stdout)
    assert "soak" in in_dicomtls and set(in_clone) - set(in_dicomtls) == {"docs", "fuzz"}
    assert {name: in_clone[name] for name in in_dicomtls} == in_dicomtls


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_dicomtls_tasks_and_options(tmp_path: Path) -> None:
    """The script `dicomtls --print-completion-script bash` prints, sourced in bash, as its docs say."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "dicomtls"  # the installed console script, as far as bash can tell
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m dicomtls "$@"\n')
    shim.chmod(0o755)
    script = ('eval "$(dicomtls --print-completion-script bash)"\n'
              'COMP_WORDS=(dicomtls ma); _complete_dicomtls dicomtls ma; echo "${COMPREPLY[@]}"\n'
              'COMP_WORDS=(dicomtls matrix --sc); _complete_dicomtls dicomtls --sc; echo "${COMPREPLY[@]}"\n')
    env = invoke_env(tmp_path)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    proc = subprocess.run(["bash", "--norc", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["matrix", "--scenario"]


@pytest.mark.parametrize("entry", ["invoke", "dicomtls"])
def test_help_into_a_pipe_whose_reader_left_ends_quietly(entry: str, tmp_path: Path) -> None:
    """`dicomtls --help | head -1`: no BrokenPipeError traceback; 141 (128 + SIGPIPE) as a shell reports it."""
    proc = subprocess.Popen([sys.executable, "-m", entry, "probe", "--help"], cwd=tmp_path if entry == "dicomtls"
                            else ROOT, env=invoke_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (141, "")
