"""A plain Envoy bootstrap (the envoy.yaml Orthweb runs on a VM): run as it is, rewritten where it cannot run here
(components/envoy_bootstrap.py does the rewriting; this module reads and names it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from dicomtls.components import envoy_bootstrap
from dicomtls.errors import UsageError
from dicomtls.manifests.located import shown, yaml_line
from dicomtls.manifests.translation import Translation, sites_of


@dataclass(frozen=True)
class EnvoyBootstrap:
    """A plain Envoy bootstrap (a mapping with static_resources): it has no metadata, so its file names it."""

    name: str
    document: dict[str, Any]
    file: Path | None = None
    node: yaml.Node | None = None
    """The document as composed (with each setting's line), so findings point at the line to change."""


def is_envoy_bootstrap(doc: Any) -> bool:
    return isinstance(doc, dict) and "static_resources" in doc and "apiVersion" not in doc and "kind" not in doc


def translate_bootstrap(where: str, bootstrap: EnvoyBootstrap) -> Translation:
    """The user's own bootstrap runs, rewritten (components/envoy_bootstrap.py): what the rewrite removes or
    replaces is what is unhonoured, what it keeps that weakens security is a finding. Chains routing to two or
    more clusters make sites, one per cluster."""
    doc = bootstrap.document
    try:
        web = envoy_bootstrap.web_listener(doc) is not None
        notes = envoy_bootstrap.unhonoured(doc, web=web)
        found = envoy_bootstrap.findings(doc, line_of=partial(yaml_line, bootstrap.node))
        passthrough = envoy_bootstrap.passes_through(doc)
        names = [n for n in envoy_bootstrap.server_names(doc) if "*" not in n]
        _, sites = sites_of(envoy_bootstrap.routes(doc))
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return Translation(
        f"EnvoyBootstrap/{bootstrap.name}",
        {"kind": "envoy-bootstrap", "bootstrap": doc, **({"web": True} if web else {})},
        {"kind": "orthanc", "tls": passthrough, **({"client_cert": "optional"} if passthrough else {}),
         **({"dicomweb_plugin": True} if web else {})},
        tuple(dict.fromkeys(names)),
        tuple(f"{where}: {note}" for note in notes),
        sites,
        tuple(replace(f, text=f"{where}: {f.text}", file=str(shown(bootstrap.file)) if bootstrap.file else None)
              for f in found),
    )
