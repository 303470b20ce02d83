"""The user's own trees, as they are: a Korthweb-shaped GitOps directory and `manual/` file run their DICOM
Gateway by the real Envoy of the Istio twin, everything else listed; a Traefik TLSStore's default certificate
is what a client without SNI is served; a tree with no DICOM proxy is one line, exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dicomtls.backends import docker_answers

from .conftest import ROOT, cells, environment, matrix_run, run_invoke
from .test_bad_input import assert_one_line_error

pytestmark = pytest.mark.integration

FIXTURES = ROOT / "tests" / "fixtures"
GITOPS = FIXTURES / "manifests" / "korthweb-gitops"
MANUAL = FIXTURES / "manifests" / "korthweb-manual" / "orthweb.yaml"
TLSSTORE_SCENARIO = FIXTURES / "scenarios" / "traefik-tlsstore.yaml"
GITOPS_ENV = "istio-gateway-dicom-gateway"
MANUAL_ENV = "istio-gateway-orthweb-dicom-gateway"


@pytest.fixture(scope="module")
def gitops_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("gitops"), "--backend", "local", "--manifests", str(GITOPS))


@pytest.fixture(scope="module")
def manual_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("manual"), "--backend", "local", "--manifests", str(MANUAL))


def test_gitops_tree_starts_its_dicom_gateway_only_and_leaves_nothing_running(gitops_run: dict[str, Any]) -> None:
    proc = gitops_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert gitops_run["leftovers"] == (set(), set())
    assert [(e["name"], e["error"]) for e in gitops_run["results"]["environments"]] == [(GITOPS_ENV, None)]


def test_gitops_wildcard_gateway_lets_dcmtk_without_sni_store(gitops_run: dict[str, Any]) -> None:
    found = cells(gitops_run, environment=GITOPS_ENV, client="dcmtk", sni="none", client_cert="none",
                  server_cert_check="verify", profile="default")
    assert {c["operation"] for c in found} == {"echo", "store-ct"}
    assert {c["actual"] for c in found} == {"pass"}, [c["summary"] for c in found]
    assert all("holds the sent dataset" in c["detail"] for c in found if c["operation"] == "store-ct")


def test_gitops_web_gateway_and_the_other_kinds_are_listed_not_refused(gitops_run: dict[str, Any]) -> None:
    listed = "\n".join(environment(gitops_run, GITOPS_ENV)["unhonoured"])
    assert "Gateway web-gateway): no server with port.protocol TLS (HTTPS only)" in listed
    for kind in ("Deployment orthweb", "Service orthweb", "ConfigMap orthanc-config", "AuthorizationPolicy",
                 "HorizontalPodAutoscaler orthweb", "Certificate orthweb-cert"):
        assert f"{kind}" in listed, kind
    assert "a Kustomization is not read" in listed
    assert "Gateway web-gateway" in gitops_run["proc"].stdout


def test_dcm4che_tls_aes_offer_finds_no_shared_cipher_with_the_gateways_envoy(gitops_run: dict[str, Any]) -> None:
    [cell] = cells(gitops_run, environment=GITOPS_ENV, profile="dcm4che-tls-aes")
    assert (cell["actual"], cell["reason"]) == ("fail", "tls-no-shared-cipher"), cell["summary"]
    assert "AES128-SHA" in cell["summary"]


def test_documented_commands_are_shown_with_their_outcome_on_the_console_and_in_the_summary(
        gitops_run: dict[str, Any]) -> None:
    out = gitops_run["proc"].stdout
    assert f"{GITOPS_ENV}: your documented commands:" in out
    assert "✔ echoscu +tla -rc +cf ca.crt HOST PORT (no SNI)" in out
    assert "✔ echoscu +tla -ic HOST PORT" in out
    assert "✘ storescu -c AET@HOST:PORT --tls12 --tls-aes" in out
    summary = (gitops_run["out"] / "summary.md").read_text()
    assert "- ✔ `echoscu +tla -rc +cf ca.crt HOST PORT` (no SNI)" in summary


def test_manual_single_file_runs_its_dicom_gateway(manual_run: dict[str, Any]) -> None:
    proc = manual_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert manual_run["leftovers"] == (set(), set())
    assert [e["name"] for e in manual_run["results"]["environments"]] == [MANUAL_ENV]
    stores = cells(manual_run, environment=MANUAL_ENV, client="dcmtk", sni="none", client_cert="none",
                   operation="store-ct")
    assert [c["actual"] for c in stores] == ["pass"]
    listed = "\n".join(environment(manual_run, MANUAL_ENV)["unhonoured"])
    assert "Gateway orthweb-web-gateway): no server with port.protocol TLS (HTTPS, HTTP only)" in listed
    # Its cert-manager chain (selfsigned-issuer -> my-ca -> my-ca-issuer -> orthweb-cert) is the run's PKI.
    served = next(c for c in environment(manual_run, MANUAL_ENV)["scan"]["chains"] if c["certificates"])
    assert served["certificates"][0]["issuer"] == "CN=my-ca"
    assert served["certificates"][0]["subject"] == "CN=dicom.korthweb.test"


def test_traefik_tls_store_default_certificate_lets_dcmtk_without_sni_trust_the_proxy(tmp_path: Path) -> None:
    run = matrix_run(tmp_path, "--backend", "local", "--scenario", str(TLSSTORE_SCENARIO))
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert run["leftovers"] == (set(), set())
    assert {c["actual"] for c in cells(run, environment="with-tlsstore", client="dcmtk")} == {"pass"}
    without = cells(run, environment="without-tlsstore", client="dcmtk")
    assert {(c["actual"], c["reason"]) for c in without} == {("fail", "tls-unknown-ca")}
    finding = environment(run, "with-tlsstore")["findings"][0]["text"]
    assert "traefik.containo.us/v1alpha1, the Traefik v2 API group" in finding
    assert "Traefik v2 API group" in proc.stdout


def test_a_tree_with_nothing_carrying_dicom_over_tls_is_one_line_naming_what_it_holds(
        tmp_path: Path, clean_slate: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: orthweb}\n---\n"
                                   "apiVersion: v1\nkind: Service\nmetadata: {name: orthweb}\n")
    proc = run_invoke(["matrix", "--manifests", str(tree), "--out", str(tmp_path / "out")], tmp_path)
    assert_one_line_error(proc, "2 documents (Deployment, Service): none carries DICOM over TLS")


@pytest.mark.skipif(not docker_answers(), reason="no Docker engine answers (install.sh starts one)")
def test_on_docker_a_manifest_run_also_tries_dcmtk_3_6_9_with_sni(tmp_path: Path) -> None:
    run = matrix_run(tmp_path, "--backend", "docker", "--manifests", str(GITOPS))
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    newer = cells(run, environment=GITOPS_ENV, client="dcmtk", client_version="3.6.9")
    assert {(c["sni"], c["client_cert"], c["actual"]) for c in newer} == {("right", "none", "pass"),
                                                                         ("right", "valid", "pass")}
    assert "✔ echoscu +tla --request-sni NAME -rc +cf ca.crt HOST PORT (dcmtk 3.6.9, with SNI)" in proc.stdout
