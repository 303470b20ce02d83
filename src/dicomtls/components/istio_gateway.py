"""Envoy configured the way Istio translates a Gateway, to reproduce an Istio ingress gateway on loopback.

Istio gives a TLS port one listener with a tls_inspector and one filter chain per Gateway server, matched on
the server's hosts (none for "*", which matches any SNI or none) and no default chain: a client whose SNI
matches no chain is closed without a TLS alert. SIMPLE and MUTUAL terminate TLS with the certificate the
credentialName secret holds (here the generated PKI's); PASSTHROUGH routes by the VirtualService's sniHosts
to a server that terminates TLS itself. The options usually come from the user's manifests
(dicomtls.manifests); they can also be written inline as ``servers:``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dicomtls.components import Launch, Options, Placement, SiteRoute, register, site_for_names
from dicomtls.components.envoy import Envoy, connection_log
from dicomtls.render import render

TlsVersion = Literal["TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]


class GatewayServer(BaseModel):
    """One entry of a Gateway's spec.servers (a TLS port), with the VirtualService sniHosts for PASSTHROUGH."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hosts: tuple[str, ...] = Field(min_length=1)
    mode: Literal["SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL", "PASSTHROUGH"] = "SIMPLE"
    sni_hosts: tuple[str, ...] = ()
    """PASSTHROUGH: the VirtualService tls[].match[].sniHosts that route to the server behind."""
    min_protocol_version: TlsVersion | None = None
    max_protocol_version: TlsVersion | None = None
    cipher_suites: tuple[str, ...] = ()
    destination: str | None = None
    """The site its VirtualService routes to; default: the site whose names the hosts carry ("*": the first).
    Naming another site reproduces a VirtualService copied from one host to the next."""

    def server_names(self) -> tuple[str, ...]:
        """filter_chain_match.server_names: none when a "*" host matches every client."""
        names = self.sni_hosts if self.mode == "PASSTHROUGH" else self.hosts
        return () if "*" in names else names


class IstioGatewayOptions(Options):
    servers: tuple[GatewayServer, ...] = Field(min_length=1)

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
    options: IstioGatewayOptions  # type: ignore[assignment]

    def launch(self, placement: Placement, executable: str) -> Launch:
        config = render(
            "istio-gateway/envoy.yaml.j2",
            listen=placement.listen["dicom"],
            sites=placement.sites,
            access_log=connection_log(f"{placement.workdir}/access.log"),
            servers=[(server, site_for(server, placement.sites), destination_of(server, placement.sites))
                     for server in self.options.servers],
            trusted=placement.pki.ca_bundle,
        )
        return self.run_config(placement, executable, config)

    def terminates_tls(self) -> bool:
        return self.options.servers[0].mode != "PASSTHROUGH"

    def sites_problem(self, sites: tuple[str, ...]) -> str | None:
        for index, server in enumerate(self.options.servers):
            if server.destination is not None and server.destination not in sites:
                where = f"servers[{index}] routes to site {server.destination!r}"
                return (f"{where}, which the environment does not have: use one of {', '.join(sites)}" if sites
                        else f"{where}: destination needs the environment's sites")
        return None
