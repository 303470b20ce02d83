"""Deadlines: --timeout's syntax, the watch that stops a cell's client, and how the runner reports what a deadline
ended or what failed in dicomtls itself."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dicomtls.app import probe_exit_code
from dicomtls.backends import EnvironmentPlan, RunningEnvironment
from dicomtls.backends.local import LocalCommandHost
from dicomtls.components import Address
from dicomtls.crash import CRASH_LOG
from dicomtls.deadlines import DEFAULT_CELL_S, DEFAULT_RUN_S, Deadlines, bounded, parse_timeout, stopped_at_deadline
from dicomtls.diagnose import Reason
from dicomtls.errors import UsageError
from dicomtls.pki import PkiSpec, ensure_pki
from dicomtls.plan import EnvironmentGroup, plan_environments
from dicomtls.probes import ProbeOutcome, Target
from dicomtls.results import OBSERVE, CellResult, MatrixResult, RunInfo
from dicomtls.runner import Runner
from dicomtls.scenario import Cell, Probe, parse_scenario


def test_timeout_sets_the_run_and_the_cell_deadline_in_either_order() -> None:
    both = parse_timeout("cell=60,run=900")
    assert (both.run_s, both.cell_s) == (900, 60)
    assert parse_timeout(" run=1.5 , cell=0.5 ").cell_s == 0.5
    assert (parse_timeout("run=10").cell_s, parse_timeout("cell=10").run_s) == (DEFAULT_CELL_S, DEFAULT_RUN_S)
    assert (parse_timeout(None).run_s, parse_timeout(None).cell_s) == (DEFAULT_RUN_S, DEFAULT_CELL_S)


@pytest.mark.parametrize("bad", ["60", "cell=0", "cell=-1", "cell=abc", "cell=inf", "cell=nan", "run=1,run=2",
                                 "nap=3", "", "cell=", "cell=5,"])
def test_a_timeout_that_is_not_run_or_cell_seconds_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="--timeout"):
        parse_timeout(bad)


def test_the_healthy_defaults_are_far_beyond_a_clients_own_timeouts() -> None:
    # dcmtk's backstop is 45 s, a fault cell's component gets 30 s to come back, a REST call 30 s.
    assert DEFAULT_CELL_S >= 4 * 45 and DEFAULT_RUN_S >= 10 * DEFAULT_CELL_S


def test_a_watch_stops_its_client_when_the_cell_deadline_passes() -> None:
    stopped = threading.Event()
    with Deadlines(cell_s=0.2).watch() as watch, stopped_at_deadline(stopped.set):
        assert stopped.wait(5)
    assert watch.fired and watch.which == "cell"


def test_a_client_that_ends_in_time_is_never_stopped() -> None:
    stopped = threading.Event()
    with Deadlines(cell_s=0.3).watch() as watch:
        with stopped_at_deadline(stopped.set):
            pass
        time.sleep(0.5)
    assert watch.fired and not stopped.is_set()


def test_a_client_started_after_the_deadline_is_stopped_at_once() -> None:
    with Deadlines(cell_s=0.01).watch():
        time.sleep(0.1)
        stopped = threading.Event()
        with stopped_at_deadline(stopped.set):
            assert stopped.is_set()


def test_the_runs_deadline_ends_a_cell_that_would_outlast_it() -> None:
    deadlines = Deadlines(run_s=0.2, cell_s=60)
    with deadlines.watch() as watch:
        assert watch.which == "run" and watch.limit_s == 0.2
        assert bounded(30) <= 0.2
    assert bounded(30) == 30  # outside a cell, a wait keeps its own bound


def test_a_command_past_the_cell_deadline_is_killed_with_what_it_printed() -> None:
    host = LocalCommandHost(Address("127.0.0.1", 1))
    began = time.monotonic()
    with Deadlines(cell_s=0.5).watch() as watch:
        result = host.run(["sh", "-c", "echo started; exec sleep 30"], 45)
    assert watch.passed and time.monotonic() - began < 5
    assert "started" in result.output


# The runner, with stand-in clients: what it records when a client raises, or when the run's time is up.

class _Raising:
    def run(self, target: Target, probe: Probe, workdir: Path) -> ProbeOutcome:
        raise KeyError("dcmtk-stunnel")


class _Passing:
    def run(self, target: Target, probe: Probe, workdir: Path) -> ProbeOutcome:
        return ProbeOutcome(True, "done", ("Association Accepted",), "echo")


class _Progress:
    def __init__(self) -> None:
        self.done: list[CellResult] = []

    def start(self, total: int) -> None: ...
    def environment(self, name: str, state: str) -> None: ...
    def cell_done(self, result: CellResult) -> None:
        self.done.append(result)
    def stop(self) -> None: ...


def _environment(tmp_path: Path) -> RunningEnvironment:
    pki = ensure_pki(PkiSpec(server_names=("unit.deadline.test",)), tmp_path / "pki")
    return RunningEnvironment(EnvironmentPlan("k", "env", (), None, pki), Address("127.0.0.1", 1), {}, {}, tmp_path)


def _cell(client: str, expected: str = "pass") -> Cell:
    return Cell("unit", "env", Probe(client, "none", "none", "echo"), expected, None)


def test_a_client_that_raises_is_that_cells_error_and_the_next_cell_still_runs(tmp_path: Path) -> None:
    progress = _Progress()
    runner = Runner(None, progress, {"raising": _Raising(), "passing": _Passing()}, tmp_path, {}, None)  # type: ignore[arg-type]
    results = runner.run_cells(_environment(tmp_path), [_cell("raising"), _cell("passing")], None)
    failed, passed = results
    assert failed.reason is Reason.UNKNOWN and failed.verdict == "unexpected"
    assert failed.error is not None and failed.error.startswith("KeyError: 'dcmtk-stunnel'")
    assert "KeyError" in failed.summary and "bug in dicomtls" in failed.fix
    assert "Traceback" in (tmp_path / CRASH_LOG).read_text()
    assert passed.actual == "pass" and passed.verdict == "ok"
    assert progress.done == results


def test_after_the_runs_deadline_the_cells_left_are_timeout_not_run(tmp_path: Path) -> None:
    runner = Runner(None, _Progress(), {"passing": _Passing()}, tmp_path, {}, None,  # type: ignore[arg-type]
                     Deadlines(run_s=0.0))
    results = runner.run_cells(_environment(tmp_path), [_cell("passing"), _cell("passing")], None)
    assert [(r.reason, r.deadline, r.verdict) for r in results] == [(Reason.TIMEOUT, "run", "unexpected")] * 2
    assert all("before this cell ran" in r.summary and "--timeout run=" in r.fix for r in results)


def test_a_cell_a_deadline_ended_fails_the_run_and_the_probe_even_when_observed() -> None:
    cell = _cell("dcmtk", OBSERVE)
    ended = CellResult(cell, "fail", Reason.TIMEOUT, "", "", (), "", "", 2.0, deadline="cell")
    passed = CellResult(cell, "pass", None, "", "", (), "", "", 0.1)
    result = MatrixResult(RunInfo("", "local", {}, []), cells=[passed, ended])
    assert ended.verdict == "unexpected" and result.exit_code == 1
    assert probe_exit_code(result) == 1
    assert probe_exit_code(MatrixResult(RunInfo("", "local", {}, []), cells=[passed])) == 0


ONE_ENVIRONMENT = """
name: unit-deadline
description: One environment, three cells.
pki: {topology: one-level, server_names: [unit.deadline.test]}
environments:
  - name: envoy-any
    proxy: {kind: envoy}
probes:
  - client: [pynetdicom]
    operation: [echo, store-ct, store-large]
expect:
  - match: {}
    outcome: pass
"""


def _group(tmp_path: Path) -> EnvironmentGroup:
    return plan_environments([parse_scenario(ONE_ENVIRONMENT, "unit")], tmp_path / "pki")[0]


def test_an_environment_still_busy_after_the_runs_deadline_is_reported_with_its_cells_not_run(tmp_path: Path) -> None:
    runner = Runner(None, _Progress(), {}, tmp_path, {}, None, Deadlines(run_s=0.0))  # type: ignore[arg-type]
    info, cells = runner.abandon(0, _group(tmp_path), {})
    assert info.error is not None and info.error.startswith("still busy")
    assert len(cells) == 3 and all(c.reason is Reason.TIMEOUT and c.deadline == "run" for c in cells)


def test_an_environment_whose_thread_failed_keeps_the_error_for_each_cell_left(tmp_path: Path) -> None:
    runner = Runner(None, _Progress(), {}, tmp_path, {}, None)  # type: ignore[arg-type]
    error = runner.crashed(RuntimeError("a bug\nsecond line"), "envoy-any")
    info, cells = runner.abandon(0, _group(tmp_path), {}, error)
    assert error.startswith("RuntimeError: a bug (traceback in") and "second line" not in error
    assert info.error == error
    assert all(c.reason is Reason.UNKNOWN and c.error == error and c.verdict == "unexpected" for c in cells)


@pytest.mark.parametrize("name", ["matrix", "fix", "probe", "soak"])
def test_every_task_that_runs_cells_takes_timeout(name: str) -> None:
    from dicomtls.tasks import ns

    assert "timeout" in ns[name].help and "cell=" in ns[name].help["timeout"]
