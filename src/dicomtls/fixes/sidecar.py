"""The stunnel sidecar a proven client-side fix hands back: the config the passing cell ran, addressed for a site.

The proven run reached a local copy of the ingress on a loopback port with this run's PKI; the user's sidecar
reaches their ingress by the name its certificate carries, with their own CA and client files. So the offered
config keeps what was proven (SNI, chain and name verification, the client certificate when the cell sent one)
and names conventional paths the header tells the user to replace.
"""

from __future__ import annotations

from dicomtls.components import Address
from dicomtls.probes.stunnel import client_config
from dicomtls.scenario import Probe

DICOM_TLS_PORT = 11112
"""The port assumed for the ingress and for the plain side: the one DICOM registers, 11112."""


def deployable_config(server_name: str, probe: Probe, cell: str, environment: str) -> str:
    """stunnel's config for a modality that speaks plain DICOM, for the probe ``cell`` proven on ``environment``."""
    sends_cert, verifies = probe.client_cert != "none", probe.server_cert_check == "verify"
    header = "".join([
        f"; dicomtls: '{cell}' passed on {environment} through this sidecar.\n",
        f"; connect: your ingress's name and DICOM TLS port ({DICOM_TLS_PORT} assumed).\n",
        "; CAfile: the CA that issued the ingress's certificate.\n" if verifies else "",
        "; cert/key: the modality's certificate chain and its key (mode 0600).\n" if sends_cert else "",
        "; The modality then sends plain DICOM to this host's accept port.\n"])
    return header + client_config(
        Address(server_name, DICOM_TLS_PORT), server_name,
        ca_file="/etc/stunnel/dicom-ca.pem" if verifies else None,
        check_host=server_name if verifies else None,
        cert="/etc/stunnel/modality.pem" if sends_cert else None,
        key="/etc/stunnel/modality.key" if sends_cert else None,
        accept=f"0.0.0.0:{DICOM_TLS_PORT}")
