"""Without the server's logs, a bare dcmtk failure is explained by what the probe itself saw: the scan of the
port and pynetdicom's TLS alert with the same certificate. The client lines are real outputs captured from
`invoke probe` against Envoy with named hosts and Orthanc's own DICOM TLS."""

from __future__ import annotations

from dicomtls.corroborate import corroborate
from dicomtls.diagnose import Reason, Symptoms, diagnose
from dicomtls.probes import WRONG_SNI
from dicomtls.results import OBSERVE, CellResult
from dicomtls.scan import AcceptedSuite, Certificate, Chain, ScanResult
from dicomtls.scenario import Cell, Probe

SYSCALL = "F: Association Request Failed: 000b:0017 OpenSSL I/O error (SSL_ERROR_SYSCALL)"
PEER_ABORTED = "F: Association Request Failed: 0006:0317 Peer aborted Association (or never connected)"
CERT_REQUIRED = ("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required (_ssl.c:2580) "
                 "[SSLError: [SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required (_ssl.c:2580)]")
LEAF = Certificate("CN=dicom.korthweb.test", "CN=Intermediate", ["dicom.korthweb.test"], "RSA 2048", 2048,
                   "2027-12-01T00:00:00+00:00", False)


def cell(client: str, sni: str, cert: str, lines: tuple[str, ...], transport: str = "tls") -> CellResult:
    probe = Probe(client, sni, cert, "echo", transport)
    d = diagnose(Symptoms(client_lines=lines, sent_sni=sni != "none", sent_client_cert=cert))
    return CellResult(Cell("probe", "endpoint", probe, OBSERVE, None), "fail", d.reason, d.summary, d.fix,
                      d.evidence, "", "", 0.1)


def scan(*, no_sni_refused: bool) -> ScanResult:
    chains = [Chain("dicom.korthweb.test", [LEAF]), Chain(WRONG_SNI, [LEAF]), Chain(None, [LEAF])]
    if no_sni_refused:
        chains[1:] = [Chain(WRONG_SNI, error="ConnectionResetError: [Errno 104] Connection reset by peer"),
                      Chain(None, error="ConnectionResetError: [Errno 104] Connection reset by peer")]
    suite = AcceptedSuite("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256")
    return ScanResult("dicom.korthweb.test:11112", "dicom.korthweb.test", True, {"TLS 1.3": [suite]},
                      chains=chains)


def test_dcmtk_without_sni_at_a_named_hosts_proxy_is_no_matching_sni_from_the_scan() -> None:
    dcmtk = cell("dcmtk", "none", "none", (SYSCALL,))
    assert dcmtk.reason is Reason.TLS_HANDSHAKE_FAILED  # all the client can say
    [explained] = corroborate([dcmtk], scan(no_sni_refused=True))
    assert explained.reason is Reason.TLS_NO_MATCHING_SNI
    assert explained.evidence[-1].startswith("scan: a handshake without SNI failed")


def test_a_bare_failure_is_left_alone_when_the_scan_was_served_without_sni() -> None:
    dcmtk = cell("dcmtk", "none", "none", (SYSCALL,))
    assert corroborate([dcmtk], scan(no_sni_refused=False))[0].reason is Reason.TLS_HANDSHAKE_FAILED


def test_dcmtk_without_a_certificate_takes_the_alert_pynetdicom_read_with_the_same_certificate() -> None:
    dcmtk = cell("dcmtk", "none", "none", (PEER_ABORTED,))
    pynetdicom = cell("pynetdicom", "none", "none", (CERT_REQUIRED,))
    other_cert = cell("pynetdicom", "none", "untrusted", ("[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca",))
    explained, *_ = corroborate([dcmtk, other_cert, pynetdicom], scan(no_sni_refused=False))
    assert explained.reason is Reason.TLS_CERT_REQUIRED
    assert explained.evidence[-1] == "pynetdicom with the same certificate got: tlsv13 alert certificate required"


def test_plain_dicom_to_a_port_the_scan_found_speaking_tls_is_plaintext_to_tls_port() -> None:
    plain = cell("dcmtk", "none", "none", (PEER_ABORTED,), transport="plain")
    [explained] = corroborate([plain], scan(no_sni_refused=False))
    assert explained.reason is Reason.TLS_PLAINTEXT_TO_TLS_PORT
    assert "TLS 1.3" in explained.evidence[-1]
    assert corroborate([plain], None)[0].reason is plain.reason  # no scan, no claim
