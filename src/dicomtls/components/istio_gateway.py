"""Envoy configured the way Istio translates a Gateway, to reproduce an Istio ingress gateway on loopback.

Istio (pilot's gateway listener builder, 1.15-1.20) gives a TLS port one listener with a tls_inspector and one
filter chain per Gateway server that a VirtualService routes, matched on the server's hosts (none for "*", which
matches any SNI or none) and no default chain: a client whose SNI matches no chain is closed without a TLS alert,
and a port where no server has a route gets no listener at all. SIMPLE, MUTUAL and OPTIONAL_MUTUAL terminate TLS
with the certificate the credentialName secret holds (here the generated PKI's), offer ALPN h2 and http/1.1, and
keep only the cipherSuites Istio knows as OpenSSL names; PASSTHROUGH routes by the VirtualService's sniHosts to a
server that terminates TLS itself. The options usually come from the user's manifests (dicomtls.manifests); they
can also be written inline as ``servers:``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dicomtls.backends import EnvironmentFailed
from dicomtls.components import Launch, Options, Placement, SiteRoute, register, site_for_names
from dicomtls.components.envoy import Envoy, connection_log
from dicomtls.profiles import iana_name
from dicomtls.render import render

TlsVersion = Literal["TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]

ISTIO_CIPHER_SUITES = frozenset({
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA",
})
"""The OpenSSL names istiod lets through to Envoy (its security.ValidCipherSuites, 1.15-1.20)."""

ALPN = ("h2", "http/1.1")
"""What istiod offers on every SIMPLE/MUTUAL/OPTIONAL_MUTUAL gateway server: a DICOM client offers none (or
"dicom"), so Envoy negotiates no protocol and the handshake goes on."""


def istio_cipher_suites(names: tuple[str, ...] | list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(what reaches Envoy, what istiod drops): names outside its allow-list go silently, duplicates too; an
    empty result means no cipher list at all, so Envoy's defaults apply."""
    kept = tuple(dict.fromkeys(n for n in names if n in ISTIO_CIPHER_SUITES))
    dropped = tuple(dict.fromkeys(n for n in names if n not in ISTIO_CIPHER_SUITES))
    return kept, dropped


class GatewayServer(BaseModel):
    """One entry of a Gateway's spec.servers (a TLS port), with the VirtualService sniHosts for PASSTHROUGH."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hosts: tuple[str, ...] = Field(min_length=1)
    """The server's hosts ("*", a name, or "namespace/name"): the SNI its filter chain matches."""
    mode: Literal["SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL", "PASSTHROUGH"] = "SIMPLE"
    """tls.mode: MUTUAL requires a client certificate, OPTIONAL_MUTUAL verifies one if sent (Istio >= 1.19)."""
    sni_hosts: tuple[str, ...] = ()
    """PASSTHROUGH: the VirtualService tls[].match[].sniHosts that route to the server behind."""
    min_protocol_version: TlsVersion | None = None
    """tls.minProtocolVersion; default: Envoy's."""
    max_protocol_version: TlsVersion | None = None
    """tls.maxProtocolVersion; default: Envoy's."""
    cipher_suites: tuple[str, ...] = ()
    """As the Gateway names them: only Istio's OpenSSL names reach Envoy (istio_cipher_suites)."""
    routed: bool = True
    """False: no VirtualService tcp route matches this terminated server, so Istio builds no filter chain for it."""
    destination: str | None = None
    """The site its VirtualService routes to; default: the site whose names the hosts carry ("*": the first).
    Naming another site reproduces a VirtualService copied from one host to the next."""

    def server_names(self) -> tuple[str, ...]:
        """filter_chain_match.server_names: none when a "*" host matches every client; a terminated server's
        hosts without their namespace, deduplicated and sorted, as istiod's GetSNIHostsForServer gives them."""
        if self.mode == "PASSTHROUGH":
            return () if "*" in self.sni_hosts else self.sni_hosts
        names = tuple(sorted({h.split("/", 1)[-1] for h in self.hosts}))
        return () if "*" in names else names


    def chained(self) -> bool:
        """Does Istio build a filter chain for it (PASSTHROUGH: one per tls route, given as sni_hosts)?"""
        return self.mode == "PASSTHROUGH" or self.routed


class IstioGatewayOptions(Options):
    servers: tuple[GatewayServer, ...] = Field(min_length=1)
    """The Gateway's TLS servers on one port, usually read from manifests: one filter chain per routed server."""
    port: int | None = None
    """The Gateway's port.number, named when Istio builds no listener on it."""

    @model_validator(mode="after")
    def _one_upstream(self) -> "IstioGatewayOptions":
        passthrough = [s.mode == "PASSTHROUGH" for s in self.servers]
        if any(passthrough) and not all(passthrough):
            raise ValueError("servers mix PASSTHROUGH with terminated TLS: the Orthancs behind either all "
                             "terminate TLS or none does; split them into two environments")
        seen: dict[tuple[str, ...], int] = {}
        for index, server in enumerate(self.servers):
            if server.mode == "PASSTHROUGH" and not server.sni_hosts:
                raise ValueError(f"servers[{index}]: PASSTHROUGH routes by sni_hosts (a VirtualService's sniHosts)")
            if not server.chained():
                continue
            names = tuple(sorted(server.server_names()))
            if names in seen:
                raise ValueError(f"servers[{index}] matches the same SNI as servers[{seen[names]}]: Envoy rejects "
                                 "two identical filter chains; drop one")
            seen[names] = index
        return self


def site_for(server: GatewayServer, sites: tuple[SiteRoute, ...]) -> SiteRoute:
    """The site whose names a Gateway server's hosts carry (its credentialName is that site's certificate), else
    the first ("*")."""
    return site_for_names(server.server_names(), sites)


def destination_of(server: GatewayServer, sites: tuple[SiteRoute, ...]) -> SiteRoute:
    """Where a Gateway server's connections go: its ``destination`` (the VirtualService's), else its own site."""
    if server.destination is not None:
        return next(s for s in sites if s.name == server.destination)
    return site_for(server, sites)


@register
class IstioGateway(Envoy):
    kind = "istio-gateway"
    image_recipe = "envoy"
    options_model = IstioGatewayOptions
    listing_order = 20
    fix_options = {}  # the user's manifests are edited instead (dicomtls.fixes.istio)
    catch_all_route = 'Istio hosts: "*"'
    load_target = ("korthweb-istio", "istio-wildcard-simple")
    documented_models = (GatewayServer,)
    options: IstioGatewayOptions  # type: ignore[assignment]

    def launch(self, placement: Placement, executable: str) -> Launch:
        chained = [(index, server) for index, server in enumerate(self.options.servers) if server.chained()]
        if not chained:
            port = f"port {self.options.port}" if self.options.port is not None else "the Gateway's port"
            raise EnvironmentFailed(f"Istio builds no listener on {port}: no VirtualService tcp route matches its "
                                    "servers, so a client's connection is refused")
        config = render(
            "istio-gateway/envoy.yaml.j2",
            listen=placement.listen["dicom"],
            sites=placement.sites,
            access_log=connection_log(f"{placement.workdir}/access.log", placement.version),
            servers=[(index, server, istio_cipher_suites(server.cipher_suites)[0], site_for(server, placement.sites),
                      destination_of(server, placement.sites)) for index, server in chained],
            alpn=ALPN,
            trusted=placement.pki.ca_bundle,
        )
        return self.run_config(placement, executable, config)

    def terminates_tls(self) -> bool:
        return self.options.servers[0].mode != "PASSTHROUGH"

    @classmethod
    def cipher_setting(cls, suite: str) -> str:
        return ("the Gateway server's tls.cipherSuites, in OpenSSL names (istiod drops an IANA name such "
                f"as {iana_name(suite)} silently)")

    def sites_problem(self, sites: tuple[str, ...]) -> str | None:
        for index, server in enumerate(self.options.servers):
            if server.destination is not None and server.destination not in sites:
                where = f"servers[{index}] routes to site {server.destination!r}"
                return (f"{where}, which the environment does not have: use one of {', '.join(sites)}" if sites
                        else f"{where}: destination needs the environment's sites")
        return None
