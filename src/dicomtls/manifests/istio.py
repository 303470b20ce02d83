"""Istio Gateway + VirtualService (networking.istio.io v1beta1 and v1), read as istiod translates them into the
Envoy that the istio-gateway component runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dicomtls.errors import UsageError
from dicomtls.manifests.spec import Manifests, Metadata, Spec, unhonoured_fields
from dicomtls.manifests.translation import Translation, sites_of

GROUP = "networking.istio.io"
VERSIONS = ("v1beta1", "v1")


class IstioPort(Spec):
    number: int
    protocol: str
    name: str | None = None
    target_port: int | None = Field(None, alias="targetPort")
    unhonoured = frozenset({"target_port"})


class IstioServerTls(Spec):
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


class IstioServer(Spec):
    port: IstioPort
    hosts: list[str] = Field(min_length=1)
    tls: IstioServerTls | None = None
    name: str | None = None
    bind: str | None = None
    default_endpoint: str | None = Field(None, alias="defaultEndpoint")
    unhonoured = frozenset({"bind", "default_endpoint"})


class GatewaySpec(Spec):
    servers: list[IstioServer] = Field(min_length=1)
    selector: dict[str, str] = {}


class Gateway(Spec):
    api_version: str = Field(alias="apiVersion")
    kind: Literal["Gateway"]
    metadata: Metadata
    spec: GatewaySpec


class L4Match(Spec):
    port: int | None = None
    sni_hosts: list[str] = Field([], alias="sniHosts")
    gateways: list[str] = []
    destination_subnets: list[str] = Field([], alias="destinationSubnets")
    source_labels: dict[str, str] = Field({}, alias="sourceLabels")
    source_namespace: str | None = Field(None, alias="sourceNamespace")
    unhonoured = frozenset({"destination_subnets", "source_labels", "source_namespace"})


class Destination(Spec):
    host: str
    subset: str | None = None
    port: dict[str, int] = {}
    unhonoured = frozenset({"subset"})


class RouteDestination(Spec):
    destination: Destination
    weight: int | None = None
    unhonoured = frozenset({"weight"})


class L4Route(Spec):
    match: list[L4Match] = []
    route: list[RouteDestination] = []


class VirtualServiceSpec(Spec):
    hosts: list[str] = []
    gateways: list[str] = []
    tls: list[L4Route] = []
    tcp: list[L4Route] = []
    http: list[dict[str, Any]] = []
    export_to: list[str] = Field([], alias="exportTo")
    unhonoured = frozenset({"http"})


class VirtualService(Spec):
    api_version: str = Field(alias="apiVersion")
    kind: Literal["VirtualService"]
    metadata: Metadata
    spec: VirtualServiceSpec


def _bare_host(host: str) -> str:
    """Istio hosts may carry a namespace: "ns/host" or "./host"."""
    return host.split("/", 1)[1] if "/" in host else host


def _hosts_meet(a: str, b: str) -> bool:
    """Istio's host match, either way round: "*" matches every host, "*.x" every name under x."""
    if "*" in (a, b) or a == b:
        return True
    return any(w.startswith("*.") and n.endswith(w[1:]) for w, n in ((a, b), (b, a)))


def _binds(vs: VirtualService, gateway: Gateway) -> bool:
    name, namespace = gateway.metadata.name, gateway.metadata.namespace
    wanted = {name, f"{namespace}/{name}" if namespace else name}
    return bool(wanted & set(vs.spec.gateways)) or any(
        g.split("/")[-1] == name for g in vs.spec.gateways)


def carries_tls(gateway: Gateway) -> bool:
    """A Gateway with no TLS server (a web Gateway: HTTPS/HTTP only) is no DICOM proxy: it becomes no environment."""
    return any(s.port.protocol.upper() == "TLS" for s in gateway.spec.servers)


def translate_gateway(where: str, gateway: Gateway, found: Manifests) -> Translation:
    notes = unhonoured_fields(gateway.spec, f"{where}: spec")
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
        notes += unhonoured_fields(vs.spec, f"{w}: spec")
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
    site_of, sites = sites_of([route for route in routes if route[1]])
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
