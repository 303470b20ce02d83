"""HAProxy in front of Orthanc: TLS terminated (crt, verify, strict-sni), or routed by req.ssl_sni (passthrough).

HAProxy 2.6 wants the certificate chain and its key in one PEM file. dicomtls keeps keys in separate
files, so the launch command assembles one PEM per site in the working directory (umask 077, so 0600)
from that site's chain and key, right before HAProxy starts, in the component's own filesystem view.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from dicomtls.components import CRL_NEEDS_CLIENT_CERT, Component, Launch, LogWords, Placement, WebOptions, register
from dicomtls.render import render


def assemble_and_run(sites: int) -> str:
    """A shell line whose arguments are (chain, key, PEM) per site, then haproxy and its config: paths travel as
    arguments, never through the shell."""
    steps = [f'cat "${{{3 * i + 1}}}" "${{{3 * i + 2}}}" > "${{{3 * i + 3}}}"' for i in range(sites)]
    return " && ".join(["umask 077", *steps, f'exec "${{{3 * sites + 1}}}" -f "${{{3 * sites + 2}}}" -db'])


class HaproxyOptions(WebOptions):
    client_cert: Literal["none", "optional", "required"] = "none"
    """bind ... verify none / optional (verified if sent) / required; only when HAProxy terminates TLS."""
    passthrough: bool = False
    """Route by req.ssl_sni without terminating TLS; the server behind must terminate it (tls: true)."""
    sni: Literal["any", "named"] = "any"
    """named: strict-sni when terminating; with passthrough, route only the sites' names (any: the rest go to the
    first site)."""
    ciphers: str | None = None
    """bind ... ciphers: the OpenSSL cipher string for TLS 1.2 and below; none: HAProxy's default."""
    ciphersuites: str | None = None
    """bind ... ciphersuites: the TLS 1.3 suites; none: HAProxy's default."""
    min_version: Literal["1.0", "1.1", "1.2", "1.3"] | None = None
    """bind ... ssl-min-ver; none: HAProxy's default (TLS 1.2 since HAProxy 2.2)."""
    max_version: Literal["1.0", "1.1", "1.2", "1.3"] | None = None
    """bind ... ssl-max-ver; none: the highest the OpenSSL build has."""
    client_crl: bool = False
    """bind ... crl-file: refuse client certificates the PKI's CRL revokes (needs client_cert)."""

    @model_validator(mode="after")
    def _consistent(self) -> "HaproxyOptions":
        if self.passthrough and self.web:
            raise ValueError("web: the HTTPS route terminates TLS at HAProxy, which passthrough does not")
        if self.passthrough and self.client_cert != "none":
            raise ValueError("client_cert applies only where HAProxy terminates TLS: with passthrough, set "
                             "client_cert on the server")
        if self.client_crl and self.client_cert == "none":
            raise ValueError(CRL_NEEDS_CLIENT_CERT)
        tls = [name for name in ("ciphers", "ciphersuites", "min_version", "max_version")
               if getattr(self, name) is not None]
        if self.passthrough and tls:
            raise ValueError(f"{', '.join(tls)} apply only where HAProxy terminates TLS: with passthrough, the "
                             "server behind chooses")
        return self


@register
class Haproxy(Component):
    kind = "haproxy"
    role = "proxy"
    ports = ("dicom",)
    options_model = HaproxyOptions
    executable_name = "haproxy"
    version_args = ("-v",)
    install_hint = "apt-get install haproxy"
    image_executable = "/usr/sbin/haproxy"
    display_name = "HAProxy"
    web_route_setting = "an HAProxy use_backend rule"
    listing_order = 50
    catch_all_route = "an HAProxy default_backend"
    upstream_setting = "HAProxy server"
    apt_packages = ("haproxy",)
    debian_versions = {"2.6.12": "bookworm"}
    log_words = LogWords(
        no_route=r"/<NOSRV>\s",  # no use_backend matched
        # no connect time (-1), terminated by the server side at connect
        upstream_unreachable=r"\s\d+/-1/\d+ \d+ [sS]C\b",
        upstream_broke=r"\s\d+/\d+/\d+ \d+ [sS]D\b",  # terminated by the server side during the data phase
        unknown_ca=r"client certificate not trusted",
    )
    fix_options = {"client-cert-optional": ("client_cert", "optional"), "catch-all-route": ("sni", "any"),
                   "min-version": "min_version"}
    load_target = ("haproxy-tls", "haproxy-tls-client-cert-optional")
    options: HaproxyOptions

    def launch(self, placement: Placement, executable: str) -> Launch:
        o = self.options
        pems = [f"{placement.workdir}/{site.name}.pem" for site in placement.sites]
        config_path = f"{placement.workdir}/haproxy.cfg"
        config = render(
            "haproxy/haproxy.cfg.j2",
            listen=placement.listen["dicom"],
            sites=placement.sites,
            passthrough=o.passthrough,
            sni=o.sni,
            pems=pems,
            verify=o.client_cert,  # HAProxy's own words: verify none / optional / required
            trusted=placement.pki.ca_bundle,
            crl=placement.pki.crl if o.client_crl else None,
            ciphers=o.ciphers,
            ciphersuites=o.ciphersuites,
            min_version=o.min_version and f"TLSv{o.min_version}",
            max_version=o.max_version and f"TLSv{o.max_version}",
            web=placement.listen.get("web"),
            web_path=o.web_path,
        )
        if o.passthrough:
            return Launch(executable=executable, args=["-f", config_path, "-db"], files={"haproxy.cfg": config},
                          connection_log="output.log")
        parts = [path for site, pem in zip(placement.sites, pems) for path in (site.certificate, site.private_key, pem)]
        return Launch(
            executable="/bin/sh",
            args=["-c", assemble_and_run(len(pems)), "haproxy", *parts, executable, config_path],
            files={"haproxy.cfg": config},
            connection_log="output.log",
        )

    def terminates_tls(self) -> bool:
        return not self.options.passthrough

    @classmethod
    def cipher_setting(cls, suite: str) -> str:
        return "ciphers on the bind line (or ssl-default-bind-ciphers)"
