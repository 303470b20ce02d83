"""The manifests a user deploys (Istio Gateway/VirtualService, Traefik IngressRouteTCP/TLSOption on Kubernetes, a
plain Envoy bootstrap on a VM), read into the options of the component that reproduces them on loopback.

The secrets and certificate files they name (credentialName, secretName, clientAuth.secretNames, an Envoy
DownstreamTlsContext's files) are replaced by the generated PKI, and every backend a route names by the
environment's Orthanc. Anything else the tool cannot reproduce is collected as an "unhonoured" line for the
report, so a matrix never claims more than it ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dicomtls.components import envoy_bootstrap
from dicomtls.errors import UsageError
from dicomtls.findings import Finding

ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSIONS = ("v1beta1", "v1")
TRAEFIK_GROUPS = ("traefik.io", "traefik.containo.us")
FALLBACK_SERVER_NAME = "dicom.example.test"
"""The PKI's name when no manifest names a host (HostSNI(`*`), hosts "*"): clients need some name for SNI."""


class _Spec(BaseModel):
    """Unknown fields are kept (and reported), fields in ``unhonoured`` are read but cannot be reproduced."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    unhonoured: ClassVar[frozenset[str]] = frozenset()


def _unhonoured(model: BaseModel, path: str) -> list[str]:
    """Every field set in the manifest that the translation does not reproduce, as a dotted path."""
    found: list[str] = []
    names = {f.alias or name: name for name, f in type(model).model_fields.items()}
    for alias, name in names.items():
        if name not in model.model_fields_set:
            continue
        value = getattr(model, name)
        here = f"{path}.{alias}"
        if name in getattr(model, "unhonoured", ()):
            found.append(f"{here}: not reproduced")
        elif isinstance(value, BaseModel):
            found += _unhonoured(value, here)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found += _unhonoured(item, f"{here}[{index}]")
    found += [f"{path}.{key}: not understood" for key in (model.model_extra or {})]
    return found


class Metadata(_Spec):
    name: str
    namespace: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


# --- Istio ----------------------------------------------------------------------------------------------------


class IstioPort(_Spec):
    number: int
    protocol: str
    name: str | None = None
    target_port: int | None = Field(None, alias="targetPort")
    unhonoured = frozenset({"target_port"})


class IstioServerTls(_Spec):
    mode: Literal["PASSTHROUGH", "SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL"] = "SIMPLE"
    credential_name: str | None = Field(None, alias="credentialName")
    min_protocol_version: Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] | None = Field(
        None, alias="minProtocolVersion")
    max_protocol_version: Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] | None = Field(
        None, alias="maxProtocolVersion")
    cipher_suites: list[str] = Field([], alias="cipherSuites")
    subject_alt_names: list[str] = Field([], alias="subjectAltNames")
    verify_certificate_spki: list[str] = Field([], alias="verifyCertificateSpki")
    verify_certificate_hash: list[str] = Field([], alias="verifyCertificateHash")
    https_redirect: bool = Field(False, alias="httpsRedirect")
    ca_crl: str | None = Field(None, alias="caCrl")
    credential_names: list[str] = Field([], alias="credentialNames")
    server_certificate: str | None = Field(None, alias="serverCertificate")
    private_key: str | None = Field(None, alias="privateKey")
    ca_certificates: str | None = Field(None, alias="caCertificates")
    unhonoured = frozenset({"subject_alt_names", "verify_certificate_spki", "verify_certificate_hash",
                            "https_redirect", "ca_crl"})


class IstioServer(_Spec):
    port: IstioPort
    hosts: list[str] = Field(min_length=1)
    tls: IstioServerTls | None = None
    name: str | None = None
    bind: str | None = None
    default_endpoint: str | None = Field(None, alias="defaultEndpoint")
    unhonoured = frozenset({"bind", "default_endpoint"})


class GatewaySpec(_Spec):
    servers: list[IstioServer] = Field(min_length=1)
    selector: dict[str, str] = {}


class Gateway(_Spec):
    api_version: str = Field(alias="apiVersion")
    kind: Literal["Gateway"]
    metadata: Metadata
    spec: GatewaySpec


class L4Match(_Spec):
    port: int | None = None
    sni_hosts: list[str] = Field([], alias="sniHosts")
    gateways: list[str] = []
    destination_subnets: list[str] = Field([], alias="destinationSubnets")
    source_labels: dict[str, str] = Field({}, alias="sourceLabels")
    source_namespace: str | None = Field(None, alias="sourceNamespace")
    unhonoured = frozenset({"destination_subnets", "source_labels", "source_namespace"})


class Destination(_Spec):
    host: str
    subset: str | None = None
    port: dict[str, int] = {}
    unhonoured = frozenset({"subset"})


class RouteDestination(_Spec):
    destination: Destination
    weight: int | None = None
    unhonoured = frozenset({"weight"})


class L4Route(_Spec):
    match: list[L4Match] = []
    route: list[RouteDestination] = []


class VirtualServiceSpec(_Spec):
    hosts: list[str] = []
    gateways: list[str] = []
    tls: list[L4Route] = []
    tcp: list[L4Route] = []
    http: list[dict[str, Any]] = []
    export_to: list[str] = Field([], alias="exportTo")
    unhonoured = frozenset({"http"})


class VirtualService(_Spec):
    api_version: str = Field(alias="apiVersion")
    kind: Literal["VirtualService"]
    metadata: Metadata
    spec: VirtualServiceSpec


# --- Traefik --------------------------------------------------------------------------------------------------


class TraefikService(_Spec):
    name: str
    port: int | str | None = None
    namespace: str | None = None
    weight: int | None = None
    proxy_protocol: dict[str, Any] | None = Field(None, alias="proxyProtocol")
    termination_delay: int | None = Field(None, alias="terminationDelay")
    native_lb: bool | None = Field(None, alias="nativeLB")
    unhonoured = frozenset({"weight", "proxy_protocol", "termination_delay"})


class TraefikRoute(_Spec):
    match: str
    services: list[TraefikService] = []
    priority: int | None = None
    middlewares: list[dict[str, Any]] = []
    syntax: str | None = None
    unhonoured = frozenset({"middlewares"})


class OptionRef(_Spec):
    name: str
    namespace: str | None = None


class Domain(_Spec):
    main: str
    sans: list[str] = []


class TraefikTls(_Spec):
    secret_name: str | None = Field(None, alias="secretName")
    options: OptionRef | None = None
    passthrough: bool = False
    cert_resolver: str | None = Field(None, alias="certResolver")
    domains: list[Domain] = []
    store: dict[str, Any] | None = None
    unhonoured = frozenset({"cert_resolver", "store"})


class IngressRouteTCPSpec(_Spec):
    routes: list[TraefikRoute] = Field(min_length=1)
    entry_points: list[str] = Field([], alias="entryPoints")
    tls: TraefikTls | None = None


class IngressRouteTCP(_Spec):
    api_version: str = Field(alias="apiVersion")
    kind: Literal["IngressRouteTCP"]
    metadata: Metadata
    spec: IngressRouteTCPSpec


class ClientAuth(_Spec):
    secret_names: list[str] = Field([], alias="secretNames")
    client_auth_type: Literal["NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                              "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"] = Field(
        "NoClientCert", alias="clientAuthType")


class TLSOptionSpec(_Spec):
    min_version: Literal["VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"] | None = Field(
        None, alias="minVersion")
    max_version: str | None = Field(None, alias="maxVersion")
    cipher_suites: list[str] = Field([], alias="cipherSuites")
    curve_preferences: list[str] = Field([], alias="curvePreferences")
    client_auth: ClientAuth | None = Field(None, alias="clientAuth")
    sni_strict: bool = Field(False, alias="sniStrict")
    alpn_protocols: list[str] = Field([], alias="alpnProtocols")
    prefer_server_cipher_suites: bool | None = Field(None, alias="preferServerCipherSuites")
    unhonoured = frozenset({"max_version", "cipher_suites", "curve_preferences", "alpn_protocols",
                            "prefer_server_cipher_suites"})


class TLSOption(_Spec):
    api_version: str = Field(alias="apiVersion")
    kind: Literal["TLSOption"]
    metadata: Metadata
    spec: TLSOptionSpec


_KINDS: dict[tuple[str, str], type[_Spec]] = {
    **{(f"{ISTIO_GROUP}/{v}", "Gateway"): Gateway for v in ISTIO_VERSIONS},
    **{(f"{ISTIO_GROUP}/{v}", "VirtualService"): VirtualService for v in ISTIO_VERSIONS},
    **{(f"{g}/v1alpha1", "IngressRouteTCP"): IngressRouteTCP for g in TRAEFIK_GROUPS},
    **{(f"{g}/v1alpha1", "TLSOption"): TLSOption for g in TRAEFIK_GROUPS},
}


@dataclass(frozen=True)
class EnvoyBootstrap:
    """A plain Envoy bootstrap (a mapping with static_resources): it has no metadata, so its file names it."""

    name: str
    document: dict[str, Any]


def _is_envoy_bootstrap(doc: Any) -> bool:
    return isinstance(doc, dict) and "static_resources" in doc and "apiVersion" not in doc and "kind" not in doc


@dataclass
class Manifests:
    """The resources read from a set of files, each with where it came from."""

    resources: list[tuple[str, _Spec | EnvoyBootstrap]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # documents of kinds the tool does not read

    def of(self, kind: type[_Spec] | type[EnvoyBootstrap]) -> list[tuple[str, Any]]:
        return [(where, r) for where, r in self.resources if isinstance(r, kind)]


def _where(path: Path, index: int, resource: dict[str, Any]) -> str:
    metadata = resource.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    what = f", {resource.get('kind')} {name}" if name else ""
    if _is_envoy_bootstrap(resource):
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
            if _is_envoy_bootstrap(doc):
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


# --- translation ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Translation:
    """One proxy resource as an environment: its components' options and what could not be reproduced."""

    resource: str  # "Gateway/name", "IngressRouteTCP/name" or "EnvoyBootstrap/<file stem>"
    proxy: dict[str, Any]
    server: dict[str, Any]
    server_names: tuple[str, ...]
    unhonoured: tuple[str, ...]
    sites: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(site, the names routed to it) when routes reach two or more destinations: one Orthanc each."""
    findings: tuple[Finding, ...] = ()
    """What the resource does that weakens or surprises (kept, not removed), with the probes that show it."""


def _bare_host(host: str) -> str:
    """Istio hosts may carry a namespace: "ns/host" or "./host"."""
    return host.split("/", 1)[1] if "/" in host else host


def _hosts_meet(a: str, b: str) -> bool:
    """Istio's host match, either way round: "*" matches every host, "*.x" every name under x."""
    if "*" in (a, b) or a == b:
        return True
    return any(w.startswith("*.") and n.endswith(w[1:]) for w, n in ((a, b), (b, a)))


def _sites(routes: list[tuple[tuple[str, ...], str]]) -> tuple[dict[str, str], tuple[tuple[str, tuple[str, ...]], ...]]:
    """Sites from (the names a route answers, its destination) in route order, when there are two or more
    destinations: {destination: site}, and each site with its names. A site reached only through "*" carries
    its destination's name, so a client can still ask for it by SNI; catch-all destinations come first, as the
    first site is the one a proxy's catch-all route and default certificate belong to."""
    destinations = list(dict.fromkeys(d for names, d in sorted(routes, key=lambda r: "*" not in r[0])))
    if len(destinations) < 2:
        return {}, ()
    site_of: dict[str, str] = {}
    sites = []
    for destination in destinations:
        base = re.sub(r"[^a-z0-9-]+", "-", destination.split(".")[0].lower()).strip("-") or "site"
        name, n = base, 1
        while name in site_of.values():
            n += 1
            name = f"{base}-{n}"
        site_of[destination] = name
        routed = [host for answered, d in routes if d == destination for host in answered if "*" not in host]
        sites.append((name, tuple(dict.fromkeys(routed)) or (destination,)))
    return site_of, tuple(sites)


def _binds(vs: VirtualService, gateway: Gateway) -> bool:
    name, namespace = gateway.metadata.name, gateway.metadata.namespace
    wanted = {name, f"{namespace}/{name}" if namespace else name}
    return bool(wanted & set(vs.spec.gateways)) or any(
        g.split("/")[-1] == name for g in vs.spec.gateways)


def _istio(where: str, gateway: Gateway, found: Manifests) -> Translation:
    notes = _unhonoured(gateway.spec, f"{where}: spec")
    tls_servers = [(i, s) for i, s in enumerate(gateway.spec.servers) if s.port.protocol.upper() == "TLS"]
    for i, s in enumerate(gateway.spec.servers):
        if s.port.protocol.upper() != "TLS":
            notes.append(f"{where}: spec.servers[{i}] protocol {s.port.protocol}: not reproduced (DICOM runs over TLS "
                         "servers only)")
    if not tls_servers:
        raise UsageError(f"{where}: spec.servers: no server with port.protocol TLS, so nothing carries DICOM")
    port = tls_servers[0][1].port.number
    services = [(w, vs) for w, vs in found.of(VirtualService) if _binds(vs, gateway)]
    for w, vs in services:
        notes += _unhonoured(vs.spec, f"{w}: spec")
    servers: list[dict[str, Any]] = []
    routes: list[tuple[tuple[str, ...], str]] = []  # (names, destination) per server, for sites
    for i, s in tls_servers:
        here = f"{where}: spec.servers[{i}]"
        if s.port.number != port:
            notes.append(f"{here} port {s.port.number}: not reproduced (one listener, the first TLS port {port})")
            continue
        tls = s.tls or IstioServerTls.model_validate({})
        if tls.mode in ("AUTO_PASSTHROUGH", "ISTIO_MUTUAL"):
            notes.append(f"{here}.tls.mode {tls.mode}: not reproduced (mesh-internal mode)")
            continue
        if tls.server_certificate or tls.credential_names:
            notes.append(f"{here}.tls: the server certificate is the generated PKI's, not the one named here")
        hosts = [_bare_host(h) for h in s.hosts]
        server: dict[str, Any] = {"hosts": hosts, "mode": tls.mode}
        if tls.min_protocol_version and tls.min_protocol_version != "TLS_AUTO":
            server["min_protocol_version"] = tls.min_protocol_version
        if tls.max_protocol_version and tls.max_protocol_version != "TLS_AUTO":
            server["max_protocol_version"] = tls.max_protocol_version
        if tls.cipher_suites:
            server["cipher_suites"] = tls.cipher_suites
        if tls.mode == "PASSTHROUGH":
            by_sni = _passthrough_routes(services, port)
            if not by_sni:
                raise UsageError(f"{here}: tls.mode PASSTHROUGH needs a VirtualService bound to gateway "
                                 f"{gateway.metadata.name} with tls[].match[].sniHosts for port {port}")
            # One filter chain per route, as Istio builds them, each to its own destination.
            for sni, destination in by_sni:
                servers.append({**server, "sni_hosts": list(sni)})
                routes.append((sni, destination))
            continue
        servers.append(server)
        routes.append((tuple(hosts), _tcp_destination(hosts, services, port) or ""))
    if not servers:
        raise UsageError(f"{where}: spec.servers: no server the tool can reproduce (see SIMPLE, MUTUAL, "
                         "OPTIONAL_MUTUAL, PASSTHROUGH)")
    if not services:
        notes.append(f"{where}: no VirtualService binds this Gateway: Istio would route nothing, the tool routes "
                     "to Orthanc")
    notes += [f"{w}: {n}" for w, vs in services for n in _extra_destinations(vs)]
    site_of, sites = _sites([route for route in routes if route[1]])
    for (answered, destination), server in zip(routes, servers):
        if destination in site_of:
            server["destination"] = site_of[destination]
        elif not destination and services:
            notes.append(f"{where}: no VirtualService tcp route matches hosts {', '.join(answered)}: Istio would "
                         "route nothing, the tool routes to the first site's Orthanc")
    names = [h for s in servers for h in [*s["hosts"], *s.get("sni_hosts", [])] if "*" not in h]
    passthrough = all(s["mode"] == "PASSTHROUGH" for s in servers)
    if not passthrough and any(s["mode"] == "PASSTHROUGH" for s in servers):
        raise UsageError(f"{where}: spec.servers mixes PASSTHROUGH with terminated TLS on port {port}: the tool "
                         "runs one Orthanc behind a gateway, so give each its own Gateway")
    return Translation(
        f"Gateway/{gateway.metadata.name}",
        {"kind": "istio-gateway", "servers": servers},
        {"kind": "orthanc", "tls": passthrough, **({"client_cert": "optional"} if passthrough else {})},
        tuple(dict.fromkeys(names)),
        tuple(notes),
        sites,
    )


def _tcp_destination(hosts: list[str], services: list[tuple[str, VirtualService]], port: int) -> str | None:
    """Where Istio sends a terminated server's connections: the first tcp route, on this port, of the first
    VirtualService whose hosts meet the server's."""
    for _, vs in services:
        if not any(_hosts_meet(h, v) for h in hosts for v in vs.spec.hosts or ["*"]):
            continue
        for route in vs.spec.tcp:
            if route.route and (not route.match or any(m.port in (None, port) for m in route.match)):
                return route.route[0].destination.host
    return None


def _passthrough_routes(services: list[tuple[str, VirtualService]], port: int) -> list[tuple[tuple[str, ...], str]]:
    """(sniHosts, destination) of each tls route on this port, in order: a PASSTHROUGH server's filter chains."""
    found: list[tuple[tuple[str, ...], str]] = []
    for _, vs in services:
        for route in vs.spec.tls:
            sni = tuple(dict.fromkeys(_bare_host(h) for m in route.match if m.port in (None, port)
                                      for h in m.sni_hosts))
            if sni and route.route and sni not in (earlier for earlier, _ in found):  # the first route wins
                found.append((sni, route.route[0].destination.host))
    return found


def _extra_destinations(vs: VirtualService) -> list[str]:
    """A route splitting traffic over several destinations: the tool sends it all to the first."""
    return [f"spec.{kind}[{i}].route: split over {len(route.route)} destinations; all of it goes to the first, "
            f"{route.route[0].destination.host}"
            for kind, routes in (("tcp", vs.spec.tcp), ("tls", vs.spec.tls))
            for i, route in enumerate(routes) if len(route.route) > 1]


_HOST_SNI = re.compile(r"HostSNI\(([^)]*)\)")
_CLIENT_AUTH = {"NoClientCert": "none", "VerifyClientCertIfGiven": "optional", "RequireAndVerifyClientCert": "required"}


def _traefik(where: str, route: IngressRouteTCP, found: Manifests) -> Translation:
    notes = _unhonoured(route.spec, f"{where}: spec")
    names: list[str] = []
    routes: list[tuple[tuple[str, ...], str]] = []  # (names, service) per route, for sites
    for i, r in enumerate(route.spec.routes):
        matched = _HOST_SNI.findall(r.match)
        rest = _HOST_SNI.sub("", r.match).replace("||", "").strip()
        if not matched:
            raise UsageError(f"{where}: spec.routes[{i}].match {r.match!r}: no HostSNI(...) matcher to reproduce")
        if rest:
            notes.append(f"{where}: spec.routes[{i}].match: only HostSNI is reproduced, not {rest!r}")
        answered = [n.strip().strip("`\"'") for m in matched for n in m.split(",")]
        names += answered
        if r.services:
            routes.append((tuple(answered), r.services[0].name))
        if len(r.services) > 1:
            notes.append(f"{where}: spec.routes[{i}].services: balanced over {len(r.services)} services; all of it "
                         f"goes to the first, {r.services[0].name}")
    tls = route.spec.tls
    if tls is None:
        raise UsageError(f"{where}: spec.tls: missing, so the route carries plain TCP, not DICOM TLS")
    options: dict[str, Any] = {"kind": "traefik", "sni": "any" if "*" in names else "named"}
    wanted = tls.options.name if tls.options else "default"
    chosen = [(w, o) for w, o in found.of(TLSOption) if o.metadata.name == wanted]
    if tls.options and not chosen:
        raise UsageError(f"{where}: spec.tls.options.name {wanted!r}: no TLSOption of that name in the manifests")
    if tls.passthrough:
        options["passthrough"] = True
        if chosen:
            notes.append(f"{chosen[0][0]}: not applied (the route passes TLS through to Orthanc)")
    elif chosen:
        w, option = chosen[0]
        notes += _unhonoured(option.spec, f"{w}: spec")
        options["sni_strict"] = option.spec.sni_strict
        if option.spec.min_version:
            options["min_version"] = f"{option.spec.min_version[-2]}.{option.spec.min_version[-1]}"
        auth = option.spec.client_auth.client_auth_type if option.spec.client_auth else "NoClientCert"
        if auth not in _CLIENT_AUTH:
            raise UsageError(f"{w}: spec.clientAuth.clientAuthType {auth}: the tool reproduces "
                             f"{', '.join(_CLIENT_AUTH)}")
        options["client_cert"] = _CLIENT_AUTH[auth]
    named = [n for n in [*names, *(d for dom in tls.domains for d in (dom.main, *dom.sans))] if "*" not in n]
    _, sites = _sites(routes)
    return Translation(
        f"IngressRouteTCP/{route.metadata.name}",
        options,
        {"kind": "orthanc", "tls": bool(tls.passthrough), **({"client_cert": "optional"} if tls.passthrough else {})},
        tuple(dict.fromkeys(named)),
        tuple(notes),
        sites,
    )


def _envoy_bootstrap(where: str, bootstrap: EnvoyBootstrap) -> Translation:
    """The user's own bootstrap runs, rewritten (components/envoy_bootstrap.py): what the rewrite removes or
    replaces is what is unhonoured. Chains routing to two or more clusters make sites, one per cluster."""
    doc = bootstrap.document
    try:
        notes = envoy_bootstrap.unhonoured(doc)
        passthrough = envoy_bootstrap.passes_through(doc)
        names = [n for n in envoy_bootstrap.server_names(doc) if "*" not in n]
        _, sites = _sites(envoy_bootstrap.routes(doc))
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return Translation(
        f"EnvoyBootstrap/{bootstrap.name}",
        {"kind": "envoy-bootstrap", "bootstrap": doc},
        {"kind": "orthanc", "tls": passthrough, **({"client_cert": "optional"} if passthrough else {})},
        tuple(dict.fromkeys(names)),
        tuple(f"{where}: {note}" for note in notes),
        sites,
    )


def translate(found: Manifests, resource: str | None = None) -> list[Translation]:
    """Every Gateway, IngressRouteTCP and Envoy bootstrap as an environment, or just ``resource`` ("Kind/name")."""
    translations = [*(_istio(w, g, found) for w, g in found.of(Gateway)),
                    *(_traefik(w, r, found) for w, r in found.of(IngressRouteTCP)),
                    *(_envoy_bootstrap(w, b) for w, b in found.of(EnvoyBootstrap))]
    translations = _distinct_sites(translations)
    if resource is not None:
        translations = [t for t in translations if t.resource == resource]
        if not translations:
            raise UsageError(f"manifests: no {resource} among them")
    translations = [replace(t, unhonoured=(*t.unhonoured, *found.skipped)) for t in translations]
    if not translations:
        raise UsageError("manifests: no Istio Gateway, Traefik IngressRouteTCP or Envoy bootstrap among them, so no "
                         "proxy to build")
    return translations


def _distinct_sites(translations: list[Translation]) -> list[Translation]:
    """A site keeps its names and its certificate across a scenario, so a Service that two resources reach by
    different names (a dev and a prod Gateway, say) becomes two sites: the later one numbered."""
    taken: dict[str, tuple[str, ...]] = {}
    result = []
    for t in translations:
        renamed: dict[str, str] = {}
        for name, names in t.sites:
            final, n = name, 1
            while taken.setdefault(final, names) != names:
                n += 1
                final = f"{name}-{n}"
            renamed[name] = final
        servers = [{**s, "destination": renamed[s["destination"]]} if s.get("destination") in renamed else s
                   for s in t.proxy.get("servers", [])]
        proxy = {**t.proxy, "servers": servers} if "servers" in t.proxy else t.proxy
        result.append(replace(t, proxy=proxy, sites=tuple((renamed[name], names) for name, names in t.sites)))
    return result


def server_names(translations: list[Translation]) -> list[str]:
    """The PKI's server names: every host the manifests name ("*" skipped), or a stand-in when none does."""
    names = list(dict.fromkeys(n for t in translations for n in t.server_names))
    return names or [FALLBACK_SERVER_NAME]
