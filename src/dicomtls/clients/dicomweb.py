"""DICOMweb over HTTPS (the runner: dicomtls.probes.dicomweb): the web side of the same ingress, Orthanc's DICOMweb
plugin behind the proxy's HTTPS route (``web: true``), on the run's PKI and SNI rules.

Its cells reach the route's own port, not the DICOM entry: the proxy's connection count (one line per DICOM
connection) does not wait for them (``reaches_dicom_entry``). urllib3 is imported only when it runs.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING

from dicomtls.clients import ClientKind, ManifestProbes, register
from dicomtls.clients.pynetdicom import PRESETS
from dicomtls.operations import of_service
from dicomtls.profiles import PROFILES

if TYPE_CHECKING:
    from dicomtls.probes import Client
    from dicomtls.probes.dcmtk import Dcmtk as DcmtkRunner


@register
class Dicomweb(ClientKind):
    name = "dicomweb"
    display_name = "DICOMweb (HTTPS)"
    summary = ("dicomweb (QIDO-RS, STOW-RS and WADO-RS over HTTPS through the proxy's web route; can send SNI and a "
               "client certificate)")
    operations = of_service("C-ECHO", "C-STORE")  # QIDO-RS answers for C-ECHO, STOW-RS for C-STORE
    transports = ("tls",)
    reports_peer_alert = True
    reaches_dicom_entry = False
    advice = {"send-sni": "the host name in the https:// URL", "send-client-cert": "curl --cert CRT --key KEY",
              "trust-ca": "curl --cacert CA"}
    # An imported config's HTTPS server, as the seed's curl checks it: with and without SNI and a client certificate.
    manifest_probes = (
        ManifestProbes(70, {"sni": ["none", "right"], "client_cert": ["none", "valid"],
                            "operation": ["echo", "store-ct"]}, web_route=True),
    )
    listing_order = 40

    @classmethod
    def transport_problem(cls) -> str:
        return "dicomweb speaks HTTPS only: use transport tls"

    @classmethod
    def profiles(cls) -> list[str]:
        return ["default", *(n for n in PROFILES if n in PRESETS)]

    @classmethod
    def sni_fix(cls) -> tuple[str, tuple[tuple[str, str], ...], str | None]:
        return "ask for the server's name in the https:// URL (SNI)", (("sni", "right"),), None

    @classmethod
    def version(cls, dcmtk: DcmtkRunner | None) -> str | None:
        return f"urllib3 {importlib.metadata.version('urllib3')}"

    @classmethod
    def build(cls, dcmtk: DcmtkRunner) -> Client:
        from dicomtls.probes.dicomweb import Dicomweb as Runner

        return Runner()
