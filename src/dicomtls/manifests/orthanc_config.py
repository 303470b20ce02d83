"""Orthanc's own configuration file, read as Orthanc reads it (OrthancConfiguration.cpp): `${VAR}` values are
substituted in the raw text first (Toolbox::SubstituteVariables, environment of the Orthanc process), then the text is
parsed by JsonCpp's default reader, which allows `//` and `/* */` comments. The DICOM options become typed fields;
plugins and sections the tool cannot run (PostgreSQL, authorization, S3, viewers) are listed, never fatal."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError

from dicomtls.errors import UsageError
from dicomtls.manifests.located import At, shown
from dicomtls.manifests.spec import Spec

_VARIABLE = re.compile(r"\$\{([^:]*?)\}"            # ${NAME}
                       r"|\$\{([^:]*?):-([^'\"]*?)\}"  # ${NAME:-default}
                       r"|\$\{([^:]*?):-\"([^\"]*?)\"\}"  # ${NAME:-"default"}
                       r"|\$\{([^:]*?):-'([^']*?)'\}")  # ${NAME:-'default'}
"""Orthanc's own pattern (Toolbox::SubstituteVariables): an unset variable without default becomes empty."""

NOT_RUN = {
    "PostgreSQL": "PostgreSQL index/storage plugin: the tool's Orthanc keeps its index in SQLite",
    "MySQL": "MySQL plugin: the tool's Orthanc keeps its index in SQLite",
    "Odbc": "ODBC plugin: the tool's Orthanc keeps its index in SQLite",
    "Authorization": "authorization plugin (an external auth service, Keycloak tokens): not run",
    "AwsS3Storage": "S3 storage plugin: files are stored on local disk",
    "AzureBlobStorage": "Azure storage plugin: files are stored on local disk",
    "GoogleCloudStorage": "Google Cloud storage plugin: files are stored on local disk",
    "OrthancExplorer2": "Orthanc Explorer 2 (web UI, its Keycloak login): not run",
    "StoneWebViewer": "Stone Web Viewer: not run",
    "OHIF": "OHIF viewer: not run",
    "DicomWeb": "DICOMweb plugin: the checks use DICOM over TLS, not DICOMweb",
    "Plugins": "plugin libraries: not loaded",
    "Worklists": "worklists plugin: not run",
    "Transfers": "transfers accelerator plugin: not run",
    "Python": "Python plugin scripts: not run",
    "PythonScript": "Python plugin scripts: not run",
    "LuaScripts": "Lua scripts: not run",
    "Gdcm": "GDCM decoder plugin: not loaded",
    "DelayedDeletion": "delayed-deletion plugin: not run",
    "Housekeeper": "housekeeper plugin: not run",
}


class OrthancConfig(Spec):
    """The options that decide whether a DICOM client gets through, and what is stored. Strict types: Orthanc
    refuses "false" (a string) where it wants false."""

    model_config = ConfigDict(**Spec.model_config, strict=True)

    dicom_aet: str = Field("ORTHANC", alias="DicomAet")
    dicom_port: int = Field(4242, alias="DicomPort")
    dicom_check_called_aet: bool = Field(False, alias="DicomCheckCalledAet")
    dicom_check_modality_host: bool = Field(False, alias="DicomCheckModalityHost")
    dicom_always_allow_echo: bool = Field(True, alias="DicomAlwaysAllowEcho")
    dicom_always_allow_store: bool = Field(True, alias="DicomAlwaysAllowStore")
    dicom_always_allow_find: bool = Field(False, alias="DicomAlwaysAllowFind")
    dicom_always_allow_find_worklist: bool = Field(False, alias="DicomAlwaysAllowFindWorklist")
    dicom_always_allow_get: bool = Field(False, alias="DicomAlwaysAllowGet")
    dicom_always_allow_move: bool = Field(False, alias="DicomAlwaysAllowMove")
    dicom_modalities: dict[str, Any] = Field({}, alias="DicomModalities")
    dicom_tls_enabled: bool = Field(False, alias="DicomTlsEnabled")
    dicom_tls_certificate: str | None = Field(None, alias="DicomTlsCertificate")
    dicom_tls_private_key: str | None = Field(None, alias="DicomTlsPrivateKey")
    dicom_tls_trusted_certificates: str | None = Field(None, alias="DicomTlsTrustedCertificates")
    dicom_tls_remote_certificate_required: bool = Field(True, alias="DicomTlsRemoteCertificateRequired")
    dicom_tls_minimum_protocol_version: int | None = Field(None, alias="DicomTlsMinimumProtocolVersion")
    dicom_tls_ciphers_accepted: list[str] | None = Field(None, alias="DicomTlsCiphersAccepted")
    ingest_transcoding: str | None = Field(None, alias="IngestTranscoding")
    """A transfer syntax UID every received instance is transcoded to: what is stored differs from what was sent."""
    storage_compression: bool = Field(False, alias="StorageCompression")


class OrthancConfigFile(Spec):
    """One Orthanc configuration file: its options, where each top-level key is, and what the tool does not run."""

    file: Path
    config: OrthancConfig
    lines: dict[str, int] = {}
    """The line of each top-level key."""
    variables: dict[str, Literal["environment", "default", "unset"]] = {}
    """Each `${VAR}` met and where its value came from ("unset": Orthanc puts an empty string). Values are not
    kept: they are often passwords."""
    not_reproduced: tuple[str, ...] = ()

    def at(self, key: str) -> At:
        return At(file=self.file, line=self.lines.get(key))


def substitute(text: str, env: Mapping[str, str]) -> tuple[str, dict[str, Literal["environment", "default", "unset"]]]:
    """``text`` with Orthanc's `${VAR}` substitution done, and where each variable's value came from."""
    used: dict[str, Literal["environment", "default", "unset"]] = {}

    def value(match: re.Match[str]) -> str:
        if match[1] is not None:
            name, default = match[1], None
        else:
            name, default = next((match[i], match[i + 1]) for i in (2, 4, 6) if match[i] is not None)
        if name in env:
            used[name] = "environment"
            return env[name]
        used[name] = "unset" if default is None else "default"
        return default or ""

    return _VARIABLE.sub(value, text), used


def read_orthanc_config(path: Path, env: Mapping[str, str] | None = None) -> OrthancConfigFile:
    """Read ``path`` with ``env`` as the Orthanc process's environment (a compose service's `environment:`).
    Not JSON even with comments, or an option of the wrong type (Orthanc refuses to start on both) is a
    UsageError naming file and line."""
    try:
        raw = path.read_text()
    except OSError as exc:
        raise UsageError(f"{shown(path)}: cannot read the Orthanc configuration ({exc.strerror})") from None
    text, used = substitute(raw, env or {})
    stripped = strip_comments(text, path)
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{At(file=path, line=exc.lineno)}: not valid JSON ({exc.msg}, column {exc.colno}), even "
                         "allowing the comments Orthanc allows: Orthanc refuses to start on it") from None
    if not isinstance(document, dict):
        raise UsageError(f"{shown(path)}: an Orthanc configuration is a JSON object, not {type(document).__name__}")
    lines = _top_level_lines(stripped)
    try:
        config = OrthancConfig.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0])
        raise UsageError(f"{At(file=path, line=lines.get(key))}: {key}: {first['msg']} (Orthanc refuses to start: "
                         "\"The configuration option must be\" of that type)") from None
    notes = [f"{At(file=path, line=lines.get(key))}: {key}: {why}" for key, why in NOT_RUN.items()
             if key in document]
    notes += [f"{shown(path)}: ${{{name}}} is not set for Orthanc and has no default: Orthanc reads an empty "
              "string there" for name, source in used.items() if source == "unset"]
    return OrthancConfigFile(file=path, config=config, lines=lines, variables=used, not_reproduced=tuple(notes))


def strip_comments(text: str, path: Path) -> str:
    """``text`` with `//` and `/* */` comments blanked (newlines kept, so JSON errors keep their line) and
    trailing commas dropped, as JsonCpp's default reader (allowComments, allowTrailingCommas) accepts them."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[i:end + 1])
            i = end + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise UsageError(f"{At(file=path, line=text.count(chr(10), 0, i) + 1)}: a /* comment is never "
                                 "closed: Orthanc refuses to start on it")
            out.append(re.sub(r"[^\n]", " ", text[i:end + 2]))
            i = end + 2
        else:
            trailing = c == "," and re.match(r"\s*[}\]]", text[i + 1:]) is not None
            out.append(" " if trailing else c)
            i += 1
    return "".join(out)


def _top_level_lines(text: str) -> dict[str, int]:
    """The line of each key of the outermost object (text without comments)."""
    lines: dict[str, int] = {}
    depth, i, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if depth == 1 and re.match(r"\s*:", text[end + 1:]):
                lines.setdefault(json.loads(text[i:end + 1]), text.count("\n", 0, i) + 1)
            i = end + 1
            continue
        depth += 1 if c in "{[" else -1 if c in "}]" else 0
        i += 1
    return lines
