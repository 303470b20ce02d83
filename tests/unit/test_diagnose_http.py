"""An HTTPS client's failures diagnosed from the HTTP status it was answered (captured answers of real runs):
the status decides, nginx's 400 for a refused client certificate reads as the TLS reason the stream server gives."""

from __future__ import annotations

import pytest

from dicomtls.diagnose import Symptoms, diagnose
from dicomtls.reasons import Reason, Side

NGINX_496 = ("QIDO-RS: HTTP 400 Bad Request (nginx/1.22.1): <html> <head><title>400 No required SSL certificate was "
             "sent</title></head> <body> <center><h1>400 Bad Request</h1></center> <center>No required SSL "
             "certificate was sent</center> <hr><center>nginx/1.22.1</center> </body> </html>")
NGINX_495 = ("STOW-RS: HTTP 400 Bad Request (nginx/1.22.1): <html> <head><title>400 The SSL certificate error</title>"
             "</head> <body> <center><h1>400 Bad Request</h1></center> <center>The SSL certificate error</center>")
TRAEFIK_404 = "QIDO-RS: HTTP 404 Not Found: 404 page not found"


def web(line: str, status: int, **more: object) -> Symptoms:
    return Symptoms(client_lines=(line,), dicom_stage="http", http_status=status, **more)  # type: ignore[arg-type]


def test_nginx_400_no_required_certificate_is_cert_required_refused_by_the_server() -> None:
    found = diagnose(web(NGINX_496, 400, sent_client_cert="none"))
    assert found.reason is Reason.TLS_CERT_REQUIRED and found.facts.refused_by is Side.SERVER
    assert found.evidence[0] == f"client: {NGINX_496}"


def test_nginx_400_certificate_error_is_unknown_ca_or_expired_by_the_certificate_sent() -> None:
    assert diagnose(web(NGINX_495, 400, sent_client_cert="untrusted")).reason is Reason.TLS_UNKNOWN_CA
    expired = diagnose(web(NGINX_495, 400, sent_client_cert="expired", client_cert_expired_on="2020-01-01"))
    assert expired.reason is Reason.TLS_CERT_EXPIRED and expired.facts.refused_by is Side.SERVER


@pytest.mark.parametrize("status, reason", [
    (404, Reason.HTTP_ROUTE_MISSING), (421, Reason.HTTP_MISDIRECTED), (503, Reason.UPSTREAM_UNREACHABLE),
    (502, Reason.UPSTREAM_UNREACHABLE), (403, Reason.HTTP_REFUSED), (500, Reason.HTTP_REFUSED),
])
def test_the_status_names_the_reason(status: int, reason: Reason) -> None:
    assert diagnose(web(f"QIDO-RS: HTTP {status} whatever", status)).reason is reason


def test_a_404_s_fix_names_each_proxy_s_host_rule_and_the_server_s_web_api() -> None:
    found = diagnose(web(TRAEFIK_404, 404))
    assert "Host() rule" in found.fix and "server_name" in found.fix and "orthanc-dicomweb" in found.fix


def test_a_store_that_answered_but_was_not_held_is_still_store_not_verified() -> None:
    found = diagnose(Symptoms(client_lines=("WADO-RS: HTTP 200 gave back 1 parts, not the dataset sent",),
                              dicom_stage="verify", http_status=200))
    assert found.reason is Reason.STORE_NOT_VERIFIED
