"""The manifests a user deploys (Istio Gateway/VirtualService, Traefik IngressRouteTCP/TLSOption on Kubernetes, a
plain Envoy bootstrap or an haproxy.cfg on a VM, a Helm chart rendered with its values), read into the options of the
component that reproduces them on loopback.

One module per source kind (``istio``, ``traefik``, ``envoy_bootstrap``, ``haproxy_environment``; ``charts`` renders
a chart's directory into documents); this one reads the files and hands each document to its kind. The secrets and certificate files they name (credentialName, secretName,
clientAuth.secretNames, an Envoy DownstreamTlsContext's files) are replaced by the generated PKI, and every backend a
route names by the environment's Orthanc. Anything else the tool cannot reproduce is collected as an "unhonoured"
line for the report, so a matrix never claims more than it ran.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import ValidationError

from dicomtls.errors import UsageError
from dicomtls.manifests import cert_manager, istio, traefik
from dicomtls.manifests.charts import ChartValues, chart_sources, rendered_documents
from dicomtls.manifests.envoy_bootstrap import EnvoyBootstrap, is_envoy_bootstrap, translate_bootstrap
from dicomtls.manifests.haproxy import HaproxyConfig, read_haproxy
from dicomtls.manifests.haproxy_environment import translate_haproxy
from dicomtls.manifests.istio import Gateway, VirtualService, translate_gateway
from dicomtls.manifests.recognition import FileKind, classify
from dicomtls.manifests.spec import Manifests, Spec
from dicomtls.manifests.traefik import IngressRouteTCP, TLSOption, TLSStore, translate_route
from dicomtls.manifests.translation import Translation, distinct_sites

__all__ = ["FALLBACK_SERVER_NAME", "ChartValues", "Manifests", "Translation", "manifest_files", "read_manifests",
           "server_names", "translate"]

FALLBACK_SERVER_NAME = "dicom.example.test"
"""The PKI's name when no manifest names a host (HostSNI(`*`), hosts "*"): clients need some name for SNI."""

_KINDS: dict[tuple[str, str], type[Spec]] = {
    **{(f"{istio.GROUP}/{v}", "Gateway"): Gateway for v in istio.VERSIONS},
    **{(f"{istio.GROUP}/{v}", "VirtualService"): VirtualService for v in istio.VERSIONS},
    **{(f"{g}/v1alpha1", "IngressRouteTCP"): IngressRouteTCP for g in traefik.GROUPS},
    **{(f"{g}/v1alpha1", "TLSOption"): TLSOption for g in traefik.GROUPS},
    **{(f"{g}/v1alpha1", "TLSStore"): TLSStore for g in traefik.GROUPS},
    **cert_manager.KINDS,
}


def _file_where(path: Path, index: int, resource: dict[str, Any]) -> str:
    metadata = resource.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    what = f", {resource.get('kind')} {name}" if name else ""
    if is_envoy_bootstrap(resource):
        what = ", Envoy bootstrap"
    return f"{_shown(path)} (document {index + 1}{what})"


_ENVOY_KEYS = {"admin", "node", "dynamic_resources", "layered_runtime", "cluster_manager", "overload_manager",
               "stats_sinks", "tracing"}
"""Top-level keys of an Envoy bootstrap: a mapping with them but no static_resources is an error, not skipped."""


def read_manifests(paths: list[Path], values: ChartValues | None = None) -> Manifests:
    """Parse every YAML document in ``paths``; an invalid one is a UsageError naming its file and field. A Helm
    chart's directory among them is rendered by Helm with ``values`` (--values files, --set expressions), and an
    HAProxy configuration read as one."""
    found = Manifests()
    for path in paths:
        if os.path.isdir(path):
            rendered = rendered_documents(path, values or ChartValues())
            found.kinds.append("Helm chart")
            found.skipped += rendered.not_reproduced
            _read_documents(rendered.path, list(rendered.documents), found, rendered.where)
            continue
        if classify(path) is FileKind.HAPROXY:
            found.kinds.append("HAProxy configuration")
            found.resources.append((str(_shown(path)), read_haproxy(path)))
            continue
        try:
            text = path.read_text()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            if (template := _GO_TEMPLATE.search(text)) is not None:  # the likelier cause
                _refuse_template(f"{_shown(path)} line {text.count(chr(10), 0, template.start()) + 1}")
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise UsageError(f"{path}: not valid YAML{where}: fix the syntax") from None
        _read_documents(path, documents, found)
    return found


def _read_documents(path: Path, documents: list[Any], found: Manifests,
                    where_of: Callable[[int, dict[str, Any]], str] | None = None) -> None:
    """The documents of one file (or of one rendered chart: ``where_of(index, doc)`` names the template)."""
    def _where(path: Path, index: int, doc: dict[str, Any]) -> str:
        return where_of(index, doc) if where_of is not None else _file_where(path, index, doc)

    for index, doc in enumerate(documents):
        if doc is None:
            continue
        if _runs(doc) and _GO_TEMPLATE.search(json.dumps(doc)):
            _refuse_template(_where(path, index, doc))
        if is_envoy_bootstrap(doc):
            found.kinds.append("Envoy bootstrap")
            found.resources.append((_where(path, index, doc), _bootstrap(path, index, doc, found)))
            continue
        if isinstance(doc, dict) and not {"kind", "apiVersion"} <= doc.keys() and not _ENVOY_KEYS & doc.keys():
            # kustomize's own files (a kustomization.yaml without kind, its configurations) sit in real trees.
            kustomization = path.stem in ("kustomization", "Kustomization")
            found.kinds.append("Kustomization" if kustomization else "document without apiVersion/kind")
            found.skipped.append(f"{_shown(path)} (document {index + 1}): " + (
                "a Kustomization is not read (the tree's resources run as written, without its patches)"
                if kustomization else "no apiVersion and kind, so not a Kubernetes resource: not read"))
            continue
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise UsageError(f"{path} (document {index + 1}): not a Kubernetes resource: it needs apiVersion "
                             "and kind (or static_resources, for an Envoy bootstrap)")
        model = _KINDS.get((str(doc["apiVersion"]), str(doc["kind"])))
        found.kinds.append(str(doc["kind"]))
        if model is None:
            found.skipped.append(f"{_where(path, index, doc)}: {doc['apiVersion']} {doc['kind']} is not read")
            continue
        try:
            found.resources.append((_where(path, index, doc), model.model_validate(doc)))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise UsageError(f"{_where(path, index, doc)}: {loc}: {first['msg']}") from None


def _runs(doc: Any) -> bool:
    """A document the tool reads and runs: an Envoy bootstrap or a kind in _KINDS."""
    return is_envoy_bootstrap(doc) or (isinstance(doc, dict)
                                       and (str(doc.get("apiVersion")), str(doc.get("kind"))) in _KINDS)


def _bootstrap(path: Path, index: int, doc: dict[str, Any], found: Manifests) -> EnvoyBootstrap:
    """The bootstrap named after its file: "EnvoyBootstrap/<stem>" must pick exactly one."""
    taken = [where for where, r in found.resources if isinstance(r, EnvoyBootstrap) and r.name == path.stem]
    if taken:
        raise UsageError(f"{_file_where(path, index, doc)}: another Envoy bootstrap is also named {path.stem} "
                         f"({taken[0]}): Envoy reads one bootstrap per file, so give each its own file with its own "
                         "name")
    return EnvoyBootstrap(path.stem, doc)


def manifest_files(path: Path) -> list[Path]:
    """The YAML files under ``path`` (a file, or a directory read recursively like `kubectl apply -R`; hidden
    directories skipped), the HAProxy configurations among its files, and each Helm chart's directory in place of
    its files (read_manifests renders it)."""
    if os.path.isfile(path):  # os.path: False for a name too long for the file system too, where Path raises
        files = [path]
    elif os.path.isdir(path):
        def kept(f: Path) -> bool:
            return f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts[:-1])
        charts = chart_sources(path)
        files = sorted({*(f for f in [*path.rglob("*.yaml"), *path.rglob("*.yml")] if kept(f)),
                        *(f for f in path.rglob("*") if kept(f) and f.suffix not in (".yaml", ".yml")
                          and classify(f) is FileKind.HAPROXY)})
        files = [*charts, *(f for f in files if not any(f.is_relative_to(c) for c in charts))]
    else:
        raise UsageError(f"--manifests {path}: no such file or directory: give a YAML file or the directory holding "
                         "them")
    if not files:
        raise UsageError(f"--manifests {path} has no .yaml or .yml files, Helm chart or HAProxy configuration")
    return files


_GO_TEMPLATE = re.compile(r"\{\{-?\s*(\.|include\b|if\b|else\b|end\b|range\b|with\b|template\b|define\b|toYaml\b|"
                          r"tpl\b|printf\b|quote\b|default\b|required\b|/\*)")


def _refuse_template(where: str) -> NoReturn:
    """A Go template (Helm) parses as YAML only by accident, and never as what it renders to. Only the documents
    the tool runs are searched: a ConfigMap may well carry templates of its own (Alertmanager's, say)."""
    raise UsageError(f"{where}: a Go template ({{{{ … }}}}), not a manifest: render the chart first with "
                     "`helm template RELEASE CHART > rendered.yaml` and give that file")


def _shown(path: Path) -> Path:
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def _kinds(found: Manifests) -> str:
    """What a set of manifests holds, for an error saying none of it is a DICOM proxy: "Deployment ×3, …"."""
    counted = Counter(k for k in found.kinds if k != "Gateway")
    parts = [f"{kind} ×{n}" if n > 1 else kind for kind, n in counted.items()]
    return ", ".join([*parts, *(f"Gateway {g.metadata.name} without a TLS server" for _, g in found.of(Gateway))])


def _not_dicom(found: Manifests) -> list[str]:
    """Istio Gateways with no TLS server (a web Gateway next to the DICOM one), and VirtualServices bound only
    to those: not DICOM proxies, so no environment, listed as skipped."""
    web = [(w, g) for w, g in found.of(Gateway) if not istio.carries_tls(g)]
    names = {g.metadata.name for _, g in web}
    lines = [f"{w}: no server with port.protocol TLS ({', '.join(s.port.protocol for s in g.spec.servers)} only), "
             "so it carries no DICOM: not run" for w, g in web]
    lines += [f"{w}: bound only to {', '.join(vs.spec.gateways)}, which carries no TLS: not read"
              for w, vs in found.of(VirtualService)
              if vs.spec.gateways and {g.split("/")[-1] for g in vs.spec.gateways} <= names]
    return lines


def _distinct_resources(translations: list[Translation], namespaces: list[str | None]) -> list[Translation]:
    """A tree may hold one name twice (a Gateway per namespace, an overlay's copy): those are told apart by
    namespace, "Gateway/NAMESPACE/NAME", then by number, so each stays an environment of its own."""
    counted = Counter(t.resource for t in translations)
    result: list[Translation] = []
    for t, namespace in zip(translations, namespaces, strict=True):
        name = t.resource
        if counted[name] > 1:
            kind, bare = name.split("/", 1)
            name = f"{kind}/{namespace or 'default'}/{bare}"
            taken, n = {r.resource for r in result}, 1
            while name in taken:
                n += 1
                name = f"{kind}/{namespace or 'default'}/{bare}-{n}"
        result.append(replace(t, resource=name))
    return result


def translate(found: Manifests, resource: str | None = None) -> list[Translation]:
    """Every Gateway with a TLS server, IngressRouteTCP and Envoy bootstrap as an environment, or just
    ``resource`` ("Kind/name")."""
    skipped = [*found.skipped, *_not_dicom(found)]
    gateways = [(w, g) for w, g in found.of(Gateway) if istio.carries_tls(g)]
    routes, bootstraps = found.of(IngressRouteTCP), found.of(EnvoyBootstrap)
    haproxy = [t for w, config in found.of(HaproxyConfig) for t in translate_haproxy(w, config)]
    translations = [*(translate_gateway(w, g, found) for w, g in gateways),
                    *(translate_route(w, r, found) for w, r in routes),
                    *(translate_bootstrap(w, b) for w, b in bootstraps), *haproxy]
    namespaces = [*(r.metadata.namespace for _, r in [*gateways, *routes]), *(None for _ in [*bootstraps, *haproxy])]
    translations = distinct_sites(_distinct_resources(translations, namespaces))
    if not translations:
        raise UsageError(f"manifests: {len(found.kinds)} document{'s' if len(found.kinds) != 1 else ''} "
                         f"({_kinds(found)}): none carries DICOM over TLS (an Istio Gateway with a TLS server, a "
                         "Traefik IngressRouteTCP, an Envoy bootstrap or an HAProxy frontend with `bind … ssl`)")
    if resource is not None:
        translations = [t for t in translations if t.resource == resource]
        if not translations:
            raise UsageError(f"manifests: no {resource} that carries DICOM over TLS among them")
    return [replace(t, unhonoured=(*t.unhonoured, *skipped)) for t in translations]


def server_names(translations: list[Translation]) -> list[str]:
    """The PKI's server names: every host the manifests name ("*" skipped), or a stand-in when none does."""
    names = list(dict.fromkeys(n for t in translations for n in t.server_names))
    return names or [FALLBACK_SERVER_NAME]
