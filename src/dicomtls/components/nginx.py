"""nginx's stream module in front of Orthanc: TLS terminated, or routed by SNI with ssl_preread (passthrough).

nginx 1.22's stream module cannot pick a TLS server by SNI, so SNI routing means passthrough: the
name is read from the ClientHello and the encrypted connection goes to a TLS-terminating Orthanc.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import model_validator

from dicomtls.components import (
    CRL_NEEDS_CLIENT_CERT, Component, Lack, Launch, LogWords, Placement, WebOptions, register,
)
from dicomtls.render import render

_VERIFY_CLIENT = {"none": "off", "optional": "optional", "required": "on"}
DEBIAN_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
WEB_LOG = "web.log"
"""The HTTPS route's request log: apart from the stream server's, whose lines the run counts."""


class NginxOptions(WebOptions):
    client_cert: Literal["none", "optional", "required"] = "none"
    """ssl_verify_client off / optional (verified if sent) / on; only when nginx terminates TLS."""
    passthrough: bool = False
    """ssl_preread: route by SNI without terminating TLS; the server behind must terminate it (tls: true)."""
    sni: Literal["any", "named"] = "any"
    """With passthrough: any routes every other client to the first site; named only the sites' names (others
    are closed)."""
    protocols: list[Literal["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]] | None = ["TLSv1.2", "TLSv1.3"]
    """ssl_protocols, as written in a user's nginx.conf; null: no ssl_protocols line, nginx's own default for the
    version run (TLS 1.3 joined it in 1.23.4, TLS 1.0/1.1 left it in 1.27.3)."""
    ciphers: str | None = None
    """ssl_ciphers, an OpenSSL cipher string as written (``HIGH:!aNULL:!MD5``); null: nginx's default."""
    client_crl: bool = False
    """ssl_crl: refuse client certificates the PKI's CRL revokes (needs client_cert)."""

    @model_validator(mode="after")
    def _consistent(self) -> "NginxOptions":
        if self.sni == "named" and not self.passthrough:
            raise ValueError("sni: named needs passthrough: true (nginx 1.22's stream module cannot choose a TLS "
                             "server by SNI)")
        if self.passthrough and (self.ciphers is not None or self.protocols != NginxOptions.model_fields[
                "protocols"].default):
            raise ValueError("protocols and ciphers apply only where nginx terminates TLS: with passthrough, the "
                             "server behind negotiates TLS")
        if self.passthrough and self.web:
            raise ValueError("web: the HTTPS route terminates TLS at nginx, which passthrough does not")
        if self.passthrough and self.client_cert != "none":
            raise ValueError("client_cert applies only where nginx terminates TLS: with passthrough, set "
                             "client_cert on the server")
        if self.client_crl and self.client_cert == "none":
            raise ValueError(CRL_NEEDS_CLIENT_CERT)
        return self


@functools.cache
def stream_module(executable: str) -> str | None:
    """The load_module path when this nginx has the stream module as a dynamic module (Debian does)."""
    try:
        built = subprocess.run([executable, "-V"], capture_output=True, text=True, timeout=20).stderr
    except (OSError, subprocess.TimeoutExpired):
        return DEBIAN_STREAM_MODULE
    if "--with-stream=dynamic" not in built:
        return None
    match = re.search(r"--modules-path=(\S+)", built)
    return str(Path(match.group(1)) / "ngx_stream_module.so") if match else DEBIAN_STREAM_MODULE


@register
class Nginx(Component):
    kind = "nginx"
    role = "proxy"
    ports = ("dicom",)
    options_model = NginxOptions
    executable_name = "nginx"
    version_args = ("-v",)
    install_hint = "apt-get install nginx libnginx-mod-stream"
    image_executable = "/usr/sbin/nginx"
    upstream_repository = "nginx"  # the official image: https://hub.docker.com/_/nginx
    upstream_executable = "/usr/sbin/nginx"
    display_name = "nginx"
    web_route_setting = "an nginx server_name"
    listing_order = 40
    catch_all_route = "an nginx map default entry (with ssl_preread)"
    upstream_setting = "nginx proxy_pass"
    apt_packages = ("nginx", "libnginx-mod-stream")
    debian_versions = {"1.22.1": "bookworm", "1.26.3": "trixie"}
    log_words = LogWords(
        no_route=r'no host in upstream ""',  # ssl_preread: the map's empty default
        upstream_unreachable=r"connect\(\) failed \(\d+: [^)]*\) while (proxying connection|connecting to upstream)"
                             r"|no live upstreams",
        upstream_broke=r"\(\d+: [^)]*\) while proxying and (reading from|sending to) upstream",
        certificate_required=r"client sent no required SSL certificate",
        # With ssl_crl, nginx checks a CRL for every certificate of the chain and logs the last error: a client
        # certificate no CA of the PKI issued (self-signed, an unrelated CA's) has no CRL, and reads so.
        unknown_ca=r"unable to get certificate CRL",
    )
    fix_options = {"client-cert-optional": ("client_cert", "optional"), "catch-all-route": ("sni", "any")}
    load_target = ("nginx-stream", "nginx-tls-client-cert-optional")
    options: NginxOptions

    def launch(self, placement: Placement, executable: str) -> Launch:
        o = self.options
        config = render(
            "nginx/nginx.conf.j2",
            # The official image builds the stream module in (its configure: --with-stream): nothing to load.
            stream_module=None if placement.upstream_image else stream_module(executable),
            pid=f"{placement.workdir}/nginx.pid",
            access_log=f"{placement.workdir}/access.log",
            listen=placement.listen["dicom"],
            passthrough=o.passthrough,
            sni=o.sni,
            sites=placement.sites,
            verify_client=_VERIFY_CLIENT[o.client_cert],
            trusted=placement.pki.ca_bundle,
            crl=placement.pki.crl if o.client_crl else None,
            protocols=o.protocols,
            ciphers=o.ciphers,
            web=placement.listen.get("web"),
            web_log=f"{placement.workdir}/{WEB_LOG}",
            web_path=o.web_path,
        )
        return Launch(
            executable=executable,
            args=["-p", placement.workdir, "-c", f"{placement.workdir}/nginx.conf"],
            files={"nginx.conf": config},
            connection_log="access.log",
            logs=(WEB_LOG,) if "web" in placement.listen else (),
        )

    def terminates_tls(self) -> bool:
        return not self.options.passthrough

    def sites_problem(self, sites: tuple[str, ...]) -> str | None:
        if len(sites) > 1 and not self.options.passthrough:
            return ("nginx 1.22's stream module picks a certificate by SNI only through variables, which its "
                    "unprivileged worker cannot read (keys are 0600): route several sites with passthrough: true")
        return None

    @classmethod
    def cipher_setting(cls, suite: str) -> str:
        return "ssl_ciphers in the stream server"

    @classmethod
    def purpose(cls) -> str:
        return "proxy, with its stream module"

    def lacks(self, executable: str) -> Lack | None:
        built = subprocess.run([executable, "-V"], capture_output=True, text=True, timeout=20).stderr
        module = stream_module(executable)
        if "--with-stream" not in built or (module is not None and not Path(module).is_file()):
            return Lack(f"{executable} has no stream module", ("libnginx-mod-stream",))
        return None
