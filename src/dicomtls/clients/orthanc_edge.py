"""An edge Orthanc as the DICOM TLS client (the runner: dicomtls.probes.orthanc_edge): what a hospital's Orthanc does when
it forwards to the cloud Orthanc through the ingress, a modality with ``UseDicomTls`` (Orthanc >= 1.9.0).

What it can and cannot do is read from Orthanc's source (OrthancFramework/Sources/DicomNetworking/
Internals/DicomTls.cpp and DicomAssociation.cpp):

- no SNI, in any version: ``DicomAssociation::Open`` builds dcmtk's ``DcmTLSTransportLayer`` through
  ``InitializeDicomTls`` and never names the server to it (no ``setClientSNI``, no ``SSL_set_tlsext_host_name``);
- always its own certificate: ``InitializeDicomTls`` refuses to start the SCU without ``DicomTlsCertificate`` and
  ``DicomTlsPrivateKey`` (the global ones; a modality has no certificate of its own), so a server that asks for a
  client certificate always gets that one;
- the server's chain is checked against ``DicomTlsTrustedCertificates`` while ``DicomTlsRemoteCertificateRequired``
  is true (the default); dcmtk checks no host name;
- dcmtk's BCP 195 profile (``TSP_Profile_BCP195``) unless ``DicomTlsMinimumProtocolVersion`` (1.12.4) says
  otherwise.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from dicomtls.clients import ClientKind, EndpointRequest, register
from dicomtls.clients.dcmtk import offer as dcmtk_offer
from dicomtls.operations import of_service

if TYPE_CHECKING:
    from dicomtls.doctor import Check
    from dicomtls.probes import Client
    from dicomtls.probes.dcmtk import Dcmtk as DcmtkRunner
    from dicomtls.profiles import Offer
    from dicomtls.scenario import Probe

EXECUTABLE = "Orthanc"
SEARCH_PATH = "/usr/sbin:/usr/local/sbin:/usr/bin"
PROFILE = "bcp195"
"""dcmtk's profile Orthanc's SCU offers (TSP_Profile_BCP195, DicomTlsMinimumProtocolVersion 0)."""
DCMTK_OF_ORTHANC = "3.6.7"
"""The dcmtk Debian's Orthanc is built with: the profile's suites are dcmtk's."""


def executable() -> str | None:
    """This machine's Orthanc, where Debian's package puts it."""
    return shutil.which(EXECUTABLE, path=SEARCH_PATH)


@functools.cache
def installed_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"(\d+\.\d+\.\d+)", out)
    return found.group(1) if found else "unknown"


@register
class OrthancEdge(ClientKind):
    name = "orthanc-edge"  # "orthanc" is the server component's kind
    display_name = "Orthanc (edge)"
    summary = "orthanc-edge (an edge Orthanc's C-ECHO/C-STORE to a modality with UseDicomTls; no SNI)"
    operations = of_service("C-ECHO", "C-STORE")
    sends_sni_from = None
    sidecar_can_wrap = True  # stunnel or ghostunnel in front of it: what its users deploy for SNI
    advice = {"send-client-cert": "DicomTlsCertificate and DicomTlsPrivateKey",
              "use-tls": '"UseDicomTls": true on the modality', "trust-ca": "DicomTlsTrustedCertificates"}
    listing_order = 40

    @classmethod
    def sni_problem(cls, version: str) -> str:
        return "orthanc-edge sends no SNI (its DICOM TLS client never names the server): use sni: none"

    @classmethod
    def group_problem(cls, group: Any) -> str | None:
        if "none" in group.client_cert and "tls" in group.transport:
            return ("orthanc-edge cannot be a DICOM TLS client without its own certificate (DicomTlsCertificate and "
                    "DicomTlsPrivateKey are required for its SCU too): use client_cert valid, untrusted or expired, "
                    "or transport: plain")
        if set(group.server_cert_check) != {"verify"}:
            return ("orthanc-edge (Orthanc 1.10) checks the server's chain whenever it speaks TLS "
                    "(DicomTlsRemoteCertificateRequired false still checks a certificate that is sent): "
                    "use server_cert_check: verify")
        if set(group.fault) != {"none"}:
            return "orthanc-edge runs no fault cells (its C-STORE cannot be stopped mid-transfer): use fault: none"
        return super().group_problem(group)

    @classmethod
    def sni_fix(cls) -> tuple[str, tuple[tuple[str, str], ...], str | None]:
        return ("send SNI: Orthanc cannot (no version names the server in its TLS handshake)", (("sni", "right"),),
                "Orthanc sends no SNI in any version")

    @classmethod
    def endpoint_probes(cls, request: EndpointRequest) -> tuple[list[Probe], list[Probe]]:
        from dicomtls.scenario import Probe

        # Never SNI, always a certificate: each certificate the probe has, each operation; no profiles of its own.
        return [Probe(cls.name, "none", cert, op) for cert in request.certs if cert != "none"
                for op in request.operations], []

    @classmethod
    def offered(cls, profile: str) -> Offer | None:
        return dcmtk_offer(PROFILE, DCMTK_OF_ORTHANC)

    @classmethod
    def version(cls, dcmtk: DcmtkRunner | None) -> str | None:
        found = executable()
        return installed_version(found) if found else None

    @classmethod
    def check_here(cls) -> list[Check]:
        from dicomtls import components
        from dicomtls.doctor import Check

        purpose = "the client orthanc-edge (an edge Orthanc as DICOM TLS client)"
        found = executable()
        if found is None:
            return [Check("orthanc-edge", purpose, None, problem=f"{EXECUTABLE} not in {SEARCH_PATH}",
                          packages=next(c.apt_packages for c in components.listed()
                                                      if c.executable_name == EXECUTABLE))]
        return [Check("orthanc-edge", purpose, found)]

    @classmethod
    def build(cls, dcmtk: DcmtkRunner) -> Client:
        from dicomtls.probes.orthanc_edge import EdgeOrthanc

        return EdgeOrthanc.here()
