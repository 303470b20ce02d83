"""A candidate's edits on the user's Istio Gateway: its TLS servers that terminate TLS (hosts, tls.mode,
minProtocolVersion, cipherSuites in the OpenSSL names istiod lets through)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dicomtls.fixes.candidates import Edit, NotApplicable, Setting
from dicomtls.fixes.roundtrip import edit_document, load, split_documents

ISTIO_DEFAULT_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
)
"""Envoy's defaults (what a Gateway without cipherSuites gets) as plain OpenSSL names: istiod drops BoringSSL's
[a|b] groups, so a list that adds one suite spells the defaults out this way."""

SETTINGS: dict[Setting, str | None] = {"add-cipher": None, "min-version": None, "client-cert-optional": None,
                                       "catch-all-route": None}


def _gateway(name: str, namespace: str | None) -> Any:
    def chosen(doc: Any) -> bool:
        metadata = doc.get("metadata") or {} if isinstance(doc, dict) else {}
        return (isinstance(doc, dict) and doc.get("kind") == "Gateway" and metadata.get("name") == name
                and (namespace is None or metadata.get("namespace", "default") == namespace))
    return chosen


def _servers(doc: Any) -> list[Any]:
    """The TLS servers that terminate TLS."""
    servers = [s for s in doc["spec"]["servers"] if str(s["port"].get("protocol", "")).upper() == "TLS"
               and (s.get("tls") or {}).get("mode", "SIMPLE") != "PASSTHROUGH"]
    if not servers:
        raise NotApplicable("the Gateway's TLS servers pass TLS through: the server behind sets TLS")
    return servers


def _apply(doc: Any, edit: Edit) -> None:
    servers = _servers(doc)
    if edit.setting == "catch-all-route":
        missing = [s for s in servers if not any(h.split("/")[-1] == "*" for h in s["hosts"])]
        if not missing:
            raise NotApplicable("the Gateway's TLS servers already have hosts \"*\"")
        for server in missing:
            server["hosts"].append("*")
    elif edit.setting == "add-cipher":
        for server in servers:
            suites = list(server["tls"].get("cipherSuites") or ISTIO_DEFAULT_CIPHERS)
            if edit.value not in suites:
                server["tls"]["cipherSuites"] = [*suites, edit.value]
    elif edit.setting == "min-version":
        for server in servers:
            server["tls"]["minProtocolVersion"] = f"TLSV{edit.value.replace('.', '_')}"
    elif edit.setting == "client-cert-optional":
        mutual = [s for s in servers if s["tls"].get("mode") == "MUTUAL"]
        if not mutual:
            raise NotApplicable("no TLS server of the Gateway is MUTUAL")
        for server in mutual:
            server["tls"]["mode"] = "OPTIONAL_MUTUAL"
    else:
        raise NotApplicable(f"an Istio Gateway has no {edit.setting}")


def apply(files: list[Path], resource: str, edits: tuple[Edit, ...]) -> dict[Path, str]:
    """The new text of the Gateway's file; ``resource`` is "Gateway/[NAMESPACE/]NAME"."""
    parts = resource.split("/")
    chosen = _gateway(parts[-1], parts[1] if len(parts) == 3 else None)
    path = next(f for f in files
                if any((d := load(part)) is not None and chosen(d) for part in split_documents(f.read_text())))

    def edit(doc: Any) -> None:
        for one in edits:
            _apply(doc, one)

    text = edit_document(path.read_text(), chosen, edit)
    assert text is not None
    return {path: text}
