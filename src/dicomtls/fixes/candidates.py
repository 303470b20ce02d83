"""Fix candidates: what could make a failing cell pass, where the change goes, and what it costs in security.

A server-config candidate is one or more edits made together (``HostSNI(`*`)`` and a default certificate are
needed together for a client without SNI behind Traefik); a client-side candidate changes the probe, and is proven
against the unchanged environment. ``diagnose.EXPLANATIONS`` says the same fixes in words.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Literal

from dicomtls import components
from dicomtls.components import FixSetting
from dicomtls.clients import advised, client_class, listed
from dicomtls.reasons import Facts, Reason
from dicomtls.scenario import Probe

Kind = Literal["server-config", "client-side"]
Setting = FixSetting


class NotApplicable(Exception):
    """A candidate's edit has nothing to change in this configuration (the message says why)."""


@dataclass(frozen=True)
class Edit:
    """One setting of the server's configuration and the value it gets; each source kind knows where it lives."""

    setting: Setting
    value: str = ""


@dataclass(frozen=True)
class Candidate:
    id: str
    """Names the candidate in reports and its patch file (``<id>.patch``)."""
    kind: Kind
    change: str
    """What it changes, in words."""
    cost: str | None
    """What it costs in security; None when nothing is given up."""
    edits: tuple[Edit, ...] = ()
    """server-config: the settings changed together."""
    probe: tuple[tuple[str, str], ...] = ()
    """client-side: the probe fields changed, as (field, value)."""

    def changed_probe(self, probe: Probe) -> Probe:
        return replace(probe, **dict(self.probe))


def _is_forward_secret(suite: str) -> bool:
    return suite.startswith(("ECDHE-", "DHE-", "TLS_"))


def _suite_to_add(probe: Probe) -> str | None:
    """The first encrypting suite the cell's client offered (OpenSSL names), the one the server would add."""
    offered = client_class(probe.client).offered(probe.profile)
    ciphers = offered.ciphers if offered else ()
    return next((c for c in ciphers if not c.startswith(("NULL", "@", "TLS_"))), None)


def _highest_offered(probe: Probe) -> str | None:
    offered = client_class(probe.client).offered(probe.profile)
    return offered.versions[-1] if offered else None


@functools.cache
def _catch_all() -> Candidate:
    return Candidate(
        "catch-all-route", "server-config",
        f"give the proxy a catch-all route for clients without SNI ({', '.join(components.said('catch_all_route'))})",
        "a catch-all route accepts clients that send no SNI or any name, so routing by name no longer keeps them out",
        (Edit("catch-all-route"),))


@functools.cache
def _default_certificate() -> Candidate:
    return Candidate(
        "default-certificate", "server-config",
        "serve the server certificate to clients without SNI "
        f"({'; '.join(components.said('default_certificate_setting'))})",
        None, (Edit("default-certificate"),))


@functools.cache
def _both() -> Candidate:
    return Candidate(
        "catch-all-route+default-certificate", "server-config",
        "a catch-all route and the server certificate as the default one, together",
        _catch_all().cost, (Edit("catch-all-route"), Edit("default-certificate")))


_OPTIONAL_CERT = Candidate(
    "client-cert-optional", "server-config",
    "make the client certificate optional on the server (verified when sent)",
    "mutual authentication is dropped: a client without a certificate is accepted unauthenticated",
    (Edit("client-cert-optional"),))
_PROFILE = Candidate("client-default-profile", "client-side",
                     "make the client offer its own default profile (ECDHE-GCM suites, TLS 1.2 and 1.3)", None,
                     probe=(("profile", "default"),))


def _send_cert(probe: Probe) -> Candidate:
    """Send the valid client certificate, in the client's own words."""
    words = advised("send-client-cert", [client_class(probe.client)])
    return Candidate("client-sends-cert", "client-side",
                     f"send the client certificate{f' ({words})' if words else ''}", None,
                     probe=(("client_cert", "valid"),))


def _ignore(probe: Probe) -> Candidate:
    """Skip the server certificate's check, in the client's own words, as setups of the proxies that serve a
    fallback certificate document it."""
    client = client_class(probe.client)
    option = client.advice.get("skip-server-check", "")
    documented = " / ".join(c.display_name for c in components.listed() if c.log_words.fallback_certificate)
    return Candidate("client-ignores-server-cert", "client-side",
                     f"let {client.display_name} skip verifying the server certificate"
                     f"{f' ({option})' if option else ''}, the workaround {documented} setups document",
                     f"{option or 'skipping the check'} drops server authentication: the client talks to whoever "
                     "answers",
                     probe=(("server_cert_check", "ignore"),))


def _send_sni(probe: Probe, docker: bool) -> tuple[Candidate, str | None]:
    """Send SNI, in the client's own words (ClientKind.sni_fix): some clients only from a version that only the
    Docker backend runs."""
    kind = client_class(probe.client)
    words, changes, docker_only = kind.sni_fix()
    never = kind.sni_problem("default") if kind.sends_sni_from is None else None  # no version of it can
    return (Candidate("client-sends-sni", "client-side", words, None, probe=changes),
            never or (None if docker else docker_only))


@functools.cache
def sidecar_candidate() -> Candidate:
    """What hospitals deploy in front of modalities that speak no TLS or no SNI (the client that declares
    ``is_sidecar``); its config is offered as the patch."""
    wrapped = next(c for c in listed() if c.is_sidecar)
    return Candidate(
        "stunnel-sidecar", "client-side",
        f"put {wrapped.sidecar_program} in front of the client: plain DICOM in, TLS out with SNI, the client "
        "certificate and the "
        f"server's chain and name verified ({wrapped.display_name})", None,
        probe=(("client", wrapped.name), ("sni", "right"), ("server_cert_check", "verify")))


def _fallback_rejected(reason: Reason, facts: Facts) -> bool:
    """The client rejected the proxy's fallback certificate: served because of the client's SNI (or lack of one)."""
    return reason is Reason.TLS_UNKNOWN_CA and facts.fallback_certificate_rejected


def server_config(reason: Reason, facts: Facts, probe: Probe) -> list[Candidate]:
    """The server-config candidates for a cell that failed with ``reason`` (``facts``: what its diagnosis found)."""
    if reason is Reason.TLS_NO_SHARED_CIPHER and (suite := _suite_to_add(probe)):
        cost = None if _is_forward_secret(suite) else (
            f"{suite} is not forward secret: PS3.15 B.10 and B.11 no longer hold (their other suites must be forward "
            "secret and AEAD), and RFC 9325 §4.1 advises against static RSA key transport")
        return [Candidate(f"add-cipher-{suite.lower()}", "server-config",
                          f"accept {suite} next to the server's current suites", cost, (Edit("add-cipher", suite),))]
    if reason is Reason.TLS_PROTOCOL_VERSION and (version := _highest_offered(probe)):
        cost = ("TLS 1.0 and 1.1 are forbidden by PS3.15 B.10 and B.12 (RFC 8996)"
                if version in ("TLS 1.0", "TLS 1.1") else None)
        return [Candidate(f"min-version-{version.split()[-1]}", "server-config",
                          f"lower the server's minimum TLS version to {version}", cost,
                          (Edit("min-version", version.split()[-1]),))]
    if reason is Reason.TLS_CERT_REQUIRED:
        return [_OPTIONAL_CERT]
    if reason in (Reason.TLS_NO_MATCHING_SNI, Reason.TLS_FELL_TO_HTTPS):
        return [_catch_all()]
    if _fallback_rejected(reason, facts):
        return [_default_certificate(), _catch_all(), _both()]
    return []


def client_side(reason: Reason, facts: Facts, probe: Probe, docker: bool) -> list[tuple[Candidate, str | None]]:
    """The client-side candidates, each with why it cannot be tried here (None: it can)."""
    found: list[tuple[Candidate, str | None]] = []
    if reason in (Reason.TLS_NO_SHARED_CIPHER, Reason.TLS_PROTOCOL_VERSION) and probe.profile != "default":
        found.append((_PROFILE, None))
    if reason is Reason.TLS_CERT_REQUIRED and probe.client_cert == "none":
        found.append((_send_cert(probe), None))
    sni_failure = reason in (Reason.TLS_NO_MATCHING_SNI, Reason.TLS_FELL_TO_HTTPS) or _fallback_rejected(reason, facts)
    if sni_failure and probe.sni != "right":
        found.append(_send_sni(probe, docker))
    client = client_class(probe.client)
    if sni_failure and client.sidecar_can_wrap and probe.profile == "default" and probe.transport == "tls":
        found.append((sidecar_candidate(), None))
    if _fallback_rejected(reason, facts) and client.offers_ignore_fix \
            and probe.server_cert_check == "verify":
        found.append((_ignore(probe), None))
    return found
