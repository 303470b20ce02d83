"""TLS profiles: what a DICOM client offers, and what DICOM PS3.15 Annex B asks of a server.

Client side: a probe's ``profile`` axis picks a :class:`ClientProfile`; each
client module (dicomtls.clients) says how it expresses one. Knowing what the client offered lets a failed
handshake say *what* did not match (the Envoy 1.23 regression: dcm4che's
``--tls-aes`` offers only AES128-SHA, which Envoy no longer accepts).

Server side: :data:`DICOM_PROFILES` lists the PS3.15 Annex B Secure Transport
Connection Profiles an endpoint scan is judged against, each as rules with the
section or RFC clause they come from. The texts are summaries, not quotations;
where the standard is open to reading, the rule says how it is read here.

- B.9 BCP 195 TLS Profile (retired in current editions): comply with BCP 195 as
  RFC 7525 — TLS 1.2 MUST be supported, SSL 2/3 MUST NOT, TLS 1.0/1.1 SHOULD NOT
  (so allowed: the profile may *downgrade*), no NULL/RC4/export/<112-bit suites,
  the ECDHE/DHE-RSA AES-GCM suites of RFC 7525 §4.2 recommended. dcmtk's
  ``+px`` adds TLS_RSA_WITH_AES_128_CBC_SHA for backward compatibility.
- B.10 Non-downgrading BCP 195 TLS Profile (retired): B.9 plus "shall not
  negotiate TLS 1.1 or TLS 1.0"; the four suites TLS_{ECDHE,DHE}_RSA_WITH_AES_
  {128_GCM_SHA256,256_GCM_SHA384} are its suites and "additional cipher suites
  of similar or greater cryptographic strength may be supported" — read here as
  forward secret and AEAD, so static-RSA CBC suites such as AES128-SHA fail it.
- B.11 Extended BCP 195 TLS Profile (retired): B.10 plus the ECDHE-ECDSA
  AES-GCM suites; DHE key length >= 2048 bits and ECDHE >= 256 bits (X25519
  counts as 256).
- B.12 BCP 195 RFC 8996, 9325 TLS Profile (current): servers and clients shall
  support TLS 1.2 and may support TLS 1.3, servers shall prefer TLS 1.3 when
  offered; RFC 8996: TLS 1.0/1.1 MUST NOT; RFC 9325 §4.1: NULL, RC4, <112-bit
  MUST NOT, static RSA key transport SHOULD NOT; §4.2: ECDHE AES-GCM suites
  recommended; §4.5: DH groups >= 2048 bits.
"""

from __future__ import annotations

import ssl
import warnings
from dataclasses import dataclass
from typing import Literal, get_args

from dicomtls import components

ProfileName = Literal[
    "default", "bcp195-nd", "bcp195", "bcp195-ex", "bcp195-rfc8996", "aes", "null",
    "dcm4che-tls-aes", "tls1.0-only", "tls1.1-only", "tls1.3-only", "dcm4che-tls-aes-jdk24",
]
PROFILE_NAMES: tuple[str, ...] = get_args(ProfileName)

TLS_VERSIONS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
PY_VERSIONS = {
    "TLS 1.0": ssl.TLSVersion.TLSv1, "TLS 1.1": ssl.TLSVersion.TLSv1_1,
    "TLS 1.2": ssl.TLSVersion.TLSv1_2, "TLS 1.3": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True)
class Offer:
    """What a client puts in its ClientHello: the versions it will speak and the suites (OpenSSL names)."""

    versions: tuple[str, ...]
    ciphers: tuple[str, ...]

    def describe(self) -> str:
        first, last = self.versions[0], self.versions[-1]
        span = first if first == last else f"{first}–{last.removeprefix('TLS ')}"
        return f"{span} with {', '.join(self.ciphers)}"


@dataclass(frozen=True)
class ClientProfile:
    """A profile as scenarios name it; how each client expresses it is that client's (dicomtls.clients)."""

    name: str
    description: str


PROFILES: dict[str, ClientProfile] = {p.name: p for p in (
    ClientProfile("default", "the client's own default"),
    ClientProfile("bcp195-nd", "Non-downgrading BCP 195"),
    ClientProfile("bcp195", "BCP 195, may downgrade to TLS 1.0 and AES128-SHA"),
    ClientProfile("bcp195-ex", "Extended BCP 195, TLS 1.2 only"),
    ClientProfile("bcp195-rfc8996", "BCP 195 RFC 8996/9325"),
    ClientProfile("aes", "retired AES profile: AES128-SHA (+3DES), up to TLS 1.2"),
    ClientProfile("null", "retired authentication-only profile: NULL-SHA, no encryption"),
    ClientProfile("dcm4che-tls-aes", "like dcm4che --tls12 --tls-aes: TLS 1.2, AES128-SHA and 3DES only"),
    ClientProfile("tls1.0-only", "TLS 1.0 only, as a very old client"),
    ClientProfile("tls1.1-only", "TLS 1.1 only, as an old client"),
    ClientProfile("tls1.3-only", "TLS 1.3 only, as a client that has dropped TLS 1.2"),
    ClientProfile("dcm4che-tls-aes-jdk24", "dcm4che --tls12 --tls-aes on JDK 24, which disables every TLS_RSA_* "
                  "suite: nothing is left to offer"),
)}


def python_offer(ctx: ssl.SSLContext) -> Offer:
    """What a Python context puts in its ClientHello, read back from OpenSSL rather than from the preset."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        low = ctx.minimum_version
        high = ctx.maximum_version
    by_py = {v: k for k, v in PY_VERSIONS.items()}
    low_name = by_py.get(low, "TLS 1.2")  # MINIMUM_SUPPORTED: OpenSSL 3 at level 1 starts at TLS 1.2
    high_name = by_py.get(high, "TLS 1.3")
    versions = tuple(v for v in TLS_VERSIONS if TLS_VERSIONS.index(low_name) <= TLS_VERSIONS.index(v)
                     <= TLS_VERSIONS.index(high_name))
    ciphers = []
    for c in ctx.get_ciphers():
        name, since = c["name"], c["protocol"]
        if "PSK" in name or "SRP" in name:
            continue  # OpenSSL sends these only with a PSK/SRP callback, which pynetdicom never sets
        if since == "TLSv1.3" and "TLS 1.3" not in versions:
            continue
        if since == "TLSv1.2" and high_name in ("TLS 1.0", "TLS 1.1"):
            continue
        if since != "TLSv1.3" and versions == ("TLS 1.3",):
            continue
        ciphers.append(name)
    return Offer(versions, tuple(ciphers))


# --- PS3.15 Annex B, server side -----------------------------------------------------------------

Check = Literal[
    "supports-tls12", "no-ssl", "no-tls10-11", "no-broken-suites", "no-weak-suites", "one-of-suites",
    "only-strong-suites", "kx-size", "prefers-tls13", "no-static-rsa", "server-key-size",
]


@dataclass(frozen=True)
class Rule:
    """One requirement: ``shall`` rules decide compliance, ``should`` rules are reported as warnings."""

    level: Literal["shall", "should"]
    check: Check
    source: str  # where it comes from: a PS3.15 section or an RFC clause
    text: str
    suites: tuple[str, ...] = ()  # for one-of-suites (IANA names)
    dhe_bits: int = 0  # for kx-size
    ecdhe_bits: int = 0

    @property
    def versions(self) -> tuple[str, ...]:
        """The TLS versions whose probes this rule reads: when one of them ended in an error rather than the
        server's answer, the rule cannot be judged from what was seen."""
        return _RULE_VERSIONS.get(self.check, TLS_VERSIONS)


_RULE_VERSIONS: dict[str, tuple[str, ...]] = {  # rules not listed read the suites of every version
    "supports-tls12": ("TLS 1.2",),
    "no-ssl": ("SSL 2.0", "SSL 3.0"),
    "no-tls10-11": ("TLS 1.0", "TLS 1.1"),
    "one-of-suites": ("TLS 1.2",),
    "prefers-tls13": (),  # read from the chains' handshakes; unknown already when there were none
    "server-key-size": (),  # read from the served certificate
}


@dataclass(frozen=True)
class DicomProfile:
    name: str  # the same name as the client profile that claims it
    section: str
    title: str
    rules: tuple[Rule, ...]


_GCM_RSA = ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384")
_GCM_ECDSA = ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")
_GCM_ECDHE = ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
              "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")

_BCP195_BASE = (
    Rule("shall", "supports-tls12", "RFC 7525 §3.1.1", "TLS 1.2 shall be supported"),
    Rule("shall", "no-ssl", "RFC 7525 §3.1.1", "SSL 2.0 and SSL 3.0 shall not be negotiated"),
    Rule("shall", "no-broken-suites", "RFC 7525 §4.1",
         "NULL, anonymous, export, RC4 and < 112-bit cipher suites shall not be negotiated"),
    Rule("should", "no-weak-suites", "RFC 7525 §4.1", "cipher suites below 128 bits (3DES) should not be negotiated"),
    Rule("should", "kx-size", "RFC 7525 §4.3", "DHE groups should have >= 2048 bits, ECDHE curves >= 192 bits",
         dhe_bits=2048, ecdhe_bits=192),
    Rule("should", "server-key-size", "RFC 7525 §4.3", "the server's RSA key should have >= 2048 bits"),
)
_NO_DOWNGRADE = Rule("shall", "no-tls10-11", "PS3.15 B.10", "TLS 1.0 and TLS 1.1 shall not be negotiated")
_STRONG_ONLY = Rule(
    "shall", "only-strong-suites", "PS3.15 B.10",
    "other suites only of similar or greater strength than the listed ones (read here: forward secret and AEAD)",
)

DICOM_PROFILES: tuple[DicomProfile, ...] = (
    DicomProfile("bcp195", "B.9", "BCP 195 TLS Profile", _BCP195_BASE + (
        Rule("should", "no-tls10-11", "RFC 7525 §3.1.1", "TLS 1.0 and TLS 1.1 should not be negotiated"),
        Rule("should", "one-of-suites", "RFC 7525 §4.2",
             "the recommended ECDHE/DHE AES-GCM suites should be supported", suites=_GCM_RSA + _GCM_ECDSA),
    )),
    DicomProfile("bcp195-nd", "B.10", "Non-downgrading BCP 195 TLS Profile", _BCP195_BASE + (
        _NO_DOWNGRADE,
        Rule("shall", "one-of-suites", "PS3.15 B.10",
             "the profile's TLS_{ECDHE,DHE}_RSA_WITH_AES_{128,256}_GCM suites shall be supported "
             "(their ECDSA twins for an ECDSA certificate)", suites=_GCM_RSA + _GCM_ECDSA),
        _STRONG_ONLY,
    )),
    DicomProfile("bcp195-ex", "B.11", "Extended BCP 195 TLS Profile", _BCP195_BASE + (
        Rule("shall", "no-tls10-11", "PS3.15 B.11", "TLS 1.0 and TLS 1.1 shall not be negotiated"),
        Rule("should", "one-of-suites", "PS3.15 B.11",
             "one or more of the ECDHE/DHE RSA and ECDHE-ECDSA AES-GCM suites should be supported",
             suites=_GCM_RSA + _GCM_ECDSA),
        Rule("shall", "only-strong-suites", "PS3.15 B.11", _STRONG_ONLY.text),
        Rule("shall", "kx-size", "PS3.15 B.11", "DHE key length shall be >= 2048 bits, ECDHE >= 256 bits",
             dhe_bits=2048, ecdhe_bits=256),
    )),
    DicomProfile("bcp195-rfc8996", "B.12", "BCP 195 RFC 8996, 9325 TLS Profile", (
        Rule("shall", "supports-tls12", "PS3.15 B.12", "servers shall support TLS 1.2"),
        Rule("shall", "prefers-tls13", "PS3.15 B.12", "servers shall prefer TLS 1.3 when the client offers it"),
        Rule("shall", "no-ssl", "RFC 8996 §2-3 / RFC 9325 §3.1.1", "SSL 2.0 and SSL 3.0 shall not be negotiated"),
        Rule("shall", "no-tls10-11", "RFC 8996 §2-3", "TLS 1.0 and TLS 1.1 shall not be negotiated"),
        Rule("shall", "no-broken-suites", "RFC 9325 §4.1",
             "NULL, anonymous, export, RC4 and < 112-bit cipher suites shall not be negotiated"),
        Rule("should", "no-weak-suites", "RFC 9325 §4.1", "cipher suites below 128 bits should not be negotiated"),
        Rule("should", "no-static-rsa", "RFC 9325 §4.1",
             "cipher suites with static RSA key transport should not be negotiated"),
        Rule("should", "one-of-suites", "RFC 9325 §4.2",
             "the recommended ECDHE AES-GCM suites should be supported", suites=_GCM_ECDHE),
        Rule("should", "kx-size", "RFC 9325 §4.5", "DHE groups should have >= 2048 bits",
             dhe_bits=2048, ecdhe_bits=0),
        Rule("should", "server-key-size", "RFC 9325 §4.5", "the server's RSA key should have >= 2048 bits"),
    )),
)


# --- explaining a mismatch ------------------------------------------------------------------------

Accepts = dict[str, tuple[str, ...]]  # TLS version -> suites the server accepted (OpenSSL names), from a scan


@dataclass(frozen=True)
class Mismatch:
    """What a no-shared-cipher or protocol-version failure adds to the diagnosis: both sides, and the fixes."""

    summary: str
    fix: str


_IANA = {"AES128-SHA": "TLS_RSA_WITH_AES_128_CBC_SHA", "AES256-SHA": "TLS_RSA_WITH_AES_256_CBC_SHA",
         "DES-CBC3-SHA": "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
         "AES256-GCM-SHA384": "TLS_RSA_WITH_AES_256_GCM_SHA384"}


def iana_name(suite: str) -> str:
    """The IANA name of an OpenSSL-named suite (itself when the table does not know it)."""
    return _IANA.get(suite, suite)


def cipher_setting(server_kind: str | None, suite: str) -> str:
    """Where ``suite`` goes in the configuration of the component that terminates TLS, in the names it takes: as
    that component says (``Component.cipher_setting``), else as the reference proxy does."""
    component = components.lookup(server_kind)
    said = component.cipher_setting(suite) if component is not None else None
    return said or _reference_proxy().cipher_setting(suite) or ""


def _reference_proxy() -> type[components.Component]:
    return components.component_class(components.REFERENCE_PROXY)


def explain_cipher_mismatch(offered: Offer | None, accepts: Accepts | None,
                            server_kind: str | None = None) -> Mismatch | None:
    """``server_kind``: the component that terminates TLS, so the fix names its own setting."""
    if offered is None:
        return None
    shared_versions = [v for v in offered.versions if accepts and v in accepts]
    server = sorted({c for v in shared_versions for c in accepts[v]}) if accepts else []  # type: ignore[index]
    client_legacy = [c for c in offered.ciphers if not c.startswith("TLS_")]
    server_side = (f"the server accepts {', '.join(server)} over {'/'.join(shared_versions)}" if server
                   else "the server's accepted suites are unknown (no scan)")
    ecdhe_gcm = [c for c in server if c.startswith("ECDHE-") and "GCM" in c] or ["ECDHE-RSA-AES128-GCM-SHA256"]
    from dicomtls.clients import advised

    # dcm4che is no client of dicomtls: its users are told the option that caused the Envoy 1.23 regression.
    client_fix = (f"make the client offer an ECDHE-GCM suite the server accepts such as {ecdhe_gcm[0]} "
                  f"({advised('default-profile')}; dcm4che: --tls12 without --tls-aes)")
    if ecdsa_only_server(server) and client_legacy and not any("ECDSA" in c for c in client_legacy):
        # No cipher list fixes this: an RSA suite needs an RSA certificate (Korthweb moved cert-manager to RSA for it).
        return Mismatch(
            f"ECDSA server certificate, the client offers only RSA suites: the client offered {offered.describe()}; "
            f"{server_side}",
            "give the server an RSA certificate (or an RSA one beside the ECDSA one), or make the client offer an "
            f"ECDHE-ECDSA suite or TLS 1.3 ({advised('default-profile')}; dcm4che: --tls12 without --tls-aes)")
    encrypted = [c for c in client_legacy if not c.startswith("NULL")]
    if not encrypted:  # a server should never take an unencrypted suite: only the client can move
        return Mismatch(f"the client offered {offered.describe()}; {server_side}", client_fix)
    add = encrypted[0]
    return Mismatch(
        f"the client offered {offered.describe()}; {server_side}",
        f"either add {add} to the server's cipher list ({cipher_setting(server_kind, add)}), or {client_fix}",
    )


def ecdsa_only_server(accepted: list[str]) -> bool:
    """The TLS <= 1.2 suites a server accepted all authenticate with ECDSA: its certificate has an ECDSA key."""
    legacy = [c for c in accepted if not c.startswith("TLS_")]
    return bool(legacy) and all("ECDSA" in c for c in legacy)


def explain_version_mismatch(offered: Offer | None, accepts: Accepts | None) -> Mismatch | None:
    if offered is None:
        return None
    server = [v for v in TLS_VERSIONS if accepts and v in accepts]
    server_side = f"the server accepts {', '.join(server)}" if server else "the server's versions are unknown (no scan)"
    lowest = server[0] if server else "TLS 1.2"
    return Mismatch(
        f"the client offered {', '.join(offered.versions)}; {server_side}",
        f"make the client speak {lowest} or newer, or lower the server's minimum to {offered.versions[-1]} "
        f"({_reference_proxy().protocol_setting}) — though PS3.15 B.10 and B.12 "
        "forbid TLS 1.0 and 1.1",
    )
