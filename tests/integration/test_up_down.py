"""`invoke up` leaves a scenario running for hand probing with dcmtk; `invoke down` stops it all."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import run_invoke
from .test_bad_input import assert_one_line_error

pytestmark = pytest.mark.integration


def test_up_prints_endpoints_a_person_can_probe_and_down_stops_them(tmp_path: Path, clean_slate: Path) -> None:
    up = run_invoke(["up", "--scenario", "envoy-mtls", "--out", str(tmp_path / "out")], tmp_path)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((tmp_path / "state" / "dicomtls" / "up.json").read_text())
        endpoint = state[0]
        assert f"{endpoint['address']}:{endpoint['port']}" in up.stdout
        assert f"echoscu -v -aec {endpoint['called_aet']} +tls" in up.stdout
        echo = subprocess.run(
            ["/usr/bin/echoscu", "-aec", endpoint["called_aet"], "+tls", endpoint["client_key"], endpoint["client_cert"],
             "-rc", "+cf", endpoint["ca"], endpoint["address"], str(endpoint["port"])],
            capture_output=True, text=True, timeout=60,
        )
        assert echo.returncode == 0, echo.stdout + echo.stderr
        again = run_invoke(["up", "--scenario", "envoy-mtls", "--out", str(tmp_path / "out")], tmp_path)
        assert again.returncode == 2 and "invoke down" in again.stderr
    finally:
        down = run_invoke(["down"], tmp_path)
    assert down.returncode == 0
    assert "stopped 2 components" in down.stdout
    with socket.socket() as s:
        assert s.connect_ex((endpoint["address"], endpoint["port"])) != 0


def test_up_whose_second_environment_cannot_start_here_stops_the_first(tmp_path: Path, clean_slate: Path) -> None:
    scenario = tmp_path / "half-local.yaml"
    scenario.write_text(
        "name: half-local\n"
        "description: the second Orthanc is a version this machine does not have\n"
        "pki: { topology: one-level, server_names: [orthanc.hospital.test] }\n"
        "environments:\n"
        "  - name: orthanc-here\n"
        "    server: { kind: orthanc, tls: true, client_cert: optional }\n"
        "  - name: orthanc-elsewhere\n"
        "    server: { kind: orthanc, version: 1.12.7, tls: true, client_cert: optional }\n"
        "probes:\n"
        "  - client: pynetdicom\n"
        "    sni: right\n"
        "expect:\n"
        "  - { match: {}, outcome: pass }\n"
    )
    with down_after_a_failure(tmp_path):
        up = run_invoke(["up", "--scenario", str(scenario), "--backend", "local", "--out", str(tmp_path / "out")],
                        tmp_path)
        assert_one_line_error(up, "orthanc 1.12.7 is asked for")
        assert "starting orthanc-here" in up.stdout
        assert not (tmp_path / "state" / "dicomtls" / "up.json").exists()


def test_up_of_a_scenario_this_backend_cannot_run_starts_nothing(tmp_path: Path, clean_slate: Path) -> None:
    with down_after_a_failure(tmp_path):
        up = run_invoke(["up", "--scenario", "versions", "--backend", "local", "--out", str(tmp_path / "out")],
                        tmp_path)
        assert_one_line_error(up, "versions runs on docker", "--backend docker")
        assert "starting" not in up.stdout


@contextmanager
def down_after_a_failure(tmp_path: Path) -> Iterator[None]:
    """What a failing `up` left stays for the test to see, then goes: nothing outlives the test either way."""
    try:
        yield
    finally:
        if (tmp_path / "state" / "dicomtls" / "up.json").exists():
            run_invoke(["down"], tmp_path)
