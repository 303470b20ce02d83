"""dcmtk 3.6.7 behind stunnel against the Istio twin's named host, on the local backend and on Docker: stunnel
sends the SNI dcmtk 3.6.7 cannot, so the cell passes where plain dcmtk 3.6.7 is closed for want of a matching
filter chain; the other axes fail for the reasons stunnel's own log names; each run leaves nothing behind."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from dicomtls.backends import docker_answers
from dicomtls.probes.dcmtk import Dcmtk

from .conftest import ROOT, cells, matrix_run

pytestmark = pytest.mark.integration

SCENARIO = ROOT / "tests" / "fixtures" / "scenarios" / "stunnel-istio.yaml"


def _local_can_run() -> str | None:
    if shutil.which("stunnel4") is None:
        return "stunnel4 is not installed (install.sh installs it)"
    if Dcmtk().version() != "3.6.7":
        return f"this machine's dcmtk is {Dcmtk().version()}, the scenario asks for 3.6.7 (Docker runs it)"
    return None


@pytest.fixture(scope="module", params=[
    pytest.param("local", marks=pytest.mark.skipif(bool(_local_can_run()), reason=str(_local_can_run()))),
    pytest.param("docker", marks=pytest.mark.skipif(not docker_answers(),
                                                    reason="no Docker engine answers (install.sh starts one)")),
])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    found = matrix_run(tmp_path_factory.mktemp(f"stunnel-{request.param}"), "--backend", request.param,
                       "--scenario", str(SCENARIO))
    found["backend"] = request.param
    if request.param == "docker":
        import docker

        api = docker.from_env().api
        found["containers_after"] = api.containers(all=True, filters={"label": "dicomtls"})
    return found


def test_stunnel_run_has_every_cell_as_expected_and_leaves_nothing(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert run["results"]["run"]["versions"]["dcmtk"] == "3.6.7"
    assert run["leftovers"] == (set(), set())  # no stunnel (nor any server) still running on this machine
    assert run.get("containers_after", []) == []


def test_dcmtk_3_6_7_via_stunnel_with_sni_passes_the_named_host_where_plain_dcmtk_3_6_7_fails(
        run: dict[str, Any]) -> None:
    plain = cells(run, environment="istio-named-simple", client="dcmtk", client_version="3.6.7")
    assert [(c["actual"], c["reason"]) for c in plain] == [("fail", "tls-no-matching-sni")]
    via = cells(run, environment="istio-named-simple", client="dcmtk-stunnel", sni="right")
    assert {c["operation"]: c["actual"] for c in via} == {"echo": "pass", "store-ct": "pass", "store-large": "pass"}
    assert all(c["certificate"] == "dicom.korthweb.test" for c in via)
    assert all("holds the sent dataset" in c["detail"] for c in via if c["operation"] != "echo")
    assert all(c["command"].startswith("stunnel4 ") and "+tla" not in c["command"] for c in via)


def test_stunnel_without_sni_is_closed_like_plain_dcmtk_and_the_proxy_says_why(run: dict[str, Any]) -> None:
    [cell] = cells(run, environment="istio-named-simple", client="dcmtk-stunnel", sni="none")
    assert (cell["actual"], cell["reason"]) == ("fail", "tls-no-matching-sni")
    assert cell["evidence"][0].startswith("client: stunnel: SSL_connect:")
    assert any("sni=- flags=NR" in e for e in cell["evidence"]), cell["evidence"]


def test_stunnel_log_names_each_tls_failure(run: dict[str, Any]) -> None:
    mutual = {(c["sni"], c["client_cert"], c["server_cert_check"]): c
              for c in cells(run, environment="istio-wildcard-mutual")}
    assert mutual["wrong", "valid", "verify"]["reason"] == "tls-hostname-mismatch"
    assert "client: stunnel: CERT: Subject checks failed" in mutual["wrong", "valid", "verify"]["evidence"]
    # TLS 1.3 sends the server's verdict on the client certificate after the handshake: stunnel reads the alert,
    # or meets the closed socket first when it writes; the proxy's line names the reason either way.
    assert mutual["right", "untrusted", "verify"]["reason"] == "tls-unknown-ca"
    assert mutual["right", "untrusted", "verify"]["evidence"][0].startswith("client: stunnel: ")
    assert mutual["right", "none", "verify"]["reason"] == "tls-cert-required"
    assert mutual["right", "expired", "verify"]["reason"] == "tls-cert-expired"
    # Without the server check stunnel takes any name, as -ic does for dcmtk.
    assert mutual["wrong", "valid", "ignore"]["actual"] == "pass"
