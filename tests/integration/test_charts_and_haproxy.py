"""The user's Helm chart and haproxy.cfg as they are, run on the local backend: a Korthweb-shaped chart rendered by
Helm (default values, and with --set changing its HostSNI), HAProxy frontends as environments, fixes proven on the
user's haproxy.cfg and on a chart's values.yaml whose patches apply; and their bad input one line, exit 2, nothing
left running."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dicomtls.backends import docker_answers
from dicomtls.scenario import EnvironmentConfig

from .conftest import ROOT, cells, environment, leftovers_under, matrix_run, run_invoke
from .test_bad_input import assert_one_line_error

pytestmark = pytest.mark.integration

MANIFESTS = ROOT / "tests" / "fixtures" / "manifests"
CHART = MANIFESTS / "korthweb-helm"
HAPROXY = MANIFESTS / "haproxy" / "haproxy.cfg"
MTLS = MANIFESTS / "haproxy-mtls"
CHART_ENV = "traefik-release-orthanc-dicom"


@pytest.fixture(scope="module")
def chart_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("chart"), "--backend", "local", "--manifests", str(CHART))


@pytest.fixture(scope="module")
def haproxy_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("haproxy"), "--backend", "local", "--manifests", str(HAPROXY))


def test_a_korthweb_chart_renders_and_runs_its_ingress_route_with_the_values_host(chart_run: dict[str, Any]) -> None:
    proc = chart_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert chart_run["leftovers"] == (set(), set())
    env = environment(chart_run, CHART_ENV)
    assert env["server_names"] == ["dicom.korthweb.test"]
    with_sni = cells(chart_run, environment=CHART_ENV, client="pynetdicom", sni="right", client_cert="none",
                     profile="default")
    assert {c["actual"] for c in with_sni} == {"pass"}
    assert any("dependency traefik 26.0.0 ships Traefik v2" in line and "a departure" in line
               for line in env["unhonoured"])


def test_set_changes_the_host_the_chart_routes_and_the_run_follows_it(tmp_path: Path) -> None:
    run = matrix_run(tmp_path, "--backend", "local", "--manifests", str(CHART), "--set",
                     "dicom.hostSNI=pacs.hospital.test")
    assert run["proc"].returncode == 0, run["proc"].stdout[-3000:] + run["proc"].stderr[-2000:]
    env = environment(run, CHART_ENV)
    assert env["server_names"] == ["pacs.hospital.test"]
    assert env["manifests"]["set"] == ["dicom.hostSNI=pacs.hospital.test"]
    again = EnvironmentConfig.model_validate({"name": CHART_ENV, "manifests": env["manifests"]})
    assert again.proxy is not None and again.unhonoured == tuple(env["unhonoured"])
    with_sni = cells(run, environment=CHART_ENV, client="pynetdicom", sni="right", client_cert="none",
                     profile="default")
    assert {c["actual"] for c in with_sni} == {"pass"}
    assert run["leftovers"] == (set(), set())


def test_each_haproxy_frontend_runs_as_an_environment(haproxy_run: dict[str, Any]) -> None:
    proc = haproxy_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert haproxy_run["leftovers"] == (set(), set())
    terminating = cells(haproxy_run, environment="haproxy-dicom-tls", client="pynetdicom", client_cert="valid",
                        sni="right", profile="default")
    assert {c["actual"] for c in terminating} == {"pass"}
    untrusted = cells(haproxy_run, environment="haproxy-dicom-tls", client_cert="untrusted")
    assert {c["reason"] for c in untrusted} == {"tls-unknown-ca"}  # verify optional still checks what is sent
    for site in ("orthanc-a", "orthanc-b"):
        routed = cells(haproxy_run, environment="haproxy-dicom-sni", sni=site)
        assert {(c["actual"], c.get("site")) for c in routed} == {("pass", site)}


def test_a_fix_proven_on_haproxy_cfg_is_a_patch_that_applies_to_the_users_file(tmp_path: Path) -> None:
    run = matrix_run(tmp_path / "fix", "--backend", "local", "--try-fixes", "--manifests", str(MTLS))
    assert run["proc"].returncode == 0, run["proc"].stdout[-3000:] + run["proc"].stderr[-2000:]
    assert run["leftovers"] == (set(), set())
    trials = [t for c in run["results"]["fixes"]["cells"] if c["reason"] == "tls-cert-required" for t in c["trials"]
              if t["candidate"]["id"] == "client-cert-optional"]
    assert trials and {t["mark"] for t in trials} == {"passes"}
    patch_file = run["out"] / trials[0]["patch"]
    assert "+    bind :11112 ssl crt orthanc.pem ca-file modalities-ca.crt verify optional" in patch_file.read_text()
    holder = tmp_path / "user"
    shutil.copytree(MTLS, holder / MTLS.name)
    applied = subprocess.run(["patch", "-p1", "--forward", "-i", str(patch_file)], cwd=holder, capture_output=True,
                             text=True)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (holder / MTLS.name / "haproxy.cfg").read_text() == \
        (run["out"] / trials[0]["tree"] / "haproxy.cfg").read_text()
    cipher = next(t for c in run["results"]["fixes"]["cells"] if c["environment"] == "haproxy-dicom-modalities"
                  and c["reason"] == "tls-no-shared-cipher" for t in c["trials"]
                  if t["candidate"]["id"] == "add-cipher-aes128-sha")
    assert (cipher["after"], cipher["mark"]) == ("pass", "breaks")  # ⚠: B.10 and B.11 no longer hold
    assert "+    bind :11113 ssl crt orthanc.pem ciphers ECDHE-ECDSA-AES128-GCM-SHA256:" in \
        (run["out"] / cipher["patch"]).read_text()
    dry = subprocess.run(["patch", "-p1", "--dry-run", "-i", str(run["out"] / cipher["patch"])], cwd=holder,
                         capture_output=True, text=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr


def test_a_fix_proven_on_a_chart_is_a_values_patch_that_applies_to_the_users_chart(tmp_path: Path) -> None:
    chart = tmp_path / "user" / "orthanc"
    shutil.copytree(CHART, chart)
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace("clientAuthType: NoClientCert",
                                                 "clientAuthType: RequireAndVerifyClientCert"))
    original = tmp_path / "original"
    shutil.copytree(chart.parent, original)
    run = matrix_run(tmp_path / "fix", "--backend", "local", "--try-fixes", "--manifests", str(chart))
    assert run["proc"].returncode == 0, run["proc"].stdout[-3000:] + run["proc"].stderr[-2000:]
    assert run["leftovers"] == (set(), set())
    trials = [t for c in run["results"]["fixes"]["cells"] if c["cell"] == "pynetdicom sni=right cert=none echo"
              for t in c["trials"] if t["candidate"]["id"] == "client-cert-optional"]
    assert trials and {t["mark"] for t in trials} == {"passes"}
    patch_file = run["out"] / trials[0]["patch"]
    assert "+    clientAuthType: VerifyClientCertIfGiven" in patch_file.read_text()
    applied = subprocess.run(["patch", "-p1", "--forward", "-i", str(patch_file)], cwd=original,
                             capture_output=True, text=True)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (original / "orthanc" / "values.yaml").read_text() == \
        (run["out"] / trials[0]["tree"] / "values.yaml").read_text()
    assert values.read_text() != (original / "orthanc" / "values.yaml").read_text(), "the user's chart is untouched"


def _chart_with(tmp_path: Path, template: str) -> Path:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: orthanc\nversion: 0.1.0\n")
    (chart / "templates" / "route.yaml").write_text(template)
    return chart


def test_a_chart_that_fails_to_render_is_one_line_naming_the_template_and_line(tmp_path: Path,
                                                                                clean_slate: Path) -> None:
    chart = _chart_with(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.x | nosuch }}\n")
    proc = run_invoke(["matrix", "--backend", "local", "--manifests", str(chart), "--out", str(tmp_path / "out")],
                      tmp_path)
    assert_one_line_error(proc, "templates/route.yaml:4", "Helm cannot render the chart")
    assert leftovers_under(tmp_path) == (set(), set())


def test_a_haproxy_cfg_that_does_not_parse_is_one_line_naming_file_and_line(tmp_path: Path,
                                                                             clean_slate: Path) -> None:
    bad = tmp_path / "haproxy.cfg"
    bad.write_text(HAPROXY.read_text().replace("bind :11112 ssl crt /usr", "bind :11112 ssl crt \"/usr"))
    proc = run_invoke(["matrix", "--backend", "local", "--manifests", str(bad), "--out", str(tmp_path / "out")],
                      tmp_path)
    assert_one_line_error(proc, "haproxy.cfg:17", "unmatched quote")
    assert leftovers_under(tmp_path) == (set(), set())


@pytest.mark.parametrize(("option", "needles"), [
    (["--values", "missing-values.yaml"], ("--values missing-values.yaml: no such file",)),
    (["--set", "dicom.hostSNI"], ("--set dicom.hostSNI: write KEY=VALUE",)),
    (["--set", "dicom.ports[x]=1"], ("--set dicom.ports[x]=1: Helm cannot parse it",)),
])
def test_values_and_sets_helm_would_refuse_are_one_line(tmp_path: Path, clean_slate: Path, option: list[str],
                                                         needles: tuple[str, ...]) -> None:
    proc = run_invoke(["matrix", "--backend", "local", "--manifests", str(CHART), *option, "--out",
                       str(tmp_path / "out")], tmp_path)
    assert_one_line_error(proc, *needles)
    assert leftovers_under(tmp_path) == (set(), set())


@pytest.mark.skipif(not docker_answers(), reason="no Docker engine answers (install.sh starts one)")
def test_on_docker_haproxy_frontends_run_and_dcmtk_3_6_9_with_sni_reaches_them(tmp_path: Path) -> None:
    run = matrix_run(tmp_path, "--backend", "docker", "--manifests", str(HAPROXY))
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    for env in ("haproxy-dicom-tls", "haproxy-dicom-sni"):
        newer = cells(run, environment=env, client="dcmtk", client_version="3.6.9")
        assert {(c["client_cert"], c["actual"]) for c in newer} == {("none", "pass"), ("valid", "pass")}
    assert {c.get("site") for c in cells(run, environment="haproxy-dicom-sni", client_version="3.6.9")} == \
        {"orthanc-a"}


def test_a_values_file_that_is_not_yaml_is_one_line_naming_its_line(tmp_path: Path, clean_slate: Path) -> None:
    values = tmp_path / "prod-values.yaml"
    values.write_text("dicom:\n  hostSNI: [pacs.hospital.test\n")
    proc = run_invoke(["matrix", "--backend", "local", "--manifests", str(CHART), "--values", str(values), "--out",
                       str(tmp_path / "out")], tmp_path)
    assert_one_line_error(proc, "prod-values.yaml:2", "not a values file Helm reads")
    assert leftovers_under(tmp_path) == (set(), set())
