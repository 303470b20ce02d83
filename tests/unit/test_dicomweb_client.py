"""The dicomweb client's own pieces: what it declares to the registry, and the WADO-RS multipart answer read back
into the exact bytes of each part."""

from __future__ import annotations

from dicomtls.clients import client_class
from dicomtls.probes.dicomweb import _parts


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
    import pytest

    from dicomtls.errors import UsageError
    from dicomtls.scenario import parse_scenario

    text = ("name: s\ndescription: d\npki: {topology: one-level, server_names: [a.test]}\n"
            "environments: [{name: e, proxy: {kind: envoy}}]\n"
            "probes: [{client: dicomweb, sni: right, client_cert: valid, operation: echo}]\n"
            "expect: [{match: {}, outcome: pass}]\n")
    with pytest.raises(UsageError, match="client dicomweb speaks to the proxy's HTTPS route, and e has none: give "
                                         "its proxy web: true"):
        parse_scenario(text, "s.yaml")
    parse_scenario(text.replace("{kind: envoy}", "{kind: envoy, web: true}"), "s.yaml")
