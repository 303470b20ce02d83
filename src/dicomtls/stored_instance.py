"""What Orthanc stored, compared by content with what was sent, for a server that re-encodes on ingest.

An Orthanc with ``IngestTranscoding`` never stores the bytes it received: the pixel data is encoded again (JPEG
Lossless, JPEG-LS, …) and the file meta names the new transfer syntax. Delivery is then proven by content: every
attribute equal, and the pixel data, decoded, equal to what was sent. Only what the transfer syntax legitimately
changes is left out of the attribute comparison: the file meta group, what only describes the encoding (group
lengths, trailing padding, the offset tables of encapsulated pixel data), the pixel data's encoding (compared decoded
instead), and the attributes an encoder writes to record the compression (PS3.3 C.7.6.1.1.5, C.7.6.1.1.3).
A stored syntax that cannot be decoded here, or a lossy one, leaves the pixels unmeasured: the comparison is
unknown with that reason, never equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.datadict import keyword_for_tag
from pydicom.pixels import get_decoder
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (UID, DeflatedExplicitVRLittleEndian, HTJ2KLossless, HTJ2KLosslessRPCL, JPEG2000Lossless,
                         JPEG2000MCLossless, JPEGLossless, JPEGLosslessSV1, JPEGLSLossless, RLELossless,
                         UncompressedTransferSyntaxes)

PIXEL_DATA = Tag(0x7FE0, 0x0010)
ENCODING_ONLY = frozenset(Tag(t) for t in (
    0x7FE00010,  # PixelData: compared decoded
    0x7FE00001,  # ExtendedOffsetTable
    0x7FE00002,  # ExtendedOffsetTableLengths
    0xFFFCFFFC,  # DataSetTrailingPadding
))
"""Attributes whose value is the encoding itself, not compared as attributes (with group lengths, gggg,0000)."""
ENCODER_WRITES = frozenset(Tag(t) for t in (
    0x00082111,  # DerivationDescription: dcmtk's encoders append "Lossless JPEG compression, …" (seen from Orthanc)
    0x00089215,  # DerivationCodeSequence
    0x00282110,  # LossyImageCompression
    0x00282112,  # LossyImageCompressionRatio
    0x00282114,  # LossyImageCompressionMethod
))
"""Attributes an encoder sets to say the image was compressed: reported, not compared."""
LOSSLESS = frozenset({*UncompressedTransferSyntaxes, DeflatedExplicitVRLittleEndian, JPEGLossless, JPEGLosslessSV1,
                      JPEGLSLossless, JPEG2000Lossless, JPEG2000MCLossless, HTJ2KLossless, HTJ2KLosslessRPCL,
                      RLELossless})
"""The transfer syntaxes whose decoded pixels must equal the original's."""


class Pixels(StrEnum):
    """How the decoded pixel data compares."""

    EQUAL = "equal"
    DIFFER = "differ"
    UNMEASURED = "unmeasured"  # not decodable here, or stored lossy: nothing said either way
    NONE = "none"  # neither dataset has pixel data


@dataclass(frozen=True)
class AttributeDifference:
    """One attribute that is not what was sent."""

    tag: str  # "(0010,0010) PatientName"
    sent: str  # its value as sent, shortened; "absent" when the sent object had none
    stored: str

    def __str__(self) -> str:
        return f"{self.tag}: sent {self.sent}, stored {self.stored}"


@dataclass(frozen=True)
class ContentComparison:
    """The stored object against the sent one, attribute by attribute and by decoded pixels."""

    sent_syntax: str
    stored_syntax: str
    attributes: int  # how many attributes were compared
    differences: tuple[AttributeDifference, ...]
    encoder_written: tuple[str, ...]  # keywords of ENCODER_WRITES attributes the stored object gained or changed
    pixels: Pixels
    pixel_note: str  # what was decoded (shape, bits, decoder), where the pixels first differ, or why unmeasured

    @property
    def verdict(self) -> Literal["equal", "differs", "unknown"]:
        """differs as soon as anything measured differs; unknown when the pixels could not be measured."""
        if self.differences or self.pixels is Pixels.DIFFER:
            return "differs"
        return "unknown" if self.pixels is Pixels.UNMEASURED else "equal"

    def describe(self) -> str:
        """One line for a cell's evidence: the syntaxes, then each check and its outcome."""
        head = f"stored as {_syntax(self.stored_syntax)}, sent as {_syntax(self.sent_syntax)}"
        if self.differences:
            shown = "; ".join(str(d) for d in self.differences[:3])
            more = f" and {len(self.differences) - 3} more" if len(self.differences) > 3 else ""
            attributes = f"{len(self.differences)} of {self.attributes} attributes differ: {shown}{more}"
        else:
            attributes = f"{self.attributes} attributes equal"
        if self.encoder_written:
            attributes += f" ({', '.join(self.encoder_written)} written by the encoder, not compared)"
        pixels = {Pixels.EQUAL: "decoded pixels equal", Pixels.DIFFER: "decoded pixels differ",
                  Pixels.UNMEASURED: "pixels not compared", Pixels.NONE: "no pixel data"}[self.pixels]
        note = f" ({self.pixel_note})" if self.pixel_note else ""
        return f"{head}; {attributes}; {pixels}{note}"


def compare_content(sent: Dataset, stored: Dataset) -> ContentComparison:
    """``stored`` (as read back from the server, file meta included) against ``sent``."""
    sent_syntax, stored_syntax = _transfer_syntax(sent), _transfer_syntax(stored)
    differences, written, compared = _attributes(sent, stored)
    pixels, note = _pixels(sent, stored, stored_syntax)
    return ContentComparison(sent_syntax, stored_syntax, compared, tuple(differences), tuple(written), pixels, note)


def _transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(getattr(meta, "TransferSyntaxUID", "")) if meta is not None else ""


def _syntax(uid: str) -> str:
    known = UID(uid)
    return f"{known.keyword} {uid}" if known.keyword else uid or "an unnamed transfer syntax"


def _attributes(sent: Dataset, stored: Dataset) -> tuple[list[AttributeDifference], list[str], int]:
    """Every top-level attribute but the file meta, group lengths and ENCODING_ONLY, compared by value (sequences
    recursively)."""
    differences: list[AttributeDifference] = []
    written: list[str] = []
    tags = sorted({t for t in (*sent.keys(), *stored.keys())
                   if t.group != 0x0002 and t.element != 0x0000 and t not in ENCODING_ONLY})
    for tag in tags:
        mine, theirs = sent.get(tag), stored.get(tag)
        if mine is not None and theirs is not None and _value(mine) == _value(theirs):
            continue
        if tag in ENCODER_WRITES:
            written.append(keyword_for_tag(tag) or str(tag))
            continue
        differences.append(AttributeDifference(_name(tag), _shown(mine), _shown(theirs)))
    return differences, written, len(tags) - len(written)


def _value(element: DataElement) -> object:
    """An element's value for comparison: a sequence item by item, each as its own (tag, value) pairs."""
    if element.VR == "SQ":
        return [[(t, _value(item[t])) for t in sorted(item.keys())] for item in element.value]  # item[t]: parsed
    return element.value


def _name(tag: BaseTag) -> str:
    keyword = keyword_for_tag(tag)
    return f"{tag} {keyword}" if keyword else str(tag)


def _shown(element: DataElement | None, limit: int = 40) -> str:
    if element is None:
        return "absent"
    text = repr(element.value) if element.VR != "SQ" else f"a sequence of {len(element.value)} items"
    return text if len(text) <= limit else f"{text[:limit]}…"


def _pixels(sent: Dataset, stored: Dataset, stored_syntax: str) -> tuple[Pixels, str]:
    """The decoded pixel data of both, compared exactly (a lossless syntax must give back every value)."""
    has = PIXEL_DATA in sent, PIXEL_DATA in stored
    if has == (False, False):
        return Pixels.NONE, ""
    if has != (True, True):
        return Pixels.DIFFER, f"pixel data {'absent from the stored object' if has[0] else 'not sent'}"
    if UID(stored_syntax) not in LOSSLESS:
        return Pixels.UNMEASURED, (f"{_syntax(stored_syntax)} is not a lossless transfer syntax: its decoded pixels "
                                   "need not equal those sent")
    decoder = get_decoder(UID(stored_syntax))
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies)
        return Pixels.UNMEASURED, f"no pixel decoder here for {_syntax(stored_syntax)} ({missing or 'none known'})"
    try:
        mine, theirs = sent.pixel_array, stored.pixel_array
    except Exception as exc:  # noqa: BLE001 - a decoder's failure is "not measured", whatever it raises
        return Pixels.UNMEASURED, f"decoding failed: {type(exc).__name__}: {exc}"
    plugins = "/".join(decoder.available_plugins) or "pydicom"
    shape = "x".join(str(n) for n in theirs.shape)
    if mine.shape != theirs.shape:
        return Pixels.DIFFER, f"sent {'x'.join(str(n) for n in mine.shape)} pixels, stored {shape}"
    unequal = (mine != theirs).nonzero()
    if len(unequal[0]):
        first = tuple(int(axis[0]) for axis in unequal)
        return Pixels.DIFFER, (f"{len(unequal[0])} of {mine.size} values differ, first at {first}: sent "
                               f"{mine[first]}, stored {theirs[first]}")
    return Pixels.EQUAL, f"{shape}, {theirs.dtype}, decoded with {plugins}"
