"""Server-side checks read the files and processes a host declares, through testinfra (here its local
backend on this machine's own files and sockets), and say what they found."""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path

import pytest
import testinfra
from invoke import Exit

from dicomtls.checks import CHECKS, Check, Outcome, run_checks
from dicomtls.crash import Crashed
from dicomtls.diagnose import Reason
from dicomtls.inventory import Deployment
from dicomtls.pki import PkiFiles, PkiSpec, ensure_pki
from dicomtls.results import EnvironmentInfo, MatrixResult, RunInfo
from dicomtls.scan import ScanResult
from dicomtls.tasks import _guarded

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


def inventory_host(pki: PkiFiles, tmp_path: Path) -> Deployment:
    """A host reached as Ansible reaches localhost, declaring its server certificate: its checks run for real."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    pacs-bhs:\n      ansible_connection: local\n")
    return dataclasses.replace(deployment(pki, server_cert=str(pki.server_cert)), inventory=inventory)


def probed(d: Deployment) -> MatrixResult:
    result = MatrixResult(RunInfo("now", "none", {}, ["probe"]))
    result.environments.append(EnvironmentInfo(d.host, d.host, ["probe"], [], "", [], "", {}))
    return result


def test_a_check_with_a_bug_is_a_crash_of_dicomtls_not_the_hosts_failure(pki: PkiFiles, tmp_path: Path) -> None:
    d = inventory_host(pki, tmp_path)
    def bug(host: object, d: Deployment, info: EnvironmentInfo) -> Outcome:
        return Outcome(bool(len(None)), "never")  # type: ignore[arg-type]

    buggy = Check("buggy", lambda d: True, bug)
    with pytest.raises(Crashed) as raised:
        run_checks([d], probed(d), tmp_path / "out", checks=(buggy,))
    log = tmp_path / "out" / "crash.log"
    assert raised.value.log == log
    assert "TypeError: object of type 'NoneType' has no len()" in log.read_text()
    assert "Traceback (most recent call last)" in log.read_text()
    with pytest.raises(Exit) as exited:
        _guarded(lambda: (_ for _ in ()).throw(raised.value))
    assert exited.value.code == 1
    message = str(exited.value.message)
    assert message == (f"dicomtls: crashed: check buggy on pacs-bhs: TypeError: object of type 'NoneType' has no "
                       f"len(); the traceback is in {log}: please report it with that file")
    assert "\n" not in message


def test_a_host_that_cannot_answer_a_check_fails_it_with_what_it_said(pki: PkiFiles, tmp_path: Path) -> None:
    d = inventory_host(pki, tmp_path)
    reads = Check("reads", lambda d: True, lambda host, d, info: Outcome(bool(host.file("/nonexistent/x").content), ""))
    result = probed(d)
    run_checks([d], result, tmp_path / "out", checks=(reads,))
    [cell] = result.cells
    assert (cell.actual, cell.reason) == ("fail", Reason.SERVER_CHECK_FAILED)
    assert cell.summary.startswith("could not run on pacs-bhs: RuntimeError: Unexpected output CommandResult(")
    assert "No such file or directory" in cell.summary
    assert not (tmp_path / "out" / "crash.log").exists()


def test_served_leaf_is_unknown_when_the_scan_failed(pki: PkiFiles, tmp_path: Path) -> None:
    d = inventory_host(pki, tmp_path)
    result = probed(d)
    result.environments[0].scan = ScanResult("127.0.0.1:11112", None, False, error="the scan worker process died "
                                                                                   "(killed by SIGKILL)")
    run_checks([d], result, tmp_path / "out", checks=(BY_NAME["served-leaf"],))
    [cell] = result.cells
    assert (cell.actual, cell.reason) == ("fail", Reason.UNKNOWN)
    assert cell.summary == ("unknown: no served certificate to compare (the scan worker process died (killed by "
                            "SIGKILL))")
