"""Classification: what a client printed and what the proxy logged become one named reason with a fix.

The parametrized cases are symptoms captured from a real run; the hand-written ones are client and proxy
output observed with other proxies (Traefik, Envoy with restricted ciphers) and dcmtk/pynetdicom.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dicomtls.diagnose import EXPLANATIONS, Reason, Symptoms, diagnose, refused_by_a_live_proxy

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured_failures.json"


def _captured() -> list[dict[str, Any]]:
    return json.loads(CAPTURED.read_text())


def _symptoms(fields: dict[str, Any]) -> Symptoms:
    return Symptoms(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


ENVOY_NR = (
    "envoy:access.log: [2026-11-27T23:34:10.101Z] downstream=127.0.0.1:60112 sni=- flags=NR "
    "details=filter_chain_not_found tls_failure=- tls_version=- cipher=- peer=- upstream=- rx=0 tx=0"
)


def test_fixture_holds_real_failures() -> None:
    items = _captured()
    assert len(items) >= 20
    assert {Reason(i["expected_reason"]) for i in items} >= {
        Reason.TLS_CERT_REQUIRED, Reason.TLS_UNKNOWN_CA, Reason.TLS_CERT_EXPIRED, Reason.TLS_NO_MATCHING_SNI,
        Reason.TLS_HOSTNAME_MISMATCH, Reason.TLS_PLAINTEXT_TO_TLS_PORT, Reason.TLS_FELL_TO_HTTPS,
    }


@pytest.mark.parametrize("item", _captured(), ids=lambda item: item["cell"])
def test_captured_failure_gets_the_reason_the_scenario_expects(item: dict[str, Any]) -> None:
    diagnosis = diagnose(_symptoms(item["symptoms"]))
    assert diagnosis.reason == Reason(item["expected_reason"])
    assert diagnosis.summary
    assert diagnosis.fix == EXPLANATIONS[diagnosis.reason][1]
    assert diagnosis.evidence, "a diagnosis shows the lines it is based on"
    assert all(e.startswith(("client: ", "proxy: ", "client certificate: ")) for e in diagnosis.evidence)


# --- field notes ------------------------------------------------------------------------------------------------


def test_dcmtk_handshake_failure_alert_means_no_shared_cipher() -> None:
    # dcmtk against Envoy restricted to an AES-only cipher profile; the client only sees the generic alert.
    diagnosis = diagnose(Symptoms(client_lines=(
        "F: Association Request Failed: 0006:031c TLS error: sslv3 alert handshake failure",
    )))
    assert diagnosis.reason is Reason.TLS_NO_SHARED_CIPHER
    assert "client: F: Association Request Failed: 0006:031c TLS error: sslv3 alert handshake failure" in (
        diagnosis.evidence)


def test_envoy_no_shared_cipher_log_confirms_the_handshake_failure_alert() -> None:
    diagnosis = diagnose(Symptoms(
        client_lines=("TLS error: sslv3 alert handshake failure",),
        proxy_lines=("envoy:access.log: [2026-11-27T23:35:00.000Z] downstream=127.0.0.1:60200 sni=- flags=- "
                     "details=- tls_failure=TLS_error:|268435640:SSL_routines:OPENSSL_internal:NO_SHARED_CIPHER:"
                     "TLS_error_end tls_version=- cipher=- peer=- upstream=- rx=0 tx=0",),
    ))
    assert diagnosis.reason is Reason.TLS_NO_SHARED_CIPHER
    assert any(e.startswith("proxy: ") and "NO_SHARED_CIPHER" in e for e in diagnosis.evidence)


def test_proxy_log_explains_a_generic_handshake_failure_better_than_the_client() -> None:
    # The same generic alert, but Envoy says the client sent no certificate: the proxy's word wins.
    diagnosis = diagnose(Symptoms(
        client_lines=("TLS error: sslv3 alert handshake failure",),
        proxy_lines=("envoy:access.log: tls_failure=TLS_error:|268435648:SSL_routines:OPENSSL_internal:"
                     "PEER_DID_NOT_RETURN_A_CERTIFICATE:peer_did_not_provide_required_client_certificate",),
    ))
    assert diagnosis.reason is Reason.TLS_CERT_REQUIRED


def test_traefik_unrecognized_name_alert_means_no_matching_sni() -> None:
    # Traefik with sniStrict: true and a client that sends no SNI.
    diagnosis = diagnose(Symptoms(client_lines=("TLS error: tlsv1 unrecognized name",), sent_sni=False))
    assert diagnosis.reason is Reason.TLS_NO_MATCHING_SNI
    assert "no SNI" in diagnosis.summary


def test_client_verify_failure_without_proxy_lines_means_client_rejected_the_server_certificate() -> None:
    # dcmtk -rc +cf ca.crt against Traefik serving its self-signed default certificate.
    diagnosis = diagnose(Symptoms(
        client_lines=("F: Association Request Failed: 0006:031c TLS error: certificate verify failed",),
    ))
    assert diagnosis.reason is Reason.TLS_UNKNOWN_CA
    assert diagnosis.summary.startswith("the client rejected the server's certificate")


def test_unknown_ca_alert_means_the_server_rejected_the_client_certificate() -> None:
    diagnosis = diagnose(Symptoms(client_lines=("TLS error: tlsv1 alert unknown ca",), sent_client_cert="untrusted"))
    assert diagnosis.reason is Reason.TLS_UNKNOWN_CA
    assert diagnosis.summary.startswith("the server rejected the client certificate (untrusted)")


def test_only_a_server_turning_the_client_away_counts_as_refusing_the_client() -> None:
    # Then a TLS 1.3 client may or may not have read the server's certificate first: the cell reports none.
    refused = [
        diagnose(Symptoms(client_lines=("TLS error: tlsv1 alert unknown ca",), sent_client_cert="untrusted")),
        diagnose(Symptoms(client_lines=("TLS error: tlsv13 alert certificate required",))),
    ]
    assert [d.reason for d in refused] == [Reason.TLS_UNKNOWN_CA, Reason.TLS_CERT_REQUIRED]
    assert all(d.server_refused_client for d in refused)
    rejected_server = diagnose(Symptoms(
        client_lines=("F: Association Request Failed: 0006:031c TLS error: certificate verify failed",)))
    assert rejected_server.reason is Reason.TLS_UNKNOWN_CA and not rejected_server.server_refused_client


def test_pynetdicom_connection_refused_means_tcp_refused() -> None:
    diagnosis = diagnose(Symptoms(client_lines=(
        "Association request failed: unable to connect to remote",
        "TCP Initialisation Error: [Errno 111] Connection refused",
    )))
    assert diagnosis.reason is Reason.TCP_REFUSED
    assert diagnosis.evidence == ("client: TCP Initialisation Error: [Errno 111] Connection refused",)


def test_dcmtk_plain_dicom_to_tls_port_means_plaintext_to_tls_port() -> None:
    # dcmtk without +tls read the server's TLS alert record (0x15) as a PDU.
    diagnosis = diagnose(Symptoms(client_lines=(
        "E: Association Request Failed: 0006:0207 Unrecognized PDU type: 15",
    )))
    assert diagnosis.reason is Reason.TLS_PLAINTEXT_TO_TLS_PORT


def test_other_pdu_types_are_not_read_as_tls_records() -> None:
    diagnosis = diagnose(Symptoms(client_lines=("Unrecognized PDU type: 150",)))
    assert diagnosis.reason is not Reason.TLS_PLAINTEXT_TO_TLS_PORT


def test_association_rejected_means_dicom_association_rejected() -> None:
    diagnosis = diagnose(Symptoms(
        client_lines=("F: Association Rejected:", "F: Result: Rejected Permanent, Source: Service User",
                      "F: Reason: Called AE Title Not Recognized"),
        dicom_stage="associate",
    ))
    assert diagnosis.reason is Reason.DICOM_ASSOCIATION_REJECTED


def test_verify_stage_failure_means_store_not_verified() -> None:
    diagnosis = diagnose(Symptoms(
        client_lines=("I: Received Store Response (Success)", "SOP instance 1.2.3 not found in Orthanc"),
        dicom_stage="verify",
    ))
    assert diagnosis.reason is Reason.STORE_NOT_VERIFIED


def test_dimse_stage_failure_without_a_known_pattern_means_dimse_failure() -> None:
    diagnosis = diagnose(Symptoms(client_lines=("C-STORE status 0xA700: Out of Resources",), dicom_stage="dimse"))
    assert diagnosis.reason is Reason.DIMSE_FAILURE


def test_envoy_filter_chain_not_found_means_no_matching_sni() -> None:
    # dcmtk sends no SNI to an Envoy with only named filter chains: the client just sees the socket close.
    diagnosis = diagnose(Symptoms(
        client_lines=("F: Association Request Failed: 0006:031c TLS error: OpenSSL I/O error (SSL_ERROR_SYSCALL)",),
        proxy_lines=(ENVOY_NR,),
        sent_sni=False,
    ))
    assert diagnosis.reason is Reason.TLS_NO_MATCHING_SNI
    assert "no SNI" in diagnosis.summary
    assert f"proxy: {ENVOY_NR}" in diagnosis.evidence
    assert any("SSL_ERROR_SYSCALL" in e for e in diagnosis.evidence)


def test_filter_chain_not_found_with_sni_blames_the_name_sent() -> None:
    diagnosis = diagnose(Symptoms(client_lines=("EOF occurred in violation of protocol",),
                                  proxy_lines=(ENVOY_NR,), sent_sni=True))
    assert diagnosis.reason is Reason.TLS_NO_MATCHING_SNI
    assert "the SNI the client sent" in diagnosis.summary and "no SNI" not in diagnosis.summary


def test_bare_close_without_proxy_explanation_is_a_handshake_failure() -> None:
    diagnosis = diagnose(Symptoms(client_lines=("TLS error: OpenSSL I/O error (SSL_ERROR_SYSCALL)",)))
    assert diagnosis.reason is Reason.TLS_HANDSHAKE_FAILED


def test_bare_close_after_connecting_is_an_aborted_association() -> None:
    diagnosis = diagnose(Symptoms(client_lines=("Peer aborted Association (or never connected)",),
                                  dicom_stage="associate"))
    assert diagnosis.reason is Reason.DICOM_ASSOCIATION_ABORTED


def test_server_side_verify_failure_with_expired_client_certificate_means_cert_expired() -> None:
    # Orthanc (dcmtk inside) says only that verification failed; the certificate the client sent is past notAfter.
    diagnosis = diagnose(Symptoms(
        client_lines=("F: Association Request Failed: 0006:031c TLS error: tlsv1 alert unknown ca",),
        sent_client_cert="expired",
        client_cert_expired_on="2024-01-01T00:00:00+00:00",
    ))
    assert diagnosis.reason is Reason.TLS_CERT_EXPIRED
    assert diagnosis.summary == "the server rejected the client certificate because it has expired"
    assert diagnosis.fix == EXPLANATIONS[Reason.TLS_CERT_EXPIRED][1]
    assert any("expired on 2024-01-01T00:00:00+00:00" in e for e in diagnosis.evidence)


def test_client_rejecting_the_server_is_not_blamed_on_an_expired_client_certificate() -> None:
    # The client itself failed to verify the server: the expiry of its own certificate is not the cause.
    diagnosis = diagnose(Symptoms(
        client_lines=("TLS error: certificate verify failed",),
        sent_client_cert="expired",
        client_cert_expired_on="2024-01-01T00:00:00+00:00",
    ))
    assert diagnosis.reason is Reason.TLS_UNKNOWN_CA
    assert not any("expired on" in e for e in diagnosis.evidence)


def test_unmatched_text_is_unknown() -> None:
    diagnosis = diagnose(Symptoms(client_lines=("something odd happened",)))
    assert diagnosis.reason is Reason.UNKNOWN
    assert diagnosis.evidence == ("client: something odd happened",)


# --- Traefik, nginx and HAProxy (lines captured from Traefik 3.7.15, nginx 1.22.1, HAProxy 2.6.12) ----------------

DCMTK_PEER_ABORTED = "F: Association Request Failed: 0006:0317 Peer aborted Association (or never connected)"
DCMTK_VERIFY_FAILED = "F: Association Request Failed: 000b:0886 TLS error: certificate verify failed"
DCMTK_UNEXPECTED_EOF = "F: Association Request Failed: 000b:0926 TLS error: unexpected eof while reading"
TRAEFIK_FALLBACK = ('traefik: 2026-11-27T23:41:20Z DBG github.com/traefik/traefik/v3/pkg/tls/tlsmanager.go:290 > '
                    'Serving default certificate for request: ""')


def test_traefik_serving_its_default_certificate_explains_why_the_client_rejected_it() -> None:
    # HostSNI(`*`) or Korthweb's named host alike: no SNI from dcmtk, so Traefik serves its generated certificate.
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_VERIFY_FAILED,), proxy_lines=(
        'traefik: 2026-11-27T23:41:20Z ERR github.com/traefik/traefik/v3/pkg/tcp/proxy.go:58 > Error while handling '
        'TCP connection error="readfrom tcp 127.0.0.1:48708->127.0.0.1:35901: local error: tls: bad record MAC"',
        TRAEFIK_FALLBACK,
    )))
    assert diagnosis.reason is Reason.TLS_UNKNOWN_CA
    assert diagnosis.summary == ("the client rejected the server's certificate: the proxy served its fallback "
                                 "certificate because the client sent no SNI")
    assert "--request-sni" in diagnosis.fix and "defaultCertificate" in diagnosis.fix and "-ic" in diagnosis.fix
    assert diagnosis.evidence == (f"client: {DCMTK_VERIFY_FAILED}", f"proxy: {TRAEFIK_FALLBACK}")


def test_traefik_fallback_certificate_for_an_unknown_sni_blames_the_name_sent() -> None:
    diagnosis = diagnose(Symptoms(
        client_lines=("TCP Initialisation Error: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                      "self-signed certificate (_ssl.c:1006)",),
        proxy_lines=('traefik: 2026-11-27T23:55:07Z DBG github.com/traefik/traefik/v3/pkg/tls/tlsmanager.go:290 > '
                     'Serving default certificate for request: "wrong-sni.invalid"',),
        sent_sni=True,
    ))
    assert diagnosis.reason is Reason.TLS_UNKNOWN_CA
    assert diagnosis.summary.endswith("because no certificate matches the SNI the client sent")


def test_client_rejecting_a_certificate_without_a_fallback_line_keeps_the_plain_explanation() -> None:
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_VERIFY_FAILED,)))
    assert diagnosis.summary == "the client rejected the server's certificate: not issued by a CA the client trusts"
    assert diagnosis.fix == EXPLANATIONS[Reason.TLS_UNKNOWN_CA][1]


def test_traefik_missing_client_certificate_explains_dcmtks_peer_aborted() -> None:
    # RequireAndVerifyClientCert, dcmtk +tla -ic: the client sees only the peer go away.
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_PEER_ABORTED,), proxy_lines=(
        'traefik: 2026-11-27T23:55:06Z ERR github.com/traefik/traefik/v3/pkg/tcp/proxy.go:58 > Error while handling '
        'TCP connection error="readfrom tcp 127.0.0.1:60562->127.0.0.1:57971: tls: client didn\'t provide a '
        'certificate"',
    )))
    assert diagnosis.reason is Reason.TLS_CERT_REQUIRED


def test_traefik_unknown_authority_means_the_server_rejected_the_client_certificate() -> None:
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_PEER_ABORTED,), sent_client_cert="untrusted", proxy_lines=(
        'traefik: 2026-11-27T23:42:06Z ERR github.com/traefik/traefik/v3/pkg/tcp/proxy.go:58 > Error while handling '
        'TCP connection error="readfrom tcp 127.0.0.1:43632->127.0.0.1:58025: tls: failed to verify certificate: '
        'x509: certificate signed by unknown authority"',
    )))
    assert diagnosis.reason is Reason.TLS_UNKNOWN_CA
    assert diagnosis.summary.startswith("the server rejected the client certificate (untrusted)")


def test_traefik_strict_sni_log_confirms_the_unrecognized_name_alert() -> None:
    line = ('traefik: 2026-11-27T23:55:01Z DBG github.com/traefik/traefik/v3/pkg/tls/tlsmanager.go:278 > TLS: strict '
            'SNI enabled - No certificate found for domain: "", closing connection')
    diagnosis = diagnose(Symptoms(
        client_lines=("F: Association Request Failed: 000b:0c58 TLS error: tlsv1 unrecognized name",),
        proxy_lines=(line,),
    ))
    assert diagnosis.reason is Reason.TLS_NO_MATCHING_SNI
    assert f"proxy: {line}" in diagnosis.evidence


# Korthweb's named HostSNI: a client without SNI (or with another name) completes TLS on Traefik's certificate,
# matches no TCP route, and lands in Traefik's HTTPS handler (captured with Traefik 3.7.15 and readTimeout 3s).
TRAEFIK_TCP_ROUTED = ('traefik: 2026-12-01T10:02:12Z DBG github.com/traefik/traefik/v3/pkg/tcp/proxy.go:32 > Handling '
                      'TCP connection address=127.0.0.1:30776 remoteAddr=127.0.0.1:41549')
DCMTK_HTTP_ANSWER = "F: Association Request Failed: 0006:0321 Unrecognized PDU type: 48"
DCMTK_KILLED = ("I: Requesting Association", "echoscu timed out after 45s")


def test_dcmtk_reading_traefiks_http_answer_means_tls_fell_to_https() -> None:
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_HTTP_ANSWER,), proxy_lines=(TRAEFIK_FALLBACK,),
                                  peer_certificate="TRAEFIK DEFAULT CERT"))
    assert diagnosis.reason is Reason.TLS_FELL_TO_HTTPS
    assert diagnosis.summary.startswith("the TLS handshake completed, but no TCP route matches a client without SNI, "
                                        "so Traefik handed the connection to its HTTPS handler")
    assert "HostSNI(`*`)" in diagnosis.fix and "--request-sni" in diagnosis.fix
    assert diagnosis.evidence == (f"client: {DCMTK_HTTP_ANSWER}", f"proxy: {TRAEFIK_FALLBACK}")


def test_pynetdicom_with_an_unrouted_sni_reading_http_blames_the_name_sent() -> None:
    diagnosis = diagnose(Symptoms(
        client_lines=("Requesting Association", "Unknown PDU type received '0x48'", "Association Aborted"),
        proxy_lines=('traefik: 2026-12-01T10:04:28Z DBG github.com/traefik/traefik/v3/pkg/tls/tlsmanager.go:290 > '
                     'Serving default certificate for request: "wrong-sni.invalid"',),
        sent_sni=True,
    ))
    assert diagnosis.reason is Reason.TLS_FELL_TO_HTTPS
    assert "no TCP route matches the SNI the client sent" in diagnosis.summary
    assert "client: Unknown PDU type received '0x48'" in diagnosis.evidence


def test_http_answer_without_a_traefik_line_does_not_blame_traefik() -> None:
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_HTTP_ANSWER,)))
    assert diagnosis.reason is Reason.TLS_FELL_TO_HTTPS
    assert "Traefik" not in diagnosis.summary and "an HTTP server answered the A-ASSOCIATE-RQ" in diagnosis.summary


def test_http_answer_to_plain_dicom_is_not_a_tls_fallthrough() -> None:
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_HTTP_ANSWER,), transport="plain"))
    assert diagnosis.reason is not Reason.TLS_FELL_TO_HTTPS


def test_client_timeout_after_traefik_served_a_certificate_but_routed_nothing_means_tls_fell_to_https() -> None:
    # Traefik before 2.11.2 (readTimeout 0) never answers: the client times out, Traefik's log tells the rest.
    diagnosis = diagnose(Symptoms(client_lines=DCMTK_KILLED, proxy_lines=(TRAEFIK_FALLBACK,),
                                  peer_certificate="TRAEFIK DEFAULT CERT"))
    assert diagnosis.reason is Reason.TLS_FELL_TO_HTTPS
    assert "Traefik logged the certificate it served and no TCP connection" in diagnosis.summary
    assert diagnosis.evidence == ("client: echoscu timed out after 45s", f"proxy: {TRAEFIK_FALLBACK}")


def test_client_timeout_on_a_connection_a_traefik_tcp_router_took_stays_a_timeout() -> None:
    diagnosis = diagnose(Symptoms(client_lines=DCMTK_KILLED, proxy_lines=(TRAEFIK_FALLBACK, TRAEFIK_TCP_ROUTED),
                                  peer_certificate="TRAEFIK DEFAULT CERT"))
    assert diagnosis.reason is Reason.TIMEOUT


def test_client_timeout_before_the_handshake_completed_stays_a_timeout() -> None:
    diagnosis = diagnose(Symptoms(client_lines=DCMTK_KILLED, proxy_lines=(TRAEFIK_FALLBACK,)))
    assert diagnosis.reason is Reason.TIMEOUT


def test_client_timeout_without_traefiks_word_stays_a_timeout() -> None:
    diagnosis = diagnose(Symptoms(client_lines=("ACSE timeout reached while waiting for response to association "
                                                "request",)))
    assert diagnosis.reason is Reason.TIMEOUT


def test_nginx_missing_required_client_certificate_means_cert_required() -> None:
    # ssl_verify_client on: nginx completes the handshake, then closes; its error log says why.
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_PEER_ABORTED,), proxy_lines=(
        "nginx: 2026/11/27 23:51:31 [info] 18803#18803: *608 client sent no required SSL certificate while SSL "
        "handshaking, client: 127.0.0.1, server: 127.0.0.1:58559",
    )))
    assert diagnosis.reason is Reason.TLS_CERT_REQUIRED


def test_nginx_failed_client_verify_in_the_access_log_means_the_server_rejected_the_certificate() -> None:
    diagnosis = diagnose(Symptoms(client_lines=("Association Aborted",), sent_client_cert="untrusted", proxy_lines=(
        'nginx:access.log: time=2026-11-27T23:51:28+00:00 client=127.0.0.1:35726 status=500 preread_sni="-" sni="-" '
        'protocol=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 client_verify="FAILED:unable to verify the first '
        'certificate" upstream=- rx=0 tx=0 session_time=0.000',
    )))
    assert diagnosis.reason is Reason.TLS_UNKNOWN_CA
    assert diagnosis.summary.startswith("the server rejected the client certificate (untrusted)")


def test_nginx_preread_without_a_route_means_no_matching_sni() -> None:
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_UNEXPECTED_EOF,), proxy_lines=(
        'nginx: 2026/11/27 23:51:38 [error] 19316#19316: *306 no host in upstream "", client: 127.0.0.1, server: '
        '127.0.0.1:34183, bytes from/to client:0/0, bytes from/to upstream:0/0',
    )))
    assert diagnosis.reason is Reason.TLS_NO_MATCHING_SNI


def test_haproxy_untrusted_client_certificate_means_unknown_ca_or_expired_when_it_is() -> None:
    line = "haproxy: 127.0.0.1:44502 [27/Nov/2026:23:51:55.384] dicom/1: SSL client certificate not trusted"
    untrusted = diagnose(Symptoms(client_lines=(DCMTK_PEER_ABORTED,), proxy_lines=(line,),
                                  sent_client_cert="untrusted"))
    assert untrusted.reason is Reason.TLS_UNKNOWN_CA
    expired = diagnose(Symptoms(client_lines=(DCMTK_PEER_ABORTED,), proxy_lines=(line,), sent_client_cert="expired",
                                client_cert_expired_on="2026-11-26T23:49:56+00:00"))
    assert expired.reason is Reason.TLS_CERT_EXPIRED


def test_haproxy_no_backend_for_the_sni_means_no_matching_sni() -> None:
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_UNEXPECTED_EOF,), proxy_lines=(
        "haproxy: 127.0.0.1:32816 [27/Nov/2026:23:52:08.545] dicom dicom/<NOSRV> -1/-1/0 0 SC sni=-",
    )))
    assert diagnosis.reason is Reason.TLS_NO_MATCHING_SNI


def test_haproxy_generic_handshake_failure_names_no_reason() -> None:
    # HAProxy 2.6 logs a missing required client certificate as no more than this; dcmtk sees the peer go away.
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_PEER_ABORTED,), proxy_lines=(
        "haproxy: 127.0.0.1:40044 [27/Nov/2026:23:55:53.547] dicom/1: SSL handshake failure",
    )))
    assert diagnosis.reason is Reason.TLS_HANDSHAKE_FAILED


# --- vocabulary -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_every_reason_is_explained_with_a_fix(reason: Reason) -> None:
    summary, fix = EXPLANATIONS[reason]
    assert summary.strip()
    assert fix.strip()


def test_explanations_name_only_known_reasons() -> None:
    assert set(EXPLANATIONS) == set(Reason)


# Captured from the Docker backend's default matrix (Envoy, HAProxy) and the local one (nginx).
ENVOY_NO_FILTER_CHAIN = ("proxy: envoy:access.log: [2026-12-01T18:39:16.748Z] downstream=192.168.48.1:44086 sni=- "
                         "flags=NR details=- tls_failure=- tls_version=- cipher=- peer=- upstream=- rx=0 tx=0")
HAPROXY_NO_BACKEND = ("proxy: haproxy: 192.168.240.1:51884 [01/Dec/2026:18:39:42.829] dicom dicom/<NOSRV> -1/-1/0 0 SC "
                      "sni=-")
NGINX_EMPTY_MAP = ('proxy: nginx: 2026/11/27 23:51:38 [error] 19316#19316: *306 no host in upstream "", client: '
                   '127.0.0.1, server: 127.0.0.1:34183, bytes from/to client:0/0, bytes from/to upstream:0/0')


@pytest.mark.parametrize("line", [ENVOY_NO_FILTER_CHAIN, HAPROXY_NO_BACKEND, NGINX_EMPTY_MAP])
def test_a_proxy_that_logs_no_route_for_the_connection_was_alive_to_refuse_it(line: str) -> None:
    assert refused_by_a_live_proxy((f"client: {DCMTK_UNEXPECTED_EOF}", line))


def test_a_bare_close_or_an_unreachable_upstream_leaves_a_dying_component_to_rule_out() -> None:
    upstream_failed = ENVOY_NO_FILTER_CHAIN.replace("flags=NR", "flags=UF")
    assert not refused_by_a_live_proxy((f"client: {DCMTK_UNEXPECTED_EOF}",))
    assert not refused_by_a_live_proxy((f"client: {DCMTK_UNEXPECTED_EOF}", upstream_failed))
    assert not refused_by_a_live_proxy(("client: flags=NR quoted by a client is not the proxy's word",))
