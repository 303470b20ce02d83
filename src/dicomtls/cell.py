"""One cell: run its client through a running environment, then judge what it saw.

The judgement reads the client's outcome, Orthanc's REST API (the object intact, in exactly one site) and, for a
failure, the logs the cell added (``dicomtls.diagnose``). A fault cell ends with the component back and its object
sent again; a deadline ends a cell as ``timeout`` with what was seen until then. The cells nothing judged (not
run, dicomtls's own failure, a component that stopped) are made here too, so every result is shaped in one place.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

from cryptography import x509

from dicomtls.backends import Backend, EnvironmentFailed, EnvironmentPlan, LogCursor, RunningEnvironment
from dicomtls.clients import listed
from dicomtls.deadlines import CellWatch, Deadlines
from dicomtls.diagnose import EXPLANATIONS, SUMMARIES, Diagnosis, Symptoms, deadline_explanation, diagnose
from dicomtls.environment import recount_connections, target_of
from dicomtls.faults import FaultReport, Injection
from dicomtls.operations import operation
from dicomtls.orthanc_rest import verify_stored
from dicomtls.probes import Client, MidTransferClient, ProbeOutcome, Target
from dicomtls.reasons import Facts, Reason
from dicomtls.results import NOT_VERIFIED, OBSERVE, CellResult
from dicomtls.revocation import revoked_on
from dicomtls.scenario import Cell, addressed_site


def run_cell(cell: Cell, env: RunningEnvironment, target: Target, clients: Mapping[str, Client | None],
             objects: Path, server_accepts: dict[str, tuple[str, ...]] | None = None,
             backend: Backend | None = None, deadlines: Deadlines | None = None) -> CellResult:
    """``backend``: the environment's, to inject the cell's fault with; then the cell ends with the component
    back and the object sent again (dicomtls.faults). ``deadlines``: a cell still running at the cell's (or the
    run's) deadline has its client stopped and is ``timeout``, with what was seen until then."""
    with (deadlines or Deadlines()).watch() as watch:
        result, outcome, cursor = _run_cell(cell, env, target, clients, objects, server_accepts, backend, watch)
    if watch.passed:
        return _at_deadline(result, outcome, cursor, watch)
    return result


def _run_cell(cell: Cell, env: RunningEnvironment, target: Target, clients: Mapping[str, Client | None],
              objects: Path, server_accepts: dict[str, tuple[str, ...]] | None,
              backend: Backend | None, watch: CellWatch) -> tuple[CellResult, ProbeOutcome, LogCursor]:
    cursor = env.log_cursor()
    began = time.monotonic()
    fault = None
    if cell.probe.fault != "none":
        assert backend is not None, f"{cell.id} injects a fault: pass the backend"
        fault = Injection(cell.probe.fault, backend, env)
        fault.before()
    # A registered client that declares another port (the HTTPS route) earns no line in the DICOM connection log.
    counted = not any(k.name == cell.probe.client and not k.reaches_dicom_entry for k in listed())
    env.connections += counted
    client = clients[cell.probe.client]
    assert client is not None, f"no {cell.probe.client} client for {cell.id}"
    if fault is not None and fault.while_sending is not None:
        # The scenario gives a mid-transfer fault only to a client that declares sends_mid_transfer.
        outcome = cast(MidTransferClient, client).run(target, cell.probe, objects, while_sending=fault.while_sending)
    else:
        outcome = client.run(target, cell.probe, objects)
    if watch.passed:  # a client stopped by its deadline may never have connected: take the proxy's own count
        recount_connections(env)
    elif not counted:  # its route logs apart: wait until what it logged is all there
        env.quiet(WEB_QUIET_S[outcome.ok])
    elif fault is None or not fault.kills_entry:  # a killed proxy never logs the connection it was carrying
        env.settle()
    try:
        result = _judge(cell, env, target, outcome, cursor, began, server_accepts)
        result.association_s = outcome.association_s
        if fault is not None:
            result.fault = _after_fault(fault, env, cell, outcome, result)
    finally:
        if outcome.sent is not None:
            outcome.sent.path.unlink(missing_ok=True)
    if result.fault is not None:
        result.duration_s = round(time.monotonic() - began, 3)
    return result, outcome, cursor


WEB_QUIET_S = {True: 0.1, False: 0.3}
"""A cell on the HTTPS route (passed, failed) ends when the logs have been silent this long: a failure's evidence
is the route's own line."""
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
        ok, detail, holder, unmeasured = _verify_everywhere(env, outcome)
        if outcome.confirmed:
            detail = f"{detail}; {outcome.confirmed}"
        site = holder or site
        if unmeasured:
            return _unmeasured(cell, outcome, detail, round(time.monotonic() - began, 3), site)
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


def _verify_everywhere(env: RunningEnvironment, outcome: ProbeOutcome) -> tuple[bool, str, str | None, bool]:
    """The sent object, intact, in exactly one site's Orthanc (checked through every site's REST API).

    Returns (ok, detail, the site holding it, unmeasured: no site holds it intact and some site holds it in a form
    that could not be compared)."""
    assert outcome.sent is not None
    servers = {site.name: site.server for site in env.plan.sites}
    checks = {site: verify_stored(url, outcome.sent, servers[site].ingest_syntax() if site in servers else None)
              for site, url in env.rest_urls.items()}
    holders = [site for site, check in checks.items() if check.ok]
    unmeasured = not holders and any(check.unknown for check in checks.values())
    if not env.plan.multi_site:
        check = next(iter(checks.values()))
        return check.ok, check.detail, None, check.unknown
    if len(holders) == 1:
        others = ", ".join(site for site in checks if site != holders[0])
        return True, f"{holders[0]}: {checks[holders[0]].detail}; not in {others}", holders[0], False
    if holders:
        return False, f"the object arrived in {len(holders)} sites: {', '.join(holders)}", None, False
    return False, "; ".join(f"{site}: {check.detail}" for site, check in checks.items()), None, unmeasured


def _unmeasured(cell: Cell, outcome: ProbeOutcome, detail: str, duration: float, site: str | None) -> CellResult:
    """A C-STORE that answered success, whose stored object could not be compared with what was sent (a transfer
    syntax no decoder here reads): unknown, never a pass, nor a verdict on the endpoint."""
    return CellResult(cell, "fail", Reason.UNKNOWN, SUMMARIES["store-unmeasured"], SUMMARIES["store-unmeasured-fix"],
                      (f"orthanc: {detail}",), outcome.command, detail, duration,
                      outcome.sent.size if outcome.sent else None, site, outcome.peer_certificate)


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
        client_cert_revoked_on=revoked_on(identity[0], target.pki.crl) if identity else None,
        offered=outcome.offered,
        server_accepts=server_accepts,
        transport=cell.probe.transport,
        peer_certificate=outcome.peer_certificate,
        server_kind=server_kind,
        rejection=outcome.rejection,
        operation_failure=operation(cell.probe.operation).failure(proxy_lines),
        http_status=outcome.http_status,
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


def not_run(cell: Cell, deadlines: Deadlines) -> CellResult:
    """A cell the run's deadline left no time for."""
    summary, fix = deadline_explanation("run", deadlines.run_s, ran=False)
    return CellResult(cell, "fail", Reason.TIMEOUT, summary, fix, (), "", "", 0.0, deadline="run")


def failed(cell: Cell, error: str) -> CellResult:
    """A cell dicomtls itself failed to run: unknown, with the error, never a verdict on the endpoint."""
    return CellResult(cell, "fail", Reason.UNKNOWN, f"dicomtls failed while running this cell: {error}",
                      "this is a bug in dicomtls, not in the endpoint: report it with the traceback", (error,), "", "",
                      0.0, error=error)


def stopped(cell: Cell, gone: str | None, ran: CellResult | None) -> CellResult:
    """A cell that failed because a component had stopped, or was not run for that: said once, plainly,
    rather than as a misleading diagnosis of its own."""
    return CellResult(cell, "fail", Reason.ENVIRONMENT_FAILED, "a component stopped during the run",
                      "read the environment's logs", (gone or "",), ran.command if ran else "", "",
                      ran.duration_s if ran else 0.0)
