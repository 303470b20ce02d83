"""Each probed endpoint's state as a monitoring system wants it, read from a probe's results.json document.

The Prometheus textfile and the Nagios status line (report.prometheus, report.nagios) say the same things in two
shapes: whether the endpoint answered any client, which cells passed, which were not measured at all (a deadline
ended them, or dicomtls failed running them: never counted as failures), the policy rules broken, and when each
certificate the endpoint serves expires. Both read the document rather than the live result so that a captured
results.json renders exactly as the run that wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dicomtls.probes import WRONG_SNI


@dataclass(frozen=True)
class ServedCertificate:
    """The leaf certificate the TLS scan was served for one ClientHello: with the endpoint's name, or without SNI
    (a wrong name's chain is left out, as the policy's certificate rule does)."""

    sni: str | None
    subject: str
    not_after: datetime

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


@dataclass
class EndpointStatus:
    """One endpoint (a probe's environment): its cells, server checks, scan and broken policy rules."""

    name: str
    error: str | None
    cells: list[dict[str, Any]] = field(default_factory=list)
    """The client cells (not the server checks of an inventory host)."""
    checks: list[dict[str, Any]] = field(default_factory=list)
    """The server checks of an inventory host (dicomtls.checks), run from the inside."""
    scan_error: str | None = None
    certificates: list[ServedCertificate] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    """The run's policy violations that name this endpoint."""

    @property
    def measured(self) -> list[dict[str, Any]]:
        """Cells with an outcome: not ended by a deadline, not failed in dicomtls itself."""
        return [c for c in self.cells if not unmeasured(c)]

    @property
    def passed(self) -> int:
        return sum(1 for c in self.measured if c["actual"] == "pass")

    @property
    def unmeasured(self) -> list[dict[str, Any]]:
        return [c for c in [*self.cells, *self.checks] if unmeasured(c)]

    @property
    def failed_checks(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if not unmeasured(c) and c["actual"] == "fail"]

    @property
    def broken_cells(self) -> list[dict[str, Any]]:
        """Cells that broke a policy rule."""
        return [c for c in self.cells if c.get("policy")]

    @property
    def up(self) -> bool:
        """What `invoke probe` requires of an endpoint: some client cell passed and no server check failed."""
        return self.passed > 0 and not self.failed_checks


def unmeasured(cell: dict[str, Any]) -> bool:
    return cell.get("deadline") is not None or cell.get("error") is not None


def endpoints(doc: dict[str, Any]) -> list[EndpointStatus]:
    """Every endpoint of a probe's results.json document, in the run's order."""
    from dicomtls.checks import SCENARIO as CHECKS  # here: reading the document needs no checks otherwise

    found = []
    for env in doc["environments"]:
        status = EndpointStatus(env["name"], env.get("error"))
        for cell in doc["cells"]:
            if cell["environment"] == env["name"]:
                (status.checks if cell["scenario"] == CHECKS else status.cells).append(cell)
        scan = env.get("scan")
        status.scan_error = "no TLS scan" if scan is None else scan.get("error")
        for chain in (scan or {}).get("chains", []):
            if chain.get("certificates") and chain.get("sni") != WRONG_SNI:
                leaf = chain["certificates"][0]
                status.certificates.append(ServedCertificate(chain.get("sni"), leaf["subject"],
                                                             _instant(leaf["not_after"])))
        status.violations = [v for v in doc.get("policy_violations", []) if v["environment"] == env["name"]]
        found.append(status)
    return found


def started(doc: dict[str, Any]) -> datetime:
    """When the run started (results.json's ``run.started``)."""
    return _instant(doc["run"]["started"])


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
