"""A candidate's edits on the user's own Envoy bootstrap: the DownstreamTlsContext of each chain that carries
DICOM, or the listener's default filter chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dicomtls.components import envoy_bootstrap
from dicomtls.components.envoy import DEFAULT_CIPHERS as ENVOY_DEFAULT_CIPHERS
from dicomtls.fixes.candidates import Edit, NotApplicable, Setting
from dicomtls.fixes.roundtrip import edit_document
from dicomtls.manifests.envoy_bootstrap import is_envoy_bootstrap

SETTINGS: dict[Setting, str | None] = {"add-cipher": None, "min-version": None, "client-cert-optional": None,
                                       "catch-all-route": None}
"""The settings a bootstrap has (None: reproduced, so the edit can be proven)."""


def _contexts(doc: Any) -> list[Any]:
    _, chains = envoy_bootstrap.dicom_chains(doc)
    contexts = [ctx for chain in chains if (ctx := envoy_bootstrap.tls_context(chain)) is not None]
    if not contexts:
        raise NotApplicable("the DICOM listener passes TLS through: the server behind it sets TLS")
    return contexts


def _tls_params(context: Any) -> Any:
    common = context.setdefault("common_tls_context", {})
    return common.setdefault("tls_params", {})


def _apply(doc: Any, edit: Edit) -> None:
    if edit.setting == "add-cipher":
        for context in _contexts(doc):
            params = _tls_params(context)
            suites = list(params.get("cipher_suites") or ENVOY_DEFAULT_CIPHERS)
            if edit.value not in suites:
                params["cipher_suites"] = [*suites, edit.value]
    elif edit.setting == "min-version":
        for context in _contexts(doc):
            _tls_params(context)["tls_minimum_protocol_version"] = f"TLSv{edit.value.replace('.', '_')}"
    elif edit.setting == "client-cert-optional":
        for context in _contexts(doc):
            context["require_client_certificate"] = False
    elif edit.setting == "catch-all-route":
        listener, chains = envoy_bootstrap.dicom_chains(doc)
        if "default_filter_chain" in listener or any("filter_chain_match" not in c for c in chains):
            raise NotApplicable("the listener already has a chain that matches every client")
        default = json.loads(json.dumps(chains[0]))  # a plain copy: the round-trip nodes carry their comments
        default.pop("filter_chain_match", None)
        listener["default_filter_chain"] = default
    else:
        raise NotApplicable(f"an Envoy bootstrap has no {edit.setting}")


def apply(files: list[Path], resource: str, edits: tuple[Edit, ...]) -> dict[Path, str]:
    """The new text of the bootstrap's file, ``resource`` being "EnvoyBootstrap/<file stem>"."""
    stem = resource.split("/", 1)[1]
    path = next(f for f in files if f.stem == stem)

    def edit(doc: Any) -> None:
        for one in edits:
            _apply(doc, one)

    text = edit_document(path.read_text(), is_envoy_bootstrap, edit)
    assert text is not None, f"{path}: no Envoy bootstrap in it"
    return {path: text}
