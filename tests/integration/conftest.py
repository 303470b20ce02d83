"""Integration tests run the real Orthanc, Envoy, dcmtk and pynetdicom through `invoke`, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import psutil
import pytest

from dicomtls.backends import docker_answers

ROOT = Path(__file__).resolve().parents[2]
SERVER_NAMES = {"Orthanc", "envoy", "traefik", "nginx", "haproxy", "stunnel4"}


def invoke_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env.setdefault("DICOMTLS_BACKEND", "local")  # Docker tests ask for --backend docker themselves
    return env


def run_invoke(args: list[str], tmp_path: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**invoke_env(tmp_path), **env}, stdin=subprocess.DEVNULL,
    )


def leftovers_under(directory: Path, timeout_s: float = 10.0) -> tuple[set[int], set[int]]:
    """Servers started for ``directory`` (their command line names it) still alive after ``timeout_s``, and the
    ports they listen on. Scoped to the directory so that a neighbour's run on the same machine is not blamed."""
    deadline = time.monotonic() + timeout_s
    while True:
        pids = set(started_under(directory))
        if not pids or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ports = {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.pid in pids}
    return pids, ports


@pytest.fixture
def clean_slate(tmp_path: Path) -> Iterator[Path]:
    """Asserts after the test that nothing it started (an Orthanc, a proxy, their ports) is still running."""
    yield tmp_path
    pids, ports = leftovers_under(tmp_path)
    assert not pids, f"processes left running: {pids}"
    assert not ports, f"ports left listening: {ports}"


def started_under(directory: Path) -> list[int]:
    """Live Orthanc/Envoy processes whose command line names ``directory``: this test's, not a neighbour's."""
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] in SERVER_NAMES and p.status() != "zombie" and str(directory) in " ".join(p.info["cmdline"] or []):
                found.append(p.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def matrix_run(tmp: Path, *args: str, **env: str) -> dict[str, Any]:
    """One `invoke matrix` (``env``: variables set for it) with its results and whatever it left behind."""
    proc = run_invoke(["matrix", "--out", str(tmp / "out"), *args], tmp, **env)
    pids, ports = leftovers_under(tmp)
    results_file = tmp / "out" / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {"run": {}, "cells": []}
    return {"proc": proc, "results": results, "leftovers": (pids, ports), "out": tmp / "out"}


@pytest.fixture(scope="session")
def local_default_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The default matrix on the local backend, run once per session and shared by the tests that read it."""
    return matrix_run(tmp_path_factory.mktemp("local-default"), "--backend", "local")


EACH_BACKEND = ["local", pytest.param("docker", marks=pytest.mark.skipif(
    not docker_answers(), reason="no Docker engine answers (install.sh starts one)"))]
"""A module fixture's params for a run on each backend: Docker's skipped, with why, where no engine answers."""

SIDE_BY_SIDE = {"local": ("envoy-cipher-regression", "multi-site-sni"), "docker": ("envoy-sni-named-hosts", "versions")}
"""Per backend, the default scenarios a one-at-a-time run repeats to compare with the default run's side-by-side
answers (in the default run's order): environments of sites, versions and SNI routes, rather than
the whole default matrix again (versions runs on Docker only when named)."""


def scenario_options(names: tuple[str, ...]) -> list[str]:
    return [option for name in names for option in ("--scenario", name)]


def answers(run: dict[str, Any], scenarios: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """What a run concluded, in report order, without timings, ports or paths: one row per cell (``scenarios``: of
    those scenarios only)."""
    return [(c["id"], c["actual"], c["reason"], c["verdict"], c["summary"], c.get("site"), c.get("certificate"))
            for c in run["results"]["cells"] if not scenarios or c["scenario"] in scenarios]


def environment_order(run: dict[str, Any], scenarios: tuple[str, ...] = ()) -> list[tuple[str, int | None, str | None]]:
    """The environments in report order (``scenarios``: of those only, by name, as their positions differ)."""
    if scenarios:
        return [(e["name"], None, e.get("error")) for e in run["results"]["environments"]
                if set(e.get("scenarios", ())) & set(scenarios)]
    return [(e["name"], e["position"], e.get("error")) for e in run["results"]["environments"]]


def cells(run: dict[str, Any], **where: str) -> list[dict[str, Any]]:
    found = [c for c in run["results"]["cells"] if all(c[k] == v for k, v in where.items())]
    assert found, f"no cell matches {where}"
    return found


def environment(run: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in run["results"]["environments"] if e["name"] == name)


def interrupted_run(args: list[str], tmp_path: Path, ready: Callable[[], bool], sig: int, what: str,
                    timeout_s: float = 120, again_every_s: float | None = None) -> tuple[int, str]:
    """`invoke ARGS` in a session of its own, sent ``sig`` once ``ready()`` holds; its exit status and stderr.

    ``what`` names the state being waited for, for the failure message when it never comes; ``again_every_s``:
    then send it again at that interval until the run ends, as a user pressing Ctrl-C over and over does."""
    proc = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=invoke_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            assert proc.poll() is None, f"the run ended before {what}"
            assert time.monotonic() < deadline, f"never: {what}"
            time.sleep(0.1)
        os.kill(proc.pid, sig)
        while again_every_s is not None and time.monotonic() < deadline:
            try:
                proc.wait(timeout=again_every_s)
                break
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err
