"""The edge Orthanc as a client: its configuration, how its REST answer and log are read, and the diagnoses they
lead to. The fixtures under tests/fixtures/orthanc_edge/ are Orthanc 1.10.1's real output (Debian 12, dcmtk 3.6.7,
OpenSSL 3.0), captured by `invoke matrix --scenario orthanc-edge --backend local` (called-aet-rejected: by hand,
against an Orthanc whose DicomAet the edge did not call, with DicomCheckCalledAet): each case's edge log
(output.log), the REST answer (rest-answer.txt: status, then body) and, in cases.json, the proxy's line for the
same connection, the stage and the reason the cell got."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dicomtls.backends import EnvironmentFailed
from dicomtls.clients import client_class
from dicomtls.clients.orthanc_edge import OrthancEdge
from dicomtls.components import Address
from dicomtls.corroborate import VAGUE, corroborate
from dicomtls.diagnose import Reason, Symptoms, diagnose
from dicomtls.fixes.candidates import client_side
from dicomtls.probes import CALLING_AET, Target
from dicomtls.probes.orthanc_edge import MODALITY, Answer, EdgeOrthanc, edge_config, edge_lines, stage_of
from dicomtls.reasons import Facts
from dicomtls.results import OBSERVE, CellResult
from dicomtls.scenario import Cell, Probe, ProbeGroup

from .placements import pki_layout

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "orthanc_edge"
CASES: dict[str, dict[str, Any]] = json.loads((FIXTURES / "cases.json").read_text())
NAME = "dicom.edge.test"


def target() -> Target:
    return Target(Address("127.0.0.1", 11112), (NAME,), pki_layout((NAME,)), called_aet="CLOUD")


def captured(case: str) -> tuple[Answer, str]:
    status, _, body = (FIXTURES / case / "rest-answer.txt").read_text().partition("\n")
    return Answer(int(status), body), (FIXTURES / case / "output.log").read_text()


def symptoms(case: str, with_proxy_log: bool = True) -> Symptoms:
    answer, log = captured(case)
    facts = CASES[case]
    return Symptoms(client_lines=answer.words() + edge_lines(log),
                    proxy_lines=tuple(facts["proxy_lines"]) if with_proxy_log else (),
                    sent_client_cert=facts["sent_client_cert"], dicom_stage=stage_of(False, answer, log))


def test_the_edge_calls_the_entry_over_dicom_tls_with_the_cell_s_certificate_and_serves_rest_on_loopback_only(
        tmp_path: Path) -> None:
    t = target()
    config = edge_config(t, Probe(OrthancEdge.name, "none", "expired", "echo"), tmp_path, 8042)
    chain, key = t.client_identity("expired") or ("", "")
    assert config["DicomModalities"] == {MODALITY: {"AET": "CLOUD", "Host": "127.0.0.1", "Port": 11112,
                                                    "UseDicomTls": True}}
    assert (config["DicomTlsCertificate"], config["DicomTlsPrivateKey"]) == (str(chain), str(key))
    assert config["DicomTlsTrustedCertificates"] == str(t.pki.ca_cert)
    assert config["DicomAet"] == CALLING_AET  # the calling AE title every other client uses
    assert (config["DicomServerEnabled"], config["RemoteAccessAllowed"], config["HttpPort"]) == (False, False, 8042)


def test_plain_transport_is_a_modality_without_dicom_tls(tmp_path: Path) -> None:
    config = edge_config(target(), Probe(OrthancEdge.name, "none", "none", "echo", "plain"), tmp_path, 8042)
    assert config["DicomModalities"][MODALITY]["UseDicomTls"] is False
    assert "DicomTlsCertificate" not in config


@pytest.mark.parametrize("case", [c for c, facts in CASES.items() if facts["actual"] == "pass"])
def test_a_passing_call_answers_200_and_the_edge_logged_no_error(case: str) -> None:
    answer, log = captured(case)
    assert answer.status == 200
    assert stage_of(True, answer, log) == "done"
    assert not [line for line in edge_lines(log) if line.startswith("edge: E")]


def test_a_store_answer_counts_the_instance_sent() -> None:
    answer, _ = captured("envoy-wildcard-store-passes")
    report = json.loads(answer.body)
    assert (report["InstancesCount"], report["FailedInstancesCount"]) == (1, 0)


def test_orthanc_s_json_error_is_the_cell_s_first_words() -> None:
    answer, _ = captured("envoy-named-hosts-no-sni")
    assert answer.words() == ('HTTP 500 Error in the network protocol: DicomAssociation - connecting to AET '
                              '"ORTHANC": OpenSSL I/O error (SSL_ERROR_SYSCALL)',)


def test_the_edge_s_start_up_and_shutdown_lines_are_not_evidence() -> None:
    _, log = captured("envoy-mtls-untrusted")
    lines = edge_lines(log)
    assert lines and all("OrthancException.cpp" in line for line in lines), lines
    assert not any("Orthanc version" in line or "Orthanc is stopping" in line for line in lines)


@pytest.mark.parametrize("case", [c for c, facts in CASES.items() if facts["actual"] == "fail"])
def test_a_failure_while_connecting_is_the_connect_stage_and_a_rejection_the_associate_stage(case: str) -> None:
    answer, log = captured(case)
    assert stage_of(False, answer, log) == CASES[case]["stage"]


@pytest.mark.parametrize("case", [c for c, facts in CASES.items() if facts["actual"] == "fail"])
def test_each_captured_failure_gets_the_reason_its_cell_got_from_the_edge_s_words_and_the_proxy_s_line(
        case: str) -> None:
    assert diagnose(symptoms(case)).reason.value == CASES[case]["reason"]


@pytest.mark.parametrize("case", [c for c, facts in CASES.items() if facts["actual"] == "fail"
                                  and facts["transport"] == "tls"])
def test_without_the_proxy_s_log_the_edge_s_tls_failure_is_as_bare_as_dcmtk_s(case: str) -> None:
    """Probing someone else's endpoint, Orthanc says what dcmtk says (it is dcmtk inside): the peer went away."""
    assert diagnose(symptoms(case, with_proxy_log=False)).reason in VAGUE


def test_plain_dicom_to_a_tls_port_is_named_by_the_edge_s_own_words() -> None:
    """dcmtk inside Orthanc read the TLS alert record (0x15) as a PDU type: no proxy log is needed."""
    d = diagnose(symptoms("envoy-plain-to-tls-port", with_proxy_log=False))
    assert d.reason is Reason.TLS_PLAINTEXT_TO_TLS_PORT
    assert d.evidence[0].endswith("Unrecognized PDU type: 15")


def test_a_bare_edge_failure_takes_the_alert_pynetdicom_read_with_the_same_certificate() -> None:
    def result(client: str, d: Any) -> CellResult:
        probe = Probe(client, "none", "untrusted", "echo")
        return CellResult(Cell("probe", "endpoint", probe, OBSERVE, None), "fail", d.reason, d.summary, d.fix,
                          d.evidence, "", "", 0.1, facts=d.facts)

    edge = result(OrthancEdge.name, diagnose(symptoms("envoy-mtls-untrusted", with_proxy_log=False)))
    alert = "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)"
    sibling = result("pynetdicom", diagnose(Symptoms(client_lines=(alert,), sent_client_cert="untrusted")))
    explained, _ = corroborate([edge, sibling], None)
    assert explained.reason is Reason.TLS_UNKNOWN_CA
    assert explained.evidence[-1] == "pynetdicom with the same certificate got: tlsv1 alert unknown ca"


def test_the_registry_says_it_sends_no_sni_and_always_a_certificate() -> None:
    kind = client_class(OrthancEdge.name)
    assert not kind.sends_sni("default") and not kind.sends_sni("1.12.7")
    with pytest.raises(ValueError, match="without its own certificate"):
        ProbeGroup(client=[kind.name], client_cert=["none"])
    with pytest.raises(ValueError, match="sends no SNI"):
        ProbeGroup(client=[kind.name], sni=["right"], client_cert=["valid"])
    ProbeGroup(client=[kind.name], client_cert=["valid", "expired"])
    ProbeGroup(client=[kind.name], client_cert=["none"], transport=["plain"])  # plain DICOM needs no certificate


def test_sending_sni_is_a_fix_no_version_of_it_can_try() -> None:
    probe = Probe(OrthancEdge.name, "none", "valid", "echo")
    found = {c.id: why for c, why in client_side(Reason.TLS_NO_MATCHING_SNI, Facts(), probe, docker=True)}
    assert found["client-sends-sni"] == OrthancEdge.sni_problem("default")
    assert found["stunnel-sidecar"] is None  # what its users put in front of it


def test_an_edge_that_does_not_start_is_the_cell_s_error_never_a_verdict(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentFailed, match="exited with status 1"):
        EdgeOrthanc("/bin/false").run(target(), Probe(OrthancEdge.name, "none", "valid", "echo"), tmp_path)
