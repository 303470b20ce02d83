"""Traefik, nginx and HAProxy configs rendered through the real templates: what each proxy will be told to do."""

from __future__ import annotations

import dataclasses
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dicomtls.components import Address, Launch, Placement, component_class
from dicomtls.components.haproxy import assemble_and_run
from dicomtls.components.nginx import Nginx, NginxOptions, stream_module
from tests.unit import placements

SERVER_NAMES = ("dicom.korthweb.test", "dicom2.korthweb.test")
PKI_DIR = placements.PKI_DIR
WORKDIR = "/srv/dicomtls/env/edge/proxy"
CHAIN = str(PKI_DIR / "server-fullchain.crt")
KEY = str(PKI_DIR / "server.key")
CA_BUNDLE = str(PKI_DIR / "ca-bundle.crt")


def placement(workdir: str = WORKDIR, sites: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> Placement:
    return placements.placement(workdir, {"dicom": Address("127.0.0.1", 41104)}, SERVER_NAMES, sites)


def launch(kind: str, executable: str = "/bin/false", sites: tuple[tuple[str, tuple[str, ...]], ...] = (),
           **options: Any) -> Launch:
    cls = component_class(kind)
    return cls(cls.options_model(**options)).launch(placement(sites=sites), executable)


# --- Traefik ----------------------------------------------------------------------------------------------------


def traefik(**options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    files = launch("traefik", "/opt/venv/bin/traefik", **options).files
    return yaml.safe_load(files["traefik.yaml"]), yaml.safe_load(files["dynamic.yaml"])


def test_traefik_static_config_listens_on_loopback_reads_the_file_provider_and_never_phones_home() -> None:
    static, _ = traefik()
    assert static["entryPoints"]["dicom"]["address"] == "127.0.0.1:41104"
    assert static["providers"] == {"file": {"filename": f"{WORKDIR}/dynamic.yaml", "watch": False}}
    assert static["global"] == {"checkNewVersion": False, "sendAnonymousUsage": False}
    assert static["log"]["level"] == "DEBUG"
    assert not {"api", "ping", "metrics", "tracing", "experimental"} & set(static)


def test_traefik_launch_reads_the_rendered_static_config_and_has_no_connection_log() -> None:
    started = launch("traefik", "/opt/venv/bin/traefik")
    assert started.args == [f"--configFile={WORKDIR}/traefik.yaml"]
    assert set(started.files) == {"traefik.yaml", "dynamic.yaml"}
    assert started.connection_log is None  # Traefik has no per-connection TCP log; its debug log is the evidence


def test_traefik_read_timeout_bounds_the_https_handlers_wait_for_a_request() -> None:
    # A client no TCP router takes lands in the HTTPS handler; its readTimeout bounds the wait for a request line.
    static, _ = traefik()
    assert static["entryPoints"]["dicom"]["transport"] == {"respondingTimeouts": {"readTimeout": "3s"}}


def test_traefik_catch_all_router_matches_any_sni_and_forwards_to_orthanc() -> None:
    _, dynamic = traefik(sni="any")
    assert set(dynamic["tcp"]["routers"]) == {"any-sni"}  # one router, nothing more
    router = dynamic["tcp"]["routers"]["any-sni"]
    assert router["rule"] == "HostSNI(`*`)"
    assert router["entryPoints"] == ["dicom"]
    assert router["tls"] == {"options": "default"}
    service = dynamic["tcp"]["services"][router["service"]]
    assert service["loadBalancer"]["servers"] == [{"address": "127.0.0.1:41204"}]


def test_traefik_named_router_matches_only_the_server_names() -> None:
    _, dynamic = traefik(sni="named")
    assert set(dynamic["tcp"]["routers"]) == {"sni-orthanc"}
    assert dynamic["tcp"]["routers"]["sni-orthanc"]["rule"] == (
        "HostSNI(`dicom.korthweb.test`) || HostSNI(`dicom2.korthweb.test`)")


def test_traefik_certificate_is_the_server_chain_and_key_and_not_the_default_unless_asked() -> None:
    _, dynamic = traefik()
    assert dynamic["tls"]["certificates"] == [{"certFile": CHAIN, "keyFile": KEY}]
    assert "stores" not in dynamic["tls"]
    _, fixed = traefik(default_certificate=True)
    assert fixed["tls"]["stores"]["default"]["defaultCertificate"] == {"certFile": CHAIN, "keyFile": KEY}


@pytest.mark.parametrize(("client_cert", "auth_type"), [
    ("none", "NoClientCert"),
    ("optional", "VerifyClientCertIfGiven"),
    ("required", "RequireAndVerifyClientCert"),
])
def test_traefik_client_auth_follows_the_client_cert_option(client_cert: str, auth_type: str) -> None:
    _, dynamic = traefik(client_cert=client_cert)
    auth = dynamic["tls"]["options"]["default"]["clientAuth"]
    assert auth["clientAuthType"] == auth_type
    assert auth.get("caFiles") == (None if client_cert == "none" else [CA_BUNDLE])


@pytest.mark.parametrize(("sni_strict", "min_version", "rendered"), [(False, "1.2", "VersionTLS12"),
                                                                     (True, "1.3", "VersionTLS13")])
def test_traefik_default_tls_options_carry_sni_strict_and_min_version(sni_strict: bool, min_version: str,
                                                                      rendered: str) -> None:
    # "default" is what a client without SNI gets, so that is where sniStrict must be for dcmtk to meet it.
    _, dynamic = traefik(sni_strict=sni_strict, min_version=min_version)
    options = dynamic["tls"]["options"]
    assert set(options) == {"default"}
    assert options["default"]["sniStrict"] is sni_strict
    assert options["default"]["minVersion"] == rendered


def test_traefik_passthrough_does_not_terminate_tls() -> None:
    _, dynamic = traefik(passthrough=True)
    assert dynamic["tcp"]["routers"]["any-sni"]["tls"] == {"passthrough": True}
    assert "tls" not in dynamic
    cls = component_class("traefik")
    assert not cls(cls.options_model(passthrough=True)).terminates_tls()
    assert cls(cls.options_model()).terminates_tls()


# --- nginx ------------------------------------------------------------------------------------------------------


def nginx(executable: str = "/bin/false", **options: Any) -> str:
    return launch("nginx", executable, **options).files["nginx.conf"]


def directives(config: str, name: str) -> list[str]:
    """The arguments of every `name ...;` directive in an nginx config."""
    return [m.group(1).strip() for m in re.finditer(rf"^\s*{name}\s+([^;{{}}]*);", config, re.M)]


def test_nginx_writes_nothing_outside_its_working_directory_and_stays_in_the_foreground() -> None:
    config = nginx()
    assert directives(config, "pid") == [f'"{WORKDIR}/nginx.pid"']
    assert directives(config, "error_log") == ["stderr info"]
    assert directives(config, "daemon") == ["off"]
    assert directives(config, "access_log") == [f'"{WORKDIR}/access.log" dicom']
    assert "http {" not in config  # no http block, so no temp paths under /var/lib/nginx


def test_nginx_launch_sets_its_prefix_and_config_and_logs_one_line_per_connection() -> None:
    started = launch("nginx")
    assert started.args == ["-p", WORKDIR, "-c", f"{WORKDIR}/nginx.conf"]
    assert started.connection_log == "access.log"
    log_format = re.search(r"log_format dicom (.*?);", nginx(), re.S)
    assert log_format is not None
    for variable in ("$ssl_preread_server_name", "$ssl_server_name", "$status", "$ssl_protocol",
                     "$ssl_client_verify", "$upstream_addr"):
        assert variable in log_format.group(1)


def fake_nginx(tmp_path: Path, configure: str) -> str:
    """An executable that answers `-V` as a real nginx build does: on stderr."""
    script = tmp_path / "nginx"  # a path of its own per test: stream_module() is cached by path
    script.write_text(f"#!/bin/sh\necho 'nginx version: nginx/1.22.1' >&2\necho 'configure arguments: {configure}' >&2\n")
    script.chmod(0o755)
    return str(script)


def test_nginx_loads_the_stream_module_where_it_is_a_dynamic_module(tmp_path: Path) -> None:
    debian = fake_nginx(tmp_path, "--modules-path=/usr/lib/nginx/modules --with-stream=dynamic --with-stream_ssl_module")
    assert stream_module(debian) == "/usr/lib/nginx/modules/ngx_stream_module.so"
    assert directives(nginx(debian), "load_module") == ['"/usr/lib/nginx/modules/ngx_stream_module.so"']


def test_nginx_built_with_a_static_stream_module_loads_nothing(tmp_path: Path) -> None:
    static = fake_nginx(tmp_path, "--with-stream --with-stream_ssl_module")
    assert stream_module(static) is None
    assert directives(nginx(static), "load_module") == []


def test_nginx_from_its_upstream_image_loads_nothing_as_that_image_builds_the_stream_module_in(
        tmp_path: Path) -> None:
    debian = fake_nginx(tmp_path, "--modules-path=/usr/lib/nginx/modules --with-stream=dynamic")
    upstream = dataclasses.replace(placement(), upstream_image=True)
    config = Nginx(NginxOptions()).launch(upstream, debian).files["nginx.conf"]
    assert directives(config, "load_module") == []


@pytest.mark.parametrize(("client_cert", "verify"), [("none", "off"), ("optional", "optional"), ("required", "on")])
def test_nginx_terminates_tls_with_the_server_certificate_and_verifies_clients_as_asked(client_cert: str,
                                                                                       verify: str) -> None:
    config = nginx(client_cert=client_cert)
    assert directives(config, "listen") == ["127.0.0.1:41104 ssl"]
    assert directives(config, "ssl_certificate") == [f'"{CHAIN}"']
    assert directives(config, "ssl_certificate_key") == [f'"{KEY}"']
    assert directives(config, "ssl_verify_client") == [verify]
    assert directives(config, "ssl_client_certificate") == ([] if verify == "off" else [f'"{CA_BUNDLE}"'])
    assert directives(config, "proxy_pass") == ["orthanc"]
    assert directives(config, "server") == ["127.0.0.1:41204"]
    assert directives(config, "ssl_preread") == []


def test_nginx_keeps_the_users_ssl_protocols_and_ciphers_as_written() -> None:
    config = nginx(protocols=["TLSv1.2", "TLSv1.3"], ciphers="HIGH:!aNULL:!MD5:ECDH+AESGCM")
    assert directives(config, "ssl_protocols") == ["TLSv1.2 TLSv1.3"]
    assert directives(config, "ssl_ciphers") == ['"HIGH:!aNULL:!MD5:ECDH+AESGCM"']


def test_nginx_without_protocols_or_ciphers_leaves_nginx_its_own_defaults() -> None:
    config = nginx(protocols=None)
    assert directives(config, "ssl_protocols") == [] and directives(config, "ssl_ciphers") == []


def test_nginx_protocols_and_ciphers_are_refused_with_passthrough() -> None:
    with pytest.raises(ValidationError, match="only where nginx terminates TLS"):
        NginxOptions(passthrough=True, ciphers="HIGH")


def test_nginx_sni_routing_maps_only_the_server_names_and_leaves_others_without_an_upstream() -> None:
    config = nginx(passthrough=True, sni="named")
    assert directives(config, "listen") == ["127.0.0.1:41104"]  # no ssl: TLS passes through to Orthanc
    assert directives(config, "ssl_preread") == ["on"]
    assert directives(config, "proxy_pass") == ["$dicom_upstream"]
    route = re.search(r"map \$ssl_preread_server_name \$dicom_upstream \{(.*?)\}", config, re.S)
    assert route is not None
    entries = [line.split() for line in route.group(1).strip().splitlines()]
    entries = [e for e in entries if not e[0].startswith("#")]
    assert entries == [['"dicom.korthweb.test"', "orthanc;"], ['"dicom2.korthweb.test"', "orthanc;"],
                       ["default", '"";']]
    assert directives(config, "server") == ["127.0.0.1:41204"]
    assert "ssl_certificate" not in config


def test_nginx_passthrough_for_any_sni_routes_every_client_to_orthanc() -> None:
    config = nginx(passthrough=True, sni="any")
    assert "default orthanc;" in config
    cls = component_class("nginx")
    assert not cls(NginxOptions(passthrough=True)).terminates_tls()


@pytest.mark.parametrize(("options", "message"), [
    ({"sni": "named"}, "needs passthrough"),
    ({"passthrough": True, "client_cert": "required"}, "set client_cert on the server"),
])
def test_nginx_options_that_nginx_cannot_honour_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        NginxOptions(**options)


# --- HAProxy ----------------------------------------------------------------------------------------------------


def haproxy(**options: Any) -> str:
    return launch("haproxy", "/usr/sbin/haproxy", **options).files["haproxy.cfg"]


def bind_line(config: str) -> str:
    (line,) = [l.strip() for l in config.splitlines() if l.strip().startswith("bind ")]
    return line


@pytest.mark.parametrize(("client_cert", "verify"), [("none", "verify none"),
                                                     ("optional", f'verify optional ca-file "{CA_BUNDLE}"'),
                                                     ("required", f'verify required ca-file "{CA_BUNDLE}"')])
def test_haproxy_terminates_tls_with_the_assembled_pem_and_verifies_clients_as_asked(client_cert: str,
                                                                                    verify: str) -> None:
    config = haproxy(client_cert=client_cert)
    assert bind_line(config) == f'bind 127.0.0.1:41104 ssl crt "{WORKDIR}/orthanc.pem" {verify}'
    assert "default_backend orthanc" in config
    assert "server orthanc 127.0.0.1:41204" in config
    assert "mode tcp" in config


def test_haproxy_named_sni_when_terminating_means_strict_sni() -> None:
    assert " strict-sni " in bind_line(haproxy(sni="named"))
    assert "strict-sni" not in bind_line(haproxy(sni="any"))


def test_haproxy_binds_with_the_users_ciphers_and_versions_when_given() -> None:
    line = bind_line(haproxy(ciphers="ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA", ciphersuites="TLS_AES_128_GCM_SHA256",
                             min_version="1.2", max_version="1.3"))
    assert line.endswith(' ciphers "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA" ciphersuites "TLS_AES_128_GCM_SHA256" '
                         "ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3")
    assert "ciphers" not in bind_line(haproxy()) and "ssl-min-ver" not in bind_line(haproxy())


def test_haproxy_refuses_tls_settings_where_it_passes_tls_through() -> None:
    with pytest.raises(ValidationError, match="min_version apply only where HAProxy terminates TLS"):
        component_class("haproxy").options_model(passthrough=True, min_version="1.2")


def test_haproxy_sni_routing_passes_tls_through_to_orthanc_for_the_server_names_only() -> None:
    config = haproxy(passthrough=True, sni="named")
    assert bind_line(config) == "bind 127.0.0.1:41104"
    assert "tcp-request content accept if { req.ssl_hello_type 1 }" in config
    assert 'use_backend orthanc if { req.ssl_sni -i "dicom.korthweb.test" "dicom2.korthweb.test" }' in config
    assert "default_backend" not in config
    assert "crt" not in bind_line(config)


def test_haproxy_passthrough_for_any_sni_has_a_default_backend_and_runs_haproxy_directly() -> None:
    started = launch("haproxy", "/usr/sbin/haproxy", passthrough=True)
    assert "default_backend orthanc" in started.files["haproxy.cfg"]
    assert started.executable == "/usr/sbin/haproxy"
    assert started.args == ["-f", f"{WORKDIR}/haproxy.cfg", "-db"]


def test_haproxy_logs_one_line_per_connection_on_stdout_with_the_sni() -> None:
    config = haproxy()
    assert "log stdout format raw" in config
    assert "sni=%[ssl_fc_sni]" in config
    assert "sni=%[var(sess.sni)]" in haproxy(passthrough=True)
    assert launch("haproxy").connection_log == "output.log"


def test_haproxy_pem_is_assembled_from_the_server_chain_and_key_only() -> None:
    started = launch("haproxy", "/usr/sbin/haproxy")
    assert started.executable == "/bin/sh"
    assert started.args == ["-c", assemble_and_run(1), "haproxy", CHAIN, KEY, f"{WORKDIR}/orthanc.pem",
                            "/usr/sbin/haproxy", f"{WORKDIR}/haproxy.cfg"]
    assert not any("ca-private" in a for a in started.args)


def test_haproxy_assemble_command_writes_chain_then_key_readable_by_the_owner_only(tmp_path: Path) -> None:
    chain, key, pem = tmp_path / "chain.crt", tmp_path / "server.key", tmp_path / "server.pem"
    chain.write_text("CHAIN\n")
    key.write_text("KEY\n")
    # /bin/echo stands in for haproxy: the command must exec it with the config and -db.
    proc = subprocess.run(["/bin/sh", "-c", assemble_and_run(1), "haproxy", str(chain), str(key), str(pem),
                           "/bin/echo", "/cfg with space"], capture_output=True, text=True, check=True)
    assert pem.read_text() == "CHAIN\nKEY\n"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert proc.stdout == "-f /cfg with space -db\n"


def test_haproxy_assemble_command_writes_one_pem_per_site(tmp_path: Path) -> None:
    parts = []
    for site in ("north", "south"):
        (tmp_path / f"{site}.crt").write_text(f"{site} chain\n")
        (tmp_path / f"{site}.key").write_text(f"{site} key\n")
        parts += [str(tmp_path / f"{site}.crt"), str(tmp_path / f"{site}.key"), str(tmp_path / f"{site}.pem")]
    proc = subprocess.run(["/bin/sh", "-c", assemble_and_run(2), "haproxy", *parts, "/bin/echo", "/cfg"],
                          capture_output=True, text=True, check=True)
    assert (tmp_path / "north.pem").read_text() == "north chain\nnorth key\n"
    assert (tmp_path / "south.pem").read_text() == "south chain\nsouth key\n"
    assert stat.S_IMODE((tmp_path / "south.pem").stat().st_mode) == 0o600
    assert proc.stdout == "-f /cfg -db\n"


def test_haproxy_refuses_client_cert_checks_it_would_not_perform() -> None:
    cls = component_class("haproxy")
    with pytest.raises(ValidationError, match="set client_cert on the server"):
        cls.options_model(passthrough=True, client_cert="optional")


# --- all three --------------------------------------------------------------------------------------------------

ALL_CONFIGS = [
    ("traefik", {}), ("traefik", {"client_cert": "required", "sni": "named", "sni_strict": True,
                                  "default_certificate": True}), ("traefik", {"passthrough": True}),
    ("nginx", {}), ("nginx", {"client_cert": "required"}), ("nginx", {"passthrough": True, "sni": "named"}),
    ("haproxy", {}), ("haproxy", {"client_cert": "required", "sni": "named"}),
    ("haproxy", {"passthrough": True, "sni": "named"}),
]


@pytest.mark.parametrize(("kind", "options"), ALL_CONFIGS, ids=lambda v: str(v))
def test_proxy_configs_carry_no_key_material_and_no_ca_private_path(kind: str, options: dict[str, Any]) -> None:
    started = launch(kind, **options)
    assert started.files
    for text in [*started.files.values(), *started.args]:
        assert "PRIVATE KEY" not in text
        assert "ca-private" not in text


@pytest.mark.parametrize(("kind", "options"), ALL_CONFIGS, ids=lambda v: str(v))
def test_proxies_listen_only_on_the_placements_loopback_address(kind: str, options: dict[str, Any]) -> None:
    text = "\n".join(launch(kind, **options).files.values())
    addresses = set(re.findall(r"\b(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?\b", text))
    assert addresses == {"127.0.0.1"}


# --- several DICOM sites behind one proxy -------------------------------------------------------------------------

SITES = (("north", ("north.dicom.test",)), ("south", ("south.dicom.test", "s.dicom.test")))
FILES = placements.pki_layout(SERVER_NAMES, SITES)


def test_traefik_routes_each_site_by_its_names_and_the_rest_to_the_first_site() -> None:
    dynamic = yaml.safe_load(launch("traefik", sites=SITES).files["dynamic.yaml"])
    routers = dynamic["tcp"]["routers"]
    assert routers["any-sni"]["rule"] == "HostSNI(`*`)" and routers["any-sni"]["service"] == "north"
    assert routers["sni-south"]["rule"] == "HostSNI(`south.dicom.test`) || HostSNI(`s.dicom.test`)"
    assert routers["sni-south"]["service"] == "south"
    services = dynamic["tcp"]["services"]
    assert services["north"]["loadBalancer"]["servers"] == [{"address": "127.0.0.1:41204"}]
    assert services["south"]["loadBalancer"]["servers"] == [{"address": "127.0.0.1:41205"}]
    assert dynamic["tls"]["certificates"] == [
        {"certFile": str(FILES.site(site).fullchain), "keyFile": str(FILES.site(site).key)} for site in ("north", "south")]


def test_traefik_named_sites_have_no_catch_all_router() -> None:
    dynamic = yaml.safe_load(launch("traefik", sites=SITES, sni="named").files["dynamic.yaml"])
    assert set(dynamic["tcp"]["routers"]) == {"sni-north", "sni-south"}


def test_nginx_preread_maps_each_sites_names_to_its_upstream() -> None:
    config = launch("nginx", sites=SITES, passthrough=True, sni="named").files["nginx.conf"]
    assert re.search(r"upstream north \{\s*server 127\.0\.0\.1:41204;", config)
    assert re.search(r"upstream south \{\s*server 127\.0\.0\.1:41205;", config)
    assert '"north.dicom.test" north;' in config
    assert '"s.dicom.test" south;' in config
    assert 'default "";' in config
    assert "default north;" in launch("nginx", sites=SITES, passthrough=True).files["nginx.conf"]


def test_nginx_cannot_terminate_tls_for_several_sites() -> None:
    cls = component_class("nginx")
    assert "passthrough: true" in (cls(cls.options_model()).sites_problem(("north", "south")) or "")
    assert cls(cls.options_model(passthrough=True)).sites_problem(("north", "south")) is None
    assert cls(cls.options_model()).sites_problem(()) is None


def test_haproxy_terminates_each_site_with_its_own_certificate_and_backend() -> None:
    started = launch("haproxy", "/usr/sbin/haproxy", sites=SITES)
    config = started.files["haproxy.cfg"]
    assert bind_line(config) == (f'bind 127.0.0.1:41104 ssl crt "{WORKDIR}/north.pem" crt "{WORKDIR}/south.pem" '
                                 "verify none")
    assert 'use_backend south if { ssl_fc_sni -i "south.dicom.test" "s.dicom.test" }' in config
    assert "default_backend north" in config
    assert "server south 127.0.0.1:41205" in config
    north, south = FILES.site("north"), FILES.site("south")
    assert started.args[2:] == ["haproxy", str(north.fullchain), str(north.key), f"{WORKDIR}/north.pem",
                                str(south.fullchain), str(south.key), f"{WORKDIR}/south.pem",
                                "/usr/sbin/haproxy", f"{WORKDIR}/haproxy.cfg"]


def test_haproxy_passthrough_routes_named_sites_only() -> None:
    config = launch("haproxy", sites=SITES, passthrough=True, sni="named").files["haproxy.cfg"]
    assert 'use_backend north if { req.ssl_sni -i "north.dicom.test" }' in config
    assert 'use_backend south if { req.ssl_sni -i "south.dicom.test" "s.dicom.test" }' in config
    assert "default_backend" not in config
