"""The Docker backend: the same matrix in containers, version axes, and nothing left behind."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from dicomtls.backends import docker_answers

from . import baseline
from .conftest import (
    SIDE_BY_SIDE, answers, environment_order, interrupted_run, matrix_run, run_invoke, scenario_options,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_answers(), reason="no Docker engine answers (install.sh starts one)"),
]


def ours() -> tuple[list[str], list[str]]:
    """Containers and networks carrying dicomtls's label."""
    import docker

    api = docker.from_env().api  # the list calls alone: no inspect racing a container's removal
    containers = [c["Names"][0].lstrip("/") for c in api.containers(all=True, filters={"label": "dicomtls"})]
    networks = [n["Name"] for n in api.networks(filters={"label": "dicomtls"})]
    return containers, networks


@pytest.fixture(scope="module")
def docker_default_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = matrix_run(tmp_path_factory.mktemp("docker-default"), "--backend", "docker")
    run["ours_after"] = ours()
    return run


def verdicts(run: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {c["id"]: (c["actual"], c["reason"]) for c in run["results"]["cells"]}


def test_docker_default_matrix_has_every_cell_as_expected(docker_default_run: dict[str, Any]) -> None:
    proc = docker_default_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert docker_default_run["results"]["run"]["backend"] == "docker"
    assert {c["verdict"] for c in docker_default_run["results"]["cells"]} == {"ok"}


def test_docker_default_matrix_gives_the_recorded_answers_cell_by_cell(docker_default_run: dict[str, Any]) -> None:
    """Every cell's (actual, reason, site, certificate) as tests/fixtures/baseline/cells-docker.json recorded it.
    Refreshed on purpose only: `invoke matrix --backend docker --out OUT`, then
    `PYTHONPATH=src python -m tests.integration.baseline docker OUT/results.json` (see tests/integration/baseline.py)."""
    changed = baseline.differences(docker_default_run["results"]["cells"], "docker")
    assert not changed, (f"{len(changed)} cells differ from {baseline.baseline_file('docker')}:\n"
                         + "\n".join(changed))


def test_docker_and_local_backends_agree_on_every_shared_cell(
    docker_default_run: dict[str, Any], local_default_run: dict[str, Any]
) -> None:
    docker_cells, local_cells = verdicts(docker_default_run), verdicts(local_default_run)
    shared = docker_cells.keys() & local_cells.keys()
    assert len(shared) >= 40 and shared == local_cells.keys()
    assert {k: docker_cells[k] for k in shared} == {k: local_cells[k] for k in shared}


def test_docker_environments_side_by_side_give_the_answers_of_one_at_a_time(
    docker_default_run: dict[str, Any], tmp_path: Path
) -> None:
    assert docker_default_run["results"]["run"]["jobs"] > 1, "the default run should use --jobs auto"
    one = matrix_run(tmp_path, "--backend", "docker", "--jobs", "1", *scenario_options(SIDE_BY_SIDE["docker"]))
    assert one["proc"].returncode == 0, one["proc"].stdout[-3000:]
    assert answers(one) == answers(docker_default_run, SIDE_BY_SIDE["docker"])
    repeated = SIDE_BY_SIDE["docker"]
    assert environment_order(one, repeated) == environment_order(docker_default_run, repeated)
    assert ours() == ([], [])


def test_dcmtk_3_6_9_with_sni_passes_named_hosts_where_3_6_7_fails(docker_default_run: dict[str, Any]) -> None:
    cells = [c for c in docker_default_run["results"]["cells"] if c["scenario"] == "versions"
             and c["environment"].startswith("named-hosts")]
    new = {(c["actual"], c["reason"]) for c in cells if c["client_version"] == "3.6.9" and c["sni"] == "right"}
    old = {(c["actual"], c["reason"]) for c in cells if c["client_version"] == "3.6.7"}
    assert new == {("pass", None)}
    assert old == {("fail", "tls-no-matching-sni")}
    assert any("--request-sni dicom.korthweb.test" in c["command"] for c in cells)


def test_orthanc_versions_are_axes_each_storing_verified_objects(docker_default_run: dict[str, Any]) -> None:
    environments = {e["name"]: e for e in docker_default_run["results"]["environments"]}
    assert {"named-hosts-orthanc-1-10", "named-hosts-orthanc-1-12"} <= environments.keys()
    for name in ("named-hosts-orthanc-1-12", "native-tls-orthanc-1-12"):
        stores = [c for c in docker_default_run["results"]["cells"]
                  if c["environment"] == name and c["operation"] == "store-ct" and c["actual"] == "pass"]
        assert stores and all("holds the sent dataset" in c["detail"] for c in stores)
    assert environments["named-hosts-orthanc-1-10"]["versions"]["orthanc"] == "1.10.1"
    assert environments["named-hosts-orthanc-1-12"]["versions"]["orthanc"] == "1.12.7"
    assert docker_default_run["results"]["run"]["versions"]["orthanc"] == "1.10.1, 1.12.7"
    assert docker_default_run["results"]["run"]["versions"]["dcmtk"] == "3.6.7, 3.6.9"


def test_docker_run_leaves_no_container_or_network(docker_default_run: dict[str, Any]) -> None:
    assert docker_default_run["ours_after"] == ([], [])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_docker_run_leaves_nothing_after_teardown(tmp_path: Path, sig: int) -> None:
    """Ctrl-C tears down at once; a SIGKILLed run's leftovers go with `invoke clean` (or the next run's sweep)."""
    assert ours() == ([], [])
    returncode, _ = interrupted_run(
        ["matrix", "--backend", "docker", "--scenario", "orthweb-envoy", "--out", str(tmp_path / "out")], tmp_path,
        lambda: bool(ours()[0]), sig, "the run started a container")
    if sig == signal.SIGKILL:
        assert ours()[0], "a SIGKILLed run cannot clean up; its containers stay until `invoke clean`"
        cleaned = run_invoke(["clean"], tmp_path)
        assert cleaned.returncode == 0, cleaned.stderr
    else:
        assert returncode == 130
    assert ours() == ([], [])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_docker_run_with_environments_in_flight_leaves_nothing_after_teardown(tmp_path: Path,
                                                                                           sig: int) -> None:
    from .test_teardown import THREE_AT_ONCE

    assert ours() == ([], [])
    scenario = tmp_path / "three-at-once.yaml"
    scenario.write_text(THREE_AT_ONCE)
    returncode, _ = interrupted_run(
        ["matrix", "--backend", "docker", "--scenario", str(scenario), "--jobs", "3", "--out", str(tmp_path / "out")],
        tmp_path, lambda: len([n for n in ours()[0] if n.endswith("-envoy")]) >= 2, sig,
        "two environments ran at once")
    if sig == signal.SIGKILL:
        cleaned = run_invoke(["clean"], tmp_path)
        assert cleaned.returncode == 0, cleaned.stderr
    else:
        assert returncode == 130
    assert ours() == ([], [])


def test_ctrl_c_pressed_again_and_again_during_a_docker_teardown_does_not_cut_it_short(tmp_path: Path) -> None:
    from .test_teardown import THREE_AT_ONCE

    assert ours() == ([], [])
    scenario = tmp_path / "three-at-once.yaml"
    scenario.write_text(THREE_AT_ONCE)
    returncode, err = interrupted_run(
        ["matrix", "--backend", "docker", "--scenario", str(scenario), "--jobs", "3", "--out", str(tmp_path / "out")],
        tmp_path, lambda: len([n for n in ours()[0] if n.endswith("-envoy")]) >= 2, signal.SIGINT,
        "two environments ran at once", again_every_s=0.02)
    assert returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert ours() == ([], [])


def test_up_environment_passes_testinfra_checks(tmp_path: Path) -> None:
    """Proxies listen, certificates are mounted read-only, no CA key is anywhere inside, Orthanc runs its config."""
    import testinfra

    up = run_invoke(["up", "--backend", "docker", "--scenario", "orthweb-envoy", "--out", str(tmp_path / "out")],
                    tmp_path)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        import docker

        containers = {c.labels["dicomtls"]: c for c in docker.from_env().containers.list(filters={"label": "dicomtls"})}
        assert {"orthanc", "envoy"} <= containers.keys()
        ca_keys = list((tmp_path / "out" / "pki").glob("*/ca-private/*.key"))
        assert ca_keys
        markers = [key.read_text().splitlines()[1] for key in ca_keys]  # a line of each CA key's base64 body
        for role, container in containers.items():
            host = testinfra.get_host(f"docker://{container.id}")
            assert "ro" in host.mount_point("/pki/server.key").options, role
            sources = [m["Source"] for m in container.attrs["Mounts"]]
            assert not [s for s in sources if "ca-private" in s or s.endswith("/pki")], sources
            # Everything that was mounted or written is under these; /usr holds only the image's packages.
            for marker in markers:
                found = host.run(f"grep -rlF -- {marker!r} /pki /work /etc /tmp /root /var /opt /srv /home")
                assert found.stdout == "", (role, found.stdout)
        envoy = testinfra.get_host(f"docker://{containers['envoy'].id}")
        assert envoy.socket("tcp://0.0.0.0:11112").is_listening
        orthanc = testinfra.get_host(f"docker://{containers['orthanc'].id}")
        assert orthanc.socket("tcp://0.0.0.0:11112").is_listening
        assert "/work/orthanc.json" in orthanc.process.get(comm="Orthanc").args
        rendered = next((tmp_path / "out" / "envs").glob("*/orthanc/orthanc.json")).read_text()
        assert orthanc.file("/work/orthanc.json").content_string == rendered
    finally:
        down = run_invoke(["down"], tmp_path)
    assert down.returncode == 0
    assert ours() == ([], [])


def test_dcmtk_3_6_9_reaches_each_site_by_request_sni(docker_default_run: dict[str, Any]) -> None:
    cells = [c for c in docker_default_run["results"]["cells"]
             if c["environment"] == "named-sites" and c["client_version"] == "3.6.9" and c["sni"] in ("north", "south")]
    assert len(cells) == 4
    for c in cells:
        assert (c["actual"], c["site"], c["certificate"]) == ("pass", c["sni"], f"{c['sni']}.korthweb.test")
        assert f"--request-sni {c['sni']}.korthweb.test" in c["command"]
    environments = {e["name"]: e for e in docker_default_run["results"]["environments"]}
    assert environments["named-sites"]["versions"]["orthanc"] == "1.12.7, 1.10.1"  # one version per site


def test_docker_backend_names_the_component_that_stopped(tmp_path: Path) -> None:
    import docker

    from dicomtls.backends.docker import DockerBackend
    from dicomtls.environment import start_environment
    from dicomtls.plan import plan_environments
    from dicomtls.scenario import load_scenario

    group = plan_environments([load_scenario("orthweb-envoy")], tmp_path / "pki", False, None)[0]
    backend = DockerBackend(tmp_path / "envs")
    env = start_environment(backend, group.plan)
    try:
        assert backend.exited(env) is None
        envoy = docker.from_env().containers.list(filters={"label": "dicomtls=envoy"})
        assert len(envoy) == 1
        envoy[0].kill()
        gone = backend.exited(env)
        assert gone is not None and gone.startswith("envoy exited: "), gone
    finally:
        backend.stop(env)
    assert ours() == ([], [])



def test_clean_skips_a_container_another_run_removed_after_it_was_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards run side by side: one run's clean or sweep can list a container another run is removing."""
    import docker

    from dicomtls.backends import docker as backend

    client = docker.from_env()
    image = next(t for i in client.images.list(filters={"label": "dicomtls"}) for t in i.tags)
    container = client.containers.create(image, ["true"], labels={"dicomtls": "test"})
    listed = backend._labelled_containers(client)
    assert [c["Id"] for c in listed] == [container.id]
    container.remove()
    monkeypatch.setattr(backend, "_labelled_containers", lambda _client: listed)
    assert backend.clean_all() == 1
    assert ours() == ([], [])


def test_teardown_removes_a_container_docker_created_before_its_id_was_recorded(tmp_path: Path) -> None:
    """Ctrl-C can land after Docker created a container but before the SDK returned its id."""
    from dicomtls.backends.docker import DockerBackend, DockerHandles, remove

    backend = DockerBackend(tmp_path)
    handles = DockerHandles(f"dicomtls-{backend.run_id}-0123456789ab")
    backend.client.api.create_network(handles.network, labels=backend.labels("network"))
    image = next(t for i in backend.client.images.list(filters={"label": "dicomtls"}) for t in i.tags)
    backend.client.api.create_container(image, ["true"], name=f"{handles.network}-orthanc",
                                        labels=backend.labels("orthanc"))
    assert ours() == ([f"{handles.network}-orthanc"], [handles.network])
    remove(backend.client, handles)
    assert ours() == ([], [])


def test_where_this_host_cannot_reach_containers_ports_are_published_and_clients_join_each_network(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rootless Docker and Docker Desktop keep container addresses out of the host's reach: the entry and REST
    ports are published on 127.0.0.1 and the shared client container joins each environment's network."""
    from dicomtls.backends import docker as docker_backend
    from dicomtls.runner import run_matrix
    from dicomtls.scenario import load_scenarios
    from dicomtls.soak import _Quiet

    monkeypatch.setattr(docker_backend, "_routes_to_containers", lambda _client: False)
    backend = docker_backend.DockerBackend(tmp_path / "envs")
    seen: list[str] = []
    since = int(time.time()) - 1
    result = run_matrix(load_scenarios(["orthweb-envoy", "orthanc-native-tls"]), tmp_path, backend,
                        _Quiet(seen.append), jobs=2)
    events = list(backend.client.events(since=since, until=int(time.time()) + 1, decode=True,
                                        filters={"type": ["container", "network"]}))
    clients = {e["Actor"]["ID"] for e in events if e["Action"] == "create"
               and "-dcmtk-" in e["Actor"]["Attributes"].get("name", "")}
    joined = {e["Actor"]["Attributes"]["name"] for e in events if e["Action"] == "connect"
              and e["Actor"]["Attributes"].get("container") in clients}
    assert len(clients) == 1 and len(joined) == len({c.cell.environment for c in result.cells
                                                     if c.cell.probe.client == "dcmtk"}), (clients, joined)
    assert {e.entry.split(":")[0] for e in result.environments} == {"127.0.0.1"}
    dcmtk = [c for c in result.cells if c.cell.probe.client == "dcmtk"]
    assert len(dcmtk) >= 10 and len({c.cell.environment for c in dcmtk}) >= 3
    assert [(c.cell.id, c.verdict) for c in result.cells if c.verdict != "ok"] == []
    assert ours() == ([], [])
    assert not (tmp_path / "envs" / ".clients").exists()
