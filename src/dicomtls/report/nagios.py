"""`invoke probe --format nagios`: one status line and the exit status of a Nagios plugin.

The states, and what puts an endpoint in each (the worst endpoint's state is the probe's, in monitoring-plugins'
order: CRITICAL, WARNING, UNKNOWN, OK):

- CRITICAL (2): no client passed against the endpoint, a server check failed, a cell broke a policy rule, a
  policy's finding, profile or certificate rule is broken (other than ``--fail-on``'s), or a served certificate has
  expired;
- WARNING (1): a finding at or above ``--fail-on``, or a served certificate with fewer than ``--warn-days`` left;
- UNKNOWN (3): dicomtls could not measure: a deadline ended a cell, dicomtls failed running one, or nothing was
  probed (and a bad command line, as Nagios plugins do);
- OK (0): everything else.

The line is ``DICOMTLS STATE - what | perfdata``: the problems first (or the passing cells and the certificate's
days left), then per endpoint its passed, failed and unmeasured cells and the certificate's days left with the
warning and critical thresholds, and the probe's wall time.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from dicomtls.report.endpoint_status import EndpointStatus, endpoints, started


class State(IntEnum):
    """A Nagios plugin's exit status."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


_WORST_FIRST = (State.CRITICAL, State.WARNING, State.UNKNOWN, State.OK)


@dataclass(frozen=True)
class Status:
    state: State
    line: str


def status(doc: dict[str, Any], warn_days: float, warning_rules: Collection[str] = ()) -> Status:
    """The probe's state and status line; ``warning_rules``: the names of the policy rules that only warn (the
    ``--fail-on`` rule)."""
    found = endpoints(doc)
    now = started(doc)
    problems: list[tuple[State, str]] = []
    if not found or not any(s.cells or s.checks for s in found):
        problems.append((State.UNKNOWN, "nothing was probed"))
    for endpoint in found:
        problems += _problems(endpoint, now, warn_days, warning_rules)
    state = next((s for s in _WORST_FIRST if any(p[0] == s for p in problems)), State.OK)
    if problems:
        what = "; ".join(text for s in _WORST_FIRST for p_state, text in problems if p_state == s)
    else:
        what = "; ".join(_summary(e, now) for e in found)
    perfdata = " ".join([*(p for e in found for p in _perfdata(e, now, warn_days, len(found) > 1)),
                         f"time={doc['run']['wall_s']}s;;;0"])
    return Status(state, f"DICOMTLS {state.name} - {_plain(what)} | {perfdata}")


def unknown(message: str) -> Status:
    """What dicomtls prints for a command line it refuses or a run that failed in itself: UNKNOWN."""
    return Status(State.UNKNOWN, f"DICOMTLS {State.UNKNOWN.name} - {_plain(message)}")


def _problems(endpoint: EndpointStatus, now: datetime, warn_days: float,
              warning_rules: Collection[str]) -> list[tuple[State, str]]:
    name = endpoint.name
    found: list[tuple[State, str]] = []
    if endpoint.unmeasured:
        found.append((State.UNKNOWN, f"{name}: {len(endpoint.unmeasured)} cells not measured "
                                     f"({_first_reason(endpoint.unmeasured[0])})"))
    if endpoint.cells and not endpoint.passed and len(endpoint.measured) == len(endpoint.cells):
        why = endpoint.error or next((c["reason"] for c in endpoint.cells if c["reason"]), "no reason")
        found.append((State.CRITICAL, f"{name}: no client passed ({why})"))
    elif endpoint.measured and not endpoint.passed:
        found.append((State.CRITICAL, f"{name}: no measured client passed"))
    for check in endpoint.failed_checks:
        found.append((State.CRITICAL, f"{name}: server check {check['operation']} failed: {check['summary']}"))
    for cell in endpoint.broken_cells:
        for broken in cell["policy"]:
            found.append((State.CRITICAL, f"{name}: policy rule '{broken['rule']}' wants {broken['wants']}, "
                                          f"cell {cell['id'].split('/', 2)[-1]} did {cell['actual']}"))
    for violation in endpoint.violations:
        state = State.WARNING if violation["rule"] in warning_rules else State.CRITICAL
        found.append((state, f"{name}: policy rule '{violation['rule']}' broken: {violation['what']}"))
    for cert in endpoint.certificates:
        left = cert.days_left(now)
        served = f"served with SNI {cert.sni}" if cert.sni else "served without SNI"
        if left < 0:
            found.append((State.CRITICAL, f"{name}: certificate {cert.subject} ({served}) expired "
                                          f"{cert.not_after.isoformat()}"))
        elif left < warn_days:
            found.append((State.WARNING, f"{name}: certificate {cert.subject} ({served}) has {left:.1f} days left"))
    return found


def _first_reason(cell: dict[str, Any]) -> str:
    return f"a {cell['deadline']} deadline ended it" if cell.get("deadline") else f"dicomtls failed: {cell['error']}"


def _summary(endpoint: EndpointStatus, now: datetime) -> str:
    text = f"{endpoint.name}: {endpoint.passed}/{len(endpoint.cells)} cells passed"
    if endpoint.checks:
        text += f", {len(endpoint.checks)} server checks passed"
    if endpoint.certificates:
        soonest = min(endpoint.certificates, key=lambda c: c.not_after)
        text += f", certificate {soonest.days_left(now):.0f} days left"
    return text


def _perfdata(endpoint: EndpointStatus, now: datetime, warn_days: float, prefixed: bool) -> list[str]:
    """Nagios performance data: 'label'=value[UOM];warn;crit;min;max."""
    label = (lambda what: f"'{endpoint.name} {what}'") if prefixed else (lambda what: what)
    total = len(endpoint.cells)
    failed = sum(1 for c in endpoint.measured if c["actual"] != "pass")
    found = [f"{label('passed')}={endpoint.passed};;;0;{total}", f"{label('failed')}={failed};;;0;{total}",
             f"{label('unmeasured')}={len(endpoint.unmeasured)};;;0"]
    if endpoint.certificates:
        left = min(c.days_left(now) for c in endpoint.certificates)
        found.append(f"{label('cert_days')}={left:.1f};{warn_days:g}:;0:")
    return found


def _plain(text: str) -> str:
    """One line without the pipe, which starts Nagios' performance data."""
    return re.sub(r"\s+", " ", text.replace("|", "/")).strip()
