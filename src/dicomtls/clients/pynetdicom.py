"""pynetdicom in-process (the runner: dicomtls.probes.pynetdicom): what the rest of dicomtls asks of it.

pynetdicom itself is imported only when it runs (``build``, ``version``), so that reading a scenario loads no
client library."""

from __future__ import annotations

import importlib.metadata
import ssl
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicomtls.clients import ClientKind, Documented, EndpointRequest, ManifestProbes, register
from dicomtls.profiles import PROFILES, PY_VERSIONS, Offer

if TYPE_CHECKING:
    from dicomtls.probes import Client
    from dicomtls.probes.dcmtk import Dcmtk as DcmtkRunner
    from dicomtls.scenario import Probe


@dataclass(frozen=True)
class Preset:
    """How pynetdicom (Python's ssl) expresses a profile: a TLS version range and an OpenSSL cipher string
    (``None`` keeps Python's default)."""

    minimum: str
    maximum: str
    ciphers: str | None


_3DES = "DES-CBC3-SHA"
_BCP195_ND = ("ECDHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256",
              "ECDHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384")
_BCP195_EX = _BCP195_ND + ("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256")
_RFC9325 = ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384")

# OpenSSL 3's default security level (1) refuses TLS 1.0/1.1 (their handshake signs with SHA-1/MD5) and NULL
# suites; the legacy presets lower it with @SECLEVEL=0 on the client side only. Debian 12's OpenSSL has no 3DES
# at all, so DES-CBC3-SHA in a preset is asked for but never offered.
PRESETS: dict[str, Preset] = {
    "bcp195-nd": Preset("TLS 1.2", "TLS 1.3", ":".join(_BCP195_ND)),
    "bcp195": Preset("TLS 1.0", "TLS 1.3", ":".join((*_BCP195_ND, "AES128-SHA", _3DES)) + ":@SECLEVEL=0"),
    "bcp195-ex": Preset("TLS 1.2", "TLS 1.2", ":".join(_BCP195_EX)),
    "bcp195-rfc8996": Preset("TLS 1.2", "TLS 1.3", ":".join(_RFC9325)),
    "aes": Preset("TLS 1.0", "TLS 1.2", f"AES128-SHA:{_3DES}:@SECLEVEL=0"),
    "null": Preset("TLS 1.0", "TLS 1.2", "NULL-SHA:@SECLEVEL=0"),
    "dcm4che-tls-aes": Preset("TLS 1.2", "TLS 1.2", f"AES128-SHA:{_3DES}"),
    "tls1.0-only": Preset("TLS 1.0", "TLS 1.0", "DEFAULT:@SECLEVEL=0"),
    "tls1.1-only": Preset("TLS 1.1", "TLS 1.1", "DEFAULT:@SECLEVEL=0"),
    "tls1.3-only": Preset("TLS 1.3", "TLS 1.3", None),
    # JDK 24's jdk.tls.disabledAlgorithms adds TLS_RSA_*: dcm4che's --tls-aes list minus every RSA key transport
    # suite is empty, and Python's ssl, like JSSE, refuses to build a client that would offer nothing.
    "dcm4che-tls-aes-jdk24": Preset("TLS 1.2", "TLS 1.2", f"AES128-SHA:{_3DES}:!kRSA"),
}
"""Each profile pynetdicom can run -> its preset."""

ENDPOINT_PROFILES = ("dcm4che-tls-aes", "tls1.0-only", "bcp195-rfc8996")
"""The profiles pynetdicom runs against an endpoint (probe): dcm4che's offer, a very old client, the current one."""


def python_context(profile: str, cafile: str | None = None) -> ssl.SSLContext:
    """A client context with ``profile`` applied (certificates and hostname checks are the caller's)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    preset = PRESETS.get(profile)
    if preset is None:
        return ctx
    with warnings.catch_warnings():
        # ssl.TLSVersion.TLSv1/TLSv1_1 are deprecated: using them is the point of the legacy presets.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = PY_VERSIONS[preset.minimum]
        ctx.maximum_version = PY_VERSIONS[preset.maximum]
    if preset.ciphers:
        ctx.set_ciphers(preset.ciphers)
    return ctx


@register
class Pynetdicom(ClientKind):
    name = "pynetdicom"
    display_name = "pynetdicom"
    summary = "pynetdicom (can send SNI)"
    sends_mid_transfer = True
    asks_each_site = True
    reports_peer_alert = True
    # An expired client certificate with SNI, and dcm4che's --tls12 --tls-aes offer (the Envoy >= 1.23 regression).
    manifest_probes = (
        ManifestProbes(20, {"sni": ["none", "right", "wrong"], "client_cert": ["none", "valid"],
                            "operation": ["echo", "store-ct"]}),
        ManifestProbes(40, {"sni": "right", "client_cert": "expired"}),
        ManifestProbes(60, {"sni": "right", "profile": "dcm4che-tls-aes"}),
    )
    documented = (
        Documented(60, "storescu -c AET@HOST:PORT --tls12 --tls-aes",
                   "dcm4che's AES128-SHA-only offer, made here by pynetdicom",
                   {"sni": "right", "client_cert": "none", "operation": "echo", "profile": "dcm4che-tls-aes"}),
    )
    advice = {"send-sni": "server_hostname", "send-client-cert": "load_cert_chain on the SSLContext",
              "use-tls": "tls_args", "trust-ca": "cafile"}
    listing_order = 20

    @classmethod
    def profiles(cls) -> list[str]:
        return ["default", *(n for n in PROFILES if n in PRESETS)]

    @classmethod
    def unsupported(cls, profile: str) -> str | None:
        can = cls.profiles()
        return None if profile in can else f"pynetdicom has no preset {profile}: use one of {', '.join(can)}"

    @classmethod
    def offered(cls, profile: str) -> Offer | None:
        preset = PRESETS.get(profile)
        if preset is None:
            return None
        return Offer((preset.maximum,), tuple(preset.ciphers.split(":")) if preset.ciphers else ())

    @classmethod
    def sni_fix(cls) -> tuple[str, tuple[tuple[str, str], ...], str | None]:
        return "send SNI with the server's name (server_hostname)", (("sni", "right"),), None

    @classmethod
    def endpoint_probes(cls, request: EndpointRequest) -> tuple[list[Probe], list[Probe]]:
        from dicomtls.scenario import Probe

        snis = ["none", *(["right", "wrong"] if request.named else [])]
        best_sni = "right" if request.named else "none"
        base = [Probe(cls.name, sni, cert, op) for sni in snis for cert in request.certs for op in request.operations]
        return base, [Probe(cls.name, best_sni, request.best_cert, "echo", profile=p) for p in ENDPOINT_PROFILES]

    @classmethod
    def version(cls, dcmtk: DcmtkRunner | None) -> str | None:
        return importlib.metadata.version("pynetdicom")

    @classmethod
    def build(cls, dcmtk: DcmtkRunner) -> Client:
        from dicomtls.probes.pynetdicom import Pynetdicom as Runner

        return Runner()
