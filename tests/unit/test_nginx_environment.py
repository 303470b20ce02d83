"""A user's nginx.conf and the compose project around it, as the environments `--manifests` runs: the ssl_*
directives as written, client verification, SNI passthrough, what is replaced and what is only recorded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dicomtls.errors import UsageError
from dicomtls.manifests import FALLBACK_SERVER_NAME, manifest_files, server_names, translate_files
from dicomtls.manifests.image_versions import DeclaredImage, departures
from dicomtls.manifests.recognition import FileKind
from dicomtls.manifests.translators import translated_kinds, translates
from dicomtls.manifests.translation import Translation

ROOT = Path(__file__).resolve().parents[2]
ORTHWEB = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-compose"
NGINX_CONF = ORTHWEB / "config" / "nginx" / "nginx.conf"


def standalone(tmp_path: Path, stream: str) -> list[Translation]:
    path = tmp_path / "nginx.conf"
    path.write_text(f"events {{}}\nstream {{\n{stream}\n}}\n")
    return translate_files(manifest_files(path))


def line_of(path: Path, text: str, after: str = "") -> int:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines[start:], start + 1) if text in line)


def test_the_orthweb_tree_is_one_nginx_environment_with_its_ssl_directives_as_written() -> None:
    [t] = translate_files(manifest_files(ORTHWEB))
    assert t.resource == "NginxServer/nginx-proxy"
    assert t.proxy == {"kind": "nginx", "client_cert": "none", "protocols": ["TLSv1.2", "TLSv1.3"],
                       "ciphers": "HIGH:!aNULL:!MD5:ECDH+AESGCM", "declared_image": "nginx:1.27.4",
                       "web": True, "web_path": "/orthanc/"}
    assert t.sites == ()


def test_the_compose_project_reads_its_nginx_conf_once_not_again_as_a_file_of_its_own() -> None:
    translations = translate_files(manifest_files(ORTHWEB))
    assert len(translations) == 1
    assert {f.name for f in translations[0].files} == {"docker-compose.yaml.local", ".env", "nginx.conf",
                                                        "orthanc.json.local"}


def test_the_orthweb_orthanc_configuration_fills_the_server_options() -> None:
    [t] = translate_files(manifest_files(ORTHWEB))
    assert t.server == {"kind": "orthanc", "aet": "ORTHWEB", "ingest_transcoding": "1.2.840.10008.1.2.4.80",
                        "storage_compression": True, "dicomweb_plugin": True}


def test_replaced_files_and_unreproduced_directives_are_unhonoured_lines_with_file_and_line() -> None:
    [t] = translate_files(manifest_files(ORTHWEB))
    listed = "\n".join(t.unhonoured)
    assert f"nginx.conf:{line_of(NGINX_CONF, 'ssl_session_timeout')}: ssl_session_timeout 4h: not reproduced" in listed
    assert f"nginx.conf:{line_of(NGINX_CONF, 'ssl_certificate /etc', after='stream {')}: ssl_certificate: replaced by the " \
           "generated PKI" in listed
    assert f"nginx.conf:{line_of(NGINX_CONF, 'proxy_pass orthanc-service')}: proxy_pass orthanc-service:4242: " \
           "pointed at the environment's Orthanc" in listed
    for plugin in ("PostgreSQL", "Authorization", "OrthancExplorer2"):
        assert f": {plugin}: " in listed, plugin
    assert "services.keycloak-service (quay.io/keycloak/keycloak:26.0.7): not run" in listed


def test_the_https_location_to_the_dicom_server_s_host_becomes_the_web_route_and_the_others_are_listed() -> None:
    [t] = translate_files(manifest_files(ORTHWEB))
    orthanc = line_of(NGINX_CONF, "location /orthanc/")
    assert f"nginx.conf:{orthanc}: location /orthanc/ -> orthanc-service:8042: reproduced as the environment's web " \
           "route" in "\n".join(t.unhonoured)
    keycloak = line_of(NGINX_CONF, "location /keycloak/")
    assert any(u.endswith(f"nginx.conf:{keycloak}: location /keycloak/ -> keycloak-service:8080: not reproduced")
               for u in t.unhonoured)


def test_an_https_server_to_another_host_is_not_a_web_route(tmp_path: Path) -> None:
    path = tmp_path / "nginx.conf"
    path.write_text("events {}\nhttp { server { listen 443 ssl; ssl_certificate /c.pem; ssl_certificate_key /c.pem;\n"
                    "location / { proxy_pass http://elsewhere:80/; } } }\n"
                    "stream { server { listen 11112 ssl; ssl_certificate /c.pem; ssl_certificate_key /c.pem;\n"
                    "proxy_pass orthanc:4242; } }\n")
    [t] = translate_files(manifest_files(path))
    assert "web" not in t.proxy and "dicomweb_plugin" not in t.server
    assert any("http server on port 443 with ssl: not reproduced (none of its locations proxies to the DICOM "
               "server's host orthanc)" in u for u in t.unhonoured)


def test_a_stream_server_without_server_name_takes_the_names_its_certificate_serves_over_https() -> None:
    [t] = translate_files(manifest_files(ORTHWEB))
    assert t.server_names == ("orthweb.example.test",)


def test_without_any_name_the_pki_uses_the_fallback_name(tmp_path: Path) -> None:
    found = standalone(tmp_path, "server { listen 11112 ssl; ssl_certificate /c.pem; ssl_certificate_key /c.pem;\n"
                                 "  proxy_pass orthanc:4242; }")
    assert found[0].server_names == () and server_names(found) == [FALLBACK_SERVER_NAME]


def test_the_compose_images_are_recorded() -> None:
    [t] = translate_files(manifest_files(ORTHWEB))
    assert [(i.kind, i.reference, i.version) for i in t.images] == [
        ("nginx", "nginx:1.27.4", "1.27.4"), ("orthanc", "orthancteam/orthanc:25.1.1", "25.1.1")]
    assert t.images[0].where.endswith("docker-compose.yaml.local:3: compose service nginx-proxy")


@pytest.mark.parametrize(("verify", "client_cert"), [("on", "required"), ("optional", "optional"),
                                                      ("optional_no_ca", "optional"), ("off", "none")])
def test_ssl_verify_client_becomes_the_client_certificate_policy(tmp_path: Path, verify: str,
                                                                 client_cert: str) -> None:
    [t] = standalone(tmp_path, f"server {{ listen 11112 ssl; ssl_certificate /c.pem; ssl_certificate_key /c.pem;\n"
                               f"  ssl_verify_client {verify}; ssl_client_certificate /ca.pem; proxy_pass o:4242; }}")
    assert t.proxy["client_cert"] == client_cert
    assert any("ssl_client_certificate: replaced by the generated PKI's CA bundle" in u for u in t.unhonoured)


def test_without_ssl_protocols_nginx_keeps_its_own_default(tmp_path: Path) -> None:
    [t] = standalone(tmp_path, "server { listen 11112 ssl; ssl_certificate /c.pem; ssl_certificate_key /c.pem;\n"
                               "  proxy_pass o:4242; }")
    assert t.proxy["protocols"] is None and "ciphers" not in t.proxy


def test_protocols_and_ciphers_inherited_from_the_stream_block_are_kept(tmp_path: Path) -> None:
    [t] = standalone(tmp_path, "ssl_protocols TLSv1.2;\nssl_ciphers AES128-SHA;\n"
                               "server { listen 11112 ssl; ssl_certificate /c.pem; ssl_certificate_key /c.pem;\n"
                               "  proxy_pass o:4242; }")
    assert t.proxy["protocols"] == ["TLSv1.2"] and t.proxy["ciphers"] == "AES128-SHA"


def test_ssl_preread_with_a_map_passes_through_to_one_orthanc_per_upstream(tmp_path: Path) -> None:
    [t] = standalone(tmp_path, "map $ssl_preread_server_name $up {\n  dicom.a.test a;\n  dicom.b.test b:11112;\n"
                               "  default a;\n}\nupstream a { server 10.0.0.1:11112; }\n"
                               "server { listen 11112; ssl_preread on; proxy_pass $up; }")
    assert t.proxy == {"kind": "nginx", "passthrough": True, "sni": "any"}
    assert t.server == {"kind": "orthanc", "tls": True, "client_cert": "optional"}
    assert t.sites == (("a", ("dicom.a.test",)), ("b", ("dicom.b.test",)))
    assert set(t.server_names) == {"dicom.a.test", "dicom.b.test"}


def test_ssl_preread_without_a_default_route_routes_only_the_named_hosts(tmp_path: Path) -> None:
    [t] = standalone(tmp_path, "map $ssl_preread_server_name $up {\n  dicom.a.test a:11112;\n}\n"
                               "server { listen 11112; ssl_preread on; proxy_pass $up; }")
    assert t.proxy["sni"] == "named" and t.sites == () and t.server_names == ("dicom.a.test",)


def test_each_tls_stream_server_is_an_environment_named_by_its_port(tmp_path: Path) -> None:
    found = standalone(tmp_path, "ssl_certificate /c.pem; ssl_certificate_key /c.pem;\n"
                                 "server { listen 11112 ssl; proxy_pass o:4242; }\n"
                                 "server { listen 2762 ssl; proxy_pass o:4242; }\n"
                                 "server { listen 104; proxy_pass o:4242; }")
    assert [t.resource for t in found] == ["NginxServer/nginx-11112", "NginxServer/nginx-2762"]
    assert any("stream server without ssl or ssl_preread (plain TCP): not read" in u for u in found[0].unhonoured)


def test_a_standalone_nginx_conf_in_a_directory_is_found_by_its_content(tmp_path: Path) -> None:
    (tmp_path / "proxy").mkdir()
    shutil.copy(NGINX_CONF, tmp_path / "proxy" / "default")
    [t] = translate_files(manifest_files(tmp_path))
    assert t.resource == "NginxServer/default"
    assert t.server == {"kind": "orthanc", "dicomweb_plugin": True} and t.images == ()


def test_an_orthanc_configuration_no_compose_service_mounts_is_listed(tmp_path: Path) -> None:
    shutil.copy(NGINX_CONF, tmp_path / "nginx.conf")
    shutil.copy(ORTHWEB / "config" / "orthanc" / "orthanc.json.local", tmp_path / "orthanc.json")
    files = [*manifest_files(tmp_path), tmp_path / "orthanc.json"]
    [t] = translate_files(files)
    assert any("orthanc.json: an Orthanc configuration no compose service mounts: not read" in u
               for u in t.unhonoured)


def test_an_nginx_conf_that_does_not_parse_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "nginx.conf"
    path.write_text("events {}\nstream {\n  server { listen 11112 ssl;\n}\n")
    with pytest.raises(UsageError, match=r"nginx.conf:4: unexpected end of file"):
        translate_files(manifest_files(tmp_path))


def test_a_compose_file_mounting_a_missing_configuration_names_the_mount(tmp_path: Path) -> None:
    shutil.copytree(ORTHWEB, tmp_path / "tree")
    compose = tmp_path / "tree" / "docker-compose.yaml.local"
    compose.write_text(compose.read_text().replace("./config/nginx/nginx.conf:", "./config/nginx/gone.conf:"))
    line = line_of(compose, "gone.conf")
    with pytest.raises(UsageError, match=rf"docker-compose.yaml.local:{line}: services.nginx-proxy.volumes: .*gone"
                                         r".conf does not exist"):
        translate_files(manifest_files(tmp_path / "tree"))


def test_a_certificate_the_makefile_has_not_made_yet_is_not_an_error() -> None:
    assert not (ORTHWEB / "config" / "certs" / "orthweb.example.test.pem").exists()
    assert translate_files(manifest_files(ORTHWEB))


def test_every_configuration_kind_recognised_has_one_translator_and_a_second_is_refused() -> None:
    assert {FileKind.COMPOSE, FileKind.NGINX} <= translated_kinds()
    with pytest.raises(ValueError, match="two translators for nginx files"):
        translates(FileKind.NGINX)(lambda path, deployment: [])


def test_the_run_states_where_it_used_another_version_than_the_image() -> None:
    images = [DeclaredImage(kind="nginx", reference="nginx:1.27.4", version="1.27.4", where="c.yaml:3: compose "
                            "service nginx-proxy"),
              DeclaredImage(kind="orthanc", reference="jodogne/orthanc:1.10.1", version="1.10.1", where="c.yaml:9")]
    assert departures(images, {"nginx": ["1.22.1"], "orthanc": ["1.10.1"]}) == [
        "c.yaml:3: compose service nginx-proxy runs nginx:1.27.4; this run used nginx 1.22.1 (the version this "
        "backend has)"]


def test_a_run_of_the_declared_image_states_no_departure_and_a_mislabelled_one_says_what_it_ran() -> None:
    images = [DeclaredImage(kind="nginx", reference="nginx:1.27.4", version="1.27.4", where="c.yaml:3: compose "
                            "service nginx-proxy")]
    assert departures(images, {"nginx": ["1.27.4 (127.0.0.1:5000/nginx:1.27.4@sha256:ab)"]}) == []
    assert departures(images, {"nginx": ["1.22.1 (127.0.0.1:5000/nginx:1.27.4@sha256:ab)"]}) == [
        "c.yaml:3: compose service nginx-proxy runs nginx:1.27.4; this run used nginx 1.22.1 "
        "(127.0.0.1:5000/nginx:1.27.4@sha256:ab) (its program reports that version)"]


def test_the_compose_proxy_image_is_declared_for_the_docker_backend_to_run() -> None:
    [t] = translate_files(manifest_files(ORTHWEB))
    assert t.proxy["declared_image"] == "nginx:1.27.4"
    assert "declared_image" not in t.server  # no upstream Orthanc image is known to dicomtls


def test_a_compose_file_the_makefile_copied_runs_once(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ORTHWEB, tree)
    shutil.copy(tree / "docker-compose.yaml.local", tree / "docker-compose.yaml")  # `make local` was run
    [t] = translate_files(manifest_files(tree))
    assert any("docker-compose.yaml.local: runs the same configuration as " in u
               and u.endswith("/docker-compose.yaml: not run twice") for u in t.unhonoured)


def test_a_project_mounting_whole_configuration_directories_as_orthweb_does_is_read(tmp_path: Path) -> None:
    """The shape of Orthweb's configuration repository: `$VAR` images, config/nginx/ and config/orthanc/ mounted as
    directories, the certificate mounted outside /etc/nginx and not made yet."""
    (tmp_path / "config" / "orthanc").mkdir(parents=True)
    (tmp_path / "config" / "nginx").mkdir()
    (tmp_path / ".env").write_text("NGINX_DOCKER_IMAGE=nginx:1.27.3\nORTHANC_DOCKER_IMAGE=orthancteam/orthanc:25.1.1\n"
                                   "SITE_KEY_CERT_FILE=config/certs/site.pem\n")
    (tmp_path / "docker-compose.yaml.local").write_text(
        "services:\n  nginx-proxy:\n    image: $NGINX_DOCKER_IMAGE\n    ports: [443:443, 11112:11112]\n"
        "    volumes:\n      - ./$SITE_KEY_CERT_FILE:/usr/local/nginx/conf/site.pem:ro\n"
        "      - ./config/nginx/:/etc/nginx/:ro\n"
        "  orthanc-service:\n    image: $ORTHANC_DOCKER_IMAGE\n    command: /etc/orthanc/\n"
        "    volumes: ['./config/orthanc/:/etc/orthanc/']\n")
    (tmp_path / "config" / "nginx" / "nginx.conf").write_text(
        NGINX_CONF.read_text().replace("/etc/nginx/site.pem", "/usr/local/nginx/conf/site.pem"))
    (tmp_path / "config" / "orthanc" / "orthanc.json.local").write_text('{\n  "DicomAet": "ORTHANC_DCM"\n}\n')
    (tmp_path / "config" / "orthanc" / "ohif.js").write_text("window.config = {};\n")
    [t] = translate_files(manifest_files(tmp_path))
    assert t.proxy["ciphers"] == "HIGH:!aNULL:!MD5:ECDH+AESGCM" and t.server == {"kind": "orthanc",
                                                                              "aet": "ORTHANC_DCM",
                                                                              "dicomweb_plugin": True}
    assert [i.reference for i in t.images] == ["nginx:1.27.3", "orthancteam/orthanc:25.1.1"]
    assert any("include /etc/nginx/mime.types: not found here (no such file in the directory mounted there)" in u
               for u in t.unhonoured)
