"""The releases scenario on real proxies and clients: every release row runs on both sides with its expectation, each
cell says what it ran (real, upstream image, twin), and what a backend cannot run is left out and said so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dicomtls.backends import docker_answers
from dicomtls.scenario import load_scenario

from .conftest import matrix_run

pytestmark = pytest.mark.integration

SCENARIO = load_scenario("releases")


def _by_row(run: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per release, per side, the cells of the run that stand for it (matched as the scenario matches them)."""
    cells = {c.id: c for c in SCENARIO.cells()}
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {r.release: {"before": [], "after": []} for r in SCENARIO.releases}
    for record in run["results"]["cells"]:
        for row in SCENARIO.releases:
            if (found := row.side(cells[record["id"]])) is not None:
                rows[row.release][found[0]].append(record)
    return rows


def _check_run(run: dict[str, Any], backend: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert run["results"]["run"]["backend"] == backend
    assert {c["verdict"] for c in run["results"]["cells"]} == {"ok"}
    assert all(c["error"] is None and c["deadline"] is None for c in run["results"]["cells"])
    assert run["leftovers"] == (set(), set())
    for c in run["results"]["cells"]:
        if c["release"] is not None:
            assert c["release_basis"] in ("real", "upstream-image", "twin"), c["id"]
    return _by_row(run)


@pytest.fixture(scope="module")
def local_releases_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp("releases-local"), "--backend", "local", "--scenario", "releases")


def test_every_release_row_runs_on_the_local_backend_on_both_sides_as_expected(
        local_releases_run: dict[str, Any]) -> None:
    rows = _check_run(local_releases_run, "local")
    here = {c.id for c in SCENARIO.on_backend("local")[0].cells()}
    for row in SCENARIO.releases:
        for side in ("before", "after"):
            wanted = {c.id for c in SCENARIO.cells() if (found := row.side(c)) is not None and found[0] == side}
            ran = {c["id"] for c in rows[row.release][side]}
            assert ran == wanted & here, f"{row.release} {side}: ran {ran}, not {wanted & here}"
    assert rows["JDK 24"]["before"] and rows["JDK 24"]["after"] and rows["Envoy 1.22.0"]["after"]
    envoy_1_23 = rows["Envoy 1.23.0"]
    assert {c["release_basis"] for c in envoy_1_23["before"]} == {"twin"}
    assert {c["release_basis"] for c in envoy_1_23["after"]} == {"real"}


def test_the_local_backend_leaves_out_what_needs_images_and_says_so(local_releases_run: dict[str, Any]) -> None:
    ran = {c["id"] for c in local_releases_run["results"]["cells"]}
    docker_only = {c.id for c in SCENARIO.cells()} - {c.id for c in SCENARIO.on_backend("local")[0].cells()}
    assert docker_only and not ran & docker_only
    out = local_releases_run["proc"].stdout + local_releases_run["proc"].stderr
    assert "environment nginx-1-26-protocols-unset left out on local: it runs on docker only" in out
    assert "(dcmtk@3.6.9) left out on local" in out


def test_dcm4che_on_jdk24_twin_fails_in_the_client_before_any_byte_and_no_proxy_is_blamed(
        local_releases_run: dict[str, Any]) -> None:
    [cell] = [c for c in local_releases_run["results"]["cells"] if c["profile"] == "dcm4che-tls-aes-jdk24"]
    assert (cell["actual"], cell["reason"], cell["release_basis"]) == ("fail", "client-offers-nothing", "twin")
    assert cell["evidence"] == ["client: ssl.SSLError in the client's own setup: ('No cipher can be selected.',)"]


def test_an_ecdsa_server_certificate_fails_rsa_only_clients_and_says_why(local_releases_run: dict[str, Any]) -> None:
    for cell in local_releases_run["results"]["cells"]:
        if cell["environment"].startswith("envoy-1-22-twin-ecdsa") and cell["actual"] == "fail":
            assert cell["reason"] == "tls-no-shared-cipher"
            assert "ECDSA server certificate, the client offers only RSA suites" in cell["summary"]


@pytest.fixture(scope="module")
def docker_releases_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not docker_answers():
        pytest.skip("no Docker engine answers (install.sh starts one)")
    return matrix_run(tmp_path_factory.mktemp("releases-docker"), "--backend", "docker", "--scenario", "releases")


def test_docker_runs_every_release_row_including_dcmtk_3_6_9_and_nginx_1_26(
        docker_releases_run: dict[str, Any]) -> None:
    rows = _check_run(docker_releases_run, "docker")
    assert {c.id for c in SCENARIO.cells()} == {c["id"] for c in docker_releases_run["results"]["cells"]}
    dcmtk_after = rows["dcmtk 3.6.8"]["after"]
    assert dcmtk_after and {(c["actual"], c["release_basis"]) for c in dcmtk_after} == {("pass", "real")}
    nginx_1_26 = [c for c in rows["nginx 1.23.4"]["after"] if c["environment"] == "nginx-1-26-protocols-unset"]
    assert [(c["actual"], c["release_basis"]) for c in nginx_1_26] == [("pass", "real")]


def test_docker_releases_report_shows_each_cells_basis(docker_releases_run: dict[str, Any]) -> None:
    summary = Path(docker_releases_run["out"] / "summary.md").read_text()
    assert "| dcmtk 3.6.8 (after) | real |" in summary
