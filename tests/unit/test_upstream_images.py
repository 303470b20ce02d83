"""Upstream image references, version lists in scenarios, and bisect over image tags: what is decided before
Docker is asked anything."""

from __future__ import annotations

import pytest

from dicomtls.bisect import BisectResult, Step, _at_version, select_cell
from dicomtls.components import component_class
from dicomtls.errors import UsageError
from dicomtls.scenario import load_scenario, parse_scenario
from dicomtls.upstream_images import _digest, reference
from dicomtls.versions import Installed

SOURCE = "scenarios/under-test.yaml"
VERSIONS = """\
name: under-test
description: a scenario for unit tests
backends: [docker]
pki:
  server_names: [dicom.example.test]
environments:
  - name: edge
    proxy: { kind: envoy, image: upstream, versions: [1.22.5, 1.23.0, 1.25.0] }
probes:
  - client: pynetdicom
    profile: [default, dcm4che-tls-aes]
    environments: [edge]
expect:
  - match: { environment: edge-1-23-0, profile: dcm4che-tls-aes }
    outcome: fail
    reason: tls-no-shared-cipher
  - match: { environment: edge }
    outcome: pass
"""


def envoy(**options: str):  # type: ignore[no-untyped-def]
    cls = component_class("envoy")
    return cls(cls.options_model.model_validate(options))


@pytest.fixture(autouse=True)
def no_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DICOMTLS_REGISTRY", raising=False)


def test_upstream_envoy_is_tagged_by_envoys_v_prefixed_convention() -> None:
    assert reference(envoy(image="upstream", version="1.22.5")) == "envoyproxy/envoy:v1.22.5"
    assert reference(envoy(image="envoyproxy/envoy", version="1.23.0")) == "envoyproxy/envoy:v1.23.0"
    assert reference(envoy(image="istio/proxyv2:1.16.1")) == "istio/proxyv2:1.16.1"


def test_a_named_registry_serves_references_that_name_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOMTLS_REGISTRY", "127.0.0.1:5000")
    assert reference(envoy(image="upstream", version="1.22.5")) == "127.0.0.1:5000/envoyproxy/envoy:v1.22.5"
    assert reference(envoy(image="mirror.example.test/envoyproxy/envoy:v1.25.0")) == \
        "mirror.example.test/envoyproxy/envoy:v1.25.0"
    monkeypatch.setenv("DICOMTLS_REGISTRY", "docker.io")
    assert reference(envoy(image="upstream", version="1.22.5")) == "envoyproxy/envoy:v1.22.5"


def test_a_component_without_a_known_upstream_image_says_so() -> None:
    orthanc = component_class("orthanc")
    with pytest.raises(UsageError, match="orthanc has no known upstream image"):
        reference(orthanc(orthanc.options_model.model_validate({"image": "upstream"})))


def test_the_digest_is_the_registrys_for_the_reference_else_the_image_id() -> None:
    attrs = {"Id": "sha256:local", "RepoDigests": ["other/envoy@sha256:aaa", "127.0.0.1:5000/envoyproxy/envoy@sha256:bbb"]}
    assert _digest(attrs, "127.0.0.1:5000/envoyproxy/envoy:v1.40.0") == "sha256:bbb"
    assert _digest({"Id": "sha256:local", "RepoDigests": []}, "envoyproxy/envoy:v1.40.0") == "sha256:local"


def test_a_versions_list_makes_one_environment_per_version_and_names_apply_to_each() -> None:
    scenario = parse_scenario(VERSIONS, SOURCE)
    assert [(e.name, e.proxy.options["version"]) for e in scenario.environments if e.proxy] == [
        ("edge-1-22-5", "1.22.5"), ("edge-1-23-0", "1.23.0"), ("edge-1-25-0", "1.25.0")]
    outcomes = {(c.environment, c.probe.profile): (c.expected, c.expected_reason) for c in scenario.cells()}
    assert outcomes[("edge-1-23-0", "dcm4che-tls-aes")] == ("fail", "tls-no-shared-cipher")
    assert outcomes[("edge-1-22-5", "dcm4che-tls-aes")] == ("pass", None)
    assert len(outcomes) == 6


def test_versions_and_version_together_are_a_one_line_error() -> None:
    with pytest.raises(UsageError, match="versions is a list of versions, and replaces version"):
        parse_scenario(VERSIONS.replace("image: upstream,", "image: upstream, version: 1.22.5,"), SOURCE)


def test_the_shipped_regression_expects_the_real_1_23_break() -> None:
    scenario = load_scenario("envoy-upstream-regression")
    assert not scenario.default and scenario.backends == ["docker"]
    failing = {(c.environment, c.probe.client, c.probe.profile) for c in scenario.cells()
               if c.expected == "fail"}
    assert failing == {("envoy-1-23-0", "pynetdicom", "dcm4che-tls-aes")}
    assert all("cipher_suites" not in e.proxy.options for e in scenario.environments if e.proxy)


def test_bisect_over_images_asks_for_the_upstream_image_at_each_version() -> None:
    scenario, cell = select_cell("scenario=envoy-cipher-regression environment=envoy-by-version client=pynetdicom",
                                 None)
    variant, applied = _at_version(scenario, cell.environment, "envoy", "1.23.0", image=True)
    proxy = next(e.proxy for e in variant.environments if e.name == "envoy-by-version")
    assert proxy is not None and proxy.options["image"] == "upstream" and proxy.options["version"] == "1.23.0"
    assert applied == ["<1.40"]


def test_bisect_over_images_reports_pulls_and_the_pinned_images() -> None:
    def step(version: str, fresh: bool) -> Step:
        from dicomtls.results import CellResult

        pinned = f"envoyproxy/envoy:v{version}@sha256:{version}"
        result = CellResult.__new__(CellResult)
        result.__dict__.update(actual="pass", reason=None, detail="", command="echo", summary="", evidence=[])
        return Step(version, Installed("envoy", version, version, pinned, fresh, what="image"), result, [])

    result = BisectResult("envoy", "cell", ["1.22.5", "1.23.0"], [step("1.22.5", True), step("1.23.0", False)],
                          backend="docker")
    lines = result.lines()
    assert lines[-1] == "pulls: 1 new, 1 from Docker's cache"


def test_the_local_backend_refuses_a_component_that_names_an_image(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dicomtls.backends.local import LocalBackend

    with pytest.raises(UsageError, match="runs from image envoyproxy/envoy:v1.22.5: use --backend docker"):
        LocalBackend(tmp_path).executable(envoy(image="envoyproxy/envoy:v1.22.5"))


def test_invoke_images_builds_nothing_for_a_component_that_runs_from_an_image(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """install.sh runs `invoke images` over every scenario: the upstream regression's Envoy 1.22.5 has no
    wheel to build from, and must be left to the run that pulls it."""
    from dicomtls import app, images

    asked: list[str] = []
    monkeypatch.setattr(images, "ensure_image", lambda spec, say: asked.append(spec.tag) or spec.tag)
    app.images(["envoy-upstream-regression"], None, None)
    assert "dicomtls/envoy:1.22.5" not in asked and "dicomtls/envoy:1.23.0" not in asked
    assert asked == ["dicomtls/orthanc:1.10.1", "dicomtls/dcmtk:3.6.7"]
