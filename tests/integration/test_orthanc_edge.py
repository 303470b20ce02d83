"""An edge Orthanc (this machine's, one per cell) as the DICOM TLS client through the orthanc-edge scenario, on the
local backend and on Docker: it gets through Envoy's current defaults and stores the very object sent, is closed by
the proxies that route on SNI exactly as dcmtk 3.6.7 is, and no edge Orthanc outlives its cell."""

from __future__ import annotations

from typing import Any

import pytest

from dicomtls.clients.orthanc_edge import OrthancEdge, executable

from .conftest import EACH_BACKEND, ROOT, cells, matrix_run

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(executable() is None, reason="no Orthanc on this machine (install.sh installs it)")]

SCENARIO = ROOT / "scenarios" / "orthanc-edge.yaml"
EDGE = OrthancEdge.name


@pytest.fixture(scope="module", params=EACH_BACKEND)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    found = matrix_run(tmp_path_factory.mktemp(f"orthanc-edge-{request.param}"), "--backend", request.param,
                       "--scenario", str(SCENARIO))
    if request.param == "docker":
        import docker

        found["containers_after"] = docker.from_env().api.containers(all=True, filters={"label": "dicomtls"})
    return found


def test_the_edge_s_run_is_as_expected_and_leaves_no_orthanc_running(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert {c["verdict"] for c in run["results"]["cells"]} == {"ok"}
    assert run["results"]["run"]["versions"][EDGE] == "1.10.1"
    assert run["leftovers"] == (set(), set())  # every edge Orthanc (its config is under the run's directory) is gone
    assert run.get("containers_after", []) == []


def test_the_edge_stores_the_very_object_through_envoy_s_current_defaults(run: dict[str, Any]) -> None:
    passed = {c["operation"]: c for c in cells(run, environment="envoy-wildcard-hosts", client=EDGE, transport="tls")}
    assert {op: c["actual"] for op, c in passed.items()} == {"echo": "pass", "store-ct": "pass"}
    assert "holds the sent dataset" in passed["store-ct"]["detail"]
    assert "/modalities/ingress/store" in passed["store-ct"]["command"]


@pytest.mark.parametrize("environment", ["envoy-named-hosts", "haproxy-sni-passthrough"])
def test_the_edge_without_sni_is_closed_by_an_sni_router_as_dcmtk_3_6_7_is(run: dict[str, Any],
                                                                            environment: str) -> None:
    edge = cells(run, environment=environment, client=EDGE)
    [dcmtk] = cells(run, environment=environment, client="dcmtk")
    assert {(c["actual"], c["reason"]) for c in edge} == {("fail", dcmtk["reason"])} == {("fail", "tls-no-matching-sni")}
    assert all(c["evidence"][0].startswith("client: HTTP 500 Error in the network protocol: DicomAssociation - "
                                           "connecting to AET") for c in edge), [c["evidence"] for c in edge]
