"""The manifests a user deploys (Istio Gateway/VirtualService, Traefik IngressRouteTCP/TLSOption on Kubernetes, a
plain Envoy bootstrap on a VM), read into the options of the component that reproduces them on loopback.

One module per source kind (``istio``, ``traefik``, ``envoy_bootstrap``); this one reads the files and hands each
document to its kind. The secrets and certificate files they name (credentialName, secretName,
clientAuth.secretNames, an Envoy DownstreamTlsContext's files) are replaced by the generated PKI, and every backend a
route names by the environment's Orthanc. Anything else the tool cannot reproduce is collected as an "unhonoured"
line for the report, so a matrix never claims more than it ran.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dicomtls.errors import UsageError
from dicomtls.manifests import cert_manager, istio, traefik
from dicomtls.manifests.envoy_bootstrap import EnvoyBootstrap, is_envoy_bootstrap, translate_bootstrap
from dicomtls.manifests.istio import Gateway, VirtualService, translate_gateway
from dicomtls.manifests.spec import Manifests, Spec
from dicomtls.manifests.traefik import IngressRouteTCP, TLSOption, translate_route
from dicomtls.manifests.translation import Translation, distinct_sites

__all__ = ["FALLBACK_SERVER_NAME", "Manifests", "Translation", "manifest_files", "read_manifests", "server_names",
           "translate"]

FALLBACK_SERVER_NAME = "dicom.example.test"
"""The PKI's name when no manifest names a host (HostSNI(`*`), hosts "*"): clients need some name for SNI."""

_KINDS: dict[tuple[str, str], type[Spec]] = {
    **{(f"{istio.GROUP}/{v}", "Gateway"): Gateway for v in istio.VERSIONS},
    **{(f"{istio.GROUP}/{v}", "VirtualService"): VirtualService for v in istio.VERSIONS},
    **{(f"{g}/v1alpha1", "IngressRouteTCP"): IngressRouteTCP for g in traefik.GROUPS},
    **{(f"{g}/v1alpha1", "TLSOption"): TLSOption for g in traefik.GROUPS},
    **cert_manager.KINDS,
}


def _where(path: Path, index: int, resource: dict[str, Any]) -> str:
    metadata = resource.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    what = f", {resource.get('kind')} {name}" if name else ""
    if is_envoy_bootstrap(resource):
        what = ", Envoy bootstrap"
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    return f"{shown} (document {index + 1}{what})"


def read_manifests(paths: list[Path]) -> Manifests:
    """Parse every YAML document in ``paths``; an invalid one is a UsageError naming its file and field."""
    found = Manifests()
    for path in paths:
        try:
            documents = list(yaml.safe_load_all(path.read_text()))
        except OSError as exc:
            raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise UsageError(f"{path}: not valid YAML{where}: fix the syntax") from None
        for index, doc in enumerate(documents):
            if doc is None:
                continue
            if is_envoy_bootstrap(doc):
                found.resources.append((_where(path, index, doc), _bootstrap(path, index, doc, found)))
                continue
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                raise UsageError(f"{path} (document {index + 1}): not a Kubernetes resource: it needs apiVersion "
                                 "and kind (or static_resources, for an Envoy bootstrap)")
            model = _KINDS.get((str(doc["apiVersion"]), str(doc["kind"])))
            if model is None:
                found.skipped.append(f"{_where(path, index, doc)}: {doc['apiVersion']} {doc['kind']} is not read")
                continue
            try:
                found.resources.append((_where(path, index, doc), model.model_validate(doc)))
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise UsageError(f"{_where(path, index, doc)}: {loc}: {first['msg']}") from None
    return found


def _bootstrap(path: Path, index: int, doc: dict[str, Any], found: Manifests) -> EnvoyBootstrap:
    """The bootstrap named after its file: "EnvoyBootstrap/<stem>" must pick exactly one."""
    taken = [where for where, r in found.resources if isinstance(r, EnvoyBootstrap) and r.name == path.stem]
    if taken:
        raise UsageError(f"{_where(path, index, doc)}: another Envoy bootstrap is also named {path.stem} ({taken[0]}): "
                         "Envoy reads one bootstrap per file, so give each its own file with its own name")
    return EnvoyBootstrap(path.stem, doc)


def manifest_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise UsageError(f"--manifests {directory} is not a directory: give the directory holding the YAML files")
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise UsageError(f"--manifests {directory} has no .yaml files")
    return files



def translate(found: Manifests, resource: str | None = None) -> list[Translation]:
    """Every Gateway, IngressRouteTCP and Envoy bootstrap as an environment, or just ``resource`` ("Kind/name")."""
    translations = [*(translate_gateway(w, g, found) for w, g in found.of(Gateway)),
                    *(translate_route(w, r, found) for w, r in found.of(IngressRouteTCP)),
                    *(translate_bootstrap(w, b) for w, b in found.of(EnvoyBootstrap))]
    translations = distinct_sites(translations)
    if resource is not None:
        translations = [t for t in translations if t.resource == resource]
        if not translations:
            raise UsageError(f"manifests: no {resource} among them")
    translations = [replace(t, unhonoured=(*t.unhonoured, *found.skipped)) for t in translations]
    if not translations:
        raise UsageError("manifests: no Istio Gateway, Traefik IngressRouteTCP or Envoy bootstrap among them, so no "
                         "proxy to build")
    return translations



def server_names(translations: list[Translation]) -> list[str]:
    """The PKI's server names: every host the manifests name ("*" skipped), or a stand-in when none does."""
    names = list(dict.fromkeys(n for t in translations for n in t.server_names))
    return names or [FALLBACK_SERVER_NAME]
