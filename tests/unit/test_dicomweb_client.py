"""The dicomweb client's own pieces: what it declares to the registry, the WADO-RS multipart answer read back into
the exact bytes of each part, the curl line a person repeats a cell with, and the scenario check that its cells
have a web route."""

from __future__ import annotations

import pytest

from dicomtls.clients import client_class
from dicomtls.components import Address
from dicomtls.errors import UsageError
from dicomtls.probes import Target
from dicomtls.probes.dicomweb import _parts, curl_command
from dicomtls.scenario import Probe, parse_scenario
from tests.unit import placements


def test_dicomweb_speaks_tls_only_can_send_sni_and_a_client_certificate_and_reaches_the_web_route() -> None:
    kind = client_class("dicomweb")
    assert kind.transports == ("tls",) and kind.sends_sni("default") and kind.sends_client_cert
    assert not kind.reaches_dicom_entry
    assert set(kind.operations) >= {"echo", "store-ct"}


def test_a_multipart_related_answer_gives_back_each_part_byte_for_byte() -> None:
    dataset = b"\x00" * 128 + b"DICM\r\n\r\n--not-the-boundary\r\n" + bytes(range(256))
    body = (b"--abc\r\nContent-Type: application/dicom\r\n\r\n" + dataset + b"\r\n--abc--\r\n")
    assert _parts(b'multipart/related; type="application/dicom"; boundary=abc\n' + body) == [dataset]


def test_an_answer_without_a_boundary_has_no_parts() -> None:
    assert _parts(b"application/dicom\n" + b"DICM") == []


def test_a_dicomweb_group_in_an_environment_without_a_web_route_is_refused_before_anything_starts() -> None:
    text = ("name: s\ndescription: d\npki: {topology: one-level, server_names: [a.test]}\n"
            "environments: [{name: e, proxy: {kind: envoy}}]\n"
            "probes: [{client: dicomweb, sni: right, client_cert: valid, operation: echo}]\n"
            "expect: [{match: {}, outcome: pass}]\n")
    with pytest.raises(UsageError, match="client dicomweb speaks to the proxy's HTTPS route, and e has none: give "
                                         "its proxy web: true"):
        parse_scenario(text, "s.yaml")
    parse_scenario(text.replace("{kind: envoy}", "{kind: envoy, web: true}"), "s.yaml")


def test_the_cell_s_command_is_curl_with_the_same_ca_identity_and_sni() -> None:
    target = Target(Address("127.0.0.1", 11112), ("dicom.web.test",), placements.pki_layout(("dicom.web.test",)))
    web = Address("127.0.0.1", 8443)
    named = curl_command(target, Probe("dicomweb", "right", "valid", "store-ct"), web, "dicom.web.test", "/o/dicom-web")
    assert named.startswith(f"curl --fail --cacert {target.pki.ca_cert} --cert {target.pki.client_fullchain} "
                            f"--key {target.pki.client_key} --resolve dicom.web.test:8443:127.0.0.1 "
                            "'https://dicom.web.test:8443/o/dicom-web/studies?limit=1'")
    assert named.endswith("# store-ct: then STOW-RS, QIDO-RS and WADO-RS of its object")
    bare = curl_command(target, Probe("dicomweb", "none", "none", "echo"), web, None, "/dicom-web")
    assert "--cert" not in bare and "--resolve" not in bare and "https://127.0.0.1:8443/dicom-web/" in bare
    assert bare.endswith("# this cell checked the chain, not the name, which curl checks too")
