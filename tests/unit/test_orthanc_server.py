"""A user's orthanc.json as the environment's Orthanc options: the settings a DICOM client meets are reproduced
under the option names OrthancOptions takes; Orthanc's defaults add nothing; the rest is listed with its line."""

from __future__ import annotations

from pathlib import Path

from dicomtls.manifests.orthanc_config import read_orthanc_config
from dicomtls.manifests.orthanc_server import orthanc_server

ROOT = Path(__file__).resolve().parents[2]
ORTHWEB_JSON = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-compose" / "config" / "orthanc" / \
    "orthanc.json.local"


def options(tmp_path: Path, text: str, terminates: bool = True) -> tuple[dict[str, object], tuple[str, ...]]:
    path = tmp_path / "orthanc.json"
    path.write_text(text)
    return orthanc_server(read_orthanc_config(path, {}), proxy_terminates_tls=terminates)


def test_orthweb_sets_its_ae_title_ingest_transcoding_and_storage_compression() -> None:
    server, _ = orthanc_server(read_orthanc_config(ORTHWEB_JSON, {"DICOM_AET": "ORTHWEB"}), proxy_terminates_tls=True)
    assert server == {"kind": "orthanc", "aet": "ORTHWEB", "ingest_transcoding": "1.2.840.10008.1.2.4.80",
                      "storage_compression": True}


def test_orthancs_own_defaults_add_no_option(tmp_path: Path) -> None:
    server, notes = options(tmp_path, '{"DicomAet": "ORTHANC", "DicomCheckCalledAet": false, '
                                      '"DicomAlwaysAllowEcho": true, "DicomAlwaysAllowStore": true, '
                                      '"StorageCompression": false}')
    assert server == {"kind": "orthanc"} and notes == ()


def test_calls_orthanc_refuses_are_reproduced(tmp_path: Path) -> None:
    server, _ = options(tmp_path, '{"DicomCheckCalledAet": true, "DicomAlwaysAllowEcho": false, '
                                  '"DicomAlwaysAllowStore": false}')
    assert server == {"kind": "orthanc", "check_called_aet": True, "always_allow_echo": False,
                      "always_allow_store": False}


def test_behind_a_passthrough_proxy_orthanc_terminates_tls_as_its_dicom_tls_options_say(tmp_path: Path) -> None:
    server, notes = options(tmp_path, '{\n"DicomTlsEnabled": true,\n"DicomTlsRemoteCertificateRequired": false,\n'
                                      '"DicomTlsCertificate": "/etc/orthanc/cert.pem"\n}', terminates=False)
    assert server == {"kind": "orthanc", "tls": True, "client_cert": "optional"}
    assert any(n.endswith("orthanc.json:4: DicomTlsCertificate: replaced by the generated PKI") for n in notes)


def test_orthanc_tls_behind_a_terminating_proxy_is_listed_not_run(tmp_path: Path) -> None:
    server, notes = options(tmp_path, '{"DicomTlsEnabled": true}')
    assert "tls" not in server
    assert any("DicomTlsEnabled true behind a proxy that terminates TLS" in n for n in notes)


def test_tls_settings_orthanc_options_do_not_cover_are_listed_with_their_line(tmp_path: Path) -> None:
    _, notes = options(tmp_path, '{\n"DicomTlsMinimumProtocolVersion": 4,\n"DicomTlsCiphersAccepted": ["AES128-SHA"]\n}')
    assert [n.split(": ", 2)[0].rsplit("/", 1)[-1] for n in notes] == ["orthanc.json:2", "orthanc.json:3"]


def test_plugins_are_listed_never_fatal() -> None:
    _, notes = orthanc_server(read_orthanc_config(ORTHWEB_JSON, {}), proxy_terminates_tls=True)
    for key in ("PostgreSQL", "Authorization", "OrthancExplorer2", "StoneWebViewer", "Plugins"):
        assert any(f": {key}: " in n for n in notes), key
