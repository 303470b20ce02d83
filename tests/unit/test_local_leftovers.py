"""The local backend sees what a soak asks about: a component's resident memory, and a process left behind."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

from dicomtls.backends.local import LocalBackend, LocalProcess, _start_time


def _sleeper(workdir: Path) -> subprocess.Popen[bytes]:
    """``sleep`` in a session of its own, returned once it is that: Popen returns after the fork, and until the
    child has called setsid() and exec'd, its process group is still the test's (a loaded machine showed it)."""
    workdir.mkdir(parents=True)
    proc = subprocess.Popen(["sleep", "60"], cwd=workdir, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if os.getpgid(proc.pid) == proc.pid and os.readlink(f"/proc/{proc.pid}/exe").endswith("/sleep"):
                return proc
        except OSError:
            pass
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("sleep did not start in a session of its own within 10 s")


def test_a_process_still_working_in_a_stopped_environments_directory_is_a_leftover(tmp_path: Path) -> None:
    proc = _sleeper(tmp_path / "env" / "envoy")
    record = LocalProcess("envoy", proc.pid, _start_time(proc.pid) or "")
    backend = LocalBackend(tmp_path)
    try:
        left = backend.leftovers([asdict(record)], tmp_path / "env")
        assert f"envoy (pid {proc.pid}) still running" in left
        assert any(f"pid {proc.pid} still running in {tmp_path / 'env' / 'envoy'}" == line for line in left)
        assert backend.leftovers([], tmp_path / "elsewhere") == []
    finally:
        proc.kill()
        proc.wait()
    assert backend.leftovers([asdict(record)], tmp_path / "env") == []


def test_a_components_memory_is_its_process_groups_resident_bytes(tmp_path: Path) -> None:
    from dicomtls.backends import RunningEnvironment
    from dicomtls.components import Address

    proc = _sleeper(tmp_path / "env" / "orthanc")
    env = RunningEnvironment(plan=None, entry=Address("127.0.0.1", 1), rest_urls={}, logs={},  # type: ignore[arg-type]
                             workdir=tmp_path / "env",
                             handles=[LocalProcess("orthanc", proc.pid, _start_time(proc.pid) or "")])
    try:
        resident = LocalBackend(tmp_path).memory(env)
        assert set(resident) == {"orthanc"} and resident["orthanc"] > 100_000
    finally:
        proc.kill()
        proc.wait()
    assert LocalBackend(tmp_path).memory(env) == {}
