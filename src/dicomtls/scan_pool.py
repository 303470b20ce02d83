"""TLS scans in worker processes, beside the environments' cells.

A scan is several hundred TLS handshakes driven from Python (sslyze and nassl):
about 0.75 CPU seconds per environment, measured on the default matrix, nearly
all of it holding the GIL. In dicomtls's own process that time is taken from
every other environment in flight (their pynetdicom clients, log readers and
REST checks), so environments side by side would queue behind each other's
scans. Worker processes take it off the GIL and onto the other cores.

Workers ignore Ctrl-C (dicomtls handles it and closes the pool) and exit on
their own when dicomtls is gone, even after a SIGKILL: a pool worker holds
both ends of its task pipe, so it would otherwise wait for work forever.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from types import TracebackType

from dicomtls.scan import Endpoint, ScanResult, scan

_ORPHAN_CHECK_S = 0.2


class ScanPool:
    """Up to ``workers`` scans at once, each in its own process; started at once so that the workers' imports
    overlap the environments' starts instead of delaying the first scans."""

    def __init__(self, workers: int) -> None:
        self._pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_worker_started, initargs=(os.getpid(),))
        for _ in range(max(1, workers)):
            self._pool.submit(_ready)

    def scan(self, endpoint: Endpoint) -> ScanResult:
        return self._pool.submit(scan, endpoint).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "ScanPool":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _worker_started(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True, name="orphan-check").start()
    importlib.import_module("sslyze")  # most of a worker's start: done before the first scan arrives


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_ORPHAN_CHECK_S)
    os._exit(1)


def _ready() -> None:
    """A task that returns at once: submitting one per worker starts them all now."""
