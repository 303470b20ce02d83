"""Files told apart by what they hold, and a compose project read together with the configurations it mounts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dicomtls.errors import UsageError
from dicomtls.manifests.deployment import read_deployment, read_repository
from dicomtls.manifests.haproxy import HaproxyConfig
from dicomtls.manifests.nginx import NginxConfig
from dicomtls.manifests.recognition import FileKind, classify, survey

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "manifests"
ORTHWEB = FIXTURES / "orthweb-compose"


def test_the_orthweb_repository_files_are_found_under_their_real_names() -> None:
    found = {p.relative_to(ORTHWEB).as_posix(): k for p, k in survey(ORTHWEB).items()}
    assert found == {"docker-compose.yaml.local": FileKind.COMPOSE, "config/nginx/nginx.conf": FileKind.NGINX,
                     "config/orthanc/orthanc.json.local": FileKind.ORTHANC}


def test_a_chart_is_one_entry_and_its_templates_are_left_to_helm() -> None:
    found = survey(FIXTURES / "korthweb-helm")
    assert list(found.values()) == [FileKind.HELM_CHART]


@pytest.mark.parametrize(("source", "kind"), [
    ("haproxy/haproxy.cfg", FileKind.HAPROXY),
    ("orthweb-envoy/envoy.yaml", FileKind.ENVOY),
    ("korthweb-traefik/ingressroutetcp.yaml", FileKind.KUBERNETES),
    ("korthweb-helm/Chart.yaml", FileKind.HELM_CHART),
])
def test_content_not_the_name_decides_the_kind(tmp_path: Path, source: str, kind: FileKind) -> None:
    renamed = tmp_path / "settings.txt"
    shutil.copy(FIXTURES / source, renamed)
    assert classify(renamed) is kind


@pytest.mark.parametrize("text", [
    "# a readme\nnginx is used as the proxy; see http {} below\n",
    "include .env\nlocal:\n\tcp a b\n",
    "SITE_NAME=x\n",
    '{"name": "package", "version": "1.0.0"}',
    "image:\n  tag: 1\n",
    "",
])
def test_files_that_hold_no_configuration_the_tool_reads_are_not_classified(tmp_path: Path, text: str) -> None:
    path = tmp_path / "f"
    path.write_text(text)
    assert classify(path) is None


def test_a_binary_file_is_not_classified(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"\x00\x01stream {\xff")
    assert classify(path) is None


def test_an_orthanc_configuration_with_unquoted_variables_is_still_recognised(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_text('{\n  // c\n  "DicomPort": ${PORT},\n}\n')
    assert classify(path) is FileKind.ORTHANC


def test_the_orthweb_deployment_groups_nginx_and_the_orthanc_json_the_makefile_makes() -> None:
    [deployment] = read_repository(ORTHWEB).deployments
    assert deployment.proxy is not None and deployment.proxy.name == "nginx-proxy"
    assert isinstance(deployment.proxy_config, NginxConfig)
    assert deployment.proxy_config.stream_servers[0].ciphers == "HIGH:!aNULL:!MD5:ECDH+AESGCM"
    assert deployment.orthanc_config is not None
    assert deployment.orthanc_config.file.name == "orthanc.json.local"
    assert deployment.orthanc_config.config.dicom_aet == "ORTHWEB"  # from .env through the service's environment
    assert [(p.published, p.target) for p in deployment.dicom_ports] == [(11112, 11112)]
    assert any("is made by the makefile" in n for n in deployment.all_not_reproduced)
    assert any("PostgreSQL" in n for n in deployment.all_not_reproduced)


def haproxy_project(tmp_path: Path, mount: str) -> Path:
    (tmp_path / "haproxy").mkdir()
    shutil.copy(FIXTURES / "haproxy" / "haproxy.cfg", tmp_path / "haproxy" / "haproxy.cfg")
    compose = tmp_path / "compose.yaml"
    compose.write_text(f"services:\n  lb:\n    image: haproxy:2.8\n    ports: ['104:11112', '8404:8404']\n"
                       f"    volumes: ['{mount}']\n  pacs:\n    image: jodogne/orthanc:1.12.4\n")
    return compose


def test_a_haproxy_project_reads_the_configuration_in_its_mounted_directory(tmp_path: Path) -> None:
    deployment = read_deployment(haproxy_project(tmp_path, "./haproxy:/usr/local/etc/haproxy:ro"))
    assert isinstance(deployment.proxy_config, HaproxyConfig)
    assert [(p.published, p.target) for p in deployment.dicom_ports] == [(104, 11112)]
    assert deployment.orthanc is not None and deployment.orthanc_config is None


def test_a_proxy_mounting_no_configuration_is_noted(tmp_path: Path) -> None:
    deployment = read_deployment(haproxy_project(tmp_path, "./certs:/certs:ro"))
    assert deployment.proxy_config is None and deployment.dicom_ports == ()
    assert any("mounts no haproxy configuration" in n for n in deployment.not_reproduced)


def test_a_mounted_file_not_made_yet_is_read_from_its_template_twin(tmp_path: Path) -> None:
    (tmp_path / "orthanc.json.template").write_text('{"DicomAet": "${AET:-SITE}"}')
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  o:\n    image: orthancteam/orthanc:25.1.1\n"
                       "    volumes: ['./orthanc.json:/etc/orthanc/orthanc.json']\n")
    deployment = read_deployment(compose)
    assert deployment.orthanc_config is not None and deployment.orthanc_config.config.dicom_aet == "SITE"
    assert any("does not exist yet: read orthanc.json.template" in n.replace(str(tmp_path) + "/", "")
               for n in deployment.not_reproduced)


def test_the_repository_lists_charts_and_manifests_beside_deployments() -> None:
    repository = read_repository(FIXTURES)
    assert FIXTURES / "korthweb-helm" in repository.charts
    assert FIXTURES / "orthweb-envoy" / "envoy.yaml" in repository.manifests
    assert sorted(str(d.compose.file.relative_to(FIXTURES)) for d in repository.deployments) == [
        "orthweb-compose-mutual/docker-compose.yaml.local", "orthweb-compose/docker-compose.yaml.local"]


def test_surveying_a_file_instead_of_a_directory_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a directory"):
        survey(ORTHWEB / "makefile")


def test_orthanc_settings_the_image_takes_from_its_environment_are_noted(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  o:\n    image: orthancteam/orthanc:25.1.1\n    environment:\n"
                       "      ORTHANC__DICOM_CHECK_CALLED_AET: 'true'\n      ORTHANC_JSON: ''\n      OTHER: x\n")
    notes = read_deployment(compose).not_reproduced
    assert [n.split(": ")[1] for n in notes if "the image turns it" in n] == [
        "services.o.environment.ORTHANC__DICOM_CHECK_CALLED_AET"]


def test_an_envoy_project_hands_its_mounted_bootstrap_to_the_manifest_import(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "orthweb-envoy" / "envoy.yaml", tmp_path / "envoy.yaml")
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  envoy:\n    image: envoyproxy/envoy:v1.22.5\n"
                       "    volumes: ['./envoy.yaml:/etc/envoy/envoy.yaml']\n"
                       "  orthanc:\n    image: osimis/orthanc:22.11.3\n")
    deployment = read_deployment(compose)
    assert deployment.proxy_manifests == (tmp_path.resolve() / "envoy.yaml",)
    assert deployment.proxy is not None and deployment.proxy.image.version == "1.22.5"  # type: ignore[union-attr]
