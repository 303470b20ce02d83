"""Traefik, nginx and HAProxy scenarios, run once as a user runs them, checked where each proxy differs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import matrix_run

pytestmark = pytest.mark.integration

SCENARIOS = ("korthweb-traefik", "nginx-stream", "haproxy-tls")


@pytest.fixture(scope="module")
def proxies_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    args = ["--backend", "local"]
    for name in SCENARIOS:
        args += ["--scenario", name]
    return matrix_run(tmp_path_factory.mktemp("proxies"), *args)


def cells(run: dict[str, Any], **where: str) -> list[dict[str, Any]]:
    found = [c for c in run["results"]["cells"] if all(c[k] == v for k, v in where.items())]
    assert found, f"no cell matches {where}"
    return found


def outcomes(run: dict[str, Any], **where: str) -> set[tuple[str, str | None]]:
    return {(c["actual"], c["reason"]) for c in cells(run, **where)}


def test_proxy_scenarios_exit_zero_with_every_cell_as_expected(proxies_run: dict[str, Any]) -> None:
    proc = proxies_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert {c["verdict"] for c in proxies_run["results"]["cells"]} == {"ok"}
    run = proxies_run["results"]["run"]
    assert set(run["scenarios"]) == set(SCENARIOS)
    for component in ("traefik", "nginx", "haproxy"):
        assert run["versions"][component] not in ("", "unknown")


@pytest.mark.parametrize("environment", ["traefik-korthweb", "traefik-hostsni-any"])
def test_traefik_serves_its_fallback_certificate_to_dcmtk_without_sni(proxies_run: dict[str, Any],
                                                                      environment: str) -> None:
    verified = cells(proxies_run, environment=environment, client="dcmtk", server_cert_check="verify")
    for cell in verified:
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-unknown-ca"), cell["id"]
        assert "fallback certificate because the client sent no SNI" in cell["summary"]
        assert any("certificate verify failed" in e for e in cell["evidence"]), cell["evidence"]
        assert any("Serving default certificate" in e for e in cell["evidence"]), cell["evidence"]


def test_traefik_korthweb_named_hostsni_sends_the_ignore_server_cert_workaround_to_the_https_handler(
        proxies_run: dict[str, Any]) -> None:
    # Korthweb's chart names its host: dcmtk -ic completes TLS on Traefik's certificate, matches no TCP route, and
    # Traefik's HTTPS handler answers the A-ASSOCIATE-RQ with HTTP, read back as PDU type 0x48 ("H").
    ignored = cells(proxies_run, environment="traefik-korthweb", client="dcmtk", server_cert_check="ignore")
    wrong_sni = cells(proxies_run, environment="traefik-korthweb", client="pynetdicom", server_cert_check="ignore")
    assert {c["sni"] for c in wrong_sni} == {"none", "wrong"}
    for cell in ignored + wrong_sni:
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-fell-to-https"), cell["id"]
        assert "HTTPS handler" in cell["summary"]
        assert any(e.startswith("client: ") and ("PDU type: 48" in e or "PDU type received '0x48'" in e)
                   for e in cell["evidence"]), cell["evidence"]
        assert any("Serving default certificate" in e for e in cell["evidence"]), cell["evidence"]
        assert "HostSNI(`*`)" in cell["fix"] and "--request-sni" in cell["fix"]
        # Answered by Traefik, not left to the client's own timeout.
        assert not any("timed out" in e or "timeout" in e for e in cell["evidence"]), cell["evidence"]
    assert all(" -ic " in c["command"] for c in ignored)


def test_traefik_korthweb_passes_a_client_that_sends_the_routes_name(proxies_run: dict[str, Any]) -> None:
    right = cells(proxies_run, environment="traefik-korthweb", client="pynetdicom", sni="right")
    assert {c["operation"] for c in right} == {"echo", "store-ct", "store-large"}
    assert {c["actual"] for c in right} == {"pass"}
    assert all("holds the sent dataset" in c["detail"] for c in right if c["operation"] != "echo")


def test_traefik_hostsni_any_lets_the_users_ignore_server_cert_workaround_through(proxies_run: dict[str, Any]) -> None:
    ignored = cells(proxies_run, environment="traefik-hostsni-any", client="dcmtk", server_cert_check="ignore")
    assert {c["actual"] for c in ignored} == {"pass"}
    assert any(" -ic " in c["command"] for c in ignored)
    stores = [c for c in ignored if c["operation"] == "store-ct"]
    assert stores and all("holds the sent dataset" in c["detail"] for c in stores)


def test_traefik_default_certificate_lets_dcmtk_verify_the_server(proxies_run: dict[str, Any]) -> None:
    assert outcomes(proxies_run, environment="traefik-default-certificate", client="dcmtk",
                    server_cert_check="verify") == {("pass", None)}


def test_traefik_sni_strict_refuses_dcmtk_with_unrecognized_name(proxies_run: dict[str, Any]) -> None:
    for cell in cells(proxies_run, environment="traefik-sni-strict", client="dcmtk"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-no-matching-sni"), cell["id"]
        assert any("unrecognized name" in e for e in cell["evidence"]), cell["evidence"]
    assert outcomes(proxies_run, environment="traefik-sni-strict", client="pynetdicom", sni="right") == {("pass", None)}


def test_traefik_required_client_cert_is_named_from_traefiks_log(proxies_run: dict[str, Any]) -> None:
    (cell,) = cells(proxies_run, environment="traefik-client-cert-required", client="dcmtk", client_cert="none",
                    server_cert_check="ignore")
    assert (cell["actual"], cell["reason"]) == ("fail", "tls-cert-required")
    assert any("client didn't provide a certificate" in e for e in cell["evidence"]), cell["evidence"]
    assert outcomes(proxies_run, environment="traefik-client-cert-required", client="pynetdicom", sni="right",
                    client_cert="none") == {("fail", "tls-cert-required")}


def test_traefik_passthrough_hands_clients_without_sni_to_orthancs_own_tls(proxies_run: dict[str, Any]) -> None:
    assert outcomes(proxies_run, environment="traefik-passthrough", client="dcmtk", client_cert="valid") == {
        ("pass", None)}
    assert outcomes(proxies_run, environment="traefik-passthrough", client="pynetdicom", sni="none",
                    client_cert="valid") == {("pass", None)}


def test_nginx_closes_after_the_handshake_and_its_log_says_why(proxies_run: dict[str, Any]) -> None:
    for cell in cells(proxies_run, environment="nginx-tls-client-cert-required", client="dcmtk", client_cert="none"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-cert-required"), cell["id"]
        assert any("Peer aborted Association" in e for e in cell["evidence"]), cell["evidence"]
        assert any("client sent no required SSL certificate" in e for e in cell["evidence"]), cell["evidence"]
    assert outcomes(proxies_run, environment="nginx-tls-client-cert-optional", client="dcmtk",
                    client_cert="untrusted") == {("fail", "tls-unknown-ca")}


def test_nginx_ssl_preread_closes_clients_without_a_listed_sni(proxies_run: dict[str, Any]) -> None:
    for cell in cells(proxies_run, environment="nginx-sni-preread", client="dcmtk"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-no-matching-sni"), cell["id"]
        assert any('no host in upstream ""' in e for e in cell["evidence"]), cell["evidence"]
    assert outcomes(proxies_run, environment="nginx-sni-preread", client="pynetdicom", sni="right") == {
        ("pass", None)}


def test_haproxy_strict_sni_and_sni_routing_turn_away_clients_without_sni(proxies_run: dict[str, Any]) -> None:
    for cell in cells(proxies_run, environment="haproxy-strict-sni", client="dcmtk"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-no-matching-sni"), cell["id"]
        assert any("unrecognized name" in e for e in cell["evidence"]), cell["evidence"]
    for cell in cells(proxies_run, environment="haproxy-sni-passthrough", client="dcmtk"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-no-matching-sni"), cell["id"]
        assert any("<NOSRV>" in e for e in cell["evidence"]), cell["evidence"]
    assert outcomes(proxies_run, environment="haproxy-sni-passthrough", client="pynetdicom", sni="right") == {
        ("pass", None)}


def test_haproxy_names_a_missing_client_certificate_only_to_clients_that_read_the_alert(
        proxies_run: dict[str, Any]) -> None:
    assert outcomes(proxies_run, environment="haproxy-tls-client-cert-required", client="pynetdicom",
                    client_cert="none", sni="right") == {("fail", "tls-cert-required")}
    for cell in cells(proxies_run, environment="haproxy-tls-client-cert-required", client="dcmtk", client_cert="none"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-handshake-failed"), cell["id"]
        assert any("SSL handshake failure" in e for e in cell["evidence"]), cell["evidence"]


def test_haproxy_pem_holds_the_server_chain_and_key_readable_by_its_owner_only(proxies_run: dict[str, Any]) -> None:
    out: Path = proxies_run["out"]
    pems = list(out.glob("envs/haproxy-tls-*/haproxy/orthanc.pem"))
    assert pems
    server_keys = [k.read_text().strip() for k in out.glob("pki/*/server.key")]
    ca_keys = [k.read_text().strip() for k in out.glob("pki/*/ca-private/*.key")]
    assert server_keys and ca_keys
    for pem in pems:
        assert pem.stat().st_mode & 0o777 == 0o600
        text = pem.read_text()
        assert text.startswith("-----BEGIN CERTIFICATE-----")
        assert sum(key in text for key in server_keys) == 1
        assert not any(key in text for key in ca_keys)


def test_proxy_run_leaves_no_process_or_port_behind(proxies_run: dict[str, Any]) -> None:
    assert proxies_run["leftovers"] == (set(), set())
