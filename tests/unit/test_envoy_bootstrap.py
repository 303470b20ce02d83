"""A plain Envoy bootstrap (Orthweb's envoy.yaml) read as a manifest, and rewritten to run on loopback."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dicomtls.components import Address, Placement, component_class
from dicomtls.components.envoy_bootstrap import findings, rewrite, unhonoured
from dicomtls.errors import UsageError
from dicomtls.findings import Finding
from dicomtls.manifests import FALLBACK_SERVER_NAME, read_manifests, server_names, translate
from dicomtls.scenario import load_scenario, manifest_scenario
from tests.unit import placements

ROOT = Path(__file__).resolve().parents[2]
ORTHWEB = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-envoy"
ORTHWEB_2023 = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-envoy-2023"
LISTEN = Address("127.0.0.1", 41104)
TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
INSPECTOR = {"name": "envoy.filters.listener.tls_inspector", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}
SITES = (("north", ("north.dicom.test",)), ("south", ("south.dicom.test",)))


def orthweb() -> dict[str, Any]:
    return yaml.safe_load((ORTHWEB / "envoy.yaml").read_text())


def orthweb_2023() -> dict[str, Any]:
    return yaml.safe_load((ORTHWEB_2023 / "envoy.yaml").read_text())


def placement(sites: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> Placement:
    return placements.placement("/w", {"dicom": LISTEN}, ("dicom.example.test",), sites)


def tcp_proxy(cluster: str, **extra: Any) -> dict[str, Any]:
    return {"name": "envoy.filters.network.tcp_proxy",
            "typed_config": {"@type": TCP_PROXY_TYPE, "stat_prefix": cluster, "cluster": cluster, **extra}}


def tls(**common: Any) -> dict[str, Any]:
    return {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": TLS_TYPE, "common_tls_context": {
        "tls_certificates": [{"certificate_chain": {"filename": "/etc/ssl/certs/site.pem"},
                              "private_key": {"filename": "/etc/ssl/private/site.key"}}], **common}}}


def cluster(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "STRICT_DNS", "connect_timeout": "5s", "load_assignment": {
        "cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
            "address": name, "port_value": 4242}}}}]}]}, **extra}


def bootstrap(chains: list[dict[str, Any]], clusters: list[dict[str, Any]], **listener: Any) -> dict[str, Any]:
    return {"static_resources": {
        "listeners": [{"name": "dicom", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 11112}},
                       "filter_chains": chains, **listener}],
        "clusters": clusters}}


def listener_of(config: dict[str, Any]) -> dict[str, Any]:
    [listener] = config["static_resources"]["listeners"]
    return listener


def tls_of(chain: dict[str, Any]) -> dict[str, Any]:
    return chain["transport_socket"]["typed_config"]["common_tls_context"]


def write(tmp_path: Path, doc: Any, name: str = "envoy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


# --- the rewrite ----------------------------------------------------------------------------------------------


def test_only_the_dicom_listener_runs_on_the_address_the_backend_gives() -> None:
    listener = listener_of(rewrite(orthweb(), None, placement()))
    assert listener["name"] == "dicom_tls"
    assert listener["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 41104}}


def test_bootstrap_certificates_are_replaced_by_the_generated_pki() -> None:
    where = placement()
    config = rewrite(orthweb(), None, where)
    common = tls_of(listener_of(config)["filter_chains"][0])
    assert common["tls_certificates"] == [{"certificate_chain": {"filename": where.sites[0].certificate},
                                           "private_key": {"filename": where.sites[0].private_key}}]
    assert common["validation_context"] == {"trusted_ca": {"filename": where.pki.ca_bundle}}
    assert common["tls_params"] == {"tls_minimum_protocol_version": "TLSv1_2"}  # the user's settings stay
    text = yaml.safe_dump(config)
    assert "/etc/ssl" not in text and "ca-private" not in text


def test_the_connection_log_replaces_the_tcp_proxy_access_log() -> None:
    listener = listener_of(rewrite(orthweb(), None, placement()))
    assert [log["typed_config"]["path"] for log in listener["access_log"]] == ["/w/access.log"]
    typed = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert "access_log" not in typed and typed["cluster"] == "orthanc"


def test_the_dicom_cluster_reaches_the_orthanc_keeping_its_dns_type_and_the_others_are_dropped() -> None:
    # Envoy's STRICT_DNS resolves an IP literal as it is (tried on Envoy 1.40), so the user's type stays.
    [orthanc] = rewrite(orthweb(), None, placement())["static_resources"]["clusters"]
    assert orthanc["name"] == "orthanc" and orthanc["type"] == "STRICT_DNS" and orthanc["connect_timeout"] == "5s"
    [endpoint] = orthanc["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {"address": "127.0.0.1",
                                                                 "port_value": placements.UPSTREAM_PORT}


def test_an_upstream_host_name_makes_a_static_cluster_strict_dns() -> None:
    doc = bootstrap([{"filters": [tcp_proxy("orthanc")]}], [cluster("orthanc", type="STATIC")])
    where = placement()
    named = dataclasses.replace(where, sites=(dataclasses.replace(where.sites[0], upstream=Address("orthanc", 4242)),))
    assert [c["type"] for c in rewrite(doc, None, named)["static_resources"]["clusters"]] == ["STRICT_DNS"]
    assert [c["type"] for c in rewrite(doc, None, where)["static_resources"]["clusters"]] == ["STATIC"]


def test_admin_and_other_top_level_keys_are_dropped_naming_their_files_and_node_is_kept() -> None:
    pressure = {"name": "envoy.resource_monitors.injected_resource", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.injected_resource.v3.InjectedResourceConfig",
        "filename": "/var/run/envoy/pressure"}}
    doc = {**orthweb(), "node": {"id": "orthweb", "cluster": "dicom"},
           "overload_manager": {"resource_monitors": [pressure]}}
    doc["admin"]["access_log_path"] = "/home/envoy/admin_access.log"
    config = rewrite(doc, None, placement())
    assert set(config) == {"static_resources", "node"} and config["node"] == {"id": "orthweb", "cluster": "dicom"}
    listed = unhonoured(doc)
    assert "admin: the admin interface (0.0.0.0:9901) is not started; it names /home/envoy/admin_access.log" in listed
    assert "overload_manager: not reproduced (only static_resources, node and layered_runtime are run); it names " \
           "/var/run/envoy/pressure" in listed


def test_the_rewrite_leaves_the_users_document_untouched() -> None:
    doc = orthweb()
    before = copy.deepcopy(doc)
    rewrite(doc, None, placement())
    assert doc == before


def test_upstream_tls_is_removed_and_reported() -> None:
    upstream = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"}}
    doc = bootstrap([{"filters": [tcp_proxy("orthanc")], "transport_socket": tls()}],
                    [cluster("orthanc", transport_socket=upstream)])
    [orthanc] = rewrite(doc, None, placement())["static_resources"]["clusters"]
    assert "transport_socket" not in orthanc
    assert any(line.startswith("static_resources.clusters[0].transport_socket: upstream TLS removed")
               for line in unhonoured(doc))


def test_sds_secrets_are_replaced_by_the_pki_files() -> None:
    sds = {"name": "site-cert", "sds_config": {"path_config_source": {"path": "/etc/envoy/sds.yaml"}}}
    common = {"tls_certificate_sds_secret_configs": [sds], "combined_validation_context": {
        "default_validation_context": {"match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {
            "exact": "client.example"}}]},
        "validation_context_sds_secret_config": {"name": "clients-ca"}}}
    chain = {"filters": [tcp_proxy("orthanc")], "transport_socket": tls(**common)}
    del chain["transport_socket"]["typed_config"]["common_tls_context"]["tls_certificates"]
    doc = bootstrap([chain], [cluster("orthanc")])
    doc["static_resources"]["secrets"] = [{"name": "site-cert", "tls_certificate": {}}]
    where = placement()
    config = rewrite(doc, None, where)
    common = tls_of(listener_of(config)["filter_chains"][0])
    assert set(common) == {"tls_certificates", "validation_context"}
    assert common["tls_certificates"][0]["certificate_chain"] == {"filename": where.sites[0].certificate}
    assert common["validation_context"] == {"trusted_ca": {"filename": where.pki.ca_bundle}}
    assert "secrets" not in config["static_resources"]
    listed = "\n".join(unhonoured(doc))
    assert "tls_certificate_sds_secret_configs: SDS replaced by files: the server certificate is the generated " \
           "PKI's, not the secret site-cert" in listed
    assert "combined_validation_context: SDS replaced by files: the trusted CA is the generated PKI's, not the " \
           "secret clients-ca" in listed
    assert "default_validation_context.match_typed_subject_alt_names: not reproduced" in listed
    assert "static_resources.secrets: not used" in listed


def test_inline_keys_and_key_logs_never_reach_the_config_or_the_report() -> None:
    secret = "-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n"
    chain = {"filters": [tcp_proxy("orthanc")], "transport_socket": tls(key_log={"path": "/tmp/keys.log"})}
    entry = tls_of(chain)["tls_certificates"][0]
    entry["private_key"] = {"inline_string": secret}
    doc = bootstrap([chain], [cluster("orthanc")])
    config_text = yaml.safe_dump(rewrite(doc, None, placement()))
    listed = "\n".join(unhonoured(doc))
    assert "MIIsecret" not in config_text and "MIIsecret" not in listed
    assert "key_log" not in config_text and "common_tls_context.key_log: not reproduced" in listed
    assert "not /etc/ssl/certs/site.pem (key an inline key)" in listed


def test_other_filters_and_chains_without_tcp_proxy_in_the_dicom_listener_are_dropped_and_reported() -> None:
    rbac = {"name": "envoy.filters.network.rbac", "typed_config": {"@type": "rbac"}}
    http = {"filter_chain_match": {"server_names": ["web.example.test"]},
            "filters": [{"name": "envoy.filters.network.http_connection_manager"}]}
    doc = bootstrap([{"filters": [rbac, tcp_proxy("orthanc")], "transport_socket": tls()}, http],
                    [cluster("orthanc")])
    listener = listener_of(rewrite(doc, None, placement()))
    [chain] = listener["filter_chains"]
    assert [f["name"] for f in chain["filters"]] == ["envoy.filters.network.tcp_proxy"]
    listed = unhonoured(doc)
    assert any(line.startswith("static_resources.listeners[0].filter_chains[0].filters[0] "
                               "(envoy.filters.network.rbac): not reproduced") for line in listed)
    assert any(line.startswith("static_resources.listeners[0].filter_chains[1] "
                               "(envoy.filters.network.http_connection_manager): not reproduced") for line in listed)


def test_filter_chain_match_on_the_real_network_is_dropped_and_reported() -> None:
    match = {"server_names": ["dicom.example.test"], "destination_port": 11112,
             "source_prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}]}
    doc = bootstrap([{"filter_chain_match": match, "filters": [tcp_proxy("orthanc")], "transport_socket": tls()}],
                    [cluster("orthanc")],
                    listener_filters=[INSPECTOR, {"name": "envoy.filters.listener.proxy_protocol"}])
    listener = listener_of(rewrite(doc, None, placement()))
    assert listener["filter_chains"][0]["filter_chain_match"] == {"server_names": ["dicom.example.test"]}
    assert listener["listener_filters"] == [INSPECTOR]
    listed = "\n".join(unhonoured(doc))
    assert "filter_chain_match.destination_port: not reproduced" in listed
    assert "filter_chain_match.source_prefix_ranges: not reproduced" in listed
    assert "listener_filters[1] (envoy.filters.listener.proxy_protocol): not reproduced" in listed


def test_a_cluster_named_only_by_cds_is_defined_and_reported() -> None:
    doc = bootstrap([{"filters": [tcp_proxy("from-cds")], "transport_socket": tls()}], [])
    [defined] = rewrite(doc, None, placement())["static_resources"]["clusters"]
    assert defined["name"] == "from-cds" and defined["type"] == "STATIC"
    assert any("cluster from-cds: the DICOM tcp_proxy routes to it" in line for line in unhonoured(doc))


def test_each_chain_presents_and_routes_to_the_site_its_server_names_match() -> None:
    chains = [{"filter_chain_match": {"server_names": [f"{name}.dicom.test"]}, "filters": [tcp_proxy(f"pacs-{name}")],
               "transport_socket": tls()} for name in ("south", "north")]
    doc = bootstrap(chains, [cluster("pacs-north"), cluster("pacs-south")], listener_filters=[INSPECTOR])
    where = placement(SITES)
    config = rewrite(doc, None, where)
    north, south = where.sites
    south_chain, north_chain = listener_of(config)["filter_chains"]
    assert tls_of(south_chain)["tls_certificates"][0]["certificate_chain"] == {"filename": south.certificate}
    assert tls_of(north_chain)["tls_certificates"][0]["private_key"] == {"filename": north.private_key}
    ports = {c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"]["port_value"] for c in config["static_resources"]["clusters"]}
    assert ports == {"pacs-north": north.upstream.port, "pacs-south": south.upstream.port}


def test_a_weighted_split_goes_wholly_to_one_orthanc_and_says_so() -> None:
    split = {"weighted_clusters": {"clusters": [{"name": "pacs-a", "weight": 90}, {"name": "pacs-b", "weight": 10}]}}
    proxy = tcp_proxy("unused")
    del proxy["typed_config"]["cluster"]
    proxy["typed_config"].update(split)
    doc = bootstrap([{"filters": [proxy], "transport_socket": tls()}], [cluster("pacs-a"), cluster("pacs-b")])
    assert any("weighted_clusters: split over 2 clusters; all of it goes to the one Orthanc" in line
               for line in unhonoured(doc))


def test_a_chain_without_server_names_serves_the_first_site() -> None:
    config = rewrite(orthweb(), None, placement(SITES))
    first = placement(SITES).sites[0]
    assert tls_of(listener_of(config)["filter_chains"][0])["tls_certificates"][0]["certificate_chain"] == {
        "filename": first.certificate}


def test_the_listener_option_picks_the_dicom_listener_by_name() -> None:
    doc = orthweb()
    doc["static_resources"]["listeners"].insert(0, {
        "name": "other", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 104}},
        "filter_chains": [{"filters": [tcp_proxy("orthanc")]}]})
    assert listener_of(rewrite(doc, "dicom_tls", placement()))["name"] == "dicom_tls"
    assert listener_of(rewrite(doc, None, placement()))["name"] == "other"


# --- the component --------------------------------------------------------------------------------------------


def component(options: dict[str, Any]) -> Any:
    cls = component_class("envoy-bootstrap")
    return cls(cls.options_model.model_validate(options))


def test_the_component_runs_the_rewritten_bootstrap_with_envoy() -> None:
    where = placement()
    launch = component({"bootstrap": orthweb()}).launch(where, "/usr/bin/envoy")
    assert launch.args[:2] == ["-c", "/w/envoy.yaml"] and launch.connection_log == "access.log"
    assert yaml.safe_load(launch.files["envoy.yaml"]) == rewrite(orthweb(), None, where)


def test_a_terminating_bootstrap_needs_a_plain_orthanc_behind_it() -> None:
    assert component({"bootstrap": orthweb()}).terminates_tls() is True


def test_passthrough_routes_by_sni_to_an_orthanc_that_terminates_tls(tmp_path: Path) -> None:
    chain = {"filter_chain_match": {"server_names": ["dicom.orthweb.test"]}, "filters": [tcp_proxy("orthanc")]}
    doc = bootstrap([chain], [cluster("orthanc")], listener_filters=[INSPECTOR])
    assert component({"bootstrap": doc}).terminates_tls() is False
    [t] = translate(read_manifests([write(tmp_path, doc)]))
    assert t.server == {"kind": "orthanc", "tls": True, "client_cert": "optional"}
    assert t.server_names == ("dicom.orthweb.test",)
    [kept] = listener_of(rewrite(doc, None, placement()))["filter_chains"]
    assert "transport_socket" not in kept


def test_chains_that_both_terminate_and_pass_tls_through_are_an_error() -> None:
    doc = bootstrap([{"filters": [tcp_proxy("orthanc")], "transport_socket": tls()},
                     {"filter_chain_match": {"server_names": ["x.test"]}, "filters": [tcp_proxy("orthanc")]}],
                    [cluster("orthanc")])
    with pytest.raises(ValidationError, match="mixes filter chains that terminate TLS with chains that pass"):
        component({"bootstrap": doc})


def test_a_listener_option_naming_no_listener_is_an_error() -> None:
    with pytest.raises(ValidationError, match=r"listener 'dicom': not in static_resources.listeners: use one of "
                                              r"dicom_tls, orthanc_web"):
        component({"bootstrap": orthweb(), "listener": "dicom"})


# --- as a manifest --------------------------------------------------------------------------------------------


def test_a_bootstrap_file_becomes_an_envoy_bootstrap_proxy_named_after_its_file() -> None:
    [t] = translate(read_manifests([ORTHWEB / "envoy.yaml"]))
    assert t.resource == "EnvoyBootstrap/envoy"
    assert t.proxy == {"kind": "envoy-bootstrap", "bootstrap": orthweb(), "web": True}  # its orthanc_web listener
    assert t.server == {"kind": "orthanc", "tls": False, "dicomweb_plugin": True}


def test_a_catch_all_chain_names_no_host_so_the_pki_uses_the_stand_in() -> None:
    found = translate(read_manifests([ORTHWEB / "envoy.yaml"]))
    assert found[0].server_names == () and server_names(found) == [FALLBACK_SERVER_NAME]


def test_what_the_orthweb_bootstrap_cannot_reproduce_is_listed() -> None:
    [t] = translate(read_manifests([ORTHWEB / "envoy.yaml"]))
    where = "tests/fixtures/manifests/orthweb-envoy/envoy.yaml (document 1, Envoy bootstrap): "
    assert all(line.startswith(where) for line in t.unhonoured)
    chain = "static_resources.listeners[0].filter_chains[0]"
    context = f"{chain}.transport_socket.typed_config.common_tls_context"
    web = "static_resources.listeners[1].filter_chains[0]"
    assert [line.removeprefix(where).split(":")[0] for line in t.unhonoured] == [
        "admin",
        f"{chain}.filters[0].typed_config.access_log",
        f"{context}.tls_certificates",
        f"{context}.validation_context.trusted_ca",
        "static_resources.clusters[1] (orthanc_http)",
        "static_resources.listeners[1] (orthanc_web) (0.0.0.0",
        f"{web}.filters[0].typed_config.route_config.virtual_hosts[0].routes[0] (cluster orthanc_http)",
        f"{web}.transport_socket.typed_config.common_tls_context.tls_certificates",
    ]
    listed = "\n".join(t.unhonoured)
    assert "the server certificate is the generated PKI's, not /etc/ssl/certs/site.pem " \
           "(key /etc/ssl/private/site.key)" in listed
    assert "the trusted CA is the generated PKI's, not /etc/ssl/certs/ca.pem" in listed
    assert "(orthanc_web) (0.0.0.0:443): the HTTPS listener, run as the environment's web route" in listed
    assert "(orthanc_http): replaced by the web route's cluster, to the environment's Orthanc REST API" in listed
    # Without the web route, the HTTPS listener is not started.
    assert "(orthanc_web) (0.0.0.0:443): not started (only the DICOM listener dicom_tls runs)" in "\n".join(
        unhonoured(orthweb()))


def test_the_listener_access_log_being_replaced_is_reported(tmp_path: Path) -> None:
    doc = orthweb()
    doc["static_resources"]["listeners"][0]["access_log"] = [{"name": "envoy.access_loggers.stdout"}]
    assert "static_resources.listeners[0].access_log: replaced by the tool's connection log" in "\n".join(
        unhonoured(doc))


def test_a_bootstrap_without_a_tcp_proxy_is_an_error_naming_file_document_and_field(tmp_path: Path) -> None:
    doc = orthweb()
    del doc["static_resources"]["listeners"][0]
    path = write(tmp_path, "apiVersion: v1\nkind: Service\nmetadata: {name: orthanc}\n---\n" + yaml.safe_dump(doc))
    with pytest.raises(UsageError, match=r"envoy\.yaml \(document 2, Envoy bootstrap\): static_resources\.listeners: "
                                         r"none has an envoy\.filters\.network\.tcp_proxy filter"):
        translate(read_manifests([path]))


def test_a_bootstrap_whose_static_resources_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\(document 1, Envoy bootstrap\): static_resources: not a mapping"):
        translate(read_manifests([write(tmp_path, "static_resources: [listeners]\n")]))


def test_a_listener_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"static_resources\.listeners: not a list of mappings"):
        translate(read_manifests([write(tmp_path, "static_resources: {listeners: [dicom]}\n")]))


def test_a_mapping_without_kind_or_static_resources_is_still_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"m\.yaml \(document 1\): not a Kubernetes resource: it needs apiVersion "
                                         r"and kind \(or static_resources, for an Envoy bootstrap\)"):
        read_manifests([write(tmp_path, "admin: {}\n", "m.yaml")])


def test_two_bootstraps_with_one_name_are_an_error(tmp_path: Path) -> None:
    text = yaml.safe_dump(orthweb())
    with pytest.raises(UsageError, match="another Envoy bootstrap is also named envoy"):
        read_manifests([write(tmp_path, text + "---\n" + text)])


def test_a_manifest_directory_with_a_bootstrap_is_observed_with_an_untrusted_client_certificate() -> None:
    scenario = manifest_scenario(ORTHWEB)
    [env] = scenario.environments
    assert env.name == "envoy-bootstrap-envoy" and env.proxy is not None and env.proxy.kind == "envoy-bootstrap"
    cells = scenario.cells()
    assert {c.expected for c in cells} == {"observe"}
    untrusted = [c.probe for c in cells if c.probe.client_cert == "untrusted"]
    assert [(p.client, p.operation) for p in untrusted] == [("dcmtk", "echo"), ("dcmtk", "store-ct")]


def test_a_scenario_environment_reads_a_bootstrap_from_manifests(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"""\
name: orthweb-bootstrap
description: Orthweb's Envoy from its own bootstrap.
pki: {{server_names: [dicom.orthweb.test]}}
environments:
  - name: orthweb
    manifests: {{files: [{ORTHWEB / 'envoy.yaml'}], resource: EnvoyBootstrap/envoy}}
probes:
  - {{client: dcmtk, client_cert: [none]}}
expect:
  - {{match: {{}}, outcome: pass}}
""")
    env = load_scenario(str(path)).environment("orthweb")
    assert env.proxy is not None and env.proxy.kind == "envoy-bootstrap"
    assert env.server.options == {"tls": False, "dicomweb_plugin": True}
    assert any("admin interface" in line for line in env.unhonoured)


# --- files, health checks and runtime (Orthweb's last envoy.yaml) ---------------------------------------------

HC_FILE_SINK = "type.googleapis.com/envoy.extensions.health_check.event_sinks.file.v3.HealthCheckEventFileSink"


def dicom_cluster(config: dict[str, Any]) -> dict[str, Any]:
    [found] = config["static_resources"]["clusters"]
    return found


def test_the_health_check_event_log_is_rewritten_into_the_environments_directory() -> None:
    [check] = dicom_cluster(rewrite(orthweb_2023(), None, placement()))["health_checks"]
    assert check["event_log_path"] == "/w/bootstrap-healthcheck_dcmtcp.log"
    assert check["tcp_health_check"] == {} and check["interval"] == "10s"
    assert "static_resources.clusters[1].health_checks[0].event_log_path: /home/envoy/healthcheck_dcmtcp.log " \
           "rewritten to the environment's directory (bootstrap-healthcheck_dcmtcp.log)" in unhonoured(orthweb_2023())


def test_every_file_the_kept_parts_write_moves_into_the_environment_under_its_own_name() -> None:
    sink = {"name": "envoy.health_check.event_sink.file",
            "typed_config": {"@type": HC_FILE_SINK, "event_log_path": "/var/log/envoy/events.log"}}
    check = {"timeout": "1s", "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1,
             "tcp_health_check": {}, "event_logger": [sink]}
    to_stdout = {**check, "event_logger": [], "event_log_path": "/dev/stdout"}  # exists wherever Envoy runs
    doc = bootstrap([{"filters": [tcp_proxy("orthanc")]}], [cluster(
        "orthanc", health_checks=[check, to_stdout], outlier_detection={"event_log_path": "/var/log/outlier/events.log"})])
    found = dicom_cluster(rewrite(doc, None, placement()))
    assert found["health_checks"][0]["event_logger"][0]["typed_config"]["event_log_path"] == \
        "/w/bootstrap-events.log"
    assert found["health_checks"][1]["event_log_path"] == "/dev/stdout"
    assert found["outlier_detection"]["event_log_path"] == "/w/bootstrap-2-events.log"
    listed = [line for line in unhonoured(doc) if "rewritten to the environment's directory" in line]
    assert [line.split(":")[0] for line in listed] == [
        "static_resources.clusters[0].health_checks[0].event_logger[0].typed_config.event_log_path",
        "static_resources.clusters[0].outlier_detection.event_log_path"]


def test_a_file_the_kept_parts_read_is_named_as_read_as_written() -> None:
    doc = bootstrap([{"filters": [tcp_proxy("orthanc")]}], [cluster("orthanc", health_checks=[{
        "timeout": "1s", "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1, "tcp_health_check": {},
        "tls_options": {"alpn_protocols": ["dicom"]}, "transport_socket_match_criteria": {},
        "event_logger": [{"name": "custom", "typed_config": {"@type": "type.googleapis.com/x.Custom",
                                                             "settings": {"filename": "/etc/envoy/hc.json"}}}]}])])
    assert "static_resources.clusters[0].health_checks[0].event_logger[0].typed_config.settings.filename: " \
           "/etc/envoy/hc.json is read as written (the tool has no copy of it)" in unhonoured(doc)


def test_a_bare_path_outside_a_file_sink_is_not_taken_for_a_file() -> None:
    typed = tcp_proxy("orthanc")
    typed["typed_config"]["tunneling_config"] = {"hostname": "x", "path": "/dicom"}  # removed, and not a file
    doc = bootstrap([{"filters": [typed]}], [cluster("orthanc")])
    assert not [line for line in unhonoured(doc) if "it names" in line or "rewritten" in line]


def test_a_tcp_connect_health_check_is_kept_and_checks_orthanc_cannot_pass_are_removed() -> None:
    base = {"timeout": "1s", "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1}
    checks = [{**base, "tcp_health_check": {}},
              {**base, "http_health_check": {"path": "/healthz"}},
              {**base, "tcp_health_check": {"send": {"text": "0000"}, "receive": [{"text": "01"}]}}]
    doc = bootstrap([{"filters": [tcp_proxy("orthanc")]}], [cluster("orthanc", health_checks=checks)])
    assert dicom_cluster(rewrite(doc, None, placement()))["health_checks"] == [checks[0]]
    listed = unhonoured(doc)
    assert "static_resources.clusters[0].health_checks[1] (http_health_check): removed: Orthanc's DICOM port " \
           "answers no HTTP or gRPC, so Envoy would mark Orthanc unhealthy" in listed
    assert "static_resources.clusters[0].health_checks[2] (tcp_health_check): removed: it sends bytes Orthanc's " \
           "DICOM port does not answer, so Envoy would mark Orthanc unhealthy" in listed
    only_http = bootstrap([{"filters": [tcp_proxy("orthanc")]}], [cluster("orthanc", health_checks=checks[1:2])])
    assert "health_checks" not in dicom_cluster(rewrite(only_http, None, placement()))


def test_ring_hash_and_the_runtime_connection_limits_are_kept() -> None:
    config = rewrite(orthweb_2023(), None, placement())
    assert dicom_cluster(config)["lb_policy"] == "RING_HASH"
    assert config["layered_runtime"] == orthweb_2023()["layered_runtime"]
    assert not [line for line in unhonoured(orthweb_2023()) if line.startswith("layered_runtime")]


def test_runtime_layers_that_need_the_real_machine_are_removed_and_listed() -> None:
    doc = orthweb_2023()
    doc["layered_runtime"]["layers"] += [
        {"name": "admin", "admin_layer": {}},
        {"name": "disk", "disk_layer": {"symlink_root": "/srv/runtime/current", "subdirectory": "envoy"}},
        {"name": "rtds", "rtds_layer": {"name": "rtds", "rtds_config": {"ads": {}}}}]
    doc["layered_runtime"]["layers"][0]["static_layer"]["upstream"] = {"healthy_panic_threshold": 0,
                                                                       "label": "orthanc"}
    layers = rewrite(doc, None, placement())["layered_runtime"]["layers"]
    assert [layer["name"] for layer in layers] == ["static_layer_0", "admin"]
    assert layers[0]["static_layer"]["upstream"] == {"healthy_panic_threshold": 0}
    listed = [line for line in unhonoured(doc) if line.startswith("layered_runtime")]
    assert listed == [
        "layered_runtime.layers[0].static_layer.upstream.label: removed (only numbers and switches of a static "
        "runtime layer are kept)",
        "layered_runtime.layers[2].disk_layer (disk): removed: it reads runtime files of the real machine; it names "
        "/srv/runtime/current",
        "layered_runtime.layers[3] (rtds): removed (only static and admin runtime layers run here)"]


# --- findings: security options kept, shown with the cells that prove them ------------------------------------

VALIDATION_AT = "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context." \
                "validation_context"


def findings_of(validation: dict[str, Any], **context: Any) -> list[Finding]:
    chain = {"filters": [tcp_proxy("orthanc")], "transport_socket": tls(validation_context={
        "trusted_ca": {"filename": "/etc/ssl/certs/ca.pem"}, **validation})}
    chain["transport_socket"]["typed_config"].update(context)
    doc = bootstrap([chain], [cluster("orthanc")])
    kept = tls_of(listener_of(rewrite(doc, None, placement()))["filter_chains"][0])["validation_context"]
    assert {k: v for k, v in kept.items() if k != "trusted_ca"} == validation  # kept as written
    return findings(doc)


def test_allow_expired_certificate_is_kept_and_proved_by_the_expired_client_certificate() -> None:
    assert findings_of({"allow_expired_certificate": True}) == [Finding.of(
        f"{VALIDATION_AT}.allow_expired_certificate: true: Envoy accepts an expired client certificate",
        severity="high", client_cert="expired")]


def test_accept_untrusted_is_kept_and_proved_by_the_untrusted_client_certificate() -> None:
    assert findings_of({"trust_chain_verification": "ACCEPT_UNTRUSTED"}) == [Finding.of(
        f"{VALIDATION_AT}.trust_chain_verification: ACCEPT_UNTRUSTED: Envoy accepts a client certificate no trusted "
        "CA issued", severity="critical", client_cert="untrusted")]


def test_an_optional_client_certificate_is_proved_by_a_client_without_one() -> None:
    assert findings_of({}, require_client_certificate=False) == [Finding.of(
        "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.require_client_certificate: "
        "false: Envoy accepts a client that sends no certificate", severity="medium", client_cert="none")]
    assert findings_of({}, require_client_certificate=True) == []


def test_subject_alt_name_matchers_are_removed_as_no_client_could_pass_and_reported_as_a_finding() -> None:
    # Tried on Envoy 1.40: with a SAN matcher and require_client_certificate false, a client without a
    # certificate gets PEER_DID_NOT_RETURN_A_CERTIFICATE, and the tool's own certificate names no such host.
    sans = [{"san_type": "DNS", "matcher": {"exact": "modality.example.org"}},
            {"san_type": "DNS", "matcher": {"suffix": ".hospital.example"}}]
    chain = {"filters": [tcp_proxy("orthanc")], "transport_socket": tls(validation_context={
        "trusted_ca": {"filename": "/etc/ssl/certs/ca.pem"}, "match_typed_subject_alt_names": sans})}
    chain["transport_socket"]["typed_config"]["require_client_certificate"] = False
    doc = bootstrap([chain], [cluster("orthanc")])
    kept = tls_of(listener_of(rewrite(doc, None, placement()))["filter_chains"][0])["validation_context"]
    assert set(kept) == {"trusted_ca"}
    assert any(line.startswith(f"{VALIDATION_AT}.match_typed_subject_alt_names: not reproduced: with it Envoy "
                               "requires a client certificate carrying those names") for line in unhonoured(doc))
    assert findings(doc) == [Finding(  # and not "accepts a client that sends no certificate": it does not
        f"{VALIDATION_AT}.match_typed_subject_alt_names: Envoy accepts only client certificates whose names match "
        "exact modality.example.org, suffix .hospital.example, and requires one even where "
        "require_client_certificate is false", severity="info")]


def test_the_orthweb_2023_bootstrap_reports_its_findings_with_their_file() -> None:
    [t] = translate(read_manifests([ORTHWEB_2023 / "envoy.yaml"]))
    where = "tests/fixtures/manifests/orthweb-envoy-2023/envoy.yaml (document 1, Envoy bootstrap): "
    assert [(f.text.startswith(where), f.proof) for f in t.findings] == [
        (True, (("client_cert", "expired"),)), (True, (("client_cert", "none"),))]
    assert "allow_expired_certificate: true: Envoy accepts an expired client certificate" in t.findings[0].text


def test_a_manifest_run_sends_dcmtk_an_expired_client_certificate() -> None:
    cells = manifest_scenario(ORTHWEB_2023).cells()
    expired = [c.probe for c in cells if c.probe.client_cert == "expired"]
    assert ("dcmtk", "echo") in [(p.client, p.operation) for p in expired]


def test_each_finding_points_at_the_line_of_its_setting_in_the_users_file() -> None:
    [t] = translate(read_manifests([ORTHWEB_2023 / "envoy.yaml"]))
    lines = (ORTHWEB_2023 / "envoy.yaml").read_text().splitlines()
    at = {f.text.rsplit(": ", 2)[0].rsplit(".", 1)[-1]: f for f in t.findings}
    expired, no_cert = at["allow_expired_certificate"], at["require_client_certificate"]
    assert expired.file == "tests/fixtures/manifests/orthweb-envoy-2023/envoy.yaml" == no_cert.file
    assert lines[expired.line - 1].strip() == "allow_expired_certificate: true"
    assert lines[no_cert.line - 1].strip() == "require_client_certificate: false"


def test_the_https_listener_runs_on_the_web_port_with_the_pki_and_its_orthanc_route_to_the_rest_port() -> None:
    placed = placement()
    placed = dataclasses.replace(placed, listen={**placed.listen, "web": Address("127.0.0.1", 41143)},
                                 sites=tuple(dataclasses.replace(s, web_upstream=Address("127.0.0.1", 41242))
                                             for s in placed.sites))
    config = rewrite(orthweb(), None, placed, web=True)
    dicom, web = config["static_resources"]["listeners"]
    assert web["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 41143}}
    [chain] = web["filter_chains"]
    context = chain["transport_socket"]["typed_config"]["common_tls_context"]
    assert context["tls_certificates"] == dicom["filter_chains"][0]["transport_socket"]["typed_config"][
        "common_tls_context"]["tls_certificates"]
    [route] = chain["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    assert route["route"]["cluster"] == "dicomtls-web"
    rest = next(c for c in config["static_resources"]["clusters"] if c["name"] == "dicomtls-web")
    assert rest["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "socket_address": {"address": "127.0.0.1", "port_value": 41242}}
    assert len(rewrite(orthweb(), None, placement())["static_resources"]["listeners"]) == 1
