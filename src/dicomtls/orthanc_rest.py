"""Orthanc's REST API, used to prove that a C-STORE delivered the very object that was sent: byte for byte, or,
where Orthanc stored it in another transfer syntax (IngestTranscoding), by content (``dicomtls.stored_instance``)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from dataclasses import dataclass

import pydicom
from pydicom.errors import InvalidDicomError

from dicomtls.deadlines import bounded
from dicomtls.dicomdata import TestObject, dataset_digest
from dicomtls.stored_instance import ContentComparison, compare_content


@dataclass(frozen=True)
class StoreCheck:
    ok: bool
    detail: str
    unknown: bool = False
    """Nothing was measured either way (a stored syntax not decoded here, or lossy; the sent file gone): never a
    pass, nor a verdict."""
    content: ContentComparison | None = None
    """The comparison by content, when the stored transfer syntax is not the one sent."""


REST_TIMEOUT_S = 30.0


def _request(url: str, data: bytes | None = None, timeout: float = REST_TIMEOUT_S) -> bytes:
    """One call, waiting no longer than ``timeout`` per socket operation nor past the current cell's deadline."""
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=bounded(timeout)) as resp:  # noqa: S310 - loopback only
        return resp.read()


def verify_stored(rest_url: str, sent: TestObject, transcoding: str | None = None) -> StoreCheck:
    """The instance exists under the sent SOPInstanceUID and its dataset bytes hash equal to what was sent, or, in
    another transfer syntax, its content does. ``transcoding``: the syntax the server was told to store (its
    IngestTranscoding); bytes kept as sent despite it are said, as a departure from the configuration."""
    try:
        found = json.loads(_request(f"{rest_url}/tools/lookup", sent.sop_instance_uid.encode()))
        ids = [item["ID"] for item in found if item.get("Type") == "Instance"]
        if not ids:
            return StoreCheck(False, f"Orthanc has no instance with SOPInstanceUID {sent.sop_instance_uid}")
        stored = _request(f"{rest_url}/instances/{ids[0]}/file")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return StoreCheck(False, f"Orthanc REST API at {rest_url} failed: {exc}")
    digest = dataset_digest(stored)
    if digest == sent.digest:
        kept = ""
        if transcoding is not None and transcoding != sent.transfer_syntax:
            kept = (f"; not transcoded to {transcoding} as IngestTranscoding asks: this Orthanc's transcoder does "
                    "not write that syntax for this object, so it stored the object as received")
        return StoreCheck(True, f"Orthanc instance {ids[0]} holds the sent dataset (sha256 {digest[:16]}…, "
                                f"{sent.size} bytes){kept}")
    return check_other_bytes(ids[0], stored, sent)


def check_other_bytes(instance: str, stored: bytes, sent: TestObject) -> StoreCheck:
    """Orthanc's file of ``instance``, whose dataset is not the bytes sent: a failure where its transfer syntax is
    the one sent, else the content compared (``dicomtls.stored_instance``)."""
    differs = f"stored dataset sha256 {dataset_digest(stored)[:16]}… differs from sent {sent.digest[:16]}…"
    try:
        held = pydicom.dcmread(io.BytesIO(stored))
    except (InvalidDicomError, ValueError, EOFError) as exc:
        return StoreCheck(False, f"{differs}, and Orthanc's file of instance {instance} is not DICOM: {exc}")
    if str(held.file_meta.get("TransferSyntaxUID", "")) == sent.transfer_syntax:
        return StoreCheck(False, f"{differs} (both {sent.transfer_syntax})")
    try:
        original = pydicom.dcmread(sent.path)
    except OSError as exc:
        return StoreCheck(False, f"Orthanc instance {instance} is in another transfer syntax, and the sent file to "
                                 f"compare it with is gone: {exc}", unknown=True)
    content = compare_content(original, held)
    detail = f"Orthanc instance {instance}, compared by content: {content.describe()}"
    return StoreCheck(content.verdict == "equal", detail, content.verdict == "unknown", content)


def instance_ids(rest_url: str, sop_instance_uid: str) -> list[str]:
    """Orthanc's instances under one SOPInstanceUID (raises URLError/OSError when the REST API fails)."""
    found = json.loads(_request(f"{rest_url}/tools/lookup", sop_instance_uid.encode()))
    return [item["ID"] for item in found if item.get("Type") == "Instance"]


def verify_stored_once(rest_url: str, sent: TestObject) -> StoreCheck:
    """As verify_stored, and the object is there exactly once: a retry that duplicated it is a failure too."""
    try:
        ids = instance_ids(rest_url, sent.sop_instance_uid)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return StoreCheck(False, f"Orthanc REST API at {rest_url} failed: {exc}")
    if len(ids) != 1:
        return StoreCheck(False, f"Orthanc has {len(ids)} instances with SOPInstanceUID {sent.sop_instance_uid}, "
                                 "not exactly one")
    check = verify_stored(rest_url, sent)
    return StoreCheck(check.ok, f"exactly once: {check.detail}" if check.ok else check.detail)


def system(rest_url: str) -> dict[str, object]:
    return json.loads(_request(f"{rest_url}/system", timeout=5))


def instances_of(rest_url: str, sop_instance_uid: str) -> list[str]:
    """Orthanc's IDs of the instances stored under a SOPInstanceUID: exactly one after a good C-STORE."""
    try:
        found = json.loads(_request(f"{rest_url}/tools/lookup", sop_instance_uid.encode()))
    except (urllib.error.URLError, OSError, ValueError):
        return []
    return [item["ID"] for item in found if item.get("Type") == "Instance"]
