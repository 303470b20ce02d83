"""A throwaway PKI for proving DICOM over TLS through proxies.

Besides the good server and client certificates it makes the bad ones a proxy
must refuse (untrusted issuer, expired, revoked, self-signed, wrong host name),
and the CRL that revokes one, so a passing matrix shows the proxies really
check, not only that they let traffic through.
Only `cryptography` is used, so generation behaves the same wherever the
package is installed, whatever openssl the host has.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dicomtls.errors import UsageError

Topology = Literal["one-level", "two-level"]
KeyType = Literal["rsa-2048", "rsa-4096", "ecdsa-p256"]

PKCS12_PASSWORD: str = "dicomtls"

# The mismatched server certificate names only this; .invalid can never resolve.
_WRONG_HOST = "wrong-host.invalid"
_FORMAT = 1
_RECORD = "pki.json"
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")

_PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_SITE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_KEY_USAGES = {"signing": "digital_signature", "digital signature": "digital_signature",
               "content commitment": "content_commitment", "key encipherment": "key_encipherment",
               "key agreement": "key_agreement", "data encipherment": "data_encipherment",
               "cert sign": "key_cert_sign", "crl sign": "crl_sign", "encipher only": "encipher_only",
               "decipher only": "decipher_only"}
_EXTENDED_USAGES = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE, "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH, "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION, "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING, "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}
USAGES: tuple[str, ...] = (*_KEY_USAGES, *_EXTENDED_USAGES)
"""cert-manager's usage names (``Certificate.spec.usages``), each a key usage bit or an extended key usage."""
DEFAULT_VALIDITY_HOURS = 365 * 24


@dataclass(frozen=True)
class Issued:
    """One certificate of the chain as its owner declared it (a cert-manager Certificate), made the way
    cert-manager makes it: the subject is the common name alone, the usages are cert-manager's (none given:
    digital signature and key encipherment; a CA adds cert sign), no path length, valid for its duration."""

    common_name: str | None
    """None: an empty subject, as cert-manager leaves a certificate with only dnsNames (its SANs go critical)."""
    key: KeyType = "rsa-2048"
    validity_hours: int = DEFAULT_VALIDITY_HOURS
    usages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "usages", tuple(self.usages))
        if self.key not in get_args(KeyType):
            raise UsageError(f"unknown key type {self.key!r}: use one of {', '.join(get_args(KeyType))}")
        if self.validity_hours < 1:
            raise UsageError(f"a certificate's validity must be at least an hour, not {self.validity_hours}h")
        for usage in self.usages:
            if usage not in USAGES:
                raise UsageError(f"unknown usage {usage!r}: use cert-manager's names ({', '.join(USAGES)})")
        if {"encipher only", "decipher only"} & set(self.usages) and "key agreement" not in self.usages:
            raise UsageError("usages encipher only and decipher only qualify key agreement: add it")


@dataclass(frozen=True)
class PkiSpec:
    """What the scenario needs from the PKI; its digest tells whether a directory can be reused."""

    topology: Topology = "one-level"
    key: KeyType = "rsa-2048"
    server_names: tuple[str, ...] = ("dicom.example.test",)
    # IP SANs only on request: Traefik picks a certificate by listener IP when one matches.
    ip_sans: tuple[str, ...] = ()
    client_name: str = "dicomtls-client"
    sites: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(site, its DNS names): one more server certificate per DICOM site behind one proxy."""
    cas: tuple[Issued, ...] = ()
    """The declared CAs, root first, one per topology level; empty: the tool's own ("dicomtls Test CA", a year)."""
    server: Issued | None = None
    """The declared server certificate (its names stay ``server_names``); None: the tool's own."""
    server_key: KeyType | None = None
    """The key of every server certificate (the server's, each site's, the mismatched one); None: ``key``. An
    ECDSA server key with RSA clients and CAs is what breaks clients that offer only RSA suites over TLS 1.2."""

    def __post_init__(self) -> None:
        # Callers building a spec from CLI or YAML often hand over lists.
        for field in ("server_names", "ip_sans"):
            value = getattr(self, field)
            if isinstance(value, str):
                raise UsageError(f"{field} must be a list of names, not the single string {value!r}: wrap it in a list")
            object.__setattr__(self, field, tuple(value))
        object.__setattr__(self, "sites", tuple((site, tuple(names)) for site, names in self.sites))
        object.__setattr__(self, "cas", tuple(self.cas))
        self._check_sites()
        if self.topology not in get_args(Topology):
            raise UsageError(f"unknown PKI topology {self.topology!r}: use one of {', '.join(get_args(Topology))}")
        if self.key not in get_args(KeyType):
            raise UsageError(f"unknown key type {self.key!r}: use one of {', '.join(get_args(KeyType))}")
        if not self.server_names:
            raise UsageError("the server certificate needs at least one DNS name: give server_names")
        for name in self.server_names:
            if _is_ip(name):
                raise UsageError(f"server name {name!r} is an IP address: put it in ip_sans instead")
            if not _is_dns_name(name):
                raise UsageError(
                    f"server name {name!r} is not a DNS name: use dot-separated labels of letters, digits and hyphens"
                )
            if name.lower() == _WRONG_HOST:
                raise UsageError(
                    f"server name {name!r} is reserved for the mismatched-host certificate: choose another name"
                )
        for ip in self.ip_sans:
            if not _is_ip(ip):
                raise UsageError(f"IP SAN {ip!r} is not an IP address: give addresses like 127.0.0.1 or ::1")
        if not self.client_name.strip():
            raise UsageError("client_name is empty: give the common name for client certificates")
        levels = 1 if self.topology == "one-level" else 2
        if self.cas and len(self.cas) != levels:
            raise UsageError(f"a {self.topology} PKI has {levels} CA(s), but {len(self.cas)} are declared: "
                             "declare one per level, root first")
        if any(not ca.common_name for ca in self.cas):
            raise UsageError("a declared CA needs a common name: certificates name their issuer by it")
        if self.server_key is not None and self.server_key not in get_args(KeyType):
            raise UsageError(f"unknown server key type {self.server_key!r}: use one of {', '.join(get_args(KeyType))}")
        if self.server_key is not None and self.server is not None:
            raise UsageError("server_key and a declared server certificate both set the server's key: give the key "
                             "in the declared certificate (pki.server.key)")

    @property
    def server_key_type(self) -> KeyType:
        """The key type of the server certificates."""
        return self.server_key or self.key

    def _check_sites(self) -> None:
        owner: dict[str, str] = {}
        seen: set[str] = set()
        for site, names in self.sites:
            if not _SITE_NAME.fullmatch(site):
                raise UsageError(f"site name {site!r} is not a file-safe name: use lower-case letters, digits and hyphens")
            if site in seen:
                raise UsageError(f"site {site!r} is named twice: give each site one entry")
            seen.add(site)
            if not names:
                raise UsageError(f"site {site!r} has no server names: give it the DNS names clients ask for")
            for name in names:
                if not _is_dns_name(name) or _is_ip(name):
                    raise UsageError(f"site {site!r}: server name {name!r} is not a DNS name: use dot-separated "
                                     "labels of letters, digits and hyphens")
                if name.lower() in owner:
                    raise UsageError(f"server name {name!r} belongs to sites {owner[name.lower()]!r} and {site!r}: "
                                     "a proxy can route a name to one site only")
                owner[name.lower()] = site

    def digest(self) -> str:
        """Short id that changes whenever any field does, for naming and comparing PKIs."""
        fields = asdict(self)
        for name in ("sites", "cas", "server", "server_key"):
            if not fields[name]:
                del fields[name]  # PKIs made before these fields existed keep their directories
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class ServerIdentity:
    """A server certificate, its chain up to (not including) the root, and its private key."""

    key: Path
    cert: Path
    fullchain: Path


@dataclass(frozen=True)
class PkiFiles:
    """Where each piece lives, so callers mount exactly what a process needs and nothing from private_dir."""

    directory: Path
    spec: PkiSpec
    ca_cert: Path
    ca_bundle: Path
    intermediate_cert: Path | None
    server_key: Path
    server_cert: Path
    server_fullchain: Path
    client_key: Path
    client_cert: Path
    client_fullchain: Path
    client_p12: Path
    truststore_p12: Path
    untrusted_client_key: Path
    untrusted_client_cert: Path
    expired_client_key: Path
    expired_client_cert: Path
    expired_client_fullchain: Path
    revoked_client_key: Path
    revoked_client_cert: Path
    revoked_client_fullchain: Path
    self_signed_client_key: Path
    self_signed_client_cert: Path
    other_client_key: Path
    """A key that belongs to no certificate: paired with the good client certificate, it is a key mismatch."""
    crl: Path
    """One CRL per CA of the chain (PEM, concatenated), the issuing CA's listing the revoked client: proxies that
    check every level (nginx, HAProxy, Envoy by default) need one for each."""
    mismatched_server_key: Path
    mismatched_server_cert: Path
    mismatched_server_fullchain: Path
    private_dir: Path
    sites: tuple[tuple[str, ServerIdentity], ...] = ()

    @property
    def server(self) -> ServerIdentity:
        return ServerIdentity(self.server_key, self.server_cert, self.server_fullchain)

    def site(self, name: str) -> ServerIdentity:
        """The server certificate of one DICOM site (``PkiSpec.sites``)."""
        found = dict(self.sites).get(name)
        if found is None:
            raise UsageError(f"the PKI in {self.directory} has no certificate for site {name!r}: "
                             "regenerate it with the scenario's sites")
        return found


def ensure_pki(spec: PkiSpec, out: Path, force: bool = False) -> PkiFiles:
    """Create the material under `out`, or reuse what is there.

    Reuse keeps certificates stable across runs (proxies and trust stores stay
    valid); a directory made for another spec is refused rather than silently
    replaced, because something else may still trust it.
    """
    files = _layout(Path(os.path.abspath(out)), spec)
    if files.directory.exists() and not files.directory.is_dir():
        raise UsageError(f"{files.directory} is a file, not a directory: choose another --out")
    if not force:
        try:
            recorded = _read_record(files.directory)
        except UsageError:
            recorded = None  # no record or a broken one: an interrupted run, start over
        if recorded is not None and recorded != spec:
            raise UsageError(
                f"PKI in {files.directory} was made for {_summary(recorded)}, not {_summary(spec)}: "
                "pass --force to replace it or choose another --out"
            )
        if recorded == spec and not _missing(files) and not _expiring(files):
            return files
    try:
        _generate(spec, files)
    except PermissionError as exc:
        raise UsageError(f"cannot write the PKI to {files.directory} ({exc.strerror}): choose another --out") from None
    return files


def load_pki(out: Path) -> PkiFiles:
    """Open a PKI made earlier, e.g. by another task, refusing one that a crash left half-written."""
    directory = Path(os.path.abspath(out))
    files = _layout(directory, _read_record(directory))
    missing = _missing(files)
    if missing:
        raise UsageError(
            f"PKI in {directory} is incomplete (missing {', '.join(missing)}): "
            "generate it again, which replaces an incomplete PKI"
        )
    return files


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_dns_name(name: str) -> bool:
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]  # a leading wildcard is fine for SANs
    return len(name) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels)


def _summary(spec: PkiSpec) -> str:
    names = ", ".join(spec.server_names + spec.ip_sans)
    cas = f"; CAs {' → '.join(str(ca.common_name) for ca in spec.cas)}" if spec.cas else ""
    server_key = f", server {spec.server_key}" if spec.server_key else ""
    return f"{spec.topology} {spec.key}{server_key} ({names}; client {spec.client_name}{cas}; spec {spec.digest()})"


def _layout(directory: Path, spec: PkiSpec) -> PkiFiles:
    private = directory / "ca-private"
    return PkiFiles(
        directory=directory,
        spec=spec,
        ca_cert=directory / "ca.crt",
        ca_bundle=directory / "ca-bundle.crt",
        intermediate_cert=directory / "intermediate.crt" if spec.topology == "two-level" else None,
        server_key=directory / "server.key",
        server_cert=directory / "server.crt",
        server_fullchain=directory / "server-fullchain.crt",
        client_key=directory / "client.key",
        client_cert=directory / "client.crt",
        client_fullchain=directory / "client-fullchain.crt",
        client_p12=directory / "client.p12",
        truststore_p12=directory / "truststore.p12",
        untrusted_client_key=directory / "untrusted-client.key",
        untrusted_client_cert=directory / "untrusted-client.crt",
        expired_client_key=directory / "expired-client.key",
        expired_client_cert=directory / "expired-client.crt",
        expired_client_fullchain=directory / "expired-client-fullchain.crt",
        revoked_client_key=directory / "revoked-client.key",
        revoked_client_cert=directory / "revoked-client.crt",
        revoked_client_fullchain=directory / "revoked-client-fullchain.crt",
        self_signed_client_key=directory / "self-signed-client.key",
        self_signed_client_cert=directory / "self-signed-client.crt",
        other_client_key=directory / "other-client.key",
        crl=directory / "ca.crl",
        mismatched_server_key=directory / "mismatched-server.key",
        mismatched_server_cert=directory / "mismatched-server.crt",
        mismatched_server_fullchain=directory / "mismatched-server-fullchain.crt",
        private_dir=private,
        sites=tuple(
            (site, ServerIdentity(directory / f"site-{site}.key", directory / f"site-{site}.crt",
                                  directory / f"site-{site}-fullchain.crt"))
            for site, _ in spec.sites
        ),
    )


def _material(files: PkiFiles) -> list[Path]:
    """Every file a complete PKI for files.spec has, pki.json excluded."""
    paths = [
        value
        for name, value in vars(files).items()
        if isinstance(value, Path) and name not in ("directory", "private_dir")
    ]
    paths += [path for _, identity in files.sites for path in (identity.key, identity.cert, identity.fullchain)]
    paths += [
        files.directory / "untrusted-ca.crt",
        files.private_dir / "root.key",
        files.private_dir / "untrusted-ca.key",
    ]
    if files.spec.topology == "two-level":
        paths.append(files.private_dir / "intermediate.key")
    return paths


def _missing(files: PkiFiles) -> list[str]:
    return [str(path.relative_to(files.directory)) for path in _material(files) if not path.is_file()]


def _expiring(files: PkiFiles) -> bool:
    """True if a good certificate expires within a day, so a reused PKI never fails a run by age.

    An unreadable certificate is an error, not a reason to regenerate: someone
    may have put it there, and replacing a CA silently breaks whoever trusts it.
    """
    soon = _now() + datetime.timedelta(days=1)
    good = [files.ca_cert, files.intermediate_cert, files.server_cert, files.client_cert,
            *(identity.cert for _, identity in files.sites)]
    for path in filter(None, good):
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            raise UsageError(
                f"{path} is not a readable PEM certificate: restore it, or regenerate the PKI "
                "(invoke matrix --force-pki, invoke pki --force)"
            ) from None
        if cert.not_valid_after_utc <= soon:
            return True
    return False


def _read_record(directory: Path) -> PkiSpec:
    record = directory / _RECORD
    if not record.is_file():
        raise UsageError(
            f"no PKI in {directory} ({_RECORD} is missing): create one first or point --out at an existing PKI"
        )
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        if data.get("format") != _FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {_FORMAT}")
        fields = data["spec"]
        return PkiSpec(
            topology=fields["topology"],
            key=fields["key"],
            server_names=tuple(fields["server_names"]),
            ip_sans=tuple(fields["ip_sans"]),
            client_name=fields["client_name"],
            sites=tuple((site, tuple(names)) for site, names in fields.get("sites", ())),
            cas=tuple(_issued(ca) for ca in fields.get("cas", ())),
            server=_issued(fields["server"]) if fields.get("server") else None,
            server_key=fields.get("server_key"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UsageError) as exc:
        raise UsageError(f"{record} is unreadable ({exc}): regenerate the PKI with --force") from None


def _issued(fields: dict[str, Any]) -> Issued:
    return Issued(fields["common_name"], fields["key"], fields["validity_hours"], tuple(fields["usages"]))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


@dataclass(frozen=True)
class _Issuer:
    cert: x509.Certificate
    key: _PrivateKey


def _new_key(key_type: KeyType) -> _PrivateKey:
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type.removeprefix("rsa-")))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dicomtls test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(
    *, digital_signature: bool = False, key_encipherment: bool = False, cert_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(
    subject: x509.Name,
    key: _PrivateKey,
    issuer: _Issuer | None,
    validity: tuple[datetime.datetime, datetime.datetime],
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """Sign `key`'s certificate with `issuer`, or self-sign when issuer is None."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        issuer_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
        )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign((issuer.key if issuer else key), hashes.SHA256())


def _ca(
    common_name: str,
    key_type: KeyType,
    issuer: _Issuer | None,
    path_length: int,
    validity: tuple[datetime.datetime, datetime.datetime],
) -> _Issuer:
    key = _new_key(key_type)
    cert = _certificate(
        _name(common_name),
        key,
        issuer,
        validity,
        [
            (x509.BasicConstraints(ca=True, path_length=path_length), True),
            (_key_usage(cert_sign=True), True),
        ],
    )
    return _Issuer(cert, key)


def _leaf(
    common_name: str,
    key_type: KeyType,
    issuer: _Issuer,
    validity: tuple[datetime.datetime, datetime.datetime],
    *,
    server: bool,
    dns_names: Iterable[str] = (),
    ip_sans: Iterable[str] = (),
) -> _Issuer:
    key = _new_key(key_type)
    extensions: list[tuple[x509.ExtensionType, bool]] = [(x509.BasicConstraints(ca=False, path_length=None), True)]
    if server:
        # TLS 1.2 RSA key exchange encrypts to the server key; ECDSA only ever signs.
        usage = _key_usage(digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPrivateKey))
        sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_sans]
        extensions += [
            (usage, True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.SubjectAlternativeName(sans), False),
        ]
    else:
        # A client key only signs the handshake (CertificateVerify).
        extensions += [
            (_key_usage(digital_signature=True), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        ]
    return _Issuer(_certificate(_name(common_name), key, issuer, validity, extensions), key)


def _self_signed_client(common_name: str, key_type: KeyType,
                        validity: tuple[datetime.datetime, datetime.datetime]) -> _Issuer:
    """A client certificate with the good client's name and usages, signed by its own key: no CA vouches for it."""
    key = _new_key(key_type)
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_key_usage(digital_signature=True), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
    ]
    return _Issuer(_certificate(_name(common_name), key, None, validity, extensions), key)


def _crl(ca: _Issuer, revoked: Sequence[x509.Certificate],
         validity: tuple[datetime.datetime, datetime.datetime]) -> x509.CertificateRevocationList:
    """The CA's CRL, revoking ``revoked`` (key compromise) since the start of ``validity``, next update at its end."""
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(validity[0])
        .next_update(validity[1])
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(validity[0])
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def _usage_extensions(usages: Sequence[str], is_ca: bool) -> list[tuple[x509.ExtensionType, bool]]:
    """cert-manager's BuildKeyUsages: no usages means digital signature and key encipherment, a CA adds cert
    sign; a certificate without key usage bits or extended usages has no such extension."""
    named = list(usages) or ["digital signature", "key encipherment"]
    bits = {_KEY_USAGES[u] for u in named if u in _KEY_USAGES} | ({"key_cert_sign"} if is_ca else set())
    extended = list(dict.fromkeys(_EXTENDED_USAGES[u] for u in named if u in _EXTENDED_USAGES))
    found: list[tuple[x509.ExtensionType, bool]] = []
    if bits:
        found.append((x509.KeyUsage(**{bit: bit in bits for bit in set(_KEY_USAGES.values())}), True))
    if extended:
        found.append((x509.ExtendedKeyUsage(extended), False))
    return found


def _declared(
    issued: Issued,
    issuer: _Issuer | None,
    now: datetime.datetime,
    *,
    is_ca: bool,
    dns_names: Iterable[str] = (),
    ip_sans: Iterable[str] = (),
) -> _Issuer:
    """A certificate as cert-manager issues it; ``issuer`` None: self-signed."""
    key = _new_key(issued.key)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issued.common_name)] if issued.common_name else [])
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_sans]
    extensions = [(x509.BasicConstraints(ca=is_ca, path_length=None), True), *_usage_extensions(issued.usages, is_ca)]
    if sans:
        extensions.append((x509.SubjectAlternativeName(sans), not issued.common_name))  # RFC 5280: critical if no subject
    # A day back for clock skew, like the tool's own; the end is the declared duration from now.
    validity = (now - datetime.timedelta(days=1), now + datetime.timedelta(hours=issued.validity_hours))
    return _Issuer(_certificate(subject, key, issuer, validity, extensions), key)


def _generate(spec: PkiSpec, files: PkiFiles) -> None:
    """Replace whatever is in files.directory with a fresh PKI; pki.json goes last so a crash leaves it incomplete."""
    now = _now()
    good = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=365))  # a day back for clock skew
    expired = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))

    intermediate = None
    if spec.cas:
        root = _declared(spec.cas[0], None, now, is_ca=True)
        if spec.topology == "two-level":
            intermediate = _declared(spec.cas[1], root, now, is_ca=True)
    elif spec.topology == "one-level":
        root = _ca("dicomtls Test CA", spec.key, None, 0, good)
    else:
        root = _ca("dicomtls Root CA", spec.key, None, 1, good)
        intermediate = _ca("dicomtls Intermediate CA", spec.key, root, 0, good)
    issuing = intermediate or root
    chain = [intermediate.cert] if intermediate else []
    untrusted_ca = _ca("dicomtls Untrusted CA", spec.key, None, 0, good)

    if spec.server:
        server = _declared(spec.server, issuing, now, is_ca=False, dns_names=spec.server_names, ip_sans=spec.ip_sans)
    else:
        server = _leaf(spec.server_names[0], spec.server_key_type, issuing, good, server=True,
                       dns_names=spec.server_names, ip_sans=spec.ip_sans)
    # Bad clients keep the good client's CN so the only difference a proxy can object to is the one under test.
    client = _leaf(spec.client_name, spec.key, issuing, good, server=False)
    untrusted_client = _leaf(spec.client_name, spec.key, untrusted_ca, good, server=False)
    expired_client = _leaf(spec.client_name, spec.key, issuing, expired, server=False)
    revoked_client = _leaf(spec.client_name, spec.key, issuing, good, server=False)
    self_signed_client = _self_signed_client(spec.client_name, spec.key, good)
    other_client_key = _new_key(spec.key)
    mismatched = _leaf(_WRONG_HOST, spec.server_key_type, issuing, good, server=True, dns_names=[_WRONG_HOST])
    # Each site's certificate names only that site, so which one a client got tells where the proxy sent it.
    sites = {site: _leaf(names[0], spec.server_key_type, issuing, good, server=True, dns_names=names)
             for site, names in spec.sites}

    _clear(files)
    files.directory.mkdir(parents=True, exist_ok=True)
    files.private_dir.mkdir(mode=0o700, exist_ok=True)
    files.private_dir.chmod(0o700)  # mkdir's mode is filtered by umask, and the dir may predate us

    _write_key(files.private_dir / "root.key", root.key)
    if intermediate and files.intermediate_cert:
        _write_key(files.private_dir / "intermediate.key", intermediate.key)
        _write_certs(files.intermediate_cert, [intermediate.cert])
    _write_key(files.private_dir / "untrusted-ca.key", untrusted_ca.key)
    _write_certs(files.directory / "untrusted-ca.crt", [untrusted_ca.cert])
    _write_certs(files.ca_cert, [root.cert])
    _write_certs(files.ca_bundle, [root.cert, *chain])

    for leaf, key_path, cert_path, fullchain_path in [
        (server, files.server_key, files.server_cert, files.server_fullchain),
        (client, files.client_key, files.client_cert, files.client_fullchain),
        (expired_client, files.expired_client_key, files.expired_client_cert, files.expired_client_fullchain),
        (revoked_client, files.revoked_client_key, files.revoked_client_cert, files.revoked_client_fullchain),
        (mismatched, files.mismatched_server_key, files.mismatched_server_cert, files.mismatched_server_fullchain),
        *((sites[site], identity.key, identity.cert, identity.fullchain) for site, identity in files.sites),
    ]:
        _write_key(key_path, leaf.key)
        _write_certs(cert_path, [leaf.cert])
        _write_certs(fullchain_path, [leaf.cert, *chain])
    _write_key(files.untrusted_client_key, untrusted_client.key)
    _write_certs(files.untrusted_client_cert, [untrusted_client.cert])
    _write_key(files.self_signed_client_key, self_signed_client.key)
    _write_certs(files.self_signed_client_cert, [self_signed_client.cert])
    _write_key(files.other_client_key, other_client_key)
    # Every CA level gets a CRL (a checker of the whole chain refuses a level without one); only the issuing
    # CA's lists a certificate.
    issuers = [root, *([intermediate] if intermediate else [])]
    crls = [_crl(ca, [revoked_client.cert] if ca is issuing else [], good) for ca in issuers]
    _write(files.crl, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in crls), 0o644)

    # The p12 holds a client key, so it gets a key file's mode.
    p12 = pkcs12.serialize_key_and_certificates(
        spec.client_name.encode(), client.key, client.cert, chain or None, _pkcs12_encryption()
    )
    _write(files.client_p12, p12, 0o600)
    anchors = [pkcs12.PKCS12Certificate(root.cert, b"dicomtls-root")]
    if intermediate:
        anchors.append(pkcs12.PKCS12Certificate(intermediate.cert, b"dicomtls-intermediate"))
    _write(files.truststore_p12, pkcs12.serialize_java_truststore(anchors, _pkcs12_encryption()), 0o644)

    _write_record(files)


def _pkcs12_encryption() -> serialization.KeySerializationEncryption:
    # Pinned rather than BestAvailableEncryption so the files stay readable by OpenSSL 3 and Java 11+
    # whatever a future cryptography release considers best.
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(PKCS12_PASSWORD.encode())
    )


def _clear(files: PkiFiles) -> None:
    """Remove everything a PKI of either topology may have left, record first, so a crash reads as incomplete."""
    (files.directory / _RECORD).unlink(missing_ok=True)
    two_level_only = [files.directory / "intermediate.crt", files.private_dir / "intermediate.key"]
    other_sites = list(files.directory.glob("site-*")) if files.directory.is_dir() else []
    for path in [*_material(files), *two_level_only, *other_sites, files.directory / f"{_RECORD}.tmp"]:
        path.unlink(missing_ok=True)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode` from the first byte: O_EXCL refuses to follow a planted symlink or reuse a file."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as handle:
        # The file is still empty and was created no looser than `mode`; this only undoes the umask.
        os.fchmod(handle.fileno(), mode)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _write_key(path: Path, key: _PrivateKey) -> None:
    # Unencrypted because proxies read these unattended.
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(path, pem, 0o600)


def _write_certs(path: Path, certs: Sequence[x509.Certificate]) -> None:
    _write(path, b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs), 0o644)


def _write_record(files: PkiFiles) -> None:
    record = {"format": _FORMAT, "digest": files.spec.digest(), "spec": asdict(files.spec)}
    temporary = files.directory / f"{_RECORD}.tmp"
    _write(temporary, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode(), 0o644)
    os.replace(temporary, files.directory / _RECORD)
    directory = os.open(files.directory, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)
