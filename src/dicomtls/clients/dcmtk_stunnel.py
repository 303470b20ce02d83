"""dcmtk behind a stunnel sidecar (the runner: dicomtls.probes.stunnel): plain dcmtk, stunnel speaks TLS."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from dicomtls.clients import ClientKind, EndpointRequest, register
from dicomtls.operations import of_service

if TYPE_CHECKING:
    from dicomtls.doctor import Check
    from dicomtls.probes import Client
    from dicomtls.probes.dcmtk import Dcmtk as DcmtkRunner
    from dicomtls.scenario import Probe

STUNNEL = "stunnel4"  # Debian's name for the binary (`stunnel` is a link to it)


@register
class DcmtkStunnel(ClientKind):
    name = "dcmtk-stunnel"
    display_name = "dcmtk via stunnel"
    summary = "dcmtk-stunnel (plain dcmtk through a stunnel sidecar)"
    transports = ("tls",)
    operations = of_service("C-ECHO", "C-STORE")  # the wrapper runs one dcmtk command: a query stores first
    is_sidecar = True
    sidecar_program = "stunnel"
    is_command_line = True
    image_recipe = "dcmtk"  # the client image brings stunnel too
    advice = {"send-sni": "sni = NAME", "send-client-cert": "cert = CRT and key = KEY", "trust-ca": "CAfile = CA"}
    listing_order = 30

    @classmethod
    def transport_problem(cls) -> str:
        return "dcmtk-stunnel always speaks TLS (stunnel wraps plain dcmtk): use client dcmtk for transport: plain"

    @classmethod
    def unsupported(cls, profile: str) -> str | None:
        if profile == "default":
            return None
        return "dcmtk-stunnel offers OpenSSL's defaults (stunnel sets no cipher list): use profile default"

    @classmethod
    def sni_fix(cls) -> tuple[str, tuple[tuple[str, str], ...], str | None]:
        return "let the sidecar send the server's name (stunnel: sni = NAME)", (("sni", "right"),), None

    @classmethod
    def endpoint_probes(cls, request: EndpointRequest) -> tuple[list[Probe], list[Probe]]:
        from dicomtls.scenario import Probe

        # The sidecar sends the endpoint's name whatever dcmtk's version: what hospitals put in front of a dcmtk
        # that cannot; without SNI once, to show what a named route makes of that. It has no profiles of its own.
        sni = "right" if request.named else "none"
        base = [Probe(cls.name, sni, cert, op) for cert in request.certs for op in request.operations]
        if request.named:
            base.append(Probe(cls.name, "none", request.best_cert, "echo"))
        return base, []

    @classmethod
    def check_here(cls) -> list[Check]:
        from dicomtls.doctor import Check

        purpose = "the client dcmtk-stunnel (dcmtk via stunnel)"
        found = shutil.which(STUNNEL)
        if found is None:
            return [Check("stunnel", purpose, None, problem=f"{STUNNEL} not on PATH", packages=("stunnel4",))]
        return [Check("stunnel", purpose, found)]

    @classmethod
    def build(cls, dcmtk: DcmtkRunner) -> Client:
        from dicomtls.probes.stunnel import DcmtkViaStunnel

        client = DcmtkViaStunnel(dcmtk)
        if dcmtk.installed:  # a backend's client image brings its own stunnel
            client.check()
        return client
