"""The proxies' HTTPS route (``web: true``): off, the rendered configurations carry no trace of it and the proxy
listens on its DICOM port alone; on, each proxy serves the same certificate and client-certificate rule on a second
port and forwards HTTP to the server's REST port. Orthanc loads its DICOMweb plugin only when asked."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dicomtls.components import Address, Launch, component_class
from dicomtls.components.orthanc import DICOMWEB_PLUGIN
from tests.unit import placements

NAMES = ("dicom.web.test",)
REST = Address("127.0.0.1", 41242)
WEB = Address("127.0.0.1", 41143)


def launch(kind: str, web: bool, **options: Any) -> Launch:
    cls = component_class(kind)
    component = cls(cls.options_model(web=web, **options))
    listen = {"dicom": Address("127.0.0.1", 41104), **({"web": WEB} if "web" in component.port_names() else {})}
    placed = placements.placement("/w", listen, NAMES)
    placed = dataclasses.replace(placed, sites=tuple(dataclasses.replace(s, web_upstream=REST) for s in placed.sites))
    return component.launch(placed, "/bin/false")


@pytest.mark.parametrize("kind", ["envoy", "nginx", "traefik", "haproxy"])
def test_without_web_a_proxy_listens_on_dicom_only_and_its_config_names_no_web_route(kind: str) -> None:
    cls = component_class(kind)
    assert cls(cls.options_model()).port_names() == ("dicom",)
    text = "".join(launch(kind, False).files.values())
    assert str(WEB.port) not in text and str(REST.port) not in text
    assert launch(kind, False).logs == ()


def test_envoy_web_listener_has_the_dicom_chain_s_tls_and_routes_http_to_the_rest_port() -> None:
    config = yaml.safe_load(launch("envoy", True, client_cert="required", sni="named").files["envoy.yaml"])
    dicom, web = config["static_resources"]["listeners"]
    assert web["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": WEB.port}
    [chain] = web["filter_chains"]
    assert chain["filter_chain_match"] == dicom["filter_chains"][0]["filter_chain_match"]
    assert chain["transport_socket"] == dicom["filter_chains"][0]["transport_socket"]
    assert chain["filters"][0]["name"] == "envoy.filters.network.http_connection_manager"
    cluster = next(c for c in config["static_resources"]["clusters"] if c["name"].endswith("-web"))
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert address == {"address": REST.host, "port_value": REST.port}
    assert launch("envoy", True).logs == ("web.log",)


def test_nginx_http_server_sits_beside_the_stream_server_with_its_client_certificate_rule() -> None:
    conf = launch("nginx", True, client_cert="required").files["nginx.conf"]
    http = conf[conf.index("http {"):]
    assert f"listen {WEB} ssl;" in http and "ssl_verify_client on;" in http
    assert f"server {REST};" in http and "proxy_request_buffering off;" in http


def test_nginx_and_traefik_refuse_a_web_route_where_they_pass_tls_through() -> None:
    for kind in ("nginx", "traefik", "haproxy"):
        with pytest.raises(ValidationError, match="web: the HTTPS route terminates TLS"):
            component_class(kind).options_model(web=True, passthrough=True)


def test_traefik_named_hosts_route_http_by_host_and_any_by_path() -> None:
    named = yaml.safe_load(launch("traefik", True, sni="named").files["dynamic.yaml"])
    assert [r["rule"] for r in named["http"]["routers"].values()] == ["Host(`dicom.web.test`)"]
    anyone = yaml.safe_load(launch("traefik", True).files["dynamic.yaml"])
    assert [r["rule"] for r in anyone["http"]["routers"].values()] == ["PathPrefix(`/`)"]
    [service] = anyone["http"]["services"].values()
    assert service["loadBalancer"]["servers"] == [{"url": f"http://{REST}"}]
    static = yaml.safe_load(launch("traefik", True).files["traefik.yaml"])
    assert static["entryPoints"]["web"]["address"] == str(WEB)


def test_orthanc_loads_the_dicomweb_plugin_only_when_asked() -> None:
    cls = component_class("orthanc")
    listen = {"dicom": Address("127.0.0.1", 1), "http": REST}
    placed = placements.placement("/w", listen, NAMES)
    plain = json.loads(cls(cls.options_model()).launch(placed, "/bin/false").files["orthanc.json"])
    assert plain["Plugins"] == [] and "DicomWeb" not in plain
    web = json.loads(cls(cls.options_model(dicomweb_plugin=True)).launch(placed, "/bin/false").files["orthanc.json"])
    assert web["Plugins"] == [DICOMWEB_PLUGIN] and web["DicomWeb"]["Root"] == "/dicom-web/"


def test_haproxy_web_frontend_binds_like_the_dicom_one_strips_its_path_and_logs_nothing() -> None:
    cfg = launch("haproxy", True, client_cert="required", web_path="/orthanc/").files["haproxy.cfg"]
    dicom_bind = next(line for line in cfg.splitlines() if line.strip().startswith("bind ") and "41104" in line)
    web = cfg[cfg.index("frontend web"):]
    web_bind = next(line for line in web.splitlines() if line.strip().startswith("bind "))
    assert web_bind.replace(str(WEB), "") == dicom_bind.replace("127.0.0.1:41104", "")
    assert "no log" in web and r'http-request replace-path "^/orthanc/(.*)" "/\\1"' in web
    assert f"server orthanc {REST}" in web
