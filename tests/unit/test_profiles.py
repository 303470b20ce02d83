"""The `profile` axis: which TLS profile a client offers, validated per client, explained when it fails."""

from __future__ import annotations

import ssl

import pytest

from dicomtls.diagnose import Reason, Symptoms, diagnose
from dicomtls.errors import UsageError
from dicomtls.clients import client_class
from dicomtls.clients.dcmtk import FLAGS
from dicomtls.clients.dcmtk import offer as dcmtk_offer
from dicomtls.clients.dcmtk import too_old as dcmtk_too_old
from dicomtls.clients.pynetdicom import python_context
from dicomtls.profiles import PROFILE_NAMES, Offer, python_offer
from dicomtls.scenario import Probe, parse_scenario

SOURCE = "scenarios/under-test.yaml"
BASE = """\
name: under-test
description: a scenario for unit tests
pki:
  server_names: [dicom.example.test]
environments:
  - name: edge
    proxy: { kind: envoy }
probes:
  - client: CLIENT
    profile: PROFILE
expect:
  - match: {}
    outcome: pass
"""


def scenario(client: str, profile: str):  # type: ignore[no-untyped-def]
    return parse_scenario(BASE.replace("CLIENT", client).replace("PROFILE", profile), SOURCE)


def test_the_default_profile_leaves_cell_ids_as_they_were() -> None:
    assert Probe("dcmtk", "none", "valid", "echo").label() == "dcmtk sni=none cert=valid echo"
    cells = scenario("dcmtk", "default").cells()
    assert [c.id for c in cells] == ["under-test/edge/dcmtk sni=none cert=none echo"]


def test_a_chosen_profile_appears_in_the_cell_id() -> None:
    cells = scenario("pynetdicom", "[default, dcm4che-tls-aes]").cells()
    assert [c.probe.label() for c in cells] == [
        "pynetdicom sni=none cert=none echo",
        "pynetdicom sni=none cert=none echo profile=dcm4che-tls-aes",
    ]


def test_expect_rules_can_match_on_profile() -> None:
    text = BASE.replace("CLIENT", "pynetdicom").replace("PROFILE", "[default, tls1.0-only]").replace(
        "  - match: {}\n", "  - match: { profile: tls1.0-only }\n    outcome: fail\n    reason: tls-protocol-version\n"
                            "  - match: {}\n")
    cells = parse_scenario(text, SOURCE).cells()
    assert [(c.probe.profile, c.expected) for c in cells] == [("default", "pass"), ("tls1.0-only", "fail")]


@pytest.mark.parametrize("profile", ["tls1.0-only", "tls1.1-only"])
def test_dcmtk_cannot_run_a_version_capped_profile_and_says_so_in_one_line(profile: str) -> None:
    with pytest.raises(UsageError) as caught:
        scenario("dcmtk", profile)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: ") and "\n" not in message
    assert f"dcmtk cannot express profile {profile}" in message and "pynetdicom" in message


def test_an_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match="dcm4che-tls-aes"):
        scenario("pynetdicom", "tls-aes")


def test_rfc8996_profile_needs_dcmtk_368_and_says_which_is_installed() -> None:
    problem = dcmtk_too_old("bcp195-rfc8996", "3.6.7")
    assert problem and "dcmtk >= 3.6.8 (+pg)" in problem and "3.6.7" in problem
    assert dcmtk_too_old("bcp195-rfc8996", "3.6.9") is None
    assert dcmtk_too_old("aes", "3.6.7") is None


def test_every_profile_runs_on_some_client() -> None:
    for name in PROFILE_NAMES:
        assert name in client_class("dcmtk").profiles() or name in client_class("pynetdicom").profiles(), name
    assert client_class("pynetdicom").unsupported("bcp195-rfc8996") is None


def test_dcmtk_flags_are_its_documented_profile_options() -> None:
    flags = {n: f.flag for n, f in FLAGS.items()}
    assert flags == {"bcp195-nd": "+py", "bcp195": "+px", "bcp195-ex": "+pz", "bcp195-rfc8996": "+pg",
                     "aes": "+pa", "null": "+pn", "dcm4che-tls-aes": "+pa"}


def test_dcmtk_default_offer_follows_its_version() -> None:
    assert "AES128-SHA" not in dcmtk_offer("default", "3.6.7").ciphers
    assert dcmtk_offer("default", "3.6.7") == dcmtk_offer("bcp195-nd", "3.6.7")
    assert dcmtk_offer("default", "3.6.9") == dcmtk_offer("bcp195-rfc8996", "3.6.9")


def test_dcm4che_preset_offers_tls12_with_only_the_aes_and_3des_suites() -> None:
    offer = python_offer(python_context("dcm4che-tls-aes"))
    assert offer.versions == ("TLS 1.2",)
    assert offer.ciphers[0] == "AES128-SHA"
    assert set(offer.ciphers) <= {"AES128-SHA", "DES-CBC3-SHA"}  # 3DES only where OpenSSL still has it


@pytest.mark.parametrize("profile, version", [("tls1.0-only", ssl.TLSVersion.TLSv1),
                                              ("tls1.1-only", ssl.TLSVersion.TLSv1_1)])
def test_old_version_presets_pin_the_version_and_still_have_suites(profile: str, version: ssl.TLSVersion) -> None:
    ctx = python_context(profile)
    assert ctx.minimum_version == ctx.maximum_version == version
    offer = python_offer(ctx)
    assert len(offer.versions) == 1 and offer.ciphers, "OpenSSL 3 at level 0 still offers TLS 1.0/1.1 suites"


def test_python_default_offers_tls12_and_13() -> None:
    offer = python_offer(python_context("default"))
    assert offer.versions == ("TLS 1.2", "TLS 1.3")
    assert "TLS_AES_128_GCM_SHA256" in offer.ciphers and "AES128-SHA" not in offer.ciphers


def test_no_shared_cipher_names_both_sides_and_both_fixes() -> None:
    d = diagnose(Symptoms(
        client_lines=("TLS error: sslv3 alert handshake failure",),
        proxy_lines=("envoy:access.log: tls_failure=TLS_error:|268435640:SSL_routines:OPENSSL_internal:"
                     "NO_SHARED_CIPHER:TLS_error_end",),
        offered=Offer(("TLS 1.2",), ("AES128-SHA",)),
        server_accepts={"TLS 1.2": ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
                        "TLS 1.3": ("TLS_AES_128_GCM_SHA256",)},
    ))
    assert d.reason is Reason.TLS_NO_SHARED_CIPHER
    assert "offered TLS 1.2 with AES128-SHA" in d.summary
    assert "accepts ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-CHACHA20-POLY1305 over TLS 1.2" in d.summary
    assert "add AES128-SHA" in d.fix and "cipher_suites" in d.fix
    assert "ECDHE-RSA-AES128-GCM-SHA256" in d.fix


def test_no_shared_cipher_without_a_scan_says_the_server_side_is_unknown() -> None:
    d = diagnose(Symptoms(client_lines=("sslv3 alert handshake failure",),
                          offered=Offer(("TLS 1.2",), ("AES128-SHA",))))
    assert "unknown (no scan)" in d.summary and "add AES128-SHA" in d.fix


def test_protocol_version_mismatch_names_both_version_ranges() -> None:
    d = diagnose(Symptoms(client_lines=("[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version",),
                          offered=Offer(("TLS 1.0",), ("AES128-SHA",)),
                          server_accepts={"TLS 1.2": ("ECDHE-RSA-AES128-GCM-SHA256",)}))
    assert d.reason is Reason.TLS_PROTOCOL_VERSION
    assert "offered TLS 1.0; the server accepts TLS 1.2" in d.summary
    assert "speak TLS 1.2" in d.fix and "tls_minimum_protocol_version" in d.fix


def test_an_unencrypted_offer_is_fixed_on_the_client_only() -> None:
    d = diagnose(Symptoms(client_lines=("sslv3 alert handshake failure",),
                          offered=Offer(("TLS 1.2",), ("NULL-SHA",)),
                          server_accepts={"TLS 1.2": ("ECDHE-RSA-AES128-GCM-SHA256",)}))
    assert "offered TLS 1.2 with NULL-SHA" in d.summary
    assert "add NULL-SHA" not in d.fix and "ECDHE-RSA-AES128-GCM-SHA256" in d.fix


def test_unquoted_yaml_null_means_the_null_cipher_profile() -> None:
    assert [c.probe.profile for c in scenario("dcmtk", "null").cells()] == ["null"]
    assert [c.probe.profile for c in scenario("dcmtk", "[default, null]").cells()] == ["default", "null"]


def test_a_missing_cipher_fix_names_the_setting_of_the_proxy_that_terminates_tls() -> None:
    from dicomtls.profiles import explain_cipher_mismatch

    offered = Offer(("TLS 1.2",), ("AES128-SHA",))
    accepts = {"TLS 1.2": ("ECDHE-RSA-AES128-GCM-SHA256",)}
    istio = explain_cipher_mismatch(offered, accepts, "istio-gateway")
    traefik = explain_cipher_mismatch(offered, accepts, "traefik")
    envoy = explain_cipher_mismatch(offered, accepts, "envoy")
    assert istio and "tls.cipherSuites, in OpenSSL names" in istio.fix
    assert traefik and "TLS_RSA_WITH_AES_128_CBC_SHA" in traefik.fix
    assert envoy and "tls_params.cipher_suites" in envoy.fix and "Envoy < 1.23" in envoy.fix
