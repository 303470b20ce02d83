"""The threaded runner: every planned environment started once, its cells run in order, torn down, several at once.

Teardown is in ``finally`` blocks all the way down, so a failing cell, a broken environment or Ctrl-C leaves no
process behind. ``run_matrix`` runs a whole plan; ``Runner`` is its unit of work, one environment per thread, and
soak runs its rounds with ``Runner.run_cells`` on environments it started itself. ``probe`` runs its cells one by
one (``dicomtls.cell``) and shares the run's limits from here: ``STUCK_GRACE_S``, ``wait_through_interrupts``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from dicomtls.backends import Backend, EnvironmentFailed, RunningEnvironment
from dicomtls.cell import failed, not_run, run_cell, stopped
from dicomtls.crash import recorded
from dicomtls.deadlines import Deadlines
from dicomtls.environment import dying_component, keep_logs, scan_environment, start_environment, target_of
from dicomtls.findings import prove
from dicomtls.manifests.image_versions import departures
from dicomtls.manifests.located import shown
from dicomtls.plan import (EnvironmentGroup, component_versions, environment_versions, joined, log_directories,
                           plan_environments)
from dicomtls.probes import Client
from dicomtls.progress import Progress
from dicomtls.probes.clients import clients_for, is_command_line
from dicomtls.reasons import Reason
from dicomtls.releases import annotate as annotate_releases
from dicomtls.results import CellResult, EnvironmentInfo, MatrixResult, RunInfo
from dicomtls.scan_pool import ScanPool
from dicomtls.scenario import Cell, Scenario
from dicomtls.shard import Shard, positions


def run_matrix(scenarios: list[Scenario], out: Path, backend: Backend, progress: Progress,
               force_pki: bool = False, shard: Shard | None = None, scan_tls: bool = True,
               only: set[str] | None = None, jobs: int = 1, deadlines: Deadlines | None = None) -> MatrixResult:
    """``scan_tls``: scan each environment's entry (about half a second) for the report and the diagnoses;
    ``only``: run just these cell ids; ``jobs``: environments in flight at once (their cells stay in order);
    ``deadlines``: the run's and each cell's (default: from now, the defaults)."""
    deadlines = deadlines or Deadlines()
    started = time.monotonic()
    plan = plan_environments(scenarios, out / "pki", force_pki, only)
    log_dirs = log_directories(plan)
    chosen = positions([len(g.cells) for g in plan], shard)
    groups = [plan[i] for i in chosen]
    shutil.rmtree(out / "logs", ignore_errors=True)
    # Versions over the whole plan, so every shard records the same run header.
    clients = clients_for((c.probe for g in plan for c in g.cells), installed=not backend.brings_clients)
    command_line = {c.probe.client_version for g in plan for c in g.cells if is_command_line(c.probe.client)}
    per_env = environment_versions(backend, plan)
    result = MatrixResult(RunInfo(
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        backend=backend.name,
        versions=component_versions(per_env, clients.versions(command_line)),
        scenarios=[s.name for s in scenarios],
        shard=str(shard) if shard else None,
        jobs=jobs,
    ))
    scans = ScanPool(min(jobs, os.cpu_count() or 1)) if scan_tls and groups else None
    runner = Runner(backend, progress, clients.by_name, out, log_dirs, scans, deadlines)
    progress.start(sum(len(g.cells) for g in groups))
    stuck = False
    # Every environment gets its own thread, also with one job: processes die with the thread that started
    # them (PR_SET_PDEATHSIG), so that thread lives until the whole run, teardowns included, is over.
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="environment")
    try:
        # The longest environments start first, so the run is not left waiting on one that started last;
        # reports keep the plan's order whatever finished first.
        by_cost = sorted(range(len(groups)), key=lambda i: -len(groups[i].cells))
        futures = {i: pool.submit(runner.run, chosen[i], groups[i], per_env[groups[i].plan.key]) for i in by_cost}
        until = deadlines.at + STUCK_GRACE_S
        for i in range(len(groups)):
            try:
                info, cells = futures[i].result(timeout=max(0.0, until - time.monotonic()))
            except FutureTimeout:
                stuck = True
                info, cells = runner.abandon(chosen[i], groups[i], per_env[groups[i].plan.key])
            except _Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - what the runner did not catch itself: this environment's error
                error = runner.crashed(exc, groups[i].plan.name)
                info, cells = runner.abandon(chosen[i], groups[i], per_env[groups[i].plan.key], error)
            result.environments.append(info)
            result.cells.extend(cells)
    except BaseException:
        runner.cancelled.set()
        raise
    finally:
        # A thread stuck past the run's deadline is not waited for: its environment is stopped (runner.abandon).
        wait_through_interrupts(lambda: pool.shutdown(wait=not stuck, cancel_futures=True))
        wait_through_interrupts(runner.teardowns_done)
        wait_through_interrupts(backend.finish)
        if scans is not None:
            wait_through_interrupts(scans.close)
        progress.stop()
        result.run.wall_s = round(time.monotonic() - started, 2)
    annotate_releases(result, scenarios)
    return result


def auto_jobs() -> int:
    """Environments in flight when the user does not say: waiting dominates (handshakes, process starts), so two
    per core, bounded by memory (an environment with its clients takes well under 1 GiB) and by eight."""
    cores = os.cpu_count() or 1
    try:
        gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        gib = 4.0
    return max(1, min(2 * cores, int(gib // 2), 8))


STUCK_GRACE_S = 60.0
"""How long after the run's deadline an environment's thread may take to wind down (a cell's client stopped, a
component brought back after a fault) before the run stops waiting for it and stops its environment itself."""


TEARDOWN_TIMEOUT_S = 120.0
"""How long one environment's teardown may take: the local backend gives each process 5 s before SIGKILL, Docker
each container 5 s; far longer means a stop that hangs, which is reported rather than waited out."""


def wait_through_interrupts(wait: Callable[[], object]) -> None:
    """Teardown finishes even when Ctrl-C is pressed again while it runs, for callers outside
    ``app.interruptible`` (which ignores any interrupt after the first)."""
    while True:
        try:
            wait()
            return
        except KeyboardInterrupt:
            continue


class _Cancelled(Exception):
    """The run was interrupted: this environment stops at its next step."""


@dataclass
class Runner:
    """Runs one environment at a time per thread: start, scan, its cells in order, then a teardown that the
    next environment does not wait for. What fails in dicomtls itself while it does (an exception) becomes that
    environment's or cell's error, with its first line, and the traceback in OUT/crash.log.

    Public for the commands that run cells on environments they start themselves: soak calls ``run_cells`` round
    after round on the same environments and sets ``cancelled`` to stop cells in flight on other threads;
    ``run_matrix`` calls ``run`` per environment, ``abandon`` for one stuck past the deadline, then
    ``teardowns_done``."""

    backend: Backend
    progress: Progress
    clients: Mapping[str, Client | None]
    out: Path
    log_dirs: dict[str, str]
    scans: ScanPool | None  # None: no TLS scan
    deadlines: Deadlines = field(default_factory=Deadlines)
    cancelled: threading.Event = field(default_factory=threading.Event)
    _teardowns: list[tuple[threading.Thread, EnvironmentInfo]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _partial: dict[int, tuple[EnvironmentInfo, list[CellResult]]] = field(default_factory=dict)
    _running: dict[int, RunningEnvironment] = field(default_factory=dict)

    def run(self, position: int, group: EnvironmentGroup, versions: dict[str, list[str]]
            ) -> tuple[EnvironmentInfo, list[CellResult]]:
        plan = group.plan
        info = _environment_info(position, group, versions)
        cells: list[CellResult] = []
        with self._lock:
            self._partial[position] = (info, cells)
        if self.cancelled.is_set():
            raise _Cancelled
        if self.deadlines.passed():
            self._record(cells, [not_run(cell, self.deadlines) for cell in group.cells])
            return info, cells
        self.progress.environment(plan.name, "starting")
        try:
            env = start_environment(self.backend, plan, cancelled=self.cancelled.is_set, deadlines=self.deadlines)
        except Exception as exc:  # noqa: BLE001 - EnvironmentFailed, or dicomtls's own failure starting it
            if isinstance(exc, EnvironmentFailed) and exc.env is not None:
                info.logs = keep_logs(exc.env, self.out, self.log_dirs[plan.key])
            if isinstance(exc, EnvironmentFailed) and self.deadlines.passed():
                self.progress.environment(plan.name, "not started: the run's deadline passed")
                self._record(cells, [not_run(cell, self.deadlines) for cell in group.cells])
                return info, cells
            info.error = str(exc) if isinstance(exc, EnvironmentFailed) else self.crashed(exc, plan.name)
            self.progress.environment(plan.name, f"failed: {info.error}")
            self._record(cells, [CellResult(cell, "fail", Reason.ENVIRONMENT_FAILED, "the environment did not start",
                                            "read the environment's logs", (info.error,), "", "", 0.0)
                                 for cell in group.cells])
            return info, cells
        info.entry = str(env.entry)
        info.logs = {name: str(path) for name, path in env.logs.items()}
        with self._lock:
            self._running[position] = env
        try:
            if self.scans is not None:
                self.progress.environment(plan.name, "scanning TLS")
                try:
                    info.scan = scan_environment(env, self.scans.scan)
                except Exception as exc:  # noqa: BLE001 - the cells still run, without the scan's help
                    info.error = info.error or f"the TLS scan failed: {self.crashed(exc, plan.name)}"
            accepts = info.scan.accepts() if info.scan and not info.scan.error else None
            self.progress.environment(plan.name, "running")
            self.run_cells(env, group.cells, accepts, cells)
            info.findings = [prove(f, cells) for f in group.findings]
        finally:
            with self._lock:
                self._running.pop(position, None)
            self.progress.environment(plan.name, "stopping")
            self._tear_down(env, info)
        return info, cells

    def run_cells(self, env: RunningEnvironment, cells: list[Cell], accepts: dict[str, tuple[str, ...]] | None,
                  into: list[CellResult] | None = None) -> list[CellResult]:
        """The cells of a running environment in order (a soak runs them again and again on the same one);
        once a component has stopped, every later cell says so instead of a diagnosis of its own; once the
        run's deadline has passed, every later cell is ``timeout``, not run. ``into``: where each result goes
        as it comes, so a run that stops waiting for this thread keeps what it finished."""
        objects = self.out / "objects" / env.plan.key
        gone: str | None = None
        results = [] if into is None else into
        for cell in cells:
            if self.cancelled.is_set():
                raise _Cancelled
            if self.deadlines.passed():
                self._record(results, [not_run(cell, self.deadlines)])
                continue
            target = target_of(env)  # a fault cell's restarted container listens on another host port
            try:
                ran = run_cell(cell, env, target, self.clients, objects, accepts, self.backend,
                               self.deadlines) if gone is None else None
            except Exception as exc:  # noqa: BLE001 - this cell's error; the next cells still run
                self._record(results, [failed(cell, self.crashed(exc, cell.id))])
                continue
            stopped_by_us = ran is not None and ran.deadline is not None  # the client, not the path, was stopped
            if gone is None and ran is not None and ran.actual != "pass" and not stopped_by_us:
                # A pass shows the path was up; asking the backend after every cell cost a Docker list call each.
                gone = self.backend.exited(env)
            # A fault injected on purpose is the cell's subject, not a component that died on its own.
            if gone is None and ran is not None and ran.reason in PATH_BROKE and ran.fault is None \
                    and not stopped_by_us and not ran.facts.proxy_logged_no_route:
                gone = dying_component(self.backend, env, target)
            cr = ran if ran is not None and (gone is None or ran.actual == "pass") else stopped(cell, gone, ran)
            self._record(results, [cr])
        return results

    def _record(self, into: list[CellResult], done: list[CellResult]) -> None:
        for cr in done:
            with self._lock:
                into.append(cr)
            self.progress.cell_done(cr)

    def crashed(self, exc: BaseException, where: str) -> str:
        return recorded(exc, where, self.out)

    def abandon(self, position: int, group: EnvironmentGroup, versions: dict[str, list[str]], error: str | None = None
                ) -> tuple[EnvironmentInfo, list[CellResult]]:
        """An environment whose thread did not end within STUCK_GRACE_S of the run's deadline (or never started
        for one that did not), or ended in an ``error`` of dicomtls's own: the cells it finished, the others
        ``timeout`` and not run (or failed with the error), and its environment stopped from here if it runs."""
        with self._lock:
            info, done = self._partial.get(position, (_environment_info(position, group, versions), []))
            env = self._running.pop(position, None)
            done = list(done)
        if env is not None:
            self._tear_down(env, info)
        finished = {id(cr.cell) for cr in done}
        left = [cell for cell in group.cells if id(cell) not in finished]
        if error is not None:
            info.error = info.error or error
            return info, done + [failed(cell, error) for cell in left]
        info.error = info.error or (f"still busy {STUCK_GRACE_S:g} s after the run's deadline: left unfinished"
                                    + (" and stopped" if env is not None else ""))
        return info, done + [not_run(cell, self.deadlines) for cell in left]

    def _tear_down(self, env: RunningEnvironment, info: EnvironmentInfo) -> None:
        """Stop the environment and keep its logs in the background: the next one starts meanwhile."""
        def stop() -> None:
            try:
                self.backend.stop(env)
                info.logs = keep_logs(env, self.out, self.log_dirs[env.plan.key])
            except Exception as exc:  # noqa: BLE001 - reported with the environment, not lost with the thread
                info.error = info.error or f"teardown failed: {self.crashed(exc, env.plan.name)}"
            self.progress.environment(env.plan.name, "stopped")

        thread = threading.Thread(target=stop, name=f"teardown-{env.plan.name}")
        with self._lock:
            self._teardowns.append((thread, info))
        thread.start()

    def teardowns_done(self) -> None:
        """Every teardown has ended, or the one that did not within TEARDOWN_TIMEOUT_S is its environment's error."""
        with self._lock:
            pending = list(self._teardowns)
        until = time.monotonic() + TEARDOWN_TIMEOUT_S
        for thread, info in pending:
            thread.join(max(0.0, until - time.monotonic()))
            if thread.is_alive():
                info.error = info.error or f"its teardown did not end within {TEARDOWN_TIMEOUT_S:g} s"


def _environment_info(position: int, group: EnvironmentGroup, versions: dict[str, list[str]]) -> EnvironmentInfo:
    plan = group.plan
    info = EnvironmentInfo(plan.key, plan.name, group.scenarios, [c.kind for c in plan.components], "",
                           list(plan.server_names), str(plan.pki.directory), {}, position=position,
                           versions=joined(versions),
                           unhonoured=[*group.unhonoured, *departures(group.images, versions)],
                           findings=[prove(f, []) for f in group.findings], manifests=group.manifests)
    if group.source is not None:
        info.source_file, info.source_line = str(shown(group.source.file)), group.source.line
    if plan.multi_site:
        info.sites = [{"name": s.name, "server_names": list(s.server_names)} for s in plan.sites]
    return info


PATH_BROKE = frozenset({Reason.TCP_REFUSED, Reason.TLS_NO_MATCHING_SNI, Reason.TLS_HANDSHAKE_FAILED,
                        Reason.DICOM_ASSOCIATION_ABORTED, Reason.DICOM_ASSOCIATION_REJECTED, Reason.DIMSE_FAILURE,
                        Reason.STORE_NOT_VERIFIED, Reason.TIMEOUT, Reason.UNKNOWN, Reason.UPSTREAM_UNREACHABLE,
                        Reason.CONNECTION_LOST})
"""Reasons a component that is stopping produces too: no TLS alert names a live peer's objection (nor, for these
cells, the proxy's own no-route line: see ``Facts.proxy_logged_no_route``)."""
