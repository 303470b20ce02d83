"""The Istio twin and Traefik run from real manifests: korthweb-istio's Gateways, and a Korthweb-style
Traefik directory (a named HostSNI, as the chart renders it) given to `invoke matrix --manifests`, in one run; and an Orthweb-style Envoy bootstrap run by
the real Envoy, rewritten, in another; and manifests routing to two Orthanc Services, one Orthanc each."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ROOT, matrix_run

pytestmark = pytest.mark.integration

TRAEFIK_MANIFESTS = ROOT / "tests" / "fixtures" / "manifests" / "korthweb-traefik"
TRAEFIK_ENV = "traefik-orthanc-dicom"
ORTHWEB_MANIFESTS = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-envoy"
ORTHWEB_ENV = "envoy-bootstrap-envoy"
TWO_SITES = ROOT / "tests" / "fixtures" / "manifests" / "two-sites"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("manifests"), "--backend", "local", "--scenario", "korthweb-istio",
                      "--manifests", str(TRAEFIK_MANIFESTS))


@pytest.fixture(scope="module")
def bootstrap_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("bootstrap"), "--backend", "local", "--manifests",
                      str(ORTHWEB_MANIFESTS))


@pytest.fixture(scope="module")
def sites_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("sites"), "--backend", "local", "--manifests", str(TWO_SITES))


def cells(run: dict[str, Any], **where: str) -> list[dict[str, Any]]:
    found = [c for c in run["results"]["cells"] if all(c[k] == v for k, v in where.items())]
    assert found, f"no cell matches {where}"
    return found


def environment(run: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in run["results"]["environments"] if e["name"] == name)


def test_manifest_run_exits_zero_and_leaves_nothing_running(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert run["leftovers"] == (set(), set())
    istio = [c for c in run["results"]["cells"] if c["scenario"] == "korthweb-istio"]
    assert istio and {c["verdict"] for c in istio} == {"ok"}
    assert run["results"]["run"]["versions"]["istio-gateway"] not in ("", "unknown")


def test_istio_wildcard_hosts_let_dcmtk_without_sni_store(run: dict[str, Any]) -> None:
    stores = cells(run, environment="istio-wildcard-simple", client="dcmtk", operation="store-ct")
    assert all(c["actual"] == "pass" and "holds the sent dataset" in c["detail"] for c in stores)


def test_istio_named_hosts_close_dcmtk_without_sni_with_no_filter_chain_match(run: dict[str, Any]) -> None:
    for cell in cells(run, environment="istio-named-simple", client="dcmtk"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-no-matching-sni"), cell["id"]
        assert any("access.log" in e and "sni=-" in e and "flags=NR" in e for e in cell["evidence"]), cell["evidence"]
    assert {c["actual"] for c in cells(run, environment="istio-named-simple", sni="right")} == {"pass"}


def test_istio_mutual_requires_a_client_certificate(run: dict[str, Any]) -> None:
    without = cells(run, environment="istio-wildcard-mutual", client="dcmtk", client_cert="none")
    assert {(c["actual"], c["reason"]) for c in without} == {("fail", "tls-cert-required")}
    assert {c["actual"] for c in cells(run, environment="istio-wildcard-mutual", client="dcmtk",
                                       client_cert="valid")} == {"pass"}


def test_istio_gateway_fields_not_reproduced_are_reported(run: dict[str, Any]) -> None:
    listed = environment(run, "istio-wildcard-simple")["unhonoured"]
    assert any("spec.servers[1] protocol HTTPS: not reproduced" in line for line in listed)
    assert "not reproduced from the manifests" in run["proc"].stdout


def test_traefik_manifests_are_observed_not_expected(run: dict[str, Any]) -> None:
    observed = cells(run, environment=TRAEFIK_ENV)
    assert len(observed) == 18 and {c["expected"] for c in observed} == {"observe"}
    assert environment(run, TRAEFIK_ENV)["server_names"] == ["dicom.korthweb.test"]


def test_traefik_manifests_serve_the_default_certificate_to_dcmtk_without_sni(run: dict[str, Any]) -> None:
    # The route names its host, as Korthweb's chart renders it: without SNI dcmtk gets Traefik's own certificate.
    for cell in cells(run, environment=TRAEFIK_ENV, client="dcmtk"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-unknown-ca"), cell["id"]
        assert any("Serving default certificate" in e for e in cell["evidence"]), cell["evidence"]
    for cell in cells(run, environment=TRAEFIK_ENV, client="pynetdicom", sni="wrong"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-unknown-ca"), cell["id"]


def test_traefik_manifests_pass_pynetdicom_with_the_right_sni(run: dict[str, Any]) -> None:
    right = cells(run, environment=TRAEFIK_ENV, client="pynetdicom", sni="right")
    assert {c["actual"] for c in right} == {"pass"}
    assert all("holds the sent dataset" in c["detail"] for c in right if c["operation"] == "store-ct")


def test_traefik_tls_option_fields_not_reproduced_are_reported(run: dict[str, Any]) -> None:
    listed = environment(run, TRAEFIK_ENV)["unhonoured"]
    assert any("TLSOption orthanc-dicom-tlsoption): spec.maxVersion: not reproduced" in line for line in listed)


def test_envoy_runs_the_rewritten_orthweb_bootstrap(bootstrap_run: dict[str, Any]) -> None:
    proc = bootstrap_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert bootstrap_run["leftovers"] == (set(), set())
    assert environment(bootstrap_run, ORTHWEB_ENV)["error"] is None
    assert bootstrap_run["results"]["run"]["versions"]["envoy-bootstrap"] not in ("", "unknown")
    [config] = (bootstrap_run["out"] / "envs").glob(f"{ORTHWEB_ENV}-*/envoy-bootstrap/envoy.yaml")
    text = config.read_text()
    assert "/etc/ssl" not in text and "9901" not in text and "orthanc_web" not in text
    log = (bootstrap_run["out"] / "logs" / ORTHWEB_ENV / "envoy-bootstrap" / "output.log").read_text()
    assert "starting main dispatch loop" in log


def test_orthweb_bootstrap_lets_dcmtk_without_sni_store_with_or_without_a_valid_certificate(
        bootstrap_run: dict[str, Any]) -> None:
    for cert in ("none", "valid"):
        found = cells(bootstrap_run, environment=ORTHWEB_ENV, client="dcmtk", sni="none", client_cert=cert)
        assert {c["operation"] for c in found} == {"echo", "store-ct"}
        assert {c["actual"] for c in found} == {"pass"}, [c["summary"] for c in found]
        assert all("holds the sent dataset" in c["detail"] for c in found if c["operation"] == "store-ct")


def test_orthweb_bootstrap_refuses_an_untrusted_client_certificate(bootstrap_run: dict[str, Any]) -> None:
    found = cells(bootstrap_run, environment=ORTHWEB_ENV, client="dcmtk", client_cert="untrusted")
    assert {c["operation"] for c in found} == {"echo", "store-ct"}
    for cell in found:
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-unknown-ca"), cell["id"]
        # The diagnosis found this connection's own line in the tool's connection log, Envoy's reason in it.
        lines = [e for e in cell["evidence"] if "access.log" in e]
        assert len(lines) == 1 and "CERTIFICATE_VERIFY_FAILED" in lines[0], cell["evidence"]


def test_orthweb_bootstrap_reports_the_admin_interface_and_the_second_listener(bootstrap_run: dict[str, Any]) -> None:
    listed = environment(bootstrap_run, ORTHWEB_ENV)["unhonoured"]
    assert any("admin: the admin interface (0.0.0.0:9901) is not started" in line for line in listed)
    assert any("static_resources.listeners[1] (orthanc_web) (0.0.0.0:443): not started" in line for line in listed)
    assert any("the server certificate is the generated PKI's, not /etc/ssl/certs/site.pem" in line
               for line in listed)


@pytest.mark.parametrize("env", ["istio-gateway-dicom-sites", "istio-gateway-dicom-sites-passthrough",
                                 "traefik-dicom-sites", "envoy-bootstrap-envoy"])
def test_manifests_routing_to_two_services_deliver_each_store_to_its_own_orthanc(sites_run: dict[str, Any],
                                                                                 env: str) -> None:
    proc = sites_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert sites_run["leftovers"] == (set(), set())
    sites = [s["name"] for s in environment(sites_run, env)["sites"]]
    assert sorted(sites) == ["orthanc-north", "orthanc-south"]
    for site in sites:
        stores = cells(sites_run, environment=env, sni=site, operation="store-ct")
        assert [(c["actual"], c["site"]) for c in stores] == [("pass", site)], stores
        other = next(s for s in sites if s != site)
        assert f"not in {other}" in stores[0]["detail"]
