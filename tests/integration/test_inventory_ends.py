"""`invoke probe --inventory` always ends: each host gets its verdict, or its scan an error with the reason.

The endpoints are `invoke up`'s Envoys on the local backend (envoy-sni-named-hosts: a two-level PKI, so the
client certificate file `up` prints holds the client's chain, leaf and intermediate): one routes only its
named host, the other any name. The inventory has a healthy host (the right CA and client certificate), a host
given a CA that did not issue the server's certificate, and a host that reaches the named-host Envoy by its
address without SNI, as an inventory listing only `ansible_host` does. Envoy closes every handshake of that
last one, so sslyze's connectivity test falls through TLS 1.3 to SSL 3.0 to SSL 2.0, where the legacy OpenSSL
cannot load a certificate chain: sslyze's thread died of it and the run waited forever.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import run_invoke, started_under

pytestmark = pytest.mark.integration

NAMED = "dicom.korthweb.test"  # envoy-sni-named-hosts' server name


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("inventory-ends")
    up = run_invoke(["up", "--backend", "local", "--scenario", "envoy-sni-named-hosts", "--out", str(tmp / "up")],
                    tmp)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        records = json.loads((tmp / "state" / "dicomtls" / "up.json").read_text())
        yield {"tmp": tmp, **{r["environment"]: r for r in records}}
    finally:
        down = run_invoke(["down"], tmp)
        assert down.returncode == 0 and not started_under(tmp), down.stdout + down.stderr


def _host(record: dict[str, Any], **variables: Any) -> dict[str, Any]:
    return {"ansible_connection": "local", "ansible_host": record["address"], "dicomtls_port": record["port"],
            "dicomtls_ca": record["ca"], "dicomtls_client_cert": record["client_cert"],
            "dicomtls_client_key": record["client_key"], **variables}


@pytest.fixture(scope="module")
def run(endpoints: dict[str, Any]) -> dict[str, Any]:
    named, wildcard, tmp = endpoints["envoy-named-hosts"], endpoints["envoy-wildcard-hosts"], endpoints["tmp"]
    assert Path(named["client_cert"]).read_text().count("BEGIN CERTIFICATE") == 2  # leaf and intermediate
    wrong_ca = str(Path(named["ca"]).with_name("untrusted-ca.crt"))  # a CA that issued nothing the servers hold
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {
        "healthy": _host(wildcard, dicomtls_sni=NAMED),
        "wrong-ca": _host(named, dicomtls_sni=NAMED, dicomtls_ca=wrong_ca),
        "no-sni": _host(named),
    }}}, sort_keys=False))
    out = tmp / "out"
    proc = run_invoke(["probe", "--inventory", str(inventory), "--out", str(out)], tmp, timeout=240)
    doc = json.loads((out / "probe" / "results.json").read_text())
    return {"proc": proc, "doc": doc, "out": out}


def _cells(doc: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    return {c["id"].split("/", 2)[2]: c for c in doc["cells"] if c["environment"] == host}


def _scan(doc: dict[str, Any], host: str) -> dict[str, Any]:
    scan: dict[str, Any] = next(e for e in doc["environments"] if e["name"] == host)["scan"]
    return scan


def test_an_inventory_with_a_client_chain_finishes_with_a_verdict_per_host(run: dict[str, Any]) -> None:
    proc, doc = run["proc"], run["doc"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # two hosts pass no cell
    assert "Traceback" not in proc.stderr and "OpenSSLError" not in proc.stderr, proc.stderr[-3000:]
    assert [e["name"] for e in doc["environments"]] == ["healthy", "wrong-ca", "no-sni"]


def test_the_healthy_host_passes_and_its_scan_judges_every_profile(run: dict[str, Any]) -> None:
    healthy = _cells(run["doc"], "healthy")
    for cell in ("pynetdicom sni=right cert=valid echo", "dcmtk sni=none cert=valid echo"):
        assert healthy[cell]["actual"] == "pass", healthy[cell]
    scan = _scan(run["doc"], "healthy")
    assert scan["status"] == "scanned" and scan["error"] is None and scan["unknown"] == {}
    assert scan["protocols"]["SSL 2.0"] == []  # refused, tried with the leaf alone: not unknown
    assert [v["compliant"] for v in scan["verdicts"]] == [True, True, True, True]


def test_the_host_given_the_wrong_ca_is_diagnosed_unknown_ca(run: dict[str, Any]) -> None:
    wrong = _cells(run["doc"], "wrong-ca")
    for cell in ("pynetdicom sni=right cert=valid echo", "pynetdicom sni=right cert=none echo"):
        assert (wrong[cell]["actual"], wrong[cell]["reason"]) == ("fail", "tls-unknown-ca"), wrong[cell]
    assert _scan(run["doc"], "wrong-ca")["status"] == "scanned"


def test_a_host_whose_every_handshake_is_closed_is_a_scan_error_with_the_reason(run: dict[str, Any]) -> None:
    scan = _scan(run["doc"], "no-sni")
    assert scan["status"] == "scan-error" and scan["verdicts"] == []
    assert scan["error"].startswith("could not complete a TLS handshake with 127.0.0.1:")
    assert "could not find a TLS version and cipher suite supported by the server" in scan["error"]
    assert scan["error"].endswith("(an SNI-routed endpoint closes handshakes without SNI: give --sni)")
    assert all(c["actual"] == "fail" for c in _cells(run["doc"], "no-sni").values())
    assert "no-sni ❌ scan-error: could not complete a TLS handshake" in (run["out"] / "probe" / "summary.md").read_text()
    assert "no-sni: scan-error: could not complete a TLS handshake" in run["proc"].stdout
