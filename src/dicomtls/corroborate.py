"""Explain a failure the client could not name from what the other cells and the scan of the same endpoint learnt.

Probing someone else's endpoint, dicomtls has no server log: dcmtk's bare
"Peer aborted Association" or EOF is all it says. But the same probe also ran
pynetdicom with the same certificate (Python's ssl reports the server's TLS
alert: unknown CA, certificate required) and scanned the port (which names it
TLS, and shows which SNI the endpoint serves a chain to). Each rule here takes
one such observation as the reason and quotes it as evidence, so the cell says
what was seen, not what was guessed.
"""

from __future__ import annotations

import dataclasses

from dicomtls.clients import client_class
from dicomtls.diagnose import EXPLANATIONS, peer_alert
from dicomtls.probes import WRONG_SNI
from dicomtls.reasons import Facts, Reason, Side
from dicomtls.results import CellResult
from dicomtls.scan import ScanResult

VAGUE = (Reason.TLS_HANDSHAKE_FAILED, Reason.DICOM_ASSOCIATION_ABORTED, Reason.UNKNOWN)
"""What a client says when the peer just went away."""
_TOLD_BY_PEER = (Reason.TLS_UNKNOWN_CA, Reason.TLS_CERT_REQUIRED, Reason.TLS_CERT_EXPIRED, Reason.TLS_CERT_REVOKED)
"""Reasons a TLS alert names: the same certificate gets the same alert, whichever client sends it."""


def corroborate(results: list[CellResult], scan: ScanResult | None) -> list[CellResult]:
    """``results`` of one endpoint, each vague failure replaced by a diagnosis the other observations support."""
    return [_explained(r, results, scan) if r.actual == "fail" and r.reason in VAGUE and r.error is None else r for r in results]


def _explained(r: CellResult, results: list[CellResult], scan: ScanResult | None) -> CellResult:
    probe = r.cell.probe
    if probe.transport == "plain":
        if scan is not None and not scan.error and scan.versions:
            return _because(r, Reason.TLS_PLAINTEXT_TO_TLS_PORT,
                            f"scan: this port completed TLS handshakes ({', '.join(scan.versions)}), so it expects TLS",
                            Facts())
        return r
    if scan is not None and not scan.error and (refused := _sni_refused(scan, probe.sni)):
        return _because(r, Reason.TLS_NO_MATCHING_SNI, refused, Facts(refused_by=Side.PROXY), _sni_summary(probe.sni))
    sibling = _same_certificate(r, results)
    if sibling is not None:
        # Quoted as evidence only: the sibling's reason and facts are what this cell takes.
        said = next((e.removeprefix("client: ") for e in sibling.evidence if e.startswith("client: ")), sibling.summary)
        alert = sibling.facts.peer_alert or peer_alert((said,))
        return dataclasses.replace(
            r, reason=sibling.reason, summary=sibling.summary, fix=sibling.fix, facts=sibling.facts,
            evidence=(*r.evidence, f"{client_class(sibling.cell.probe.client).display_name} with the same certificate "
                                   f"got: {alert.printed if alert else said}"))
    return r


def _sni_refused(scan: ScanResult, sni: str) -> str | None:
    """The scan's evidence that the endpoint closes handshakes with this cell's SNI (none, or an unknown name)
    while it serves a chain to the right one."""
    if sni not in ("none", "wrong") or not scan.sni:
        return None
    served = next((c for c in scan.chains if c.sni == scan.sni and c.certificates), None)
    asked = None if sni == "none" else WRONG_SNI
    refused = next((c for c in scan.chains if c.sni == asked and c.error), None)
    if served is None or refused is None:
        return None
    without = "without SNI" if asked is None else f"with SNI {asked}"
    return f"scan: a handshake {without} failed ({refused.error}); with SNI {scan.sni} it was served a chain"


def _sni_summary(sni: str) -> str:
    if sni == "none":
        return "the endpoint closed the connection: the client sent no SNI and only named hosts are served"
    return "the endpoint closed the connection: no route or certificate is configured for the SNI the client sent"


def _same_certificate(r: CellResult, results: list[CellResult]) -> CellResult | None:
    """A cell of a client that reports the peer's alert (pynetdicom) with the same client certificate (same SNI
    first) whose failure a TLS alert named."""
    probe = r.cell.probe
    candidates = [s for s in results if s is not r and client_class(s.cell.probe.client).reports_peer_alert
                  and s.actual == "fail"
                  and s.reason in _TOLD_BY_PEER and s.cell.probe.client_cert == probe.client_cert
                  and s.cell.probe.transport == "tls" and s.cell.probe.profile == "default"]
    same_sni = [s for s in candidates if s.cell.probe.sni == probe.sni]
    return next(iter(same_sni or candidates), None)


def _because(r: CellResult, reason: Reason, evidence: str, facts: Facts, summary: str | None = None) -> CellResult:
    default_summary, fix = EXPLANATIONS[reason]
    return dataclasses.replace(r, reason=reason, summary=summary or default_summary, fix=fix, facts=facts,
                               evidence=(*r.evidence, evidence))
