"""stunnel in server mode as a TLS-terminating proxy in front of the DICOM server: a real TLS proxy that dicomtls
does not ship, declared here the way a built-in component declares itself (dicomtls.components)."""

from __future__ import annotations

from importlib.resources import files
from typing import Literal

from dicomtls.components import Component, Launch, LogWords, Options, Placement
from dicomtls.render import render


class StunnelProxyOptions(Options):
    client_cert: Literal["none", "optional", "required"] = "none"
    """verifyChain no / yes with requireCert no (checked if sent) / yes with requireCert yes."""


class StunnelProxy(Component):
    kind = "stunnel-proxy"
    role = "proxy"
    ports = ("dicom",)
    options_model = StunnelProxyOptions
    executable_name = "stunnel4"
    version_args = ("-version",)  # prints "stunnel 5.68 on ..." to stderr
    version_pattern = r"stunnel (\d+\.\d+)"
    install_hint = "apt-get install stunnel4"
    image_executable = "/usr/bin/stunnel4"
    display_name = "stunnel (server mode)"
    apt_packages = ("stunnel4",)
    listing_order = 200
    templates = files(__package__) / "templates"
    log_words = LogWords(
        upstream_unreachable=r"s_connect: connect .*: Connection refused",
        certificate_required=r"peer did not return a certificate",
    )
    fix_options = {"client-cert-optional": ("client_cert", "optional")}
    options: StunnelProxyOptions

    def launch(self, placement: Placement, executable: str) -> Launch:
        site = placement.sites[0]
        config = render(
            "stunnel-proxy/stunnel.conf.j2",
            listen=placement.listen["dicom"],
            upstream=site.upstream,
            certificate=site.certificate,
            private_key=site.private_key,
            client_cert=self.options.client_cert,
            trusted=placement.pki.ca_bundle,
        )
        return Launch(executable=executable, args=[f"{placement.workdir}/stunnel.conf"],
                      files={"stunnel.conf": config})

    def terminates_tls(self) -> bool:
        return True

    def sites_problem(self, sites: tuple[str, ...]) -> str | None:
        return f"{self.kind} forwards to one server: give it one site, not {len(sites)}" if len(sites) > 1 else None
