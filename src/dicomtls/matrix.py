"""Run a matrix: start each distinct environment once, run its cells, diagnose failures, tear down.

Teardown is in ``finally`` blocks all the way down, so a failing cell, a
broken environment or Ctrl-C leaves no process behind.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import ssl
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from cryptography import x509

from dicomtls.backends import (SOLE_SITE, Backend, EnvironmentFailed, EnvironmentPlan, LogCursor, PlannedSite,
                               RunningEnvironment, stopped_on_failure)
from dicomtls.crash import recorded
from dicomtls.findings import Finding, ProvedFinding, prove
from dicomtls.deadlines import CellWatch, Deadlines
from dicomtls.diagnose import (EXPLANATIONS, Diagnosis, Facts, Reason, Symptoms, deadline_explanation,
                               diagnose)
from dicomtls.faults import FaultReport, Injection
from dicomtls.orthanc_rest import verify_stored
from dicomtls.pki import PkiFiles, ensure_pki
from dicomtls.probes import Client, ProbeOutcome, Target
from dicomtls.probes.clients import COMMAND_LINE, clients_for
from dicomtls.probes.dcmtk import Dcmtk
from dicomtls.probes.pynetdicom import Pynetdicom, echo_through
from dicomtls.report import redact
from dicomtls.scan import Endpoint, ScanResult, scan
from dicomtls.scan_pool import ScanPool
from dicomtls.scenario import Cell, Scenario, addressed_site, environment_key
from dicomtls.shard import Shard, positions

READY_TIMEOUT_S = 30.0
OBSERVE = "observe"  # a cell's expectation when nothing is expected: `invoke probe` of an existing endpoint
NOT_VERIFIED = "not verified"  # how a passing C-STORE's detail starts when no REST API could check it


@dataclass
class CellResult:
    cell: Cell
    actual: str  # pass | fail
    reason: Reason | None
    summary: str
    fix: str
    evidence: tuple[str, ...]
    command: str
    detail: str
    duration_s: float
    sent_bytes: int | None = None
    site: str | None = None  # in an environment with sites: the site whose server took the association
    certificate: str | None = None  # the subject of the leaf certificate the client was served, when it saw one
    fault: FaultReport | None = None  # a fault cell: what was injected, what client and proxy saw, the retry
    facts: Facts = field(default_factory=Facts)  # what the diagnosis established: decisions read these, not summary
    deadline: str | None = None  # "cell" or "run": the deadline that ended the cell (its reason is timeout)
    error: str | None = None  # dicomtls's own failure while running the cell, its first line

    @property
    def verdict(self) -> str:
        if self.deadline is not None or self.error is not None:
            return "unexpected"  # not an outcome at all: the cell did not end, or dicomtls failed running it
        if self.fault is not None and not self.fault.retry_ok:
            return "unexpected"  # whatever the client saw, the object was lost
        if self.cell.expected == OBSERVE:
            return "ok"
        same = self.actual == self.cell.expected and (self.actual == "pass" or self.reason == self.cell.expected_reason)
        if same and self.actual == "pass" and self.cell.expected_site is not None:
            same = self.site == self.cell.expected_site
        return "ok" if same else "unexpected"


@dataclass
class EnvironmentInfo:
    key: str
    name: str
    scenarios: list[str]
    components: list[str]
    entry: str
    server_names: list[str]
    pki_dir: str
    logs: dict[str, str]  # relative to the run's --out directory once the environment has stopped
    error: str | None = None
    position: int = 0  # index in the whole plan, so merged shards keep an unsharded run's order
    scan: ScanResult | None = None  # the entry's TLS versions, suites, chains and DICOM profile verdicts
    versions: dict[str, str] = field(default_factory=dict)  # component kind -> the version this environment runs
    unhonoured: list[str] = field(default_factory=list)  # manifest fields the environment does not reproduce
    findings: list[ProvedFinding] = field(default_factory=list)  # what the manifests do, with the cells showing it
    sites: list[dict[str, object]] = field(default_factory=list)  # name and server_names of each site behind one proxy


@dataclass
class RunInfo:
    started: str
    backend: str
    versions: dict[str, str]
    scenarios: list[str]
    wall_s: float = 0.0
    shard: str | None = None  # "K/N" when this run is one shard of a larger one
    jobs: int = 1  # environments in flight at once


@dataclass
class MatrixResult:
    run: RunInfo
    environments: list[EnvironmentInfo] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when a cell was not as expected, or when something did not run at all: an environment that failed
        to start or a component that stopped fails an observed run too, since its cells prove nothing."""
        broken = any(e.error for e in self.environments) or any(
            c.reason is Reason.ENVIRONMENT_FAILED for c in self.cells)
        return 0 if all(c.verdict == "ok" for c in self.cells) and not broken else 1


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def environment(self, name: str, state: str) -> None: ...
    def cell_done(self, result: CellResult) -> None: ...
    def stop(self) -> None: ...


@dataclass
class _EnvGroup:
    plan: EnvironmentPlan
    cells: list[Cell]
    scenarios: list[str]
    unhonoured: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def plan_environments(scenarios: list[Scenario], pki_root: Path, force_pki: bool = False,
                      only: set[str] | None = None) -> list[_EnvGroup]:
    """Group cells by what actually runs, so an environment shared by two scenarios starts once.

    ``only``: cell ids to keep (a bisect runs one cell); environments left without cells are not planned.
    """
    groups: OrderedDict[str, _EnvGroup] = OrderedDict()
    pki_cache: dict[str, PkiFiles] = {}
    for scenario in scenarios:
        spec = scenario.pki_spec()
        if spec.digest() not in pki_cache:
            pki_cache[spec.digest()] = ensure_pki(spec, pki_root / spec.digest(), force=force_pki)
        pki = pki_cache[spec.digest()]
        for cell in scenario.cells():
            if only is not None and cell.id not in only:
                continue
            env = scenario.environment(cell.environment)
            key = environment_key(spec, env)
            if key not in groups:
                sites = tuple(
                    PlannedSite(SOLE_SITE, spec.server_names, server, pki.server) if site is None
                    else PlannedSite(site, dict(spec.sites)[site], server, pki.site(site))
                    for site, server in env.servers()
                )
                proxy = env.proxy.build("proxy") if env.proxy is not None else None
                groups[key] = _EnvGroup(EnvironmentPlan(key, env.name, sites, proxy, pki), [], [])
            groups[key].cells.append(cell)
            if cell.probe.fault != "none" and not groups[key].plan.restartable:
                groups[key].plan = replace(groups[key].plan, restartable=True)
            groups[key].unhonoured += [u for u in env.unhonoured if u not in groups[key].unhonoured]
            groups[key].findings += [f for f in env.findings if f not in groups[key].findings]
            if scenario.name not in groups[key].scenarios:
                groups[key].scenarios.append(scenario.name)
    return list(groups.values())


def environment_versions(backend: Backend, groups: list[_EnvGroup]) -> dict[str, dict[str, list[str]]]:
    """Per environment key, the versions of each kind of component it runs (two sites may run two Orthancs),
    each distinct component asked once."""
    seen: dict[str, str] = {}
    per_env: dict[str, dict[str, list[str]]] = {}
    for group in groups:
        found = per_env.setdefault(group.plan.key, {})
        for component in group.plan.components:
            identity = f"{component.kind}:{component.options.version}"
            if identity not in seen:
                seen[identity] = backend.component_version(component)
            if seen[identity] not in found.setdefault(component.kind, []):
                found[component.kind].append(seen[identity])
    return per_env


def joined(versions: dict[str, list[str]]) -> dict[str, str]:
    """Versions as results.json shows them: "1.10.1, 1.12.7" where a kind runs in several versions."""
    return {kind: ", ".join(values) for kind, values in versions.items()}


def component_versions(per_env: dict[str, dict[str, list[str]]], dcmtk: Dcmtk | None,
                       dcmtk_versions: set[str]) -> dict[str, str]:
    """The run header: every version of each component that ran, so mixed versions show."""
    found: dict[str, list[str]] = {}
    for versions_of_env in per_env.values():
        for kind, values in versions_of_env.items():
            found.setdefault(kind, []).extend(v for v in values if v not in found[kind])
    versions = joined(found)
    if dcmtk is not None:
        versions["dcmtk"] = ", ".join(sorted({dcmtk.version(v) for v in dcmtk_versions}))
    versions["pynetdicom"] = Pynetdicom().version()
    versions["openssl"] = ssl.OPENSSL_VERSION
    versions["python"] = platform.python_version()
    return versions


def start_environment(backend: Backend, plan: EnvironmentPlan, cancelled: Callable[[], bool] = lambda: False,
                      deadlines: Deadlines | None = None, **kwargs: object) -> RunningEnvironment:
    """Start and wait until a real C-ECHO passes through the whole path, or fail with the logs.

    ``cancelled``: asked while waiting, so an interrupted run does not wait out the readiness timeout;
    ``deadlines``: the run's, which the wait does not outlast either."""
    env = backend.start(plan, **kwargs)  # type: ignore[arg-type]
    with stopped_on_failure(backend, env):
        target = target_of(env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        if deadlines is not None and deadlines.at < deadline:
            deadline = deadlines.at
        for site in plan.sites:  # each site's path, by its own name
            detail = ""
            while True:
                env.connections += 1
                ok, detail = echo_through(target, site.server_names[0])
                if ok:
                    break
                if gone := backend.exited(env):
                    raise EnvironmentFailed(f"{plan.name}: {gone}")
                if cancelled():
                    raise KeyboardInterrupt
                if time.monotonic() > deadline:
                    if deadlines is not None and deadlines.passed():
                        raise EnvironmentFailed(f"{plan.name}: the run's deadline passed while waiting for a C-ECHO "
                                                f"through {env.entry} to {site.server_names[0]} ({detail})")
                    raise EnvironmentFailed(f"{plan.name}: no C-ECHO through {env.entry} to {site.server_names[0]} "
                                            f"within {READY_TIMEOUT_S:.0f}s ({detail})")
                time.sleep(0.1)
        env.settle()
    return env


def target_of(env: RunningEnvironment) -> Target:
    plan = env.plan
    sites = {site.name: site.server_names[0] for site in plan.sites} if plan.multi_site else {}
    return Target(env.entry, plan.server_names, plan.pki, command_hosts=env.command_hosts, sites=sites)


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
    clients = clients_for((c.probe for g in plan for c in g.cells), installed=backend.name == "local")
    dcmtk_cells = [c for g in plan for c in g.cells if c.probe.client in COMMAND_LINE]
    per_env = environment_versions(backend, plan)
    result = MatrixResult(RunInfo(
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        backend=backend.name,
        versions=component_versions(per_env, clients.dcmtk, {c.probe.client_version for c in dcmtk_cells}),
        scenarios=[s.name for s in scenarios],
        shard=str(shard) if shard else None,
        jobs=jobs,
    ))
    scans = ScanPool(min(jobs, os.cpu_count() or 1)) if scan_tls and groups else None
    runner = _Runner(backend, progress, clients.by_name, out, log_dirs, scans, deadlines)
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
class _Runner:
    """Runs one environment at a time per thread: start, scan, its cells in order, then a teardown that the
    next environment does not wait for. What fails in dicomtls itself while it does (an exception) becomes that
    environment's or cell's error, with its first line, and the traceback in OUT/crash.log."""

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

    def run(self, position: int, group: _EnvGroup, versions: dict[str, list[str]]
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

    def abandon(self, position: int, group: _EnvGroup, versions: dict[str, list[str]], error: str | None = None
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


def _environment_info(position: int, group: _EnvGroup, versions: dict[str, list[str]]) -> EnvironmentInfo:
    plan = group.plan
    info = EnvironmentInfo(plan.key, plan.name, group.scenarios, [c.kind for c in plan.components], "",
                           list(plan.server_names), str(plan.pki.directory), {}, position=position,
                           versions=joined(versions), unhonoured=list(group.unhonoured),
                           findings=[prove(f, []) for f in group.findings])
    if plan.multi_site:
        info.sites = [{"name": s.name, "server_names": list(s.server_names)} for s in plan.sites]
    return info


def not_run(cell: Cell, deadlines: Deadlines) -> CellResult:
    """A cell the run's deadline left no time for."""
    summary, fix = deadline_explanation("run", deadlines.run_s, ran=False)
    return CellResult(cell, "fail", Reason.TIMEOUT, summary, fix, (), "", "", 0.0, deadline="run")


def failed(cell: Cell, error: str) -> CellResult:
    """A cell dicomtls itself failed to run: unknown, with the error, never a verdict on the endpoint."""
    return CellResult(cell, "fail", Reason.UNKNOWN, f"dicomtls failed while running this cell: {error}",
                      "this is a bug in dicomtls, not in the endpoint: report it with the traceback", (error,), "", "",
                      0.0, error=error)


PATH_BROKE = frozenset({Reason.TCP_REFUSED, Reason.TLS_NO_MATCHING_SNI, Reason.TLS_HANDSHAKE_FAILED,
                        Reason.DICOM_ASSOCIATION_ABORTED, Reason.DICOM_ASSOCIATION_REJECTED, Reason.DIMSE_FAILURE,
                        Reason.STORE_NOT_VERIFIED, Reason.TIMEOUT, Reason.UNKNOWN, Reason.UPSTREAM_UNREACHABLE,
                        Reason.CONNECTION_LOST})
"""Reasons a component that is stopping produces too: no TLS alert names a live peer's objection (nor, for these
cells, the proxy's own no-route line: see ``Facts.proxy_logged_no_route``)."""

DYING_GRACE_S = 10.0


def dying_component(backend: Backend, env: RunningEnvironment, target: Target) -> str | None:
    """After a cell that failed the way a stopping component fails it: the component that stopped, if one did.

    A process that is shutting down has already cut the connection but may not have exited yet, so asking
    once is a race. The path is asked instead, with the readiness C-ECHO: if it still passes, the failure is
    the cell's own; if not, something is going away, and its exit is waited for."""
    env.connections += 1
    ok, _ = echo_through(target, env.plan.server_names[0], timeout_s=5.0)
    env.settle()
    if ok:
        return None
    deadline = time.monotonic() + DYING_GRACE_S
    while time.monotonic() < deadline:
        if gone := backend.exited(env):
            return gone
        time.sleep(0.05)
    return None


def stopped(cell: Cell, gone: str | None, ran: CellResult | None) -> CellResult:
    """A cell that failed because a component had stopped, or was not run for that: said once, plainly,
    rather than as a misleading diagnosis of its own."""
    return CellResult(cell, "fail", Reason.ENVIRONMENT_FAILED, "a component stopped during the run",
                      "read the environment's logs", (gone or "",), ran.command if ran else "", "",
                      ran.duration_s if ran else 0.0)


def log_directories(plan: list[_EnvGroup]) -> dict[str, str]:
    """OUT/logs/<environment>/ per environment key; a name two environments share gets the key appended."""
    names = Counter(g.plan.name for g in plan)
    return {g.plan.key: g.plan.name if names[g.plan.name] == 1 else f"{g.plan.name}-{g.plan.key}" for g in plan}


def keep_logs(env: RunningEnvironment, out: Path, directory: str) -> dict[str, str]:
    """Copy a stopped environment's logs, redacted, to OUT/logs/DIRECTORY/, so reports link them relatively
    and a CI artifact of OUT carries them without the PKI."""
    kept: dict[str, str] = {}
    for name, path in env.logs.items():
        inside = path.relative_to(env.workdir) if path.is_relative_to(env.workdir) else Path(path.name)
        target = out / "logs" / directory / inside
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(redact(text))
        kept[name] = target.relative_to(out).as_posix()
    return kept


def scan_environment(env: RunningEnvironment, scanner: Callable[[Endpoint], ScanResult] = scan) -> ScanResult:
    """Scan the entry as a client with the right SNI and the valid client certificate would reach it."""
    plan = env.plan
    others = tuple(site.server_names[0] for site in plan.sites[1:])
    result = scanner(Endpoint(env.entry.host, env.entry.port, plan.server_names[0], plan.pki.ca_cert,
                           plan.pki.client_fullchain, plan.pki.client_key, other_names=others))
    recount_connections(env)
    return result


def recount_connections(env: RunningEnvironment, quiet_s: float = 0.3, timeout_s: float = 5.0) -> None:
    """A scan opens connections nobody counted: wait until the proxy has logged them all, then take its count."""
    if env.connection_log is None:
        return
    deadline = time.monotonic() + timeout_s
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            now = env.connection_log.read_bytes().count(b"\n")
        except OSError:
            now = 0
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        time.sleep(0.05)
    env.connections = count


def run_cell(cell: Cell, env: RunningEnvironment, target: Target, clients: Mapping[str, Client | None],
             objects: Path, server_accepts: dict[str, tuple[str, ...]] | None = None,
             backend: Backend | None = None, deadlines: Deadlines | None = None) -> CellResult:
    """``backend``: the environment's, to inject the cell's fault with; then the cell ends with the component
    back and the object sent again (dicomtls.faults). ``deadlines``: a cell still running at the cell's (or the
    run's) deadline has its client stopped and is ``timeout``, with what was seen until then."""
    with (deadlines or Deadlines()).watch() as watch:
        result, outcome, cursor = _run_cell(cell, env, target, clients, objects, server_accepts, backend)
    if watch.passed:
        return _at_deadline(result, outcome, cursor, watch)
    return result


def _run_cell(cell: Cell, env: RunningEnvironment, target: Target, clients: Mapping[str, Client | None],
              objects: Path, server_accepts: dict[str, tuple[str, ...]] | None,
              backend: Backend | None) -> tuple[CellResult, ProbeOutcome, LogCursor]:
    cursor = env.log_cursor()
    began = time.monotonic()
    fault = None
    if cell.probe.fault != "none":
        assert backend is not None, f"{cell.id} injects a fault: pass the backend"
        fault = Injection(cell.probe.fault, backend, env)
        fault.before()
    env.connections += 1
    client = clients[cell.probe.client]
    assert client is not None, f"no {cell.probe.client} client for {cell.id}"
    if fault is not None and fault.while_sending is not None:
        outcome = Pynetdicom().run(target, cell.probe, objects, while_sending=fault.while_sending)
    else:
        outcome = client.run(target, cell.probe, objects)
    if fault is None or not fault.kills_entry:  # a killed proxy never logs the connection it was carrying
        env.settle()
    try:
        result = _judge(cell, env, target, outcome, cursor, began, server_accepts)
        if fault is not None:
            result.fault = _after_fault(fault, env, cell, outcome, result)
    finally:
        if outcome.sent is not None:
            outcome.sent.path.unlink(missing_ok=True)
    if result.fault is not None:
        result.duration_s = round(time.monotonic() - began, 3)
    return result, outcome, cursor


SEEN_LOG_LINES = 10  # of the logs' lines during a cell that a deadline ended, the last ones are its evidence


def _at_deadline(result: CellResult, outcome: ProbeOutcome, cursor: LogCursor, watch: CellWatch) -> CellResult:
    """The cell as its deadline ended it: ``timeout``, with what the client said and the logs gained until then."""
    summary, fix = deadline_explanation(watch.which, watch.limit_s, ran=True)
    logged = [f"proxy: {name}: {line}" for name, lines in cursor.new_lines().items() for line in lines]
    seen = (*(f"client: {line}" for line in outcome.lines), *logged[-SEEN_LOG_LINES:])
    return replace(result, actual="fail", reason=Reason.TIMEOUT, summary=summary, fix=fix, deadline=watch.which,
                   evidence=seen or ("nothing: the client said nothing and no log gained a line",))


def _after_fault(fault: Injection, env: RunningEnvironment, cell: Cell, outcome: ProbeOutcome,
                 result: CellResult) -> FaultReport:
    """The component back, the interrupted object looked for, the same object sent again and verified."""
    report = fault.report
    report.client_saw = next((e.removeprefix("client: ") for e in result.evidence if e.startswith("client: ")),
                             outcome.lines[-1] if outcome.lines else "")
    logged = [e.removeprefix("proxy: ") for e in result.evidence if e.startswith("proxy: ")]
    proxy = env.plan.proxy.kind if env.plan.proxy is not None else ""
    by_proxy = [line for line in logged if proxy and line.startswith(proxy)]
    others = "".join(f" ({line})" for line in logged if line not in by_proxy)
    silent = "nothing: it was killed before it logged the connection" if fault.kills_entry else "nothing"
    report.proxy_logged = by_proxy[0] if by_proxy else f"{silent}{others}"
    try:
        fault.bring_back(lambda: target_of(env))
    except EnvironmentFailed as exc:
        report.retry = f"not retried: {exc}"
        result.reason, result.actual = Reason.ENVIRONMENT_FAILED, "fail"
        result.summary, result.fix = "the component did not come back after the fault", "read the environment's logs"
        result.facts = Facts()
        result.evidence = (*result.evidence, str(exc))
        return report
    recount_connections(env)
    if outcome.sent is None:
        report.retry = "not retried: the client sent no object"
    else:
        fault.prove_nothing_lost(target_of(env), cell.probe, outcome.sent, result.actual == "pass")
    return report


def _judge(cell: Cell, env: RunningEnvironment, target: Target, outcome: ProbeOutcome, cursor: LogCursor,
           began: float, server_accepts: dict[str, tuple[str, ...]] | None) -> CellResult:
    """The cell's result from what the client saw, Orthanc's REST API and, for a failure, the logs."""
    detail = ""
    stage = outcome.stage
    ok = outcome.ok
    site = None
    if env.plan.multi_site and outcome.stage != "connect":
        site = _site_reached(env, cursor)
    if ok and outcome.sent is not None and cell.expected == OBSERVE and not env.rest_url:
        # An existing endpoint probed without its Orthanc REST API: say so rather than claim delivery.
        # A matrix cell always has its REST API, and a store it cannot check fails.
        detail = f"{NOT_VERIFIED}: the C-STORE answered success, but no Orthanc REST API was given to check it"
    elif ok and outcome.sent is not None:
        ok, detail, holder = _verify_everywhere(env, outcome)
        site = holder or site
        if not ok:
            stage = "verify"
    duration = round(time.monotonic() - began, 3)
    size = outcome.sent.size if outcome.sent else None
    addressed = addressed_site(cell.probe.sni, [s.name for s in env.plan.sites]) if env.plan.multi_site else None
    if ok and addressed is not None and site != addressed:
        summary, fix = EXPLANATIONS[Reason.MISROUTED]
        asked = target.sni(cell.probe.sni)
        taken = f"site {site}'s server took the association" if site else "no site's server logged the association"
        evidence = (f"the client asked for {asked} (site {addressed}); {taken}",)
        return CellResult(cell, "fail", Reason.MISROUTED, summary, fix, evidence, outcome.command, detail, duration,
                          size, site, outcome.peer_certificate)
    if ok:
        return CellResult(cell, "pass", None, "", "", (), outcome.command, detail, duration, size, site,
                          outcome.peer_certificate)
    diagnosis = _diagnose(cell, outcome, stage, cursor, detail, target, server_accepts, terminator(env.plan))
    # Only a certificate every run of the cell sees is reported: see Diagnosis.server_refused_client.
    served = None if diagnosis.server_refused_client else outcome.peer_certificate
    return CellResult(cell, "fail", diagnosis.reason, diagnosis.summary, diagnosis.fix, diagnosis.evidence,
                      outcome.command, detail, duration, size, site, served, facts=diagnosis.facts)


_ASSOCIATION = re.compile(r"Incoming connection from AET \S")  # an A-ASSOCIATE-RQ; a bare TCP probe names no AET


def _site_reached(env: RunningEnvironment, cursor: LogCursor) -> str | None:
    """The site whose Orthanc logged an association during the cell (Orthanc logs it before it accepts it)."""
    lines = cursor.new_lines()
    for site in env.plan.sites:
        if any(_ASSOCIATION.search(line) for line in lines.get(env.plan.component_name(site), ())):
            return site.name
    return None


def _verify_everywhere(env: RunningEnvironment, outcome: ProbeOutcome) -> tuple[bool, str, str | None]:
    """The sent object, intact, in exactly one site's Orthanc (checked through every site's REST API).

    Returns (ok, detail, the site holding it)."""
    assert outcome.sent is not None
    checks = {site: verify_stored(url, outcome.sent) for site, url in env.rest_urls.items()}
    holders = [site for site, check in checks.items() if check.ok]
    if not env.plan.multi_site:
        check = next(iter(checks.values()))
        return check.ok, check.detail, None
    if len(holders) == 1:
        others = ", ".join(site for site in checks if site != holders[0])
        return True, f"{holders[0]}: {checks[holders[0]].detail}; not in {others}", holders[0]
    if holders:
        return False, f"the object arrived in {len(holders)} sites: {', '.join(holders)}", None
    return False, "; ".join(f"{site}: {check.detail}" for site, check in checks.items()), None


def _diagnose(cell: Cell, outcome: ProbeOutcome, stage: str, cursor: LogCursor, detail: str,
              target: Target, server_accepts: dict[str, tuple[str, ...]] | None = None,
              server_kind: str | None = None) -> Diagnosis:
    lines = cursor.new_lines()
    proxy_lines = tuple(f"{name}: {line}" for name, found in lines.items() for line in found)
    client_lines = outcome.lines + ((detail,) if detail else ())
    identity = target.client_identity(cell.probe.client_cert)
    return diagnose(Symptoms(
        client_lines=client_lines,
        proxy_lines=proxy_lines,
        sent_sni=cell.probe.sni != "none",
        sent_client_cert=cell.probe.client_cert,
        dicom_stage=stage,
        client_cert_expired_on=expired_on(identity[0]) if identity else None,
        offered=outcome.offered,
        server_accepts=server_accepts,
        transport=cell.probe.transport,
        peer_certificate=outcome.peer_certificate,
        server_kind=server_kind,
    ))


def terminator(plan: EnvironmentPlan) -> str | None:
    """The kind of the component that terminates TLS: the proxy, or the server behind one that passes it through."""
    if plan.proxy is not None and plan.proxy.terminates_tls():
        return plan.proxy.kind
    return plan.sites[0].server.kind if plan.sites else None


def expired_on(cert_path: Path) -> str | None:
    """The leaf's notAfter, if it is in the past."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.not_valid_after_utc < datetime.now(timezone.utc):
        return cert.not_valid_after_utc.isoformat(timespec="seconds")
    return None
