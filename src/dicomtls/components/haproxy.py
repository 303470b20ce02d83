"""HAProxy in front of Orthanc: TLS terminated (crt, verify, strict-sni), or routed by req.ssl_sni (passthrough).

HAProxy 2.6 wants the certificate chain and its key in one PEM file. dicomtls keeps keys in separate
files, so the launch command assembles that PEM in the working directory (umask 077, so 0600) from the
server's own chain and key, right before HAProxy starts, in the component's own filesystem view.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from dicomtls.components import Component, Launch, Options, Placement, register
from dicomtls.images import DEFAULT_VERSIONS
from dicomtls.render import render

# $1 chain, $2 key, $3 assembled PEM, $4 haproxy, $5 config: paths travel as arguments, never through the shell.
ASSEMBLE_AND_RUN = 'umask 077 && cat "$1" "$2" > "$3" && exec "$4" -f "$5" -db'


class HaproxyOptions(Options):
    client_cert: Literal["none", "optional", "required"] = "none"
    """bind ... verify none / optional (verified if sent) / required; only when HAProxy terminates TLS."""
    passthrough: bool = False
    """Route by req.ssl_sni without terminating TLS; the server behind must terminate it (tls: true)."""
    sni: Literal["any", "named"] = "any"
    """named: strict-sni when terminating; with passthrough, route only the PKI's server names."""

    @model_validator(mode="after")
    def _consistent(self) -> "HaproxyOptions":
        if self.passthrough and self.client_cert != "none":
            raise ValueError("client_cert applies only where HAProxy terminates TLS: with passthrough, set "
                             "client_cert on the server")
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
    options: HaproxyOptions

    def launch(self, placement: Placement, executable: str) -> Launch:
        o = self.options
        chain, key = placement.pki.server_identity(False)
        pem = f"{placement.workdir}/server.pem"
        config_path = f"{placement.workdir}/haproxy.cfg"
        config = render(
            "haproxy/haproxy.cfg.j2",
            listen=placement.listen["dicom"],
            upstream=placement.upstreams["dicom"],
            passthrough=o.passthrough,
            sni=o.sni,
            server_names=placement.server_names,
            pem=pem,
            verify=o.client_cert,  # HAProxy's own words: verify none / optional / required
            trusted=placement.pki.ca_bundle,
        )
        if o.passthrough:
            return Launch(executable=executable, args=["-f", config_path, "-db"], files={"haproxy.cfg": config},
                          connection_log="output.log")
        return Launch(
            executable="/bin/sh",
            args=["-c", ASSEMBLE_AND_RUN, "haproxy", chain, key, pem, executable, config_path],
            files={"haproxy.cfg": config},
            connection_log="output.log",
        )

    def terminates_tls(self) -> bool:
        return not self.options.passthrough

    def default_image_version(self) -> str:
        return DEFAULT_VERSIONS["haproxy"]
