"""A scan that cannot finish ends as a scan error with its reason, never as a hang, an exception or a verdict.

The pool's workers are real processes (forked from the fork server, as in a run); what they run instead of a
scan is a function here that dies or never returns, as nassl's C code or a stuck sslyze thread would. Inside a
scan, sslyze's own wait is bounded too: a thread of it that dies, or results that never come.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from nassl._nassl import OpenSSLError

from dicomtls.scan import SCAN_ERROR, Endpoint, ScanResult, _EnumerationFailed, _results
from dicomtls.scan_pool import ScanPool

ENDPOINT = Endpoint("127.0.0.1", 9, "dicom.example.test")


def _killed(endpoint: Endpoint) -> ScanResult:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def _stuck(endpoint: Endpoint) -> ScanResult:
    time.sleep(3600)
    raise AssertionError("unreachable")


def _raises(endpoint: Endpoint) -> ScanResult:
    raise KeyError("a bug in the scan")


def test_a_scan_worker_that_dies_is_that_scans_error_and_the_pool_goes_on() -> None:
    began = time.monotonic()
    with ScanPool(1, scanner=_killed) as pool:
        first, second = pool.scan(ENDPOINT), pool.scan(ENDPOINT)
    assert time.monotonic() - began < 60
    for result in (first, second):
        assert result.status == SCAN_ERROR and result.verdicts == []
        assert result.error == "the scan worker process died (killed by SIGKILL)"
    assert first.to_dict()["status"] == "scan-error"


def test_a_stuck_scan_worker_is_killed_at_the_deadline() -> None:
    with ScanPool(1, scanner=_stuck, deadline_s=1.0) as pool:
        began = time.monotonic()
        result = pool.scan(ENDPOINT)
        assert time.monotonic() - began < 30
    assert result.status == SCAN_ERROR
    assert result.error == "the scan did not finish within 1 s: its worker was killed"


def test_an_exception_in_a_scan_worker_is_named_by_its_first_line() -> None:
    with ScanPool(1, scanner=_raises) as pool:
        result = pool.scan(ENDPOINT)
    assert result.error == "the scan failed: KeyError: 'a bug in the scan'"


def test_a_closed_pool_scans_nothing_and_says_so() -> None:
    pool = ScanPool(1, scanner=_stuck)
    pool.close()
    assert pool.scan(ENDPOINT).error == "not scanned: the run is ending"


class _SslyzeThread(threading.Thread):
    """Stands for one of sslyze's connectivity threads (told apart from others by their module)."""


_SslyzeThread.__module__ = "sslyze.scanner._mass_connectivity_tester"


class _Scanner:
    """sslyze's Scanner as it behaved with a client chain SSL 2.0 could not load: its connectivity thread raises,
    and get_results waits for that thread's result forever."""

    def __init__(self, dies: bool) -> None:
        self._asked = threading.Event()
        self._dies = dies

    def queue_scans(self, requests: list[object]) -> None:
        _SslyzeThread(target=self._connect, name="connectivity", daemon=True).start()

    def _connect(self) -> None:
        self._asked.wait()
        if self._dies:
            raise OpenSSLError("Unknown error: invalid input, usage, or OpenSSL build configuration?")

    def get_results(self) -> Iterator[object]:
        self._asked.set()
        threading.Event().wait()
        yield from ()


def test_an_sslyze_thread_that_dies_ends_the_wait_with_its_error_at_once() -> None:
    began = time.monotonic()
    with pytest.raises(_EnumerationFailed) as failed:
        _results(_Scanner(dies=True), object(), deadline_s=120)
    assert time.monotonic() - began < 10
    assert str(failed.value) == ("a thread of sslyze failed: connectivity: OpenSSLError: Unknown error: invalid "
                                 "input, usage, or OpenSSL build configuration?")


def test_sslyze_results_that_never_come_end_at_the_deadline() -> None:
    with pytest.raises(_EnumerationFailed) as failed:
        _results(_Scanner(dies=False), object(), deadline_s=1)
    assert str(failed.value) == "sslyze did not finish within 1 s"
