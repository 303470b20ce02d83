"""Istio and Traefik manifests read into component options, and the Envoy config the Istio twin renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dicomtls.backends import backend_class
from dicomtls.components import Address, component_class
from dicomtls.errors import UsageError
from dicomtls.manifests import FALLBACK_SERVER_NAME, manifest_files, read_manifests, server_names, translate
from dicomtls.scenario import load_scenario, manifest_scenario

ROOT = Path(__file__).resolve().parents[2]
ISTIO = ROOT / "scenarios" / "manifests" / "korthweb-istio"
TRAEFIK = ROOT / "tests" / "fixtures" / "manifests" / "korthweb-traefik"

GATEWAY = """\
apiVersion: networking.istio.io/{version}
kind: Gateway
metadata: {{name: gw}}
spec:
  servers:
  - port: {{number: 11112, protocol: TLS}}
    hosts: {hosts}
    tls: {{mode: {mode}, credentialName: dicom-tls}}
"""
TCP_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: ["*"]
  gateways: [gw]
  tcp:
  - route: [{destination: {host: orthanc, port: {number: 4242}}}]
"""
PASSTHROUGH_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  gateways: [gw]
  tls:
  - match: [{port: 11112, sniHosts: [dicom.korthweb.test]}]
    route: [{destination: {host: orthanc, port: {number: 4242}}}]
"""


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def translated(tmp_path: Path, text: str) -> list:
    return translate(read_manifests([write(tmp_path, text)]))


def routed(gateway: str) -> str:
    """A Gateway with a VirtualService tcp route taking all its servers: without one, Istio builds no chain."""
    return gateway + "---\n" + TCP_VS


@pytest.mark.parametrize("version", ["v1beta1", "v1"])
def test_istio_gateway_reads_both_api_versions(tmp_path: Path, version: str) -> None:
    [t] = translated(tmp_path, routed(GATEWAY.format(version=version, hosts='["*"]', mode="SIMPLE")))
    assert t.proxy == {"kind": "istio-gateway", "servers": [{"hosts": ["*"], "mode": "SIMPLE"}], "port": 11112}
    assert t.server == {"kind": "orthanc", "tls": False}


def test_wildcard_hosts_give_no_pki_name_so_a_stand_in_is_used(tmp_path: Path) -> None:
    found = translated(tmp_path, GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE"))
    assert server_names(found) == [FALLBACK_SERVER_NAME]


def test_named_hosts_drop_their_namespace_and_name_the_pki(tmp_path: Path) -> None:
    [t] = translated(tmp_path, routed(GATEWAY.format(version="v1", hosts="[orthanc/dicom.korthweb.test]",
                                                     mode="MUTUAL")))
    assert t.proxy["servers"] == [{"hosts": ["dicom.korthweb.test"], "mode": "MUTUAL"}]
    assert t.server_names == ("dicom.korthweb.test",)


def test_passthrough_routes_by_the_virtual_service_sni_hosts_to_an_orthanc_with_tls(tmp_path: Path) -> None:
    text = GATEWAY.format(version="v1", hosts='["*"]', mode="PASSTHROUGH") + "---\n" + PASSTHROUGH_VS
    [t] = translated(tmp_path, text)
    assert t.proxy["servers"] == [{"hosts": ["*"], "mode": "PASSTHROUGH", "sni_hosts": ["dicom.korthweb.test"]}]
    assert t.server["tls"] is True


def test_passthrough_without_a_virtual_service_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="PASSTHROUGH needs a VirtualService"):
        translated(tmp_path, GATEWAY.format(version="v1", hosts='["*"]', mode="PASSTHROUGH"))


def test_fields_the_twin_cannot_reproduce_are_listed_not_dropped(tmp_path: Path) -> None:
    text = GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE").replace(
        "credentialName: dicom-tls}", "credentialName: dicom-tls, subjectAltNames: [a], futureField: 1}")
    text += "    bind: 10.0.0.1\n---\napiVersion: v1\nkind: Service\nmetadata: {name: orthanc}\n"
    [t] = translated(tmp_path, text)
    listed = "\n".join(t.unhonoured)
    assert "spec.servers[0].tls.subjectAltNames: not reproduced" in listed
    assert "spec.servers[0].tls.futureField: not understood" in listed
    assert "spec.servers[0].bind: not reproduced" in listed
    assert "v1 Service is not read" in listed


def test_invalid_manifest_names_file_and_field(tmp_path: Path) -> None:
    text = GATEWAY.format(version="v1", hosts='["*"]', mode="SOMETIMES")
    with pytest.raises(UsageError, match=r"m\.yaml \(document 1, Gateway gw\): spec\.servers\.0\.tls\.mode"):
        translated(tmp_path, text)


def test_a_document_without_kind_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"m\.yaml \(document 2\): not a Kubernetes resource"):
        read_manifests([write(tmp_path, GATEWAY.format(version="v1", hosts="['*']", mode="SIMPLE") + "---\n[1]\n")])


def test_korthweb_traefik_manifests_make_a_named_hostsni_without_sni_strict_or_client_certs() -> None:
    found = translate(read_manifests(sorted(TRAEFIK.glob("*.yaml"))))
    [t] = found
    assert t.proxy == {"kind": "traefik", "sni": "named", "sni_strict": False, "min_version": "1.2",
                       "client_cert": "none"}
    assert server_names(found) == ["dicom.korthweb.test"]
    assert any("TLSOption orthanc-dicom-tlsoption): spec.maxVersion: not reproduced" in line for line in t.unhonoured)


@pytest.mark.parametrize("group", ["traefik.io", "traefik.containo.us"])
def test_traefik_named_hostsni_strict_required_client_cert_in_both_api_groups(tmp_path: Path, group: str) -> None:
    text = f"""\
apiVersion: {group}/v1alpha1
kind: IngressRouteTCP
metadata: {{name: r}}
spec:
  routes: [{{match: "HostSNI(`a.test`) || HostSNI(`b.test`)", services: [{{name: orthanc, port: 4242}}]}}]
  tls: {{secretName: s, options: {{name: strict}}}}
---
apiVersion: {group}/v1alpha1
kind: TLSOption
metadata: {{name: strict}}
spec: {{sniStrict: true, minVersion: VersionTLS13, clientAuth: {{clientAuthType: RequireAndVerifyClientCert}}}}
"""
    [t] = translated(tmp_path, text)
    assert t.proxy == {"kind": "traefik", "sni": "named", "sni_strict": True, "min_version": "1.3",
                       "client_cert": "required"}
    assert t.server_names == ("a.test", "b.test")


def test_traefik_passthrough_needs_orthanc_to_terminate_tls(tmp_path: Path) -> None:
    text = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: r}
spec:
  routes: [{match: "HostSNI(`*`)"}]
  tls: {passthrough: true}
"""
    [t] = translated(tmp_path, text)
    assert t.proxy["passthrough"] is True and t.server["tls"] is True


def test_traefik_route_naming_a_missing_tls_option_is_an_error(tmp_path: Path) -> None:
    text = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: r}
spec:
  routes: [{match: "HostSNI(`*`)"}]
  tls: {options: {name: nowhere}}
"""
    with pytest.raises(UsageError, match="spec.tls.options.name 'nowhere'"):
        translated(tmp_path, text)


def test_manifest_directory_becomes_an_observed_scenario() -> None:
    scenario = manifest_scenario(TRAEFIK)
    assert [e.name for e in scenario.environments] == ["traefik-orthanc-dicom"]
    cells = scenario.cells()
    assert len(cells) == 24 and {c.expected for c in cells} == {"observe"}


def test_manifest_runs_try_the_commands_the_configs_owners_document() -> None:
    probes = {c.probe for c in manifest_scenario(TRAEFIK).cells()}
    wanted = {("dcmtk", "none", "none", "ignore", "default"), ("dcmtk", "none", "expired", "verify", "default"),
              ("pynetdicom", "right", "expired", "verify", "default"), ("dcmtk", "none", "none", "verify", "aes"),
              ("pynetdicom", "right", "none", "verify", "dcm4che-tls-aes")}
    assert wanted <= {(p.client, p.sni, p.client_cert, p.server_cert_check, p.profile) for p in probes}
    assert {p.client_version for p in probes} == {"default"}


@pytest.mark.parametrize("backend, newer", [("docker", {("right", "none"), ("right", "valid")}), ("local", set())])
def test_only_a_backend_that_brings_its_clients_tries_dcmtk_3_6_9_with_sni(
        backend: str, newer: set[tuple[str, str]]) -> None:
    probes = {c.probe for c in manifest_scenario(TRAEFIK, backend_class(backend).brings_clients).cells()}
    assert {(p.sni, p.client_cert) for p in probes if p.client_version == "3.6.9"} == newer


def test_scenario_environment_reads_its_manifests_relative_to_the_scenario_file() -> None:
    scenario = load_scenario("korthweb-istio")
    env = scenario.environment("istio-named-mutual")
    assert env.proxy is not None and env.proxy.kind == "istio-gateway"
    assert env.proxy.options["servers"] == [{"hosts": ["dicom.korthweb.test"], "mode": "MUTUAL"}]
    wildcard = scenario.environment("istio-wildcard-simple")
    assert any("protocol HTTPS: not reproduced" in line for line in wildcard.unhonoured)


def test_environment_with_manifests_and_a_proxy_is_an_error(tmp_path: Path) -> None:
    text = (ROOT / "scenarios" / "korthweb-istio.yaml").read_text().replace(
        "manifests: [manifests/korthweb-istio/named-simple.yaml]",
        "manifests: [manifests/korthweb-istio/named-simple.yaml]\n    proxy: envoy")
    path = tmp_path / "s.yaml"
    path.write_text(text.replace("manifests/korthweb-istio/", str(ISTIO) + "/"))
    with pytest.raises(UsageError, match="drop proxy"):
        load_scenario(str(path))


# --- rendering ------------------------------------------------------------------------------------------------

PKI_DIR = Path("/srv/dicomtls/pki/0123abcd")


def render_gateway(servers: list[dict], **options: Any) -> dict:
    from tests.unit import placements

    placement = placements.placement("/w", {"dicom": Address("127.0.0.1", 41104)}, ("dicom.korthweb.test",))
    cls = component_class("istio-gateway")
    launch = cls(cls.options_model.model_validate({"servers": servers, **options})).launch(placement,
                                                                                           "/usr/bin/envoy")
    assert launch.connection_log == "access.log"
    return yaml.safe_load(launch.files["envoy.yaml"])["static_resources"]["listeners"][0]


def test_gateway_renders_tls_inspector_and_one_chain_per_server_without_a_default() -> None:
    listener = render_gateway([{"hosts": ["*"], "mode": "SIMPLE"},
                               {"hosts": ["dicom.korthweb.test"], "mode": "MUTUAL"}])
    assert listener["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    assert "default_filter_chain" not in listener
    wildcard, named = listener["filter_chains"]
    assert "filter_chain_match" not in wildcard
    assert named["filter_chain_match"] == {"server_names": ["dicom.korthweb.test"]}
    simple = wildcard["transport_socket"]["typed_config"]
    mutual = named["transport_socket"]["typed_config"]
    assert simple["require_client_certificate"] is False and "validation_context" not in simple["common_tls_context"]
    assert mutual["require_client_certificate"] is True
    assert mutual["common_tls_context"]["validation_context"]["trusted_ca"]["filename"].endswith("ca-bundle.crt")
    assert listener["access_log"][0]["typed_config"]["path"] == "/w/access.log"


def test_passthrough_chain_has_no_tls_context_and_matches_the_sni_hosts() -> None:
    listener = render_gateway([{"hosts": ["*"], "mode": "PASSTHROUGH", "sni_hosts": ["dicom.korthweb.test"]}])
    [chain] = listener["filter_chains"]
    assert "transport_socket" not in chain
    assert chain["filter_chain_match"]["server_names"] == ["dicom.korthweb.test"]
    assert chain["filters"][0]["name"] == "envoy.filters.network.tcp_proxy"


def test_protocol_versions_become_envoy_tls_params() -> None:
    listener = render_gateway([{"hosts": ["*"], "min_protocol_version": "TLSV1_3"}])
    params = listener["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"]["tls_params"]
    assert params == {"tls_minimum_protocol_version": "TLSv1_3"}


def test_two_servers_with_the_same_hosts_are_rejected_as_envoy_would() -> None:
    cls = component_class("istio-gateway")
    with pytest.raises(ValidationError, match="same SNI as servers\\[0\\]"):
        cls.options_model.model_validate({"servers": [{"hosts": ["*"]}, {"hosts": ["*"], "mode": "MUTUAL"}]})


def test_gateway_servers_route_to_the_site_their_hosts_name_and_wildcards_to_the_first() -> None:
    from tests.unit import placements

    sites = (("north", ("north.dicom.test",)), ("south", ("south.dicom.test",)))
    placement = placements.placement("/w", {"dicom": Address("127.0.0.1", 41104)}, ("dicom.korthweb.test",), sites)
    cls = component_class("istio-gateway")
    servers = [{"hosts": ["south.dicom.test"], "mode": "SIMPLE"}, {"hosts": ["*"], "mode": "MUTUAL"}]
    launch = cls(cls.options_model.model_validate({"servers": servers})).launch(placement, "/usr/bin/envoy")
    config = yaml.safe_load(launch.files["envoy.yaml"])["static_resources"]
    south, wildcard = config["listeners"][0]["filter_chains"]
    assert south["filters"][0]["typed_config"]["cluster"] == "south"
    assert wildcard["filters"][0]["typed_config"]["cluster"] == "north"
    files = placements.pki_layout(("dicom.korthweb.test",), sites)
    served = south["transport_socket"]["typed_config"]["common_tls_context"]["tls_certificates"][0]
    assert served["certificate_chain"]["filename"] == str(files.site("south").fullchain)
    assert [c["name"] for c in config["clusters"]] == ["north", "south"]


def test_a_gateway_server_with_another_destination_keeps_its_own_certificate() -> None:
    from tests.unit import placements

    sites = (("north", ("north.dicom.test",)), ("south", ("south.dicom.test",)))
    placement = placements.placement("/w", {"dicom": Address("127.0.0.1", 41104)}, ("dicom.korthweb.test",), sites)
    cls = component_class("istio-gateway")
    servers = [{"hosts": ["south.dicom.test"], "mode": "SIMPLE", "destination": "north"}]
    component = cls(cls.options_model.model_validate({"servers": servers}))
    assert component.sites_problem(("north", "south")) is None
    assert "does not have" in (component.sites_problem(("east", "west")) or "")
    (chain,) = yaml.safe_load(component.launch(placement, "/usr/bin/envoy").files["envoy.yaml"])[
        "static_resources"]["listeners"][0]["filter_chains"]
    files = placements.pki_layout(("dicom.korthweb.test",), sites)
    served = chain["transport_socket"]["typed_config"]["common_tls_context"]["tls_certificates"][0]
    assert served["certificate_chain"]["filename"] == str(files.site("south").fullchain)
    assert chain["filters"][0]["typed_config"]["cluster"] == "north"


TWO_SITES = ROOT / "tests" / "fixtures" / "manifests" / "two-sites"


def _by_resource(directory: Path) -> dict[str, Any]:
    return {t.resource: t for t in translate(read_manifests(sorted(directory.glob("*.yaml"))))}


def test_gateway_servers_routed_to_two_services_become_two_sites() -> None:
    t = _by_resource(TWO_SITES)["Gateway/dicom-sites"]
    assert t.sites == (("orthanc-north", ("north.dicom.test",)), ("orthanc-south", ("south.dicom.test",)))
    assert [s["destination"] for s in t.proxy["servers"]] == ["orthanc-north", "orthanc-south"]
    assert not [n for n in t.unhonoured if "destination" in n]


def test_passthrough_tls_routes_become_one_chain_and_one_site_each() -> None:
    t = _by_resource(TWO_SITES)["Gateway/dicom-sites-passthrough"]
    assert [(s["sni_hosts"], s["destination"]) for s in t.proxy["servers"]] == [
        (["north.dicom.test"], "orthanc-north"), (["south.dicom.test"], "orthanc-south")]
    assert t.server["tls"] is True


def test_a_virtual_service_copied_from_another_host_sends_both_names_to_one_site(tmp_path: Path) -> None:
    copied = (TWO_SITES / "istio-simple.yaml").read_text().replace(
        "host: orthanc-south.dicom.svc.cluster.local", "host: orthanc-north.dicom.svc.cluster.local")
    [t] = translated(tmp_path, copied)
    assert t.sites == ()  # one destination: one Orthanc behind both names, as in the cluster
    assert t.server_names == ("north.dicom.test", "south.dicom.test")


def test_a_split_route_goes_to_its_first_destination_and_says_so(tmp_path: Path) -> None:
    split = (TWO_SITES / "istio-simple.yaml").read_text().replace(
        "    - destination: { host: orthanc-south.dicom.svc.cluster.local, port: { number: 4242 } }",
        "    - destination: { host: orthanc-south.dicom.svc.cluster.local }\n      weight: 90\n"
        "    - destination: { host: orthanc-west.dicom.svc.cluster.local }\n      weight: 10")
    [t] = translated(tmp_path, split)
    assert [name for name, _ in t.sites] == ["orthanc-north", "orthanc-south"]
    assert any("split over 2 destinations" in n and "orthanc-south" in n for n in t.unhonoured)


def test_a_site_reached_only_through_a_wildcard_host_is_named_by_its_destination(tmp_path: Path) -> None:
    gateway, north, south = (TWO_SITES / "istio-simple.yaml").read_text().split("---\n")
    gateway = gateway.replace("hosts: [south.dicom.test]", 'hosts: ["*"]')
    # Istio gives a "*" server the first VirtualService whose hosts meet it: south's, listed first.
    [t] = translated(tmp_path, "---\n".join([gateway, south, north]))
    # The "*" server's site comes first: its certificate is the one a client without SNI is served.
    assert t.sites == (("orthanc-south", ("orthanc-south.dicom.svc.cluster.local",)),
                       ("orthanc-north", ("north.dicom.test",)))


def test_traefik_routes_to_two_services_become_two_sites_the_catch_all_one_first() -> None:
    t = _by_resource(TWO_SITES)["IngressRouteTCP/dicom-sites"]
    assert t.proxy["sni"] == "any"
    assert t.sites == (("orthanc-south", ("south.dicom.test",)), ("orthanc-north", ("north.dicom.test",)))


def test_manifest_scenario_asks_for_each_site_by_name() -> None:
    scenario = manifest_scenario(TWO_SITES)
    env = next(e for e in scenario.environments if e.name == "istio-gateway-dicom-sites")
    assert env.site_names() == ["orthanc-north", "orthanc-south"]
    asked = {(c.probe.sni, c.probe.operation) for c in scenario.cells() if c.environment == env.name
             and c.probe.sni.startswith("orthanc-")}
    assert asked == {(site, op) for site in env.site_names() for op in ("echo", "store-ct")}


def test_a_service_two_gateways_reach_by_different_names_becomes_two_sites(tmp_path: Path) -> None:
    simple = (TWO_SITES / "istio-simple.yaml").read_text()
    prod = simple.replace("dicom-sites", "dicom-prod").replace("north.dicom.test", "north.prod.test")
    (tmp_path / "dev.yaml").write_text(simple)
    (tmp_path / "prod.yaml").write_text(prod)
    dev_t, prod_t = translate(read_manifests(sorted(tmp_path.glob("*.yaml"))))
    assert dev_t.sites == (("orthanc-north", ("north.dicom.test",)), ("orthanc-south", ("south.dicom.test",)))
    assert prod_t.sites == (("orthanc-north-2", ("north.prod.test",)), ("orthanc-south", ("south.dicom.test",)))
    assert [s["destination"] for s in prod_t.proxy["servers"]] == ["orthanc-north-2", "orthanc-south"]
    scenario = manifest_scenario(tmp_path)
    assert dict(scenario.pki_spec().sites) == {"orthanc-north": ("north.dicom.test",),
                                               "orthanc-north-2": ("north.prod.test",),
                                               "orthanc-south": ("south.dicom.test",)}


def test_envoy_bootstrap_chains_routing_to_two_clusters_become_two_sites_the_default_one_first() -> None:
    t = _by_resource(TWO_SITES)["EnvoyBootstrap/envoy"]
    assert t.sites == (("orthanc-south", ("south.dicom.test",)), ("orthanc-north", ("north.dicom.test",)))
    assert t.server_names == ("north.dicom.test", "south.dicom.test")


# --- the Istio twin as istiod 1.15-1.20 translates a TLS server ---------------------------------------------------

TWO_SERVERS = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: dicom}
spec:
  servers:
  - port: {number: 11112, protocol: TLS}
    hosts: [north.dicom.test]
    tls: {mode: SIMPLE, credentialName: north}
  - port: {number: 11112, protocol: TLS}
    hosts: [south.dicom.test]
    tls: {mode: SIMPLE, credentialName: south}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: north, namespace: dicom}
spec:
  hosts: [north.dicom.test]
  gateways: [gw]
  tcp:
  - match: [{port: 11112}]
    route: [{destination: {host: orthanc, port: {number: 4242}}}]
"""


def said(lines: Any) -> list[str]:
    """Lines from a translation, from the file name on (the tmp directory is not under the working directory)."""
    return [line[line.index("m.yaml"):] for line in (getattr(x, "text", x) for x in lines)]


def with_tls(tmp_path: Path, tls: str, mode: str = "SIMPLE") -> Any:
    text = GATEWAY.format(version="v1", hosts='["*"]', mode=mode).replace("credentialName: dicom-tls}",
                                                                          f"credentialName: dicom-tls, {tls}}}")
    [t] = translated(tmp_path, routed(text))
    return t


def test_iana_cipher_names_are_dropped_as_istio_drops_them_and_the_finding_names_the_dcm4che_probe(
        tmp_path: Path) -> None:
    t = with_tls(tmp_path, "cipherSuites: [TLS_RSA_WITH_AES_128_CBC_SHA]")
    [finding] = t.findings
    assert finding.text.endswith("tls.cipherSuites TLS_RSA_WITH_AES_128_CBC_SHA dropped by Istio: not an OpenSSL "
                                 "name it accepts; Envoy's defaults apply")
    assert finding.proof == (("profile", "dcm4che-tls-aes"),)
    [chain] = render_gateway(t.proxy["servers"])["filter_chains"]
    assert "tls_params" not in chain["transport_socket"]["typed_config"]["common_tls_context"]


def test_openssl_cipher_names_reach_envoy_once_each_in_their_order(tmp_path: Path) -> None:
    t = with_tls(tmp_path, "cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256, AES128-SHA, TLS_AES_128_GCM_SHA256, "
                           "AES128-SHA]")
    [finding] = t.findings
    assert "TLS_AES_128_GCM_SHA256 dropped by Istio" in finding.text
    assert finding.text.endswith("Envoy gets only ECDHE-RSA-AES128-GCM-SHA256, AES128-SHA")
    assert finding.proof == ()  # no dcm4che name among the dropped: no probe shows it
    [chain] = render_gateway(t.proxy["servers"])["filter_chains"]
    params = chain["transport_socket"]["typed_config"]["common_tls_context"]["tls_params"]
    assert params == {"cipher_suites": ["ECDHE-RSA-AES128-GCM-SHA256", "AES128-SHA"]}


def test_terminated_chains_offer_h2_and_http11_alpn_and_passthrough_chains_none() -> None:
    listener = render_gateway([{"hosts": ["*"], "mode": "SIMPLE"},
                               {"hosts": ["a.test"], "mode": "MUTUAL"},
                               {"hosts": ["b.test"], "mode": "OPTIONAL_MUTUAL"}])
    for chain in listener["filter_chains"]:
        assert chain["transport_socket"]["typed_config"]["common_tls_context"]["alpn_protocols"] == ["h2", "http/1.1"]
    [passthrough] = render_gateway([{"hosts": ["*"], "mode": "PASSTHROUGH", "sni_hosts": ["a.test"]}])["filter_chains"]
    assert "transport_socket" not in passthrough


def test_optional_mutual_asks_for_a_client_certificate_without_requiring_one_and_is_said_to_need_istio_1_19(
        tmp_path: Path) -> None:
    t = with_tls(tmp_path, "minProtocolVersion: TLSV1_2", mode="OPTIONAL_MUTUAL")
    assert said(t.findings) == [
        "m.yaml (document 1, Gateway gw): spec.servers[0].tls.mode OPTIONAL_MUTUAL: Istio has it only from 1.19 (a "
        "client certificate is checked when sent, not required); Istio 1.15-1.18 refuse it"]
    [chain] = render_gateway(t.proxy["servers"])["filter_chains"]
    context = chain["transport_socket"]["typed_config"]
    assert context["require_client_certificate"] is False and "validation_context" in context["common_tls_context"]


def test_a_tls_server_without_a_tls_block_is_an_error_naming_the_field(tmp_path: Path) -> None:
    text = GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE").replace(
        "    tls: {mode: SIMPLE, credentialName: dicom-tls}\n", "")
    with pytest.raises(UsageError, match=r"m\.yaml \(document 1, Gateway gw\): spec\.servers\[0\]\.tls: missing: "
                                         r"a TLS server needs tls .*istiod rejects"):
        translated(tmp_path, routed(text))


def test_a_server_no_tcp_route_matches_gets_no_filter_chain_and_the_routed_one_keeps_its_own(tmp_path: Path) -> None:
    [t] = translated(tmp_path, TWO_SERVERS)
    north, south = t.proxy["servers"]
    assert "routed" not in north and south["routed"] is False
    assert said(t.findings) == [
        "m.yaml (document 1, Gateway gw): hosts south.dicom.test: no VirtualService tcp route matches them on port "
        "11112, so Istio builds no filter chain for them: a client asking for them is closed without a TLS alert"]
    [chain] = render_gateway(t.proxy["servers"])["filter_chains"]
    assert chain["name"] == "server-0" and chain["filter_chain_match"] == {"server_names": ["north.dicom.test"]}


@pytest.mark.parametrize("match", ["[{port: 443}]", "[{gateways: [dicom/other]}]"])
def test_a_tcp_route_whose_match_takes_another_port_or_gateway_routes_nothing(tmp_path: Path, match: str) -> None:
    [t] = translated(tmp_path, TWO_SERVERS.replace("[{port: 11112}]", match))
    assert [s.get("routed") for s in t.proxy["servers"]] == [False, False]


def test_a_gateway_no_tcp_route_reaches_has_no_listener_and_its_environment_says_why(tmp_path: Path) -> None:
    from dicomtls.backends import EnvironmentFailed

    [t] = translated(tmp_path, TWO_SERVERS.split("---\n")[0])
    assert said(t.findings) == [
        "m.yaml (document 1, Gateway gw): Istio builds no listener on port 11112: no VirtualService binds gateway gw"]
    with pytest.raises(EnvironmentFailed, match=r"^Istio builds no listener on port 11112: no VirtualService tcp "
                                                r"route matches its servers"):
        render_gateway(t.proxy["servers"], port=t.proxy["port"])
    [bound] = translated(tmp_path, TWO_SERVERS.replace("hosts: [north.dicom.test]\n  gateways",
                                                       "hosts: [east.dicom.test]\n  gateways"))
    assert bound.findings[0].text.endswith("VirtualService/north bind it, but no tcp route of theirs matches its "
                                           "servers' hosts on port 11112")


def test_a_later_server_repeating_an_earlier_host_on_the_port_is_skipped_and_listed(tmp_path: Path) -> None:
    text = TWO_SERVERS.replace("hosts: [south.dicom.test]", "hosts: [./north.dicom.test, south.dicom.test]")
    text = text.replace("hosts: [north.dicom.test]\n    tls", "hosts: [dicom/north.dicom.test]\n    tls")
    [t] = translated(tmp_path, text)
    assert [s["hosts"] for s in t.proxy["servers"]] == [["north.dicom.test"]]
    assert ("m.yaml (document 1, Gateway gw): spec.servers[1]: hosts north.dicom.test already on port 11112 in an "
            "earlier server: skipped, as Istio skips it") in said(t.unhonoured)


def test_a_bare_host_and_a_namespaced_one_are_different_hosts_to_istio(tmp_path: Path) -> None:
    # istiod compares "*/north" with "dicom/north": no duplicate; both chains then match the same SNI, which
    # Envoy refuses, so the twin says so before running it.
    text = TWO_SERVERS.replace("hosts: [south.dicom.test]", "hosts: [dicom/north.dicom.test]")
    text = text.replace("hosts: [north.dicom.test]\n  gateways", 'hosts: ["*"]\n  gateways')
    [t] = translated(tmp_path, text)
    assert [s["hosts"] for s in t.proxy["servers"]] == [["north.dicom.test"], ["north.dicom.test"]]
    options = {k: v for k, v in t.proxy.items() if k != "kind"}
    with pytest.raises(ValidationError, match="same SNI as servers\\[0\\]"):
        component_class("istio-gateway").options_model.model_validate(options)


def test_named_hosts_become_sorted_deduplicated_server_names_without_their_namespace() -> None:
    [chain] = render_gateway([{"hosts": ["b.test", "ns/a.test", "a.test"]}])["filter_chains"]
    assert chain["filter_chain_match"] == {"server_names": ["a.test", "b.test"]}


GITOPS = ROOT / "tests" / "fixtures" / "manifests" / "korthweb-gitops"
MANUAL = ROOT / "tests" / "fixtures" / "manifests" / "korthweb-manual" / "orthweb.yaml"
TLSSTORE = ROOT / "tests" / "fixtures" / "manifests" / "korthweb-traefik-tlsstore"
WEB_GATEWAY = """\
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: web}
spec:
  servers:
  - port: {number: 443, protocol: HTTPS}
    hosts: [web.korthweb.test]
    tls: {mode: SIMPLE, credentialName: web-tls}
"""
ROUTE = """\
apiVersion: {group}/v1alpha1
kind: IngressRouteTCP
metadata: {{name: dicom}}
spec:
  routes: [{{match: "HostSNI(`*`)", services: [{{name: orthanc, port: 4242}}]}}]
  tls: {{secretName: dicom-tls}}
"""
STORE = """\
apiVersion: {group}/v1alpha1
kind: TLSStore
metadata: {{name: {name}}}
spec:
  defaultCertificate: {{secretName: {secret}}}
"""


def test_a_directory_is_read_recursively_skipping_hidden_directories(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    write(tmp_path / "a" / "b", GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE"), "gw.yml")
    write(tmp_path / ".git", "not: [valid", "broken.yaml")
    write(tmp_path, "notes", "README.md")
    assert manifest_files(tmp_path) == [tmp_path / "a" / "b" / "gw.yml"]


def test_a_single_file_is_read_as_it_is() -> None:
    [t] = translate(read_manifests(manifest_files(MANUAL)))
    assert t.resource == "Gateway/orthweb-dicom-gateway"


def test_a_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file or directory"):
        manifest_files(tmp_path / "nowhere")


def test_korthweb_gitops_tree_runs_its_dicom_gateway_and_lists_everything_else() -> None:
    [t] = translate(read_manifests(manifest_files(GITOPS)))
    assert t.resource == "Gateway/dicom-gateway"
    assert t.proxy == {"kind": "istio-gateway", "servers": [{"hosts": ["*"], "mode": "SIMPLE"}], "port": 11112}
    listed = "\n".join(t.unhonoured)
    for kind in ("Deployment orthweb", "Service orthweb", "ConfigMap orthanc-config", "Secret postgres-auth",
                 "AuthorizationPolicy orthweb-from-ingress", "PeerAuthentication default",
                 "HorizontalPodAutoscaler orthweb", "Namespace orthweb"):
        assert f"{kind}): " in listed, kind
    assert "base/kustomization.yaml (document 1): kustomize.config.k8s.io/v1beta1 Kustomization is not read" in listed
    assert "overlays/dev/kustomization.yaml (document 1): a Kustomization is not read" in listed
    assert "Gateway web-gateway): no server with port.protocol TLS (HTTPS only), so it carries no DICOM" in listed
    assert "VirtualService web-vs): bound only to web-gateway, which carries no TLS: not read" in listed


def test_a_gateway_without_a_tls_server_next_to_a_dicom_one_becomes_no_environment(tmp_path: Path) -> None:
    text = WEB_GATEWAY + "---\n" + GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE")
    assert [t.resource for t in translated(tmp_path, text)] == ["Gateway/gw"]


def test_a_tree_where_nothing_carries_dicom_over_tls_is_an_error_saying_what_it_holds(tmp_path: Path) -> None:
    text = WEB_GATEWAY + "---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n" \
        "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n---\napiVersion: apps/v1\nkind: Deployment\n" \
        "metadata: {name: a}\n"
    with pytest.raises(UsageError, match=r"^manifests: 4 documents \(Service ×2, Deployment, Gateway web without a "
                                         r"TLS server\): none carries DICOM over TLS"):
        translated(tmp_path, text)


def test_choosing_a_gateway_without_a_tls_server_is_an_error(tmp_path: Path) -> None:
    text = WEB_GATEWAY + "---\n" + GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE")
    with pytest.raises(UsageError, match="no Gateway/web that carries DICOM over TLS"):
        translate(read_manifests([write(tmp_path, text)]), "Gateway/web")


def test_a_go_template_in_a_proxy_resource_is_refused_with_the_helm_template_command(tmp_path: Path) -> None:
    text = GATEWAY.format(version="v1", hosts='["{{ .Values.host }}"]', mode="SIMPLE")
    with pytest.raises(UsageError, match=r"m\.yaml \(document 1, Gateway gw\): a Go template \(\{\{ … \}\}\), not a "
                                         r"manifest: render the chart first with `helm template"):
        read_manifests([write(tmp_path, text)])


def test_a_go_template_that_is_not_yaml_is_refused_naming_its_line(tmp_path: Path) -> None:
    text = "{{- if .Values.istio.enabled }}\n" + GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE") + \
        "{{- end }}\n"
    with pytest.raises(UsageError, match=r"m\.yaml line 1: a Go template .*`helm template"):
        read_manifests([write(tmp_path, text)])


def test_a_helm_chart_is_taken_whole_to_be_rendered_beside_the_trees_other_files(tmp_path: Path) -> None:
    (tmp_path / "chart" / "templates").mkdir(parents=True)
    write(tmp_path / "chart", "apiVersion: v2\nname: orthweb\nversion: 0.1.0\n", "Chart.yaml")
    write(tmp_path / "chart" / "templates", "{{- if .Values.istio }}\nkind: Gateway\n{{- end }}\n", "gw.yaml")
    other = write(tmp_path, GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE"))
    assert manifest_files(tmp_path) == [tmp_path / "chart", other]


def test_a_config_maps_own_templates_are_not_taken_for_a_helm_chart(tmp_path: Path) -> None:
    text = GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE") + "---\napiVersion: v1\nkind: ConfigMap\n" \
        "metadata: {name: alerts}\ndata:\n  slack.tmpl: |\n    {{ define \"title\" }}{{ .Labels.instance }}{{ end }}\n"
    assert [t.resource for t in translated(tmp_path, text)] == ["Gateway/gw"]


@pytest.mark.parametrize("group", ["traefik.io", "traefik.containo.us"])
def test_the_default_tls_store_serves_the_server_certificate_to_clients_without_sni(tmp_path: Path,
                                                                                     group: str) -> None:
    text = ROUTE.format(group=group) + "---\n" + STORE.format(group=group, name="default", secret="dicom-tls")
    [t] = translated(tmp_path, text)
    assert t.proxy["default_certificate"] is True


def test_a_tls_store_naming_another_secret_still_serves_the_generated_certificate_and_says_so(tmp_path: Path) -> None:
    text = ROUTE.format(group="traefik.io") + "---\n" + STORE.format(group="traefik.io", name="default",
                                                                     secret="wildcard")
    [t] = translated(tmp_path, text)
    assert t.proxy["default_certificate"] is True
    assert any("defaultCertificate.secretName wildcard: served as the generated server certificate" in line
               for line in t.unhonoured)


def test_a_tls_store_not_named_default_is_not_applied_as_traefik_ignores_it(tmp_path: Path) -> None:
    text = ROUTE.format(group="traefik.io") + "---\n" + STORE.format(group="traefik.io", name="extra",
                                                                     secret="dicom-tls")
    [t] = translated(tmp_path, text)
    assert "default_certificate" not in t.proxy
    assert any("TLSStore extra): not applied (Traefik reads only the TLSStore named default)" in line
               for line in t.unhonoured)


def test_tls_store_certificates_are_listed_as_not_reproduced(tmp_path: Path) -> None:
    text = ROUTE.format(group="traefik.io") + "---\n" + STORE.format(group="traefik.io", name="default",
                                                                     secret="dicom-tls")
    text += "  certificates: [{secretName: other}]\n"
    [t] = translated(tmp_path, text)
    assert any("TLSStore default): spec.certificates: not reproduced" in line for line in t.unhonoured)


def test_traefik_v2_api_group_resources_are_a_finding_as_traefik_v3_ignores_them() -> None:
    [t] = translate(read_manifests(manifest_files(TLSSTORE)))
    [finding] = t.findings
    assert finding.text.startswith("IngressRouteTCP orthweb-dicom, TLSOption orthweb-tls, TLSStore default: "
                                   "apiVersion traefik.containo.us/v1alpha1, the Traefik v2 API group")
    assert "a Traefik v3 cluster ignores these resources altogether" in finding.text
    assert finding.proof == ()


def test_traefik_io_resources_raise_no_api_group_finding(tmp_path: Path) -> None:
    [t] = translated(tmp_path, ROUTE.format(group="traefik.io"))
    assert t.findings == ()


def test_a_scenario_environment_may_read_its_manifests_from_a_directory() -> None:
    scenario = load_scenario(str(ROOT / "tests" / "fixtures" / "scenarios" / "traefik-tlsstore.yaml"))
    with_store = scenario.environment("with-tlsstore")
    assert with_store.proxy is not None and with_store.proxy.options["default_certificate"] is True
    assert with_store.manifests is not None and any(f.endswith("tlsstore.yaml") for f in with_store.manifests.files)
    without = scenario.environment("without-tlsstore")
    assert without.proxy is not None and "default_certificate" not in without.proxy.options


def test_kustomize_files_without_kind_in_a_tree_are_skipped_and_listed(tmp_path: Path) -> None:
    write(tmp_path, "resources: [gw.yaml]\n", "kustomization.yaml")
    write(tmp_path, "nameReference:\n- kind: ConfigMap\n  version: v1\n", "nameReference.yaml")
    write(tmp_path, GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE"), "gw.yaml")
    [t] = translate(read_manifests(manifest_files(tmp_path)))
    listed = "\n".join(t.unhonoured)
    assert "kustomization.yaml (document 1): a Kustomization is not read" in listed
    assert "nameReference.yaml (document 1): no apiVersion and kind, so not a Kubernetes resource: not read" in listed


def test_two_gateways_of_one_name_in_a_tree_are_told_apart_by_namespace(tmp_path: Path) -> None:
    for namespace in ("dev", "prod"):
        (tmp_path / namespace).mkdir()
        write(tmp_path / namespace, GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE").replace(
            "metadata: {name: gw}", f"metadata: {{name: gw, namespace: {namespace}}}"), "gw.yaml")
    scenario = manifest_scenario(tmp_path)
    assert [(e.name, e.manifests and e.manifests.resource) for e in scenario.environments] == [
        ("istio-gateway-dev-gw", "Gateway/dev/gw"), ("istio-gateway-prod-gw", "Gateway/prod/gw")]


def test_korthweb_gitops_tree_runs_with_the_pki_its_cert_manager_documents_declare() -> None:
    scenario = manifest_scenario(GITOPS)
    spec = scenario.pki_spec()
    assert spec.topology == "one-level" and [ca.common_name for ca in spec.cas] == ["int-ca"]
    assert spec.server is not None and set(spec.server_names) == {"web.korthweb.test", "dicom.korthweb.test"}
    [env] = scenario.environments
    assert any(f.text.startswith("int-ca is a self-signed root, not an intermediate") for f in env.findings)
