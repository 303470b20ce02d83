"""Orthanc's configuration read as Orthanc reads it: ${VAR} substituted in the text, then JSON with comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtls.errors import UsageError
from dicomtls.manifests.orthanc_config import read_orthanc_config, substitute

ROOT = Path(__file__).resolve().parents[2]
ORTHWEB_JSON = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-compose" / "config" / "orthanc" / \
    "orthanc.json.local"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orthanc.json"
    path.write_text(text)
    return path


def test_orthweb_options_that_decide_dicom_are_read_through_comments() -> None:
    found = read_orthanc_config(ORTHWEB_JSON, {"DICOM_AET": "ORTHWEB"})
    config = found.config
    assert config.dicom_aet == "ORTHWEB" and config.dicom_port == 4242
    assert config.dicom_check_called_aet is False
    assert config.ingest_transcoding == "1.2.840.10008.1.2.4.80" and config.storage_compression is True
    assert set(config.dicom_modalities) == {"workstation"}


def test_each_top_level_key_has_its_line() -> None:
    found = read_orthanc_config(ORTHWEB_JSON, {})
    lines = ORTHWEB_JSON.read_text().splitlines()
    assert '"IngestTranscoding"' in lines[found.lines["IngestTranscoding"] - 1]
    assert str(found.at("DicomAet")).endswith(f"orthanc.json.local:{found.lines['DicomAet']}")


def test_plugins_the_tool_cannot_run_are_listed_not_fatal() -> None:
    notes = read_orthanc_config(ORTHWEB_JSON, {}).not_reproduced
    for key in ("PostgreSQL", "Authorization", "OrthancExplorer2", "StoneWebViewer", "Plugins"):
        assert any(f": {key}: " in note for note in notes), key


def test_unknown_options_are_kept() -> None:
    config = read_orthanc_config(ORTHWEB_JSON, {}).config
    assert config.model_extra is not None and config.model_extra["Name"] == "Orthweb"


@pytest.mark.parametrize(("text", "env", "expected"), [
    ("${A}", {"A": "x"}, "x"),
    ("${A}", {}, ""),
    ("${A:-dflt}", {}, "dflt"),
    ("${A:-dflt}", {"A": "set"}, "set"),
    ('${A:-"quoted default"}', {}, "quoted default"),
    ("${A:-'single'}", {}, "single"),
    ("$A and $$", {"A": "x"}, "$A and $$"),  # Orthanc knows only the braced form
])
def test_substitution_follows_orthancs_own_pattern(text: str, env: dict[str, str], expected: str) -> None:
    assert substitute(text, env)[0] == expected


def test_where_each_variable_came_from_is_kept_but_not_its_value() -> None:
    found = read_orthanc_config(ORTHWEB_JSON, {"DICOM_AET": "ORTHWEB", "ORTHANC_DB_PASSWORD": "s3cret"})
    assert found.variables["DICOM_AET"] == "environment" and found.variables["SITE_NAME"] == "default"
    assert found.variables["ORTHANC_DB_HOST"] == "unset"
    assert "s3cret" not in found.model_dump_json(exclude={"config"})
    assert any("${ORTHANC_DB_HOST} is not set" in note for note in found.not_reproduced)


def test_substitution_happens_before_parsing_so_a_value_can_be_a_number(tmp_path: Path) -> None:
    path = write(tmp_path, '{"DicomPort": ${PORT:-4243}}')
    assert read_orthanc_config(path, {}).config.dicom_port == 4243


def test_block_and_line_comments_and_trailing_commas_are_accepted_as_jsoncpp_does(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  /* a\n  block */\n  "DicomAet": "A//B", // title\n  "DicomPort": 104,\n}\n')
    found = read_orthanc_config(path)
    assert found.config.dicom_aet == "A//B" and found.lines == {"DicomAet": 4, "DicomPort": 5}


def test_invalid_json_is_a_usage_error_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  // fine\n  "DicomAet": "A"\n  "DicomPort": 104\n}\n')
    with pytest.raises(UsageError, match=r"orthanc.json:4: not valid JSON"):
        read_orthanc_config(path)


def test_an_unclosed_block_comment_is_a_usage_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "DicomAet": "A"\n  /* never closed\n}\n')
    with pytest.raises(UsageError, match=r"orthanc.json:3: a /\* comment is never closed"):
        read_orthanc_config(path)


def test_an_option_of_the_wrong_type_is_refused_as_orthanc_refuses_it(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "DicomAet": "A",\n  "DicomCheckCalledAet": "false"\n}\n')
    with pytest.raises(UsageError, match=r"orthanc.json:3: DicomCheckCalledAet: "):
        read_orthanc_config(path)


def test_a_top_level_array_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="a JSON object"):
        read_orthanc_config(write(tmp_path, "[]"))
