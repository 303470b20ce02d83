"""Orthanc, the DICOM server every environment ends at (plain DICOM, or its own DICOM TLS)."""

from __future__ import annotations

from typing import Literal

from dicomtls.components import Component, Launch, Options, Placement, register
from dicomtls.render import render


class OrthancOptions(Options):
    tls: bool = False
    """Orthanc's own DICOM TLS (DicomTls* options, since Orthanc 1.9.0) instead of plain DICOM."""
    client_cert: Literal["required", "optional"] = "required"
    """DicomTlsRemoteCertificateRequired: Orthanc's default is to require a client certificate."""
    server_cert: Literal["valid", "mismatched"] = "valid"
    """With tls: mismatched presents the certificate for wrong-host.invalid."""


@register
class Orthanc(Component):
    kind = "orthanc"
    role = "server"
    ports = ("dicom", "http")
    options_model = OrthancOptions
    executable_name = "Orthanc"
    install_hint = "apt-get install orthanc"
    image_executable = "/usr/sbin/Orthanc"
    display_name = "Orthanc"
    listing_order = 90
    apt_packages = ("orthanc",)
    debian_versions = {"1.10.1": "bookworm", "1.12.7": "trixie"}
    load_target = ("orthanc-native-tls", "orthanc-tls-client-cert-required")  # Orthanc's own DICOM TLS
    options: OrthancOptions

    def launch(self, placement: Placement, executable: str) -> Launch:
        o = self.options
        pki = placement.pki
        certificate, private_key = pki.server_identity(o.server_cert == "mismatched")
        config = render(
            "orthanc/orthanc.json.j2",
            name=placement.name,
            workdir=placement.workdir,
            dicom=placement.listen["dicom"],
            http=placement.listen["http"],
            tls=o.tls,
            certificate=certificate,
            private_key=private_key,
            trusted=pki.ca_bundle,
            client_cert_required=o.client_cert == "required",
        )
        return Launch(
            executable=executable,
            args=["--verbose", f"{placement.workdir}/orthanc.json"],
            files={"orthanc.json": config},
        )

    def terminates_tls(self) -> bool:
        return self.options.tls

    @classmethod
    def cipher_setting(cls, suite: str) -> str:
        return "Orthanc >= 1.12.4: DicomTlsCiphersAccepted"
