"""Findings: what the user's own configuration does that weakens or surprises, shown with the cells that prove it.

An ``unhonoured`` line says what the tool did *not* reproduce; a finding says what it did reproduce and the user
may not know (an Envoy that accepts expired client certificates, a CA named "intermediate" that is a self-signed
root, a Traefik v2 API group a v3 cluster ignores). Where a probe can show it, the finding names the probe
fields of the cells that do, and every report puts those cells' outcomes next to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

Severity = Literal["info", "low", "medium", "high", "critical"]
"""How much a finding weakens the deployment, decided where the finding is made: critical lets any client in,
high breaks DICOM for some clients or accepts what must be refused, medium weakens or surprises, low is a
naming or hygiene matter, info is a note. ``--fail-on SEVERITY`` fails a run on a finding at or above it."""
SEVERITIES: tuple[str, ...] = get_args(Severity)


def at_least(severity: str, threshold: str) -> bool:
    """True when ``severity`` is ``threshold`` or worse."""
    return SEVERITIES.index(severity) >= SEVERITIES.index(threshold)


@dataclass(frozen=True)
class Finding:
    text: str
    severity: Severity
    proof: tuple[tuple[str, str], ...] = ()
    """(probe field, value) pairs a proving cell matches, e.g. (("client_cert", "expired"),); empty: none can."""
    file: str | None = None
    """The user's file that makes it (as the run was given it), so a CI annotation lands on that file."""
    line: int | None = None
    """The 1-based line of the setting in ``file``, where the reader knows it."""

    @classmethod
    def of(cls, text: str, severity: Severity, **proof: str) -> "Finding":
        return cls(text, severity, tuple(sorted(proof.items())))


@dataclass(frozen=True)
class ProvedFinding:
    """A finding with the cells of its environment that show it (id, pass/fail, reason)."""

    text: str
    cells: tuple[dict[str, Any], ...] = ()
    severity: Severity = "medium"
    """Its severity (a results.json written before findings had one reads as medium)."""
    file: str | None = None
    """The user's file that makes it (as the run was given it); None when unknown."""
    line: int | None = None
    """The 1-based line of its setting in ``file``; None when unknown."""


def prove(finding: Finding, cells: Iterable[Any]) -> ProvedFinding:
    """Pick the cells (CellResult-like: ``.cell.probe``, ``.cell.id``, ``.actual``, ``.reason``) that match."""
    if not finding.proof:
        return ProvedFinding(finding.text, severity=finding.severity, file=finding.file, line=finding.line)
    shown = []
    for result in cells:
        probe = asdict(result.cell.probe)
        if all(str(probe.get(key)) == value for key, value in finding.proof):
            shown.append({"id": result.cell.id, "actual": result.actual,
                          "reason": str(result.reason) if result.reason else None})
    return ProvedFinding(finding.text, tuple(shown), finding.severity, finding.file, finding.line)


def describe(cell: dict[str, Any]) -> str:
    """One proving cell as the reports print it: "✔ <id>" or "✘ <id> (reason)"."""
    if cell["actual"] == "pass":
        return f"✔ {cell['id']}"
    return f"✘ {cell['id']} ({cell['reason']})"
