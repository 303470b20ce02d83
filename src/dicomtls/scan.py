"""Scan one TLS endpoint and judge it against the DICOM TLS profiles of PS3.15 Annex B.

sslyze does the protocol and cipher enumeration (it carries its own OpenSSL
builds, legacy included, so TLS 1.0 and SSL 3.0 can be tried even where the
system OpenSSL refuses them); nassl, sslyze's binding, fetches the certificate
chain once with SNI and once without, because proxies choose what they serve by
SNI. The verdicts are computed from what was observed, never from configuration.

A scan always ends, in a result or a scan error with its reason: sslyze's
connectivity test runs first in the scan's own thread (in sslyze's thread an
exception other than its ConnectionToServerFailed kills the thread and sslyze
then waits for its result forever), and its enumeration has a deadline. What a
probe could not establish (an error, not the peer's refusal) is recorded as
unknown with that error, and a verdict that depends on it is unknown too.

SSL 2.0 has no certificate chains, and the legacy OpenSSL refuses to load a
chain file of more than one certificate into an SSL 2.0 context, with an empty
error queue (nassl: "Unknown error: invalid input, usage, or OpenSSL build
configuration?"). So SSL 2.0 is tried with the leaf alone; sslyze's
connectivity test, which falls back to SSL 2.0 when TLS 1.3 to SSL 3.0 all
fail (an SNI-routed proxy reached by an address that names none of its
hosts), is then retried with the leaf alone.
"""

from __future__ import annotations

import queue
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from dicomtls.crash import first_line
from dicomtls.findings import Severity
from dicomtls.probes import WRONG_SNI
from dicomtls.profiles import DICOM_PROFILES, TLS_VERSIONS, DicomProfile, Rule
from dicomtls.resolve import host_port

SCAN_TIMEOUT_S = 5
ENUMERATION_DEADLINE_S = 180.0
"""How long sslyze's enumeration may take before the scan is a scan error: about a second on a healthy endpoint,
minutes only when every handshake times out."""
SCAN_ERROR = "scan-error"

_COMMANDS = {  # sslyze scan command name -> the version it enumerates
    "ssl_2_0_cipher_suites": "SSL 2.0",
    "ssl_3_0_cipher_suites": "SSL 3.0",
    "tls_1_0_cipher_suites": "TLS 1.0",
    "tls_1_1_cipher_suites": "TLS 1.1",
    "tls_1_2_cipher_suites": "TLS 1.2",
    "tls_1_3_cipher_suites": "TLS 1.3",
}


@dataclass(frozen=True)
class Endpoint:
    """What to scan and how to authenticate to it; ``host`` is the address to connect to (an IP literal, found by
    :mod:`dicomtls.resolve`), ``name`` the host name it was given as, if any."""

    host: str
    port: int
    sni: str | None = None
    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    other_names: tuple[str, ...] = ()
    """More names whose chains to fetch: the other sites behind the same proxy."""
    name: str | None = None

    def __str__(self) -> str:
        return host_port(self.name or self.host, self.port)


@dataclass(frozen=True)
class AcceptedSuite:
    name: str  # IANA, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    openssl_name: str
    key_exchange: str | None = None  # ECDH / DH, when ephemeral
    key_exchange_bits: int | None = None
    curve: str | None = None


@dataclass(frozen=True)
class Certificate:
    subject: str
    issuer: str
    sans: list[str]
    key: str  # e.g. "RSA 2048" or "EC secp256r1 256"
    key_bits: int
    not_after: str
    is_ca: bool
    sha256: str = ""  # fingerprint of the DER, to compare with the certificate file a server declares


@dataclass
class Chain:
    """The chain the endpoint served to one ClientHello (the right SNI, a wrong one, or none)."""

    sni: str | None
    certificates: list[Certificate] = field(default_factory=list)
    negotiated: str | None = None  # cipher of the handshake, OpenSSL name
    intermediate: str = "unknown"  # included | missing | not needed | unknown
    complete: bool | None = None  # leads to a certificate in the given CA file
    hostname_match: bool | None = None  # the leaf names the SNI sent; None when none was sent
    error: str | None = None


@dataclass(frozen=True)
class Finding:
    source: str
    requirement: str
    observed: str
    severity: Severity = "medium"
    """A breached shall rule is medium (high when it lets broken crypto in), a should rule low: see ``judge``."""


@dataclass
class ProfileVerdict:
    name: str
    section: str
    title: str
    compliant: bool | None
    """None: unknown, a shall rule could not be judged because a probe it depends on ended in an error."""
    failures: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    unknown: list[Finding] = field(default_factory=list)  # shall rules that could not be judged, and why

    def summary(self) -> str:
        if self.compliant is False:
            first = self.failures[0]
            return f"not compliant: {first.requirement} ({first.source}): {first.observed}"
        if self.compliant is None:
            first = self.unknown[0]
            return f"unknown: {first.requirement} ({first.source}): {first.observed}"
        return "compliant" + (f" ({len(self.warnings)} should-level findings)" if self.warnings else "")


@dataclass
class ScanResult:
    target: str
    sni: str | None
    client_cert: bool
    protocols: dict[str, list[AcceptedSuite]] = field(default_factory=dict)  # every version tried; [] = refused
    curves: list[str] = field(default_factory=list)
    prefers_tls13: bool | None = None
    chains: list[Chain] = field(default_factory=list)
    verdicts: list[ProfileVerdict] = field(default_factory=list)
    tool: str = ""
    duration_s: float = 0.0
    error: str | None = None  # set: a scan error, with its reason; nothing else in the result is a finding
    unknown: dict[str, str] = field(default_factory=dict)
    """Versions whose probe ended in an error rather than an answer from the server, with that error."""
    notes: list[str] = field(default_factory=list)  # what the scan did differently from the usual, and why

    @property
    def status(self) -> str:
        return SCAN_ERROR if self.error else "scanned"

    @property
    def versions(self) -> list[str]:
        return [v for v in TLS_VERSIONS if self.protocols.get(v)]

    def accepts(self) -> dict[str, tuple[str, ...]]:
        """Accepted suites per version, OpenSSL names: what the server side of a diagnosis says it takes."""
        return {v: tuple(s.openssl_name for s in self.protocols[v]) for v in self.versions}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ScanResult":
        """Read a scan back from JSON (results.json, --json); verdicts are judged again, not trusted."""
        result = cls(
            data["target"], data["sni"], data["client_cert"],
            protocols={v: [AcceptedSuite(**s) for s in suites] for v, suites in data["protocols"].items()},
            curves=list(data.get("curves", [])), prefers_tls13=data.get("prefers_tls13"),
            chains=[Chain(**{**c, "certificates": [Certificate(**x) for x in c["certificates"]]})
                    for c in data.get("chains", [])],
            tool=data.get("tool", ""), duration_s=data.get("duration_s", 0.0), error=data.get("error"),
            unknown=dict(data.get("unknown", {})), notes=list(data.get("notes", [])),
        )
        if result.error is None:
            result.verdicts = [judge(profile, result) for profile in DICOM_PROFILES]
        return result


def scan(endpoint: Endpoint) -> ScanResult:
    """Enumerate versions and suites, fetch the chains, and judge every DICOM profile; any failure on the way is
    the result's error (a scan error), never an exception or a wait without end."""
    from sslyze import __version__ as sslyze_version

    began = time.monotonic()
    result = ScanResult(str(endpoint), endpoint.sni, endpoint.client_cert is not None,
                        tool=f"sslyze {sslyze_version.__version__}")
    try:
        with _credentials(endpoint) as credentials:
            _enumerate(endpoint, credentials, result)
            if result.error is None:
                # What the proxy serves to the right name (each site's), to a name it doesn't know, and to a client
                # without SNI.
                names = [endpoint.sni, *endpoint.other_names, WRONG_SNI, None] if endpoint.sni else [None]
                result.chains = [_fetch_chain(endpoint, sni) for sni in names]
                result.prefers_tls13 = _prefers_tls13(result)
                result.verdicts = [judge(profile, result) for profile in DICOM_PROFILES]
    except _EnumerationFailed as exc:
        result.error = f"could not enumerate {endpoint}'s versions and suites: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bug here or in sslyze/nassl: this scan's error, not the run's end
        result.error = f"the scan failed: {first_line(exc)}"
    finally:
        result.duration_s = round(time.monotonic() - began, 3)
    return result


@dataclass(frozen=True)
class _Credentials:
    chain: Path  # the client certificate with its chain, as given
    leaf: Path  # the client certificate alone: all that SSL 2.0 can send
    key: Path


@contextmanager
def _credentials(endpoint: Endpoint) -> Iterator[_Credentials | None]:
    """The client certificate as TLS sends it and as SSL 2.0 can (a leaf-only copy, for as long as the scan runs,
    when the file holds a chain)."""
    if endpoint.client_cert is None or endpoint.client_key is None:
        yield None
        return
    certificates = x509.load_pem_x509_certificates(endpoint.client_cert.read_bytes())
    if len(certificates) < 2:
        yield _Credentials(endpoint.client_cert, endpoint.client_cert, endpoint.client_key)
        return
    with tempfile.TemporaryDirectory(prefix="dicomtls-scan-") as directory:
        leaf = Path(directory) / "client-leaf.crt"
        leaf.write_bytes(certificates[0].public_bytes(serialization.Encoding.PEM))
        yield _Credentials(endpoint.client_cert, leaf, endpoint.client_key)


def _enumerate(endpoint: Endpoint, credentials: _Credentials | None, result: ScanResult) -> None:
    from sslyze import (
        ClientAuthenticationCredentials, Scanner, ScanCommand, ScanCommandAttemptStatusEnum,
        ServerNetworkConfiguration, ServerNetworkLocation, ServerScanRequest, ServerScanStatusEnum,
    )

    def configuration(certificate: Path | None) -> ServerNetworkConfiguration:
        auth = (ClientAuthenticationCredentials(certificate_chain_path=certificate, key_path=credentials.key)
                if credentials is not None and certificate is not None else None)
        return ServerNetworkConfiguration(tls_server_name_indication=endpoint.sni or endpoint.name or endpoint.host,
                                          tls_client_auth_credentials=auth,
                                          network_timeout=SCAN_TIMEOUT_S, network_max_retries=1)

    # sslyze wants a hostname; with ip_address set it connects there and never resolves the name.
    location = ServerNetworkLocation(hostname=endpoint.sni or endpoint.name or endpoint.host, port=endpoint.port,
                                     ip_address=endpoint.host)
    if silent := _silent(endpoint):
        result.error = f"could not complete a TLS handshake with {endpoint}: {silent}"
        return
    config = configuration(credentials.chain if credentials else None)
    failed = _connectivity(location, config)
    if failed is not None and failed.on_this_side and credentials is not None and credentials.leaf != credentials.chain:
        # What fails on this side with a chain is SSL 2.0, tried last: try once more with the leaf alone (see the
        # module's docstring).
        config = configuration(credentials.leaf)
        if (failed := _connectivity(location, config)) is None:
            result.notes.append("the client certificate was sent without its chain: only then did sslyze complete "
                                "a handshake")
    if failed is not None:
        hint = "" if endpoint.sni else " (an SNI-routed endpoint closes handshakes without SNI: give --sni)"
        result.error = f"could not complete a TLS handshake with {endpoint}: {failed.why}{hint}"
        return
    prechecks = {name: _precheck(endpoint, version, credentials) for name, version in _PRECHECKED.items()}
    refused = {name for name, attempt in prechecks.items() if attempt.refused}
    for name in refused:
        result.protocols[_COMMANDS[name]] = []
    commands = {getattr(ScanCommand, name.upper()) for name in _COMMANDS if name not in refused}
    commands.add(ScanCommand.ELLIPTIC_CURVES)
    scanner = Scanner(concurrent_server_scans_limit=1)
    request = ServerScanRequest(server_location=location, network_configuration=config, scan_commands=commands)
    for server in _results(scanner, request, ENUMERATION_DEADLINE_S):
        if server.scan_status != ServerScanStatusEnum.COMPLETED or server.scan_result is None:
            trace = server.connectivity_error_trace
            why = str(trace).strip().splitlines()[-1] if trace else str(server.connectivity_status)
            result.error = f"could not complete a TLS handshake with {endpoint}: {why}"
            return
        for name, version in _COMMANDS.items():
            if name in refused:
                continue
            attempt = getattr(server.scan_result, name)
            if attempt.status == ScanCommandAttemptStatusEnum.ERROR or attempt.result is None:
                trace = str(attempt.error_trace or "").strip().splitlines()
                why = f"sslyze {attempt.error_reason.value if attempt.error_reason else 'error'}"
                earlier = prechecks[name].error if name in prechecks else None
                result.unknown[version] = "; ".join(
                    [f"{why}: {trace[-1]}" if trace else why, *([f"one handshake: {earlier}"] if earlier else [])])
                continue
            result.protocols[version] = [_accepted(s) for s in attempt.result.accepted_cipher_suites]
        curves = server.scan_result.elliptic_curves
        if curves.result is not None:
            result.curves = [c.name for c in curves.result.supported_curves or []]


@dataclass(frozen=True)
class _Unconnected:
    why: str
    on_this_side: bool  # the test itself failed, not the server's answers: no ConnectionToServerFailed


def _connectivity(location: Any, config: Any) -> _Unconnected | None:
    """sslyze's connectivity test in this thread: None when a handshake completed, else why not. The server's
    failure is sslyze's ConnectionToServerFailed; anything else is an error on this side, said as such."""
    from sslyze.errors import ConnectionToServerFailed
    from sslyze.server_connectivity import check_connectivity_to_server

    try:
        check_connectivity_to_server(server_location=location, network_configuration=config)
    except ConnectionToServerFailed as exc:
        return _Unconnected(exc.error_message, on_this_side=False)
    except Exception as exc:  # noqa: BLE001 - nassl/sslyze raise several types for "could not even try"
        return _Unconnected(f"sslyze's connectivity test failed on this side: {first_line(exc)}", on_this_side=True)
    return None


def _silent(endpoint: Endpoint) -> str | None:
    """Why the endpoint cannot be scanned at all when it takes the connection but answers no ClientHello within
    SCAN_TIMEOUT_S (a socket that never answers, a proxy waiting on a backend): sslyze's connectivity test would
    try every version and retry each before saying so, about a minute. Anything else proves nothing here."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=SCAN_TIMEOUT_S) as sock:
            with context.wrap_socket(sock, server_hostname=endpoint.sni or endpoint.name or None):
                return None
    except TimeoutError:
        return f"it took the connection but answered no ClientHello within {SCAN_TIMEOUT_S} s"
    except (OSError, ValueError):
        return None


class _EnumerationFailed(Exception):
    pass


_WATCHED: dict[threading.Thread, Callable[[BaseException | None], None]] = {}
_WATCHING = threading.Lock()
_PREVIOUS_HOOK: Callable[[Any], object] | None = None


def _thread_died(args: Any) -> None:
    """threading.excepthook: a watched sslyze thread's exception goes to the scan that started it; any other
    thread's to the hook that was there before."""
    with _WATCHING:
        tell = _WATCHED.get(args.thread)
    if tell is not None:
        tell(args.exc_value)
    elif _PREVIOUS_HOOK is not None:
        _PREVIOUS_HOOK(args)


def _results(scanner: Any, request: Any, deadline_s: float) -> list[Any]:
    """sslyze's results for ``request``, or _EnumerationFailed when a thread of this scanner died (sslyze would
    wait for its result forever) or the deadline passed. The stuck sslyze threads are daemons: they end with the
    process."""
    global _PREVIOUS_HOOK
    outcome: queue.Queue[tuple[str, Any]] = queue.Queue()
    before = set(threading.enumerate())
    with _WATCHING:
        if threading.excepthook is not _thread_died:
            _PREVIOUS_HOOK, threading.excepthook = threading.excepthook, _thread_died
    scanner.queue_scans([request])  # starts its connectivity threads
    mine = [t for t in threading.enumerate() if t not in before and type(t).__module__.startswith("sslyze")]

    def died(thread: threading.Thread) -> Callable[[BaseException | None], None]:
        return lambda exc: outcome.put(("died", f"{thread.name}: {first_line(exc)}" if exc else thread.name))

    with _WATCHING:
        for thread in mine:
            _WATCHED[thread] = died(thread)

    def collect() -> None:
        try:
            outcome.put(("done", list(scanner.get_results())))
        except Exception as exc:  # noqa: BLE001 - handed to the waiting scan
            outcome.put(("died", f"sslyze's results: {first_line(exc)}"))

    threading.Thread(target=collect, name="sslyze-results", daemon=True).start()
    try:
        kind, value = outcome.get(timeout=deadline_s)
    except queue.Empty:
        raise _EnumerationFailed(f"sslyze did not finish within {deadline_s:.0f} s") from None
    finally:
        with _WATCHING:
            for thread in mine:
                _WATCHED.pop(thread, None)
    if kind == "died":
        raise _EnumerationFailed(f"a thread of sslyze failed: {value}")
    return list(value)


_PRECHECKED = {"ssl_2_0_cipher_suites": "SSLV2", "ssl_3_0_cipher_suites": "SSLV3", "tls_1_0_cipher_suites": "TLSV1",
               "tls_1_1_cipher_suites": "TLSV1_1"}
"""Legacy versions tried with one handshake first: a modern server refuses them, and enumerating their suites one
handshake each (about a hundred per version) took nearly half a scan's CPU to confirm it."""


@dataclass(frozen=True)
class _Attempt:
    """One handshake at one version: the peer refused it, or not; ``error`` says why it proved nothing."""

    refused: bool
    error: str | None = None


def _precheck(endpoint: Endpoint, version: str, credentials: _Credentials | None) -> _Attempt:
    """Whether the endpoint refuses a handshake at ``version`` offering every suite the legacy OpenSSL knows: then
    it accepts none of them. The peer's refusal is told by type: an alert or protocol failure (nassl's
    OpenSSLError from the handshake), a reset, or a close without an answer (nassl's OSError without errno).
    Anything else (no connection, a timeout, a failure to set up the client) proves nothing, and the version is
    enumerated as usual."""
    from nassl._nassl import OpenSSLError
    from nassl.legacy_ssl_client import LegacySslClient
    from nassl.ssl_client import ClientCertificateRequested, OpenSslVerifyEnum, OpenSslVersionEnum

    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=SCAN_TIMEOUT_S)
    except OSError as exc:
        return _Attempt(False, f"no connection: {first_line(exc)}")
    with sock:
        certificate = None if credentials is None else credentials.leaf if version == "SSLV2" else credentials.chain
        try:
            client = LegacySslClient(
                underlying_socket=sock, ssl_version=OpenSslVersionEnum[version], ssl_verify=OpenSslVerifyEnum.NONE,
                client_certificate_chain=certificate, client_key=credentials.key if credentials else None,
                ignore_client_authentication_requests=credentials is None,
            )
            client.set_cipher_list("ALL:COMPLEMENTOFALL")
            if version != "SSLV2":  # SSL 2.0 has no extensions, SNI included
                client.set_tlsext_host_name(endpoint.sni or endpoint.name or endpoint.host)
        except Exception as exc:  # noqa: BLE001 - nassl's own setup failing is this side's error
            return _Attempt(False, f"the client could not be set up: {first_line(exc)}")
        try:
            client.do_handshake()
        except ClientCertificateRequested:
            return _Attempt(False)  # the server went on at this version and asked for (or refused) a certificate
        except (OpenSSLError, ConnectionError):
            return _Attempt(True)
        except TimeoutError as exc:
            return _Attempt(False, f"no answer: {first_line(exc)}")
        except OSError as exc:
            if exc.errno is None:  # nassl: the peer closed the connection without an answer
                return _Attempt(True)
            return _Attempt(False, first_line(exc))
        except Exception as exc:  # noqa: BLE001 - not the peer's answer
            return _Attempt(False, first_line(exc))
        return _Attempt(False)


def _accepted(suite: Any) -> AcceptedSuite:
    key = suite.ephemeral_key
    return AcceptedSuite(
        suite.cipher_suite.name, suite.cipher_suite.openssl_name,
        key.type_name if key else None, key.size if key else None, getattr(key, "curve_name", None) if key else None,
    )


def _fetch_chain(endpoint: Endpoint, sni: str | None) -> Chain:
    from nassl.ssl_client import OpenSslVerifyEnum, SslClient

    chain = Chain(sni)
    with_cert = endpoint.client_cert is not None and endpoint.client_key is not None
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=SCAN_TIMEOUT_S) as sock:
            client = SslClient(
                underlying_socket=sock, ssl_verify=OpenSslVerifyEnum.NONE,
                client_certificate_chain=endpoint.client_cert if with_cert else None,
                client_key=endpoint.client_key if with_cert else None,
                ignore_client_authentication_requests=not with_cert, server_name_indication=sni,
            )
            client.do_handshake()
            chain.negotiated = client.get_current_cipher_name()
            pems = client.get_received_chain()
    except Exception as exc:  # nassl raises its own OpenSSLError, sockets OSError: both mean "no chain"
        chain.error = f"{type(exc).__name__}: {exc}".strip()
        return chain
    certs = [x509.load_pem_x509_certificate(p.encode()) for p in pems]
    chain.certificates = [_describe(c) for c in certs]
    anchors = x509.load_pem_x509_certificates(endpoint.ca.read_bytes()) if endpoint.ca else []
    chain.intermediate = _intermediate(certs, anchors)
    chain.complete = _leads_to_anchor(certs, anchors) if anchors else None
    chain.hostname_match = _names(certs[0], sni) if sni and certs else None
    return chain


def _describe(cert: x509.Certificate) -> Certificate:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        text, bits = f"RSA {key.key_size}", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        text, bits = f"EC {key.curve.name} {key.key_size}", key.key_size
    else:
        text, bits = type(key).__name__, 0
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n.value) for n in sans]
    except x509.ExtensionNotFound:
        names = []
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return Certificate(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), names, text, bits,
                       cert.not_valid_after_utc.isoformat(timespec="seconds"), is_ca,
                       cert.fingerprint(hashes.SHA256()).hex())


def _intermediate(certs: list[x509.Certificate], anchors: list[x509.Certificate]) -> str:
    """Whether the server sent the CA certificate(s) between its leaf and the trust anchor."""
    if not certs:
        return "unknown"
    leaf = certs[0]
    if any(a.subject == leaf.issuer for a in anchors):
        return "not needed"  # issued straight by the anchor
    if any(c.subject == leaf.issuer for c in certs[1:]):
        return "included"
    return "missing" if anchors else "unknown"


def _leads_to_anchor(certs: list[x509.Certificate], anchors: list[x509.Certificate]) -> bool:
    """Follow issuer links, checking each signature, from the leaf through the served chain to an anchor."""
    current, pool = certs[0], certs[1:]
    for _ in range(len(certs) + 1):
        anchor = next((a for a in anchors if a.subject == current.issuer), None)
        if anchor is not None:
            return _signed_by(current, anchor)
        parent = next((c for c in pool if c.subject == current.issuer and c is not current), None)
        if parent is None or not _signed_by(current, parent):
            return False
        current = parent
    return False


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _names(leaf: x509.Certificate, host: str) -> bool:
    """RFC 6125 DNS-ID match: exact, or a wildcard standing for the whole left-most label."""
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = sans.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    host = host.lower().rstrip(".")
    for name in (str(n).lower() for n in names):
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def _prefers_tls13(result: ScanResult) -> bool | None:
    """Did a ClientHello offering TLS 1.2 and 1.3 end in TLS 1.3? (nassl offers both; TLS 1.3 suites start TLS_)."""
    if not result.protocols.get("TLS 1.3"):
        return None
    negotiated = next((c.negotiated for c in result.chains if c.negotiated), None)
    return None if negotiated is None else negotiated.startswith("TLS_")


# --- verdicts ---------------------------------------------------------------------------------------

_BROKEN = ("NULL", "anon", "EXPORT", "RC4", "_DES_CBC_", "DES40")
_AEAD = ("GCM", "CHACHA20", "CCM")


def _suites(result: ScanResult, versions: tuple[str, ...] = TLS_VERSIONS) -> list[tuple[str, AcceptedSuite]]:
    return [(v, s) for v in versions for s in result.protocols.get(v, [])]


def _forward_secret_aead(version: str, suite: AcceptedSuite) -> bool:
    if version == "TLS 1.3":
        return True
    return ("_ECDHE_" in suite.name or "_DHE_" in suite.name) and any(m in suite.name for m in _AEAD)


def _kx_too_small(suite: AcceptedSuite, dhe_bits: int, ecdhe_bits: int) -> bool:
    if suite.key_exchange == "DH":
        return (suite.key_exchange_bits or 0) < dhe_bits
    if suite.key_exchange == "ECDH":
        if suite.curve in ("X25519", "X448"):
            return False  # 255/448-bit Montgomery curves: 128/224-bit security, counted as 256+ here
        return (suite.key_exchange_bits or 0) < ecdhe_bits
    return False


def _listed(found: list[str], limit: int = 4) -> str:
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return ", ".join(found[:limit]) + more


def _observe(rule: Rule, result: ScanResult) -> str | None:
    """What the scan saw that breaks ``rule``, or None when it holds (or cannot be judged)."""
    versions = result.versions
    if rule.check in ("supports-tls12", "one-of-suites") and "TLS 1.2" in result.unknown:
        return None  # what TLS 1.2 lacks cannot be told: the rule is unknown (judge)
    if rule.check == "supports-tls12":
        return None if "TLS 1.2" in versions else f"accepts only {', '.join(versions) or 'nothing'}"
    if rule.check == "no-ssl":
        bad: list[str] = [v for v in ("SSL 2.0", "SSL 3.0") if v in versions]
        return f"accepts {' and '.join(bad)}" if bad else None
    if rule.check == "no-tls10-11":
        bad = [v for v in ("TLS 1.0", "TLS 1.1") if v in versions]
        if not bad:
            return None
        suites = sorted({s.openssl_name for _, s in _suites(result, tuple(bad))})
        return f"accepts {' and '.join(bad)} ({_listed(suites)})"
    if rule.check == "no-broken-suites":
        bad = sorted({f"{s.openssl_name} ({v})" for v, s in _suites(result) if any(b in s.name for b in _BROKEN)})
        return f"accepts {_listed(bad)}" if bad else None
    if rule.check == "no-weak-suites":
        bad = sorted({s.openssl_name for _, s in _suites(result) if "3DES" in s.name or "IDEA" in s.name})
        return f"accepts {_listed(bad)}" if bad else None
    if rule.check == "no-static-rsa":
        bad = sorted({s.openssl_name for _, s in _suites(result) if s.name.startswith("TLS_RSA_WITH_")})
        return f"accepts {_listed(bad)} (RSA key transport, no forward secrecy)" if bad else None
    if rule.check == "one-of-suites":
        if any(s.name in rule.suites for _, s in _suites(result, ("TLS 1.2",))):
            return None
        return "accepts none of them over TLS 1.2"
    if rule.check == "only-strong-suites":
        bad = sorted({f"{s.openssl_name}" for v, s in _suites(result) if not _forward_secret_aead(v, s)})
        return f"also accepts {_listed(bad)}: no forward secrecy or no AEAD" if bad else None
    if rule.check == "kx-size":
        bad = sorted({f"{s.openssl_name} with {s.key_exchange} {s.key_exchange_bits} bits"
                      for _, s in _suites(result) if _kx_too_small(s, rule.dhe_bits, rule.ecdhe_bits)})
        return f"negotiates {_listed(bad)}" if bad else None
    if rule.check == "prefers-tls13":
        return "a client offering TLS 1.2 and 1.3 got TLS 1.2" if result.prefers_tls13 is False else None
    if rule.check == "server-key-size":
        leaf = next((c.certificates[0] for c in result.chains if c.certificates), None)
        if leaf and leaf.key.startswith("RSA") and leaf.key_bits < 2048:
            return f"the server certificate has an {leaf.key} key"
        return None
    raise AssertionError(f"unknown rule check {rule.check}")


_BROKEN_CRYPTO = frozenset({"no-ssl", "no-broken-suites"})
"""Shall rules whose breach lets in what no client should get (SSL, NULL/export/RC4 suites): high, not medium."""


def _severity(rule: Rule) -> Severity:
    """A breached rule's severity, for ``--fail-on``: profile verdicts themselves are a policy's to require."""
    if rule.level == "should":
        return "low"
    return "high" if rule.check in _BROKEN_CRYPTO else "medium"


def judge(profile: DicomProfile, result: ScanResult) -> ProfileVerdict:
    """A breach that was seen fails a rule whatever else is unknown; a rule that holds as far as was seen, but
    reads a version whose probe ended in an error, could not be judged: a shall rule so makes the verdict
    unknown (never compliant), a should rule becomes a warning that says so."""
    verdict = ProfileVerdict(profile.name, profile.section, profile.title, compliant=True)
    for rule in profile.rules:
        observed = _observe(rule, result)
        unknown = [f"{v}: {result.unknown[v]}" for v in rule.versions if v in result.unknown]
        if observed is not None:
            finding = Finding(rule.source, rule.text, observed, _severity(rule))
            (verdict.failures if rule.level == "shall" else verdict.warnings).append(finding)
        elif unknown:
            finding = Finding(rule.source, rule.text, f"could not be judged: {'; '.join(unknown)}", _severity(rule))
            (verdict.unknown if rule.level == "shall" else verdict.warnings).append(finding)
    verdict.compliant = False if verdict.failures else None if verdict.unknown else True
    return verdict
