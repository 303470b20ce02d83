"""Components from upstream images: pulled from a real registry on 127.0.0.1, cached, pinned by digest in every
report, and run with nothing assumed inside (the minimal Envoy image has no shell and runs as uid 101).

The real envoyproxy/envoy images cannot be fetched on this machine (no registry reaches it); GitHub's
`regression` job runs those. Every reference here names the test's own registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dicomtls.backends import docker_answers

from .conftest import answers, run_invoke
from .registry import LocalRegistry, minimal_envoy
from .test_docker import ours

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_answers(), reason="no Docker engine answers (install.sh starts one)"),
]

BISECT_VERSIONS = ("1.38.3", "1.39.3", "1.40.0")
BISECT_CELL = "scenario=envoy-cipher-regression environment=envoy-by-version client=pynetdicom"

SCENARIO = """\
name: upstream-envoy
description: Envoy from the registry's envoyproxy/envoy:v1.40.0 (the minimal image) with its default ciphers.
backends: [docker]
pki:
  topology: one-level
  server_names: [dicom.orthweb.test]
environments:
  - name: envoy-upstream
    proxy: {{ kind: envoy, image: {image}, client_cert: optional, sni: any }}
probes:
  - client: pynetdicom
    sni: right
    client_cert: valid
    profile: [default, dcm4che-tls-aes]
    operation: [echo, store-ct]
  - client: dcmtk
    client_cert: valid
    operation: echo
expect:
  - match: {{ profile: dcm4che-tls-aes }}
    outcome: fail
    reason: tls-no-shared-cipher
  - match: {{}}
    outcome: pass
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The registry holding the minimal image as envoyproxy/envoy:vVERSION for each bisect version; no local
    copy of those names exists until dicomtls pulls one."""
    import docker

    client = docker.from_env()
    reg = LocalRegistry(tmp_path_factory.mktemp("registry"))
    reg.start()
    try:
        digests = {v: reg.push(client, minimal_envoy(client, v), "envoyproxy/envoy", f"v{v}") for v in BISECT_VERSIONS}
        yield {"registry": reg, "client": client, "digests": digests}
    finally:
        reg.stop()
        reg.remove_local_tags(client)


def scenario(tmp: Path, image: str) -> Path:
    path = tmp / "upstream-envoy.yaml"
    path.write_text(SCENARIO.format(image=image))
    return path


def matrix(tmp: Path, reg: LocalRegistry, image: str = "upstream") -> dict[str, Any]:
    out = tmp / "out"
    tmp.mkdir(exist_ok=True)
    proc = run_invoke(["matrix", "--backend", "docker", "--scenario", str(scenario(tmp, image)), "--out", str(out)],
                      tmp, DICOMTLS_REGISTRY=reg.host)
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else None
    return {"proc": proc, "results": results, "out": out, "ours_after": ours()}


@pytest.fixture(scope="module")
def pulled_run(registry: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reg: LocalRegistry = registry["registry"]
    before = reg.manifest_requests("envoyproxy/envoy")
    run = matrix(tmp_path_factory.mktemp("pulled"), reg)
    run["manifest_requests"] = reg.manifest_requests("envoyproxy/envoy") - before
    return run


def test_envoy_from_the_registry_runs_every_cell_as_expected(pulled_run: dict[str, Any]) -> None:
    proc = pulled_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    cells = pulled_run["results"]["cells"]
    assert len(cells) == 5 and {c["verdict"] for c in cells} == {"ok"}
    aes = [c for c in cells if c["profile"] == "dcm4che-tls-aes"]
    assert {(c["actual"], c["reason"]) for c in aes} == {("fail", "tls-no-shared-cipher")}
    stored = [c for c in cells if c["operation"] == "store-ct" and c["actual"] == "pass"]
    assert stored and all("holds the sent dataset" in c["detail"] for c in stored)
    assert pulled_run["ours_after"] == ([], [])


def test_the_image_was_pulled_from_the_registry_once(pulled_run: dict[str, Any]) -> None:
    assert pulled_run["manifest_requests"] >= 1


def test_every_report_pins_the_image_by_its_registry_digest(pulled_run: dict[str, Any],
                                                            registry: dict[str, Any]) -> None:
    pinned = f"{registry['registry'].host}/envoyproxy/envoy:v1.40.0@{registry['digests']['1.40.0']}"
    results = pulled_run["results"]
    assert results["environments"][0]["versions"]["envoy"] == f"1.40.0 ({pinned})"
    assert results["run"]["versions"]["envoy"] == f"1.40.0 ({pinned})"
    out: Path = pulled_run["out"]
    assert pinned in (out / "summary.md").read_text()
    assert pinned in (out / "report.html").read_text()
    assert pinned in " ".join(pulled_run["proc"].stdout.split())  # the console wraps long lines


def test_a_tag_the_registry_lacks_is_a_one_line_usage_error(registry: dict[str, Any], tmp_path: Path) -> None:
    image = f"{registry['registry'].host}/envoyproxy/envoy:v9.9.9"
    run = matrix(tmp_path, registry["registry"], image)
    assert run["proc"].returncode == 2
    assert run["proc"].stderr.strip().count("\n") == 0 and image in run["proc"].stderr
    assert "Traceback" not in run["proc"].stderr
    assert run["ours_after"] == ([], [])


def test_a_second_run_with_the_registry_stopped_runs_from_dockers_cache_and_an_absent_image_is_a_usage_error(
        pulled_run: dict[str, Any], registry: dict[str, Any], tmp_path: Path) -> None:
    """Stopped, the registry can serve nothing: the second run passing shows it pulled nothing."""
    reg: LocalRegistry = registry["registry"]
    reg.stop()
    try:
        present = matrix(tmp_path / "present", reg)
        absent_image = f"{reg.host}/envoyproxy/envoy:v1.39.3"  # in the registry, never pulled: not here
        absent = matrix(tmp_path / "absent", reg, absent_image)
    finally:
        reg.start()
    assert present["proc"].returncode == 0, present["proc"].stdout[-3000:] + present["proc"].stderr[-2000:]
    assert answers(present) == answers(pulled_run)
    assert present["results"]["run"]["versions"]["envoy"] == pulled_run["results"]["run"]["versions"]["envoy"]
    assert absent["proc"].returncode == 2
    assert absent["proc"].stderr.strip().count("\n") == 0 and absent_image in absent["proc"].stderr
    assert "cannot be pulled" in absent["proc"].stderr
    assert absent["ours_after"] == ([], [])


def test_bisect_over_three_registry_tags_finds_the_per_version_flip(registry: dict[str, Any],
                                                                    tmp_path: Path) -> None:
    reg: LocalRegistry = registry["registry"]
    args = ["bisect", "--backend", "docker", "--component", "envoy", "--versions", ",".join(BISECT_VERSIONS),
            "--cell", BISECT_CELL, "--out", str(tmp_path / "out")]
    proc = run_invoke(args, tmp_path, DICOMTLS_REGISTRY=reg.host)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "first flip at envoy 1.40.0: 1.39.3 pass → 1.40.0 fail tls-no-shared-cipher" in proc.stdout
    assert "per_version '<1.40' applied" in proc.stdout and "no per_version options applied" in proc.stdout
    for version in ("1.39.3", "1.40.0"):
        pinned = f"{reg.host}/envoyproxy/envoy:v{version}@{registry['digests'][version]}"
        assert f"image {pinned} reports {version}" in proc.stdout
    assert f"pulling {reg.host}/envoyproxy/envoy:v1.38.3" in proc.stdout
    assert "pulls: " in proc.stdout
    assert ours() == ([], [])


FAULTS = """\
name: upstream-envoy-faults
description: The registry's minimal Envoy (no shell, uid 101) restarted and its Orthanc stopped mid-C-STORE.
backends: [docker]
pki:
  server_names: [dicom.orthweb.test]
environments:
  - name: envoy-upstream-faults
    proxy: {{ kind: envoy, image: {image}, client_cert: optional, sni: any }}
probes:
  - client: pynetdicom
    sni: right
    client_cert: valid
    operation: store-large
    fault: [upstream-down, upstream-restart, proxy-restart]
expect:
  - match: {{ fault: upstream-down }}
    outcome: fail
    reason: upstream-unreachable
  - match: {{}}
    outcome: fail
    reason: connection-lost
"""


def test_faults_on_the_minimal_upstream_envoy_are_named_and_every_retry_delivers(registry: dict[str, Any],
                                                                                 tmp_path: Path) -> None:
    """The image has no shell: its holder comes from the dcmtk image, readiness is checked at the holder's address,
    and after the restart its log is followed from then on, so the proxy's own lines still name each fault."""
    path = tmp_path / "upstream-envoy-faults.yaml"
    path.write_text(FAULTS.format(image="upstream"))
    out = tmp_path / "out"
    proc = run_invoke(["matrix", "--backend", "docker", "--scenario", str(path), "--out", str(out)], tmp_path,
                      DICOMTLS_REGISTRY=registry["registry"].host)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert sorted(c["fault"] for c in cells) == ["proxy-restart", "upstream-down", "upstream-restart"]
    for cell in cells:
        assert cell["verdict"] == "ok" and cell["fault_report"]["retry_ok"], (cell["id"], cell["fault_report"])
    down = next(c for c in cells if c["fault"] == "upstream-down")
    assert any("UF" in line or "UH" in line for line in down["evidence"]), down["evidence"]
    assert ours() == ([], [])


@pytest.fixture
def base_from_registry(registry: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The registry serves this machine's own Debian base image as debian:bookworm (as Docker Hub would, to
    GitHub's runners); base images are tagged under a test name, and debootstrap cannot be found, so a run that
    did not pull would fail instead of quietly bootstrapping."""
    import docker

    from dicomtls import images

    client, reg = registry["client"], registry["registry"]
    reg.push(client, f"{images.BASE}:bookworm", "debian", "bookworm")
    monkeypatch.setenv("DICOMTLS_REGISTRY", reg.host)
    monkeypatch.setattr(images, "BASE", "dicomtls-test/debian")
    monkeypatch.setattr(images.shutil, "which", lambda name: None)
    try:
        yield {"client": client, "registry": reg, "images": images}
    finally:
        for tag in ("dicomtls-test/debian:bookworm", f"{reg.host}/debian:bookworm"):
            try:
                client.images.remove(tag)
            except docker.errors.ImageNotFound:
                pass  # the test failed before making it


def test_with_a_registry_named_the_base_image_is_pulled_not_bootstrapped(base_from_registry: dict[str, Any]) -> None:
    client, reg, images = base_from_registry["client"], base_from_registry["registry"], base_from_registry["images"]
    before = reg.manifest_requests("debian")
    said: list[str] = []
    tag = images.ensure_base(client, "bookworm", said.append)
    assert tag == "dicomtls-test/debian:bookworm"
    assert client.images.get(tag).id == client.images.get("dicomtls/debian:bookworm").id
    assert said == [f"pulling {reg.host}/debian:bookworm for {tag}"]
    assert reg.manifest_requests("debian") > before
    assert images.ensure_base(client, "bookworm", said.append) == tag and len(said) == 1  # present: no pull again


def test_a_base_image_the_registry_lacks_falls_back_to_debootstrap(base_from_registry: dict[str, Any]) -> None:
    from dicomtls.errors import UsageError

    said: list[str] = []
    with pytest.raises(UsageError, match="debootstrap not found"):
        base_from_registry["images"].ensure_base(base_from_registry["client"], "trixie", said.append)
    assert said[0].startswith(f"pulling {base_from_registry['registry'].host}/debian:trixie for ")
    assert "failed" in said[1] and said[1].endswith("bootstrapping instead"), said
