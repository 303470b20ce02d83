"""C-MOVE, study root, at the STUDY level, to the client's own Storage SCP: the cell stores a CT object in a study of
its own, declares its SCP to the server as a modality (where deployments point it: the client's address as the server
sees it), and passes only when the moved object arrived there. The server opens that return association itself, in
plain DICOM, as deployments do."""

from dicomtls.operations import Operation, ServerWords, register
from dicomtls.reasons import Reason

SERVER_WORDS = (
    # Orthanc: it could not open the association to the destination it knows (OrthancException, DicomAssociation).
    ServerWords(r"DicomAssociation - connecting to AET \S+: (TCP Initialization Error|.*refused|.*timeout)",
                Reason.MOVE_DESTINATION_UNREACHABLE),
    # Orthanc: the destination AE title is not among its DicomModalities.
    ServerWords(r"Unknown modality for AET", Reason.MOVE_DESTINATION_UNKNOWN),
)


@register
class Move(Operation):
    name = "move"
    summary = ("C-STORE of a CT object in a study of its own, then a study-root C-MOVE of that study to the "
               "client's own Storage SCP: the object must arrive there")
    dimse = "C-MOVE"
    sends = "store-ct"
    own_study = True
    destination = "listening"
    server_words = SERVER_WORDS
    listing_order = 60
