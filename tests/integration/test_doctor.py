"""`invoke doctor` on this machine: one line per program a run needs, exit 1 exactly when one is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import run_invoke

pytestmark = pytest.mark.integration

PROGRAMS = ("Orthanc", "dcmtk", "stunnel", "nginx", "HAProxy", "Envoy", "Traefik", "Docker", "Chromium")


def program_lines(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines() if line.startswith("  ") and line.split()}


def test_doctor_names_every_program_and_exits_zero_only_when_none_is_missing(tmp_path: Path) -> None:
    proc = run_invoke(["doctor"], tmp_path, timeout=120)
    lines = program_lines(proc.stdout)
    assert set(PROGRAMS) <= set(lines), proc.stdout
    missing = [name for name, line in lines.items() if "MISSING" in line]
    assert proc.returncode == (1 if missing else 0), proc.stdout + proc.stderr
    assert ("everything is here" in proc.stdout) == (not missing)


def test_doctor_reports_a_program_that_is_not_where_it_is_pointed_to(tmp_path: Path) -> None:
    proc = run_invoke(["doctor"], tmp_path, timeout=120, DICOMTLS_HAPROXY_BIN=str(tmp_path / "no-haproxy"))
    assert proc.returncode == 1
    line = program_lines(proc.stdout)["HAProxy"]
    assert "MISSING" in line and "no-haproxy" in line and "DICOMTLS_HAPROXY_BIN" in line
    # The variable is the fix, not a package.
    assert "haproxy" not in "".join(l for l in proc.stdout.splitlines() if "apt-get install" in l)
    assert "Traceback" not in proc.stderr
