"""The Istio twin and Traefik run from real manifests: korthweb-istio's Gateways, and a Korthweb-style
Traefik directory (a named HostSNI, as the chart renders it) given to `invoke matrix --manifests`, in one run;
an Orthweb-style Envoy bootstrap run by the real Envoy, rewritten, in another; Orthweb's last envoy.yaml (health checks, runtime limits, logs under
/home/envoy, expired client certificates allowed) locally and on Docker, and a bootstrap Envoy refuses; manifests
routing to two Orthanc Services, one Orthanc each; the Istio twin as istiod translates; and the PKI cert-manager
documents declare, one CA level or two, served by the Istio twin."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from dicomtls.backends import docker_answers

from .conftest import ROOT, cells, environment, matrix_run

pytestmark = pytest.mark.integration

TRAEFIK_MANIFESTS = ROOT / "tests" / "fixtures" / "manifests" / "korthweb-traefik"
TRAEFIK_ENV = "traefik-orthanc-dicom"
ORTHWEB_MANIFESTS = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-envoy"
ORTHWEB_ENV = "envoy-bootstrap-envoy"
TWO_SITES = ROOT / "tests" / "fixtures" / "manifests" / "two-sites"
ISTIO_TRANSLATION = ROOT / "tests" / "fixtures" / "istio-translation.yaml"
ISTIO_UNROUTED = ROOT / "tests" / "fixtures" / "manifests" / "istio-unrouted"
ORTHWEB_2023 = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-envoy-2023"
EXPIRED_FINDING = "allow_expired_certificate: true: Envoy accepts an expired client certificate"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("manifests"), "--backend", "local", "--scenario", "korthweb-istio",
                      "--manifests", str(TRAEFIK_MANIFESTS))


@pytest.fixture(scope="module")
def bootstrap_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("bootstrap"), "--backend", "local", "--manifests",
                      str(ORTHWEB_MANIFESTS))


@pytest.fixture(scope="module", params=["local", pytest.param("docker", marks=pytest.mark.skipif(
    not docker_answers(), reason="no Docker engine answers (install.sh starts one)"))])
def orthweb_2023_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp(f"orthweb-2023-{request.param}"), "--backend", request.param,
                      "--manifests", str(ORTHWEB_2023))


@pytest.fixture(scope="module")
def sites_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("sites"), "--backend", "local", "--manifests", str(TWO_SITES))


@pytest.fixture(scope="module")
def istio_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("istio"), "--backend", "local", "--scenario", str(ISTIO_TRANSLATION))


@pytest.fixture(scope="module")
def unrouted_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("unrouted"), "--backend", "local", "--manifests", str(ISTIO_UNROUTED))


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


def test_istio_named_hosts_let_dcmtk_via_stunnel_with_sni_through(run: dict[str, Any]) -> None:
    # The sidecar's fix for dcmtk 3.6.7 (no --request-sni): stunnel sends SNI, and its C-STORE arrives.
    for env in ("istio-named-simple", "istio-named-mutual"):
        via = cells(run, environment=env, client="dcmtk-stunnel", sni="right")
        assert {c["actual"] for c in via} == {"pass"}, [c["id"] for c in via]
        assert any("holds the sent dataset" in c["detail"] for c in via)
        without = cells(run, environment=env, client="dcmtk-stunnel", sni="none")
        assert {(c["actual"], c["reason"]) for c in without} == {("fail", "tls-no-matching-sni")}


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
    assert len(observed) == 24 and {c["expected"] for c in observed} == {"observe"}
    assert environment(run, TRAEFIK_ENV)["server_names"] == ["dicom.korthweb.test"]


def test_traefik_manifests_serve_the_default_certificate_to_dcmtk_without_sni(run: dict[str, Any]) -> None:
    # The route names its host, as Korthweb's chart renders it: without SNI dcmtk gets Traefik's own certificate.
    for cell in cells(run, environment=TRAEFIK_ENV, client="dcmtk", server_cert_check="verify", profile="default"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-unknown-ca"), cell["id"]
        assert any("Serving default certificate" in e for e in cell["evidence"]), cell["evidence"]
    for cell in cells(run, environment=TRAEFIK_ENV, client="pynetdicom", sni="wrong"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-unknown-ca"), cell["id"]


def test_traefik_manifests_pass_pynetdicom_with_the_right_sni(run: dict[str, Any]) -> None:
    right = [c for c in cells(run, environment=TRAEFIK_ENV, client="pynetdicom", sni="right", profile="default")
             if c["client_cert"] != "expired"]
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
    assert "/etc/ssl" not in text and "9901" not in text
    # Its HTTPS listener runs too, as the environment's web route (the dicomweb cells).
    assert [l["name"] for l in yaml.safe_load(text)["static_resources"]["listeners"]] == ["dicom_tls", "orthanc_web"]
    assert {c["actual"] for c in cells(bootstrap_run, environment=ORTHWEB_ENV, client="dicomweb")} == {"pass"}
    log = (bootstrap_run["out"] / "logs" / ORTHWEB_ENV / "envoy-bootstrap" / "output.log").read_text()
    assert "starting main dispatch loop" in log


def test_orthweb_bootstrap_lets_dcmtk_without_sni_store_with_or_without_a_valid_certificate(
        bootstrap_run: dict[str, Any]) -> None:
    for cert in ("none", "valid"):
        found = cells(bootstrap_run, environment=ORTHWEB_ENV, client="dcmtk", sni="none", client_cert=cert,
                      profile="default")
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
    assert any("static_resources.listeners[1] (orthanc_web) (0.0.0.0:443): the HTTPS listener, run as the "
               "environment's web route" in line for line in listed)
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


def test_istio_translation_runs_every_cell_as_expected_and_leaves_nothing_running(istio_run: dict[str, Any]) -> None:
    proc = istio_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert {c["verdict"] for c in istio_run["results"]["cells"]} == {"ok"}
    assert istio_run["leftovers"] == (set(), set())


def test_istio_alpn_h2_http11_chains_still_let_dcmtk_and_pynetdicom_through(istio_run: dict[str, Any]) -> None:
    [config] = (istio_run["out"] / "envs").glob("istio-iana-ciphers-*/istio-gateway/envoy.yaml")
    [chain] = yaml.safe_load(config.read_text())["static_resources"]["listeners"][0]["filter_chains"]
    assert chain["transport_socket"]["typed_config"]["common_tls_context"]["alpn_protocols"] == ["h2", "http/1.1"]
    stores = cells(istio_run, environment="istio-iana-ciphers", client="dcmtk", operation="store-ct")
    assert all(c["actual"] == "pass" and "holds the sent dataset" in c["detail"] for c in stores)
    assert {c["actual"] for c in cells(istio_run, environment="istio-iana-ciphers", client="pynetdicom",
                                       profile="default")} == {"pass"}


def test_an_iana_cipher_name_istio_drops_leaves_dcm4che_tls_aes_without_a_shared_cipher(
        istio_run: dict[str, Any]) -> None:
    refused = cells(istio_run, environment="istio-iana-ciphers", profile="dcm4che-tls-aes")
    assert {(c["actual"], c["reason"]) for c in refused} == {("fail", "tls-no-shared-cipher")}
    [finding] = environment(istio_run, "istio-iana-ciphers")["findings"]
    assert "TLS_RSA_WITH_AES_128_CBC_SHA dropped by Istio" in finding["text"]
    assert sorted(c["id"] for c in finding["cells"]) == sorted(c["id"] for c in refused)
    [config] = (istio_run["out"] / "envs").glob("istio-iana-ciphers-*/istio-gateway/envoy.yaml")
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" not in config.read_text()


def test_the_openssl_name_aes128_sha_lets_dcm4che_tls_aes_in(istio_run: dict[str, Any]) -> None:
    assert {c["actual"] for c in cells(istio_run, environment="istio-openssl-ciphers",
                                       profile="dcm4che-tls-aes")} == {"pass"}


def test_a_gateway_no_tcp_route_reaches_gets_no_listener_and_the_run_says_so_and_exits_1(
        unrouted_run: dict[str, Any]) -> None:
    proc = unrouted_run["proc"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    env = environment(unrouted_run, "istio-gateway-dicom-unrouted")
    assert env["error"].startswith("Istio builds no listener on port 11112: no VirtualService tcp route matches")
    assert "VirtualService/dicom-unrouted bind it, but no tcp route" in env["findings"][0]["text"]
    assert {(c["actual"], c["reason"]) for c in unrouted_run["results"]["cells"]} == {("fail", "environment-failed")}
    assert "Istio builds no listener on port 11112" in proc.stdout
    assert unrouted_run["leftovers"] == (set(), set())
ONE_LEVEL = ROOT / "tests" / "fixtures" / "manifests" / "cert-manager-one-level"
TWO_LEVEL = ROOT / "tests" / "fixtures" / "manifests" / "cert-manager-two-level"


@pytest.fixture(scope="module")
def two_level_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("two-level"), "--backend", "local", "--manifests", str(TWO_LEVEL))


@pytest.fixture(scope="module")
def one_level_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("one-level"), "--backend", "local", "--manifests", str(ONE_LEVEL))


def test_a_declared_two_level_chain_is_served_root_intermediate_leaf_with_the_certificates_names(
        two_level_run: dict[str, Any]) -> None:
    proc = two_level_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert two_level_run["leftovers"] == (set(), set())
    env = environment(two_level_run, "istio-gateway-pacs-gateway")
    assert env["server_names"] == ["pacs.hospital.test", "dicom.hospital.test"]
    served = [c for c in env["scan"]["chains"] if c["certificates"]]
    assert served and all(c["complete"] and c["intermediate"] == "included" for c in served)
    for chain in served:
        leaf, intermediate = chain["certificates"]
        assert (leaf["subject"], leaf["issuer"]) == ("CN=pacs.hospital.test", "CN=Imaging Intermediate CA")
        assert leaf["sans"] == ["pacs.hospital.test", "dicom.hospital.test"] and leaf["key"] == "RSA 2048"
        assert (intermediate["subject"], intermediate["issuer"]) == ("CN=Imaging Intermediate CA",
                                                                    "CN=Hospital Root CA")
        assert intermediate["is_ca"]
    root = x509.load_pem_x509_certificate(Path(env["pki_dir"], "ca.crt").read_bytes())
    assert root.subject.rfc4514_string() == root.issuer.rfc4514_string() == "CN=Hospital Root CA"
    assert isinstance(root.public_key(), rsa.RSAPublicKey) and root.public_key().key_size == 4096


def test_a_declared_leaf_lives_for_its_duration(two_level_run: dict[str, Any]) -> None:
    env = environment(two_level_run, "istio-gateway-pacs-gateway")
    leaf = x509.load_pem_x509_certificate(Path(env["pki_dir"], "server.crt").read_bytes())
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(hours=720 + 24)  # a day back


def test_dcmtk_without_sni_stores_through_the_wildcard_gateway_on_the_declared_chain(
        two_level_run: dict[str, Any]) -> None:
    for cell in cells(two_level_run, environment="istio-gateway-pacs-gateway", client="dcmtk", client_cert="none",
                      profile="default"):
        assert cell["actual"] == "pass", cell["summary"]
    store = cells(two_level_run, environment="istio-gateway-pacs-gateway", client="dcmtk", client_cert="valid",
                  operation="store-ct")
    assert [c["actual"] for c in store] == ["pass"] and "holds the sent dataset" in store[0]["detail"]
    right = cells(two_level_run, environment="istio-gateway-pacs-gateway", client="pynetdicom", sni="right",
                  profile="default")
    assert {c["actual"] for c in right} == {"pass"}


def test_korthweb_int_ca_run_reports_a_one_level_chain_as_a_finding(one_level_run: dict[str, Any]) -> None:
    proc = one_level_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    env = environment(one_level_run, "istio-gateway-dicom-gateway")
    [finding] = env["findings"]
    assert finding["text"].startswith("int-ca is a self-signed root, not an intermediate: the chain is one CA level")
    assert "int-ca is a self-signed root, not an intermediate" in proc.stdout
    served = next(c for c in env["scan"]["chains"] if c["certificates"])
    [leaf] = served["certificates"]
    assert leaf["issuer"] == "CN=int-ca" and served["intermediate"] == "not needed" and served["complete"]
    assert {c["actual"] for c in cells(one_level_run, environment="istio-gateway-dicom-gateway", client="dcmtk",
                                       client_cert="none", profile="default")} == {"pass"}
    assert any("spec.renewBefore: not reproduced" in line for line in env["unhonoured"])


def test_orthwebs_last_bootstrap_starts_and_runs_every_cell(orthweb_2023_run: dict[str, Any]) -> None:
    proc = orthweb_2023_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert orthweb_2023_run["leftovers"] == (set(), set())
    assert environment(orthweb_2023_run, ORTHWEB_ENV)["error"] is None
    ran = cells(orthweb_2023_run, environment=ORTHWEB_ENV)
    docker = orthweb_2023_run["results"]["run"]["backend"] == "docker"
    # 8 of them dicomweb cells through its HTTPS listener, the environment's web route.
    assert len(ran) == (34 if docker else 32) and "environment-failed" not in {c["reason"] for c in ran}
    assert {c["actual"] for c in cells(orthweb_2023_run, environment=ORTHWEB_ENV, sni="none", profile="default")
            if c["client_cert"] != "untrusted"} == {"pass"}
    # dcm4che's --tls-aes offer against Envoy 1.40's defaults: the regression the user hit, on their own file.
    assert {c["reason"] for c in ran if c["profile"] in ("aes", "dcm4che-tls-aes")} == {"tls-no-shared-cipher"}


def test_orthweb_accepts_an_expired_client_certificate_and_the_finding_shows_those_cells(
        orthweb_2023_run: dict[str, Any]) -> None:
    expired = cells(orthweb_2023_run, environment=ORTHWEB_ENV, client_cert="expired")
    assert {(c["client"], c["operation"], c["actual"]) for c in expired} == {
        ("dcmtk", "echo", "pass"), ("dcmtk", "store-ct", "pass"), ("pynetdicom", "echo", "pass")}
    assert all("holds the sent dataset" in c["detail"] for c in expired if c["operation"] == "store-ct")
    [finding] = [f for f in environment(orthweb_2023_run, ORTHWEB_ENV)["findings"] if EXPIRED_FINDING in f["text"]]
    assert sorted((c["id"], c["actual"]) for c in finding["cells"]) == sorted((c["id"], "pass") for c in expired)
    stdout = orthweb_2023_run["proc"].stdout
    shown = stdout[stdout.index(EXPIRED_FINDING):].splitlines()[1:1 + len(expired)]
    assert sorted(line.strip() for line in shown) == sorted(f"✔ {c['id']}" for c in expired)


def test_orthweb_health_check_runs_against_the_environments_orthanc_and_finds_it_healthy(
        orthweb_2023_run: dict[str, Any]) -> None:
    [config_file] = (orthweb_2023_run["out"] / "envs").glob(f"{ORTHWEB_ENV}-*/envoy-bootstrap/envoy.yaml")
    config = yaml.safe_load(config_file.read_text())
    [cluster] = [c for c in config["static_resources"]["clusters"] if c["name"] != "dicomtls-web"]
    assert cluster["lb_policy"] == "RING_HASH" and cluster["type"] == "STRICT_DNS"
    assert config["layered_runtime"]["layers"][0]["static_layer"]["overload"] == {
        "global_downstream_max_connections": 5000}
    [check] = cluster["health_checks"]
    assert check["event_log_path"].endswith("/bootstrap-healthcheck_dcmtcp.log")
    events = [json.loads(line) for line in
              (config_file.parent / "bootstrap-healthcheck_dcmtcp.log").read_text().splitlines()]
    assert events and all("health_check_failure_event" not in e and "eject_unhealthy_event" not in e
                          for e in events), events
    assert any("add_healthy_event" in e for e in events)
    assert any("healthcheck_dcmtcp.log rewritten to the environment's directory" in line
               for line in environment(orthweb_2023_run, ORTHWEB_ENV)["unhonoured"])


def test_a_bootstrap_envoy_refuses_exits_1_with_envoys_own_line_in_the_evidence(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    text = (ORTHWEB_2023 / "envoy.yaml").read_text()
    assert "    lb_policy: RING_HASH\n" in text
    (manifests / "envoy.yaml").write_text(text.replace("    lb_policy: RING_HASH\n", "    lb_polcy: RING_HASH\n"))
    run = matrix_run(tmp_path, "--backend", "local", "--manifests", str(manifests))
    proc = run["proc"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert run["leftovers"] == (set(), set())
    assert "lb_polcy" in environment(run, ORTHWEB_ENV)["error"]
    for cell in cells(run, environment=ORTHWEB_ENV):
        assert cell["reason"] == "environment-failed", cell["id"]
        # Envoy's protobuf parser says "no such field: 'lb_polcy'"; it pads its words with random spaces.
        assert any("no such field: 'lb_polcy'" in " ".join(line.split()) for line in cell["evidence"]), cell["evidence"]
