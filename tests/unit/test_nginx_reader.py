"""nginx configurations read with crossplane (NGINX's parser) into the TLS servers they run."""

from __future__ import annotations

from pathlib import Path

import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomtls.errors import UsageError
from dicomtls.manifests.nginx import default_protocols, read_nginx

ROOT = Path(__file__).resolve().parents[2]
ORTHWEB = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-compose"
ORTHWEB_NGINX = ORTHWEB / "config" / "nginx" / "nginx.conf"


STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
real_nginx = pytest.mark.skipif(shutil.which("nginx") is None or not STREAM_MODULE.exists(),
                                reason="needs the nginx binary with its stream module")


def nginx_accepts(tmp_path: Path, text: str) -> bool:
    """`nginx -t` on ``text`` (the stream module loaded as Debian loads it); nothing in it may name a host but
    loopback, since nginx resolves upstream names at configuration time."""
    prefix = tmp_path / "nginx-t"
    prefix.mkdir(exist_ok=True)
    path = prefix / "nginx.conf"
    path.write_text(f"load_module {STREAM_MODULE};\n{text}")
    ran = subprocess.run(["nginx", "-t", "-q", "-c", str(path), "-p", str(prefix), "-e", "stderr",
                          "-g", f"pid {prefix}/nginx.pid;"], capture_output=True, text=True, timeout=30)
    return ran.returncode == 0


def conf(tmp_path: Path, text: str, name: str = "nginx.conf") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_orthweb_stream_server_terminates_dicom_tls_with_its_protocols_and_ciphers() -> None:
    config = read_nginx(ORTHWEB_NGINX)
    [server] = config.stream_servers
    assert server.ports == (11112,) and server.terminates_tls
    assert server.protocols == ("TLSv1.2", "TLSv1.3")
    assert server.ciphers == "HIGH:!aNULL:!MD5:ECDH+AESGCM"
    assert server.certificates == server.certificate_keys == ("/etc/nginx/site.pem",)
    assert server.verify_client is None and server.client_certificate is None
    assert server.proxy_pass is not None and server.proxy_pass.servers == ("orthanc-service:4242",)


def test_every_setting_names_the_file_and_line_it_came_from() -> None:
    [server] = read_nginx(ORTHWEB_NGINX).stream_servers
    assert server.settings["ssl_ciphers"].line == line_of(ORTHWEB_NGINX, "ssl_ciphers HIGH")
    assert server.settings["ssl_ciphers"].file == ORTHWEB_NGINX
    assert server.listen[0].at.line == line_of(ORTHWEB_NGINX, "listen 11112 ssl")


def test_directives_the_tool_cannot_reproduce_are_listed_with_their_line() -> None:
    [server] = read_nginx(ORTHWEB_NGINX).stream_servers
    line = line_of(ORTHWEB_NGINX, "ssl_session_timeout")
    assert any(note.endswith(f"nginx.conf:{line}: ssl_session_timeout 4h: not reproduced")
               for note in server.not_reproduced)


def test_https_servers_are_kept_apart_from_the_dicom_stream_servers() -> None:
    config = read_nginx(ORTHWEB_NGINX)
    [https] = config.http_servers
    assert https.context == "http" and https.ports == (443,)
    assert https.server_names == ("orthweb.example.test",)
    assert any("location /orthanc/" in note for note in https.not_reproduced)


def test_an_absolute_include_is_a_container_path_and_only_noted() -> None:
    config = read_nginx(ORTHWEB_NGINX)
    assert any("include /etc/nginx/mime.types: not found here" in note for note in config.not_reproduced)


def test_an_absolute_include_is_read_through_the_compose_mount(tmp_path: Path) -> None:
    main = conf(tmp_path, "events {}\nstream { include /etc/nginx/stream.d/*.conf; }\n")
    conf(tmp_path, "server { listen 11112 ssl; ssl_certificate /c.pem; ssl_certificate_key /c.pem;\n"
                   "  proxy_pass orthanc:4242; }\n", "host-stream/dicom.conf")
    config = read_nginx(main, mounts={"/etc/nginx/stream.d": tmp_path / "host-stream"})
    [server] = config.stream_servers
    assert server.at.file == tmp_path / "host-stream" / "dicom.conf" and server.at.line == 1


def test_a_relative_include_is_resolved_from_the_main_files_directory(tmp_path: Path) -> None:
    main = conf(tmp_path, "events {}\nstream {\n  include dicom/*.conf;\n}\n")
    conf(tmp_path, "\nserver { listen 127.0.0.1:11112 ssl; ssl_certificate /c.pem; ssl_certificate_key /k.pem;\n"
                   "  proxy_pass orthanc:4242; }\n", "dicom/a.conf")
    [server] = read_nginx(main).stream_servers
    assert server.listen[0].address == "127.0.0.1" and server.at.line == 2


@pytest.mark.parametrize(("listen", "address", "port"), [
    ("11112 ssl", None, 11112), ("*:11112 ssl", None, 11112), ("[::]:11112 ssl", "::", 11112),
    ("127.0.0.1:104 ssl reuseport", "127.0.0.1", 104),
])
def test_listen_addresses_are_read_as_nginx_reads_them(tmp_path: Path, listen: str, address: str | None,
                                                       port: int) -> None:
    path = conf(tmp_path, f"events {{}}\nstream {{ server {{ listen {listen}; ssl_certificate /c;\n"
                          "  ssl_certificate_key /k; proxy_pass o:4242; } }\n")
    [server] = read_nginx(path).stream_servers
    assert (server.listen[0].address, server.listen[0].port, server.terminates_tls) == (address, port, True)


def test_tls_settings_of_the_stream_block_are_inherited_by_its_servers(tmp_path: Path) -> None:
    path = conf(tmp_path, """events {}
stream {
  ssl_protocols TLSv1.3;
  ssl_certificate /c.pem;
  ssl_certificate_key /k.pem;
  server { listen 11112 ssl; proxy_pass orthanc:4242; }
  server { listen 11113 ssl; ssl_protocols TLSv1.2; proxy_pass orthanc:4242; }
}
""")
    first, second = read_nginx(path).stream_servers
    assert first.protocols == ("TLSv1.3",) and first.settings["ssl_protocols"].line == 3
    assert second.protocols == ("TLSv1.2",) and second.settings["ssl_protocols"].line == 7
    assert first.certificates == ("/c.pem",)


def test_client_verification_settings_are_read(tmp_path: Path) -> None:
    path = conf(tmp_path, """events {}
stream {
  server {
    listen 11112 ssl;
    ssl_certificate /c.pem; ssl_certificate_key /k.pem;
    ssl_verify_client optional;
    ssl_client_certificate /ca.pem;
    ssl_trusted_certificate /more-ca.pem;
    ssl_crl /crl.pem;
    ssl_verify_depth 2;
    ssl_prefer_server_ciphers on;
    proxy_pass orthanc:4242;
  }
}
""")
    [server] = read_nginx(path).stream_servers
    assert (server.verify_client, server.client_certificate, server.trusted_certificate, server.crl) == (
        "optional", "/ca.pem", "/more-ca.pem", "/crl.pem")
    assert server.verify_depth == 2 and server.prefer_server_ciphers is True


def test_sni_routing_by_preread_map_resolves_upstream_blocks(tmp_path: Path) -> None:
    path = conf(tmp_path, """events {}
stream {
  upstream site_a { server orthanc-a:4242; }
  map $ssl_preread_server_name $backend {
    hostnames;
    a.example.test site_a;
    b.example.test orthanc-b:4242;
    default orthanc-a:4242;
  }
  server { listen 11112; ssl_preread on; proxy_pass $backend; }
}
""")
    [server] = read_nginx(path).stream_servers
    assert server.preread and not server.terminates_tls
    routes = {r.server_name: r.destination.servers for r in server.sni_routes}
    assert routes == {"a.example.test": ("orthanc-a:4242",), "b.example.test": ("orthanc-b:4242",),
                      "default": ("orthanc-a:4242",)}
    assert server.sni_routes[0].at.line == 6


def test_a_plain_tcp_stream_server_is_noted_not_read(tmp_path: Path) -> None:
    path = conf(tmp_path, "events {}\nstream { server { listen 4242; proxy_pass orthanc:4242; } }\n")
    config = read_nginx(path)
    assert config.stream_servers == ()
    assert any("plain TCP" in note for note in config.not_reproduced)


REFUSED = [
    ("events {}\nstream {\n  server { listen 11112 ssl\n }\n", 3, "not terminated by \";\""),
    ("events {}\nstream {\n  server { listen 11112 ssl; }\n", 3, "unexpected end of file"),
    ("events {}\nhttp {\n  ssl_preread on;\n}\n", 3, "not allowed here"),
    ("events {}\nstream {\n  server {\n    listen;\n  }\n}\n", 4, "invalid number of arguments"),
    ("events {}\nstream {\n  server { listen 11112 ssl; proxy_pass 127.0.0.1:4242; }\n}\n", 3,
     "listens with ssl but no ssl_certificate"),
    ("events {}\nstream {\n  server { listen 11112; ssl_preread on;\n    proxy_pass $nowhere; }\n}\n", 4,
     "proxy_pass \\$nowhere: no `map"),
    ("events {}\nstream {\n  server { listen 11112 ssl; ssl_certificate /c; ssl_certificate_key /k;\n"
     "    ssl_verify_client sometimes; proxy_pass 127.0.0.1:4242; }\n}\n", 4, "ssl_verify_client sometimes"),
]


@pytest.mark.parametrize(("text", "line", "says"), REFUSED)
def test_a_configuration_nginx_refuses_is_a_usage_error_with_file_and_line(
        tmp_path: Path, text: str, line: int, says: str) -> None:
    path = conf(tmp_path, text)
    with pytest.raises(UsageError, match=rf"nginx.conf:{line}: .*{says}"):
        read_nginx(path)


@real_nginx
@pytest.mark.parametrize("text", [text for text, _, _ in REFUSED])
def test_what_the_reader_refuses_real_nginx_refuses_too(tmp_path: Path, text: str) -> None:
    assert not nginx_accepts(tmp_path, text)


@real_nginx
def test_the_orthweb_fixture_is_a_configuration_real_nginx_accepts(tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t",
                    "-keyout", tmp_path / "key", "-out", tmp_path / "crt"], check=True, capture_output=True)
    (tmp_path / "site.pem").write_text((tmp_path / "key").read_text() + (tmp_path / "crt").read_text())
    text = ORTHWEB_NGINX.read_text().replace("user nginx;", "").replace("/var/log/nginx/error.log", "stderr")
    text = text.replace("/etc/nginx/site.pem", str(tmp_path / "site.pem")).replace("orthanc-service", "127.0.0.1")
    assert nginx_accepts(tmp_path, text.replace("keycloak-service", "127.0.0.1"))


def test_proxy_pass_without_port_or_upstream_is_a_usage_error(tmp_path: Path) -> None:
    path = conf(tmp_path, "events {}\nstream {\n  server { listen 11112 ssl; ssl_certificate /c;\n"
                          "    ssl_certificate_key /k; proxy_pass orthanc; }\n}\n")
    with pytest.raises(UsageError, match=r"nginx.conf:4: proxy_pass orthanc: no port"):
        read_nginx(path)


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such nginx configuration file"):
        read_nginx(tmp_path / "absent.conf")


@pytest.mark.parametrize(("version", "expected"), [
    ("1.22.1", ("TLSv1", "TLSv1.1", "TLSv1.2")),
    ("1.23.4", ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
    ("1.27.2", ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
    ("1.27.3", ("TLSv1.2", "TLSv1.3")),
    ("1.27.4", ("TLSv1.2", "TLSv1.3")),
])
def test_unset_ssl_protocols_mean_the_default_of_the_nginx_version(version: str, expected: tuple[str, ...]) -> None:
    assert default_protocols(version) == expected


NGINX_TOKENS = ["server", "listen", "11112", "ssl", "{", "}", ";", "stream", "http", "map", "upstream", "include",
                "$ssl_preread_server_name", "$backend", "proxy_pass", "ssl_preread", "on", "ssl_verify_client",
                "maybe", "ssl_protocols", "ssl_certificate", "[::]:1", "unix:/s", "'", '"', "\\", "#", "", "ü",
                "hostnames", "default", "a:0", "*:99999"]


@st.composite
def mutated_nginx(draw: st.DrawFn) -> str:
    lines = ORTHWEB_NGINX.read_text().splitlines()
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "insert", "replace", "truncate"]))
        if action == "delete" and len(lines) > 1:
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action in ("insert", "replace"):
            parts = lines[i].split(" ")
            k = draw(st.integers(0, len(parts) - 1))
            parts[k:k + (action == "replace")] = [draw(st.one_of(st.sampled_from(NGINX_TOKENS), st.text(max_size=6)))]
            lines[i] = " ".join(parts)
        else:
            lines[i] = lines[i][:draw(st.integers(0, len(lines[i])))]
    return "\n".join(lines) + "\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated_nginx())
def test_every_mutated_nginx_configuration_ends_in_a_model_or_a_one_line_usage_error(tmp_path: Path,
                                                                                     text: str) -> None:
    path = conf(tmp_path, text)
    try:
        config = read_nginx(path)
    except UsageError as exc:
        assert "\n" not in str(exc) and "nginx.conf" in str(exc)
    else:
        assert all(s.terminates_tls or s.preread for s in config.stream_servers)
