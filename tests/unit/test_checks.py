"""Server-side checks read the files and processes a host declares, through testinfra (here its local
backend on this machine's own files and sockets), and say what they found."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import testinfra

from dicomtls.checks import CHECKS, Outcome
from dicomtls.inventory import Deployment
from dicomtls.matrix import EnvironmentInfo
from dicomtls.pki import PkiFiles, PkiSpec, ensure_pki

HOST = testinfra.get_host("local://")
BY_NAME = {c.name: c for c in CHECKS}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return ensure_pki(PkiSpec(server_names=("dicom.bhs.example.org",)), tmp_path_factory.mktemp("pki"))


def run(name: str, deployment: Deployment) -> Outcome:
    info = EnvironmentInfo(deployment.host, deployment.host, [], [], "", [], "", {})
    return BY_NAME[name].run(HOST, deployment, info)


def deployment(pki: PkiFiles, **declared: object) -> Deployment:
    return Deployment("pacs-bhs", "127.0.0.1", 11112, pki.ca_cert, sni="dicom.bhs.example.org",
                      **declared)  # type: ignore[arg-type]


def test_server_cert_reports_sans_and_days_left_and_fails_an_expired_file(pki: PkiFiles) -> None:
    good = run("server-cert", deployment(pki, server_cert=str(pki.server_fullchain)))
    assert good.ok and "dicom.bhs.example.org" in good.summary and "days left" in good.summary
    expired = run("server-cert", deployment(pki, server_cert=str(pki.expired_client_cert)))
    assert not expired.ok and "expired on" in expired.summary
    wrong = run("server-cert", deployment(pki, server_cert=str(pki.mismatched_server_cert)))
    assert not wrong.ok and "does not name dicom.bhs.example.org" in wrong.summary


def test_server_key_must_be_private_to_its_owner(pki: PkiFiles, tmp_path: Path) -> None:
    assert run("server-key", deployment(pki, server_key=str(pki.server_key))).summary.startswith("mode 0600")
    loose = tmp_path / "server.key"
    loose.write_text("not a key\n")
    loose.chmod(0o644)
    found = run("server-key", deployment(pki, server_key=str(loose)))
    assert not found.ok and "mode 0644" in found.summary
    owner = run("server-key", deployment(pki, server_key=str(pki.server_key), key_owner="envoy"))
    assert not owner.ok and "not envoy" in owner.summary


def test_listening_names_the_process_holding_the_port_and_fails_a_free_one(pki: PkiFiles) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        held = run("listening", deployment(pki, listen_port=port))
        assert held.ok and f"listens on {port}" in held.summary
        not_envoy = run("listening", deployment(pki, listen_port=port, proxy="envoy"))
        assert not not_envoy.ok and "not envoy" in not_envoy.summary
    free = run("listening", deployment(pki, listen_port=port))
    assert not free.ok and "nothing listens" in free.summary


def test_orthanc_config_with_comments_is_read_and_must_enable_tls_where_orthanc_terminates_it(
        pki: PkiFiles, tmp_path: Path) -> None:
    config = tmp_path / "orthanc.json"
    config.write_text('{\n  // Orthanc allows comments\n  "DicomTlsEnabled": false, /* off */\n  "Name": "a//b"\n}\n')
    behind = run("orthanc-config", deployment(pki, orthanc_config=str(config), proxy="envoy"))
    assert behind.ok and behind.evidence == ("DicomTlsEnabled: false",)
    own = run("orthanc-config", deployment(pki, orthanc_config=str(config), proxy="orthanc"))
    assert not own.ok and "DicomTlsEnabled is not true" in own.summary
    config.write_text(json.dumps({"DicomTlsEnabled": True, "DicomTlsCertificate": str(pki.server_fullchain),
                                  "DicomTlsPrivateKey": str(tmp_path / "gone.key")}))
    missing = run("orthanc-config", deployment(pki, orthanc_config=str(config), proxy="orthanc"))
    assert not missing.ok and "gone.key" in missing.summary
