"""DICOMweb through the same ingress, on the local backend and on Docker: the bundled ``dicomweb`` scenario's web
cells (QIDO-RS echo; STOW-RS, then QIDO-RS and WADO-RS) beside DIMSE cells through Envoy, nginx, Traefik and HAProxy, each
cell as its expect: rule says, every store verified in Orthanc, and nothing left behind. One run per backend."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import EACH_BACKEND, cells, matrix_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=EACH_BACKEND)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    found = matrix_run(tmp_path_factory.mktemp(f"dicomweb-{request.param}"), "--backend", request.param,
                       "--scenario", "dicomweb")
    if request.param == "docker":
        import docker

        found["containers_after"] = docker.from_env().api.containers(all=True, filters={"label": "dicomtls"})
    return found


def test_dicomweb_run_has_every_cell_as_expected_and_leaves_nothing(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert {c["verdict"] for c in run["results"]["cells"]} == {"ok"}
    assert run["leftovers"] == (set(), set())
    assert run.get("containers_after", []) == []


def test_stow_rs_store_is_found_by_qido_rs_given_back_by_wado_rs_and_held_by_orthanc(run: dict[str, Any]) -> None:
    stored = [c for c in cells(run, client="dicomweb", operation="store-ct") if c["actual"] == "pass"]
    assert {c["environment"] for c in stored} == {"envoy-web", "envoy-web-named-mtls", "nginx-web-mtls",
                                                  "traefik-web-named", "haproxy-web-mtls"}
    for cell in stored:
        assert cell["command"].startswith("curl --fail --cacert "), cell["command"]
        assert "then STOW-RS, QIDO-RS and WADO-RS" in cell["command"]
        assert "holds the sent dataset" in cell["detail"], cell["detail"]
        assert cell["certificate"] == "dicom.web.test"


def test_web_route_keeps_the_dicom_route_s_sni_and_client_certificate_rules(run: dict[str, Any]) -> None:
    for sni in ("none", "wrong"):
        for cell in cells(run, environment="envoy-web-named-mtls", sni=sni):  # DICOM and web alike
            assert (cell["actual"], cell["reason"]) == ("fail", "tls-no-matching-sni"), cell["id"]
    [web_no_cert] = cells(run, environment="envoy-web-named-mtls", client="dicomweb", sni="right",
                          client_cert="none", operation="echo")
    assert web_no_cert["reason"] == "tls-cert-required"
    # TLS 1.3 sends the verdict after the handshake: the client reads the alert or meets the closed socket first;
    # Envoy's line names the cause either way.
    assert any("PEER_DID_NOT_RETURN_A_CERTIFICATE" in e for e in web_no_cert["evidence"]), web_no_cert["evidence"]


def test_nginx_http_server_answers_a_missing_client_certificate_with_400_read_as_cert_required(
        run: dict[str, Any]) -> None:
    for cell in cells(run, environment="nginx-web-mtls", client="dicomweb", client_cert="none", sni="right"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-cert-required")
        assert "HTTP 400" in cell["evidence"][0] and "No required SSL certificate was sent" in cell["evidence"][0]


def test_traefik_host_rule_answers_a_request_for_the_address_404(run: dict[str, Any]) -> None:
    for cell in cells(run, environment="traefik-web-named", client="dicomweb", sni="none"):
        assert (cell["actual"], cell["reason"]) == ("fail", "http-route-missing")
        assert "HTTP 404" in cell["evidence"][0]
    [dicom] = cells(run, environment="traefik-web-named", client="pynetdicom", sni="none")
    assert dicom["reason"] == "tls-fell-to-https"  # the DICOM side of the same rule
