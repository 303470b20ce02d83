"""Turn what a failing client printed, and what the proxy logged, into one named reason with a fix.

The reasons are a fixed vocabulary so that scenarios can state *why* a cell is
expected to fail: a cell that fails for another reason is a finding too.
Classification reads the client's own error text first and the proxy's log
line second, because the proxy often knows what the client cannot (an Envoy
connection closed for want of a filter chain looks like a bare EOF to a client).

Besides the reason, a diagnosis carries typed ``Facts`` (which side refused whom, whether the proxy served its
fallback certificate, the TLS alert the client read, the proxy's own no-route line). Its summary is worded from
them, and whatever decides (fix candidates, corroboration, the runner) reads the facts, never the words.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field, replace

from dicomtls import components
from dicomtls.association import Rejection
from dicomtls.clients import advised
from dicomtls.profiles import Accepts, Offer, explain_cipher_mismatch, explain_version_mismatch
from dicomtls.reasons import Facts, PeerAlert, Reason, Side


def _explanations() -> dict[Reason, tuple[str, str]]:
    """Each reason's (summary, fix), the clients' and proxies' parts in their own words (``ClientKind.advice``,
    the components' settings), so that a new client or proxy is named where it has something to say."""
    reference = components.component_class(components.REFERENCE_PROXY)
    https_routes = [c.catch_all_route for c in components.listed()
                    if c.log_words.tcp_routed is not None and c.catch_all_route is not None]
    return {
        Reason.DNS_UNRESOLVED: (
            "the host name does not resolve to an address",
            "check the name (and this machine's DNS), or pin it with --resolve HOST:PORT:ADDRESS",
        ),
        Reason.TCP_REFUSED: (
            "nothing accepted the TCP connection on that address and port",
            "check the host, the port and that the proxy or server is running",
        ),
        Reason.TLS_NO_SHARED_CIPHER: (
            "client and server have no cipher suite in common",
            f"add a suite the client offers to the server's list ({reference.cipher_setting('AES128-SHA')}), "
            "or make the client offer ECDHE-RSA-AES128-GCM-SHA256",
        ),
        Reason.TLS_PROTOCOL_VERSION: (
            "client and server share no TLS protocol version",
            "align the server's minimum/maximum TLS version with what the client can speak",
        ),
        Reason.TLS_UNKNOWN_CA: (
            "a certificate was not issued by a CA the other side trusts",
            "give the verifying side the issuing CA (the server: its trusted CA bundle; the client: "
            f"{advised('trust-ca')}), "
            "or use a certificate from the CA it already trusts",
        ),
        Reason.TLS_CERT_REQUIRED: (
            "the server requires a client certificate and the client sent none",
            f"send a client certificate ({advised('send-client-cert')}), or make it optional on the server",
        ),
        Reason.TLS_CERT_EXPIRED: (
            "a certificate in the handshake is outside its validity period",
            "renew the certificate (and check the clocks of both machines)",
        ),
        Reason.TLS_CERT_REVOKED: (
            "the server rejected the client certificate: its CA revoked it (the certificate is on the CRL the "
            "server checks)",
            "issue the client a new certificate from the CA (a revoked one stays revoked); if it should not have "
            "been revoked, take it off the CA's CRL and give the server the new CRL",
        ),
        Reason.CLIENT_KEY_MISMATCH: (
            "the client refused its own certificate and key before connecting: the private key is not the one "
            "the certificate was issued for, so nothing reached the proxy or the server",
            "give the client the private key its certificate was issued for (the public keys of "
            "`openssl x509 -noout -pubkey -in CERT` and `openssl pkey -pubout -in KEY` must be equal), or a "
            "certificate issued for its key; the proxy and the server are not at fault",
        ),
        Reason.TLS_HOSTNAME_MISMATCH: (
            "the server's certificate does not name the host the client asked for",
            "issue the server certificate with a SAN for that name, or connect by a name it carries",
        ),
        Reason.TLS_NO_MATCHING_SNI: (
            "the proxy closed the connection: no route or certificate matches the client's SNI (or lack of one)",
            f"send SNI with a configured name ({advised('send-sni')}), "
            f"or give the proxy a catch-all route ({', '.join(components.said('catch_all_route'))})",
        ),
        Reason.TLS_PLAINTEXT_TO_TLS_PORT: (
            "the client spoke plain DICOM to a port that expects TLS",
            f"enable TLS in the client ({advised('use-tls')})",
        ),
        Reason.TLS_FELL_TO_HTTPS: (
            "the TLS handshake completed, but no TCP route matched the client's SNI (or lack of one), so the proxy "
            "handed the connection to its HTTPS handler, which waits for an HTTP request instead of passing DICOM on",
            f"make the TCP route match every client ({', '.join(https_routes)}, with TLS terminated or passed through), "
            f"or send SNI with the name the route carries ({advised('send-sni')})",
        ),
        Reason.TLS_HANDSHAKE_FAILED: (
            "the TLS handshake failed for a reason neither side named",
            "read the evidence; run `openssl s_client` against the endpoint with the same options",
        ),
        Reason.CLIENT_OFFERS_NOTHING: (
            "the client refused to start: after what its TLS library disables, its profile has no cipher suite or "
            "protocol left to offer, so it sent nothing and no server or proxy was involved",
            "give the client a profile its TLS library still allows, such as an ECDHE-GCM suite "
            f"({advised('default-profile')}; dcm4che on JDK 24: --tls12 without --tls-aes), or re-enable the "
            "suites on the client (JDK: jdk.tls.disabledAlgorithms in java.security)",
        ),
        Reason.DICOM_ASSOCIATION_REJECTED: (
            "TLS worked but the DICOM server rejected the association",
            "check the called AE title and the server's accepted calling AE titles and SOP classes",
        ),
        Reason.ASSOCIATION_REJECTED_CALLING_AET: (
            "TLS worked, but the DICOM server rejected the association: it does not know the client's calling AE "
            "title (A-ASSOCIATE-RJ: calling AE title not recognized)",
            "call as an AE title the server knows (--calling-aet, a scenario's calling_aet, dicomtls_calling_aet), or "
            "declare the client's AE title among the server's known modalities (DicomModalities; or let it answer "
            "any: DicomAlwaysAllowEcho/Store)",
        ),
        Reason.ASSOCIATION_REJECTED_CALLED_AET: (
            "TLS worked, but the DICOM server rejected the association: it does not answer to the called AE title "
            "(A-ASSOCIATE-RJ: called AE title not recognized)",
            "call the server's own AE title (--called-aet, or AET@HOST:PORT; the server's DicomAet), or let it "
            "accept any (DicomCheckCalledAet false)",
        ),
        Reason.DICOM_ASSOCIATION_ABORTED: (
            "the association was aborted or the connection closed before it was accepted",
            "read the proxy and server logs in the evidence",
        ),
        Reason.DIMSE_FAILURE: (
            "the association was accepted but the DIMSE operation returned a failure status",
            "check the server's log for why it refused the object",
        ),
        Reason.MOVE_DESTINATION_UNREACHABLE: (
            "the C-MOVE failed: the server knows the move destination but could not open the return association to "
            "it (nothing accepted its connection at the destination's address)",
            "point the destination's entry on the server (DicomModalities) at the client's Storage SCP as the "
            "server reaches it (not the ingress: the return association is plain DICOM from the server to the "
            "destination), and open that path (firewall, NetworkPolicy, the SCP listening)",
        ),
        Reason.MOVE_DESTINATION_UNKNOWN: (
            "the C-MOVE failed: the server does not know the move destination's AE title",
            "declare the destination AE title on the server with the client's address and port "
            "(DicomModalities, or PUT /modalities/{id} over REST), or move to an AE title it knows",
        ),
        Reason.UPSTREAM_UNREACHABLE: (
            "the proxy took the connection but could not connect to the DICOM server behind it, so it closed the "
            "client's connection",
            "check that the server runs and listens where the proxy's route points (the upstream address and port: "
            f"{', '.join(components.said('upstream_setting'))}; a Kubernetes Service's targetPort), "
            "and that the proxy may reach it",
        ),
        Reason.HTTP_ROUTE_MISSING: (
            "the TLS handshake completed, but the HTTPS route answered 404 Not Found: no route matches the request's "
            "host or path, or the server behind it does not serve that path",
            "route the host clients ask for (the SNI's name, or the address when they send none) and the path to "
            f"the server's HTTP port ({', '.join(components.said('web_route_setting'))}), and serve the web API "
            f"there ({'; '.join(components.said('web_api_setting'))})",
        ),
        Reason.HTTP_MISDIRECTED: (
            "the proxy answered 421 Misdirected Request: the request's host is not one the connection's SNI and "
            "certificate were chosen for",
            "ask for the same name in the URL as in the SNI (a client reusing a connection for another host must "
            "open a new one), or give both hosts one route and certificate",
        ),
        Reason.HTTP_REFUSED: (
            "the TLS handshake completed, but the HTTPS route answered with an HTTP error status",
            "read the status and the answer in the evidence: the proxy or the server behind it named why",
        ),
        Reason.CONNECTION_LOST: (
            "the association was established, then the path broke before the operation completed: the proxy or "
            "the server behind it went away (or reset the connection) mid-operation",
            "read the proxy's and the server's logs for a restart or crash at that time; the object was not "
            "stored, so send it again once the path is back (a modality's retry does)",
        ),
        Reason.STORE_NOT_VERIFIED: (
            "the C-STORE reported success but the object the server stored is missing or differs from what was sent",
            "something on the path altered or lost the data: check the proxy and the server",
        ),
        Reason.SERVER_CHECK_FAILED: (
            "a check on the server itself (its files, processes or ports) failed",
            "read the check's evidence: it names the file, setting or process and what was found",
        ),
        Reason.MISROUTED: (
            "the DICOM operation worked, but at another site than the one the client's SNI asked for",
            "route each site's names to that site's server (one route or filter chain per site, matched on SNI), "
            "and keep the catch-all route for clients without SNI only",
        ),
        Reason.TIMEOUT: (
            "no answer within the time limit",
            "check that the proxy forwards to a live upstream and that nothing drops packets",
        ),
        Reason.ENVIRONMENT_FAILED: (
            "the environment did not come up, so the probe never ran",
            "read the environment's logs named in the evidence",
        ),
        Reason.UNKNOWN: ("the failure matched no known pattern", "read the evidence"),
    }


class _Explanations(MutableMapping[Reason, tuple[str, str]]):
    """``EXPLANATIONS``, worded on first use: the clients' and proxies' words come from their registries, which
    importing this module does not discover."""

    def __init__(self) -> None:
        self._table: dict[Reason, tuple[str, str]] | None = None

    def _filled(self) -> dict[Reason, tuple[str, str]]:
        if self._table is None:
            self._table = _explanations()
        return self._table

    def __getitem__(self, reason: Reason) -> tuple[str, str]:
        return self._filled()[reason]

    def __setitem__(self, reason: Reason, words: tuple[str, str]) -> None:
        self._filled()[reason] = words

    def __delitem__(self, reason: Reason) -> None:
        del self._filled()[reason]

    def __iter__(self) -> Iterator[Reason]:
        return iter(self._filled())

    def __len__(self) -> int:
        return len(self._filled())


EXPLANATIONS: MutableMapping[Reason, tuple[str, str]] = _Explanations()
"""Each reason's (summary, fix): what a diagnosis says before the facts refine it, and the reasons' reference."""


SUMMARIES: dict[str, str] = {
    "server-rejected-untrusted":
        "the server rejected the client certificate ({sent_client_cert}): not issued by a CA it trusts",
    "client-rejected-untrusted": "the client rejected the server's certificate: not issued by a CA the client trusts",
    "server-rejected-expired": "the server rejected the client certificate because it has expired",
    "client-rejected-expired": "the client rejected the server's certificate because it has expired",
    "no-route-for-the-sni-sent":
        "the proxy closed the connection: no route or certificate is configured for the SNI the client sent",
    "no-route-without-sni":
        "the proxy closed the connection: the client sent no SNI and the proxy has no route for that",
    "fallback-certificate": "the client rejected the server's certificate: the proxy served its fallback certificate "
                            "because {why}",
    "fallback-for-the-sni-sent": "no certificate matches the SNI the client sent",
    "fallback-without-sni": "the client sent no SNI",
    "fallback-certificate-fix":
        "send SNI with the server's name ({send_sni}), or make the server certificate the proxy's default "
        "({default_certificate}); ignoring the server certificate ({skip_check}) connects too, but no longer "
        "authenticates the server",
    "the-sni-sent": "the SNI the client sent",
    "without-sni": "a client without SNI",
    "http-answer": "answered the A-ASSOCIATE-RQ with HTTP (PDU type 0x48 is the \"H\" of \"HTTP/1.1 400 Bad Request\")",
    "https-handler-answered": "the TLS handshake completed, but no TCP route matches {sni}, so {proxy} handed the "
                              "connection to its HTTPS handler, which {http}",
    "http-server-answered": "the TLS handshake completed, but an HTTP server {http}: the route {sni} takes through the "
                            "proxy (or the port itself) leads to HTTPS, not to DICOM",
    "https-handler-waited": "the TLS handshake completed, but no TCP route matches {sni}, so {proxy} handed the "
                            "connection to its HTTPS handler, which waits for an HTTP request: {proxy} logged the "
                            "certificate it served and no TCP connection, and the client timed out waiting for the "
                            "A-ASSOCIATE-AC",
    "store-unmeasured": "the C-STORE answered success, but the server stored the object in another transfer syntax "
                        "and what it holds could not be compared with what was sent, so delivery is not proven",
    "store-unmeasured-fix": "the evidence names the stored transfer syntax and why its pixels were not compared: "
                            "where no decoder reads it here, install one pydicom uses (python-gdcm, or pylibjpeg "
                            "with its plugins) and run again; a lossy IngestTranscoding cannot give back the pixels "
                            "sent, so check delivery with a lossless one",
}
"""The words of every summary that refines a reason's explanation, by what the facts established. Nothing decides
on them: ``Facts`` carries what was found, so the wording can change without changing a verdict."""


def deadline_explanation(which: str, limit_s: float, ran: bool) -> tuple[str, str]:
    """(summary, fix) of a cell that a deadline ended, reason ``timeout``: ``which`` is the cell's own deadline or
    the run's, ``ran``: whether the cell had started (its client was stopped) or was never run."""
    if which == "cell":
        return (f"the cell did not end within its deadline of {limit_s:g} s, so dicomtls stopped its client; the "
                "evidence is what the client and the logs said until then",
                "if the path is only slow, allow more with --timeout cell=SECONDS; otherwise the last step the "
                "evidence shows answered is where it stalls: check that the proxy forwards to a live upstream that "
                "answers, and that nothing drops packets")
    if ran:
        return (f"the run's deadline of {limit_s:g} s passed while this cell ran, so dicomtls stopped its client; "
                "the evidence is what the client and the logs said until then",
                "allow the run more with --timeout run=SECONDS, or run less at once (--scenario, --shard K/N)")
    return (f"the run's deadline of {limit_s:g} s passed before this cell ran, so it was not run",
            "allow the run more with --timeout run=SECONDS, or run less at once (--scenario, --shard K/N)")


@dataclass(frozen=True)
class Diagnosis:
    reason: Reason
    summary: str
    fix: str
    evidence: tuple[str, ...] = field(default_factory=tuple)
    facts: Facts = field(default_factory=Facts)

    @property
    def server_refused_client(self) -> bool:
        """See ``Facts.server_refused_client``."""
        return self.facts.server_refused_client


@dataclass(frozen=True)
class Symptoms:
    """What a failed probe observed, in the words of the programs involved."""

    client_lines: tuple[str, ...]
    proxy_lines: tuple[str, ...] = ()
    sent_sni: bool = False
    sent_client_cert: str = "none"  # the client_cert axis value: none | valid | untrusted | expired | revoked | …
    dicom_stage: str = "connect"  # how far the probe got: connect | associate | dimse | verify
    client_cert_expired_on: str | None = None  # set when the certificate the client sent is past notAfter
    client_cert_revoked_on: str | None = None  # set when the PKI's CRL lists the certificate the client sent
    offered: Offer | None = None  # the client's TLS versions and suites, from its profile
    transport: str = "tls"  # tls | plain: what the client spoke
    peer_certificate: str | None = None  # the server certificate's name, when the client got through the handshake
    server_accepts: Accepts | None = None  # the server's, from a scan of the endpoint
    server_kind: str | None = None  # the component that terminates TLS (envoy, traefik, …), for fixes in its terms
    rejection: Rejection | None = None  # the server's A-ASSOCIATE-RJ, as the client received it
    operation_failure: tuple[Reason, str] | None = None  # the server's log line naming why the operation failed
    http_status: int | None = None  # the HTTP status an HTTPS client (DICOMweb) was answered, when it got one


# (pattern, reason) pairs tried in order on the client's text; the first hit wins. Texts are matched
# case-insensitively with underscores read as spaces, so "NO_SHARED_CIPHER" and "no shared cipher" are one.
_CLIENT_PATTERNS: tuple[tuple[str, Reason], ...] = (
    # Python's ssl (set_ciphers), and JSSE's SSLHandshakeException when every enabled suite is disabled.
    (r"No cipher can be selected|No appropriate protocol \(protocol is disabled or cipher suites are inappropriate\)",
     Reason.CLIENT_OFFERS_NOTHING),
    # The client's TLS library checked its own certificate and key as it loaded them (Python's ssl, dcmtk).
    (r"key values mismatch|Private key '.*' and certificate '.*' do not match", Reason.CLIENT_KEY_MISMATCH),
    (r"connection refused|ECONNREFUSED|Errno 111", Reason.TCP_REFUSED),
    (r"no shared cipher|no ciphers available", Reason.TLS_NO_SHARED_CIPHER),
    (r"unsupported protocol|alert protocol version|wrong ssl version|no protocols available", Reason.TLS_PROTOCOL_VERSION),
    (r"unrecognized name", Reason.TLS_NO_MATCHING_SNI),
    (r"alert unknown ca", Reason.TLS_UNKNOWN_CA),
    (r"certificate revoked", Reason.TLS_CERT_REVOKED),
    (r"certificate required|peer did not return a certificate", Reason.TLS_CERT_REQUIRED),
    (r"certificate expired|certificate has expired", Reason.TLS_CERT_EXPIRED),
    (r"hostname mismatch|IP address mismatch|doesn't match|CERT: Subject checks failed", Reason.TLS_HOSTNAME_MISMATCH),
    (r"unable to get local issuer|self[- ]signed certificate|certificate verify failed"
     r"|unable to verify the first certificate|alert bad certificate", Reason.TLS_UNKNOWN_CA),
    # dcmtk read a TLS record (0x15 alert, 0x16 handshake) where it expected a DICOM PDU.
    (r"wrong version number|http request|packet length too long|Unrecognized PDU type: 1[56]\b",
     Reason.TLS_PLAINTEXT_TO_TLS_PORT),
    (r"handshake failure", Reason.TLS_NO_SHARED_CIPHER),
    (r"Association Rejected|association was rejected|A-ASSOCIATE-RJ", Reason.DICOM_ASSOCIATION_REJECTED),
    (r"timed out|timeout", Reason.TIMEOUT),
)


@dataclass(frozen=True)
class _ProxyWords:
    """The registered components' log words (``Component.log_words``), gathered once for every proxy line."""

    no_route: str
    patterns: tuple[tuple[str, Reason], ...]
    """Proxy log patterns that name the cause outright; they win over a client's vaguer words."""
    upstream_broke: re.Pattern[str]
    fallback_certificate: re.Pattern[str]
    https_handlers: tuple[tuple[type[components.Component], re.Pattern[str]], ...]
    """The components that hand a TLS connection no TCP route matched to their HTTPS handler, each with the line it
    logs for a connection a TCP router took."""


def _any_of(patterns: list[str | None]) -> str:
    """One pattern matching any of them (each once); none: a pattern that never matches."""
    found = [p for p in dict.fromkeys(patterns) if p is not None]
    return "|".join(f"(?:{p})" for p in found) or "(?!)"


@functools.cache
def _proxy_words() -> _ProxyWords:
    """OpenSSL's words (which most proxies and Orthanc log) here, each component's own beside them, in listing
    order: the upstream-unreachable patterns are tried one component after another. Gathered on first use, so
    importing this module discovers no component."""
    words = [c.log_words for c in components.listed()]
    no_route = _any_of([w.no_route for w in words])
    return _ProxyWords(
        no_route,
        (
            (no_route, Reason.TLS_NO_MATCHING_SNI),
            (r"no shared cipher|no ciphers available", Reason.TLS_NO_SHARED_CIPHER),
            (r"unsupported protocol", Reason.TLS_PROTOCOL_VERSION),
            (_any_of([r"peer did not return a certificate", *(w.certificate_required for w in words)]),
             Reason.TLS_CERT_REQUIRED),
            (r"certificate has expired|certificate expired", Reason.TLS_CERT_EXPIRED),
            # OpenSSL's and BoringSSL's X509_V_ERR_CERT_REVOKED, before the "verify failed" that Envoy logs with it.
            (r"certificate revoked", Reason.TLS_CERT_REVOKED),
            (_any_of([r"unable to get local issuer|unable to get issuer|self[- ]signed certificate"
                      r"|certificate verify failed|unable to verify the first certificate",
                      *(w.unknown_ca for w in words)]), Reason.TLS_UNKNOWN_CA),
            (r"wrong version number|http request", Reason.TLS_PLAINTEXT_TO_TLS_PORT),
            *((p, Reason.UPSTREAM_UNREACHABLE) for p in dict.fromkeys(w.upstream_unreachable for w in words) if p),
        ),
        re.compile(_any_of([w.upstream_broke for w in words]), re.IGNORECASE),
        re.compile(_any_of([w.fallback_certificate for w in words]), re.IGNORECASE),
        tuple((c, re.compile(c.log_words.tcp_routed, re.IGNORECASE)) for c in components.listed()
              if c.log_words.tcp_routed),
    )


# The association was up and then the connection went away (pynetdicom's and dcmtk's words).
_LOST_MIDWAY = re.compile(
    r"Connection closed while waiting for DIMSE|no DIMSE response \(connection lost\)|Peer aborted Association"
    r"|DIMSE Failed to send message|DIMSE Read PDV failed|Association Aborted|Broken pipe|Connection reset",
    re.IGNORECASE,
)

# Client texts that mean "the peer just went away": the proxy log, or the context, must say why.
_BARE_CLOSE = re.compile(
    r"SSL ERROR SYSCALL|unexpected eof|EOF occurred|Broken pipe|Connection reset|ECONNRESET"
    r"|Peer aborted Association|never connected|Association Aborted|A-ABORT|closed",
    re.IGNORECASE,
)

# RFC 8446 §6 alert descriptions in OpenSSL's words (the longer name first where one begins another).
_ALERT_NAMES = (
    "close notify", "unexpected message", "bad record mac", "record overflow", "handshake failure",
    "bad certificate status response", "bad certificate hash value", "bad certificate", "unsupported certificate",
    "certificate revoked", "certificate expired", "certificate unknown", "certificate unobtainable",
    "illegal parameter", "unknown ca", "access denied", "decode error", "decrypt error", "protocol version",
    "insufficient security", "internal error", "inappropriate fallback", "user canceled", "missing extension",
    "unsupported extension", "unrecognized name", "unknown psk identity", "certificate required",
    "no application protocol",
)
# OpenSSL (dcmtk, Python's ssl) prints a received alert as "sslv3 alert NAME", "tlsv1 alert NAME", "tlsv13 alert
# NAME", and a few TLS 1.0 extension alerts as "tlsv1 NAME".
_ALERT = re.compile(rf"\b(?:sslv3|tlsv1\d?) (?:alert )?(?P<name>{'|'.join(_ALERT_NAMES)})\b", re.I)
# The alerts a server sends when it turns the client's certificate away.
_REFUSING_CLIENT_CERTIFICATE = frozenset({"unknown_ca", "bad_certificate"})


# An HTTP server's answer read as a DICOM PDU: 0x48 is the "H" of "HTTP/1.1 400 Bad Request" (dcmtk prints the
# type in hex, pynetdicom with 0x).
_HTTP_ANSWER = re.compile(r"Unrecognized PDU type: 48\b|Unknown PDU type received '0x48'", re.I)
# The client sent its A-ASSOCIATE-RQ, so its TLS handshake had completed (pynetdicom's words).
_ASSOCIATE_RQ_UNANSWERED = re.compile(r"ACSE timeout reached while waiting for response to association request", re.I)


def _plain(line: str) -> str:
    return line.replace("_", " ")


def refused_by_a_live_proxy(evidence: tuple[str, ...]) -> bool:
    """The proxy's own line for this connection turns it away for want of a route: as surely as a TLS alert, that
    shows a proxy that was up and deciding, so a component that was going away needs no ruling out."""
    no_route = re.compile(_proxy_words().no_route, re.IGNORECASE)
    return any(line.startswith("proxy: ") and no_route.search(_plain(line)) for line in evidence)


def peer_alert(lines: tuple[str, ...]) -> PeerAlert | None:
    """The first TLS alert from the peer that the client printed in ``lines``."""
    for line in lines:
        if found := _ALERT.search(_plain(line)):
            return PeerAlert(found["name"].lower().replace(" ", "_"), found.group(0).lower())
    return None


def _first_match(lines: tuple[str, ...], patterns: tuple[tuple[str, Reason], ...]) -> tuple[Reason, str] | None:
    for pattern, reason in patterns:
        rx = re.compile(pattern, re.IGNORECASE)
        for line in lines:
            if rx.search(_plain(line)):
                return reason, line
    return None


def _refused_by(reason: Reason, symptoms: Symptoms, client_line: str | None) -> Side | None:
    """Which side turned the other away, from the reason, the alert in the client's matched line and whether the
    client or only the proxy named the cause."""
    if reason is Reason.TLS_UNKNOWN_CA:
        alert = peer_alert((client_line,)) if client_line else None
        told = alert is not None and alert.description in _REFUSING_CLIENT_CERTIFICATE
        # The peer's alert turned the client's certificate away, or only the proxy's log names the cause (the client
        # saw a bare close): the server refused. Otherwise the client's own verification failed.
        return Side.SERVER if told or symptoms.proxy_lines and not client_line else Side.CLIENT
    if reason is Reason.TLS_CERT_EXPIRED:
        return Side.SERVER if symptoms.sent_client_cert == "expired" else Side.CLIENT
    if reason in (Reason.TLS_CERT_REQUIRED, Reason.TLS_CERT_REVOKED):
        return Side.SERVER
    if reason is Reason.TLS_HOSTNAME_MISMATCH:
        return Side.CLIENT
    if reason is Reason.TLS_NO_MATCHING_SNI:
        return Side.PROXY
    return None


def _summary(reason: Reason, refused_by: Side | None, symptoms: Symptoms) -> str:
    """The reason's explanation, said of the sides the facts name."""
    if reason is Reason.TLS_UNKNOWN_CA:
        words = "server-rejected-untrusted" if refused_by is Side.SERVER else "client-rejected-untrusted"
        return SUMMARIES[words].format(sent_client_cert=symptoms.sent_client_cert)
    if reason is Reason.TLS_CERT_EXPIRED:
        return SUMMARIES["server-rejected-expired" if refused_by is Side.SERVER else "client-rejected-expired"]
    if reason is Reason.TLS_NO_MATCHING_SNI:
        return SUMMARIES["no-route-for-the-sni-sent" if symptoms.sent_sni else "no-route-without-sni"]
    return EXPLANATIONS[reason][0]


def diagnose(symptoms: Symptoms) -> Diagnosis:
    """Name the reason for one failed cell, with the lines that show it."""
    if symptoms.rejection is not None:
        return _rejected(symptoms, symptoms.rejection)
    if symptoms.http_status is not None and symptoms.dicom_stage != "verify":
        from dicomtls.diagnose_http import diagnose_http

        return diagnose_http(symptoms, symptoms.http_status)
    client = _first_match(symptoms.client_lines, _CLIENT_PATTERNS)
    words = _proxy_words()
    proxy = _first_match(symptoms.proxy_lines, words.patterns)
    evidence: list[str] = []
    client_line = client[1] if client else next((l for l in symptoms.client_lines if _BARE_CLOSE.search(_plain(l))), None)
    if client_line:
        evidence.append(f"client: {client_line.strip()}")
    elif symptoms.client_lines:
        evidence.append(f"client: {symptoms.client_lines[-1].strip()}")
    if proxy:
        evidence.append(f"proxy: {proxy[1].strip()}")
    elif symptoms.proxy_lines:
        evidence.append(f"proxy: {symptoms.proxy_lines[-1].strip()}")

    reason = _choose(symptoms, client, proxy)
    if symptoms.operation_failure is not None and reason is symptoms.operation_failure[0]:
        evidence = [e for e in evidence if not e.startswith("proxy: ")] + [f"proxy: {symptoms.operation_failure[1]}"]
    broke = next((l for l in symptoms.proxy_lines if words.upstream_broke.search(l)), None)
    if reason is Reason.CONNECTION_LOST and broke and not proxy:
        evidence = [e for e in evidence if not e.startswith("proxy: ")] + [f"proxy: {broke.strip()}"]
    refused_by = _refused_by(reason, symptoms, client[1] if client else None)
    summary = _summary(reason, refused_by, symptoms)
    if fell := _fell_to_https(symptoms, reason):
        reason, summary, evidence, refused_by = Reason.TLS_FELL_TO_HTTPS, fell[0], fell[1], None
    # Some servers (dcmtk inside Orthanc) say only "certificate verify failed"; the certificate itself says why.
    if reason is Reason.TLS_UNKNOWN_CA and symptoms.client_cert_expired_on and refused_by is Side.SERVER:
        reason = Reason.TLS_CERT_EXPIRED
        refused_by = _refused_by(reason, symptoms, None)
        summary = _summary(reason, refused_by, symptoms)
        evidence.append(f"client certificate: expired on {symptoms.client_cert_expired_on} (checked locally; "
                        "the server named no reason)")
    # Others (HAProxy 2.6: "client certificate not trusted") do not say it was revocation; the CRL does.
    if reason is Reason.TLS_UNKNOWN_CA and symptoms.client_cert_revoked_on and refused_by is Side.SERVER:
        reason = Reason.TLS_CERT_REVOKED
        summary = _summary(reason, refused_by, symptoms)
        evidence.append(f"client certificate: revoked on {symptoms.client_cert_revoked_on} by the PKI's CRL "
                        "(checked locally; the server named no reason)")
    _, fix = EXPLANATIONS[reason]
    fallback = next((l for l in symptoms.proxy_lines if words.fallback_certificate.search(l)), None)
    facts = Facts(refused_by, fallback_certificate=fallback is not None,
                  peer_alert=peer_alert(((client[1],) if client else ()) + symptoms.client_lines))
    if reason is Reason.TLS_UNKNOWN_CA and fallback and facts.fallback_certificate_rejected:
        summary, fix = _fallback_certificate(symptoms.sent_sni)
        evidence = [e for e in evidence if not e.startswith("proxy: ")] + [f"proxy: {fallback.strip()}"]
    # Both sides of a negotiation failure, where the probe and the scan know them.
    mismatch = (explain_cipher_mismatch(symptoms.offered, symptoms.server_accepts, symptoms.server_kind)
                if reason is Reason.TLS_NO_SHARED_CIPHER else
                explain_version_mismatch(symptoms.offered, symptoms.server_accepts)
                if reason is Reason.TLS_PROTOCOL_VERSION else None)
    if mismatch:
        summary, fix = f"{summary}: {mismatch.summary}", mismatch.fix
    facts = replace(facts, proxy_logged_no_route=refused_by_a_live_proxy(tuple(evidence)))
    return Diagnosis(reason, summary, fix, tuple(evidence), facts)


def _rejected(symptoms: Symptoms, rejection: Rejection) -> Diagnosis:
    """The server's A-ASSOCIATE-RJ names the reason: TLS worked, and the server answered."""
    if rejection.calling_aet_unknown:
        reason = Reason.ASSOCIATION_REJECTED_CALLING_AET
    elif rejection.called_aet_unknown:
        reason = Reason.ASSOCIATION_REJECTED_CALLED_AET
    else:
        reason = Reason.DICOM_ASSOCIATION_REJECTED
    summary, fix = EXPLANATIONS[reason]
    if reason is Reason.DICOM_ASSOCIATION_REJECTED:
        summary = f"{summary} ({rejection.describe()})"
    shown = [l for l in symptoms.client_lines if re.search(r"Rejected|Result:|Reason:", l)]
    evidence = list(dict.fromkeys(f"client: {line.strip()}" for line in shown or symptoms.client_lines[-1:]))
    evidence += [f"proxy: {line.strip()}" for line in symptoms.proxy_lines if re.search(r"Reject", line)][:1]
    return Diagnosis(reason, summary, fix, tuple(evidence), Facts(rejection=rejection))


def _fell_to_https(symptoms: Symptoms, reason: Reason) -> tuple[str, list[str]] | None:
    """(summary, evidence) when a completed TLS connection went to the proxy's HTTPS handler, not to DICOM.

    Traefik's TCP muxer never matches a missing or unknown SNI to a named HostSNI, so the connection goes to the
    HTTPS handler (Go's HTTP server), which reads the A-ASSOCIATE-RQ as an HTTP request line: it answers
    "400 Bad Request" when its readTimeout expires (60 s by default in v3, never before 2.11.2), and the client
    reads that as PDU type 0x48. Without the answer, Traefik's own log tells: a certificate served, no TCP connection.
    """
    if symptoms.transport != "tls" or symptoms.dicom_stage not in ("connect", "associate"):
        return None
    words = _proxy_words()
    # The lines of the first proxy (by its name in the logs, its kind) that has an HTTPS handler and logged any.
    handler, routed, logged = next(
        ((c, routed, lines) for c, routed in words.https_handlers
         if (lines := tuple(l for l in symptoms.proxy_lines if l.startswith(c.kind)))),
        (None, None, ()))
    served = next((l for l in logged if words.fallback_certificate.search(l)), None)
    sni = SUMMARIES["the-sni-sent" if symptoms.sent_sni else "without-sni"]
    answered = next((l for l in symptoms.client_lines if _HTTP_ANSWER.search(l)), None)
    http = SUMMARIES["http-answer"]
    if answered and handler:
        evidence = [f"client: {answered.strip()}"] + ([f"proxy: {served.strip()}"] if served else [])
        return SUMMARIES["https-handler-answered"].format(sni=sni, http=http, proxy=handler.display_name), evidence
    if answered:
        return SUMMARIES["http-server-answered"].format(sni=sni, http=http), [f"client: {answered.strip()}"]
    unanswered = next((l for l in symptoms.client_lines if _ASSOCIATE_RQ_UNANSWERED.search(l)), None)
    handshake_done = symptoms.peer_certificate is not None or unanswered is not None
    if reason is Reason.TIMEOUT and handshake_done and served and handler and routed \
            and not any(routed.search(l) for l in logged):
        waited = unanswered or next((l for l in symptoms.client_lines if re.search(r"timed out|timeout", l, re.I)), "")
        return (SUMMARIES["https-handler-waited"].format(sni=sni, proxy=handler.display_name),
                [f"client: {waited.strip()}", f"proxy: {served.strip()}"])
    return None


def _fallback_certificate(sent_sni: bool) -> tuple[str, str]:
    """(summary, fix) when the certificate the client rejected is the proxy's fallback, not the server's."""
    why = SUMMARIES["fallback-for-the-sni-sent" if sent_sni else "fallback-without-sni"]
    fix = SUMMARIES["fallback-certificate-fix"].format(
        send_sni=advised("send-sni"), default_certificate="; ".join(components.said("default_certificate_setting")),
        skip_check=advised("skip-server-check"))
    return SUMMARIES["fallback-certificate"].format(why=why), fix


_CLIENT_REFUSED_ITSELF = frozenset({Reason.CLIENT_OFFERS_NOTHING, Reason.CLIENT_KEY_MISMATCH})
"""Reasons the client's own setup establishes before it sends a byte."""


def _choose(symptoms: Symptoms, client: tuple[Reason, str] | None, proxy: tuple[Reason, str] | None) -> Reason:
    if client is not None and client[0] in _CLIENT_REFUSED_ITSELF:
        return client[0]  # nothing left the client: no proxy line can be about it
    if symptoms.dicom_stage == "setup":
        return Reason.CLIENT_OFFERS_NOTHING
    if symptoms.dicom_stage == "verify":
        return Reason.STORE_NOT_VERIFIED
    if symptoms.dicom_stage == "dimse" and not client and any(_LOST_MIDWAY.search(l) for l in symptoms.client_lines):
        return Reason.CONNECTION_LOST
    if symptoms.dicom_stage == "dimse" and not client and symptoms.operation_failure is not None:
        return symptoms.operation_failure[0]
    if symptoms.dicom_stage == "dimse" and not client:
        return Reason.DIMSE_FAILURE
    # A generic handshake_failure alert (or a bare close) is explained better by the proxy.
    if proxy and (client is None or client[0] in (Reason.TLS_NO_SHARED_CIPHER, Reason.TIMEOUT)):
        return proxy[0]
    if client:
        return client[0]
    if proxy:
        return proxy[0]
    text = _plain("\n".join(symptoms.client_lines))
    if _BARE_CLOSE.search(text):
        if symptoms.dicom_stage == "connect":
            return Reason.TLS_HANDSHAKE_FAILED
        return Reason.DICOM_ASSOCIATION_ABORTED
    return Reason.UNKNOWN
