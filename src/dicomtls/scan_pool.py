"""TLS scans in worker processes, beside the environments' cells.

A scan is several hundred TLS handshakes driven from Python (sslyze and nassl):
about 0.75 CPU seconds per environment, measured on the default matrix, nearly
all of it holding the GIL. In dicomtls's own process that time is taken from
every other environment in flight (their pynetdicom clients, log readers and
REST checks), so environments side by side would queue behind each other's
scans. Worker processes take it off the GIL and onto the other cores.

Each scan runs in a process of its own, forked from a server process that
imported sslyze once (the forkserver start method, on Linux; a spawned worker
imports it anew, about 0.9 CPU seconds each, so only kernels without pidfds pay
that, per scan). One process per scan is what lets every failure stay that
scan's: a worker that dies (a crash in nassl's C code, the OOM killer) or
overruns the deadline is killed alone and its environment gets a scan error
with the reason, where a shared pool of workers is broken as a whole by one
death and cannot stop one stuck worker. A fork costs milliseconds; the scan,
hundreds.

Workers ignore Ctrl-C (dicomtls handles it and closes the pool, which kills the
scans in flight) and exit on their own when dicomtls is gone, even after a
SIGKILL. A forked worker watches dicomtls through a pidfd, not its parent: the
fork server lives as long as any worker does, so the two would wait for each
other.
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from types import TracebackType

from dicomtls.crash import first_line
from dicomtls.scan import Endpoint, ScanResult, scan

SCAN_DEADLINE_S = 300.0
"""A scan's own waits end it well before (each socket SCAN_TIMEOUT_S, sslyze's enumeration ENUMERATION_DEADLINE_S):
this one is for a worker stuck where Python cannot stop it."""
_ORPHAN_CHECK_S = 0.2
_EXIT_GRACE_S = 5.0
_PRELOAD = ["dicomtls.scan", "sslyze"]


def _context() -> multiprocessing.context.SpawnContext | multiprocessing.context.ForkServerContext:
    if not _pidfds():
        return multiprocessing.get_context("spawn")
    context: multiprocessing.context.ForkServerContext = multiprocessing.get_context("forkserver")
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
    """Up to ``workers`` scans at once, each in its own process, each with a deadline. The fork server starts at
    once, so that its import of sslyze overlaps the environments' starts instead of delaying the first scans.
    ``scanner`` runs in the worker (a module-level function: it is sent by name)."""

    def __init__(self, workers: int, scanner: Callable[[Endpoint], ScanResult] = scan,
                 deadline_s: float = SCAN_DEADLINE_S) -> None:
        self._context = _context()
        self._slots = threading.BoundedSemaphore(max(1, workers))
        self._scanner = scanner
        self._deadline_s = deadline_s
        self._running: set[multiprocessing.process.BaseProcess] = set()
        self._lock = threading.Lock()
        self._closed = False
        if self._context.get_start_method() == "forkserver":
            from multiprocessing import forkserver

            forkserver.ensure_running()

    def scan(self, endpoint: Endpoint) -> ScanResult:
        """The worker's result, or a scan error saying why there is none; never raises for the worker's sake."""
        with self._slots:  # each holder leaves by its deadline
            began = time.monotonic()
            try:
                return self._scan(endpoint)
            except Exception as exc:  # noqa: BLE001 - starting or reading the worker failed: this scan's error
                return _failed(endpoint, f"the scan worker could not run: {first_line(exc)}", began)

    def _scan(self, endpoint: Endpoint) -> ScanResult:
        began = time.monotonic()
        receive, send = self._context.Pipe(duplex=False)
        worker = self._context.Process(target=_scan_in_worker, args=(self._scanner, endpoint, send, os.getpid()),
                                       name=f"scan {endpoint}", daemon=True)
        try:
            with self._lock:
                if self._closed:
                    return _failed(endpoint, "not scanned: the run is ending", began)
                self._running.add(worker)
                worker.start()
            send.close()  # the worker holds the only writing end: its death reads as the end of the pipe
            ready = multiprocessing.connection.wait([receive, worker.sentinel], timeout=self._deadline_s)
            if receive in ready:
                try:
                    found: ScanResult = receive.recv()
                    return found
                except EOFError:
                    pass  # it died before sending anything
            if not ready:
                worker.kill()
                return _failed(endpoint, f"the scan did not finish within {self._deadline_s:.0f} s: its worker "
                                         "was killed", began)
            worker.join(timeout=_EXIT_GRACE_S)
            return _failed(endpoint, f"the scan worker process died ({_how(worker.exitcode)})", began)
        finally:
            receive.close()
            send.close()
            if worker.pid is not None:  # started
                worker.join(timeout=_EXIT_GRACE_S)  # its result is in: its way out is not waited for longer
                if worker.is_alive():
                    worker.kill()
                    worker.join()
            with self._lock:
                self._running.discard(worker)

    def close(self) -> None:
        """Kill the scans still in flight (their waiters get a scan error at once) and stop the fork server."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for worker in running:
            worker.kill()
        for worker in running:
            worker.join()
        _stop_fork_server()

    def __enter__(self) -> "ScanPool":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _failed(endpoint: Endpoint, why: str, began: float) -> ScanResult:
    return ScanResult(str(endpoint), endpoint.sni, endpoint.client_cert is not None, error=why,
                      duration_s=round(time.monotonic() - began, 3))


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


def _stop_fork_server() -> None:
    """Stop and reap this process's fork server once its workers are gone, as a spawned worker is reaped, and the
    resource tracker the fork server started (else it outlives the run by a moment, an orphan until it reads its
    pipe's end): no process of the run outlives it, and the scans' CPU counts among dicomtls's children (the fork
    server reaped its workers), which `invoke bench` measures. Python has no public call for either; its own tests
    use these."""
    from multiprocessing import forkserver, resource_tracker

    for owner in (getattr(forkserver, "_forkserver", None), getattr(resource_tracker, "_resource_tracker", None)):
        stop = getattr(owner, "_stop", None)
        if stop is not None:
            stop()


def _scan_in_worker(scanner: Callable[[Endpoint], ScanResult], endpoint: Endpoint,
                    send: multiprocessing.connection.Connection, dicomtls: int) -> None:
    """A worker's whole life: one scan, its result sent back. ``dicomtls``: the run's process, whose end ends this
    worker too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(dicomtls,), daemon=True, name="orphan-check").start()
    for module in _PRELOAD:  # a spawned worker's start; forked ones have them
        importlib.import_module(module)
    began = time.monotonic()
    try:
        result = scanner(endpoint)
    except Exception as exc:  # noqa: BLE001 - scan() returns its errors; this is for anything it let through
        result = _failed(endpoint, f"the scan failed: {first_line(exc)}", began)
    send.send(result)
    send.close()


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
