"""DICOM TLS profile verdicts are judged from what a scan saw, and name the requirement that fails.

The fixtures are real scans (tests/fixtures/scans): Orthanc 1.10's own DICOM TLS
(dcmtk's BCP 195 profile), Envoy 1.40 with its defaults, and Envoy with the
pre-1.23 server cipher list. Variations change one observation at a time.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomtls.pki import PkiSpec, ensure_pki
from dicomtls.scan import (
    AcceptedSuite,
    Chain,
    Endpoint,
    ProfileVerdict,
    ScanResult,
    _Attempt,
    _credentials,
    _Credentials,
    _fetch_chain,
    _precheck,
    _intermediate,
    _leads_to_anchor,
    _names,
)

SCANS = Path(__file__).resolve().parents[1] / "fixtures" / "scans"


def captured(name: str) -> ScanResult:
    return ScanResult.from_dict(json.loads((SCANS / f"{name}.json").read_text()))


def verdict(result: ScanResult, section: str) -> ProfileVerdict:
    return next(v for v in result.verdicts if v.section == section)


def rejudged(result: ScanResult, **changes: object) -> ScanResult:
    data = dataclasses.asdict(dataclasses.replace(result, **changes))  # type: ignore[arg-type]
    return ScanResult.from_dict(data)


def test_orthanc_native_tls_default_is_not_non_downgrading_compliant() -> None:
    scan = captured("orthanc-native-tls")
    assert "TLS 1.0" in scan.versions and "AES128-SHA" in scan.accepts()["TLS 1.2"]
    nd = verdict(scan, "B.10")
    assert not nd.compliant
    assert nd.failures[0].requirement == "TLS 1.0 and TLS 1.1 shall not be negotiated"
    assert "TLS 1.0 and TLS 1.1 (AES128-SHA)" in nd.failures[0].observed
    assert any("AES128-SHA" in f.observed for f in nd.failures[1:]), "the weak suite is named too"


def test_orthanc_native_tls_default_meets_plain_bcp195_with_a_downgrade_warning() -> None:
    b9 = verdict(captured("orthanc-native-tls"), "B.9")
    assert b9.compliant
    assert [w.requirement for w in b9.warnings] == ["TLS 1.0 and TLS 1.1 should not be negotiated"]


def test_orthanc_native_tls_default_fails_rfc8996_for_tls10_and_warns_on_static_rsa() -> None:
    b12 = verdict(captured("orthanc-native-tls"), "B.12")
    assert not b12.compliant and b12.failures[0].source.startswith("RFC 8996")
    assert any("static RSA" in w.requirement for w in b12.warnings)


def test_current_envoy_defaults_meet_every_dicom_profile() -> None:
    scan = captured("envoy-default-ciphers")
    assert scan.versions == ["TLS 1.2", "TLS 1.3"]
    assert all(v.compliant and not v.warnings for v in scan.verdicts), [v.summary() for v in scan.verdicts]


def test_pre_1_23_envoy_list_fails_non_downgrading_for_its_rsa_and_cbc_suites() -> None:
    scan = captured("envoy-legacy-ciphers")
    nd = verdict(scan, "B.10")
    assert not nd.compliant
    assert "forward secrecy" in nd.failures[0].requirement + nd.failures[0].observed
    assert "AES128-SHA" in nd.failures[0].observed
    b12 = verdict(scan, "B.12")
    assert b12.compliant and any("static RSA" in w.requirement for w in b12.warnings)


def test_a_server_that_answers_tls13_offers_with_tls12_fails_rfc8996_profile() -> None:
    scan = rejudged(captured("envoy-default-ciphers"), prefers_tls13=False)
    b12 = verdict(scan, "B.12")
    assert not b12.compliant
    assert b12.failures[0].requirement == "servers shall prefer TLS 1.3 when the client offers it"


def test_small_dhe_groups_fail_extended_profile_and_only_warn_for_plain_bcp195() -> None:
    scan = captured("orthanc-native-tls")
    weak = [dataclasses.replace(s, key_exchange_bits=1024) if s.key_exchange == "DH" else s
            for s in scan.protocols["TLS 1.2"]]
    scan = rejudged(scan, protocols={**scan.protocols, "TLS 1.2": weak})
    ex = verdict(scan, "B.11")
    assert any("DHE key length" in f.requirement and "1024 bits" in f.observed for f in ex.failures)
    assert any("DHE groups" in w.requirement for w in verdict(scan, "B.9").warnings)


def test_x25519_counts_as_a_256_bit_ecdhe_key() -> None:
    suite = AcceptedSuite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDH", 253, "X25519")
    scan = rejudged(captured("envoy-default-ciphers"), protocols={"TLS 1.2": [suite]})
    assert verdict(scan, "B.11").compliant


def test_ssl3_or_null_suites_fail_every_profile() -> None:
    null = AcceptedSuite("TLS_RSA_WITH_NULL_SHA", "NULL-SHA")
    base = captured("envoy-default-ciphers")
    scan = rejudged(base, protocols={**base.protocols, "SSL 3.0": [null]})
    for v in scan.verdicts:
        assert not v.compliant, v.section
        assert any("SSL 3.0" in f.observed for f in v.failures)
        assert any("NULL-SHA" in f.observed for f in v.failures)


def test_a_server_without_tls12_fails_the_profiles_that_require_it() -> None:
    base = captured("envoy-default-ciphers")
    scan = rejudged(base, protocols={**base.protocols, "TLS 1.2": []})
    assert all(not v.compliant for v in scan.verdicts)
    assert verdict(scan, "B.12").failures[0].observed == "accepts only TLS 1.3"


def test_a_failed_scan_has_no_verdicts() -> None:
    scan = rejudged(captured("envoy-default-ciphers"), error="could not complete a TLS handshake")
    assert scan.verdicts == []


@pytest.fixture(scope="module")
def two_level(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return ensure_pki(PkiSpec("two-level", "rsa-2048", ("dicom.example.test",)),
                      tmp_path_factory.mktemp("pki"))


def _certs(path: Path) -> list:  # type: ignore[type-arg]
    from cryptography import x509

    return x509.load_pem_x509_certificates(path.read_bytes())


def test_a_chain_without_its_intermediate_is_incomplete(two_level) -> None:  # type: ignore[no-untyped-def]
    full, anchors = _certs(two_level.server_fullchain), _certs(two_level.ca_cert)
    assert _intermediate(full, anchors) == "included" and _leads_to_anchor(full, anchors)
    leaf_only = full[:1]
    assert _intermediate(leaf_only, anchors) == "missing"
    assert not _leads_to_anchor(leaf_only, anchors)


def test_a_chain_from_another_ca_does_not_lead_to_the_anchor(two_level) -> None:  # type: ignore[no-untyped-def]
    untrusted = _certs(two_level.untrusted_client_cert)
    assert not _leads_to_anchor(untrusted, _certs(two_level.ca_cert))


def test_hostname_match_uses_the_sans_and_single_label_wildcards(two_level) -> None:  # type: ignore[no-untyped-def]
    leaf = _certs(two_level.server_cert)[0]
    assert _names(leaf, "dicom.example.test")
    assert _names(leaf, "DICOM.example.test.")
    assert not _names(leaf, "other.example.test")
    mismatched = _certs(two_level.mismatched_server_cert)[0]
    assert not _names(mismatched, "dicom.example.test")


def test_an_unreachable_endpoint_yields_a_chain_error_not_an_exception() -> None:
    from dicomtls.scan import Endpoint

    chain = _fetch_chain(Endpoint("127.0.0.1", 1), None)
    assert isinstance(chain, Chain) and chain.error and not chain.certificates


def test_a_version_probe_that_ended_in_an_error_makes_the_verdicts_reading_it_unknown_not_compliant() -> None:
    scan = captured("envoy-default-ciphers")
    assert all(v.compliant for v in scan.verdicts)
    protocols = {v: suites for v, suites in scan.protocols.items() if v != "TLS 1.0"}
    errored = rejudged(scan, protocols=protocols, unknown={"TLS 1.0": "no answer: TimeoutError: timed out"})
    for section in ("B.10", "B.11", "B.12"):
        unknown = verdict(errored, section)
        assert unknown.compliant is None and not unknown.failures
        downgrade = next(f for f in unknown.unknown if f.requirement == "TLS 1.0 and TLS 1.1 shall not be negotiated")
        assert downgrade.observed == "could not be judged: TLS 1.0: no answer: TimeoutError: timed out"
        assert unknown.summary().startswith("unknown: ")
    assert verdict(errored, "B.9").compliant is None  # its suite rules read every version


def test_a_breach_that_was_seen_fails_whatever_else_is_unknown() -> None:
    scan = captured("orthanc-native-tls")  # accepts TLS 1.0
    protocols = {v: suites for v, suites in scan.protocols.items() if v != "TLS 1.1"}
    errored = rejudged(scan, protocols=protocols, unknown={"TLS 1.1": "sslyze CONNECTIVITY_ISSUE: timed out"})
    nd = verdict(errored, "B.10")
    assert nd.compliant is False and "TLS 1.0" in nd.failures[0].observed


def test_an_unknown_tls12_is_not_read_as_a_server_without_tls12() -> None:
    scan = captured("envoy-default-ciphers")
    protocols = {v: suites for v, suites in scan.protocols.items() if v != "TLS 1.2"}
    errored = rejudged(scan, protocols=protocols, unknown={"TLS 1.2": "sslyze BUG_IN_SSLYZE: KeyError: 'x'"})
    b12 = verdict(errored, "B.12")
    assert b12.compliant is None and not b12.failures
    assert b12.unknown[0].requirement == "servers shall support TLS 1.2"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def test_a_version_probe_counts_the_peers_close_as_a_refusal(listener: socket.socket) -> None:
    def close_at_once() -> None:
        connection, _ = listener.accept()
        connection.close()

    threading.Thread(target=close_at_once, daemon=True).start()
    endpoint = Endpoint("127.0.0.1", listener.getsockname()[1], "dicom.example.test")
    assert _precheck(endpoint, "TLSV1", None) == _Attempt(refused=True)


def test_a_version_probe_that_gets_no_answer_is_an_error_not_a_refusal(
        listener: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dicomtls.scan.SCAN_TIMEOUT_S", 0.3)
    endpoint = Endpoint("127.0.0.1", listener.getsockname()[1], "dicom.example.test")
    assert _precheck(endpoint, "TLSV1", None) == _Attempt(refused=False, error="no answer: TimeoutError: timed out")


def test_a_version_probe_whose_client_cannot_be_set_up_is_an_error_not_a_refusal(
        listener: socket.socket, tmp_path: Path) -> None:
    pki = ensure_pki(PkiSpec(server_names=("dicom.example.test",)), tmp_path / "pki")
    mismatched = _Credentials(pki.client_cert, pki.client_cert, pki.server_key)  # a key of another certificate
    endpoint = Endpoint("127.0.0.1", listener.getsockname()[1], "dicom.example.test")
    attempt = _precheck(endpoint, "TLSV1", mismatched)
    assert not attempt.refused
    assert attempt.error is not None and attempt.error.startswith("the client could not be set up: OpenSSLError")


def test_ssl2_is_tried_with_the_leaf_alone_since_it_cannot_carry_a_chain(tmp_path: Path) -> None:
    pki = ensure_pki(PkiSpec(topology="two-level", server_names=("dicom.example.test",)), tmp_path / "pki")
    endpoint = Endpoint("127.0.0.1", 9, "dicom.example.test", pki.ca_cert, pki.client_fullchain, pki.client_key)
    with _credentials(endpoint) as credentials:
        assert credentials is not None and credentials.chain == pki.client_fullchain
        assert credentials.leaf.read_bytes() == pki.client_cert.read_bytes()
        leaf = credentials.leaf
    assert not leaf.exists()
