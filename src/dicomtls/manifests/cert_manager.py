"""cert-manager Issuers, ClusterIssuers and Certificates (cert-manager.io/v1), read as the chain cert-manager
would issue: the run's PKI follows the Certificate whose secret a DICOM proxy serves.

cert-manager's semantics decide the chain, not the names: a ``selfSigned`` issuer makes each certificate sign
itself, so an ``isCA`` Certificate it issues is a root, whatever it is called; a ``ca`` issuer signs with the
key pair in its ``secretName``, which another Certificate makes. The leaf's names, key, lifetime and usages
are the server certificate's; the client certificate (which users sign by hand) comes from the same issuing CA.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dicomtls.errors import UsageError
from dicomtls.findings import Finding
from dicomtls.manifests.istio import Gateway, VirtualService
from dicomtls.manifests.spec import Manifests, Metadata, Spec, unhonoured_fields
from dicomtls.manifests.traefik import IngressRouteTCP
from dicomtls.manifests.translation import Translation
from dicomtls.pki import USAGES, Issued, KeyType

GROUP = "cert-manager.io"
API_VERSION = f"{GROUP}/v1"
DEFAULT_DURATION = "2160h"  # cert-manager's default: 90 days
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_INTERMEDIATE_WORDS = re.compile(r"(?:^|[-_. ])(int|inter|intermediate|sub|subca|subordinate|issuing)(?:$|[-_. ])",
                                 re.IGNORECASE)


class CAIssuer(Spec):
    secret_name: str = Field(alias="secretName")
    crl_distribution_points: list[str] = Field([], alias="crlDistributionPoints")
    ocsp_servers: list[str] = Field([], alias="ocspServers")
    issuing_certificate_urls: list[str] = Field([], alias="issuingCertificateURLs")
    unhonoured = frozenset({"crl_distribution_points", "ocsp_servers", "issuing_certificate_urls"})


class SelfSignedIssuer(Spec):
    crl_distribution_points: list[str] = Field([], alias="crlDistributionPoints")
    unhonoured = frozenset({"crl_distribution_points"})


class IssuerSpec(Spec):
    self_signed: SelfSignedIssuer | None = Field(None, alias="selfSigned")
    ca: CAIssuer | None = None
    acme: dict[str, Any] | None = None
    vault: dict[str, Any] | None = None
    venafi: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_type(self) -> "IssuerSpec":
        types = [name for name in ("selfSigned", "ca", "acme", "vault", "venafi")
                 if getattr(self, {"selfSigned": "self_signed"}.get(name, name)) is not None]
        if len(types) != 1:
            raise ValueError(f"an issuer has exactly one type (selfSigned, ca, acme, vault, venafi), this one "
                             f"{'has ' + ', '.join(types) if types else 'none'}")
        return self

    @property
    def type(self) -> str:
        return "selfSigned" if self.self_signed is not None else next(
            t for t in ("ca", "acme", "vault", "venafi") if getattr(self, t) is not None)


class Issuer(Spec):
    """An Issuer or a ClusterIssuer: the same spec, namespaced or not."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["Issuer", "ClusterIssuer"]
    metadata: Metadata
    spec: IssuerSpec


class IssuerRef(Spec):
    name: str
    kind: str = "Issuer"
    group: str = GROUP


class PrivateKey(Spec):
    algorithm: Literal["RSA", "ECDSA", "Ed25519"] = "RSA"
    size: int | None = None
    encoding: Literal["PKCS1", "PKCS8"] | None = None
    rotation_policy: Literal["Never", "Always"] | None = Field(None, alias="rotationPolicy")
    unhonoured = frozenset({"encoding", "rotation_policy"})

    @model_validator(mode="after")
    def _size_fits_algorithm(self) -> "PrivateKey":
        # cert-manager's webhook refuses these; the tool would only guess what was meant.
        if self.algorithm == "RSA" and self.size is not None and not 2048 <= self.size <= 8192:
            raise ValueError(f"RSA size {self.size}: cert-manager takes 2048 to 8192")
        if self.algorithm == "ECDSA" and self.size not in (None, 256, 384, 521):
            raise ValueError(f"ECDSA size {self.size}: cert-manager takes 256, 384 or 521")
        return self


class CertificateSpec(Spec):
    secret_name: str = Field(alias="secretName")
    issuer_ref: IssuerRef = Field(alias="issuerRef")
    is_ca: bool = Field(False, alias="isCA")
    common_name: str | None = Field(None, alias="commonName")
    dns_names: list[str] = Field([], alias="dnsNames")
    ip_addresses: list[str] = Field([], alias="ipAddresses")
    uris: list[str] = []
    email_addresses: list[str] = Field([], alias="emailAddresses")
    duration: str | None = None
    renew_before: str | None = Field(None, alias="renewBefore")
    renew_before_percentage: int | None = Field(None, alias="renewBeforePercentage")
    usages: list[str] = []
    private_key: PrivateKey | None = Field(None, alias="privateKey")
    subject: dict[str, Any] | None = None
    literal_subject: str | None = Field(None, alias="literalSubject")
    secret_template: dict[str, Any] | None = Field(None, alias="secretTemplate")
    keystores: dict[str, Any] | None = None
    revision_history_limit: int | None = Field(None, alias="revisionHistoryLimit")
    additional_output_formats: list[dict[str, Any]] = Field([], alias="additionalOutputFormats")
    name_constraints: dict[str, Any] | None = Field(None, alias="nameConstraints")
    encode_usages_in_request: bool | None = Field(None, alias="encodeUsagesInRequest")
    other_names: list[dict[str, Any]] = Field([], alias="otherNames")
    unhonoured = frozenset({"uris", "email_addresses", "renew_before", "renew_before_percentage", "subject",
                            "literal_subject", "secret_template", "keystores", "revision_history_limit",
                            "additional_output_formats", "name_constraints", "encode_usages_in_request",
                            "other_names"})

    @field_validator("usages")
    @classmethod
    def _known_usages(cls, value: list[str]) -> list[str]:
        for usage in value:
            if usage not in USAGES:
                raise ValueError(f"unknown usage {usage!r}: cert-manager's are {', '.join(USAGES)}")
        return value

    @field_validator("duration")
    @classmethod
    def _at_least_an_hour(cls, value: str | None) -> str | None:
        if value is not None and go_duration_hours(value) < 1:
            raise ValueError(f"{value!r}: cert-manager refuses durations under 1h")
        return value

    @model_validator(mode="after")
    def _names_something(self) -> "CertificateSpec":
        if not (self.common_name or self.dns_names or self.ip_addresses or self.uris or self.email_addresses
                or self.literal_subject or self.other_names):
            raise ValueError("a Certificate names at least one of commonName, dnsNames, ipAddresses, uris, "
                             "emailAddresses")
        return self


class Certificate(Spec):
    api_version: str = Field(alias="apiVersion")
    kind: Literal["Certificate"]
    metadata: Metadata
    spec: CertificateSpec


KINDS: dict[tuple[str, str], type[Spec]] = {
    (API_VERSION, "Issuer"): Issuer,
    (API_VERSION, "ClusterIssuer"): Issuer,
    (API_VERSION, "Certificate"): Certificate,
}


def go_duration_hours(text: str) -> float:
    """A Go duration ("2160h", "8760h0m0s", "90m") in hours; a ValueError names what is not one."""
    if not text or _GO_DURATION.sub("", text) != "":
        raise ValueError(f"{text!r} is not a duration: write it like 2160h or 8760h0m0s")
    return sum(float(n) * _SECONDS[unit] for n, unit in _GO_DURATION.findall(text)) / 3600


@dataclass(frozen=True)
class DeclaredPki:
    """What the cert-manager documents make of the run's PKI."""

    topology: Literal["one-level", "two-level"] | None = None
    """None: no DICOM proxy serves a secret a Certificate makes, so the tool's own PKI stays."""
    cas: tuple[Issued, ...] = ()
    server: Issued | None = None
    server_names: tuple[str, ...] = ()
    ip_sans: tuple[str, ...] = ()
    key: KeyType = "rsa-2048"
    """The leaf's key type, given to what the user makes by hand with the CA (client certificates)."""
    chosen_by: str | None = None
    """The proxy whose served secret the leaf is."""
    findings: tuple[Finding, ...] = ()
    unhonoured: tuple[str, ...] = ()
    others: dict[str, str] = field(default_factory=dict)
    """resource -> why its own secret is not the run's server certificate."""

    def config(self) -> dict[str, Any]:
        """The scenario's ``pki`` block that makes this PKI."""
        if self.topology is None or self.server is None:
            raise UsageError("the manifests declare no certificate a DICOM proxy serves")
        return {"topology": self.topology, "key": self.key, "server_names": list(self.server_names),
                "ip_sans": list(self.ip_sans), "cas": [_issued_config(ca) for ca in self.cas],
                "server": _issued_config(self.server)}

    def notes_for(self, resource: str) -> tuple[str, ...]:
        return (*self.unhonoured, *([self.others[resource]] if resource in self.others else []))


def _issued_config(issued: Issued) -> dict[str, Any]:
    return {"common_name": issued.common_name, "key": issued.key, "validity_hours": issued.validity_hours,
            "usages": list(issued.usages)}


def proxy_secrets(found: Manifests, resource: str) -> list[str]:
    """The secrets a DICOM proxy serves: a Gateway's TLS servers' credentialName, a route's tls.secretName."""
    kind, name = resource.split("/", 1)
    secrets: list[str] = []
    if kind == "Gateway":
        for _, gateway in found.of(Gateway):
            if gateway.metadata.name == name:
                secrets += [s.tls.credential_name for s in gateway.spec.servers
                            if s.port.protocol.upper() == "TLS" and s.tls and s.tls.credential_name]
    elif kind == "IngressRouteTCP":
        secrets += [r.spec.tls.secret_name for _, r in found.of(IngressRouteTCP)
                    if r.metadata.name == name and r.spec.tls and r.spec.tls.secret_name]
    return secrets


def declared_pki(found: Manifests, translations: list[Translation]) -> DeclaredPki | None:
    """The PKI the documents declare for these proxies; None when there are no cert-manager documents.

    One PKI serves a whole run, so it follows the first proxy (in file order) whose secret a Certificate makes,
    whichever resource an environment picks; a later proxy serving another Certificate's secret is told so in its
    environment's unhonoured list. Names match across namespaces (a kustomization often sets them), except that
    an Issuer signs only in its own namespace when both documents name one."""
    certificates = found.of(Certificate)
    issuers = found.of(Issuer)
    if not certificates and not issuers:
        return None
    by_secret: dict[str, tuple[str, Certificate]] = {}
    for where, cert in certificates:
        by_secret.setdefault(cert.spec.secret_name, (where, cert))
    chosen: tuple[str, str, Certificate] | None = None  # resource, where, leaf
    others: dict[str, str] = {}
    for t in translations:
        served = [s for s in proxy_secrets(found, t.resource) if s in by_secret]
        if not served:
            continue
        if chosen is None:
            chosen = (t.resource, *by_secret[served[0]])
        elif served[0] != chosen[2].spec.secret_name:
            where = by_secret[served[0]][0]
            others[t.resource] = (f"{where}: not reproduced: one PKI serves the run, and it follows Certificate "
                                  f"{chosen[2].metadata.name} ({chosen[0]}'s secret); to follow this one, give "
                                  f"{t.resource} a directory without the proxies before it")
    if chosen is None:
        notes = [f"{w}: not reproduced: no DICOM proxy serves its secret {c.spec.secret_name}" for w, c in certificates]
        notes += [f"{w}: not reproduced: it issues no certificate a DICOM proxy serves" for w, _ in issuers]
        return DeclaredPki(unhonoured=tuple(notes))
    resource, where, leaf = chosen
    return _resolve(found, resource, where, leaf, others)


def _resolve(found: Manifests, resource: str, leaf_where: str, leaf: Certificate,
             others: dict[str, str]) -> DeclaredPki:
    notes: list[str] = []
    findings: list[Finding] = []
    if leaf.spec.is_ca:
        notes.append(f"{leaf_where}: spec.isCA: the server certificate is made a leaf (a proxy serving a CA "
                     "certificate is not reproduced)")
    server_key, key_notes = _key(leaf, leaf_where)
    notes += key_notes
    names = tuple(leaf.spec.dns_names) or ((leaf.spec.common_name,) if leaf.spec.common_name else ())
    if not leaf.spec.dns_names:
        notes.append(f"{leaf_where}: spec.dnsNames: none, so the server certificate carries "
                     f"{names[0] if names else 'dicom.example.test'} as its DNS name")
        names = names or ("dicom.example.test",)
    server = Issued(leaf.spec.common_name, server_key, _hours(leaf, leaf_where, notes), tuple(leaf.spec.usages))
    cas: list[Issued] = []  # issuing CA first, then up to the root
    used: list[tuple[str, Certificate | Issuer]] = [(leaf_where, leaf)]
    chain = [(leaf_where, leaf.metadata.name)]
    root: Certificate | None = None  # the isCA Certificate a selfSigned issuer makes a root
    current_where, current = leaf_where, leaf
    while True:
        issuer_where, issuer = _issuer_of(found, current_where, current)
        fallback = ("the tool's own CA signs the server certificate" if current is leaf
                    else f"{current.metadata.name} is made a self-signed root")
        if issuer is None:
            ref = current.spec.issuer_ref
            notes.append(f"{current_where}: spec.issuerRef {ref.group} {ref.kind} {ref.name}: not reproduced (an "
                         f"external issuer): {fallback}")
            break
        used.append((issuer_where, issuer))
        kind = issuer.spec.type
        if kind == "selfSigned":
            if current is leaf:
                notes.append(f"{current_where}: issued by selfSigned {issuer.kind} {issuer.metadata.name}: a "
                             "self-signed server certificate is not reproduced, the tool's own CA signs it")
            else:
                root = current
            break
        if kind != "ca" or issuer.spec.ca is None:
            notes.append(f"{issuer_where}: spec.{kind}: not reproduced: {fallback}")
            break
        secret = issuer.spec.ca.secret_name
        made = [(w, c) for w, c in found.of(Certificate) if c.spec.secret_name == secret]
        if not made:
            notes.append(f"{issuer_where}: spec.ca.secretName {secret}: no Certificate makes it (a CA made by hand): "
                         f"the tool makes it as a self-signed root named {secret}")
            cas.append(Issued(secret, server_key))
            break
        ca_where, ca = made[0]
        if not ca.spec.is_ca:
            raise UsageError(f"{issuer_where}: spec.ca.secretName {secret}: {ca_where} makes it without isCA: true, "
                             "so cert-manager cannot sign with it: set isCA: true on that Certificate")
        if ca_where in [w for w, _ in chain]:
            loop = " → ".join([*(n for _, n in chain[[w for w, _ in chain].index(ca_where):]), ca.metadata.name])
            raise UsageError(f"{ca_where}: spec.issuerRef: the issuers form a cycle ({loop}): cert-manager never "
                             "issues any of them; end the chain at a selfSigned issuer")
        chain.append((ca_where, ca.metadata.name))
        used.append((ca_where, ca))
        key, key_notes = _key(ca, ca_where)
        notes += key_notes
        if ca.spec.dns_names or ca.spec.ip_addresses:
            notes.append(f"{ca_where}: spec.dnsNames/ipAddresses of a CA: not reproduced (a CA is named by its "
                         "commonName)")
        if not ca.spec.common_name:
            notes.append(f"{ca_where}: spec.commonName: none (cert-manager would leave the subject empty); the "
                         f"tool names the CA {ca.metadata.name}")
        cas.append(Issued(ca.spec.common_name or ca.metadata.name, key, _hours(ca, ca_where, notes),
                          tuple(ca.spec.usages)))
        current_where, current = ca_where, ca
    cas.reverse()  # root first
    if len(cas) > 2:
        raise UsageError(f"{leaf_where}: its chain has {len(cas)} CA levels "
                         f"({' → '.join(str(c.common_name) for c in cas)}): the tool reproduces one or two")
    if root is not None and _named_intermediate(root):
        levels = "one CA level" if len(cas) == 1 else "two CA levels"
        path = " → ".join([*(str(c.common_name) for c in cas), "the server certificate"])
        findings.append(Finding(f"{root.metadata.name} is a self-signed root, not an intermediate: the chain is "
                                f"{levels} ({path})", severity="low"))
    for where, doc in used:
        notes += unhonoured_fields(doc.spec, f"{where}: spec")
    ids = {id(doc) for _, doc in used}
    notes += [f"{w}: not reproduced: not in the chain of the certificate {resource} serves"
              for w, doc in [*found.of(Certificate), *found.of(Issuer)] if id(doc) not in ids]
    return DeclaredPki(
        topology="one-level" if len(cas) <= 1 else "two-level",
        cas=tuple(cas),
        server=server,
        server_names=_ordered(names, found, resource),
        ip_sans=tuple(leaf.spec.ip_addresses),
        key=server_key,
        chosen_by=resource,
        findings=tuple(findings),
        unhonoured=tuple(dict.fromkeys(notes)),
        others=others,
    )


def _issuer_of(found: Manifests, where: str, cert: Certificate) -> tuple[str, Issuer | None]:
    ref = cert.spec.issuer_ref
    if ref.group != GROUP:
        return where, None
    if ref.kind not in ("Issuer", "ClusterIssuer"):
        raise UsageError(f"{where}: spec.issuerRef.kind {ref.kind}: cert-manager's are Issuer and ClusterIssuer")
    for issuer_where, issuer in found.of(Issuer):
        if issuer.kind != ref.kind or issuer.metadata.name != ref.name:
            continue
        ns, own = issuer.metadata.namespace, cert.metadata.namespace
        if ref.kind == "Issuer" and ns and own and ns != own:
            continue  # an Issuer signs only in its own namespace
        return issuer_where, issuer
    raise UsageError(f"{where}: spec.issuerRef: no {ref.kind} named {ref.name} in the manifests: add it, or fix "
                     "issuerRef.name/kind")


def _key(cert: Certificate, where: str) -> tuple[KeyType, list[str]]:
    """cert-manager's key (RSA 2048 unless told) as one the tool makes; a key it does not make is replaced,
    and says so."""
    key = cert.spec.private_key or PrivateKey.model_validate({})
    if key.algorithm == "RSA" and (key.size or 2048) in (2048, 4096):
        return ("rsa-2048" if (key.size or 2048) == 2048 else "rsa-4096"), []
    if key.algorithm == "ECDSA" and (key.size or 256) == 256:
        return "ecdsa-p256", []
    size = f" {key.size}" if key.size else ""
    instead: KeyType = "ecdsa-p256" if key.algorithm != "RSA" else "rsa-4096"
    return instead, [f"{where}: spec.privateKey {key.algorithm}{size}: not reproduced (the tool makes RSA 2048/4096 "
                     f"and ECDSA 256), {instead} instead"]


def _hours(cert: Certificate, where: str, notes: list[str]) -> int:
    hours = go_duration_hours(cert.spec.duration or DEFAULT_DURATION)
    if hours != int(hours):
        notes.append(f"{where}: spec.duration {cert.spec.duration}: rounded up to {math.ceil(hours)}h")
    return math.ceil(hours)


def _named_intermediate(cert: Certificate) -> bool:
    """The names people give an intermediate CA ("int-ca", "intermediate", "sub-ca", "issuing-ca")."""
    return any(_INTERMEDIATE_WORDS.search(name) for name in
               (cert.metadata.name, cert.spec.common_name or "", cert.spec.secret_name))


def _ordered(names: tuple[str, ...], found: Manifests, resource: str) -> tuple[str, ...]:
    """The leaf's DNS names, those the proxy routes first and wildcards last: the first is the one clients send
    as the right SNI."""
    hosts = [h for h in _hosts(found, resource) if h != "*"]
    routed = {n for n in names if any(_meets(h, n) for h in hosts)}
    return tuple(sorted(names, key=lambda n: (bool(hosts) and n not in routed, n.startswith("*"))))


def _hosts(found: Manifests, resource: str) -> list[str]:
    kind, name = resource.split("/", 1)
    if kind == "Gateway":
        gateways = [g for _, g in found.of(Gateway) if g.metadata.name == name.split("/")[-1]]
        # A server of hosts "*" is asked for by the names of the VirtualService that routes DICOM through it.
        routing = [h for _, vs in found.of(VirtualService) if vs.spec.tcp
                   and any(ref.split("/")[-1] == name.split("/")[-1] for ref in vs.spec.gateways) for h in vs.spec.hosts]
        return [h.split("/", 1)[-1] for g in gateways for s in g.spec.servers if s.port.protocol.upper() == "TLS"
                for h in s.hosts] + [h.split("/", 1)[-1] for h in routing]
    if kind == "IngressRouteTCP":
        return [n.strip().strip("`\"'") for _, r in found.of(IngressRouteTCP) if r.metadata.name == name
                for route in r.spec.routes for m in re.findall(r"HostSNI\(([^)]*)\)", route.match)
                for n in m.split(",")]
    return []


def _meets(host: str, name: str) -> bool:
    if host == name:
        return True
    return any(w.startswith("*.") and n.endswith(w[1:]) for w, n in ((host, name), (name, host)))
