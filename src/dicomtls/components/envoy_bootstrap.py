"""A user's own Envoy bootstrap (the envoy.yaml Orthweb runs on a VM), run as written except where it cannot be.

A template filled from options would test the tool's idea of the configuration; running the user's file tests
theirs. Only what cannot exist on loopback is rewritten: the DICOM listener listens where the backend says,
presents the generated PKI's certificates instead of the files it names, logs each connection where the diagnosis
reads it, and forwards to the environment's Orthanc; every file it writes (health-check event logs, file sinks, ...)
moves into the environment's directory. What needs the real machine (the admin interface, the other listeners and
their clusters, secrets, upstream TLS, runtime files on disk, ...) is removed, and :func:`unhonoured` says what was,
one line each, so a matrix never claims more than it ran. What weakens security is kept, and :func:`findings` says
so next to the cells that show it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import yaml
from pydantic import model_validator

from dicomtls.components import Launch, Placement, SiteRoute, WebOptions, register, site_for_names
from dicomtls.components.envoy import WEB_LOG, Envoy, connection_log
from dicomtls.findings import Finding

TCP_PROXY = "envoy.filters.network.tcp_proxy"
_TYPES = "type.googleapis.com/envoy.extensions."
_TCP_PROXY_TYPE = _TYPES + "filters.network.tcp_proxy.v3.TcpProxy"
_DOWNSTREAM_TLS_TYPE = _TYPES + "transport_sockets.tls.v3.DownstreamTlsContext"
_TLS_INSPECTOR_TYPE = _TYPES + "filters.listener.tls_inspector.v3.TlsInspector"

_HCM_TYPE = _TYPES + "filters.network.http_connection_manager.v3.HttpConnectionManager"
WEB_CLUSTER = "dicomtls-web"
"""The cluster the web listener's routes to Orthanc's REST API go to (its endpoint: the site's HTTP port)."""

_KEPT_TOP_LEVEL = ("static_resources", "node", "layered_runtime")
_MATCHED_ON = ("server_names", "transport_protocol")
"""filter_chain_match fields that mean the same on loopback; the others match the real network."""

# Fields removed from the kept parts, and why: each one present becomes an unhonoured line.
_UPSTREAM_TLS = "upstream TLS removed: Envoy forwards to Orthanc's DICOM port without a TLS layer of its own"
_RESOLVER = "not reproduced (the environment's own resolver finds Orthanc)"
_PINS = "not reproduced (it pins the real clients' certificates)"
_TICKETS = "not reproduced (Envoy makes its own session ticket keys)"
_SANS = ("not reproduced: with it Envoy requires a client certificate carrying those names (whatever "
         "require_client_certificate says), and the tool's carry other names, so no client, the readiness check "
         "included, could pass")
_LISTENER_DROPS = {"additional_addresses": "not reproduced (the listener gets the one address the backend gives it)"}
_TCP_PROXY_DROPS = {
    "access_log": "replaced by the tool's connection log on the listener (a second log counts each connection twice)",
    "access_log_options": "removed with the tcp_proxy access_log",
    "tunneling_config": "not reproduced (Orthanc is reached directly, not through an HTTP CONNECT tunnel)",
}
_TLS_CONTEXT_DROPS = {"session_ticket_keys": _TICKETS, "session_ticket_keys_sds_secret_config": _TICKETS}
_COMMON_TLS_DROPS = {
    "key_log": "not reproduced (the tool never writes TLS key material)",
    "tls_certificate_provider_instance": "replaced by the generated PKI's server certificate",
}
_VALIDATION_DROPS = {
    "crl": "not reproduced (the generated PKI revokes nothing)",
    "verify_certificate_spki": _PINS,
    "verify_certificate_hash": _PINS,
    "match_subject_alt_names": _SANS,
    "match_typed_subject_alt_names": _SANS,
    "watched_directory": "not reproduced (the generated CA bundle does not change)",
}
_CLUSTER_DROPS = {
    "transport_socket": _UPSTREAM_TLS,
    "transport_socket_matches": _UPSTREAM_TLS,
    "upstream_bind_config": "not reproduced (Envoy connects from the environment's own address)",
    "dns_resolvers": _RESOLVER,
    "dns_resolution_config": _RESOLVER,
    "typed_dns_resolver_config": _RESOLVER,
    "eds_cluster_config": "replaced: the cluster's endpoint is the environment's Orthanc",
    "cluster_type": "replaced: the cluster's endpoint is the environment's Orthanc",
}
_DNS_TYPES = ("STRICT_DNS", "LOGICAL_DNS")

# Files: keys whose string value Envoy opens, for writing (moved into the environment's directory) or reading.
_WRITTEN_KEYS = frozenset({"event_log_path", "access_log_path", "path_prefix", "profile_path"})
_READ_KEYS = frozenset({"filename", "symlink_root", "flags_path"})
_UNMOVED = ("/dev/stdout", "/dev/stderr", "/dev/null")
"""Paths that exist wherever Envoy runs."""

HEADER = ("# Your Envoy bootstrap, rewritten by dicomtls to run here: only the DICOM listener, on\n"
          "# the backend's address, with the generated PKI, the tool's connection log and the environment's Orthanc\n"
          "# as its cluster; the files it writes are in this directory. Everything else that changed is listed\n"
          "# under unhonoured in results.json.\n")


# --- reading --------------------------------------------------------------------------------------------------


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        raise ValueError(f"{path}: missing: an Envoy bootstrap needs static_resources with listeners and clusters")
    if not isinstance(value, dict):
        raise ValueError(f"{path}: not a mapping: write it as Envoy's bootstrap schema does (key: value)")
    return value


def _items(container: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    value = container.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{path}.{key}: not a list of mappings: write each entry as '- key: value'")
    return value


def _typed(entry: dict[str, Any]) -> dict[str, Any]:
    typed = entry.get("typed_config")
    return typed if isinstance(typed, dict) else {}


def _label(entry: dict[str, Any]) -> str:
    return f" ({entry['name']})" if entry.get("name") else ""


def _is_tcp_proxy(network_filter: dict[str, Any]) -> bool:
    if "@type" in _typed(network_filter):  # the type decides; the name is free text since Envoy 1.14
        return _typed(network_filter)["@type"] == _TCP_PROXY_TYPE
    return network_filter.get("name") in (TCP_PROXY, "envoy.tcp_proxy")


def _is_tls_inspector(listener_filter: dict[str, Any]) -> bool:
    if "@type" in _typed(listener_filter):
        return _typed(listener_filter)["@type"] == _TLS_INSPECTOR_TYPE
    return listener_filter.get("name") in ("envoy.filters.listener.tls_inspector", "envoy.listener.tls_inspector")


def _tls_context(chain: dict[str, Any]) -> dict[str, Any] | None:
    """The chain's DownstreamTlsContext, or None when the chain passes TLS through (or carries plain TCP)."""
    socket = chain.get("transport_socket")
    typed = _typed(socket) if isinstance(socket, dict) else {}
    return typed if typed.get("@type") == _DOWNSTREAM_TLS_TYPE else None


def _chains(listener: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every filter chain with its path, the default_filter_chain last."""
    chains = [(f"{path}.filter_chains[{i}]", c) for i, c in enumerate(_items(listener, "filter_chains", path))]
    if "default_filter_chain" in listener:
        here = f"{path}.default_filter_chain"
        chains.append((here, _mapping(listener["default_filter_chain"], here)))
    return chains


def _tcp_proxy(chain: dict[str, Any], path: str) -> dict[str, Any] | None:
    return next((f for f in _items(chain, "filters", path) if _is_tcp_proxy(f)), None)


def _carrying(listener: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """The chains that carry DICOM: those with a tcp_proxy."""
    return [(here, chain) for here, chain in _chains(listener, path) if _tcp_proxy(chain, here) is not None]


def _matched_names(chain: dict[str, Any]) -> list[str]:
    match = chain.get("filter_chain_match")
    names = match.get("server_names") if isinstance(match, dict) else None
    return [str(name) for name in names] if isinstance(names, list) else []


def _routes(chain: dict[str, Any]) -> list[str]:
    """The clusters a chain's tcp_proxy sends connections to."""
    typed = _typed(_tcp_proxy(chain, "") or {})
    weighted = typed.get("weighted_clusters")
    if isinstance(weighted, dict):
        return [c["name"] for c in weighted.get("clusters") or [] if isinstance(c, dict) and "name" in c]
    return [typed["cluster"]] if isinstance(typed.get("cluster"), str) else []


def _dicom_listener(bootstrap: Any, name: str | None = None) -> tuple[int, dict[str, Any]]:
    """The listener that carries DICOM and its index: the one called ``name``, else the first with a tcp_proxy."""
    static = _mapping(_mapping(bootstrap, "the bootstrap").get("static_resources"), "static_resources")
    listeners = _items(static, "listeners", "static_resources")
    if name is not None:
        for index, listener in enumerate(listeners):
            if listener.get("name") == name:
                if not _carrying(listener, f"static_resources.listeners[{index}]"):
                    raise ValueError(f"static_resources.listeners[{index}] ({name}): no {TCP_PROXY} filter, so it "
                                     "carries no DICOM: name the listener that proxies DICOM")
                return index, listener
        names = ", ".join(str(listener.get("name")) for listener in listeners) or "none"
        raise ValueError(f"listener {name!r}: not in static_resources.listeners: use one of {names}")
    for index, listener in enumerate(listeners):
        if _carrying(listener, f"static_resources.listeners[{index}]"):
            return index, listener
    raise ValueError(f"static_resources.listeners: none has an {TCP_PROXY} filter, so none carries DICOM: give "
                     "the bootstrap of the Envoy that proxies DICOM (listeners from LDS are not read)")


def _is_hcm(network_filter: dict[str, Any]) -> bool:
    if "@type" in _typed(network_filter):
        return _typed(network_filter)["@type"] == _HCM_TYPE
    return network_filter.get("name") in ("envoy.filters.network.http_connection_manager",
                                          "envoy.http_connection_manager")


def web_listener(bootstrap: Any, listener: str | None = None) -> tuple[int, dict[str, Any]] | None:
    """The HTTPS listener beside the DICOM one (Orthweb's orthanc_web), and its index: the first other listener
    whose chains terminate TLS and run an http_connection_manager with its routes in the bootstrap (not RDS)."""
    dicom, _ = _dicom_listener(bootstrap, listener)
    listeners = _items(bootstrap["static_resources"], "listeners", "static_resources")
    for index, found in enumerate(listeners):
        chains = _chains(found, f"static_resources.listeners[{index}]")
        if index != dicom and chains and all(
                _tls_context(chain) is not None and any(_is_hcm(f) and "route_config" in _typed(f)
                                                        for f in _items(chain, "filters", "")) for _, chain in chains):
            return index, found
    return None


def _dicom_hosts(static: dict[str, Any], clusters: list[str]) -> set[str]:
    """The endpoint hosts of the DICOM clusters: a web route to a cluster on one of them reaches the same Orthanc."""
    hosts = set()
    for cluster in _items(static, "clusters", "static_resources"):
        if cluster.get("name") in clusters:
            hosts |= {host for host, _ in _endpoints(cluster)}
    return hosts


def _endpoints(cluster: dict[str, Any]) -> list[tuple[str, Any]]:
    assignment = cluster.get("load_assignment")
    found = []
    for group in (assignment.get("endpoints") or []) if isinstance(assignment, dict) else []:
        for endpoint in group.get("lb_endpoints") or [] if isinstance(group, dict) else []:
            socket = ((endpoint.get("endpoint") or {}).get("address") or {}).get("socket_address") \
                if isinstance(endpoint, dict) else None
            if isinstance(socket, dict):
                found.append((str(socket.get("address")), socket.get("port_value")))
    return found


def passes_through(bootstrap: Any, listener: str | None = None) -> bool:
    """True when the DICOM listener forwards TLS untouched (its chains have no TLS transport socket), so the
    server behind must terminate it."""
    index, chosen = _dicom_listener(bootstrap, listener)
    path = f"static_resources.listeners[{index}]"
    terminating = {_tls_context(chain) is not None for _, chain in _carrying(chosen, path)}
    if len(terminating) > 1:
        raise ValueError(f"{path}: mixes filter chains that terminate TLS with chains that pass it through: the "
                         "Orthancs behind either all terminate TLS or none does; give each kind its own bootstrap")
    return terminating == {False}


def server_names(bootstrap: Any, listener: str | None = None) -> tuple[str, ...]:
    """Every name the DICOM listener's chains match on: the names clients send and the PKI must carry."""
    index, chosen = _dicom_listener(bootstrap, listener)
    names = [name for _, chain in _carrying(chosen, f"static_resources.listeners[{index}]")
             for name in _matched_names(chain)]
    return tuple(dict.fromkeys(names))


def routes(bootstrap: Any, listener: str | None = None) -> list[tuple[tuple[str, ...], str]]:
    """(the names a DICOM chain matches, "*" for a chain matching any, its first cluster) per chain: where the
    listener sends each name, so chains routing to several clusters become several sites."""
    index, chosen = _dicom_listener(bootstrap, listener)
    return [(tuple(_matched_names(chain)) or ("*",), clusters[0])
            for _, chain in _carrying(chosen, f"static_resources.listeners[{index}]")
            if (clusters := _routes(chain))]


def dicom_chains(bootstrap: Any, listener: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The DICOM listener and its chains that carry DICOM (the objects themselves, for a fix to edit)."""
    index, chosen = _dicom_listener(bootstrap, listener)
    return chosen, [chain for _, chain in _carrying(chosen, f"static_resources.listeners[{index}]")]


def tls_context(chain: dict[str, Any]) -> dict[str, Any] | None:
    """The chain's DownstreamTlsContext; None when it passes TLS through."""
    return _tls_context(chain)


# --- files: every path the bootstrap names ---------------------------------------------------------------------


def _is_written(key: str, entry: dict[str, Any]) -> bool:
    """A key whose value is a file Envoy writes: the named ones, and ``path`` of a typed file sink
    (FileAccessLog and the like; a bare ``path`` elsewhere is an HTTP path)."""
    return key in _WRITTEN_KEYS or (key == "path" and ".file." in str(entry.get("@type", "")))


def _files(node: Any, where: str) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(the mapping, its key, the field's path) of each file the document names, read or written."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else key
            if isinstance(value, str) and (_is_written(key, node) or key in _READ_KEYS):
                yield node, key, here
            else:
                yield from _files(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _files(item, f"{where}[{i}]")


def _named_files(node: Any) -> str:
    """"; it names /a, /b" for a removed part that opens files, so the report says which ones are not opened."""
    paths = list(dict.fromkeys(entry[key] for entry, key, _ in _files(node, "") if entry[key] not in _UNMOVED))
    return f"; it names {', '.join(paths)}" if paths else ""


def _relocate(kept: Any, where: str, workdir: str, taken: set[str], notes: list[str]) -> None:
    """Point every file the kept parts write into ``workdir`` (one file per path, never one of the tool's own);
    a file they read is theirs alone, so it is named (Envoy's own error says so if it is missing here)."""
    for entry, key, here in _files(kept, where):
        path = entry[key]
        if path in _UNMOVED:
            continue
        if key in _READ_KEYS:
            notes.append(f"{here}: {path} is read as written (the tool has no copy of it)")
            continue
        base = path.rstrip("/").rsplit("/", 1)[-1] or "file"
        name, n = f"bootstrap-{base}", 1
        while name in taken:
            n += 1
            name = f"bootstrap-{n}-{base}"
        taken.add(name)
        entry[key] = f"{workdir}/{name}"
        notes.append(f"{here}: {path} rewritten to the environment's directory ({name})")


# --- health checks and runtime: kept where they mean the same here ---------------------------------------------


def _trim_health_checks(cluster: dict[str, Any], path: str, notes: list[str]) -> None:
    """A TCP connect check works against Orthanc's DICOM port as it is; anything that sends bytes or speaks
    HTTP/gRPC would find Orthanc unhealthy and make Envoy stop sending it connections, so it goes."""
    checks = _items(cluster, "health_checks", path)
    kept = []
    for i, check in enumerate(checks):
        tcp = check.get("tcp_health_check")
        if isinstance(tcp, dict) and not tcp.get("send") and not tcp.get("receive"):
            kept.append(check)
            continue
        kind = next((k for k in check if k.endswith("_health_check")), "an unknown health check")
        why = ("it sends bytes Orthanc's DICOM port does not answer" if isinstance(tcp, dict)
               else "Orthanc's DICOM port answers no HTTP or gRPC")
        notes.append(f"{path}.health_checks[{i}] ({kind}): removed: {why}, so Envoy would mark Orthanc unhealthy")
    if kept:
        cluster["health_checks"] = kept
    elif "health_checks" in cluster:
        del cluster["health_checks"]


def _numbers(layer: dict[str, Any], path: str, notes: list[str]) -> dict[str, Any]:
    """A static runtime layer with its numbers and switches (connection limits, feature flags): anything else
    (a string value) is removed."""
    kept: dict[str, Any] = {}
    for key, value in layer.items():
        here = f"{path}.{key}"
        if isinstance(value, dict):
            if inner := _numbers(value, here, notes):
                kept[key] = inner
        elif isinstance(value, (bool, int, float)):
            kept[key] = value
        else:
            notes.append(f"{here}: removed (only numbers and switches of a static runtime layer are kept)")
    return kept


def _trim_runtime(runtime: Any, notes: list[str]) -> dict[str, Any]:
    """The layers that need nothing but the bootstrap (static, admin); disk layers read the real machine's
    files and RTDS needs a management server."""
    runtime = _mapping(runtime, "layered_runtime")
    layers = []
    for i, layer in enumerate(_items(runtime, "layers", "layered_runtime")):
        here = f"layered_runtime.layers[{i}]"
        if "static_layer" in layer:
            static = _numbers(_mapping(layer["static_layer"], here), f"{here}.static_layer", notes)
            layers.append({**layer, "static_layer": static})
        elif "admin_layer" in layer:
            layers.append(layer)
        elif "disk_layer" in layer:
            notes.append(f"{here}.disk_layer{_label(layer)}: removed: it reads runtime files of the real machine"
                         f"{_named_files(layer)}")
        else:
            notes.append(f"{here}{_label(layer)}: removed (only static and admin runtime layers run here)")
    return {"layers": layers}


# --- findings: what the kept parts do that weakens security ----------------------------------------------------


def _validation(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(its path under the context, the validation context) of a DownstreamTlsContext, whichever way it is given."""
    common = context.get("common_tls_context")
    common = common if isinstance(common, dict) else {}
    combined = common.get("combined_validation_context")
    if isinstance(combined, dict) and isinstance(combined.get("default_validation_context"), dict):
        return "combined_validation_context.default_validation_context", combined["default_validation_context"]
    validation = common.get("validation_context")
    return "validation_context", validation if isinstance(validation, dict) else {}


def findings(bootstrap: Any, listener: str | None = None,
             line_of: Callable[[str], int | None] = lambda field: None) -> list[Finding]:
    """What the DICOM listener's TLS settings accept (or demand) that the user may not expect, each with the
    client certificate that shows it: the rewrite keeps these settings, so the matrix tests them as written.
    Subject alt name matchers are the exception (removed, see _SANS), reported without proof. ``line_of`` gives
    a field's line in the user's file (the reader knows it; a plain mapping does not), set on each finding."""
    index, chosen = _dicom_listener(bootstrap, listener)
    found: list[Finding] = []

    def add(field: str, finding: Finding) -> None:
        found.append(replace(finding, line=line_of(field)))

    for here, chain in _carrying(chosen, f"static_resources.listeners[{index}]"):
        context = _tls_context(chain)
        if context is None:
            continue
        where = f"{here}.transport_socket.typed_config"
        field, validation = _validation(context)
        at = f"{where}.common_tls_context.{field}"
        if validation.get("allow_expired_certificate") is True:
            add(f"{at}.allow_expired_certificate",
                Finding.of(f"{at}.allow_expired_certificate: true: Envoy accepts an expired client certificate",
                           severity="high", client_cert="expired"))
        if validation.get("trust_chain_verification") == "ACCEPT_UNTRUSTED":
            add(f"{at}.trust_chain_verification",
                Finding.of(f"{at}.trust_chain_verification: ACCEPT_UNTRUSTED: Envoy accepts a client certificate no "
                           "trusted CA issued", severity="critical", client_cert="untrusted"))
        sans = [key for key in ("match_typed_subject_alt_names", "match_subject_alt_names") if validation.get(key)]
        if context.get("require_client_certificate") is False and not sans:  # SAN matchers demand one anyway
            add(f"{where}.require_client_certificate",
                Finding.of(f"{where}.require_client_certificate: false: Envoy accepts a client that sends no "
                           "certificate", severity="medium", client_cert="none"))
        for key in sans:  # no cell can show it: the tool's certificates carry other names
            add(f"{at}.{key}", Finding(f"{at}.{key}: Envoy accepts only client certificates whose names match "
                                       f"{_matchers(validation[key])}, and requires one even where "
                                       "require_client_certificate is false", severity="info"))
    return list(dict.fromkeys(found))


def _matchers(matchers: Any) -> str:
    """SAN matchers as "exact dicom.example.org, prefix modality-" for the finding."""
    shown = []
    for matcher in matchers if isinstance(matchers, list) else []:
        inner = matcher.get("matcher", matcher) if isinstance(matcher, dict) else None  # typed, or the old form
        if not isinstance(inner, dict):
            continue
        shown += [f"{kind} {value}" for kind, value in inner.items() if kind in ("exact", "prefix", "suffix",
                                                                                   "contains")]
        if isinstance(inner.get("safe_regex"), dict):
            shown.append(f"regex {inner['safe_regex'].get('regex')}")
    return ", ".join(shown) or "the names it lists"


# --- trimming: what cannot run here is removed, each removal noted ---------------------------------------------


def _drop(entry: dict[str, Any], fields: dict[str, str], path: str, notes: list[str]) -> None:
    for field, why in fields.items():
        if field in entry:
            notes.append(f"{path}.{field}: {why}{_named_files(entry.pop(field))}")


def _at(entry: Any) -> str:
    """An admin or listener address as " (host:port)", for the notes."""
    address = entry.get("address") if isinstance(entry, dict) else None
    socket = address.get("socket_address") if isinstance(address, dict) else None
    if not isinstance(socket, dict):
        return ""
    return f" ({socket.get('address')}:{socket.get('port_value')})"


def _source(data_source: Any, what: str) -> str:
    """Where a DataSource's bytes come from, without ever quoting them."""
    if not isinstance(data_source, dict):
        return f"no {what}"
    if "filename" in data_source:
        return str(data_source["filename"])
    if "environment_variable" in data_source:
        return f"${data_source['environment_variable']}"
    return f"an inline {what}"


def _served(entry: dict[str, Any]) -> str:
    if "pkcs12" in entry:
        return f"the PKCS#12 {_source(entry['pkcs12'], 'bundle')}"
    return (f"{_source(entry.get('certificate_chain'), 'certificate')} "
            f"(key {_source(entry.get('private_key'), 'key')})")


def _trim_tls(context: dict[str, Any], path: str, notes: list[str]) -> None:
    """Leaves the TLS settings and empty slots for the site's certificate and the PKI's CA bundle (rewrite fills
    them): SDS secrets and certificate files cannot exist here."""
    _drop(context, _TLS_CONTEXT_DROPS, path, notes)
    here = f"{path}.common_tls_context"
    common = _mapping(context.setdefault("common_tls_context", {}), here)
    _drop(common, _COMMON_TLS_DROPS, here, notes)
    served = [_served(entry) for entry in _items(common, "tls_certificates", here)]
    secrets = [str(s.get("name")) for s in _items(common, "tls_certificate_sds_secret_configs", here)]
    if secrets:
        del common["tls_certificate_sds_secret_configs"]
        notes.append(f"{here}.tls_certificate_sds_secret_configs: SDS replaced by files: the server certificate is "
                     f"the generated PKI's, not the secret {', '.join(secrets)}")
    if served:
        notes.append(f"{here}.tls_certificates: the server certificate is the generated PKI's, not "
                     f"{', '.join(served)}")
    common["tls_certificates"] = []
    validation = common.get("validation_context")
    where = f"{here}.validation_context"
    if "validation_context_sds_secret_config" in common:
        sds = f"{here}.validation_context_sds_secret_config"
        secret = _mapping(common.pop("validation_context_sds_secret_config"), sds)
        notes.append(f"{sds}: SDS replaced by files: the trusted CA is the generated PKI's, not the secret "
                     f"{secret.get('name')}")
        validation = {"trusted_ca": {}}
    if "combined_validation_context" in common:
        combined = _mapping(common.pop("combined_validation_context"), f"{here}.combined_validation_context")
        named = combined.get("validation_context_sds_secret_config")
        notes.append(f"{here}.combined_validation_context: SDS replaced by files: the trusted CA is the generated "
                     f"PKI's, not the secret {named.get('name') if isinstance(named, dict) else named}")
        where = f"{here}.combined_validation_context.default_validation_context"
        validation = {**_mapping(combined.get("default_validation_context") or {}, where), "trusted_ca": {}}
    if validation is None:
        return
    validation = _mapping(validation, where)
    _drop(validation, _VALIDATION_DROPS, where, notes)
    if validation.get("trusted_ca"):
        notes.append(f"{where}.trusted_ca: the trusted CA is the generated PKI's, not "
                     f"{_source(validation['trusted_ca'], 'CA')}")
        validation["trusted_ca"] = {}  # rewrite fills it
    common["validation_context"] = validation


def _trim_chain(chain: dict[str, Any], path: str, notes: list[str]) -> dict[str, Any] | None:
    """The chain with its tcp_proxy alone, or None when it carries no DICOM."""
    filters = _items(chain, "filters", path)
    index = next((i for i, f in enumerate(filters) if _is_tcp_proxy(f)), None)
    if index is None:
        names = ", ".join(str(f.get("name")) for f in filters) or "no filters"
        notes.append(f"{path} ({names}): not reproduced (no tcp_proxy, so it carries no DICOM)")
        return None
    for i, other in enumerate(filters):
        if i != index:
            notes.append(f"{path}.filters[{i}]{_label(other)}: not reproduced (only the tcp_proxy runs, so DICOM "
                         "is tested without it)")
    chain["filters"] = [filters[index]]
    _drop(_typed(filters[index]), _TCP_PROXY_DROPS, f"{path}.filters[{index}].typed_config", notes)
    if len(clusters := _routes(chain)) > 1:
        notes.append(f"{path}.filters[{index}].typed_config.weighted_clusters: split over {len(clusters)} clusters; "
                     "all of it goes to the one Orthanc this chain's names reach")
    match = chain.get("filter_chain_match")
    if isinstance(match, dict):
        for key in [k for k in match if k not in _MATCHED_ON]:
            del match[key]
            notes.append(f"{path}.filter_chain_match.{key}: not reproduced (it matches the real network; here "
                         "only server_names and transport_protocol are matched)")
        if not match:
            del chain["filter_chain_match"]
    context = _tls_context(chain)
    if context is not None:
        _trim_tls(context, f"{path}.transport_socket.typed_config", notes)
    return chain


def _trim_listener(listener: dict[str, Any], path: str, notes: list[str]) -> dict[str, Any]:
    if "filter_chain_matcher" in listener:
        raise ValueError(f"{path}.filter_chain_matcher: the tool reproduces filter_chain_match only: match each "
                         "filter chain with filter_chain_match.server_names instead")
    _drop(listener, _LISTENER_DROPS, path, notes)
    if "access_log" in listener:
        notes.append(f"{path}.access_log: replaced by the tool's connection log (the diagnosis reads one line per "
                     f"connection){_named_files(listener.pop('access_log'))}")
    inspectors = []
    for i, listener_filter in enumerate(_items(listener, "listener_filters", path)):
        if _is_tls_inspector(listener_filter):
            inspectors.append(listener_filter)
        else:
            notes.append(f"{path}.listener_filters[{i}]{_label(listener_filter)}: not reproduced (the tool's "
                         "clients connect directly)")
    listener.pop("listener_filters", None)
    if inspectors:
        listener["listener_filters"] = inspectors
    chains = _items(listener, "filter_chains", path)
    listener["filter_chains"] = [kept for i, chain in enumerate(chains)
                                 if (kept := _trim_chain(chain, f"{path}.filter_chains[{i}]", notes))]
    if "default_filter_chain" in listener:
        here = f"{path}.default_filter_chain"
        default = _trim_chain(_mapping(listener.pop("default_filter_chain"), here), here, notes)
        if default is not None:
            listener["default_filter_chain"] = default
    return listener


def _trim_web_listener(listener: dict[str, Any], path: str, orthanc: set[str], clusters: dict[str, dict[str, Any]],
                       notes: list[str]) -> set[str]:
    """The HTTPS listener with its http_connection_manager alone per chain, its TLS settings as written (the
    certificates to be filled in), and its routes to Orthanc's host (``orthanc``) sent to WEB_CLUSTER; a route to
    another host is removed, as is everything around the listener that needs the real network. Returns the clusters
    it no longer routes to."""
    redirected: set[str] = set()
    _drop(listener, _LISTENER_DROPS, path, notes)
    if "access_log" in listener:
        notes.append(f"{path}.access_log: replaced by the tool's connection log{_named_files(listener.pop('access_log'))}")
    listener.pop("listener_filters", None)
    if any(_matched_names(c) for c in listener.get("filter_chains") or []):
        listener["listener_filters"] = [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {
            "@type": _TLS_INSPECTOR_TYPE}}]
    for here, chain in _chains(listener, path):
        filters = _items(chain, "filters", here)
        index = next(i for i, f in enumerate(filters) if _is_hcm(f))
        notes += [f"{here}.filters[{i}]{_label(f)}: not reproduced (only the http_connection_manager runs)"
                  for i, f in enumerate(filters) if i != index]
        chain["filters"] = [filters[index]]
        typed = _typed(filters[index])
        if "access_log" in typed:
            notes.append(f"{here}.filters[{index}].typed_config.access_log: not reproduced"
                         f"{_named_files(typed.pop('access_log'))}")
        config = f"{here}.filters[{index}].typed_config.route_config"
        for v, host in enumerate(_items(typed["route_config"], "virtual_hosts", config)):
            kept = []
            for r, route in enumerate(_items(host, "routes", "")):
                target = (route.get("route") or {}).get("cluster") if isinstance(route.get("route"), dict) else None
                where = f"{config}.virtual_hosts[{v}].routes[{r}]"
                if target in clusters and {h for h, _ in _endpoints(clusters[target])} & orthanc:
                    redirected.add(target)
                    route["route"]["cluster"] = WEB_CLUSTER
                    kept.append(route)
                    notes.append(f"{where} (cluster {target}): reproduced to the environment's Orthanc REST API "
                                 "(the DICOMweb plugin behind it)")
                else:
                    notes.append(f"{where}: removed (it leads to {target or 'no cluster'}, not the DICOM server's "
                                 "host)")
            host["routes"] = kept
        context = _tls_context(chain)
        if context is not None:
            _trim_tls(context, f"{here}.transport_socket.typed_config", notes)
    return redirected


def _kept_chains(listener: dict[str, Any]) -> list[dict[str, Any]]:
    default = listener.get("default_filter_chain")
    return [*listener["filter_chains"], *([default] if default else [])]


def _trimmed(bootstrap: Any, listener: str | None, workdir: str = ".",
             web: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The bootstrap cut down to what runs here (the DICOM listener and the clusters it routes to, certificates
    and endpoints still to be filled in, files it writes moved into ``workdir``), and a line for everything cut
    or replaced."""
    index, chosen = _dicom_listener(bootstrap, listener)
    passes_through(bootstrap, listener)  # mixed chains are an error before anything runs
    notes: list[str] = []
    for key, value in bootstrap.items():
        if key == "admin":
            notes.append(f"admin: the admin interface{_at(value)} is not started{_named_files(value)}")
        elif key not in _KEPT_TOP_LEVEL:
            notes.append(f"{key}: not reproduced (only static_resources, node and layered_runtime are run)"
                         f"{_named_files({key: value})}")
    static = bootstrap["static_resources"]
    for key in static:
        if key == "secrets":
            notes.append("static_resources.secrets: not used (the generated PKI's files replace them)")
        elif key not in ("listeners", "clusters"):
            notes.append(f"static_resources.{key}: not understood")
    name = chosen.get("name") or f"static_resources.listeners[{index}]"
    found_web = web_listener(bootstrap, listener) if web else None
    for i, other in enumerate(static["listeners"]):
        if i != index and (found_web is None or i != found_web[0]):
            notes.append(f"static_resources.listeners[{i}]{_label(other)}{_at(other)}: not started (only the DICOM "
                         f"listener {name} runs){_named_files(other)}")
    kept = _trim_listener(copy.deepcopy(chosen), f"static_resources.listeners[{index}]", notes)
    taken = {"access.log", "envoy.yaml", "output.log"}  # the tool's own files in the directory
    _relocate(kept, f"static_resources.listeners[{index}]", workdir, taken, notes)
    wanted = list(dict.fromkeys(route for chain in _kept_chains(kept) for route in _routes(chain)))
    clusters = []
    for i, cluster in enumerate(_items(static, "clusters", "static_resources")):
        here = f"static_resources.clusters[{i}]"
        if cluster.get("name") in wanted:
            clusters.append(copy.deepcopy(cluster))
            _drop(clusters[-1], _CLUSTER_DROPS, here, notes)
            _trim_health_checks(clusters[-1], here, notes)
            _relocate(clusters[-1], here, workdir, taken, notes)
        else:
            notes.append(f"{here}{_label(cluster)}: not defined (no DICOM tcp_proxy routes to it)")
    for missing in [n for n in wanted if n not in {c["name"] for c in clusters}]:
        clusters.append({"name": missing})
        notes.append(f"cluster {missing}: the DICOM tcp_proxy routes to it but static_resources.clusters does not "
                     "define it (CDS is not read): the tool defines it")
    listeners = [kept]
    if found_web is not None:
        here = f"static_resources.listeners[{found_web[0]}]"
        notes.append(f"{here}{_label(found_web[1])}{_at(found_web[1])}: the HTTPS listener, run as the "
                     "environment's web route")
        by_name = {str(c.get("name")): c for c in _items(static, "clusters", "static_resources")}
        https = copy.deepcopy(found_web[1])
        redirected = _trim_web_listener(https, here, _dicom_hosts(static, wanted), by_name, notes)
        listeners.append(https)
        clusters.append({"name": WEB_CLUSTER, "connect_timeout": "5s"})
        unrouted = {f"({name}): not defined (no DICOM tcp_proxy routes to it)": name for name in redirected}
        notes = [next((f"{note.removesuffix(end)}({unrouted[end]}): replaced by the web route's cluster, to the "
                       "environment's Orthanc REST API" for end in unrouted if note.endswith(end)), note)
                 for note in notes]
    node = {"node": copy.deepcopy(bootstrap["node"])} if "node" in bootstrap else {}
    runtime = ({"layered_runtime": _trim_runtime(copy.deepcopy(bootstrap["layered_runtime"]), notes)}
               if "layered_runtime" in bootstrap else {})
    return {**node, "static_resources": {"listeners": listeners, "clusters": clusters}, **runtime}, notes


def unhonoured(bootstrap: Any, listener: str | None = None, web: bool = False) -> list[str]:
    """Everything :func:`rewrite` removes or replaces that changes what Envoy does, one line each."""
    return _trimmed(bootstrap, listener, web=web)[1]


# --- rewriting: the trimmed bootstrap pointed at this environment ----------------------------------------------


def rewrite(bootstrap: dict[str, Any], listener: str | None, placement: Placement, web: bool = False) -> dict[str, Any]:
    """The user's bootstrap as it runs in ``placement``: each DICOM chain presents the certificate of the site it
    serves and sends its connections there; a cluster two chains share goes where the first sends it. ``web``: its
    HTTPS listener too, on the web port, with the first site's certificate, to that site's REST API."""
    config, _ = _trimmed(bootstrap, listener, placement.workdir, web)
    kept, *https = config["static_resources"]["listeners"]
    address = placement.listen["dicom"]
    kept["address"] = {"socket_address": {"address": address.host, "port_value": address.port}}
    kept["access_log"] = connection_log(f"{placement.workdir}/access.log", placement.version)
    destinations: dict[str, SiteRoute] = {}
    for chain in _kept_chains(kept):
        site = site_for_names(_matched_names(chain), placement.sites)
        context = _tls_context(chain)
        if context is not None:
            common = context["common_tls_context"]
            common["tls_certificates"] = [{"certificate_chain": {"filename": site.certificate},
                                           "private_key": {"filename": site.private_key}}]
            if "trusted_ca" in common.get("validation_context", {}):
                common["validation_context"]["trusted_ca"] = {"filename": placement.pki.ca_bundle}
        for route in _routes(chain):
            destinations.setdefault(route, site)
    for route_listener in https:
        site, address = placement.sites[0], placement.listen["web"]
        route_listener["address"] = {"socket_address": {"address": address.host, "port_value": address.port}}
        route_listener["access_log"] = connection_log(f"{placement.workdir}/{WEB_LOG}", placement.version)
        for chain in _kept_chains(route_listener):
            common = (_tls_context(chain) or {}).get("common_tls_context")
            if isinstance(common, dict):
                common["tls_certificates"] = [{"certificate_chain": {"filename": site.certificate},
                                               "private_key": {"filename": site.private_key}}]
                if "trusted_ca" in common.get("validation_context", {}):
                    common["validation_context"]["trusted_ca"] = {"filename": placement.pki.ca_bundle}
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] == WEB_CLUSTER:
            rest = placement.sites[0].web_upstream
            assert rest is not None, "a web route needs the site's REST address"
            cluster["type"] = "STATIC" if rest.is_ip() else "STRICT_DNS"
            cluster["load_assignment"] = {"cluster_name": WEB_CLUSTER, "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": rest.host, "port_value": rest.port}}}}]}]}
            continue
        site = destinations[cluster["name"]]
        # A DNS cluster resolves an IP literal as it is; STATIC takes only IP addresses, and in a container
        # network the upstream is a host name.
        if cluster.get("type") not in _DNS_TYPES:
            cluster["type"] = "STATIC" if site.upstream_is_ip else "STRICT_DNS"
        cluster["load_assignment"] = {"cluster_name": cluster["name"], "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": site.upstream.host, "port_value": site.upstream.port}}}}]}]}
    return config


class EnvoyBootstrapOptions(WebOptions):
    bootstrap: dict[str, Any]
    """The parsed bootstrap YAML, usually read from the user's files (dicomtls.manifests)."""
    listener: str | None = None
    """The listener that carries DICOM; default: the first with an envoy.filters.network.tcp_proxy filter."""

    @model_validator(mode="after")
    def _runnable(self) -> "EnvoyBootstrapOptions":
        _trimmed(self.bootstrap, self.listener)  # raises with the field and the fix
        if self.web and web_listener(self.bootstrap, self.listener) is None:
            raise ValueError("web: the bootstrap has no HTTPS listener (TLS chains with an http_connection_manager "
                             "and its route_config) beside the DICOM one")
        if self.web_path != "/":
            raise ValueError("web_path: the bootstrap's own routes decide the paths: leave it /")
        return self


@register
class EnvoyBootstrap(Envoy):
    kind = "envoy-bootstrap"
    image_recipe = "envoy"
    options_model = EnvoyBootstrapOptions
    listing_order = 15
    fix_options = {}  # the user's file is edited instead (dicomtls.fixes.envoy_bootstrap)
    load_target = None
    options: EnvoyBootstrapOptions  # type: ignore[assignment]

    def launch(self, placement: Placement, executable: str) -> Launch:
        # As the templates do: the route is where the backend gave its port (port_names()).
        web = self.options.web and "web" in placement.listen
        config = rewrite(self.options.bootstrap, self.options.listener, placement, web)
        launch = self.run_config(placement, executable, HEADER + yaml.safe_dump(config, sort_keys=False, width=120))
        return replace(launch, logs=(WEB_LOG,)) if web else launch

    def terminates_tls(self) -> bool:
        return not passes_through(self.options.bootstrap, self.options.listener)
