"""What a file holds, told by its content rather than its name: the user's repositories keep
`docker-compose.yaml.local`, `orthanc.json.local`, `config/nginx/nginx.conf`, charts and manifests under whatever
names their makefiles expect."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path

import crossplane
import yaml
from crossplane.errors import NgxParserBaseException

from dicomtls.errors import UsageError
from dicomtls.manifests.envoy_bootstrap import is_envoy_bootstrap
from dicomtls.manifests.haproxy import SECTIONS
from dicomtls.manifests.orthanc_config import OrthancConfig, strip_comments

LARGEST = 1 << 20  # bytes: no configuration of these kinds is larger; bigger files are data
SKIPPED_DIRECTORIES = frozenset({".git", "node_modules", "__pycache__", ".venv", "venv", ".terraform"})


class FileKind(StrEnum):
    COMPOSE = "compose"
    NGINX = "nginx"
    HAPROXY = "haproxy"
    ORTHANC = "orthanc-config"
    HELM_CHART = "helm-chart"  # a Chart.yaml: the chart is its directory
    KUBERNETES = "kubernetes"  # YAML documents with apiVersion and kind
    ENVOY = "envoy-bootstrap"


ORTHANC_KEYS = frozenset({*(f.alias for f in OrthancConfig.model_fields.values() if f.alias), "Name", "HttpPort",
                          "StorageDirectory", "IndexDirectory", "RemoteAccessAllowed", "AuthenticationEnabled",
                          "RegisteredUsers", "OrthancPeers", "HttpsCACertificates", "SslEnabled"})
_NGINX_BLOCK = re.compile(r"^\s*(events|http|stream|server|upstream|map)\b[^;{]*\{", re.M)
_NGINX_MAIN = re.compile(r"^\s*(worker_processes|worker_connections|pid|error_log|load_module)\b[^;]*;", re.M)
_HAPROXY_SECTION = re.compile(rf"^({'|'.join(map(re.escape, SECTIONS))})(\s|$)", re.M)
_HAPROXY_KEYWORD = re.compile(r"^\s+(bind|server|mode|default_backend|use_backend|balance|timeout|maxconn)\s", re.M)


def classify(path: Path) -> FileKind | None:
    """The kind of configuration ``path`` holds, or None (not one the tool reads, binary, too large)."""
    try:
        if path.stat().st_size > LARGEST:
            return None
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    if "\0" in text or not text.strip():
        return None
    return _json_kind(text) or _yaml_kind(text) or _haproxy_kind(text) or _nginx_kind(path, text)


def _json_kind(text: str) -> FileKind | None:
    if not text.lstrip().startswith(("{", "//", "/*")):
        return None
    try:
        document = json.loads(strip_comments(re.sub(r"\$\{[^}]*\}", "0", text), Path("-")))
    except (json.JSONDecodeError, UsageError):
        return None
    return FileKind.ORTHANC if isinstance(document, dict) and ORTHANC_KEYS & document.keys() else None


def _yaml_kind(text: str) -> FileKind | None:
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError:
        return None
    mappings = [d for d in documents if isinstance(d, dict)]
    if not mappings:
        return None
    first = mappings[0]
    if first.get("apiVersion") in ("v1", "v2") and {"name", "version"} <= first.keys() and "kind" not in first:
        return FileKind.HELM_CHART
    if isinstance(first.get("services"), dict) and "kind" not in first and all(
            isinstance(s, dict) or s is None for s in first["services"].values()):
        return FileKind.COMPOSE
    if any(is_envoy_bootstrap(d) for d in mappings):
        return FileKind.ENVOY
    if any({"apiVersion", "kind"} <= d.keys() for d in mappings):
        return FileKind.KUBERNETES
    return None


def _haproxy_kind(text: str) -> FileKind | None:
    sections = {m[1] for m in _HAPROXY_SECTION.finditer(text)}
    if sections & {"frontend", "backend", "listen"} and _HAPROXY_KEYWORD.search(text):
        return FileKind.HAPROXY
    return None


def _nginx_kind(path: Path, text: str) -> FileKind | None:
    """nginx's own blocks at the start of a line are nginx even when the file does not lex (an unclosed quote):
    the reader then says where it breaks. Main-context directives alone must lex, being common words."""
    if _NGINX_BLOCK.search(text):
        return FileKind.NGINX
    if not _NGINX_MAIN.search(text):
        return None
    try:
        list(crossplane.lex(str(path)))
    except NgxParserBaseException:
        return None
    return FileKind.NGINX


def survey(root: Path) -> dict[Path, FileKind]:
    """Every file under ``root`` (as absolute paths) the tool can read, by kind; hidden and tool directories
    skipped, and a Helm chart's templates left to the chart (they are not manifests until Helm renders them)."""
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    root = root.resolve()
    def kept(path: Path) -> bool:
        parts = path.relative_to(root).parts[:-1]
        return path.is_file() and not any(p in SKIPPED_DIRECTORIES or p.startswith(".") for p in parts)

    charts = [p.parent for p in sorted(root.rglob("Chart.yaml")) if kept(p) and classify(p) is FileKind.HELM_CHART]
    found: dict[Path, FileKind] = {chart / "Chart.yaml": FileKind.HELM_CHART for chart in charts}
    for path in sorted(root.rglob("*")):
        if not kept(path) or path in found or any(path.is_relative_to(chart) for chart in charts):
            continue
        if (kind := classify(path)) is not None:
            found[path] = kind
    return found
