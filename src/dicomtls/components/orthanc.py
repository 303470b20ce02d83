"""Orthanc, the DICOM server every environment ends at (plain DICOM, or its own DICOM TLS)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from packaging.version import Version
from pydantic import Field, field_validator, model_validator
from pydicom.uid import RE_VALID_UID, UID
from pynetdicom.utils import set_ae

from dicomtls.components import Component, Lack, Launch, Options, Placement, register
from dicomtls.probes import CALLING_AET
from dicomtls.render import render


DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
"""Where Debian's orthanc-dicomweb installs the plugin, on this machine and in images/orthanc."""


class OrthancOptions(Options):
    tls: bool = False
    """Orthanc's own DICOM TLS (DicomTls* options, since Orthanc 1.9.0) instead of plain DICOM."""
    client_cert: Literal["required", "optional"] = "required"
    """DicomTlsRemoteCertificateRequired: Orthanc's default is to require a client certificate."""
    server_cert: Literal["valid", "mismatched"] = "valid"
    """With tls: mismatched presents the certificate for wrong-host.invalid."""
    aet: str = "ORTHANC"
    """DicomAet: the AE title Orthanc answers to; every client's association calls it (dcmtk's ``-aec``)."""
    check_called_aet: bool = False
    """DicomCheckCalledAet: refuse an association that calls another AE title (Orthanc's default: accept any)."""
    always_allow_echo: bool = True
    """DicomAlwaysAllowEcho: answer C-ECHO from any calling AE title, not only from the DicomModalities. With this
    or always_allow_store false, the probes' calling AE title (DICOMTLS) is declared a modality, as the user's
    own modalities are: otherwise Orthanc refuses every probe."""
    always_allow_store: bool = True
    """DicomAlwaysAllowStore: accept C-STORE from any calling AE title, not only from the DicomModalities."""
    modalities: list[str] | None = None
    """DicomModalities: the calling AE titles Orthanc knows (any host). With always_allow_echo and
    always_allow_store false (Orthanc 1.10's DicomAlwaysAllowFind/Get/Move are false already), Orthanc rejects an
    association from any other AE title (A-ASSOCIATE-RJ: calling AE title not recognized): a locked-down Orthanc.
    Default: the probes' own AE title (DICOMTLS) when either is false."""
    ingest_transcoding: str | None = None
    """IngestTranscoding: the transfer syntax UID Orthanc re-encodes every received instance to before storing it
    (``1.2.840.10008.1.2.4.70``: JPEG Lossless SV1). What is stored then differs from what was sent, so a C-STORE
    is verified by content: every attribute equal and the decoded pixels equal. Orthanc's own transcoder (dcmtk)
    wrote JPEG Lossless (…4.57, …4.70) and JPEG-LS Lossless (…4.80) for the 16-bit CT; what it cannot write for an
    object (RLE, JPEG 2000: the GDCM plugin, not loaded; 8/12-bit JPEG for 16-bit pixels) it stores as received,
    which the cell says."""
    dicomweb_plugin: bool = False
    """Load Orthanc's DICOMweb plugin (Debian's orthanc-dicomweb): STOW-RS, QIDO-RS and WADO-RS under /dicom-web/
    of the REST API, which a proxy's HTTPS route (``web: true``) serves."""
    storage_compression: bool = False
    """StorageCompression: zlib on Orthanc's disk; the REST API hands back the file as it was before, so the byte
    check stands."""
    tls_minimum_protocol_version: int | None = Field(None, ge=0, le=5)
    """DicomTlsMinimumProtocolVersion (Orthanc >= 1.12.4): 0 keeps dcmtk's BCP 195 profile (which still accepts
    AES128-SHA), 4 is TLS 1.2 and 1.3, 5 TLS 1.3 only; any value but 0 needs tls_ciphers_accepted. null: not set."""
    tls_ciphers_accepted: list[str] | None = None
    """DicomTlsCiphersAccepted (Orthanc >= 1.12.4): the OpenSSL suite names Orthanc accepts. null: not set."""

    @model_validator(mode="after")
    def _tls_options_need_1_12_4(self) -> "OrthancOptions":
        if self.tls_minimum_protocol_version is None and self.tls_ciphers_accepted is None:
            return self
        if not self.version or Version(self.version) < Version("1.12.4"):
            # An older Orthanc ignores the keys: a cell would silently run its defaults.
            raise ValueError("tls_minimum_protocol_version and tls_ciphers_accepted came in Orthanc 1.12.4: set "
                             "version: 1.12.4 or newer (the Docker backend runs 1.12.7)")
        if self.tls_minimum_protocol_version not in (None, 0) and not self.tls_ciphers_accepted:
            raise ValueError("Orthanc refuses tls_minimum_protocol_version other than 0 without "
                             "tls_ciphers_accepted: list the suites it accepts")
        return self

    @field_validator("aet")
    @classmethod
    def _ae_title(cls, value: str) -> str:
        """A DICOM AE title, as the clients that call it require (pynetdicom's own check)."""
        try:
            return set_ae(value, "aet", allow_empty=False, allow_none=False) or value
        except ValueError as exc:
            why = str(exc).rpartition(" - ")[2]
            raise ValueError(f"{value!r} is not a DICOM AE title ({why}): 1-16 ASCII characters, no backslash "
                             "or control character, not only spaces") from None

    @field_validator("modalities")
    @classmethod
    def _modality_titles(cls, value: list[str] | None) -> list[str] | None:
        for title in value or ():
            cls._ae_title(title)
        return value

    @field_validator("ingest_transcoding")
    @classmethod
    def _transfer_syntax(cls, value: str | None) -> str | None:
        if value is not None and not (re.fullmatch(RE_VALID_UID, value) and UID(value).is_transfer_syntax):
            raise ValueError(f"{value!r} is not a DICOM transfer syntax UID (e.g. 1.2.840.10008.1.2.4.70, "
                             "JPEG Lossless SV1)")
        return value


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
    web_api_setting = "Orthanc's DICOMweb plugin: Debian's orthanc-dicomweb, dicomweb_plugin: true"
    listing_order = 90
    apt_packages = ("orthanc", "orthanc-dicomweb")
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
            options=o,
            plugins=[DICOMWEB_PLUGIN] if o.dicomweb_plugin else [],
            # Only modalities may echo or store when the options say so: the probes are one (any host), unless
            # the options name the modalities themselves.
            modalities=o.modalities if o.modalities is not None else
            [CALLING_AET] if not (o.always_allow_echo and o.always_allow_store) else [],
        )
        return Launch(
            executable=executable,
            args=["--verbose", f"{placement.workdir}/orthanc.json"],
            files={"orthanc.json": config},
        )

    def terminates_tls(self) -> bool:
        return self.options.tls

    def lacks(self, executable: str) -> Lack | None:
        if self.options.dicomweb_plugin and not Path(DICOMWEB_PLUGIN).is_file():
            return Lack(f"{DICOMWEB_PLUGIN} (Orthanc's DICOMweb plugin) is missing", ("orthanc-dicomweb",))
        return None

    def ae_title(self) -> str:
        return self.options.aet

    def ingest_syntax(self) -> str | None:
        return self.options.ingest_transcoding

    @classmethod
    def cipher_setting(cls, suite: str) -> str:
        return "Orthanc >= 1.12.4: DicomTlsCiphersAccepted"
