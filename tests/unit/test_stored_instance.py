"""A stored object compared by content with what was sent: real DICOM files, one of them as Orthanc 1.10.1 stored
it with IngestTranscoding JPEG Lossless SV1 (captured: tests/fixtures/stored/), the others from pydicom's own test
data (the same MR slice written in several transfer syntaxes by other tools)."""

from __future__ import annotations

import copy
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import ExplicitVRLittleEndian, HTJ2KLossless, JPEGBaseline8Bit, RLELossless

from dicomtls.dicomdata import make_object
from dicomtls.orthanc_rest import check_other_bytes
from dicomtls.stored_instance import Pixels, compare_content

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stored"
ORTHANC_JPEG_LOSSLESS = FIXTURES / "ct-small-orthanc-1.10.1-jpeg-lossless-sv1.dcm"


def read(name: str) -> Dataset:
    return pydicom.dcmread(str(get_testdata_file(name)))


def sent_to_orthanc() -> tuple[Dataset, Dataset]:
    """(what was sent, what Orthanc stored): CT_small under the captured instance's SOPInstanceUID."""
    stored = pydicom.dcmread(ORTHANC_JPEG_LOSSLESS)
    sent = read("CT_small.dcm")
    sent.SOPInstanceUID = stored.SOPInstanceUID
    return sent, stored


def rle_copy(sent: Dataset) -> Dataset:
    """``sent`` re-encoded as RLE Lossless by pydicom: another real transfer syntax, decodable here."""
    stored = copy.deepcopy(sent)
    stored.compress(RLELossless, generate_instance_uid=False)
    return stored


def test_orthanc_jpeg_lossless_copy_is_the_sent_object_by_content() -> None:
    sent, stored = sent_to_orthanc()
    result = compare_content(sent, stored)
    assert result.verdict == "equal", result.describe()
    assert result.pixels is Pixels.EQUAL
    assert result.encoder_written == ("DerivationDescription",)  # dcmtk's "Lossless JPEG compression, …"
    assert result.describe().startswith("stored as JPEGLosslessSV1 1.2.840.10008.1.2.4.70, sent as "
                                        "ExplicitVRLittleEndian 1.2.840.10008.1.2.1; ")
    assert "attributes equal" in result.describe() and "decoded pixels equal (128x128" in result.describe()


def test_one_changed_pixel_in_the_stored_copy_is_a_difference() -> None:
    sent = read("MR_small.dcm")
    changed = copy.deepcopy(sent)
    pixels = changed.pixel_array.copy()
    pixels[10, 20] += 1
    changed.PixelData = pixels.tobytes()
    result = compare_content(sent, rle_copy(changed))
    assert result.verdict == "differs"
    assert result.pixels is Pixels.DIFFER
    assert not result.differences
    assert "1 of 4096 values differ, first at (10, 20)" in result.pixel_note


def test_orthanc_copy_with_a_changed_pixel_is_a_difference() -> None:
    sent, stored = sent_to_orthanc()
    pixels = sent.pixel_array.copy()
    pixels[0, 0] ^= 1
    sent.PixelData = pixels.tobytes()
    result = compare_content(sent, stored)
    assert (result.verdict, result.pixels) == ("differs", Pixels.DIFFER)


def test_a_changed_attribute_in_the_stored_copy_is_a_difference() -> None:
    sent, stored = sent_to_orthanc()
    stored.PatientName = "Someone^Else"
    result = compare_content(sent, stored)
    assert result.verdict == "differs"
    assert [d.tag for d in result.differences] == ["(0010,0010) PatientName"]
    assert result.pixels is Pixels.EQUAL
    assert "1 of" in result.describe() and "PatientName: sent 'CompressedSamples^CT1', stored 'Someone^Else'" \
        in result.describe()


def test_an_attribute_missing_from_the_stored_copy_is_a_difference() -> None:
    sent = read("MR_small.dcm")
    stored = rle_copy(sent)
    del stored.PatientID
    (difference,) = compare_content(sent, stored).differences
    assert (difference.tag, difference.stored) == ("(0010,0020) PatientID", "absent")


def test_a_changed_item_inside_a_sequence_is_a_difference() -> None:
    sent, stored = sent_to_orthanc()
    assert "ReferencedImageSequence" not in sent
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    sent.ReferencedImageSequence = [item]
    other = copy.deepcopy(item)
    other.ReferencedSOPInstanceUID = "1.2.3.5"
    stored.ReferencedImageSequence = [other]
    (difference,) = compare_content(sent, stored).differences
    assert difference.tag == "(0008,1140) ReferencedImageSequence"


@pytest.mark.parametrize("name", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm",
                                  "MR_small_implicit.dcm", "MR_small_bigendian.dcm"])
def test_the_same_slice_written_losslessly_by_other_tools_is_equal(name: str) -> None:
    result = compare_content(read("MR_small.dcm"), read(name))
    assert result.verdict == "equal", result.describe()


def test_a_lossy_stored_syntax_leaves_the_pixels_unmeasured_never_equal() -> None:
    stored = read("SC_rgb_jpeg_dcmtk.dcm")
    assert stored.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    sent = copy.deepcopy(stored)
    sent.decompress()  # what the lossy copy holds, sent uncompressed: even these pixels are not claimed equal
    result = compare_content(sent, stored)
    assert result.pixels is Pixels.UNMEASURED
    assert "not a lossless transfer syntax" in result.pixel_note
    assert result.verdict != "equal"


def test_a_stored_syntax_no_decoder_here_reads_is_unknown_with_the_reason() -> None:
    sent = read("MR_small.dcm")
    stored = copy.deepcopy(sent)
    stored.file_meta.TransferSyntaxUID = HTJ2KLossless  # pylibjpeg-openjpeg, which dicomtls does not install
    result = compare_content(sent, stored)
    assert result.verdict == "unknown", result.describe()
    assert result.pixels is Pixels.UNMEASURED
    assert "HTJ2KLossless" in result.pixel_note


def test_the_same_syntax_on_both_sides_compares_as_equal_content() -> None:
    sent = read("MR_small.dcm")
    assert sent.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert compare_content(sent, copy.deepcopy(sent)).verdict == "equal"


# --- Orthanc's file of the instance against the object a probe sent (dicomtls.orthanc_rest) ----------------------


def orthanc_file(ds: Dataset) -> bytes:
    buffer = DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_store_kept_in_another_lossless_syntax_is_verified_by_content(tmp_path: Path) -> None:
    sent = make_object("store-ct", tmp_path)
    stored = rle_copy(pydicom.dcmread(sent.path))
    check = check_other_bytes("abc", orthanc_file(stored), sent)
    assert (check.ok, check.unknown) == (True, False)
    assert check.detail.startswith("Orthanc instance abc, compared by content: stored as RLELossless 1.2.840.10008.1.2.5")


def test_other_bytes_in_the_syntax_sent_fail_without_a_content_comparison(tmp_path: Path) -> None:
    sent = make_object("store-ct", tmp_path)
    stored = pydicom.dcmread(sent.path)
    stored.PatientName = "Someone^Else"
    check = check_other_bytes("abc", orthanc_file(stored), sent)
    assert (check.ok, check.unknown, check.content) == (False, False, None)
    assert "differs from sent" in check.detail and "(both 1.2.840.10008.1.2.1)" in check.detail


def test_a_store_kept_in_a_syntax_no_decoder_here_reads_is_unknown_never_a_pass(tmp_path: Path) -> None:
    sent = make_object("store-ct", tmp_path)
    stored = rle_copy(pydicom.dcmread(sent.path))
    stored.file_meta.TransferSyntaxUID = HTJ2KLossless  # encapsulated frames pylibjpeg-openjpeg would read
    check = check_other_bytes("abc", orthanc_file(stored), sent)
    assert (check.ok, check.unknown) == (False, True)
    assert "pixels not compared" in check.detail


def test_a_transcoded_store_whose_sent_file_is_gone_is_unknown(tmp_path: Path) -> None:
    sent = make_object("store-ct", tmp_path)
    stored = orthanc_file(rle_copy(pydicom.dcmread(sent.path)))
    sent.path.unlink()
    check = check_other_bytes("abc", stored, sent)
    assert (check.ok, check.unknown) == (False, True)
