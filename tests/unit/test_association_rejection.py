"""An association the server rejects is diagnosed from the A-ASSOCIATE-RJ itself (result, source, reason), as each
client received it from Orthanc 1.10.1 (captured outputs), never as a transport failure."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pynetdicom.pdu import A_ASSOCIATE_RJ

from dicomtls.association import Rejection, check_ae_title, from_dcmtk
from dicomtls.diagnose import Symptoms, diagnose
from dicomtls.probes.pynetdicom import _rejection
from dicomtls.reasons import Reason

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "association"


def dcmtk_lines(name: str) -> tuple[str, ...]:
    return tuple((FIXTURES / f"echoscu-3.6.7-reject-{name}-aet.txt").read_text().splitlines())


def pynetdicom_rejection(name: str) -> Rejection | None:
    """What the pynetdicom runner reads from the association, for the A-ASSOCIATE-RJ Orthanc sent (its bytes)."""
    pdu = A_ASSOCIATE_RJ()
    pdu.decode((FIXTURES / f"orthanc-1.10.1-reject-{name}-aet.pdu").read_bytes())
    return _rejection(SimpleNamespace(acceptor=SimpleNamespace(primitive=pdu.to_primitive())))


@pytest.mark.parametrize(("name", "reason"), [("calling", Reason.ASSOCIATION_REJECTED_CALLING_AET),
                                             ("called", Reason.ASSOCIATION_REJECTED_CALLED_AET)])
def test_dcmtk_rejection_is_read_from_its_result_source_and_reason_lines(name: str, reason: Reason) -> None:
    lines = dcmtk_lines(name)
    rejection = from_dcmtk(lines)
    assert rejection is not None and (rejection.result, rejection.source) == (1, 1)
    found = diagnose(Symptoms(client_lines=lines, dicom_stage="associate", rejection=rejection))
    assert found.reason is reason
    assert found.facts.rejection == rejection
    assert any("Reason:" in line for line in found.evidence)


@pytest.mark.parametrize(("name", "reason"), [("calling", Reason.ASSOCIATION_REJECTED_CALLING_AET),
                                             ("called", Reason.ASSOCIATION_REJECTED_CALLED_AET)])
def test_pynetdicom_rejection_is_read_from_the_reject_primitive(name: str, reason: Reason) -> None:
    rejection = pynetdicom_rejection(name)
    assert rejection is not None
    assert rejection == from_dcmtk(dcmtk_lines(name))  # both clients read the same reject the same way
    logged = (FIXTURES / "pynetdicom-3.0.4-log-reject.txt").read_text().split("Requesting Association\n")
    lines = tuple(logged[1 if name == "calling" else 2].splitlines())  # what its logger said of this association
    found = diagnose(Symptoms(client_lines=lines, dicom_stage="associate", rejection=rejection))
    assert found.reason is reason
    assert f"client: Reason: {name.capitalize()} AE title not recognised" in found.evidence


def test_rejection_with_tls_words_nearby_is_still_the_association_reason() -> None:
    lines = ("stunnel: SSL_connect: certificate verify failed", *dcmtk_lines("calling"))
    found = diagnose(Symptoms(client_lines=lines, dicom_stage="associate", rejection=from_dcmtk(lines)))
    assert found.reason is Reason.ASSOCIATION_REJECTED_CALLING_AET


def test_other_rejections_name_their_source_and_reason_in_the_summary() -> None:
    found = diagnose(Symptoms(client_lines=("Association Rejected",), dicom_stage="associate",
                              rejection=Rejection(2, 3, 2)))
    assert found.reason is Reason.DICOM_ASSOCIATION_REJECTED
    assert "rejected-transient by service-provider-presentation: local-limit-exceeded" in found.summary


def test_dcmtk_output_without_a_rejection_has_none() -> None:
    assert from_dcmtk(("I: Requesting Association", "F: Association Request Failed: timeout")) is None


@pytest.mark.parametrize("title", ["", "A" * 17, "PACS\\MAIN", "    ", "CT\x07"])
def test_ae_titles_outside_dicoms_rules_are_refused(title: str) -> None:
    with pytest.raises(ValueError, match="not a DICOM AE title"):
        check_ae_title(title, "calling_aet")
