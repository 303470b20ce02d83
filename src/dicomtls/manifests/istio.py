"""Istio Gateway + VirtualService (networking.istio.io v1beta1 and v1), read as istiod translates them into the
Envoy that the istio-gateway component runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dicomtls.components.istio_gateway import istio_cipher_suites
from dicomtls.errors import UsageError
from dicomtls.findings import Finding
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


def _names_gateway(gateways: list[str], gateway: Gateway) -> bool:
    """Does a list of gateway references ("name" or "namespace/name") name this Gateway?"""
    name, namespace = gateway.metadata.name, gateway.metadata.namespace
    wanted = {name, f"{namespace}/{name}" if namespace else name}
    return bool(wanted & set(gateways)) or any(g.split("/")[-1] == name for g in gateways)


def _binds(vs: VirtualService, gateway: Gateway) -> bool:
    return _names_gateway(vs.spec.gateways, gateway)


def _as_istio_host(host: str, namespace: str) -> str:
    """A server host as istiod compares them for duplicates: "host" is "*/host", "./host" the Gateway's namespace."""
    if "/" not in host:
        return f"*/{host}"
    scope, name = host.split("/", 1)
    return f"{namespace}/{name}" if scope == "." else host


DCM4CHE_AES = frozenset({"TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
                         "SSL_RSA_WITH_3DES_EDE_CBC_SHA"})
"""The Java names dcm4che's --tls-aes offers: a Gateway naming them means to let that client in."""


def _dropped_ciphers(here: str, kept: tuple[str, ...], dropped: tuple[str, ...]) -> Finding:
    text = (f"{here}.tls.cipherSuites {', '.join(dropped)} dropped by Istio: not an OpenSSL name it accepts; "
            + (f"Envoy gets only {', '.join(kept)}" if kept else "Envoy's defaults apply"))
    if DCM4CHE_AES & set(dropped):
        return Finding.of(text, severity="high", profile="dcm4che-tls-aes")  # the client those names were meant for
    return Finding(text, severity="low")


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
    asked_for: list[str] = []  # the names routed to servers of hosts "*", from their VirtualServices
    routes: list[tuple[tuple[str, ...], str]] = []  # (names, destination) per server, for sites
    findings: list[Finding] = []
    known: set[str] = set()  # the hosts earlier servers hold on the port, as istiod's merge keeps them
    for i, s in tls_servers:
        here = f"{where}: spec.servers[{i}]"
        if s.port.number != port:
            notes.append(f"{here} port {s.port.number}: not reproduced (one listener, the first TLS port {port})")
            continue
        tls = s.tls
        if tls is None:
            raise UsageError(f"{here}.tls: missing: a TLS server needs tls (mode, credentialName); istiod rejects "
                             "the Gateway without it")
        hosts_seen = [_as_istio_host(h, gateway.metadata.namespace or "default") for h in s.hosts]
        if taken := [h.split("/", 1)[1] for h in hosts_seen if h in known]:
            notes.append(f"{here}: hosts {', '.join(taken)} already on port {port} in an earlier server: skipped, "
                         "as Istio skips it")
            continue
        known.update(hosts_seen)
        if tls.mode in ("AUTO_PASSTHROUGH", "ISTIO_MUTUAL"):
            notes.append(f"{here}.tls.mode {tls.mode}: not reproduced (mesh-internal mode)")
            continue
        if tls.mode == "OPTIONAL_MUTUAL":
            findings.append(Finding(f"{here}.tls.mode OPTIONAL_MUTUAL: Istio has it only from 1.19 (a client "
                                    "certificate is checked when sent, not required); Istio 1.15-1.18 refuse it",
                                    severity="medium"))
        if tls.server_certificate or tls.credential_names:
            notes.append(f"{here}.tls: the server certificate is the generated PKI's, not the one named here")
        hosts = [_bare_host(h) for h in s.hosts]
        server: dict[str, Any] = {"hosts": hosts, "mode": tls.mode}
        if tls.min_protocol_version and tls.min_protocol_version != "TLS_AUTO":
            server["min_protocol_version"] = tls.min_protocol_version
        if tls.max_protocol_version and tls.max_protocol_version != "TLS_AUTO":
            server["max_protocol_version"] = tls.max_protocol_version
        if tls.cipher_suites:
            server["cipher_suites"] = tls.cipher_suites  # as written: the component keeps what istiod keeps
            kept, dropped = istio_cipher_suites(tls.cipher_suites)
            if dropped:
                findings.append(_dropped_ciphers(here, kept, dropped))
        if tls.mode == "PASSTHROUGH":
            by_sni = _passthrough_routes(services, port)
            if not by_sni:
                raise UsageError(f"{here}: tls.mode PASSTHROUGH needs a VirtualService bound to gateway "
                                 f"{gateway.metadata.name} with tls[].match[].sniHosts for port {port}")
            # One filter chain per route, as Istio builds them, each to its own destination.
            for sni, passed_to in by_sni:
                servers.append({**server, "sni_hosts": list(sni)})
                routes.append((sni, passed_to))
            continue
        destination, routing = _tcp_route(hosts, services, port, gateway)
        if destination is None:
            server["routed"] = False  # Istio builds no filter chain for it
        servers.append(server)
        routes.append((tuple(hosts), destination or ""))
        if "*" in hosts:  # clients name the VirtualService's hosts: the DICOM name, not the web one beside it
            asked_for += routing
    if not servers:
        raise UsageError(f"{where}: spec.servers: no server the tool can reproduce (see SIMPLE, MUTUAL, "
                         "OPTIONAL_MUTUAL, PASSTHROUGH)")
    findings += _unrouted(where, gateway, servers, services, port)
    notes += [f"{w}: {n}" for w, vs in services for n in _extra_destinations(vs)]
    site_of, sites = sites_of([route for route in routes if route[1]])
    for (_, destination), server in zip(routes, servers):
        if destination in site_of:
            server["destination"] = site_of[destination]
    names = [h for s in servers for h in [*s["hosts"], *s.get("sni_hosts", [])] if "*" not in h]
    names += [h for h in asked_for if "*" not in h]
    passthrough = all(s["mode"] == "PASSTHROUGH" for s in servers)
    if not passthrough and any(s["mode"] == "PASSTHROUGH" for s in servers):
        raise UsageError(f"{where}: spec.servers mixes PASSTHROUGH with terminated TLS on port {port}: the tool "
                         "runs one Orthanc behind a gateway, so give each its own Gateway")
    return Translation(
        f"Gateway/{gateway.metadata.name}",
        {"kind": "istio-gateway", "servers": servers, "port": port},
        {"kind": "orthanc", "tls": passthrough, **({"client_cert": "optional"} if passthrough else {})},
        tuple(dict.fromkeys(names)),
        tuple(notes),
        sites,
        tuple(findings),
    )


def _tcp_route(hosts: list[str], services: list[tuple[str, VirtualService]], port: int,
               gateway: Gateway) -> tuple[str | None, list[str]]:
    """Where Istio sends a terminated server's connections: the first tcp route whose match (port, gateways)
    takes it, of the first VirtualService whose hosts meet the server's; None: Istio builds no chain for it.
    Also that VirtualService's hosts, the names clients use for a server of hosts "*"."""
    for _, vs in services:
        if not any(_hosts_meet(h, v) for h in hosts for v in vs.spec.hosts or ["*"]):
            continue
        for route in vs.spec.tcp:
            if route.route and (not route.match or any(
                    m.port in (None, port) and (not m.gateways or _names_gateway(m.gateways, gateway))
                    for m in route.match)):
                return route.route[0].destination.host, [_bare_host(h) for h in vs.spec.hosts]
    return None, []


def _unrouted(where: str, gateway: Gateway, servers: list[dict[str, Any]],
              services: list[tuple[str, VirtualService]], port: int) -> list[Finding]:
    """Terminated servers no tcp route takes: no filter chain each, and no listener when none has a route."""
    unrouted = [s for s in servers if s.get("routed") is False]
    if len(unrouted) < len(servers):
        return [Finding(f"{where}: hosts {', '.join(s['hosts'])}: no VirtualService tcp route matches them on port "
                        f"{port}, so Istio builds no filter chain for them: a client asking for them is closed "
                        "without a TLS alert", severity="high") for s in unrouted]
    bound = ", ".join(f"VirtualService/{vs.metadata.name}" for _, vs in services)
    why = (f"{bound} bind it, but no tcp route of theirs matches its servers' hosts on port {port}" if services
           else f"no VirtualService binds gateway {gateway.metadata.name}")
    return [Finding(f"{where}: Istio builds no listener on port {port}: {why}", severity="critical")]


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
