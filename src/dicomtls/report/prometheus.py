"""`invoke probe --format prometheus`: the probe as a node_exporter textfile (Prometheus' text exposition format).

One-shot: a systemd timer or cron runs the probe, node_exporter's textfile collector serves what it last wrote.
The collector may read the file at any moment, so it is written whole or not at all (prometheus_client's
``write_to_textfile``: a temporary file beside it, renamed over it). Every gauge carries the endpoint as ``target``;
a cell's gauges carry its probe axes too. A cell that was not measured (a deadline ended it, or dicomtls failed
running it) has no success gauge: it is counted as unmeasured, never as a failure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile

from dicomtls.report.endpoint_status import endpoints, started, unmeasured

PREFIX = "dicomtls"
CELL_LABELS = ("target", "client", "sni", "client_cert", "operation", "transport", "server_cert_check", "profile",
               "client_version", "fault")
"""The endpoint and every probe axis: together they name one cell."""


def registry(doc: dict[str, Any], policy: bool) -> CollectorRegistry:
    """The gauges of a probe's results.json document; ``policy``: a policy judged the run (--policy, --fail-on),
    so its verdict is exported."""
    found = CollectorRegistry()

    def gauge(name: str, text: str, labels: tuple[str, ...] = ("target",), unit: str = "") -> Gauge:
        return Gauge(f"{PREFIX}_{name}", text, labels, unit=unit, registry=found)

    success = gauge("probe_success", "1 when some client passed against the endpoint and no server check failed, "
                                     "as invoke probe requires")
    cells = gauge("cells", "The endpoint's client cells by state: passed, failed, or unmeasured (a deadline ended "
                           "it or dicomtls failed running it)", ("target", "state"))
    cell_success = gauge("cell_success", "1 when the cell's client passed (a C-ECHO or verified C-STORE)",
                         CELL_LABELS)
    cell_duration = gauge("cell_duration", "The cell's client run: connection, TLS handshake, association, the "
                                           "operation and release", CELL_LABELS, unit="seconds")
    association = gauge("association_duration", "From connecting to the accepted association: TCP, the TLS "
                                                "handshake and A-ASSOCIATE (where the client measures it)",
                        CELL_LABELS, unit="seconds")
    check_success = gauge("check_success", "1 when the inventory host's server check passed", ("target", "check"))
    scan_success = gauge("scan_success", "1 when the TLS scan of the endpoint completed")
    expiry = gauge("certificate_expiry", "When the certificate the endpoint serves expires (its notAfter), as Unix "
                                         "time; sni=none: served without SNI", ("target", "sni", "subject"),
                   unit="timestamp_seconds")
    if policy:
        policy_ok = gauge("policy_ok", "1 when the endpoint broke no rule of the policy")
        broken = gauge("policy_violations", "The policy rules the endpoint broke: one per cell and rule, plus "
                                            "each finding, profile and certificate rule broken")
    for status in endpoints(doc):
        success.labels(status.name).set(1 if status.up else 0)
        failed = sum(1 for c in status.measured if c["actual"] != "pass")
        for state, count in (("passed", status.passed), ("failed", failed),
                             ("unmeasured", len(status.cells) - len(status.measured))):
            cells.labels(status.name, state).set(count)
        for cell in status.cells:
            if unmeasured(cell):
                continue
            labels = [status.name, *(str(cell[axis]) for axis in CELL_LABELS[1:])]
            cell_success.labels(*labels).set(1 if cell["actual"] == "pass" else 0)
            cell_duration.labels(*labels).set(cell["duration_s"])
            if cell.get("association_s") is not None:
                association.labels(*labels).set(cell["association_s"])
        for check in status.checks:
            if not unmeasured(check):
                check_success.labels(status.name, check["id"]).set(1 if check["actual"] == "pass" else 0)
        scan_success.labels(status.name).set(0 if status.scan_error else 1)
        for cert in status.certificates:
            expiry.labels(status.name, cert.sni or "none", cert.subject).set(cert.not_after.timestamp())
        if policy:
            count = sum(len(c["policy"]) for c in status.broken_cells) + len(status.violations)
            policy_ok.labels(status.name).set(0 if count else 1)
            broken.labels(status.name).set(count)
    Gauge(f"{PREFIX}_probe_duration", "The probe's wall time", unit="seconds", registry=found).set(
        doc["run"]["wall_s"])
    Gauge(f"{PREFIX}_probe_started", "When the probe started, as Unix time: a textfile that stops changing shows "
                                     "the timer stopped", unit="timestamp_seconds", registry=found).set(
        started(doc).timestamp())
    return found


def write(doc: dict[str, Any], textfile: Path | None, policy: bool) -> None:
    """Write the gauges to ``textfile`` atomically (temporary file, then rename), or to stdout when it is None."""
    found = registry(doc, policy)
    if textfile is None:
        sys.stdout.buffer.write(generate_latest(found))
        sys.stdout.flush()
    else:
        write_to_textfile(str(textfile), found)
