"""The DICOM objects the probes send, and the digest that proves one arrived intact.

Each C-STORE sends a fresh copy with its own SOPInstanceUID, so a cell can only
be verified by the object it sent itself, never by a leftover from another cell.
"""

from __future__ import annotations

import copy
import hashlib
import random
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

LARGE_ROWS, LARGE_COLUMNS = 2560, 2048  # 16-bit: 10 MiB of pixel data


@dataclass(frozen=True)
class TestObject:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    digest: str  # sha256 of the dataset bytes after the file meta group
    size: int


def dataset_offset(data: bytes) -> int:
    """Where the dataset starts in a Part 10 file: after preamble, 'DICM' and the file meta group.

    Only the dataset crosses the network; the receiver writes its own file meta,
    so the dataset bytes are what must arrive unchanged.
    """
    if data[128:132] != b"DICM":
        raise ValueError("not a DICOM Part 10 file")
    # (0002,0000) UL, explicit VR little endian: tag(4) VR(2) length(2) value(4)
    group_length = struct.unpack_from("<I", data, 132 + 8)[0]
    return 132 + 12 + group_length


def dataset_digest(data: bytes) -> str:
    return hashlib.sha256(data[dataset_offset(data):]).hexdigest()


def _ct_dataset() -> Dataset:
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    # dcmtk drops DataSetTrailingPadding on the wire; without it both clients send identical bytes.
    if 0xFFFCFFFC in ds:
        del ds[0xFFFCFFFC]
    return ds


def _large_dataset() -> Dataset:
    """A synthetic CT slice of >= 10 MiB, to push a real stream of PDUs through the proxy."""
    ds = _ct_dataset()
    ds.Rows, ds.Columns = LARGE_ROWS, LARGE_COLUMNS
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel = 1
    # Random bytes, seeded: nothing on the path can compress or dedupe them away.
    ds.PixelData = random.Random(20261127).randbytes(LARGE_ROWS * LARGE_COLUMNS * 2)
    return ds


_SOURCES = {"store-ct": _ct_dataset, "store-large": _large_dataset}
_cache: dict[str, Dataset] = {}
_reading = threading.Lock()


def add_source(kind: str, path: Path) -> None:
    """Let ``kind`` send copies of a person's own file (`invoke probe --store FILE`); the file is never changed."""
    def read() -> Dataset:
        ds = pydicom.dcmread(path)
        if 0xFFFCFFFC in ds:  # dcmtk drops DataSetTrailingPadding on the wire, as for the CT above
            del ds[0xFFFCFFFC]
        return ds

    _SOURCES[kind] = read
    _cache.pop(kind, None)


def make_object(kind: str, directory: Path) -> TestObject:
    """Write a fresh instance of ``kind`` (store-ct, store-large) with new UIDs into ``directory``."""
    with _reading:
        if kind not in _cache:
            _cache[kind] = _SOURCES[kind]()
    # A deep copy: Dataset.copy() shares the element dict, so environments side by side would stamp each other's
    # UIDs into one dataset (seen: a C-STORE whose file carried another thread's SOPInstanceUID).
    ds = copy.deepcopy(_cache[kind])
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind}-{uid}.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    return TestObject(path, str(ds.SOPClassUID), uid, ExplicitVRLittleEndian, dataset_digest(data), len(data))
