"""Backends decide *how* an environment's components run: local processes now, containers next.

A backend receives an :class:`EnvironmentPlan` (which components, which PKI)
and returns a :class:`RunningEnvironment`: where clients connect, where
Orthanc's REST API answers, and the log files a diagnosis reads.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import ClassVar, Protocol

from dicomtls.components import Address, Component
from dicomtls.errors import UsageError
from dicomtls.pki import PkiFiles, ServerIdentity

SOLE_SITE = "orthanc"
"""The name of an environment's only site when the scenario names none (its cluster, backend, upstream)."""


@dataclass(frozen=True)
class PlannedSite:
    """One DICOM server, the names clients reach it by, and the certificate (host paths) it is known by."""

    name: str
    server_names: tuple[str, ...]
    server: Component
    identity: ServerIdentity


@dataclass(frozen=True)
class EnvironmentPlan:
    key: str
    name: str
    sites: tuple[PlannedSite, ...]
    proxy: Component | None
    pki: PkiFiles
    restartable: bool = False
    """A component may be stopped and started again during the run (a fault cell): it must keep its address,
    as a Kubernetes pod's container restarting in the pod's network does."""

    @property
    def components(self) -> tuple[Component, ...]:
        """The servers first, then the proxy in front of them."""
        servers = tuple(site.server for site in self.sites)
        return servers + ((self.proxy,) if self.proxy is not None else ())

    @property
    def entry_component(self) -> Component:
        return self.components[-1]

    @property
    def server_names(self) -> tuple[str, ...]:
        """The first site's names: the first is the "right" SNI."""
        return self.sites[0].server_names if self.sites else ()

    @property
    def all_names(self) -> tuple[str, ...]:
        """Every name a client may ask the entry for."""
        return tuple(name for site in self.sites for name in site.server_names)

    @property
    def multi_site(self) -> bool:
        return len(self.sites) > 1

    def component_name(self, site: PlannedSite) -> str:
        """What a site's server is called in logs, working directories and containers."""
        return f"{site.server.kind}-{site.name}" if self.multi_site else site.server.kind

    def component_named(self, name: str) -> Component:
        """The component called ``name`` in logs and workdirs (the proxy by its kind, a server as above)."""
        if self.proxy is not None and name == self.proxy.kind:
            return self.proxy
        return next(site.server for site in self.sites if self.component_name(site) == name)


class EnvironmentFailed(Exception):
    """An environment did not come up; the message carries the log lines that say why.

    ``env``: what had started (stopped by now), so a run can keep its logs."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.env: RunningEnvironment | None = None


@contextmanager
def stopped_on_failure(backend: Backend, env: RunningEnvironment) -> Iterator[None]:
    """Stop what has started when starting fails (Ctrl-C included), and hand the environment to the error."""
    try:
        yield
    except BaseException as exc:
        backend.stop(env)
        if isinstance(exc, EnvironmentFailed) and exc.env is None:
            exc.env = env
        raise


def log_tail(path: Path, lines: int = 3) -> str:
    """The last lines of a component's log, for a one-line reason why it did not come up."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


@dataclass
class LogCursor:
    """Reads the lines appended to a set of log files since the cursor was placed."""

    files: dict[str, Path]
    offsets: dict[Path, int] = field(default_factory=dict)

    def mark(self) -> None:
        self.offsets = {path: _size(path) for path in self.files.values()}

    def new_lines(self) -> dict[str, list[str]]:
        lines: dict[str, list[str]] = {}
        for name, path in self.files.items():
            start = self.offsets.get(path, 0)
            try:
                with path.open("rb") as f:
                    f.seek(start)
                    data = f.read()
            except OSError:
                continue
            lines[name] = [l for l in data.decode("utf-8", "replace").splitlines() if l.strip()]
        return lines


def _line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class CommandResult:
    code: int
    output: str


class CommandHost(Protocol):
    """Where a command-line client (dcmtk) runs, as the backend places it: the host itself, or a container."""

    @property
    def address(self) -> Address:
        """The endpoint as this client reaches it."""

    def path(self, host_path: Path) -> str:
        """The path under which this client sees a file from the host."""

    def run(self, argv: list[str], timeout_s: float) -> CommandResult: ...


@dataclass
class RunningEnvironment:
    plan: EnvironmentPlan
    entry: Address  # where probes on this machine connect
    rest_urls: dict[str, str]  # site -> its Orthanc's REST API, for verifying C-STOREs
    logs: dict[str, Path]  # component name -> its log file (proxy access log included)
    workdir: Path
    connection_log: Path | None = None
    connections: int = 0  # TCP connections made to the entry so far; each earns one connection_log line
    client_entry: Address | None = None  # where command-line client containers connect, if not `entry`
    web_entry: Address | None = None  # where HTTPS clients on this machine connect: the proxy's web route, if it has one
    handles: list[object] = field(default_factory=list)
    command_hosts: Callable[[str, str | None, tuple[Path, ...]], CommandHost] | None = None
    client_address: str | None = None
    """The address the servers reach this machine's clients at (a C-MOVE's destination); None: not known."""
    """(client, version, files it needs) -> where to run it; set by the backend."""

    @property
    def rest_url(self) -> str:
        """The first site's REST API ("" for an endpoint probed without one)."""
        return next(iter(self.rest_urls.values()), "")

    def log_cursor(self) -> LogCursor:
        cursor = LogCursor(self.logs)
        cursor.mark()
        return cursor

    def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until the proxy has logged every connection made so far, so no line is taken for the next cell's.

        On a healthy run the count is reached within about 0.1 s (196 cells of the default matrix, at most 64 ms), so
        the limit only bounds a proxy that never logs; it is generous because a loaded machine (a soak of every
        scenario beside other test runs) was seen to log a no-route line more than 2 s after the client gave up, and
        a line that late was taken for the next cell's."""
        deadline = time.monotonic() + timeout_s
        if self.connection_log is None:
            _wait_quiet(list(self.logs.values()), deadline)
            return
        while _line_count(self.connection_log) < self.connections and time.monotonic() < deadline:
            time.sleep(0.02)

    def quiet(self, quiet_s: float, timeout_s: float = 3.0) -> None:
        """Wait until no log has grown for ``quiet_s``: after a cell whose connections no count waits for (the
        HTTPS route's). Envoy writes its access log every 50 ms, later still through a container's bind mount, so
        a failed cell, whose evidence that line is, waits longer than a passed one."""
        _wait_quiet(list(self.logs.values()), time.monotonic() + timeout_s, quiet_s)


QUIET_S = 0.05


def _wait_quiet(paths: list[Path], deadline: float, quiet_s: float = QUIET_S) -> None:
    """Without a line per connection, silence is the only sign a component has said all it will.

    Traefik and Orthanc log a failed handshake just after sending the alert, so a client can exit first.
    """
    sizes = [_size(p) for p in paths]
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < quiet_s:
        time.sleep(0.01)
        now = [_size(p) for p in paths]
        if now != sizes:
            sizes, quiet_since = now, time.monotonic()


class Backend(Protocol):
    """How environments run. What a backend can do is declared on its class, below ``name``, so that code outside
    ``backends/`` asks what a backend can do instead of which one it is (a test holds it to that); ``name`` is for
    people and records: the run header, results.json's ``backend``, messages, a scenario's ``backends:`` list."""

    name: str
    brings_clients: ClassVar[bool]
    """True: the backend brings the command-line clients (dcmtk, and stunnel around it) itself, in every version
    its client images have (Docker: dcmtk 3.6.7 and 3.6.9), so a probe's ``client_version`` picks one, and
    dcmtk 3.6.9's --request-sni (manifests' SNI probes, the "client sends SNI" fix) can run. False: cells run the
    clients installed on this machine, in the one version it has, checked before anything starts."""
    runs_upstream_images: ClassVar[bool]
    """True: a component can run from its upstream project's released image (a scenario's ``image:``, and
    ``invoke bisect`` over image tags, which reach releases no wheel carries). False: only programs installed
    here run, so ``image:`` is a usage error and a bisect installs each version's PyPI wheel instead."""

    def __init__(self, workroot: Path) -> None:
        """``workroot``: where the environments' working directories go."""

    def start(self, plan: EnvironmentPlan, *, detached: bool = False, entry_port: int | None = None) -> RunningEnvironment:
        """Start every component, each ready on its ports; raise EnvironmentFailed otherwise."""

    def stop(self, env: RunningEnvironment) -> None:
        """Stop everything ``start`` created; safe to call twice."""

    def finish(self) -> None:
        """The run is over: release what served all its environments (the Docker backend's client containers).
        Environments started later get their own again."""

    def executable(self, component: Component) -> str:
        """Where the component's program is; UsageError with an install hint when missing."""

    def component_version(self, component: Component) -> str:
        """The version that will really run, for the run header."""

    def exited(self, env: RunningEnvironment) -> str | None:
        """The first component of ``env`` that is no longer running, with its last log lines; None if all run."""

    def detach(self, env: RunningEnvironment) -> list[dict[str, object]]:
        """What `invoke down` needs, as JSON, to stop this environment from another process."""

    def memory(self, env: RunningEnvironment) -> dict[str, int]:
        """Resident bytes of each running component, for a soak to see whether one grows."""

    def leftovers(self, handles: list[dict[str, object]], workdir: Path) -> list[str]:
        """What of a stopped environment (``detach``'s handles, its working directory) still exists: none."""

    def stop_component(self, env: RunningEnvironment, name: str, *, kill: bool = False) -> None:
        """Stop one component of ``env`` (by its name in ``env.logs``) and wait until it is gone; ``kill``: at
        once (SIGKILL), as a crash does, else as an orderly shutdown. The others keep running."""

    def start_component(self, env: RunningEnvironment, name: str) -> None:
        """Start a component ``stop_component`` stopped again, with its files and storage, and wait until its
        ports accept; ``env``'s addresses follow where it listens now."""


BACKENDS = ("local", "docker")


def docker_answers() -> bool:
    """Is there a Docker engine to use? Cheap enough to ask on every run."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - any failure means "no engine here"
        return False
    return True


def backend_class(name: str) -> type[Backend]:
    """The class of the backend called ``name``, for what it declares before one is made (making Docker's
    contacts the engine); imported only now, so a local run never loads the Docker SDK."""
    if name == "local":
        from dicomtls.backends.local import LocalBackend

        return LocalBackend
    if name == "docker":
        from dicomtls.backends.docker import DockerBackend

        return DockerBackend
    raise UsageError(f"unknown backend {name!r}: use --backend auto, local or docker")


def get_backend(name: str | None, workroot: Path) -> Backend:
    """``auto`` is Docker whenever an engine answers, else local; no name means $DICOMTLS_BACKEND or auto."""
    name = name or os.environ.get("DICOMTLS_BACKEND") or "auto"
    if name == "auto":
        name = "docker" if docker_answers() else "local"
    return backend_class(name)(workroot)


def state_dir() -> Path:
    """Where `invoke up` records what it left running, so `invoke down` can find it from any directory."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dicomtls"


def release(backend: str, handles: list[dict[str, object]]) -> int:
    """Stop what `detach` described; returns how many components were still running."""
    if backend == "local":
        from dicomtls.backends.local import release_processes

        return release_processes(handles)
    if backend == "docker":
        from dicomtls.backends.docker import release_containers

        return release_containers(handles)
    raise UsageError(f"the up-state names unknown backend {backend!r}: stop its components by hand")
