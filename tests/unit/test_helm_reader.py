"""Helm charts rendered by Helm's own engine (the helm binary or Helm's Go SDK), as `helm template` renders them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dicomtls.errors import UsageError
from dicomtls.manifests import read_manifests, translate
from dicomtls.manifests.helm import render_chart

ROOT = Path(__file__).resolve().parents[2]
KORTHWEB = ROOT / "tests" / "fixtures" / "manifests" / "korthweb-helm"


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    """A copy of the Korthweb-shaped chart that a test may break."""
    return Path(shutil.copytree(KORTHWEB, tmp_path / "orthanc"))


def kinds(rendered) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {d["kind"]: d for _, d in rendered.documents}


def test_the_chart_renders_with_hostsni_and_secret_name_from_its_values() -> None:
    rendered = render_chart(KORTHWEB, release="korthweb")
    route = kinds(rendered)["IngressRouteTCP"]
    assert route["spec"]["routes"][0]["match"] == "HostSNI(`dicom.korthweb.test`)"
    assert route["spec"]["tls"]["secretName"] == "orthanc-dicom-tls"
    assert route["metadata"]["name"] == "korthweb-orthanc-dicom"
    assert (rendered.name, rendered.version) == ("orthanc", "0.3.0")


def test_set_and_values_files_override_the_charts_values_as_helm_template_does(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("dicom:\n  hostSNI: from-file.test\n  tls: {sniStrict: true}\n")
    rendered = render_chart(KORTHWEB, values=[site], set_values=["dicom.tls.secretName=from-set"])
    found = kinds(rendered)
    assert found["IngressRouteTCP"]["spec"]["routes"][0]["match"] == "HostSNI(`from-file.test`)"
    assert found["IngressRouteTCP"]["spec"]["tls"]["secretName"] == "from-set"
    option = found["TLSOption"]["spec"]
    assert option["sniStrict"] is True and option["minVersion"] == "VersionTLS12"  # the rest of the chart's values


def test_missing_subcharts_are_skipped_and_listed_with_their_version() -> None:
    rendered = render_chart(KORTHWEB)
    assert [(d.name, d.version) for d in rendered.missing] == [("traefik", "26.0.0"), ("postgresql-ha", "12.3.1")]
    traefik = rendered.missing[0]
    assert traefik.traefik_major == 2 and traefik.at.line == 8
    assert any("dependency traefik 26.0.0 (Traefik v2): not in charts/" in n for n in rendered.not_reproduced)


def test_generated_key_material_never_reaches_the_rendered_text() -> None:
    rendered = render_chart(KORTHWEB)
    secret = kinds(rendered)["Secret"]  # the last one, a leaf signed by the chart's genCA
    secrets = [d for _, d in rendered.documents if d["kind"] == "Secret"]
    assert [s["metadata"]["name"] for s in secrets] == ["orthanc-ca", "orthanc-dicom-tls", "orthanc-web-tls"]
    assert secret["data"] == {"tls.crt": "REDACTED", "tls.key": "REDACTED", "ca.crt": "REDACTED"}
    assert "PRIVATE KEY" not in rendered.text and "LS0t" not in rendered.text


def test_the_rendered_documents_are_read_by_the_manifest_import(tmp_path: Path) -> None:
    rendered = render_chart(KORTHWEB, release="korthweb")
    [translation] = translate(read_manifests([rendered.write(tmp_path / "rendered.yaml")]))
    assert translation.resource == "IngressRouteTCP/korthweb-orthanc-dicom"
    assert translation.server_names == ("dicom.korthweb.test",)
    assert translation.proxy["client_cert"] == "none" and translation.proxy["sni"] == "named"


def test_an_undefined_template_function_is_a_usage_error_naming_file_and_line(chart: Path) -> None:
    template = chart / "templates" / "ingressroute.yaml"
    template.write_text(template.read_text().replace(".Values.dicom.entryPoint }}",
                                                     ".Values.dicom.entryPoint | nosuchfn }}"))
    line = next(i for i, t in enumerate(template.read_text().splitlines(), 1) if "nosuchfn" in t)
    with pytest.raises(UsageError, match=rf"orthanc/templates/ingressroute.yaml:{line}: Helm cannot render .*nosuchfn"):
        render_chart(chart)


def test_a_nil_value_in_a_template_is_a_usage_error_naming_file_and_line(chart: Path) -> None:
    (chart / "templates" / "broken.yaml").write_text("kind: A\nname: {{ .Values.nothing.here.at.all }}\n")
    with pytest.raises(UsageError, match=r"orthanc/templates/broken.yaml:2: Helm cannot render .*nil pointer"):
        render_chart(chart)


def test_a_template_rendering_to_invalid_yaml_is_a_usage_error(chart: Path) -> None:
    (chart / "templates" / "broken.yaml").write_text("a: [\n")
    with pytest.raises(UsageError, match=r"orthanc/templates/broken.yaml: renders to invalid YAML"):
        render_chart(chart)


def test_a_values_file_helm_cannot_read_is_a_usage_error_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dicom:\n  hostSNI: [\n")
    with pytest.raises(UsageError, match=r"bad.yaml:\d+: not a values file Helm reads"):
        render_chart(KORTHWEB, values=[bad])


def test_a_set_expression_helm_cannot_parse_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"--set dicom.hostSNI: Helm cannot parse it \(key \"hostSNI\" has no value\)"):
        render_chart(KORTHWEB, set_values=["dicom.hostSNI"])


def test_an_invalid_chart_yaml_is_a_usage_error_with_its_line(chart: Path) -> None:
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: [\n")
    with pytest.raises(UsageError, match=r"Chart.yaml:\d+: not valid YAML"):
        render_chart(chart)


def test_a_directory_without_chart_yaml_is_not_a_chart(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a Helm chart"):
        render_chart(tmp_path)


@pytest.mark.skipif(shutil.which("helm") is None, reason="no helm binary on PATH (the SDK path is tested above)")
def test_the_helm_binary_renders_the_same_routes_as_the_sdk() -> None:
    rendered = render_chart(KORTHWEB, release="korthweb")
    assert rendered.engine.startswith("helm v")
    assert kinds(rendered)["IngressRouteTCP"]["spec"]["routes"][0]["match"] == "HostSNI(`dicom.korthweb.test`)"
