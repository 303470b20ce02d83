"""`invoke up` leaves a scenario running for hand probing with dcmtk; `invoke down` stops it all."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from .conftest import run_invoke

pytestmark = pytest.mark.integration


def test_up_prints_endpoints_a_person_can_probe_and_down_stops_them(tmp_path: Path, clean_slate: Path) -> None:
    up = run_invoke(["up", "--scenario", "envoy-mtls", "--out", str(tmp_path / "out")], tmp_path)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((tmp_path / "state" / "dicomtls" / "up.json").read_text())
        endpoint = state[0]
        assert f"{endpoint['address']}:{endpoint['port']}" in up.stdout
        echo = subprocess.run(
            ["/usr/bin/echoscu", "-aec", "ORTHANC", "+tls", endpoint["client_key"], endpoint["client_cert"],
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
