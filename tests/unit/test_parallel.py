"""What environments side by side share must not mix: objects, log capture, job counts."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest

from dicomtls.app import parse_jobs
from dicomtls.dicomdata import make_object
from dicomtls.errors import UsageError
from dicomtls.probes.pynetdicom import _LOGGER, _Capture
from dicomtls.runner import auto_jobs


def test_objects_made_side_by_side_each_carry_their_own_uid(tmp_path: Path) -> None:
    def one(i: int) -> tuple[str, str]:
        sent = make_object("store-ct", tmp_path / str(i))
        return sent.sop_instance_uid, str(pydicom.dcmread(sent.path).SOPInstanceUID)

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(one, range(64)))
    assert all(recorded == written for recorded, written in made)
    assert len({uid for uid, _ in made}) == 64


def test_a_log_capture_keeps_only_the_lines_of_its_own_threads() -> None:
    capture = _Capture()
    _LOGGER.addHandler(capture)
    try:
        mine = threading.Thread(target=lambda: _LOGGER.info("mine"))
        other = threading.Thread(target=lambda: _LOGGER.info("another environment's"))
        for t in (mine, other):
            t.start()
            t.join()
    finally:
        _LOGGER.removeHandler(capture)
    assert capture.lines({mine.name}) == ["mine"]
    assert _LOGGER.getEffectiveLevel() == logging.INFO


def test_jobs_is_a_positive_whole_number_or_auto() -> None:
    assert parse_jobs("3") == 3
    assert parse_jobs("auto") == auto_jobs() >= 1
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(UsageError, match="--jobs"):
            parse_jobs(bad)


def test_auto_jobs_stays_within_eight() -> None:
    assert 1 <= auto_jobs() <= 8
