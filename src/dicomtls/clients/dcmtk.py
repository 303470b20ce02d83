"""dcmtk's echoscu and storescu (the runner: dicomtls.probes.dcmtk): what the rest of dicomtls asks of them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dicomtls.clients import (ClientKind, Documented, EndpointRequest, ManifestProbes, listed, register,
                              version_tuple)
from dicomtls.operations import of_service
from dicomtls.profiles import PROFILES, Offer

if TYPE_CHECKING:
    from dicomtls.doctor import Check
    from dicomtls.probes import Client
    from dicomtls.probes.dcmtk import Dcmtk as DcmtkRunner
    from dicomtls.scenario import Probe

BIN = Path("/usr/bin")
"""Where this machine's dcmtk is (called by absolute path: pynetdicom installs console scripts of the same names)."""
TOOLS = ("echoscu", "storescu")
VERSION_COMMAND = ("/usr/bin/echoscu", "--version")
DEBIAN_VERSIONS = {"3.6.7": "bookworm", "3.6.9": "trixie"}
"""Docker backend: which Debian release ships which dcmtk (the first is the default)."""


@dataclass(frozen=True)
class Flag:
    """How dcmtk expresses a profile: its ``+p?`` option, and what its ClientHello then carries."""

    flag: str
    versions: tuple[str, ...]
    ciphers: tuple[str, ...]
    since: tuple[int, int, int] = (3, 6, 0)


_TLS13_SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256")
# dcmtk's suite lists, from dcmtls/libsrc/tlsciphr.cc (setTLSProfile), in OpenSSL names.
_BCP195_ND = ("ECDHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256",
              "ECDHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384")
_BCP195_EX = _BCP195_ND + ("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256")
_RFC9325 = ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384")
_TLS12_13 = ("TLS 1.2", "TLS 1.3")
_TLS10_13 = ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
_TLS10_12 = ("TLS 1.0", "TLS 1.1", "TLS 1.2")

# dcmtk has no option to cap its TLS version, so it cannot be a TLS 1.0/1.1-only client; Debian 12's OpenSSL has
# no 3DES, and dcmtk leaves it out.
FLAGS: dict[str, Flag] = {
    "bcp195-nd": Flag("+py", _TLS12_13, _BCP195_ND + _TLS13_SUITES),
    "bcp195": Flag("+px", _TLS10_13, _BCP195_ND + ("AES128-SHA",) + _TLS13_SUITES),
    "bcp195-ex": Flag("+pz", ("TLS 1.2",), _BCP195_EX),
    "bcp195-rfc8996": Flag("+pg", _TLS12_13, _RFC9325 + _TLS13_SUITES, since=(3, 6, 8)),
    "aes": Flag("+pa", _TLS10_12, ("AES128-SHA",)),
    "null": Flag("+pn", _TLS10_12, ("NULL-SHA",)),
    # dcmtk's AES profile offers the same suite; it would also speak TLS 1.0/1.1, which no TLS 1.2 server asks for.
    "dcm4che-tls-aes": Flag("+pa", _TLS10_12, ("AES128-SHA",)),
}
"""Each profile dcmtk can express -> its option; a profile absent here it cannot run."""


def too_old(profile: str, version: str) -> str | None:
    """Why dcmtk ``version`` cannot run ``profile`` (its option came later), or None."""
    chosen = FLAGS.get(profile)
    if chosen is None or version_tuple(version) >= chosen.since:
        return None
    need = ".".join(map(str, chosen.since))
    return (f"profile {profile} needs dcmtk >= {need} ({chosen.flag}); this dcmtk is {version}: "
            f"drop it from the scenario or install dcmtk >= {need}")


def offer(profile: str, version: str) -> Offer:
    """dcmtk's ClientHello for ``profile``; its default is +py before 3.6.8 and +pg from then on."""
    if profile == "default":
        profile = "bcp195-rfc8996" if version_tuple(version) >= (3, 6, 8) else "bcp195-nd"
    chosen = FLAGS[profile]
    return Offer(chosen.versions, chosen.ciphers)


ENDPOINT_PROFILES = ("bcp195", "aes")
"""The profiles dcmtk runs against an endpoint (probe): BCP 195 and the retired AES one."""


@register
class Dcmtk(ClientKind):
    name = "dcmtk"
    display_name = "dcmtk"
    summary = "dcmtk (echoscu/storescu/findscu)"
    # movescu and getscu have no TLS options (3.6.7): a C-MOVE over TLS is not a dcmtk cell.
    operations = of_service("C-ECHO", "C-STORE", "C-FIND")
    sends_sni_from = "3.6.8"  # --request-sni
    is_command_line = True
    image_recipe = "dcmtk"
    image_versions = DEBIAN_VERSIONS
    image_version_command = VERSION_COMMAND
    connects_to_ipv6_literal = False
    sidecar_can_wrap = True
    # What the owners of such configs run: -ic (the Traefik workaround their docs give), an expired client
    # certificate (Orthweb's Envoy allows one), the retired AES profile; 3.6.9 sends SNI (--request-sni), and
    # only the Docker backend has a dcmtk other than the host's.
    manifest_probes = (
        ManifestProbes(10, {"client_cert": ["none", "valid", "untrusted", "expired"], "operation": ["echo", "store-ct"]}),
        ManifestProbes(30, {"server_cert_check": "ignore"}),
        ManifestProbes(50, {"profile": "aes"}),
        ManifestProbes(70, {"client_version": "3.6.9", "sni": "right", "client_cert": ["none", "valid"]},
                       docker_only=True, what="dcmtk 3.6.9 with --request-sni"),
    )
    documented = (
        Documented(10, "echoscu +tla -rc +cf ca.crt HOST PORT", "no SNI",
                   {"sni": "none", "client_cert": "none", "operation": "echo"}),
        Documented(20, "echoscu +tls client.key client.crt -rc +cf ca.crt HOST PORT", "no SNI, a client certificate",
                   {"sni": "none", "client_cert": "valid", "operation": "echo"}),
        Documented(30, "echoscu +tla -ic HOST PORT", "the Traefik workaround: the server certificate is not checked",
                   {"sni": "none", "client_cert": "none", "operation": "echo", "server_cert_check": "ignore"}),
        Documented(40, "echoscu +tla --request-sni NAME -rc +cf ca.crt HOST PORT", "dcmtk 3.6.9, with SNI",
                   {"sni": "right", "client_cert": "none", "operation": "echo", "client_version": "3.6.9"}),
        Documented(50, "echoscu +tla +pa -rc +cf ca.crt HOST PORT", "the retired AES profile: AES128-SHA",
                   {"sni": "none", "client_cert": "none", "operation": "echo", "profile": "aes"}),
        Documented(70, "echoscu +tls expired.key expired.crt -rc +cf ca.crt HOST PORT", "an expired client certificate",
                   {"sni": "none", "client_cert": "expired", "operation": "echo"}),
    )
    offers_ignore_fix = True
    advice = {"send-sni": "--request-sni NAME, from 3.6.8 on", "send-client-cert": "+tls KEY CRT",
              "use-tls": "+tla or +tls KEY CRT", "trust-ca": "+cf CA", "skip-server-check": "-ic",
              "default-profile": "its default profile"}
    listing_order = 10

    @classmethod
    def sni_problem(cls, version: str) -> str:
        return (f"dcmtk {version} cannot send SNI (--request-sni came in 3.6.8): "
                "use sni: none, or client_version: 3.6.9 on the Docker backend")

    @classmethod
    def profiles(cls) -> list[str]:
        return ["default", *(n for n in PROFILES if n in FLAGS)]

    @classmethod
    def unsupported(cls, profile: str) -> str | None:
        if profile in cls.profiles():
            return None
        able = [c.name for c in listed() if profile in c.profiles()]
        elsewhere = f"give it to {' or '.join(able)}, or " if able else ""
        return (f"dcmtk cannot express profile {profile} ({PROFILES[profile].description}): {elsewhere}"
                f"use one of {', '.join(cls.profiles())} for dcmtk")

    @classmethod
    def offered(cls, profile: str) -> Offer | None:
        chosen = FLAGS.get(profile)
        return Offer(chosen.versions, chosen.ciphers) if chosen else None

    @classmethod
    def sni_fix(cls) -> tuple[str, tuple[tuple[str, str], ...], str | None]:
        return ("send SNI with the server's name (dcmtk >= 3.6.8: --request-sni NAME)",
                (("sni", "right"), ("client_version", "3.6.9")),
                "dcmtk sends SNI from 3.6.8 on: only the Docker backend runs dcmtk 3.6.9")

    @classmethod
    def endpoint_probes(cls, request: EndpointRequest) -> tuple[list[Probe], list[Probe]]:
        from dicomtls.scenario import Probe

        # Before 3.6.8 it sends no SNI, whatever the endpoint needs.
        sni = "right" if request.named and cls.sends_sni(request.version) else "none"
        base = [Probe(cls.name, sni, cert, op) for cert in request.certs for op in request.operations]
        base.append(Probe(cls.name, sni, "none", "echo", server_cert_check="ignore"))
        base.append(Probe(cls.name, "none", "none", "echo", "plain"))
        return base, [Probe(cls.name, sni, request.best_cert, "echo", profile=p) for p in ENDPOINT_PROFILES]

    @classmethod
    def check_here(cls) -> list[Check]:
        from dicomtls.doctor import Check

        purpose = "DICOM clients echoscu and storescu"
        missing = [tool for tool in TOOLS if not os.access(BIN / tool, os.X_OK)]
        if missing:
            return [Check("dcmtk", purpose, None, problem=f"{', '.join(missing)} not in {BIN}", packages=("dcmtk",))]
        return [Check("dcmtk", purpose, str(BIN / "echoscu"))]

    @classmethod
    def build(cls, dcmtk: DcmtkRunner) -> Client:
        return dcmtk
