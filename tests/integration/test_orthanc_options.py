"""An Orthanc configured as the user's is (its own AE title, checked; IngestTranscoding to JPEG Lossless SV1;
StorageCompression; or answering only its DicomModalities), behind nginx, on the local backend and on Docker:
every client calls the configured AE title, and every store, never stored as the bytes sent, is verified by content.
On Docker, Orthanc 1.12.7 runs beside the default 1.10.1."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import EACH_BACKEND, ROOT, cells, matrix_run

pytestmark = pytest.mark.integration

SCENARIOS = ROOT / "tests" / "fixtures" / "scenarios"
TRANSCODING = SCENARIOS / "orthanc-ingest-transcoding.yaml"
TRANSCODING_1_12 = SCENARIOS / "orthanc-ingest-transcoding-1-12.yaml"
STORED_AS = ("compared by content: stored as JPEGLosslessSV1 1.2.840.10008.1.2.4.70, sent as ExplicitVRLittleEndian "
             "1.2.840.10008.1.2.1; ")


@pytest.fixture(scope="module", params=EACH_BACKEND)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    scenarios = ["--scenario", str(TRANSCODING)]
    if request.param == "docker":
        scenarios += ["--scenario", str(TRANSCODING_1_12)]
    found = matrix_run(tmp_path_factory.mktemp(f"orthanc-options-{request.param}"), "--backend", request.param,
                       *scenarios)
    found["backend"] = request.param
    return found


def test_orthanc_options_run_has_every_cell_as_expected_and_leaves_nothing(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert {c["verdict"] for c in run["results"]["cells"]} == {"ok"}
    assert run["leftovers"] == (set(), set())
    if run["backend"] == "docker":
        assert run["results"]["run"]["versions"]["orthanc"] == "1.10.1, 1.12.7"


def test_every_client_calls_the_configured_ae_title_which_orthanc_checks(run: dict[str, Any]) -> None:
    transcoding = [c for c in run["results"]["cells"] if c["environment"].endswith("-transcoding")]
    assert {c["client"] for c in transcoding} >= {"dcmtk", "pynetdicom"}
    for cell in transcoding:
        assert cell["actual"] == "pass", cell["id"]
        said = "ae_title=SOMEAET" if cell["client"] == "pynetdicom" else "-aec SOMEAET"
        assert said in cell["command"], cell["command"]


def test_stores_under_ingest_transcoding_pass_verified_by_content(run: dict[str, Any]) -> None:
    stores = [c for c in run["results"]["cells"]
              if c["environment"].endswith("-transcoding") and c["operation"] != "echo"]
    assert {c["client"] for c in stores} >= {"dcmtk", "pynetdicom"}
    for cell in stores:
        assert cell["actual"] == "pass", cell["id"]
        assert STORED_AS in cell["detail"], cell["detail"]
        assert "attributes equal (DerivationDescription written by the encoder, not compared); decoded pixels " \
               "equal" in cell["detail"], cell["detail"]


def test_an_orthanc_answering_only_its_modalities_takes_the_probes_as_one(run: dict[str, Any]) -> None:
    only = cells(run, environment="nginx-orthanc-modalities-only")
    assert {(c["operation"], c["actual"]) for c in only} == {("echo", "pass"), ("store-ct", "pass")}
    # Nothing transcodes there: the byte check stands.
    assert all("holds the sent dataset" in c["detail"] for c in only if c["operation"] == "store-ct")


def test_a_transcoding_orthanc_cannot_do_is_said_and_checked_on_what_was_really_stored(run: dict[str, Any]) -> None:
    (store,) = cells(run, environment="nginx-orthanc-rle-not-written", operation="store-ct")
    assert store["actual"] == "pass"
    assert "holds the sent dataset" in store["detail"]
    assert "not transcoded to 1.2.840.10008.1.2.5 as IngestTranscoding asks" in store["detail"], store["detail"]
