"""Traefik IngressRouteTCP + TLSOption (traefik.io and the v2 group traefik.containo.us), read into the options
of the traefik component."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from dicomtls.errors import UsageError
from dicomtls.manifests.spec import Manifests, Metadata, Spec, unhonoured_fields
from dicomtls.manifests.translation import Translation, sites_of

GROUPS = ("traefik.io", "traefik.containo.us")


class TraefikService(Spec):
    name: str
    port: int | str | None = None
    namespace: str | None = None
    weight: int | None = None
    proxy_protocol: dict[str, Any] | None = Field(None, alias="proxyProtocol")
    termination_delay: int | None = Field(None, alias="terminationDelay")
    native_lb: bool | None = Field(None, alias="nativeLB")
    unhonoured = frozenset({"weight", "proxy_protocol", "termination_delay"})


class TraefikRoute(Spec):
    match: str
    services: list[TraefikService] = []
    priority: int | None = None
    middlewares: list[dict[str, Any]] = []
    syntax: str | None = None
    unhonoured = frozenset({"middlewares"})


class OptionRef(Spec):
    name: str
    namespace: str | None = None


class Domain(Spec):
    main: str
    sans: list[str] = []


class TraefikTls(Spec):
    secret_name: str | None = Field(None, alias="secretName")
    options: OptionRef | None = None
    passthrough: bool = False
    cert_resolver: str | None = Field(None, alias="certResolver")
    domains: list[Domain] = []
    store: dict[str, Any] | None = None
    unhonoured = frozenset({"cert_resolver", "store"})


class IngressRouteTCPSpec(Spec):
    routes: list[TraefikRoute] = Field(min_length=1)
    entry_points: list[str] = Field([], alias="entryPoints")
    tls: TraefikTls | None = None


class IngressRouteTCP(Spec):
    api_version: str = Field(alias="apiVersion")
    kind: Literal["IngressRouteTCP"]
    metadata: Metadata
    spec: IngressRouteTCPSpec


class ClientAuth(Spec):
    secret_names: list[str] = Field([], alias="secretNames")
    client_auth_type: Literal["NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                              "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"] = Field(
        "NoClientCert", alias="clientAuthType")


class TLSOptionSpec(Spec):
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


class TLSOption(Spec):
    api_version: str = Field(alias="apiVersion")
    kind: Literal["TLSOption"]
    metadata: Metadata
    spec: TLSOptionSpec


_HOST_SNI = re.compile(r"HostSNI\(([^)]*)\)")
_CLIENT_AUTH = {"NoClientCert": "none", "VerifyClientCertIfGiven": "optional", "RequireAndVerifyClientCert": "required"}


def translate_route(where: str, route: IngressRouteTCP, found: Manifests) -> Translation:
    notes = unhonoured_fields(route.spec, f"{where}: spec")
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
        notes += unhonoured_fields(option.spec, f"{w}: spec")
        options["sni_strict"] = option.spec.sni_strict
        if option.spec.min_version:
            options["min_version"] = f"{option.spec.min_version[-2]}.{option.spec.min_version[-1]}"
        auth = option.spec.client_auth.client_auth_type if option.spec.client_auth else "NoClientCert"
        if auth not in _CLIENT_AUTH:
            raise UsageError(f"{w}: spec.clientAuth.clientAuthType {auth}: the tool reproduces "
                             f"{', '.join(_CLIENT_AUTH)}")
        options["client_cert"] = _CLIENT_AUTH[auth]
    named = [n for n in [*names, *(d for dom in tls.domains for d in (dom.main, *dom.sans))] if "*" not in n]
    _, sites = sites_of(routes)
    return Translation(
        f"IngressRouteTCP/{route.metadata.name}",
        options,
        {"kind": "orthanc", "tls": bool(tls.passthrough), **({"client_cert": "optional"} if tls.passthrough else {})},
        tuple(dict.fromkeys(named)),
        tuple(notes),
        sites,
    )
