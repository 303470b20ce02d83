"""Istio and Traefik manifests read into component options, and the Envoy config the Istio twin renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dicomtls.components import Address, component_class
from dicomtls.errors import UsageError
from dicomtls.manifests import FALLBACK_SERVER_NAME, read_manifests, server_names, translate
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


@pytest.mark.parametrize("version", ["v1beta1", "v1"])
def test_istio_gateway_reads_both_api_versions(tmp_path: Path, version: str) -> None:
    [t] = translated(tmp_path, GATEWAY.format(version=version, hosts='["*"]', mode="SIMPLE"))
    assert t.proxy == {"kind": "istio-gateway", "servers": [{"hosts": ["*"], "mode": "SIMPLE"}]}
    assert t.server == {"kind": "orthanc", "tls": False}


def test_wildcard_hosts_give_no_pki_name_so_a_stand_in_is_used(tmp_path: Path) -> None:
    found = translated(tmp_path, GATEWAY.format(version="v1", hosts='["*"]', mode="SIMPLE"))
    assert server_names(found) == [FALLBACK_SERVER_NAME]


def test_named_hosts_drop_their_namespace_and_name_the_pki(tmp_path: Path) -> None:
    [t] = translated(tmp_path, GATEWAY.format(version="v1", hosts="[orthanc/dicom.korthweb.test]", mode="MUTUAL"))
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
    assert len(cells) == 18 and {c.expected for c in cells} == {"observe"}


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


def render_gateway(servers: list[dict]) -> dict:
    from tests.unit import placements

    placement = placements.placement("/w", {"dicom": Address("127.0.0.1", 41104)}, ("dicom.korthweb.test",))
    cls = component_class("istio-gateway")
    launch = cls(cls.options_model.model_validate({"servers": servers})).launch(placement, "/usr/bin/envoy")
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
