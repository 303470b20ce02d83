"""A tree shaped like Orthweb's configuration repository (docker-compose.yaml.local + .env + makefile, nginx.conf,
orthanc.json.local) runs as an nginx environment with the user's ssl_* directives: the seed's
`echoscu +tla -rc +cf ca.crt HOST 11112` passes, the compose images' versions and the run's departure from them
are in every report, and a broken nginx.conf or a missing mount is one line, exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest

from dicomtls.backends import docker_answers
from dicomtls.components.orthanc import OrthancOptions
from dicomtls.manifests import FALLBACK_SERVER_NAME

from .conftest import ROOT, cells, environment, matrix_run, run_invoke
from .registry import LocalRegistry, standin_nginx
from .test_bad_input import assert_one_line_error

pytestmark = pytest.mark.integration

ORTHWEB = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-compose"
ENV = "nginx-nginx-proxy"
ORTHANC_SETTINGS = ('"DicomAet"', '"IngestTranscoding"', '"StorageCompression"')
"""What the real fixture sets that needs OrthancOptions' aet, ingest_transcoding and storage_compression."""
needs_orthanc_options = pytest.mark.skipif(
    not {"aet", "ingest_transcoding", "storage_compression"} <= set(OrthancOptions.model_fields),
    reason="OrthancOptions has no aet/ingest_transcoding/storage_compression yet (branch h-orthanc)")


def orthanc_defaults_tree(tmp: Path) -> Path:
    """The fixture with Orthanc's own AE title and no transcoding: what runs before OrthancOptions takes them."""
    tree = tmp / "orthweb-compose"
    shutil.copytree(ORTHWEB, tree)
    config = tree / "config" / "orthanc" / "orthanc.json.local"
    config.write_text("\n".join(line for line in config.read_text().splitlines()
                                if not line.strip().startswith(ORTHANC_SETTINGS)))
    return tree


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("orthweb-compose-local")
    return matrix_run(tmp, "--backend", "local", "--manifests", str(orthanc_defaults_tree(tmp)))


def assert_orthweb_runs(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert run["leftovers"] == (set(), set())
    assert [(e["name"], e["components"], e["error"]) for e in run["results"]["environments"]] == [
        (ENV, ["orthanc", "nginx"], None)]
    seed = cells(run, environment=ENV, client="dcmtk", sni="none", client_cert="none", server_cert_check="verify",
                 profile="default", client_version="default")
    assert {c["operation"] for c in seed} == {"echo", "store-ct"}
    assert {c["actual"] for c in seed} == {"pass"}, [c["summary"] for c in seed]
    assert "✔ echoscu +tla -rc +cf ca.crt HOST PORT (no SNI)" in proc.stdout


def test_the_orthweb_tree_runs_as_nginx_and_the_seed_command_passes(local_run: dict[str, Any]) -> None:
    assert_orthweb_runs(local_run)


def test_a_standalone_nginx_conf_runs_with_its_protocols_and_ciphers_as_written(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nstream {\n  server {\n    listen 11112 ssl;\n"
                    "    ssl_certificate /etc/ssl/site.pem;\n    ssl_certificate_key /etc/ssl/site.pem;\n"
                    "    ssl_protocols TLSv1.2;\n    ssl_ciphers ECDHE-RSA-AES256-GCM-SHA384;\n"
                    "    proxy_pass orthanc:4242;\n  }\n}\n")
    run = matrix_run(tmp_path, "--backend", "local", "--manifests", str(conf))
    assert run["proc"].returncode == 0, run["proc"].stdout[-3000:] + run["proc"].stderr[-2000:]
    env = environment(run, "nginx-nginx")
    accepted = {version: [s["openssl_name"] for s in suites] for version, suites in env["scan"]["protocols"].items()}
    assert accepted["TLS 1.2"] == ["ECDHE-RSA-AES256-GCM-SHA384"] and accepted["TLS 1.3"] == []
    assert env["server_names"] == [FALLBACK_SERVER_NAME]  # no name in it: the PKI's stand-in
    seed = cells(run, environment="nginx-nginx", client="dcmtk", sni="none", client_cert="none", profile="default",
                 server_cert_check="verify", operation="echo")
    assert {c["actual"] for c in seed} == {"pass"}


def test_the_compose_image_versions_and_the_departure_are_in_every_report(local_run: dict[str, Any]) -> None:
    departure = "compose service nginx-proxy runs nginx:1.27.4; this run used nginx 1.22.1"
    assert any(departure in line for line in environment(local_run, ENV)["unhonoured"])
    assert departure in local_run["proc"].stdout
    for report in ("summary.md", "report.html"):
        assert departure in (local_run["out"] / report).read_text(), report


def test_the_orthweb_https_server_is_the_web_route_and_dicomweb_through_it_passes(local_run: dict[str, Any]) -> None:
    """The seed's `curl https://web…` check, as cells: QIDO-RS, STOW-RS and WADO-RS under its location /orthanc/,
    with and without SNI and a client certificate (the HTTPS server asks for none)."""
    web = cells(local_run, environment=ENV, client="dicomweb")
    assert {(c["sni"], c["client_cert"], c["operation"]) for c in web} == {
        (sni, cert, op) for sni in ("none", "right") for cert in ("none", "valid") for op in ("echo", "store-ct")}
    assert all(c["actual"] == "pass" and "/orthanc/dicom-web/studies?limit=1" in c["command"] for c in web), web


def test_what_nginx_and_orthanc_do_not_reproduce_is_listed_with_file_and_line(local_run: dict[str, Any]) -> None:
    listed = "\n".join(environment(local_run, ENV)["unhonoured"])
    assert "nginx.conf:45: ssl_handshake_timeout 30s: not reproduced" in listed
    assert "nginx.conf:24: location /orthanc/ -> orthanc-service:8042: reproduced as the environment's web route" in listed
    assert "PostgreSQL: PostgreSQL index/storage plugin" in listed


@needs_orthanc_options
def test_the_orthweb_tree_as_it_is_runs_with_its_ae_title_and_transcoding(tmp_path: Path) -> None:
    assert_orthweb_runs(matrix_run(tmp_path, "--backend", "local", "--manifests", str(ORTHWEB)))


on_docker = pytest.mark.skipif(not docker_answers(), reason="no Docker engine answers (install.sh starts one)")


@on_docker
def test_on_docker_the_orthweb_tree_runs_and_states_its_departure(tmp_path: Path) -> None:
    run = matrix_run(tmp_path, "--backend", "docker", "--manifests", str(orthanc_defaults_tree(tmp_path)))
    assert_orthweb_runs(run)
    ran = environment(run, ENV)["versions"]["nginx"]
    assert any(f"runs nginx:1.27.4; this run used nginx {ran}" in line
               for line in environment(run, ENV)["unhonoured"])


@pytest.fixture(scope="module")
def nginx_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry on 127.0.0.1 holding the offline nginx stand-in as nginx:1.27.4 and nginx:1.22.1."""
    import docker

    client = docker.from_env()
    reg = LocalRegistry(tmp_path_factory.mktemp("nginx-registry"))
    reg.start()
    try:
        image = standin_nginx(client)
        for tag in ("1.27.4", "1.22.1"):
            reg.push(client, image, "nginx", tag)
        yield reg
    finally:
        reg.stop()
        reg.remove_local_tags(client)


@on_docker
def test_on_docker_the_nginx_image_the_compose_file_names_runs_from_the_registry_and_its_version_is_stated(
        tmp_path: Path, nginx_registry: LocalRegistry) -> None:
    run = matrix_run(tmp_path, "--backend", "docker", "--manifests", str(orthanc_defaults_tree(tmp_path)),
                     DICOMTLS_REGISTRY=nginx_registry.host)
    assert_orthweb_runs(run)
    ran = environment(run, ENV)["versions"]["nginx"]
    assert ran.startswith(f"1.22.1 ({nginx_registry.host}/nginx:1.27.4@sha256:")  # the stand-in's Debian nginx
    assert nginx_registry.manifest_requests("nginx") >= 1
    lines = [line for line in environment(run, ENV)["unhonoured"] if "compose service nginx-proxy runs" in line]
    assert len(lines) == 1
    assert lines[0].endswith(f"runs nginx:1.27.4; this run used nginx {ran} (its program reports that version)")


@on_docker
def test_on_docker_the_declared_nginx_image_of_the_version_it_runs_states_no_departure(
        tmp_path: Path, nginx_registry: LocalRegistry) -> None:
    tree = orthanc_defaults_tree(tmp_path)
    (tree / ".env").write_text((tree / ".env").read_text().replace("NGINX_IMG=nginx:1.27.4", "NGINX_IMG=nginx:1.22.1"))
    run = matrix_run(tmp_path, "--backend", "docker", "--manifests", str(tree), DICOMTLS_REGISTRY=nginx_registry.host)
    assert_orthweb_runs(run)
    assert environment(run, ENV)["versions"]["nginx"].startswith(f"1.22.1 ({nginx_registry.host}/nginx:1.22.1@")
    assert not [line for line in environment(run, ENV)["unhonoured"] if "compose service nginx-proxy runs" in line]


@on_docker
@needs_orthanc_options
def test_on_docker_the_orthweb_tree_as_it_is_runs_with_its_ae_title_and_transcoding(tmp_path: Path) -> None:
    assert_orthweb_runs(matrix_run(tmp_path, "--backend", "docker", "--manifests", str(ORTHWEB)))


def test_an_nginx_conf_that_does_not_parse_is_one_line_naming_file_and_line(tmp_path: Path,
                                                                            clean_slate: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ORTHWEB, tree)
    conf = tree / "config" / "nginx" / "nginx.conf"
    conf.write_text(conf.read_text().replace("ssl_session_timeout 4h;", "ssl_session_timeout 4h"))
    proc = run_invoke(["matrix", "--manifests", str(tree), "--out", str(tmp_path / "out")], tmp_path)
    assert_one_line_error(proc, "nginx.conf:44: invalid number of arguments in \"ssl_session_timeout\"")


def test_a_compose_file_naming_a_missing_config_is_one_line_naming_file_and_line(tmp_path: Path,
                                                                                 clean_slate: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ORTHWEB, tree)
    compose = tree / "docker-compose.yaml.local"
    compose.write_text(compose.read_text().replace("./config/nginx/nginx.conf:", "./config/nginx/gone.conf:"))
    proc = run_invoke(["matrix", "--manifests", str(tree), "--out", str(tmp_path / "out")], tmp_path)
    assert_one_line_error(proc, "docker-compose.yaml.local:11: services.nginx-proxy.volumes:", "gone.conf does not "
                          "exist")
