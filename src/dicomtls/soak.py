"""Soak: scenarios' cells again and again for minutes on one set of environments.

A matrix starts every environment fresh, so it cannot see what only time shows: a cell that passes on a fresh
proxy and fails on a tired one, a component whose memory keeps growing, a teardown that leaves something behind
after hours of traffic. The cells run through the matrix's own runner, so a soak's outcome means what a
matrix's means.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.table import Table

from dicomtls.backends import Backend, RunningEnvironment
from dicomtls.deadlines import Deadlines
from dicomtls.environment import keep_logs, scan_environment, start_environment
from dicomtls.plan import log_directories, plan_environments
from dicomtls.probes.clients import clients_for
from dicomtls.results import CellResult
from dicomtls.runner import Runner, wait_through_interrupts
from dicomtls.scan_pool import ScanPool
from dicomtls.scenario import Scenario

MIN_ROUNDS = 2  # one round has nothing to differ from


def outcome(result: CellResult) -> str:
    """What a round concluded for a cell, as rounds are compared: pass, or fail with its reason."""
    return "pass" if result.actual == "pass" else f"fail: {result.reason}"


@dataclass
class CellHistory:
    id: str
    outcomes: list[str] = field(default_factory=list)  # one per round
    unexpected_rounds: list[int] = field(default_factory=list)  # 1-based rounds whose verdict was not ok

    @property
    def changed(self) -> bool:
        return len(set(self.outcomes)) > 1


@dataclass
class MemoryTrend:
    """A component's resident bytes after start, then after each round."""

    environment: str
    component: str
    samples: list[int] = field(default_factory=list)

    @property
    def growth(self) -> int:
        """Since the first round ended: what the first traffic allocates (caches, pools) is not growth."""
        base = self.samples[1] if len(self.samples) > 1 else self.samples[0]
        return self.samples[-1] - base

    @property
    def second_half_growth(self) -> int:
        """Growth over the later half of the rounds: a cache that has filled stays flat here, a leak does not."""
        return self.samples[-1] - self.samples[len(self.samples) // 2]

    @property
    def peak(self) -> int:
        return max(self.samples)


@dataclass
class SoakResult:
    scenario: str  # the scenarios' names, comma-separated
    backend: str
    minutes: float
    rounds: int = 0
    wall_s: float = 0.0
    cells: list[CellHistory] = field(default_factory=list)
    memory: list[MemoryTrend] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    stopped: str | None = None  # a component that stopped during the soak, with its last log lines

    @property
    def changed(self) -> list[CellHistory]:
        return [c for c in self.cells if c.changed]

    @property
    def unexpected(self) -> list[CellHistory]:
        return [c for c in self.cells if c.unexpected_rounds]

    @property
    def exit_code(self) -> int:
        return 1 if self.changed or self.unexpected or self.leftovers or self.stopped else 0

    def to_dict(self) -> dict[str, object]:
        doc = asdict(self)
        for record, trend in zip(doc["memory"], self.memory):  # type: ignore[call-overload]
            record.update(growth=trend.growth, second_half_growth=trend.second_half_growth, peak=trend.peak)
        for record, cell in zip(doc["cells"], self.cells):  # type: ignore[call-overload]
            record["changed"] = cell.changed
        return doc


class _Quiet:
    """The runner's progress, told only when environments change state: a soak's cells run by the thousand."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def start(self, total: int) -> None: ...

    def environment(self, name: str, state: str) -> None:
        self.say(f"environment {name}: {state}")

    def cell_done(self, result: CellResult) -> None: ...

    def stop(self) -> None: ...


def _still_listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_soak(scenarios: list[Scenario], out: Path, backend: Backend, minutes: float, jobs: int,
             say: Callable[[str], None], deadlines: Deadlines | None = None) -> SoakResult:
    """Start the scenarios' environments once (one per environment they share, as a matrix does), run all their
    cells round after round until ``minutes`` are up (at least twice), sampling each component's memory after
    every round; then stop everything and look for what is left of it. ``deadlines``: the whole soak's (its
    minutes included) and each cell's; a soak the run's deadline ends has stopped early, with the cells it left
    as timeout."""
    began = time.monotonic()
    deadlines = deadlines or Deadlines().longer(minutes * 60)
    groups = plan_environments(scenarios, out / "pki")
    clients = clients_for((c.probe for g in groups for c in g.cells), installed=not backend.brings_clients)
    log_dirs = log_directories(groups)
    # scans=None: it scans each environment once itself
    runner = Runner(backend, _Quiet(say), clients.by_name, out, log_dirs, scans=None, deadlines=deadlines)
    result = SoakResult(", ".join(s.name for s in scenarios), backend.name, minutes)
    result.cells = [CellHistory(c.id) for g in groups for c in g.cells]
    history = {h.id: h for h in result.cells}
    envs: list[RunningEnvironment] = []
    remains: list[tuple[list[dict[str, object]], Path, list[int]]] = []  # handles, workdir, ports per environment
    # Local processes die with the thread that started them: these threads live until the environments stop.
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(groups), jobs)), thread_name_prefix="environment")
    # Each environment is scanned once, side by side in worker processes as a matrix scans (20 environments
    # one after another took 15 s); the workers start now, so their imports overlap the environments' starts.
    scans = ScanPool(min(len(groups), jobs, os.cpu_count() or 1))
    try:
        futures = [pool.submit(start_environment, backend, g.plan, runner.cancelled.is_set, deadlines) for g in groups]
        failure: BaseException | None = None
        for future in futures:
            try:
                env = future.result()
            except BaseException as exc:  # the others are stopped below, then this is raised
                failure = failure or exc
                continue
            envs.append(env)
            ports = [env.entry.port, *(int(url.rsplit(":", 1)[1]) for url in env.rest_urls.values())]
            remains.append((backend.detach(env), env.workdir, ports))
        if failure is not None:
            raise failure
        scanned = list(pool.map(lambda env: scan_environment(env, scans.scan), envs))
        scans.close()  # the rounds scan nothing: its workers go now (closing again below does nothing)
        accepts = [None if found.error else found.accepts() for found in scanned]
        # By the environment's log directory: unique where two scenarios' environments share a name.
        trends = {(log_dirs[env.plan.key], name): MemoryTrend(log_dirs[env.plan.key], name) for env in envs
                  for name in backend.memory(env)}
        result.memory = list(trends.values())
        _sample(backend, envs, trends, log_dirs)
        deadline = began + minutes * 60
        while result.rounds < MIN_ROUNDS or time.monotonic() < deadline:
            rounds = pool.map(lambda i: runner.run_cells(envs[i], groups[i].cells, accepts[i]), range(len(envs)))
            result.rounds += 1
            for cells in rounds:
                for cr in cells:
                    history[cr.cell.id].outcomes.append(outcome(cr))
                    if cr.verdict != "ok":
                        history[cr.cell.id].unexpected_rounds.append(result.rounds)
            _sample(backend, envs, trends, log_dirs)
            changed, unexpected = len(result.changed), len(result.unexpected)
            say(f"round {result.rounds}: {len(result.cells)} cells, {changed} changed, {unexpected} unexpected, "
                f"{time.monotonic() - began:.0f}s")
            result.stopped = next((gone for env in envs if (gone := backend.exited(env))), None)
            if result.stopped is None and deadlines.passed():
                result.stopped = f"the run's deadline of {deadlines.run_s:g} s passed (--timeout run=SECONDS)"
            if result.stopped:
                break
    except BaseException:
        runner.cancelled.set()  # cells in flight on other threads stop at their next one
        raise
    finally:
        def stop(env: RunningEnvironment) -> None:
            backend.stop(env)
            keep_logs(env, out, log_dirs[env.plan.key])

        # Side by side, as a matrix's teardowns: one after another, each waited out its Orthanc's 2 s stop.
        with ThreadPoolExecutor(max_workers=max(1, len(envs)), thread_name_prefix="teardown") as stopping:
            list(stopping.map(stop, envs))
        pool.shutdown(wait=True)
        wait_through_interrupts(scans.close)
        backend.finish()
        for handles, workdir, ports in remains:
            result.leftovers += backend.leftovers(handles, workdir)
            result.leftovers += [f"port {port} still accepting connections" for port in ports
                                 if _still_listening(port)]
        result.wall_s = round(time.monotonic() - began, 1)
    return result


def _sample(backend: Backend, envs: list[RunningEnvironment], trends: dict[tuple[str, str], MemoryTrend],
            log_dirs: dict[str, str]) -> None:
    for env in envs:
        for name, resident in backend.memory(env).items():
            if (log_dirs[env.plan.key], name) in trends:
                trends[(log_dirs[env.plan.key], name)].samples.append(resident)


def tables(result: SoakResult) -> list[Table]:
    """Memory per component, then every cell that changed or was unexpected in some round."""
    mib = 2**20
    memory = Table(title=f"soak {result.scenario} on {result.backend}: {result.rounds} rounds of "
                         f"{len(result.cells)} cells in {result.wall_s:.0f}s; resident memory (MiB)")
    for name in ("environment", "component", "after start", "after round 1", "last", "peak", "growth",
                 "in the 2nd half"):
        memory.add_column(name, justify="left" if name in ("environment", "component") else "right")
    for t in result.memory:
        after_first = f"{t.samples[1] / mib:.1f}" if len(t.samples) > 1 else ""
        memory.add_row(t.environment, t.component, f"{t.samples[0] / mib:.1f}", after_first,
                       f"{t.samples[-1] / mib:.1f}", f"{t.peak / mib:.1f}", f"{t.growth / mib:+.1f}",
                       f"{t.second_half_growth / mib:+.1f}")
    shown = [memory]
    odd = [c for c in result.cells if c.changed or c.unexpected_rounds]
    if odd:
        cells = Table(title="cells that changed between rounds or were not as expected", title_style="bold red")
        for name in ("cell", "outcomes by round", "unexpected in rounds"):
            cells.add_column(name)
        for c in odd:
            cells.add_row(c.id, ", ".join(f"{i}: {o}" for i, o in enumerate(c.outcomes, 1) if
                                          i == 1 or o != c.outcomes[i - 2]),
                          ", ".join(map(str, c.unexpected_rounds)))
        shown.append(cells)
    return shown


def write(result: SoakResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
