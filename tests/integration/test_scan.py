"""`invoke scan` sees what an independent `openssl s_client` sees, and judges Orthanc's native TLS honestly.

Orthanc (its own DICOM TLS, client certificate required) and Orthweb's Envoy are
started with `invoke up`, scanned with `invoke scan`, and every (version, suite)
the scan reports, plus a set of suites it should have found refused, is tried
again one handshake at a time with the system's openssl.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dicomtls.probes import WRONG_SNI

from .conftest import run_invoke, started_under

pytestmark = pytest.mark.integration

# Suites worth asking for beyond what the scan found, so that refusals are checked too.
CANDIDATES = (
    "AES128-SHA", "AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256",
    "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA", "ECDHE-RSA-AES128-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES128-SHA",
)
TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
OPENSSL_FLAG = {"TLS 1.0": "-tls1", "TLS 1.1": "-tls1_1", "TLS 1.2": "-tls1_2", "TLS 1.3": "-tls1_3"}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("scan")
    up = run_invoke(["up", "--backend", "local", "--scenario", "orthanc-native-tls", "--scenario", "orthweb-envoy",
                     "--out", str(tmp / "out")], tmp)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((tmp / "state" / "dicomtls" / "up.json").read_text())
        yield {"tmp": tmp, "envs": {r["environment"]: r for r in state}}
    finally:
        run_invoke(["down"], tmp)
        assert not started_under(tmp), "invoke down left processes running"


def scan(running: dict[str, Any], environment: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    env = running["envs"][environment]
    out = running["tmp"] / f"{environment}.json"
    proc = run_invoke(["scan", "--target", f"{env['address']}:{env['port']}", "--sni", env["sni_names"][0],
                       "--ca", env["ca"], "--client-cert", env["client_cert"], "--client-key", env["client_key"],
                       "--json", str(out)], running["tmp"], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return env, json.loads(out.read_text()), proc.stdout


def s_client_accepts(env: dict[str, Any], version: str, suite: str) -> bool:
    cipher = ["-ciphersuites", suite] if version == "TLS 1.3" else ["-cipher", f"{suite}:@SECLEVEL=0"]
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"{env['address']}:{env['port']}", "-servername", env["sni_names"][0],
         OPENSSL_FLAG[version], *cipher, "-cert", env["client_cert"], "-key", env["client_key"],
         "-CAfile", env["ca"]],
        input="", capture_output=True, text=True, timeout=20,
    )
    return f"Cipher is {suite}" in proc.stdout or f"Cipher    : {suite}" in proc.stdout


def independent_view(env: dict[str, Any], found: dict[str, list[str]]) -> dict[str, set[str]]:
    view: dict[str, set[str]] = {}
    for version in OPENSSL_FLAG:
        candidates = TLS13 if version == "TLS 1.3" else tuple(dict.fromkeys((*found.get(version, []), *CANDIDATES)))
        view[version] = {s for s in candidates if s_client_accepts(env, version, s)}
    return view


def accepted(scan_json: dict[str, Any]) -> dict[str, list[str]]:
    return {v: [s["openssl_name"] for s in suites] for v, suites in scan_json["protocols"].items()}


@pytest.mark.parametrize("environment", ["orthanc-tls-client-cert-required", "envoy-optional-cert"])
def test_scan_agrees_with_openssl_s_client_one_suite_at_a_time(running: dict[str, Any], environment: str) -> None:
    env, result, _ = scan(running, environment)
    found = accepted(result)
    independent = independent_view(env, found)
    for version in OPENSSL_FLAG:
        assert set(found.get(version, [])) == independent[version], (
            f"{environment} {version}: scan says {sorted(found.get(version, []))}, "
            f"openssl s_client says {sorted(independent[version])}"
        )


def test_orthanc_native_tls_default_is_not_non_downgrading_compliant(running: dict[str, Any]) -> None:
    _, result, stdout = scan(running, "orthanc-tls-client-cert-required")
    verdicts = {v["section"]: v for v in result["verdicts"]}
    assert result["protocols"]["TLS 1.0"], "dcmtk's BCP 195 profile in Orthanc accepts TLS 1.0"
    assert not verdicts["B.10"]["compliant"]
    assert verdicts["B.10"]["failures"][0]["requirement"] == "TLS 1.0 and TLS 1.1 shall not be negotiated"
    assert "✘ B.10 Non-downgrading BCP 195 TLS Profile" in stdout


def test_scan_reports_the_chain_for_the_right_sni_a_wrong_one_and_none(running: dict[str, Any]) -> None:
    _, result, _ = scan(running, "envoy-optional-cert")
    with_sni, wrong, without = result["chains"]
    assert with_sni["sni"] == "dicom.orthweb.test" and wrong["sni"] == WRONG_SNI and without["sni"] is None
    for chain in (with_sni, wrong, without):  # one filter chain: everyone gets the server certificate
        leaf = chain["certificates"][0]
        assert "dicom.orthweb.test" in leaf["sans"] and leaf["key"] == "RSA 2048"
        assert chain["complete"] is True and chain["intermediate"] == "not needed"
    assert with_sni["hostname_match"] is True and wrong["hostname_match"] is False
    assert without["hostname_match"] is None
    assert all(v["compliant"] for v in result["verdicts"])


def test_scan_of_a_name_pinned_by_resolve_sends_the_name_as_sni(running: dict[str, Any]) -> None:
    env = running["envs"]["envoy-optional-cert"]
    name, port = env["sni_names"][0], env["port"]
    out = running["tmp"] / "by-name.json"
    proc = run_invoke(["scan", "--target", f"{name}:{port}", "--resolve", f"{name}:{port}:{env['address']}",
                       "--ca", env["ca"], "--json", str(out)], running["tmp"], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["target"] == f"{name}:{port}" and result["sni"] == name
    assert result["chains"][0]["sni"] == name and result["chains"][0]["hostname_match"] is True


def test_scan_refuses_a_malformed_target_with_one_line(tmp_path: Path) -> None:
    proc = run_invoke(["scan", "--target", "::1:11112"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "in brackets" in proc.stderr
