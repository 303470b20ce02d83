"""The manifests a user deploys (Istio Gateway/VirtualService, Traefik IngressRouteTCP/TLSOption on Kubernetes, a
plain Envoy bootstrap on a VM, a docker compose project with nginx or HAProxy in front of Orthanc, a standalone
nginx.conf or haproxy.cfg, a Helm chart rendered with its values), read into the options of the component that
reproduces them on loopback.

One module per source kind (``istio``, ``traefik``, ``envoy_bootstrap``, and the translators of configuration files,
``compose_environment``, ``nginx_environment``, ``haproxy_environment``, registered by the kind of file recognition
finds; ``charts`` renders a chart's directory into documents); this one reads the files and hands each document or
file to its kind. The secrets and certificate files they name (credentialName, secretName,
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
from dicomtls.manifests import cert_manager, compose_environment, haproxy_environment, istio, nginx_environment, traefik
from dicomtls.manifests.charts import ChartValues, chart_sources, rendered_documents
from dicomtls.manifests.envoy_bootstrap import EnvoyBootstrap, is_envoy_bootstrap, translate_bootstrap
from dicomtls.manifests.istio import Gateway, VirtualService, translate_gateway
from dicomtls.manifests.located import At, shown
from dicomtls.manifests.recognition import FileKind, classify, survey
from dicomtls.manifests.spec import Manifests, Spec
from dicomtls.manifests.traefik import IngressRouteTCP, TLSOption, TLSStore, translate_route
from dicomtls.manifests.translation import Translation, distinct_sites
from dicomtls.manifests.translators import translated_kinds, translator

__all__ = ["FALLBACK_SERVER_NAME", "ChartValues", "Manifests", "Translation", "manifest_files", "read_manifests",
           "server_names", "translate", "translate_files", "yaml_manifests"]

TRANSLATORS = (compose_environment, nginx_environment, haproxy_environment)
"""The modules whose ``@translates`` register them (imported for that)."""

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
    chart's directory among them is rendered by Helm with ``values`` (--values files, --set expressions)."""
    found = Manifests()
    for path in paths:
        if os.path.isdir(path):
            rendered = rendered_documents(path, values or ChartValues())
            found.kinds.append("Helm chart")
            found.skipped += rendered.not_reproduced
            _read_documents(rendered.path, list(rendered.documents), found, rendered.where)
            continue
        try:
            text = path.read_text()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
        try:
            documents, nodes = _documents(text)
        except yaml.YAMLError as exc:
            if (template := _GO_TEMPLATE.search(text)) is not None:  # the likelier cause
                _refuse_template(f"{_shown(path)} line {text.count(chr(10), 0, template.start()) + 1}")
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise UsageError(f"{path}: not valid YAML{where}: fix the syntax") from None
        _read_documents(path, documents, found, nodes=nodes)
    return found


def _read_documents(path: Path, documents: list[Any], found: Manifests,
                    where_of: Callable[[int, dict[str, Any]], str] | None = None,
                    nodes: list[yaml.Node] | None = None) -> None:
    """The documents of one file (or of one rendered chart: ``where_of(index, doc)`` names the template), and,
    with their composed ``nodes``, where each resource starts (``found.located``), for annotations."""
    def _where(path: Path, index: int, doc: dict[str, Any]) -> str:
        return where_of(index, doc) if where_of is not None else _file_where(path, index, doc)

    for index, doc in enumerate(documents):
        if doc is None:
            continue
        if _runs(doc) and _GO_TEMPLATE.search(json.dumps(doc)):
            _refuse_template(_where(path, index, doc))
        if is_envoy_bootstrap(doc):
            found.kinds.append("Envoy bootstrap")
            node = nodes[index] if nodes is not None else None
            found.resources.append((_where(path, index, doc), _bootstrap(path, index, doc, node, found)))
            _locate(found, _where(path, index, doc), path, node)
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
            _locate(found, _where(path, index, doc), path, nodes[index] if nodes is not None else None)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise UsageError(f"{_where(path, index, doc)}: {loc}: {first['msg']}") from None


def _locate(found: Manifests, where: str, path: Path, node: yaml.Node | None) -> None:
    """Record where a resource's document starts (a rendered chart's documents have no file line of their own)."""
    if node is not None:
        found.located[where] = At(file=path, line=node.start_mark.line + 1)


def _documents(text: str) -> tuple[list[Any], list[yaml.Node]]:
    """Each YAML document of ``text`` and its composed node, in one parse: the node keeps the lines (marks) that
    findings and annotations point at, which a plain load drops."""
    loader = yaml.SafeLoader(text)
    documents: list[Any] = []
    nodes: list[yaml.Node] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            assert node is not None  # check_node said a document follows
            nodes.append(node)
            documents.append(loader.construct_document(node))
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]
    return documents, nodes


def _runs(doc: Any) -> bool:
    """A document the tool reads and runs: an Envoy bootstrap or a kind in _KINDS."""
    return is_envoy_bootstrap(doc) or (isinstance(doc, dict)
                                       and (str(doc.get("apiVersion")), str(doc.get("kind"))) in _KINDS)


def _bootstrap(path: Path, index: int, doc: dict[str, Any], node: yaml.Node | None,
               found: Manifests) -> EnvoyBootstrap:
    """The bootstrap named after its file: "EnvoyBootstrap/<stem>" must pick exactly one."""
    taken = [where for where, r in found.resources if isinstance(r, EnvoyBootstrap) and r.name == path.stem]
    if taken:
        raise UsageError(f"{_file_where(path, index, doc)}: another Envoy bootstrap is also named {path.stem} "
                         f"({taken[0]}): Envoy reads one bootstrap per file, so give each its own file with its own "
                         "name")
    return EnvoyBootstrap(path.stem, doc, path if node is not None else None, node)  # a chart's: no file line


def manifest_files(path: Path) -> list[Path]:
    """The YAML files under ``path`` (a file, or a directory read recursively like `kubectl apply -R`; hidden
    directories skipped), the configurations a translator reads found there by content (compose projects,
    nginx.conf, haproxy.cfg), and each Helm chart's directory in place of its files (read_manifests renders it)."""
    if os.path.isfile(path):  # os.path: False for a name too long for the file system too, where Path raises
        files = [path]
    elif os.path.isdir(path):
        files = sorted(f for f in [*path.rglob("*.yaml"), *path.rglob("*.yml")]
                       if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts[:-1]))
        known = {f.resolve() for f in files}  # and what is recognised by content under other names: nginx.conf
        files += [f for f, kind in survey(path).items() if kind in translated_kinds() and f not in known]
        charts = chart_sources(path)
        files = [*charts, *(f for f in files if not any(f.is_relative_to(c) for c in charts))]
    else:
        raise UsageError(f"--manifests {path}: no such file or directory: give a YAML file or the directory holding "
                         "them")
    if not files:
        raise UsageError(f"--manifests {path} has no .yaml or .yml files, Helm chart, compose project, nginx or "
                         "HAProxy configuration")
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


def _translations(found: Manifests) -> tuple[list[Translation], list[str | None]]:
    """Every Gateway with a TLS server, IngressRouteTCP and Envoy bootstrap as an environment, with the namespace
    each was read from."""
    gateways = [(w, g) for w, g in found.of(Gateway) if istio.carries_tls(g)]
    routes, bootstraps = found.of(IngressRouteTCP), found.of(EnvoyBootstrap)
    translations = [_located(t, found.located.get(w)) for t, w in [
        *((translate_gateway(w, g, found), w) for w, g in gateways),
        *((translate_route(w, r, found), w) for w, r in routes),
        *((translate_bootstrap(w, b), w) for w, b in bootstraps)]]
    namespaces = [*(r.metadata.namespace for _, r in [*gateways, *routes]), *(None for _ in bootstraps)]
    return translations, namespaces


def _located(translation: Translation, source: At | None) -> Translation:
    """The translation read from ``source``; its findings that know no line of their own point at it (an Istio
    Gateway's, say: its first line), so an annotation lands on the resource at least."""
    if source is None:
        return translation
    findings = tuple(f if f.file else replace(f, file=str(shown(source.file)), line=source.line)
                     for f in translation.findings)
    return replace(translation, source=source, findings=findings)


def translate(found: Manifests, resource: str | None = None) -> list[Translation]:
    """Every Gateway with a TLS server, IngressRouteTCP and Envoy bootstrap as an environment, or just
    ``resource`` ("Kind/name")."""
    translations, namespaces = _translations(found)
    return _chosen(distinct_sites(_distinct_resources(translations, namespaces)), found, [], resource,
                   f"{len(found.kinds)} document{'s' if len(found.kinds) != 1 else ''} ({_kinds(found)}): none "
                   "carries DICOM over TLS (an Istio Gateway with a TLS server, a Traefik IngressRouteTCP or an Envoy "
                   "bootstrap)")


def _chosen(translations: list[Translation], found: Manifests, skipped: list[str], resource: str | None,
            none: str) -> list[Translation]:
    """``resource``'s translation, or all of them; each with the skipped documents and files listed."""
    if not translations:
        raise UsageError(f"manifests: {none}")
    if resource is not None:
        translations = [t for t in translations if t.resource == resource]
        if not translations:
            raise UsageError(f"manifests: no {resource} that carries DICOM over TLS among them")
    skipped = [*found.skipped, *_not_dicom(found), *skipped]
    return [replace(t, unhonoured=(*t.unhonoured, *skipped)) for t in translations]


def yaml_manifests(files: list[Path]) -> list[Path]:
    """The files read together as Kubernetes/Envoy YAML: all but the configurations a translator reads on its own
    (compose projects, nginx.conf), Orthanc's configuration (read with the compose project mounting it) and the
    other files a project brings that are not YAML by name or content (its `.env`); a Helm chart's directory stays
    (read_manifests renders it)."""
    kinds = {f: classify(f) for f in files}
    return [f for f in files if kinds[f] not in {*translated_kinds(), FileKind.ORTHANC}
            and (kinds[f] is not None or f.suffix in (".yaml", ".yml") or os.path.isdir(f))]


def translate_files(files: list[Path], resource: str | None = None,
                    values: ChartValues | None = None) -> list[Translation]:
    """Every environment ``files`` describe (manifest_files' list): compose projects first, with the files they
    mount (read once, as part of their project), then standalone configurations, then the Kubernetes/Envoy YAML;
    or just ``resource``. ``values``: what a Helm chart among them is rendered with."""
    kinds = {f: classify(f) for f in files}
    configs = sorted((f for f in files if kinds[f] in translated_kinds()),
                     key=lambda f: kinds[f] is not FileKind.COMPOSE)
    from_configs: list[Translation] = []
    claimed: dict[Path, Path] = {}  # a file read -> the file whose translation read it
    skipped = []
    for file in configs:
        if file.resolve() in claimed:
            continue
        translate_config = translator(kinds[file])
        assert translate_config is not None  # configs holds registered kinds only
        read = [t if t.source else _located(t, At(file=file)) for t in translate_config(file, None)]
        mounted = {f.resolve() for t in read for f in t.files} - {file.resolve()}
        if mounted and mounted <= claimed.keys():  # `cp docker-compose.yaml.local docker-compose.yaml`: run once
            skipped.append(f"{_shown(file)}: runs the same configuration as {_shown(claimed[min(mounted)])}: "
                           "not run twice")
            continue
        from_configs += read
        claimed.update({f.resolve(): file for t in read for f in t.files})
    skipped += [f"{_shown(f)}: an Orthanc configuration no compose service mounts: not read" for f in files
                if kinds[f] is FileKind.ORTHANC and f.resolve() not in claimed]
    found = read_manifests(yaml_manifests(files), values)
    translations, namespaces = _translations(found)
    translations = distinct_sites(_distinct_resources([*from_configs, *translations],
                                                      [*(None for _ in from_configs), *namespaces]))
    if not configs:
        none = (f"{len(found.kinds)} document{'s' if len(found.kinds) != 1 else ''} ({_kinds(found)}): none carries "
                "DICOM over TLS (an Istio Gateway with a TLS server, a Traefik IngressRouteTCP or an Envoy bootstrap)")
    else:
        none = (f"{', '.join(str(_shown(f)) for f in configs)}{' and YAML documents' if found.kinds else ''}: none "
                "carries DICOM over TLS (an nginx stream server listening with ssl or routing by ssl_preread, an HAProxy "
                "frontend with `bind … ssl` or req.ssl_sni routes, an Istio Gateway with a TLS server, a Traefik "
                "IngressRouteTCP, an Envoy bootstrap)")
    return _chosen(translations, found, skipped, resource, none)


def server_names(translations: list[Translation]) -> list[str]:
    """The PKI's server names: every host the manifests name ("*" skipped), or a stand-in when none does."""
    names = list(dict.fromkeys(n for t in translations for n in t.server_names))
    return names or [FALLBACK_SERVER_NAME]
