"""One running environment's life around its cells: started until a real C-ECHO passes through the whole path,
the target its clients aim at, its TLS scan, a stopping component told from a cell's own failure, its logs kept.

The runner (``dicomtls.runner``), soak, ``up`` and the load test share these; stopping is the backend's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dicomtls.backends import Backend, EnvironmentFailed, EnvironmentPlan, RunningEnvironment, stopped_on_failure
from dicomtls.deadlines import Deadlines
from dicomtls.probes import DEFAULT_AET, Target
from dicomtls.move_destination import MoveDestinations
from dicomtls.probes.pynetdicom import echo_through
from dicomtls.report import redact
from dicomtls.scan import Endpoint, ScanResult, scan


READY_TIMEOUT_S = 30.0


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
                ok, detail = echo_through(target, site.server_names[0], target.aet(site.name))
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
    """Where the clients aim: the entry, its names, and the AE title each site's server answers to."""
    plan = env.plan
    sites = {site.name: site.server_names[0] for site in plan.sites} if plan.multi_site else {}
    aets = {site.name: site.server.ae_title() or DEFAULT_AET for site in plan.sites}
    destinations = (MoveDestinations(tuple(env.rest_urls.values()), env.client_address)
                    if env.client_address is not None and env.rest_urls else None)
    return Target(env.entry, plan.server_names, plan.pki, called_aet=next(iter(aets.values()), DEFAULT_AET),
                  command_hosts=env.command_hosts, sites=sites, site_aets=aets if plan.multi_site else {},
                  move_destinations=destinations,
                  web=env.web_entry,
                  web_path=getattr(plan.proxy.options, "web_path", "/") if plan.proxy is not None else "/")


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
