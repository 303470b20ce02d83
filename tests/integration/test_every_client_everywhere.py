"""Every registered client through every task that runs clients: soak, fix, bisect, up and probe.

A task that keeps its own idea of which clients exist forgets the next one (soak once crashed on dcmtk-stunnel;
probe ran none of its cells; up printed an echoscu line only). The scenario here is written from the registry
(dicomtls.clients): each client's cells against an Envoy that routes any name ("open": every cell passes) and one
that routes only its server name ("named": a client that sends no SNI fails, so fix has a failing cell of each
client to prove candidates for). A new client joins every test below without an edit. A client that reaches the
proxy's HTTPS route rather than its DICOM entry (``reaches_dicom_entry``) gets both Envoys' web route and Orthanc's
DICOMweb plugin; `probe` aims at a DICOM port only, so a client that declares no endpoint cells runs none there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dicomtls.backends import docker_answers
from dicomtls.clients import ClientKind, EndpointRequest, listed, names

from .conftest import leftovers_under, run_invoke, started_under

pytestmark = pytest.mark.integration

SCENARIO = "every-client"
SERVER_NAME = "dicom.every-client.test"
BISECT_VERSIONS = "1.39.3,1.40.0"  # Envoy wheels; the two ends of a bisect run side by side


def sni_choices(kind: type[ClientKind]) -> list[str]:
    return ["none", *(["right"] if kind.sends_sni("default") else [])]


def web_route() -> bool:
    """A registered client reaches the proxy's HTTPS route, not its DICOM entry: the environments have one."""
    return any(not kind.reaches_dicom_entry for kind in listed())


def probes_endpoints(kind: type[ClientKind]) -> bool:
    """It declares cells against someone else's endpoint (`dicomtls probe` aims at a DICOM port only)."""
    request = EndpointRequest(named=True, certs=("valid",), best_cert="valid", operations=("echo",), version="3.6.9")
    return bool(kind.endpoint_probes(request)[0])


def scenario_text() -> str:
    web = {"web": True} if web_route() else {}
    server = {"server": {"kind": "orthanc", "dicomweb_plugin": True}} if web_route() else {}
    groups = [{"client": kind.name, "sni": sni_choices(kind),
               "client_cert": "valid" if kind.sends_client_cert else "none",
               "operation": "echo" if "echo" in kind.operations else kind.operations[0]} for kind in listed()]
    return yaml.safe_dump({
        "name": SCENARIO,
        "description": "every registered client against an open Envoy and one that routes only its server name",
        "pki": {"topology": "one-level", "server_names": [SERVER_NAME]},
        "environments": [{"name": "open", **server,
                          "proxy": {"kind": "envoy", "client_cert": "optional", "sni": "any", **web}},
                         {"name": "named", **server,
                          "proxy": {"kind": "envoy", "client_cert": "optional", "sni": "named", **web}}],
        "probes": groups,
        "expect": [{"match": {"environment": "named", "sni": "none"}, "outcome": "fail",
                    "reason": "tls-no-matching-sni"},
                   {"match": {}, "outcome": "pass"}],
    }, sort_keys=False)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / f"{SCENARIO}.yaml"
    path.write_text(scenario_text())
    return path


def by_client(cells: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in names()}
    for cell in cells:
        found.setdefault(cell["client"], []).append(cell)
    return found


def assert_ended(proc: Any, code: int = 0) -> None:
    assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]


def test_soak_runs_every_client_s_cells_each_round_as_expected(scenario: Path, tmp_path: Path,
                                                                clean_slate: Path) -> None:
    proc = run_invoke(["soak", "--scenario", str(scenario), "--minutes", "0.01", "--out", str(tmp_path / "out")],
                      tmp_path)
    assert_ended(proc)
    cells = json.loads((tmp_path / "out" / "soak.json").read_text())["cells"]
    for name in names():
        mine = [c for c in cells if f"/{name} " in c["id"]]
        assert mine, f"soak ran no cell of {name}"
        assert all(len(c["outcomes"]) == 2 and not c["unexpected_rounds"] for c in mine), mine
        assert all(c["outcomes"] == ["pass", "pass"] for c in mine if "/open/" in c["id"]), mine


def test_fix_proves_a_candidate_for_every_client_s_failing_cell(scenario: Path, tmp_path: Path) -> None:
    proc = run_invoke(["fix", "--scenario", str(scenario), "--out", str(tmp_path / "out")], tmp_path)
    assert_ended(proc)
    assert leftovers_under(tmp_path) == (set(), set())
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {c["verdict"] for c in doc["cells"]} == {"ok"}
    for name, cells in by_client(doc["cells"]).items():
        assert {c["actual"] for c in cells if c["environment"] == "open"} == {"pass"}, cells
        assert any(c["actual"] == "fail" for c in cells), f"{name} has no failing cell to fix"
    fixed = {c["cell"].split(" ", 1)[0]: c for c in doc["fixes"]["cells"]}
    assert set(fixed) == set(names()), fixed.keys()
    for name, fixes in fixed.items():
        proven = [t["candidate"]["id"] for t in fixes["trials"] if t["mark"] == "passes"]
        assert proven, f"no candidate proven for {name}: {fixes['trials']}"
    assert doc["fixes"]["broken"] == []


@pytest.mark.parametrize("client", names())
def test_bisect_runs_every_client_s_cell_at_both_ends(scenario: Path, client: str, tmp_path: Path,
                                                      bisect_cache: Path) -> None:
    kind = next(k for k in listed() if k.name == client)
    cell = f"environment=open client={client} sni={sni_choices(kind)[-1]}"
    proc = run_invoke(["bisect", "--component", "envoy", "--versions", BISECT_VERSIONS, "--cell", cell,
                       "--scenario", str(scenario), "--out", str(tmp_path / "out")], tmp_path,
                      XDG_CACHE_HOME=str(bisect_cache))
    assert_ended(proc)
    first, last = BISECT_VERSIONS.split(",")
    assert f"no flip: {first} and {last} both pass" in proc.stdout, proc.stdout[-3000:]
    assert not started_under(tmp_path), "the bisect left processes running"


@pytest.fixture(scope="module")
def bisect_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of Envoy versions for the module: the first bisect installs them, the others take them."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def up(scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The scenario's environments left running by `up`; `down` after the module, which must leave nothing."""
    tmp = tmp_path_factory.mktemp("up")
    proc = run_invoke(["up", "--scenario", str(scenario), "--out", str(tmp / "out")], tmp)
    state = tmp / "state" / "dicomtls" / "up.json"
    try:
        records = json.loads(state.read_text()) if state.exists() else []
        yield {"proc": proc, "records": {r["environment"]: r for r in records}, "tmp": tmp}
    finally:
        down = run_invoke(["down"], tmp)
        assert_ended(down)
        assert leftovers_under(tmp) == (set(), set())


def test_up_reaches_each_environment_with_every_client_and_prints_how(up: dict[str, Any]) -> None:
    assert_ended(up["proc"])
    records = up["records"]
    assert set(records) == {"open", "named"}
    for environment, record in records.items():
        reached = {r["client"]: r for r in record["clients"]}
        assert list(reached) == names(), record["clients"]  # every client, in listing order
        for kind in listed():
            mine = reached[kind.name]
            assert mine["command"] and mine["command"] in up["proc"].stdout, mine
            if environment == "open" or "right" in sni_choices(kind):
                assert mine["outcome"] == "pass", mine
            else:  # it sends no SNI, and the named route takes none
                assert (mine["outcome"], mine["reason"]) == ("fail", "tls-no-matching-sni"), mine


def test_probe_of_a_running_environment_runs_every_client(up: dict[str, Any]) -> None:
    assert_ended(up["proc"])
    record, tmp = up["records"]["open"], up["tmp"]
    proc = run_invoke(["probe", "--target", f"{record['address']}:{record['port']}", "--sni", SERVER_NAME,
                       "--ca", record["ca"], "--client-cert", record["client_cert"], "--client-key",
                       record["client_key"], "--log", record["logs"]["envoy:access.log"],
                       "--out", str(tmp / "probe")], tmp)
    assert_ended(proc)
    cells = json.loads((tmp / "probe" / "probe" / "results.json").read_text())["cells"]
    for name, mine in by_client(cells).items():
        if not probes_endpoints(next(k for k in listed() if k.name == name)):
            assert not mine, f"{name} declares no endpoint cells, yet probe ran some"
            continue
        assert mine, f"probe ran no cell of {name}"
        assert not [c for c in mine if c.get("error") or c.get("deadline")], mine
        best = [c for c in mine if c["client_cert"] == "valid" and c["sni"] in ("right", "none")
                and c["profile"] == "default" and c["transport"] == "tls" and c["server_cert_check"] == "verify"
                and (c["sni"] == "right" or "right" not in sni_choices(next(k for k in listed() if k.name == name)))]
        assert best and all(c["actual"] == "pass" for c in best), [(c["id"], c["actual"], c["reason"]) for c in mine]


@pytest.mark.skipif(not docker_answers(), reason="no Docker engine answers (install.sh starts one)")
def test_up_on_docker_reaches_with_every_client_and_keeps_no_client_container(scenario: Path, tmp_path: Path) -> None:
    """On a backend that brings its own clients, their containers serve `up`'s cells and go: `down` finds the
    environments alone, and nothing of dicomtls's is left on the engine."""
    up = run_invoke(["up", "--scenario", str(scenario), "--backend", "docker", "--out", str(tmp_path / "out")],
                    tmp_path)
    try:
        assert_ended(up)
        records = json.loads((tmp_path / "state" / "dicomtls" / "up.json").read_text())
        for record in records:
            assert [r["client"] for r in record["clients"]] == names(), record["clients"]
            open_route = record["environment"] == "open"
            assert all(r["outcome"] == "pass" for r in record["clients"]
                       if open_route or "right" in sni_choices(next(k for k in listed() if k.name == r["client"]))), \
                record["clients"]
        containers = labelled_containers()
        assert len(containers) == sum(len(h["containers"]) for r in records for h in r["handles"]), containers
    finally:
        down = run_invoke(["down"], tmp_path)
    assert_ended(down)
    assert labelled_containers() == []


def labelled_containers() -> list[str]:
    import docker

    api = docker.from_env().api
    return [c["Names"][0].lstrip("/") for c in api.containers(all=True, filters={"label": "dicomtls"})]
