"""The command line's conventions, over the whole task collection: chosen short flags with one meaning each, -h as
help everywhere, numbers checked by dicomtls, usage errors as one line and exit 2, and only dicomtls's options."""

from __future__ import annotations

from collections import defaultdict

import pytest
from invoke import Program

from dicomtls.cli import DicomtlsProgram, program
from dicomtls.command import PROGRAM_SHORT_FLAGS, SHORT_FLAGS, Command, Port
from dicomtls.tasks import ns


def options() -> list[tuple[str, str, list[str], object]]:
    """(task, long name, short names, kind) of every option of every task."""
    found = []
    for name in ns.task_names:
        for arg in ns[name].get_arguments():
            found.append((name, arg.name, [n for n in arg.names if len(n) == 1], arg.kind))
    return found


def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        program.run(["dicomtls", *argv])
    out, err = capsys.readouterr()
    return exited.value.code or 0, out, err  # type: ignore[return-value]


def test_every_task_is_a_command() -> None:
    assert ns.task_names and all(isinstance(ns[name], Command) for name in ns.task_names)


def test_a_short_flag_means_the_same_option_on_every_task() -> None:
    meanings: dict[str, set[str]] = defaultdict(set)
    for _, long, shorts, _ in options():
        assert len(shorts) <= 1, long
        for short in shorts:
            meanings[short].add(long)
    assert {short: longs for short, longs in meanings.items() if len(longs) > 1} == {}
    assert meanings["h"] == {"help"}
    assert not (set(meanings) & PROGRAM_SHORT_FLAGS - {"h"})  # -V and -l stay the program's on every task


def test_short_flags_are_the_chosen_ones_not_generated() -> None:
    for task, long, shorts, _ in options():
        assert shorts == ([SHORT_FLAGS[long]] if long in SHORT_FLAGS else ["h"] if long == "help" else []), \
            (task, long)


def test_every_task_takes_h_as_help() -> None:
    for name in ns.task_names:
        helps = [arg for arg in ns[name].get_arguments() if "h" in arg.names]
        assert [arg.name for arg in helps] == ["help"], name


def test_no_option_is_cast_by_invoke_into_a_number() -> None:
    """Invoke's int() cast fails inside its parser with a traceback; a Command checks numbers itself."""
    assert [(task, long) for task, long, _, kind in options() if kind in (int, float)] == []
    assert ns["up"].numbers == {"port": Port}
    assert ns["bench"].numbers == {"runs": int, "associations": int, "objects": int}


@pytest.mark.parametrize("argv", [["matrix", "-h"], ["matrix", "--help"], ["-h", "matrix"], ["diff", "-h"],
                                  ["scan", "-h"], ["bisect", "--help"]])
def test_h_prints_the_tasks_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    task = next(a for a in argv if not a.startswith("-"))
    code, out, err = run(*argv, capsys=capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"Usage: dicomtls {task} [--options]") and "-h, --help" in out


def test_matrix_help_names_its_short_flags_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run("matrix", "-h", capsys=capsys)
    assert "-s, --scenario SCENARIO" in out and "-o, --out OUT" in out and "--force-pki " in out
    assert "--shard SHARD" in out and "-h, --shard" not in out


def test_dicomtls_help_lists_no_invoke_core_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run("--help", capsys=capsys)
    assert code == 0 and "matrix" in out and "--version" in out and "--print-completion-script" in out
    ours = {arg.name for arg in DicomtlsProgram().core_args()}
    invokes = {arg.name for arg in Program().core_args() + Program().task_args()} - ours
    assert {"dry", "pty", "prompt-for-sudo-password", "config", "echo", "collection"} <= invokes
    for name in invokes:
        assert f"--{name}" not in out, name
    assert "--complete " not in out  # there for the completion scripts, not for people


@pytest.mark.parametrize("option", ["--dry", "--pty", "-f", "--echo", "--prompt-for-sudo-password"])
def test_invoke_core_options_are_refused(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(option, "matrix", capsys=capsys)
    assert code == 2 and f"unknown option {option}" in err


def test_version_still_prints(capsys: pytest.CaptureFixture[str]) -> None:
    from dicomtls import __version__
    assert run("--version", capsys=capsys)[:2] == (0, f"dicomtls {__version__}\n")


@pytest.mark.parametrize(("argv", "needles"), [
    (["matrix", "--bogus"], ["matrix has no option --bogus", "dicomtls matrix --help"]),
    (["nosuchtask"], ["no task 'nosuchtask'", "dicomtls --list"]),
    (["matrx"], ["did you mean matrix?"]),
    (["--help", "nosuchtask"], ["no task 'nosuchtask'"]),
    (["up", "--port", "abc"], ["--port abc", "port number"]),
    (["up", "-p", "8.5"], ["--port 8.5", "port number, 1 to 65535"]),
    (["up", "--port", "70000"], ["--port 70000", "port number, 1 to 65535"]),
    (["up", "--port", "0"], ["--port 0"]),
    (["bench", "--runs", "x"], ["--runs x", "whole number"]),
    (["bench", "--load", "--associations", "many"], ["--associations many"]),
    (["bench", "--load", "--objects", "nan"], ["--objects nan"]),
    (["scan"], ["scan needs TARGET (--target)"]),
    (["diff", "old.json"], ["diff needs NEW (--new)"]),
    (["bisect"], ["COMPONENT, VERSIONS and CELL"]),
    (["matrix", "--shard"], ["--shard needs a value", "dicomtls matrix --help"]),
    (["--print-completion-script", "tcsh"], ["tcsh"]),
])
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], needles: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(*argv, capsys=capsys)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dicomtls: "), err
    for needle in needles:
        assert needle in lines[0]


def test_a_number_option_reaches_the_task_as_a_number() -> None:
    seen = {}

    def body(c, port: Port | None = None, runs=3, minutes=0.5):  # type: ignore[no-untyped-def]
        seen.update(port=port, runs=runs, minutes=minutes)

    command = Command(body)
    from invoke import Context
    command(Context(), port="8042", runs="5", minutes="1.5")
    assert isinstance(seen["port"], int)
    assert seen == {"port": 8042, "runs": 5, "minutes": 1.5}
    command(Context(), port=None, runs=3, minutes=0.5)  # defaults pass through untouched
    assert seen == {"port": None, "runs": 3, "minutes": 0.5}


def test_bash_completion_script_completes_dicomtls(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run("--print-completion-script", "bash", capsys=capsys)
    assert code == 0 and "dicomtls --complete --" in out and "complete -F _complete_dicomtls" in out


def test_completion_offers_a_tasks_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run("--complete", "--", "dicomtls", "matrix", "--", capsys=capsys)
    assert code == 0 and {"--scenario", "--out", "--help", "--shard"} <= set(out.split())
    code, out, _ = run("--complete", "--", "dicomtls", "ma", capsys=capsys)
    assert "matrix" in out.split() and "--dry" not in out


@pytest.mark.parametrize("task", sorted(ns.task_names))
def test_every_task_prints_help_on_h_and_refuses_an_unknown_option(task: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(task, "-h", capsys=capsys)
    assert (code, err) == (0, "") and out.startswith(f"Usage: dicomtls {task} ")
    code, out, err = run(task, "--bogus", capsys=capsys)
    assert (code, out) == (2, "") and err == f"dicomtls: {task} has no option --bogus: see `dicomtls {task} --help`\n"


def test_a_bad_number_stops_the_command_line_before_any_task_runs(tmp_path, monkeypatch,  # type: ignore[no-untyped-def]
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("pki", "up", "--port", "x", capsys=capsys)
    assert code == 2 and "--port x" in err
    assert list(tmp_path.iterdir()) == []  # pki, first on the line, wrote no out/pki/manual
