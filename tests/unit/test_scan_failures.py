"""A scan that cannot finish ends as a scan error with its reason, never as a hang, an exception or a verdict.

The pool's workers are real processes (forked from the fork server, as in a run); what they run instead of a
scan is a function here that dies or never returns, as nassl's C code or a stuck sslyze thread would.
"""

from __future__ import annotations

import os
import signal
import time

from dicomtls.scan import SCAN_ERROR, Endpoint, ScanResult
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
