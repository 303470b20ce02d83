"""Faults on the path, injected into real environments: diagnosed from the proxy's own line, nothing lost.

One local run of the faults scenario (every proxy, every fault) and one small Docker run (HAProxy, which resolves
its upstream once, so a restarted Orthanc must keep its address) serve all the assertions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dicomtls.backends import docker_answers

from .conftest import matrix_run

pytestmark = pytest.mark.integration

PROXIES = {"envoy", "istio-gateway", "traefik", "nginx", "haproxy"}


@pytest.fixture(scope="module")
def faults_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("faults"), "--backend", "local", "--scenario", "faults")


def fault_cells(run: dict[str, Any]) -> list[dict[str, Any]]:
    found = [c for c in run["results"]["cells"] if c["fault"] != "none"]
    assert found, "the run has no fault cells"
    return found


def test_faults_scenario_exits_zero_with_every_fault_cell_as_expected(faults_run: dict[str, Any]) -> None:
    proc = faults_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    cells = fault_cells(faults_run)
    assert {c["verdict"] for c in cells} == {"ok"}
    assert {(c["fault"], c["reason"]) for c in cells} == {
        ("upstream-down", "upstream-unreachable"), ("upstream-restart", "connection-lost"),
        ("proxy-restart", "connection-lost")}
    assert {e["components"][-1] for e in faults_run["results"]["environments"]} == PROXIES
    assert faults_run["leftovers"] == (set(), set())


def test_every_retry_is_in_orthanc_exactly_once_and_the_interrupted_attempt_was_not_stored(
        faults_run: dict[str, Any]) -> None:
    for cell in fault_cells(faults_run):
        report = cell["fault_report"]
        assert report["retry_ok"], (cell["id"], report)
        assert "exactly once: Orthanc instance" in report["retry"] and "holds the sent dataset" in report["retry"]
        assert report["interrupted"].startswith("not in Orthanc"), (cell["id"], report)


def test_upstream_down_is_named_from_each_proxys_own_line(faults_run: dict[str, Any]) -> None:
    for cell in fault_cells(faults_run):
        if cell["fault"] == "upstream-down":
            proxy = cell["environment"].removesuffix("-faults")
            proxy = "istio-gateway" if proxy == "istio" else proxy
            logged = cell["fault_report"]["proxy_logged"]
            assert logged.startswith(proxy), (cell["id"], logged)
            assert any(w in logged for w in ("flags=UF", "Error while dialing backend", "connect() failed", "/-1/"))


BROKEN_PATH_WORDS = ("Connection closed while waiting for DIMSE message", "Association Aborted (A-P-ABORT)")


def test_restarts_kill_mid_transfer_and_say_what_the_client_saw(faults_run: dict[str, Any]) -> None:
    for cell in fault_cells(faults_run):
        report = cell["fault_report"]
        if cell["fault"] != "upstream-down":
            assert "killed (as a crash) after the first fragment" in report["injected"], report
            # pynetdicom's own words for the broken path: the close read first, or a send that failed first and
            # aborted the association (which comes first is the kernel's race, seen both ways on Envoy).
            assert any(words in report["client_saw"] for words in BROKEN_PATH_WORDS), report
        # Envoy and HAProxy log a connection when it closes, so a killed one has nothing to say about it (Traefik
        # and nginx log its start).
        if cell["fault"] == "proxy-restart" and cell["environment"] in ("envoy-faults", "istio-faults",
                                                                         "haproxy-faults"):
            assert report["proxy_logged"].startswith("nothing: it was killed"), report


def test_reports_have_a_faults_section(faults_run: dict[str, Any]) -> None:
    out: Path = faults_run["out"]
    assert "### Faults" in (out / "summary.md").read_text()
    assert '<section id="faults">' in (out / "report.html").read_text()
    assert "retry delivered" in faults_run["proc"].stdout


@pytest.mark.skipif(not docker_answers(), reason="no Docker engine answers (install.sh starts one)")
def test_docker_restarts_keep_orthancs_address_and_lose_nothing(tmp_path: Path) -> None:
    small = tmp_path / "faults-haproxy.yaml"
    small.write_text(
        "name: faults-haproxy\ndescription: the faults scenario's HAProxy, pynetdicom only\ndefault: false\n"
        "pki: { server_names: [dicom.korthweb.test] }\n"
        "environments:\n  - name: haproxy-faults\n    proxy: { kind: haproxy, client_cert: optional }\n"
        "probes:\n  - client: pynetdicom\n    sni: right\n    client_cert: valid\n    operation: store-large\n"
        "    fault: [upstream-down, upstream-restart, proxy-restart]\n"
        "expect:\n  - match: { fault: upstream-down }\n    outcome: fail\n    reason: upstream-unreachable\n"
        "  - match: {}\n    outcome: fail\n    reason: connection-lost\n")
    run = matrix_run(tmp_path, "--backend", "docker", "--scenario", str(small))
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    for cell in fault_cells(run):
        assert cell["verdict"] == "ok" and cell["fault_report"]["retry_ok"], (cell["id"], cell["fault_report"])
    import docker

    left = docker.from_env().api.containers(all=True, filters={"label": "dicomtls"})
    assert not [c["Names"] for c in left if str(tmp_path) in str(c.get("Mounts"))], "containers left behind"
