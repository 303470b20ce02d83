"""Targets are any host a user names; the name is resolved in one place, and --resolve pins it without a lookup."""

from __future__ import annotations

import socket

import pytest

from dicomtls.errors import UsageError
from dicomtls.resolve import Pin, Resolver, Unresolved, parse_host_port, parse_pin, parse_target


@pytest.mark.parametrize("text, parsed", [
    ("dicom.example.org:11112", ("dicom.example.org", 11112)),
    ("DICOM.Example.org.:11112", ("dicom.example.org", 11112)),
    ("192.0.2.10:104", ("192.0.2.10", 104)),
    ("[::1]:2762", ("::1", 2762)),
    ("[2001:db8::1]:11112", ("2001:db8::1", 11112)),
    ("localhost:2762", ("localhost", 2762)),
])
def test_targets_take_names_and_ip_literals_of_either_family(text: str, parsed: tuple[str, int]) -> None:
    assert parse_host_port(text) == parsed


@pytest.mark.parametrize("text, message", [
    ("127.0.0.1", "not HOST:PORT"),
    ("127.0.0.1:0", "not HOST:PORT"),
    ("dicom.example.org:70000", "not HOST:PORT"),
    ("::1:11112", "in brackets"),
    ("[::1:11112", "not \\[IPv6\\]:PORT"),
    ("bad_host!:11112", "neither an IP address nor a DNS name"),
])
def test_malformed_targets_are_one_line_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_host_port(text)


def test_resolve_pins_take_curls_form_with_either_address_family() -> None:
    assert parse_pin("dicom.example.test:11112:127.0.0.1") == Pin("dicom.example.test", 11112, "127.0.0.1")
    assert parse_pin("dicom.example.test:11112:[::1]") == Pin("dicom.example.test", 11112, "::1")
    with pytest.raises(UsageError, match="HOST:PORT:ADDRESS"):
        parse_pin("dicom.example.test:11112:somewhere.else")


class Spy:
    """A lookup that records every name it is asked for, and knows only localhost."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host != "localhost":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return ["127.0.0.1"]


def test_a_pinned_name_and_an_ip_literal_are_never_looked_up() -> None:
    spy = Spy()
    resolver = Resolver((Pin("dicom.example.test", 11112, "127.0.0.1"),), spy)
    assert resolver.address("dicom.example.test", 11112) == "127.0.0.1"
    assert resolver.address("DICOM.example.test.", 11112) == "127.0.0.1"
    assert resolver.address("[::1]", 11112) == "::1"
    assert resolver.address("127.0.0.2", 104) == "127.0.0.2"
    assert spy.asked == []


def test_a_pin_covers_its_own_port_only() -> None:
    spy = Spy()
    resolver = Resolver((Pin("dicom.example.test", 11112, "127.0.0.1"),), spy)
    with pytest.raises(Unresolved, match="dicom.example.test does not resolve"):
        resolver.address("dicom.example.test", 2762)
    assert spy.asked == ["dicom.example.test"]


def test_a_name_that_does_not_resolve_is_unresolved_not_an_os_error() -> None:
    with pytest.raises(Unresolved, match="Name or service not known"):
        Resolver((), Spy()).address("nowhere.example.test", 11112)


@pytest.mark.parametrize(("text", "parsed"), [
    ("ORTHANC@dicom.example.org:11112", ("ORTHANC", "dicom.example.org", 11112)),
    ("PACS@[::1]:104", ("PACS", "::1", 104)),
    ("dicom.example.org:11112", (None, "dicom.example.org", 11112)),
])
def test_targets_take_dcm4ches_aet_at_host_port_form(text: str, parsed: tuple[str | None, str, int]) -> None:
    assert parse_target(text) == parsed


@pytest.mark.parametrize("text", ["@dicom.example.org:11112", "A\\B@dicom.example.org:11112",
                                  "SEVENTEEN_LETTERS@dicom.example.org:11112"])
def test_a_malformed_aet_before_the_at_is_a_one_line_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="called AE title"):
        parse_target(text)


def test_a_target_naming_its_called_aet_and_another_called_aet_option_is_refused() -> None:
    from dicomtls import app

    with pytest.raises(UsageError, match="name the called AE title once"):
        app.probe("ORTHANC@dicom.example.org:11112", None, "ca.crt", None, None, "PACS", None, None, "out")


def test_a_calling_aet_that_is_no_ae_title_is_refused_before_anything_runs() -> None:
    from dicomtls import app

    with pytest.raises(UsageError, match="--calling-aet 'A\\\\\\\\B' is not a DICOM AE title"):
        app.probe("dicom.example.org:11112", None, __file__, None, None, None, None, None, "out",
                  calling_aet="A\\B")
