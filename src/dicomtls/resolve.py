"""The one place dicomtls turns a host name into an address to connect to.

Every client (dcmtk, pynetdicom, the sslyze scan, Orthanc's REST API) is handed
the address found here and the *name* separately, for SNI and the certificate
check; so nothing else ever looks a name up, ``--resolve HOST:PORT:ADDR`` (curl's
convention) pins a name to an address without DNS, and a test can hand in a
lookup that records every name it is asked for.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

from dicomtls.errors import UsageError

Lookup = Callable[[str, int], list[str]]
"""(host, port) -> addresses, best first; raises OSError when the name does not resolve."""

_DNS_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?")


class Unresolved(Exception):
    """A name no lookup could turn into an address: a diagnosed failure (dns-unresolved), not a usage error."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"{host} does not resolve: {why}")
        self.host = host


def system_lookup(host: str, port: int) -> list[str]:
    """The operating system's resolver (/etc/hosts, DNS, …), as every other client on the machine sees it."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def ip_literal(host: str) -> str | None:
    """The normalised address when ``host`` is an IPv4 or IPv6 literal (brackets allowed), else None."""
    try:
        return str(ipaddress.ip_address(host.removeprefix("[").removesuffix("]")))
    except ValueError:
        return None


def host_port(address: str, port: int) -> str:
    """``HOST:PORT`` as a person writes it, with an IPv6 literal in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def check_name(host: str, what: str) -> str:
    if not _DNS_NAME.fullmatch(host):
        raise UsageError(f"{what} {host!r} is neither an IP address nor a DNS name: write it like dicom.example.org, "
                         "192.0.2.10 or [2001:db8::1]")
    return host.rstrip(".").lower()


def parse_host_port(text: str, what: str = "--target") -> tuple[str, int]:
    """``name:port``, ``192.0.2.1:port`` or ``[2001:db8::1]:port`` -> (name or normalised address, port)."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep or ip_literal(host) is None:
            raise UsageError(f"{what} {text!r} is not [IPv6]:PORT: write it like [::1]:11112")
    else:
        host, sep, port = text.rpartition(":")
        if ":" in host:
            raise UsageError(f"{what} {text!r}: put an IPv6 address in brackets, like [::1]:11112")
    if not sep or not host or not port.isdecimal() or not 0 < int(port) < 65536:
        raise UsageError(f"{what} {text!r} is not HOST:PORT: write it like dicom.example.org:11112")
    return ip_literal(host) or check_name(host, what), int(port)


def parse_target(text: str, what: str = "--target") -> tuple[str | None, str, int]:
    """``HOST:PORT``, or dcm4che's ``AET@HOST:PORT`` (the called AE title first) -> (AET or None, host, port)."""
    aet, at, rest = text.rpartition("@") if "@" in text else (None, "", text)
    if at and not (aet and re.fullmatch(r"[ -\[\]-~]{1,16}", aet) and aet.strip()):
        raise UsageError(f"{what} {text!r}: before @ goes the called AE title (1-16 printable ASCII characters, no "
                         "backslash): write it like ORTHANC@dicom.example.org:11112")
    host, port = parse_host_port(rest, what)
    return aet or None, host, port


@dataclass(frozen=True)
class Pin:
    """``--resolve HOST:PORT:ADDR``: connect to ADDR for HOST:PORT, and ask no resolver about HOST."""

    host: str
    port: int
    address: str


def parse_pin(text: str) -> Pin:
    host, _, rest = text.partition(":")
    port, _, address = rest.partition(":")
    found = ip_literal(address)
    if not host or not port.isdecimal() or not 0 < int(port) < 65536 or found is None:
        raise UsageError(f"--resolve {text!r} is not HOST:PORT:ADDRESS: write it like "
                         "dicom.example.org:11112:192.0.2.10 (or …:[::1])")
    return Pin(check_name(host, "--resolve"), int(port), found)


@dataclass(frozen=True)
class Resolver:
    """Pins first, then ``lookup``; IP literals are used as they are."""

    pins: tuple[Pin, ...] = ()
    lookup: Lookup = system_lookup

    def address(self, host: str, port: int) -> str:
        literal = ip_literal(host)
        if literal is not None:
            return literal
        name = host.rstrip(".").lower()
        pinned = next((p.address for p in self.pins if p.host == name and p.port == port), None)
        if pinned is not None:
            return pinned
        try:
            found = self.lookup(name, port)
        except (OSError, UnicodeError) as exc:
            raise Unresolved(host, str(exc) or type(exc).__name__) from None
        if not found:
            raise Unresolved(host, "no address")
        return found[0]
