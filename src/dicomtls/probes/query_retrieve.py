"""C-FIND and C-MOVE with pynetdicom: the study query a cell asks, and the Storage SCP a C-MOVE sends to.

Both ask by the study of the object the cell stored first (its own study: ``dicomdata.make_object(own_study=True)``),
so that the answer can be checked against what was sent: a C-FIND must name that study, a C-MOVE must deliver that
very object, byte for byte, to the client's SCP. The SCP accepts the object's SOP class in Explicit VR Little Endian
only (what the server holds it in), so the bytes that arrive can be compared with the bytes sent.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import (StudyRootQueryRetrieveInformationModelFind,  # type: ignore[attr-defined]
                                  StudyRootQueryRetrieveInformationModelMove)

from dicomtls.dicomdata import TestObject
from dicomtls.move_destination import MoveDestinations, closed_port
from dicomtls.operations import MOVE_DESTINATION_AET, Destination

FIND_MODEL = StudyRootQueryRetrieveInformationModelFind
MOVE_MODEL = StudyRootQueryRetrieveInformationModelMove
SUCCESS, PENDING = 0x0000, (0xFF00, 0xFF01)


def study_keys(sent: TestObject) -> Dataset:
    """The study-root STUDY-level identifier for the sent object's study, with the keys an answer must return."""
    assert sent.study_instance_uid is not None, "a query asks by the object's own study"
    keys = Dataset()
    keys.QueryRetrieveLevel = "STUDY"
    keys.StudyInstanceUID = sent.study_instance_uid
    keys.PatientID = ""
    keys.NumberOfStudyRelatedInstances = ""
    return keys


def find_study(assoc: Any, sent: TestObject, notes: list[str]) -> int | None:
    """C-FIND for the sent object's study: the final status, or a failure when a success names no such study."""
    final, answers = None, []
    for status, identifier in assoc.send_c_find(study_keys(sent), FIND_MODEL):
        final = getattr(status, "Status", None)
        if final in PENDING and identifier is not None:
            answers.append(str(getattr(identifier, "StudyInstanceUID", "")))
    if final == SUCCESS and sent.study_instance_uid not in answers:
        notes.append(f"C-FIND answered {len(answers)} studies, none the stored study {sent.study_instance_uid}")
        return None
    if final == SUCCESS:
        notes.append(f"C-FIND named the stored study ({len(answers)} answer)")
    return final


@dataclass
class Received:
    """What the client's Storage SCP took in: SOPInstanceUID -> sha256 of the dataset bytes as they arrived."""

    objects: dict[str, str] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def on_store(self, event: Any) -> int:
        data = event.request.DataSet.getvalue()
        uid = str(event.request.AffectedSOPInstanceUID)
        with self.guard:
            self.objects[uid] = hashlib.sha256(data).hexdigest()
        return SUCCESS


@contextmanager
def storage_scp(sent: TestObject, host: str) -> Iterator[tuple[int, Received]]:
    """The client's own Storage SCP on ``host`` (a port the kernel picks), for the sent object's SOP class."""
    received = Received()
    ae = AE(ae_title=MOVE_DESTINATION_AET)
    ae.add_supported_context(sent.sop_class_uid, ExplicitVRLittleEndian)
    server = ae.start_server((host, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, received.on_store)])
    assert server is not None, "a non-blocking server is returned"
    try:
        yield int(server.server_address[1]), received
    finally:
        server.shutdown()


def move_study(assoc: Any, sent: TestObject, destinations: MoveDestinations, where: Destination,
               notes: list[str]) -> int | None:
    """C-MOVE of the sent object's study to the client's SCP (``where`` "closed": to a port where nothing listens):
    the final status, or a failure when a success delivered not the sent object intact."""
    with storage_scp(sent, destinations.reach_client_at) as (port, received):
        destinations.declare(MOVE_DESTINATION_AET, port if where == "listening" else
                             closed_port(destinations.reach_client_at))
        notes.append(f"C-MOVE to {MOVE_DESTINATION_AET} at {destinations.reach_client_at}:"
                     f"{port if where == 'listening' else 'a closed port'}")
        final = None
        for status, _ in assoc.send_c_move(study_keys(sent), MOVE_DESTINATION_AET, MOVE_MODEL):
            final = getattr(status, "Status", None)
        arrived = received.objects.get(sent.sop_instance_uid)
    if final == SUCCESS and arrived is None:
        notes.append(f"C-MOVE answered success, but the SCP received {len(received.objects)} objects, not the "
                     "stored one")
        return None
    if final == SUCCESS and arrived != sent.digest:
        notes.append("C-MOVE delivered the stored object, but its bytes differ from those sent")
        return None
    if final == SUCCESS:
        notes.append("the moved object arrived at the client's SCP, intact")
    return final
