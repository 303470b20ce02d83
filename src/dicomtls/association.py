"""AE titles and the A-ASSOCIATE-RJ: who a client says it is, and the server's typed answer when it will not talk.

An Orthanc that accepts only its known modalities rejects an unknown calling AE title with an A-ASSOCIATE-RJ, after
TLS worked: the rejection's result, source and reason (PS3.8 9.3.4) say why, and a diagnosis must read them from
the reject itself, never from a transport's words. pynetdicom hands them over as numbers (its A-ASSOCIATE
primitive); dcmtk prints them (``Result: Rejected Permanent, Source: Service User`` / ``Reason: Calling AE Title Not
Recognized``), read back here into the same numbers. Nothing here imports a client, so a diagnosis or a scenario
can use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_CALLING_AET = "DICOMTLS"
"""The AE title the probes call as, unless a scenario (``calling_aet``) or the command line (``--calling-aet``)
says otherwise."""

RESULTS = {1: "rejected-permanent", 2: "rejected-transient"}
SOURCES = {1: "service-user", 2: "service-provider-acse", 3: "service-provider-presentation"}
REASONS = {
    (1, 1): "no-reason-given",
    (1, 2): "application-context-name-not-supported",
    (1, 3): "calling-ae-title-not-recognized",
    (1, 7): "called-ae-title-not-recognized",
    (2, 1): "no-reason-given",
    (2, 2): "protocol-version-not-supported",
    (3, 1): "temporary-congestion",
    (3, 2): "local-limit-exceeded",
}
"""(source, reason) -> the reason's name (PS3.8 Table 9-21); the same number means different things per source."""


@dataclass(frozen=True)
class Rejection:
    """An A-ASSOCIATE-RJ as the client received it: its three fields, as numbers."""

    result: int
    source: int
    reason: int

    @property
    def reason_name(self) -> str:
        return REASONS.get((self.source, self.reason), f"reason-{self.reason}")

    @property
    def calling_aet_unknown(self) -> bool:
        """The server does not know the client's calling AE title (Orthanc: not among its DicomModalities)."""
        return (self.source, self.reason) == (1, 3)

    @property
    def called_aet_unknown(self) -> bool:
        """The server does not answer to the called AE title (Orthanc with DicomCheckCalledAet: not its DicomAet)."""
        return (self.source, self.reason) == (1, 7)

    def describe(self) -> str:
        """``rejected-permanent by service-user: calling-ae-title-not-recognized``: the reject's fields in words."""
        result = RESULTS.get(self.result, f"result-{self.result}")
        source = SOURCES.get(self.source, f"source-{self.source}")
        return f"{result} by {source}: {self.reason_name}"


# dcmtk's words (dcmnet/libsrc/assoc.cc, ASC_printRejectParameters), lower case: result, source, then reason by source.
_DCMTK_RESULTS = {"rejected permanent": 1, "rejected transient": 2}
_DCMTK_SOURCES = {"service user": 1, "service provider (acse related)": 2,
                  "service provider (presentation related)": 3}
_DCMTK_REASONS = {
    "no reason": 1, "app context name not supported": 2, "calling ae title not recognized": 3,
    "called ae title not recognized": 7, "protocol version not supported": 2, "temporary congestion": 1,
    "local limit exceeded": 2,
}
_RESULT_LINE = re.compile(r"Result:\s*(?P<result>[^,]+),\s*Source:\s*(?P<source>.+?)\s*$", re.IGNORECASE)
_REASON_LINE = re.compile(r"Reason:\s*(?P<reason>.+?)\s*$", re.IGNORECASE)


def from_dcmtk(lines: Iterable[str]) -> Rejection | None:
    """The rejection dcmtk printed after "Association Rejected:" (its ``F:``/``E:`` lines), or None when it printed
    none or words this table does not know."""
    result = source = reason = None
    rejected = False
    for line in lines:
        text = re.sub(r"^[A-Z]: ", "", line.strip())
        if "Association Rejected" in text:
            rejected = True
        elif rejected and (found := _RESULT_LINE.search(text)):
            result = _DCMTK_RESULTS.get(found["result"].strip().lower())
            source = _DCMTK_SOURCES.get(found["source"].strip().lower())
        elif rejected and (found := _REASON_LINE.search(text)):
            reason = _DCMTK_REASONS.get(found["reason"].strip().lower())
    if result is None or source is None or reason is None:
        return None
    return Rejection(result, source, reason)


def check_ae_title(value: str, what: str) -> str:
    """``value`` as a DICOM AE title (1-16 characters of the default repertoire, no backslash, not only spaces),
    else a ValueError naming ``what``."""
    if not re.fullmatch(r"[ -\[\]-~]{1,16}", value) or not value.strip():
        raise ValueError(f"{what} {value!r} is not a DICOM AE title: 1-16 printable ASCII characters, no backslash, "
                         "not only spaces")
    return value
