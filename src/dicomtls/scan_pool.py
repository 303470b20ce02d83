"""TLS scans in worker processes, beside the environments' cells.

A scan is several hundred TLS handshakes driven from Python (sslyze and nassl):
about 0.75 CPU seconds per environment, measured on the default matrix, nearly
all of it holding the GIL. In dicomtls's own process that time is taken from
every other environment in flight (their pynetdicom clients, log readers and
REST checks), so environments side by side would queue behind each other's
scans. Worker processes take it off the GIL and onto the other cores.

Workers are forked from a server process that imported sslyze once (the
forkserver start method, on Linux): a spawned worker imports it anew, about
0.9 CPU seconds each, so two workers had cost a run with environments side by
side more CPU than one at a time. Workers ignore Ctrl-C (dicomtls handles it
and closes the pool) and exit on their own when dicomtls is gone, even after a
SIGKILL: a pool worker holds both ends of its task pipe, so it would otherwise
wait for work forever. A forked worker watches dicomtls through a pidfd, not
its parent: the fork server lives as long as any worker does, so the two would
wait for each other.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import select
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from types import TracebackType

from dicomtls.scan import Endpoint, ScanResult, scan

_ORPHAN_CHECK_S = 0.2
_PRELOAD = ["dicomtls.scan", "sslyze"]


def _context() -> multiprocessing.context.BaseContext:
    if not _pidfds():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)  # no effect once this process's fork server runs: it has them
    return context


def _pidfds() -> bool:
    """Whether this kernel hands out pidfds (Linux 5.3 and later), which forked workers watch dicomtls with."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


class ScanPool:
    """Up to ``workers`` scans at once, each in its own process; started at once so that the workers' imports
    overlap the environments' starts instead of delaying the first scans."""

    def __init__(self, workers: int) -> None:
        self._pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=_context(),
                                         initializer=_worker_started, initargs=(os.getpid(),))
        for _ in range(max(1, workers)):
            self._pool.submit(_ready)

    def scan(self, endpoint: Endpoint) -> ScanResult:
        return self._pool.submit(scan, endpoint).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        _stop_fork_server()

    def __enter__(self) -> "ScanPool":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _stop_fork_server() -> None:
    """Stop and reap this process's fork server once its workers are gone, as a spawned worker is reaped: no
    process of the run outlives it, and the scans' CPU counts among dicomtls's children (the fork server reaped
    its workers), which `invoke bench` measures. Python has no public call for it; its own tests use this one."""
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


def _worker_started(dicomtls: int) -> None:
    """``dicomtls``: the run's process, whose end ends this worker too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(dicomtls,), daemon=True, name="orphan-check").start()
    for module in _PRELOAD:  # a spawned worker's start, done before the first scan arrives; forked ones have them
        importlib.import_module(module)


def _exit_with(dicomtls: int) -> None:
    """A pidfd turns readable once its process has ended, reaped or not. Without pidfds the worker was spawned,
    so dicomtls is its parent, and a change of parent says the same."""
    if _pidfds():
        try:
            select.select([os.pidfd_open(dicomtls)], [], [])
        except ProcessLookupError:
            pass  # gone before this worker got here
        os._exit(1)
    while os.getppid() == dicomtls:
        time.sleep(_ORPHAN_CHECK_S)
    os._exit(1)


def _ready() -> None:
    """A task that returns at once: submitting one per worker starts them all now."""
