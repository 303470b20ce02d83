"""The objects the probes send: each a fresh instance, byte for byte what pydicom writes for its source."""

from __future__ import annotations

import copy
from pathlib import Path

import pydicom
import pytest

from dicomtls import dicomdata
from dicomtls.dicomdata import dataset_digest, make_object


@pytest.mark.parametrize("kind", ["store-ct", "store-large"])
def test_a_fresh_object_is_what_pydicom_writes_for_its_source_with_that_uid(kind: str, tmp_path: Path) -> None:
    sent = make_object(kind, tmp_path / "objects")
    source = copy.deepcopy(dicomdata._SOURCES[kind]())
    source.SOPInstanceUID = sent.sop_instance_uid
    source.file_meta = dicomdata._meta(str(source.SOPClassUID), sent.sop_instance_uid)
    reference = tmp_path / "reference.dcm"
    source.save_as(reference, enforce_file_format=True)
    written = sent.path.read_bytes()
    assert written == reference.read_bytes()
    assert sent.digest == dataset_digest(written) and sent.size == len(written)
    read = pydicom.dcmread(sent.path)
    assert read.SOPInstanceUID == read.file_meta.MediaStorageSOPInstanceUID == sent.sop_instance_uid


def test_every_object_has_its_own_uid_and_so_its_own_digest(tmp_path: Path) -> None:
    first, second = make_object("store-ct", tmp_path), make_object("store-ct", tmp_path)
    assert first.sop_instance_uid != second.sop_instance_uid and first.digest != second.digest
    assert first.path != second.path
