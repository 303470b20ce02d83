"""Helm charts through --manifests: the chart's directory rendered by Helm with --values/--set, the rendered
documents read like any manifests, and the environment's source recording what it was rendered with."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dicomtls.errors import UsageError
from dicomtls.fixes import chart_values
from dicomtls.fixes import traefik as traefik_fix
from dicomtls.fixes.candidates import Edit, NotApplicable
from dicomtls.manifests import ChartValues, manifest_files, read_manifests, translate, translate_files
from dicomtls.scenario import EnvironmentConfig, manifest_scenario

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "tests" / "fixtures" / "manifests" / "korthweb-helm"


def test_a_chart_renders_to_the_ingress_route_its_values_name() -> None:
    [t] = translate(read_manifests(manifest_files(CHART)))
    assert t.resource == "IngressRouteTCP/release-orthanc-dicom"
    assert t.server_names == ("dicom.korthweb.test",)
    assert t.proxy["min_version"] == "1.2"


def test_set_and_values_files_change_what_the_chart_renders_later_ones_winning(tmp_path: Path) -> None:
    values = tmp_path / "prod.yaml"
    values.write_text("dicom:\n  hostSNI: pacs.prod.test\n  tls:\n    clientAuthType: RequireAndVerifyClientCert\n")
    [t] = translate(read_manifests([CHART], ChartValues((values,), ("dicom.hostSNI=pacs.set.test",))))
    assert t.server_names == ("pacs.set.test",)
    assert t.proxy["client_cert"] == "required"


def test_missing_subcharts_are_listed_with_their_version_and_the_traefik_major_departure() -> None:
    [t] = translate(read_manifests([CHART]))
    assert any("Chart.yaml:8: dependency traefik 26.0.0 (Traefik v2): not in charts/" in line for line in t.unhonoured)
    assert any("Chart.yaml:12: dependency postgresql-ha 12.3.1" in line for line in t.unhonoured)
    assert any("dependency traefik 26.0.0 ships Traefik v2; this run uses Traefik" in line and "a departure" in line
               for line in t.unhonoured)


def test_a_rendered_resource_is_named_by_its_template() -> None:
    [t] = translate(read_manifests([CHART]))
    assert any(line.endswith("korthweb-helm/templates/service.yaml (rendered by Helm, document 1, Service "
                             "release-orthanc): v1 Service is not read") for line in t.unhonoured)


def test_a_tree_with_a_chart_and_other_manifests_renders_the_chart_and_reads_the_rest(tmp_path: Path) -> None:
    chart = tmp_path / "helm" / "orthanc"
    shutil.copytree(CHART, chart)
    other = tmp_path / "vm" / "haproxy.cfg"
    other.parent.mkdir()
    shutil.copy(ROOT / "tests" / "fixtures" / "manifests" / "haproxy-mtls" / "haproxy.cfg", other)
    assert manifest_files(tmp_path) == [chart, other]
    assert sorted(t.resource for t in translate_files(manifest_files(tmp_path))) == [
        "HAProxyFrontend/dicom_modalities", "HAProxyFrontend/dicom_mtls", "IngressRouteTCP/release-orthanc-dicom"]


def test_the_scenario_records_the_values_and_renders_the_same_when_rebuilt(tmp_path: Path) -> None:
    values = tmp_path / "prod.yaml"
    values.write_text("dicom:\n  tls:\n    minVersion: VersionTLS13\n")
    scenario = manifest_scenario(CHART, values=ChartValues((values,), ("dicom.hostSNI=pacs.set.test",)))
    [env] = scenario.environments
    assert env.manifests is not None
    assert env.manifests.values == [str(values)] and env.manifests.set == ["dicom.hostSNI=pacs.set.test"]
    source = yaml.safe_load(yaml.safe_dump(env.manifests.model_dump(mode="json")))
    rebuilt = EnvironmentConfig.model_validate({"name": env.name, "manifests": source})
    assert rebuilt.proxy == env.proxy
    assert env.proxy is not None and env.proxy.options["min_version"] == "1.3"
    assert scenario.pki.server_names == ["pacs.set.test"]


def test_values_without_a_chart_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="holds no Helm chart"):
        manifest_scenario(ROOT / "tests" / "fixtures" / "manifests" / "haproxy",
                          values=ChartValues(sets=("a=b",)))


def test_a_chart_that_fails_to_render_names_the_template_and_line(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: bad\nversion: 0.1.0\n")
    (tmp_path / "templates" / "cm.yaml").write_text("kind: ConfigMap\nmetadata:\n  name: {{ .Values.x | nosuch }}\n")
    with pytest.raises(UsageError, match=r"templates/cm.yaml:3: Helm cannot render the chart"):
        read_manifests(manifest_files(tmp_path))


# --- fixes written into the chart's values -----------------------------------------------------------------------


def _chart_requiring_client_certificates(tmp_path: Path) -> Path:
    chart = tmp_path / "orthanc"
    shutil.copytree(CHART, chart)
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace("clientAuthType: NoClientCert",
                                                 "clientAuthType: RequireAndVerifyClientCert"))
    return chart


def test_a_fix_on_a_rendered_resource_is_written_to_the_values_key_that_renders_it(tmp_path: Path) -> None:
    chart = _chart_requiring_client_certificates(tmp_path)
    [(path, text)] = chart_values.apply(traefik_fix, [chart], "IngressRouteTCP/release-orthanc-dicom",
                                        (Edit("client-cert-optional"),), ChartValues()).items()
    assert path == chart / "values.yaml"
    old, new = (chart / "values.yaml").read_text().splitlines(), text.splitlines()
    assert [(a, b) for a, b in zip(old, new, strict=True) if a != b] == [
        ("    clientAuthType: RequireAndVerifyClientCert", "    clientAuthType: VerifyClientCertIfGiven")]


def test_a_fix_the_templates_cannot_render_is_not_applicable(tmp_path: Path) -> None:
    with pytest.raises(NotApplicable, match=r"adds an item to spec.routes, which the chart's templates do not render"):
        chart_values.apply(traefik_fix, [CHART], "IngressRouteTCP/release-orthanc-dicom", (Edit("catch-all-route"),),
                           ChartValues())


def test_a_value_given_with_set_is_to_be_changed_there(tmp_path: Path) -> None:
    with pytest.raises(NotApplicable, match=r"dicom.tls.clientAuthType comes from --set"):
        chart_values.apply(traefik_fix, [CHART], "IngressRouteTCP/release-orthanc-dicom",
                           (Edit("client-cert-optional"),),
                           ChartValues(sets=("dicom.tls.clientAuthType=RequireAndVerifyClientCert",)))
