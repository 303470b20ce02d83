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
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

LARGE_ROWS, LARGE_COLUMNS = 2560, 2048  # 16-bit: 10 MiB of pixel data


@dataclass(frozen=True)
class TestObject:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    digest: str  # sha256 of the dataset bytes after the file meta group
    size: int
    study_instance_uid: str | None = None
    """Set when the object has a study of its own (a query's or a retrieve's key)."""


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
_cache: dict[str, "_Encoded"] = {}
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


@dataclass(frozen=True)
class _Encoded:
    """A source dataset written once, as bytes on both sides of its SOPInstanceUID element: each fresh instance
    is those bytes around its own UID. Copying and writing the dataset for every C-STORE held the GIL for about
    four seconds of a default Docker run (py-spy), most of it for the 10 MiB object."""

    sop_class_uid: str
    preamble: bytes
    before: bytes
    after: bytes


_PLACEHOLDER = "2.25.1" + "0" * 58  # a UID no source carries, at the longest a UID can be


def _encode(ds: Dataset) -> _Encoded:
    template = copy.deepcopy(ds)
    template.SOPInstanceUID = _PLACEHOLDER
    template.file_meta = _meta(str(ds.SOPClassUID), _PLACEHOLDER)
    buffer = DicomBytesIO()
    template.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    dataset = data[dataset_offset(data):]
    element = _uid_element(_PLACEHOLDER)
    at = dataset.index(element)
    assert dataset.count(element) == 1, "the placeholder UID is in the dataset once"
    return _Encoded(str(ds.SOPClassUID), data[:128], dataset[:at], dataset[at + len(element):])


def _uid_element(uid: str) -> bytes:
    """The SOPInstanceUID element as pydicom writes it: explicit VR little endian, padded to even length."""
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_data_element(buffer, DataElement(0x00080018, "UI", uid))
    return buffer.getvalue()


def _meta(sop_class_uid: str, uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def make_object(kind: str, directory: Path, own_study: bool = False) -> TestObject:
    """Write a fresh instance of ``kind`` (store-ct, store-large) with new UIDs into ``directory``: the bytes
    pydicom writes for the source dataset with that SOPInstanceUID. ``own_study``: in a study and series of its
    own too, so that a query or a retrieve by study finds this object only."""
    made = _fresh_instance(kind, directory)
    return _in_own_study(made) if own_study else made


def _in_own_study(made: TestObject) -> TestObject:
    """``made`` rewritten with a new StudyInstanceUID and SeriesInstanceUID (a small object: written once more)."""
    ds = pydicom.dcmread(made.path)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.save_as(made.path, enforce_file_format=True)
    data = made.path.read_bytes()
    return TestObject(made.path, made.sop_class_uid, made.sop_instance_uid, made.transfer_syntax, dataset_digest(data),
                      len(data), str(ds.StudyInstanceUID))


def _fresh_instance(kind: str, directory: Path) -> TestObject:
    with _reading:
        if kind not in _cache:
            _cache[kind] = _encode(_SOURCES[kind]())
        encoded = _cache[kind]
    uid = str(generate_uid())
    head = DicomBytesIO()
    head.write(encoded.preamble + b"DICM")
    write_file_meta_info(head, _meta(encoded.sop_class_uid, uid), enforce_standard=True)
    dataset = (encoded.before, _uid_element(uid), encoded.after)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind}-{uid}.dcm"
    with path.open("wb") as out:
        for part in (head.getvalue(), *dataset):
            out.write(part)
    digest = hashlib.sha256()
    for part in dataset:
        digest.update(part)
    size = len(head.getvalue()) + sum(len(part) for part in dataset)
    return TestObject(path, encoded.sop_class_uid, uid, ExplicitVRLittleEndian, digest.hexdigest(), size)
