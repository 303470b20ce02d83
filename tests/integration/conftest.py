"""Integration tests run the real Orthanc, Envoy, dcmtk and pynetdicom through `invoke`, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_NAMES = {"Orthanc", "envoy", "traefik", "nginx", "haproxy"}


@dataclass
class Snapshot:
    pids: set[int]
    ports: set[int]


def snapshot() -> Snapshot:
    pids = {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in SERVER_NAMES and p.status() != "zombie"}
    ports = {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    return Snapshot(pids, ports)


def leftovers(before: Snapshot, timeout_s: float = 10.0) -> tuple[set[int], set[int]]:
    """Servers and listening ports that appeared since `before` and are still there after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = snapshot()
        pids, ports = now.pids - before.pids, now.ports - before.ports
        if (not pids and not ports) or time.monotonic() > deadline:
            return pids, ports
        time.sleep(0.2)


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


@pytest.fixture
def clean_slate() -> Iterator[Snapshot]:
    """Asserts after the test that it left no Orthanc, no Envoy and no listening port behind."""
    before = snapshot()
    yield before
    pids, ports = leftovers(before)
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


def matrix_run(tmp: Path, *args: str) -> dict[str, Any]:
    """One `invoke matrix` with its results and whatever it left behind."""
    before = snapshot()
    proc = run_invoke(["matrix", "--out", str(tmp / "out"), *args], tmp)
    pids, ports = leftovers(before)
    results_file = tmp / "out" / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {"run": {}, "cells": []}
    return {"proc": proc, "results": results, "leftovers": (pids, ports), "out": tmp / "out"}


@pytest.fixture(scope="session")
def local_default_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The default matrix on the local backend, run once per session and shared by the tests that read it."""
    return matrix_run(tmp_path_factory.mktemp("local-default"), "--backend", "local")

