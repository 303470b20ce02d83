"""A candidate's edits on the user's Traefik manifests: the IngressRouteTCP, the TLSOption it names, and the
TLSStore named default (added to the route's file when there is none)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dicomtls.fixes.candidates import Edit, NotApplicable, Setting
from dicomtls.fixes.roundtrip import append_document, edit_document, load, split_documents

SETTINGS: dict[Setting, str | None] = {
    "catch-all-route": None, "default-certificate": None, "client-cert-optional": None, "min-version": None,
    "add-cipher": "a TLSOption's cipherSuites is read but not reproduced by this tool, so it cannot be proven here",
}


def _is(kind: str, name: str, namespace: str | None = None) -> Any:
    def chosen(doc: Any) -> bool:
        metadata = doc.get("metadata") or {} if isinstance(doc, dict) else {}
        return (isinstance(doc, dict) and doc.get("kind") == kind and metadata.get("name") == name
                and (namespace is None or metadata.get("namespace", "default") == namespace))
    return chosen


def _find(texts: dict[Path, str], chosen: Any) -> tuple[Path, Any] | None:
    for path, text in texts.items():
        for part in split_documents(text):
            doc = load(part)
            if doc is not None and chosen(doc):
                return path, doc
    return None


def apply(files: list[Path], resource: str, edits: tuple[Edit, ...]) -> dict[Path, str]:
    """The new texts of the files the edits change; ``resource`` is "IngressRouteTCP/[NAMESPACE/]NAME"."""
    parts = resource.split("/")
    route_of = _is("IngressRouteTCP", parts[-1], parts[1] if len(parts) == 3 else None)
    texts = {f: f.read_text() for f in files}
    found = _find(texts, route_of)
    assert found is not None, f"no {resource} in the manifests"
    route_file, route = found
    tls = route["spec"].get("tls") or {}
    option_name = (tls.get("options") or {}).get("name")
    for edit in edits:
        if edit.setting == "catch-all-route":
            if any("HostSNI(`*`)" in r.get("match", "") for r in route["spec"]["routes"]):
                raise NotApplicable("the route already matches HostSNI(`*`)")
            services = json.loads(json.dumps(route["spec"]["routes"][0].get("services", [])))

            def add_route(doc: Any, services: Any = services) -> None:
                doc["spec"]["routes"].append({"match": "HostSNI(`*`)", "services": services})
            texts[route_file] = _edited(texts[route_file], route_of, add_route)
        elif edit.setting == "default-certificate":
            secret = tls.get("secretName")
            if not secret:
                raise NotApplicable("the route names no secretName to serve by default")
            store = _find(texts, _is("TLSStore", "default"))
            if store is not None:
                def set_default(doc: Any, secret: str = secret) -> None:
                    doc.setdefault("spec", {})["defaultCertificate"] = {"secretName": secret}
                texts[store[0]] = _edited(texts[store[0]], _is("TLSStore", "default"), set_default)
            else:
                texts[route_file] = append_document(texts[route_file], {
                    "apiVersion": route["apiVersion"], "kind": "TLSStore",
                    "metadata": {"name": "default", **({"namespace": route["metadata"]["namespace"]}
                                                       if route["metadata"].get("namespace") else {})},
                    "spec": {"defaultCertificate": {"secretName": secret}}})
        elif edit.setting in ("client-cert-optional", "min-version"):
            if not option_name or _find(texts, _is("TLSOption", option_name)) is None:
                raise NotApplicable("the route names no TLSOption to change")
            option_file = _find(texts, _is("TLSOption", option_name))[0]  # type: ignore[index]

            def set_option(doc: Any, edit: Edit = edit) -> None:
                spec = doc.setdefault("spec", {})
                if edit.setting == "client-cert-optional":
                    spec.setdefault("clientAuth", {})["clientAuthType"] = "VerifyClientCertIfGiven"
                else:
                    spec["minVersion"] = f"VersionTLS1{edit.value.split('.')[-1]}"
            texts[option_file] = _edited(texts[option_file], _is("TLSOption", option_name), set_option)
        else:
            raise NotApplicable(f"Traefik's manifests have no {edit.setting} here")
    return {path: text for path, text in texts.items() if text != path.read_text()}


def _edited(text: str, chosen: Any, edit: Any) -> str:
    changed = edit_document(text, chosen, edit)
    assert changed is not None
    return changed
