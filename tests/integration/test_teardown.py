"""After a normal run, a failing run, Ctrl-C, SIGTERM or even SIGKILL, nothing the tool started is left."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from .conftest import ROOT, interrupted_run, invoke_env, run_invoke

pytestmark = pytest.mark.integration

WRONG_EXPECTATIONS = """
name: wrong-expectations
description: Claims that mTLS lets a client without a certificate through, which it must not.
pki: {topology: one-level, server_names: [dicom.teardown.test]}
environments:
  - name: mtls
    proxy: {kind: envoy, client_cert: required}
probes:
  - client: [dcmtk, pynetdicom]
    client_cert: [none, valid]
expect:
  - match: {}
    outcome: pass
"""


def test_failing_run_exits_one_and_leaves_nothing_behind(tmp_path: Path, clean_slate: Path) -> None:
    scenario = tmp_path / "wrong-expectations.yaml"
    scenario.write_text(WRONG_EXPECTATIONS)
    proc = run_invoke(["matrix", "--scenario", str(scenario), "--out", str(tmp_path / "out")], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cells = json.loads((tmp_path / "out" / "results.json").read_text())["cells"]
    unexpected = {(c["client"], c["reason"]) for c in cells if c["verdict"] == "unexpected"}
    assert unexpected == {("dcmtk", "tls-cert-required"), ("pynetdicom", "tls-cert-required")}
    assert "‼" in proc.stdout


def envoys_under(tmp_path: Path) -> int:
    """Envoys whose config lives under tmp_path: this run's environments that are up."""
    return sum(1 for p in psutil.process_iter(["name", "cmdline"])
               if p.info["name"] == "envoy" and any(str(tmp_path) in a for a in p.info["cmdline"] or ()))


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 130), (signal.SIGKILL, -9)])
def test_interrupted_run_leaves_nothing_behind(tmp_path: Path, clean_slate: Path, sig: int, code: int) -> None:
    returncode, err = interrupted_run(["matrix", "--scenario", "orthweb-envoy", "--out", str(tmp_path / "out")],
                                      tmp_path, lambda: envoys_under(tmp_path) >= 1, sig, "the matrix started Envoy")
    assert returncode == code
    if sig != signal.SIGKILL:
        assert "interrupted" in err and "Traceback" not in err


THREE_AT_ONCE = """
name: three-at-once
description: Three environments that run side by side, to be interrupted while all are up.
pki: {topology: one-level, server_names: [dicom.teardown.test]}
environments:
  - name: envoy-any
    proxy: {kind: envoy}
  - name: envoy-named
    proxy: {kind: envoy, sni: named}
  - name: envoy-mtls
    proxy: {kind: envoy, client_cert: required}
probes:
  - client: [dcmtk, pynetdicom]
    client_cert: [none, valid]
    operation: [echo, store-ct, store-large]
expect:
  - match: {}
    outcome: pass
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 130), (signal.SIGKILL, -9)])
def test_interrupted_run_with_environments_in_flight_leaves_nothing_behind(tmp_path: Path, clean_slate: Path,
                                                                          sig: int, code: int) -> None:
    scenario = tmp_path / "three-at-once.yaml"
    scenario.write_text(THREE_AT_ONCE)
    returncode, err = interrupted_run(
        ["matrix", "--scenario", str(scenario), "--jobs", "3", "--out", str(tmp_path / "out")], tmp_path,
        lambda: envoys_under(tmp_path) >= 2, sig, "two environments ran at once", timeout_s=90)
    assert returncode == code
    if sig != signal.SIGKILL:
        assert "interrupted" in err and "Traceback" not in err


def test_ctrl_c_pressed_again_and_again_during_teardown_does_not_cut_it_short(tmp_path: Path,
                                                                            clean_slate: Path) -> None:
    scenario = tmp_path / "three-at-once.yaml"
    scenario.write_text(THREE_AT_ONCE)
    returncode, err = interrupted_run(
        ["matrix", "--scenario", str(scenario), "--jobs", "3", "--out", str(tmp_path / "out")], tmp_path,
        lambda: envoys_under(tmp_path) >= 2, signal.SIGINT, "two environments ran at once", timeout_s=90,
        again_every_s=0.02)
    assert returncode == 130, err
    assert "interrupted; everything started was stopped" in err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def helpers_of_runs_under(tmp_path: Path) -> set[int]:
    """Python processes that a run writing under tmp_path started through multiprocessing: its scan workers and
    their resource tracker."""
    found = set()
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "multiprocessing" in " ".join(p.info["cmdline"] or []) and any(
                    str(tmp_path) in " ".join(a.cmdline()) for a in p.parents()):
                found.add(p.pid)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGKILL, -9)])
def test_scan_workers_end_with_the_run_even_when_it_is_killed(tmp_path: Path, clean_slate: Path, sig: int,
                                                               code: int) -> None:
    scenario = tmp_path / "three-at-once.yaml"
    scenario.write_text(THREE_AT_ONCE)
    workers: set[int] = set()

    def scanning() -> bool:
        workers.update(helpers_of_runs_under(tmp_path))
        return len(workers) >= 2 and envoys_under(tmp_path) >= 2

    returncode, _ = interrupted_run(
        ["matrix", "--scenario", str(scenario), "--jobs", "3", "--out", str(tmp_path / "out")], tmp_path,
        scanning, sig, "two scan workers and two environments were up", timeout_s=90)
    assert returncode == code
    deadline = time.monotonic() + 5
    while (alive := {pid for pid in workers if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"}) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"scan workers outlived the run: {alive}"


def envoy_for_three_seconds(tmp_path: Path) -> Path:
    """The real Envoy, stopped by SIGTERM three seconds after it starts: a component that dies mid-run."""
    envoy = shutil.which("envoy", path=str(Path(sys.executable).parent))
    assert envoy, "envoy is installed into the venv by install.sh"
    wrapper = tmp_path / "envoy-for-3s"
    wrapper.write_text(f"#!/bin/sh\nexec timeout 3 {envoy} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


DYING_PROXY = """
name: dying-proxy
description: Envoy stops three seconds after it starts, in the middle of the run.
pki: {topology: one-level, server_names: [dicom.dying.test]}
environments:
  - name: envoy-that-dies
    proxy: {kind: envoy}
probes:
  - client: pynetdicom
    sni: [none, right]
    client_cert: [none, valid]
    operation: [echo, store-ct]
  - client: dcmtk
    client_cert: [none, valid]
    server_cert_check: [verify, ignore]
    operation: [echo, store-ct]
expect:
  - match: {}
    outcome: pass
"""


def test_component_that_stops_fails_the_remaining_cells_and_its_log_is_kept(tmp_path: Path,
                                                                             clean_slate: Path) -> None:
    wrapper = envoy_for_three_seconds(tmp_path)
    scenario = tmp_path / "dying-proxy.yaml"
    scenario.write_text(DYING_PROXY)
    proc = run_invoke(["matrix", "--scenario", str(scenario), "--out", str(tmp_path / "out")],
                      tmp_path, DICOMTLS_ENVOY_BIN=str(wrapper))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    failed = [c for c in results["cells"] if c["reason"] is not None]
    assert failed, "Envoy stopped, yet every cell ran as if it had not"
    assert {c["reason"] for c in failed} == {"environment-failed"}, "a stopped proxy diagnosed as something else"
    assert all("envoy exited" in " ".join(c["evidence"]) for c in failed)
    kept = tmp_path / "out" / "logs" / "envoy-that-dies"
    assert (kept / "envoy" / "output.log").is_file()


DYING_AMONG_OTHERS = DYING_PROXY.replace("name: dying-proxy", "name: dying-among-others").replace(
    """  - name: envoy-that-dies
    proxy: {kind: envoy}
""", """  - name: envoy-that-dies
    proxy: {kind: envoy}
  - name: nginx-beside-it
    proxy: {kind: nginx}
  - name: haproxy-beside-it
    proxy: {kind: haproxy}
""")


def test_a_component_that_stops_fails_only_its_own_environment_while_others_run_beside_it(
        tmp_path: Path, clean_slate: Path) -> None:
    wrapper = envoy_for_three_seconds(tmp_path)
    scenario = tmp_path / "dying-among-others.yaml"
    scenario.write_text(DYING_AMONG_OTHERS)
    proc = run_invoke(["matrix", "--scenario", str(scenario), "--jobs", "3", "--out", str(tmp_path / "out")],
                      tmp_path, DICOMTLS_ENVOY_BIN=str(wrapper))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    cells = json.loads((tmp_path / "out" / "results.json").read_text())["cells"]
    dying = [c for c in cells if c["environment"] == "envoy-that-dies" and c["reason"] is not None]
    assert dying and {c["reason"] for c in dying} == {"environment-failed"}
    beside = [c for c in cells if c["environment"] != "envoy-that-dies"]
    assert beside and {c["verdict"] for c in beside} == {"ok"}, [c["id"] for c in beside if c["verdict"] != "ok"]


def _in_group(pgid: int) -> list[str]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getpgid(p.pid) == pgid:
                found.append(f"{p.pid}: {' '.join(p.info['cmdline'] or ['?'])}")
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


def test_a_normal_run_leaves_no_process_of_its_own_behind_not_even_for_a_moment(tmp_path: Path) -> None:
    """Its scans' fork server and multiprocessing's resource tracker are stopped and reaped before it exits, as its
    servers and proxies are: at the moment it ends, its process group is empty."""
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "matrix", "--backend", "local", "--scenario", "envoy-mtls",
                             "--out", str(tmp_path / "out")], cwd=ROOT, env=invoke_env(tmp_path),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    assert proc.wait(timeout=300) == 0
    assert _in_group(proc.pid) == []
