"""A run always ends: a cell that outlasts its deadline, and a run that outlasts its own, end as `timeout` with what
was seen, exit 1, and leave nothing running: real clients against a real socket that never answers, and real
environments."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from dicomtls import clients, runner
from dicomtls.backends import EnvironmentPlan, RunningEnvironment
from dicomtls.backends.local import LocalBackend
from dicomtls.cell import run_cell
from dicomtls.components import Address
from dicomtls.deadlines import Deadlines
from dicomtls.diagnose import Reason
from dicomtls.pki import PkiSpec, ensure_pki
from dicomtls.probes import Target
from dicomtls.probes.dcmtk import Dcmtk
from dicomtls.probes.pynetdicom import Pynetdicom
from dicomtls.probes.stunnel import DcmtkViaStunnel
from dicomtls.scan import SCAN_TIMEOUT_S, Endpoint, scan
from dicomtls.scenario import Cell, Probe, parse_scenario

from .conftest import run_invoke, started_under

pytestmark = pytest.mark.integration

NAME = "silent.deadline.test"


class SilentEndpoint:
    """A real listening socket on loopback that accepts every connection and never says a word (no TLS, no DICOM):
    the peer a client waits on until its own timeouts, or a deadline, end the wait. Counts the connections its
    peers closed, so a test sees that the client was stopped rather than left waiting."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.closed_by_peer = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        with conn:
            while not self._stop.is_set():
                try:
                    if not conn.recv(65536):  # the peer closed: what a stopped client does
                        with self._lock:
                            self.closed_by_peer += 1
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentEndpoint]:
    endpoint = SilentEndpoint()
    yield endpoint
    endpoint.close()


def clients_of(port: int) -> list[str]:
    """Processes still talking to ``port`` (dcmtk, stunnel, the wrapper shell): what a stopped cell must not leave."""
    found = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        if p.info["pid"] == psutil.Process().pid:
            continue
        cmdline = " ".join(p.info["cmdline"] or ())
        if str(port) in cmdline.split() or f"127.0.0.1:{port}" in cmdline:
            found.append(f"{p.info['name']} ({p.info['pid']}): {cmdline}")
    return found


@pytest.mark.parametrize("client", ["dcmtk", "pynetdicom", "dcmtk-stunnel"])
def test_a_cell_against_an_endpoint_that_never_answers_is_timeout_at_its_deadline(
        tmp_path: Path, silent: SilentEndpoint, client: str) -> None:
    pki = ensure_pki(PkiSpec(server_names=(NAME,)), tmp_path / "pki")
    target = Target(Address("127.0.0.1", silent.port), (NAME,), pki)
    env = RunningEnvironment(EnvironmentPlan("silent", "silent", (), None, pki), target.address, {}, {}, tmp_path)
    clients = {"dcmtk": Dcmtk(), "pynetdicom": Pynetdicom(), "dcmtk-stunnel": DcmtkViaStunnel(Dcmtk())}
    cell = Cell("deadlines", "silent", Probe(client, "none", "valid", "store-ct"), "pass", None)

    began = time.monotonic()
    result = run_cell(cell, env, target, clients, tmp_path / "objects", deadlines=Deadlines(cell_s=2.0))
    took = time.monotonic() - began

    # The clients' own timeouts are 15 s (dcmtk's -to, pynetdicom's handshake 5 s): the deadline ended it.
    assert 2.0 <= took < 4.5, took
    assert result.reason is Reason.TIMEOUT and result.deadline == "cell" and result.actual == "fail"
    assert result.verdict == "unexpected"
    assert "deadline of 2 s" in result.summary and "--timeout cell=" in result.fix
    assert any(line.startswith("client: ") for line in result.evidence), result.evidence
    assert silent.accepted >= 1
    deadline = time.monotonic() + 5
    while (clients_of(silent.port) or silent.closed_by_peer < silent.accepted) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not clients_of(silent.port), "the stopped client is still running"
    assert silent.closed_by_peer == silent.accepted, "a connection of the stopped client is still open"


def test_probe_of_an_endpoint_that_never_answers_times_out_each_cell_and_exits_1(
        tmp_path: Path, silent: SilentEndpoint) -> None:
    pki = ensure_pki(PkiSpec(server_names=(NAME,)), tmp_path / "pki")
    proc = run_invoke(["probe", "--target", f"127.0.0.1:{silent.port}", "--ca", str(pki.ca_cert), "--out",
                       str(tmp_path / "out"), "--timeout", "cell=1.5"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    cells = json.loads((tmp_path / "out" / "probe" / "results.json").read_text())["cells"]
    assert cells and all(c["reason"] == "timeout" and c["deadline"] == "cell" for c in cells), cells
    assert all(c["evidence"] and c["duration_s"] < 4.0 for c in cells), cells
    # probe runs every registered client that aims at a DICOM port
    assert {c["client"] for c in cells} == {c.name for c in clients.listed() if c.reaches_dicom_entry}
    assert not clients_of(silent.port)


def test_scan_of_an_endpoint_that_never_answers_is_a_scan_error_after_one_handshake_timeout(
        silent: SilentEndpoint) -> None:
    result = scan(Endpoint("127.0.0.1", silent.port, sni=NAME))
    assert result.error is not None and "answered no ClientHello within" in result.error, result.error
    # One handshake's timeout, not sslyze's every version with retries (about a minute).
    assert result.duration_s < 3 * SCAN_TIMEOUT_S, result.duration_s


ONE_ENVOY = """
name: deadline-run
description: One environment with more cells than a few seconds hold.
pki: {topology: one-level, server_names: [dicom.deadline.test]}
environments:
  - name: envoy-any
    proxy: {kind: envoy}
probes:
  - client: [dcmtk, pynetdicom]
    client_cert: [none, valid]
    operation: [echo, store-ct, store-large]
  - client: [pynetdicom]
    sni: [right]
    client_cert: [none, valid]
    operation: [echo, store-ct, store-large]
expect:
  - match: {}
    outcome: pass
"""


def test_cells_past_their_deadline_on_a_real_environment_are_timeout_and_nothing_is_left(
        tmp_path: Path, clean_slate: Path) -> None:
    scenario = tmp_path / "deadline-run.yaml"
    scenario.write_text(ONE_ENVOY)
    out = tmp_path / "out"
    proc = run_invoke(["matrix", "--scenario", str(scenario), "--out", str(out), "--timeout", "cell=0.001"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert len(doc["cells"]) == 18
    assert all(c["reason"] == "timeout" and c["deadline"] == "cell" and c["verdict"] == "unexpected"
               for c in doc["cells"]), [(c["id"], c["reason"]) for c in doc["cells"]]
    assert not doc["environments"][0]["error"]
    for report in ("junit.xml", "summary.md", "report.html"):
        assert "timeout" in (out / report).read_text()


def test_a_run_past_its_deadline_reports_the_rest_as_timeout_exits_1_and_leaves_nothing(
        tmp_path: Path, clean_slate: Path) -> None:
    scenario = tmp_path / "deadline-run.yaml"
    scenario.write_text(ONE_ENVOY)
    out = tmp_path / "out"
    began = time.monotonic()
    proc = run_invoke(["matrix", "--scenario", str(scenario), "--out", str(out), "--timeout", "run=3"], tmp_path)
    took = time.monotonic() - began
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert len(cells) == 18
    timed_out = [c for c in cells if c["reason"] == "timeout"]
    assert timed_out and all(c["deadline"] == "run" for c in timed_out)
    assert all(c["verdict"] == "ok" for c in cells if c["reason"] != "timeout")  # what ran before it, as usual
    assert any("passed before this cell ran" in c["summary"] for c in timed_out)
    assert took < 30, took  # the deadline, startup and teardown: not the 18 cells' worth of waiting


class _Silent:
    def start(self, total: int) -> None: ...
    def environment(self, name: str, state: str) -> None: ...
    def cell_done(self, result: object) -> None: ...
    def stop(self) -> None: ...


def test_an_environment_stuck_past_the_runs_deadline_is_stopped_and_reported_unfinished(
        tmp_path: Path, clean_slate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wait nothing bounds (here: a scan that never returns) holds its environment's thread: the run stops
    waiting for it a grace after its deadline, stops that environment itself and reports the cells as timeout."""
    release = threading.Event()

    def scan_that_hangs(env: RunningEnvironment, scanner: object) -> None:
        release.wait(120)
        raise RuntimeError("released after the test")

    monkeypatch.setattr(runner, "scan_environment", scan_that_hangs)
    monkeypatch.setattr(runner, "STUCK_GRACE_S", 1.0)
    began = time.monotonic()
    try:
        result = runner.run_matrix([parse_scenario(ONE_ENVOY, "test")], tmp_path / "out",
                                   LocalBackend(tmp_path / "envs"), _Silent(), deadlines=Deadlines(run_s=5))
        took = time.monotonic() - began
        assert not started_under(tmp_path), "the stuck environment was not stopped"
    finally:
        release.set()
    assert took < 20, took
    [info] = result.environments
    assert info.error is not None and info.error.startswith("still busy 1 s after the run's deadline")
    assert len(result.cells) == 18 and all(c.reason is Reason.TIMEOUT and c.deadline == "run" for c in result.cells)
    assert result.exit_code == 1
