"""Real deployments: `invoke probe` reaches a host by name (pinned with --resolve, never looked up), and
`invoke probe --inventory` probes and checks every host an Ansible inventory lists.

The "deployments" are `invoke up` environments: Envoy with named hosts in Docker (two environments, reached by
testinfra through `docker exec` and by the clients through ports published on 127.0.0.1) and Envoy requiring a
client certificate on the local backend (`ansible_connection: local`). Every name resolves through --resolve or
the inventory's 127.0.0.1 / localhost.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import run_invoke, started_under

pytestmark = pytest.mark.integration

NAMED = "dicom.korthweb.test"  # envoy-sni-named-hosts' server name: its Envoy routes only this SNI


def _up(tmp: Path, name: str, backend: str, scenario: str) -> list[dict[str, Any]]:
    state = tmp / name
    up = run_invoke(["up", "--backend", backend, "--scenario", scenario, "--out", str(tmp / name / "out")], state)
    assert up.returncode == 0, up.stdout + up.stderr
    return list(json.loads((state / "state" / "dicomtls" / "up.json").read_text()))


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("deployments")
    try:
        docker = {r["environment"]: r for r in _up(tmp, "docker", "docker", "envoy-sni-named-hosts")}
        local = _up(tmp, "local", "local", "envoy-mtls")[0]
        yield {"tmp": tmp, "docker": docker, "local": local}
    finally:
        for name in ("docker", "local"):
            run_invoke(["down"], tmp / name)
        assert not started_under(tmp), "invoke down left processes running"


def _container(record: dict[str, Any], component: str) -> str:
    return f"{record['handles'][0]['network']}-{component}"


def _inventory(d: dict[str, Any]) -> Path:
    """Three hosts: two Docker Envoys checked through `docker exec`, and the local Envoy whose declared server
    certificate on disk has expired (a stale file left by a renewal): its checks must fail, and only its."""
    named, wildcard, local = d["docker"]["envoy-named-hosts"], d["docker"]["envoy-wildcard-hosts"], d["local"]
    pki_dir = Path(local["ca"]).parent
    tmp = d["tmp"] / "inventory"
    (tmp / "group_vars").mkdir(parents=True, exist_ok=True)
    (tmp / "group_vars" / "korthweb.yml").write_text(yaml.safe_dump({
        "ansible_connection": "community.docker.docker", "dicomtls_host": "127.0.0.1",
        "dicomtls_listen_port": 11112, "dicomtls_proxy": "envoy", "dicomtls_sni": NAMED,
        "dicomtls_ca": named["ca"], "dicomtls_client_cert": named["client_cert"],
        "dicomtls_client_key": named["client_key"],
        "dicomtls_server_cert": "/pki/server-fullchain.crt", "dicomtls_server_key": "/pki/server.key",
    }))
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "korthweb": {"hosts": {
            "bhs-named": {"ansible_host": _container(named, "envoy"), "dicomtls_port": named["port"]},
            "bhs-wildcard": {"ansible_host": _container(wildcard, "envoy"), "dicomtls_port": wildcard["port"]},
        }},
        "orthweb": {"hosts": {"mhr-envoy": {
            "ansible_connection": "local", "ansible_host": "localhost", "dicomtls_port": local["port"],
            "dicomtls_sni": local["sni_names"][0], "dicomtls_proxy": "envoy", "dicomtls_ca": local["ca"],
            "dicomtls_client_cert": local["client_cert"], "dicomtls_client_key": local["client_key"],
            "dicomtls_server_cert": str(pki_dir / "expired-client.crt"),
            "dicomtls_server_key": str(pki_dir / "server.key"),
        }}},
    }}}))
    return inventory


@pytest.fixture(scope="module")
def inventory_run(deployments: dict[str, Any]) -> dict[str, Any]:
    inventory = _inventory(deployments)
    out = deployments["tmp"] / "inventory-out"
    proc = run_invoke(["probe", "--inventory", str(inventory), "--out", str(out)], deployments["tmp"])
    assert (out / "probe" / "results.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"proc": proc, "inventory": inventory, "doc": json.loads((out / "probe" / "results.json").read_text()),
            "out": out / "probe"}


def _cells(doc: dict[str, Any], environment: str, scenario: str) -> dict[str, dict[str, Any]]:
    return {c["id"].split("/", 2)[2]: c for c in doc["cells"]
            if c["environment"] == environment and c["scenario"] == scenario}


def test_a_named_target_pinned_by_resolve_sends_its_name_and_dcmtk_367_finds_no_route(
        deployments: dict[str, Any]) -> None:
    named = deployments["docker"]["envoy-named-hosts"]
    port, out = named["port"], deployments["tmp"] / "by-name"
    proc = run_invoke(["probe", "--target", f"{NAMED}:{port}", "--resolve", f"{NAMED}:{port}:127.0.0.1",
                       "--ca", named["ca"], "--out", str(out)], deployments["tmp"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    doc = json.loads((out / "probe" / "results.json").read_text())
    cells = _cells(doc, f"{NAMED}:{port}", "probe")
    assert cells["pynetdicom sni=right cert=none echo"]["actual"] == "pass"
    dcmtk = cells["dcmtk sni=none cert=none echo"]  # dcmtk 3.6.7 sends no SNI
    assert (dcmtk["actual"], dcmtk["reason"]) == ("fail", "tls-no-matching-sni")
    assert any(e.startswith("scan: a handshake without SNI failed") for e in dcmtk["evidence"])
    assert doc["environments"][0]["entry"] == f"127.0.0.1:{port}"
    for report in ("results.json", "junit.xml", "summary.md", "report.html"):
        assert (out / "probe" / report).is_file(), report


def test_an_ipv6_target_is_reached_at_that_address(deployments: dict[str, Any]) -> None:
    with socket.socket(socket.AF_INET6) as s:  # a port on ::1 that nothing listens on
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    out = deployments["tmp"] / "v6"
    proc = run_invoke(["probe", "--target", f"[::1]:{port}", "--ca", deployments["local"]["ca"], "--out", str(out)],
                      deployments["tmp"])
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads((out / "probe" / "results.json").read_text())
    pynetdicom = [c for c in doc["cells"] if c["client"] == "pynetdicom"]
    assert pynetdicom and all(c["reason"] == "tcp-refused" for c in pynetdicom)
    assert f"::1:{port}" in pynetdicom[0]["command"]  # connected to the IPv6 address itself


def test_inventory_probes_every_host_and_fails_only_the_broken_hosts_checks(inventory_run: dict[str, Any]) -> None:
    proc, doc = inventory_run["proc"], inventory_run["doc"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert [e["name"] for e in doc["environments"]] == ["bhs-named", "bhs-wildcard", "mhr-envoy"]
    for host in ("bhs-named", "bhs-wildcard", "mhr-envoy"):
        assert any(c["actual"] == "pass" for c in _cells(doc, host, "probe").values()), host
    failed = sorted((c["environment"], c["client"]) for c in doc["cells"]
                    if c["scenario"] == "checks" and c["actual"] == "fail")
    assert failed == [("mhr-envoy", "served-leaf"), ("mhr-envoy", "server-cert")]
    checks = _cells(doc, "bhs-named", "checks")
    assert set(c.split()[0] for c in checks) == {"listening", "proxy-version", "server-cert", "served-leaf",
                                                 "server-key"}
    assert "envoy" in checks["proxy-version sni=- cert=- check"]["summary"]
    assert "mode 0600" in checks["server-key sni=- cert=- check"]["summary"]
    expired = _cells(doc, "mhr-envoy", "checks")["server-cert sni=- cert=- check"]
    assert "expired on" in expired["summary"] and expired["reason"] == "server-check-failed"


def test_inventory_dcmtk_failures_name_the_cause_without_server_logs(inventory_run: dict[str, Any]) -> None:
    doc = inventory_run["doc"]
    mtls = _cells(doc, "mhr-envoy", "probe")  # Envoy requires a client certificate
    bare = mtls["dcmtk sni=none cert=none echo"]
    assert (bare["actual"], bare["reason"]) == ("fail", "tls-cert-required"), bare
    assert any(e.startswith("pynetdicom with the same certificate got:") for e in bare["evidence"])
    plain = mtls["dcmtk sni=none cert=none echo plain"]
    assert plain["reason"] == "tls-plaintext-to-tls-port"


def test_inventory_reports_show_each_check_as_a_row(inventory_run: dict[str, Any]) -> None:
    out = inventory_run["out"]
    summary = (out / "summary.md").read_text()
    assert "### checks" in summary and "server-check-failed" in summary
    junit = (out / "junit.xml").read_text()
    assert junit.count('classname="checks.mhr-envoy"') >= 4 and junit.count("<failure") == 2
    assert "served-leaf" in (out / "report.html").read_text()


def test_inventory_unreachable_host_is_a_failed_cell_and_the_others_still_run(
        deployments: dict[str, Any], inventory_run: dict[str, Any]) -> None:
    inventory = inventory_run["inventory"]
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    doc = yaml.safe_load(inventory.read_text())
    doc["all"]["children"]["orthweb"]["hosts"]["gone"] = {"ansible_connection": "local", "ansible_host": "127.0.0.1",
                                                          "dicomtls_port": dead, "dicomtls_ca": deployments["local"]["ca"]}
    broken = inventory.with_name("with-gone.yml")
    broken.write_text(yaml.safe_dump(doc))
    out = deployments["tmp"] / "gone-out"
    proc = run_invoke(["probe", "--inventory", str(broken), "--limit", "gone:bhs-named", "--out", str(out)],
                      deployments["tmp"])
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((out / "probe" / "results.json").read_text())
    gone = _cells(result, "gone", "probe")
    assert gone and all(c["reason"] == "tcp-refused" for c in gone.values())
    assert not _cells(result, "gone", "checks")  # it declares nothing about itself, so it is only probed
    assert any(c["actual"] == "pass" for c in _cells(result, "bhs-named", "probe").values())


@pytest.mark.parametrize("host, message", [
    ({"dicomtls_ca": "ca.crt"}, "host broken has no dicomtls_port"),
    ({"dicomtls_port": "dicom"}, "dicomtls_port is 'dicom'"),
])
def test_bad_inventories_exit_2_with_one_line(tmp_path: Path, host: dict[str, Any], message: str) -> None:
    (tmp_path / "ca.crt").write_text("x\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"broken": {"dicomtls_ca": "ca.crt", **host}}}}))
    proc = run_invoke(["probe", "--inventory", str(inventory)], tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_target_options_with_an_inventory_exit_2_naming_the_variable(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    pacs: {}\n")
    proc = run_invoke(["probe", "--inventory", str(inventory), "--ca", str(inventory)], tmp_path)
    assert proc.returncode == 2 and "set dicomtls_ca for the host" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
