"""An HTTPS client's failure after the TLS handshake (DICOMweb through a proxy's web route): the HTTP status names
the cause, as an alert does for a handshake, so the status decides and the answer's words are only evidence.

nginx answers a client certificate refused on an http {} server with 400 and its own words (its internal 496 "No
required SSL certificate was sent", 495 "The SSL certificate error"): those are the TLS reasons the stream server
gives as a closed connection, said by the server, so a scenario expects the same reason on both routes.
"""

from __future__ import annotations

import re

from dicomtls.diagnose import EXPLANATIONS, SUMMARIES, Diagnosis, Symptoms
from dicomtls.reasons import Facts, Reason, Side

_NO_CERTIFICATE = re.compile(r"No required SSL certificate was sent", re.I)  # nginx's 496
_BAD_CERTIFICATE = re.compile(r"The SSL certificate error", re.I)  # nginx's 495

STATUS_REASONS = {404: Reason.HTTP_ROUTE_MISSING, 421: Reason.HTTP_MISDIRECTED, 495: Reason.TLS_UNKNOWN_CA,
                  496: Reason.TLS_CERT_REQUIRED, 502: Reason.UPSTREAM_UNREACHABLE,
                  503: Reason.UPSTREAM_UNREACHABLE, 504: Reason.UPSTREAM_UNREACHABLE}
"""The statuses that name a cause; any other error status is ``http-refused`` with the answer as evidence."""


def diagnose_http(symptoms: Symptoms, status: int) -> Diagnosis:
    """The reason an HTTPS request got ``status``, with the client's line and the proxy's lines as evidence."""
    said = next((line for line in reversed(symptoms.client_lines) if f"HTTP {status}" in line),
                symptoms.client_lines[-1] if symptoms.client_lines else f"HTTP {status}")
    if _NO_CERTIFICATE.search(said):
        status = 496
    elif _BAD_CERTIFICATE.search(said):
        status = 495
    reason = STATUS_REASONS.get(status, Reason.HTTP_REFUSED)
    summary, fix = EXPLANATIONS[reason]
    refused_by = None
    if reason is Reason.TLS_UNKNOWN_CA and symptoms.client_cert_expired_on:
        reason, (summary, fix) = Reason.TLS_CERT_EXPIRED, EXPLANATIONS[Reason.TLS_CERT_EXPIRED]
        summary = SUMMARIES["server-rejected-expired"]
    elif reason is Reason.TLS_UNKNOWN_CA:
        summary = SUMMARIES["server-rejected-untrusted"].format(sent_client_cert=symptoms.sent_client_cert)
    if reason in (Reason.TLS_UNKNOWN_CA, Reason.TLS_CERT_EXPIRED, Reason.TLS_CERT_REQUIRED):
        refused_by = Side.SERVER
    evidence = [f"client: {said.strip()}", *(f"proxy: {line.strip()}" for line in symptoms.proxy_lines[-2:])]
    return Diagnosis(reason, summary, fix, tuple(evidence), Facts(refused_by))
