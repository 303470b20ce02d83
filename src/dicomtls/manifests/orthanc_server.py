"""A user's orthanc.json as the options of the environment's Orthanc: the settings that decide what a DICOM client
meets (its AE title, which calls it answers, what it does to what it stores, its own DICOM TLS) are reproduced;
the rest is listed as not reproduced, with its file and line. One function, so that the names of the Orthanc
options it fills are in one place."""

from __future__ import annotations

from typing import Any

from dicomtls.manifests.orthanc_config import OrthancConfig, OrthancConfigFile

_REPRODUCED = {"dicom_aet": "aet", "dicom_check_called_aet": "check_called_aet",
               "dicom_always_allow_echo": "always_allow_echo", "dicom_always_allow_store": "always_allow_store",
               "ingest_transcoding": "ingest_transcoding", "storage_compression": "storage_compression"}
"""OrthancConfig field -> the option of the environment's Orthanc that reproduces it (set when not Orthanc's
default, so a configuration that keeps the defaults runs the same environment as none)."""

_REPLACED = ("DicomTlsCertificate", "DicomTlsPrivateKey", "DicomTlsTrustedCertificates")
_NOT_REPRODUCED = {
    "DicomTlsMinimumProtocolVersion": "Orthanc's minimum TLS version: not reproduced (its default applies)",
    "DicomTlsCiphersAccepted": "Orthanc's TLS cipher list: not reproduced (its default applies)",
    "DicomCheckModalityHost": "the probes' addresses are not declared as modalities: not reproduced",
    "IngestTranscodingOfUncompressed": "not reproduced (Orthanc's default applies)",
    "IngestTranscodingOfCompressed": "not reproduced (Orthanc's default applies)",
}


def orthanc_server(found: OrthancConfigFile, proxy_terminates_tls: bool) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The environment's ``server`` options from ``found``, and the lines of what they do not reproduce.
    ``proxy_terminates_tls``: the proxy in front forwards plain DICOM, so Orthanc's own TLS cannot be on."""
    config = found.config
    written = _written(config)
    defaults = OrthancConfig.model_fields
    server: dict[str, Any] = {"kind": "orthanc"}
    server |= {option: getattr(config, field) for field, option in _REPRODUCED.items()
               if getattr(config, field) != defaults[field].default}
    notes = [f"{found.at(key)}: {key}: {why}" for key, why in _NOT_REPRODUCED.items()
             if key in written]
    if "DicomPort" in written:
        notes.append(f"{found.at('DicomPort')}: DicomPort {config.dicom_port}: the environment's Orthanc listens on "
                     "a port of its own, and the proxy is pointed at it")
    if config.dicom_modalities:
        notes.append(f"{found.at('DicomModalities')}: DicomModalities ({', '.join(config.dicom_modalities)}): not "
                     "declared in the environment's Orthanc; the probes call it as unknown modalities")
    notes += [f"{found.at(key)}: {key}: replaced by the generated PKI" for key in _REPLACED
              if key in written]
    if proxy_terminates_tls:
        if config.dicom_tls_enabled:
            notes.append(f"{found.at('DicomTlsEnabled')}: DicomTlsEnabled true behind a proxy that terminates TLS "
                         "and forwards plain DICOM: not reproduced (the environment's Orthanc speaks plain DICOM)")
    else:
        server["tls"] = True
        server["client_cert"] = "required" if config.dicom_tls_remote_certificate_required else "optional"
        if not config.dicom_tls_enabled:
            notes.append(f"{found.at('DicomTlsEnabled')}: DicomTlsEnabled is false, but the proxy passes TLS through "
                         "to Orthanc: the environment's Orthanc terminates TLS so that something does")
    return server, (*notes, *found.not_reproduced)


def _written(config: OrthancConfig) -> set[str]:
    """The keys the file sets, as written (DicomAet), known or not."""
    fields = OrthancConfig.model_fields
    return {fields[name].alias or name for name in config.model_fields_set if name in fields} | set(
        config.model_extra or {})
