"""The local backend: every component is a process on loopback with its own working directory.

Ports are chosen free at start. Processes run in their own session so a
terminal's Ctrl-C reaches only dicomtls, which then tears them down; in a
matrix run they also get PR_SET_PDEATHSIG so that even a SIGKILLed dicomtls
leaves nothing behind. ``invoke up`` starts them detached instead.
"""

from __future__ import annotations

import ctypes
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from dicomtls.backends import (CommandResult, EnvironmentFailed, EnvironmentPlan, RunningEnvironment, log_tail,
                               stopped_on_failure)
from dicomtls.components import Address, Component, PkiPaths, Placement, SiteRoute
from dicomtls.deadlines import bounded, stopped_at_deadline
from dicomtls.errors import UsageError
from dicomtls.pki import ServerIdentity

HOST = "127.0.0.1"
PORT_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


@dataclass
class LocalProcess:
    component: str
    pid: int
    start_time: str  # /proc/PID/stat field 22, so a recycled PID is never signalled

    def alive(self) -> bool:
        return _start_time(self.pid) == self.start_time


@dataclass(frozen=True)
class _Relaunch:
    """How a component was started, so ``start_component`` can start it again exactly so."""

    component: str
    argv: tuple[str, ...]
    workdir: Path
    log_path: Path
    listen: tuple[Address, ...]
    detached: bool


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return fields[19]


_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded here: between fork and exec nothing may take a lock


def _die_with_parent(parent: int) -> None:
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # dicomtls died between fork and prctl: no signal will come (seen once in 16 loops)
        os._exit(1)


_handed_out: set[int] = set()
_handing_out = threading.Lock()  # environments start side by side
_LOWEST_PORT = 20000


def free_port() -> int:
    """A free port below the kernel's ephemeral range, never handed out twice by this process.

    A port from bind(0) comes from the ephemeral range: the next bind(0), or any client's outgoing
    connection, can take it before the component binds it (seen: Orthanc's REST and DICOM ports
    given the same number)."""
    high = _ephemeral_range_start()
    with _handing_out:
        for _ in range(1000):
            port = random.randrange(_LOWEST_PORT, high)
            if port not in _handed_out and not port_in_use(port):
                _handed_out.add(port)
                return port
    raise EnvironmentFailed(f"no free port found on {HOST} between {_LOWEST_PORT} and {high}")


def release_port(port: int) -> None:
    """Hand ``port`` out again: what listened on it is gone (a client's per-cell process), and a long soak would
    otherwise use the range up."""
    with _handing_out:
        _handed_out.discard(port)


def _ephemeral_range_start() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, _LOWEST_PORT + 1000)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def pki_paths(plan: EnvironmentPlan, identity: ServerIdentity | None = None) -> PkiPaths:
    """The PKI as a component sees it; ``identity``: the server certificate it presents (a site's)."""
    p = plan.pki
    own = identity or p.server
    return PkiPaths(
        ca_cert=str(p.ca_cert),
        ca_bundle=str(p.ca_bundle),
        server_key=str(own.key),
        server_fullchain=str(own.fullchain),
        mismatched_server_key=str(p.mismatched_server_key),
        mismatched_server_fullchain=str(p.mismatched_server_fullchain),
        crl=str(p.crl),
    )


class LocalBackend:
    name = "local"
    brings_clients: ClassVar[bool] = False  # the probes run this machine's dcmtk and stunnel
    runs_upstream_images: ClassVar[bool] = False  # installed programs (a bisect: each version's wheel)

    def __init__(self, workroot: Path, executables: dict[str, str] | None = None) -> None:
        self.workroot = workroot.resolve()  # components run in their own directories and read configs by this path
        self.executables = executables or {}  # kind -> a specific build, e.g. each version of a bisect

    def executable(self, component: Component) -> str:
        """The build given for this kind, else DICOMTLS_<KIND>_BIN, else PATH, the venv, sbin."""
        if component.options.image is not None:
            raise UsageError(f"{component.kind} runs from image {component.options.image}: use --backend docker")
        variable = f"DICOMTLS_{component.kind.upper().replace('-', '_')}_BIN"
        found = self.executables.get(component.kind) or os.environ.get(variable)
        if found:
            if not (os.path.isfile(found) and os.access(found, os.X_OK)):
                raise UsageError(f"{variable}={found} is not an executable file: fix the path or unset {variable}")
        else:
            found = shutil.which(component.executable_name, path=_search_path())
        if not found:
            raise UsageError(f"{component.kind}: {component.executable_name} not found: {component.install_hint}")
        wanted = component.options.version
        if wanted and (have := component.version(found)) != wanted:
            raise UsageError(f"{component.kind} {wanted} is asked for but {found} is {have}: "
                             f"use --backend docker, or point {variable} at a {wanted} binary")
        return found

    def start(self, plan: EnvironmentPlan, *, detached: bool = False, entry_port: int | None = None) -> RunningEnvironment:
        envdir = self.workroot / f"{plan.name}-{plan.key}"
        if envdir.exists():
            shutil.rmtree(envdir)
        envdir.mkdir(parents=True)
        if entry_port is not None and port_in_use(entry_port):
            raise UsageError(f"port {entry_port} on {HOST} is already in use: stop what listens there or pick another --port")

        env = RunningEnvironment(plan=plan, entry=Address(HOST, 0), rest_urls={}, logs={}, workdir=envdir,
                                 client_address=HOST)  # the servers reach this machine on loopback
        with stopped_on_failure(self, env):
            routes: list[SiteRoute] = []
            for site in plan.sites:
                is_entry = plan.proxy is None
                listen = self._run(env, site.server, plan.component_name(site), pki_paths(plan, site.identity), (),
                                   entry_port if is_entry else None, detached)
                env.rest_urls[site.name] = f"http://{listen['http']}"
                routes.append(SiteRoute(site.name, site.server_names, listen["dicom"], str(site.identity.fullchain),
                                        str(site.identity.key), listen["http"]))
                env.entry = listen["dicom"]
            if plan.proxy is not None:
                listen = self._run(env, plan.proxy, plan.proxy.kind, pki_paths(plan), tuple(routes), entry_port,
                                   detached)
                env.entry = listen["dicom"]
                env.web_entry = listen.get("web")
        env.command_hosts = lambda client, version, files: LocalCommandHost(env.entry)
        return env

    def _run(self, env: RunningEnvironment, component: Component, name: str, pki: PkiPaths,
             sites: tuple[SiteRoute, ...], entry_port: int | None, detached: bool) -> dict[str, Address]:
        """Start one component in its own working directory and wait until each of its ports accepts."""
        listen = {port: Address(HOST, entry_port if (entry_port and i == 0) else free_port())
                  for i, port in enumerate(component.port_names())}
        workdir = env.workdir / name
        workdir.mkdir()
        # The version option, when set, is the binary's (executable() checks); else the binary is whatever is
        # installed, the newest as far as configs go.
        placement = Placement(name=env.plan.name, workdir=str(workdir), listen=listen, pki=pki, sites=sites,
                              version=component.options.version)
        launch = component.launch(placement, self.executable(component))
        for filename, content in launch.files.items():
            (workdir / filename).write_text(content)
        log_path = workdir / "output.log"
        env.logs[name] = log_path
        if launch.connection_log:
            env.connections = 0  # only connections to the component with the log count
            env.connection_log = workdir / launch.connection_log
            if env.connection_log != log_path:  # HAProxy logs connections on stdout
                env.logs[f"{name}:{launch.connection_log}"] = env.connection_log
        for other in launch.logs:
            env.logs[f"{name}:{other}"] = workdir / other
        relaunch = _Relaunch(name, (launch.executable, *launch.args), workdir, log_path, tuple(listen.values()),
                             detached)
        env.handles.append(relaunch)
        proc = _launch(relaunch, "wb")
        env.handles.append(LocalProcess(name, proc.pid, _start_time(proc.pid) or ""))
        for port, address in listen.items():
            _wait_for_port(address, proc, log_path, name)
            env.connections += port != "web"  # the HTTPS route logs elsewhere (Launch.logs)
        return listen

    def stop_component(self, env: RunningEnvironment, name: str, *, kill: bool = False) -> None:
        record = self._process(env, name)
        if kill:
            kill_processes([record])
        else:
            stop_processes([record])

    def start_component(self, env: RunningEnvironment, name: str) -> None:
        relaunch = next(h for h in env.handles if isinstance(h, _Relaunch) and h.component == name)
        old = self._process(env, name)
        if old.alive():
            raise EnvironmentFailed(f"{name} is still running: stop it before starting it again")
        proc = _launch(relaunch, "ab")  # the log goes on: what the component said before it stopped stays
        env.handles[env.handles.index(old)] = LocalProcess(name, proc.pid, _start_time(proc.pid) or "")
        for address in relaunch.listen:
            _wait_for_port(address, proc, relaunch.log_path, name)

    @staticmethod
    def _process(env: RunningEnvironment, name: str) -> LocalProcess:
        found = [h for h in env.handles if isinstance(h, LocalProcess) and h.component == name]
        if not found:
            raise UsageError(f"{env.plan.name} has no component {name!r}")
        return found[0]

    def component_version(self, component: Component) -> str:
        return component.version(self.executable(component))

    def exited(self, env: RunningEnvironment) -> str | None:
        for record in env.handles:
            if isinstance(record, LocalProcess) and not record.alive():
                return f"{record.component} exited: {log_tail(env.logs[record.component])}"
        return None

    def detach(self, env: RunningEnvironment) -> list[dict[str, object]]:
        return [asdict(h) for h in env.handles if isinstance(h, LocalProcess)]

    def stop(self, env: RunningEnvironment) -> None:
        stop_processes([r for r in env.handles if isinstance(r, LocalProcess)])
        env.handles.clear()

    def finish(self) -> None:
        """Nothing here outlives its environment: the clients run as processes of this host."""

    def memory(self, env: RunningEnvironment) -> dict[str, int]:
        # A component is its process group (started in a session of its own): nginx's workers count too.
        by_group = _resident_by_group()
        return {r.component: by_group.get(r.pid, 0) for r in env.handles if isinstance(r, LocalProcess) and r.alive()}

    def leftovers(self, handles: list[dict[str, object]], workdir: Path) -> list[str]:
        records = [LocalProcess(**h) for h in handles]  # type: ignore[arg-type]
        left = [f"{r.component} (pid {r.pid}) still running" for r in records if r.alive()]
        return left + [f"pid {pid} still running in {cwd}" for pid, cwd in _working_in(workdir)]


def release_processes(handles: list[dict[str, object]]) -> int:
    records = [LocalProcess(**h) for h in handles]  # type: ignore[arg-type]
    running = sum(1 for r in records if r.alive())
    stop_processes(records)
    return running


def stop_processes(records: list[LocalProcess], grace_s: float = 5.0) -> None:
    """SIGTERM to every component at once, then wait for them together; SIGKILL what outlives the grace.

    Measured here: Orthanc 1.10 takes about 2.2 s to stop on SIGTERM (its HTTP server, then its DICOM server
    after a second, then its jobs engine), Envoy well under one. Stopping them one after another made teardown
    the largest share of a run; together the environment takes as long as its slowest component."""
    signalled = []
    for record in records:
        if not record.alive():
            continue
        try:
            os.killpg(record.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        signalled.append(record)
    deadline = time.monotonic() + grace_s
    while signalled and time.monotonic() < deadline:
        for record in signalled:
            _reap(record.pid)
        signalled = [r for r in signalled if r.alive()]
        if signalled:
            time.sleep(0.02)
    for record in signalled:
        try:
            os.killpg(record.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    _wait_gone(signalled)


KILL_WAIT_S = 10.0
"""How long a SIGKILLed process may take to be gone: at once, unless the kernel holds it in an uninterruptible wait
(a hung disk or mount), which no signal ends; the teardown moves on and the leftover check reports it."""


def _wait_gone(records: list[LocalProcess]) -> None:
    deadline = time.monotonic() + KILL_WAIT_S
    while records and time.monotonic() < deadline:
        for record in records:
            _reap(record.pid)
        records = [r for r in records if r.alive()]
        if records:
            time.sleep(0.01)


def _live_stats() -> Iterator[tuple[int, list[str]]]:
    """Each live process's /proc/PID/stat fields after the command name (state first), zombies left out."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            yield int(entry.name), fields


def _resident_by_group() -> dict[int, int]:
    """Resident bytes per process group, from /proc/PID/stat's pgrp and rss (pages)."""
    page = os.sysconf("SC_PAGE_SIZE")
    totals: dict[int, int] = {}
    for _, fields in _live_stats():
        totals[int(fields[2])] = totals.get(int(fields[2]), 0) + int(fields[21]) * page
    return totals


def _working_in(directory: Path) -> list[tuple[int, Path]]:
    """Live processes whose working directory is under ``directory``: what a stopped environment must not leave."""
    found = []
    for pid, _ in _live_stats():
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue
        if cwd.is_relative_to(directory):
            found.append((pid, cwd))
    return found


def kill_processes(records: list[LocalProcess]) -> None:
    """SIGKILL, as a crash ends a process: no shutdown, no last log line; returns once each is gone."""
    for record in records:
        if record.alive():
            try:
                os.killpg(record.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _wait_gone(records)


def _launch(relaunch: _Relaunch, log_mode: str) -> subprocess.Popen[bytes]:
    with relaunch.log_path.open(log_mode) as log:
        return subprocess.Popen(
            list(relaunch.argv),
            cwd=relaunch.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if relaunch.detached else functools.partial(_die_with_parent, os.getpid()),
        )


def start_process(name: str, argv: list[str], workdir: Path, listen: tuple[Address, ...]) -> LocalProcess:
    """A program of this host run as a component is (its own session, gone with dicomtls, its output in
    ``workdir``/output.log), returned once each of ``listen`` accepts; stopped again when it exits or does not listen
    in time (EnvironmentFailed). For what a client starts for one cell (an edge Orthanc): ``kill_processes`` or ``stop_processes`` ends it."""
    relaunch = _Relaunch(name, tuple(argv), workdir, workdir / "output.log", listen, detached=False)
    proc = _launch(relaunch, "wb")
    record = LocalProcess(name, proc.pid, _start_time(proc.pid) or "")
    try:
        for address in listen:
            _wait_for_port(address, proc, relaunch.log_path, name)
    except BaseException:
        stop_processes([record])
        _reap(proc.pid)
        raise
    return record


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _search_path() -> str:
    # The venv's bin holds pip-installed binaries (envoy); /usr/sbin holds Orthanc.
    extra = [str(Path(sys.executable).parent), "/usr/sbin", "/usr/local/sbin"]
    return os.pathsep.join([os.environ.get("PATH", ""), *extra])


def _wait_for_port(address: Address, proc: subprocess.Popen[bytes], log_path: Path, kind: str) -> None:
    deadline = time.monotonic() + PORT_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EnvironmentFailed(f"{kind} exited with status {proc.returncode}: {log_tail(log_path)}")
        try:
            with socket.create_connection((address.host, address.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise EnvironmentFailed(f"{kind} did not listen on {address} within {PORT_TIMEOUT_S:.0f}s: {log_tail(log_path)}")



@dataclass(frozen=True)
class LocalCommandHost:
    """Command-line clients run as plain processes on this machine, with the host's own paths."""

    address: Address

    def path(self, host_path: Path) -> str:
        return str(host_path)

    def run(self, argv: list[str], timeout_s: float) -> CommandResult:
        # A process group of its own, ended whole: a client's helpers (a stunnel sidecar) never outlive it; the
        # cell's deadline ends it the same way (its output so far is kept for the evidence).
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True, start_new_session=True)
        limit = bounded(timeout_s)
        try:
            with stopped_at_deadline(lambda: os.killpg(proc.pid, signal.SIGKILL)):
                out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            try:
                partial, _ = proc.communicate(timeout=KILL_WAIT_S)
            except subprocess.TimeoutExpired:  # a descendant left the group and holds the pipe: its words are lost
                partial = ""
            return CommandResult(-1, f"{partial}\n{Path(argv[0]).name} timed out after {limit:.0f}s")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return CommandResult(proc.returncode, out + err)
