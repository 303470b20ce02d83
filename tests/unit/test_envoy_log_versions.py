"""The connection log every Envoy-based component renders names only command operators the Envoy being run knows:
Envoy refuses to start on an unknown one, which on the real images v1.22.5 to v1.25.0 was "envoy container exited"."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

from dicomtls.backends import EnvironmentPlan, RunningEnvironment
from dicomtls.backends.local import LocalBackend, pki_paths
from dicomtls.components import Address, Placement, component_class
from dicomtls.components.envoy import EnvoyOptions, connection_log_format
from dicomtls.diagnose import Reason, Symptoms, diagnose
from dicomtls.errors import UsageError
from tests.unit import placements

ROOT = Path(__file__).resolve().parents[2]

# The first Envoy release that knows each operator, from Envoy's own release notes and history (2026-12-01):
#   DOWNSTREAM_TRANSPORT_FAILURE_REASON  1.26.0  changelogs/1.26.0.yaml (new_features, access_log); envoy commit
#       07f78c92039028319c0240b582ba7c9233c29508 "access log: add downstream transport failure reason (#25322)",
#       2023-02-21, after v1.25.0 (2023-01-18) and before v1.26.0 (2023-04-17)
#   CONNECTION_TERMINATION_DETAILS       1.16.0  docs/root/version_history/v1.16.0.rst, New Features
#   DOWNSTREAM_TLS_VERSION, _TLS_CIPHER  1.11.0  v1.11.0.rst: "variables for ... the downstream TLS connection"
#   DOWNSTREAM_PEER_SUBJECT              1.10.0  v1.10.0.rst: "downstream x509 information (URI sans and subject)"
#   REQUESTED_SERVER_NAME                1.8.0   1.8.0 release notes: "added REQUESTED_SERVER_NAME for SNI"
#   DOWNSTREAM_REMOTE_ADDRESS            1.6.0   changelogs/1.6.0.yaml (March 20, 2018)
#   START_TIME, RESPONSE_FLAGS, UPSTREAM_HOST, BYTES_RECEIVED, BYTES_SENT: in Envoy's first default log format
FIRST_RELEASE = {
    "DOWNSTREAM_TRANSPORT_FAILURE_REASON": "1.26.0",
    "CONNECTION_TERMINATION_DETAILS": "1.16.0",
    "DOWNSTREAM_TLS_VERSION": "1.11.0",
    "DOWNSTREAM_TLS_CIPHER": "1.11.0",
    "DOWNSTREAM_PEER_SUBJECT": "1.10.0",
    "REQUESTED_SERVER_NAME": "1.8.0",
    "DOWNSTREAM_REMOTE_ADDRESS": "1.6.0",
    "START_TIME": "1.0.0",
    "RESPONSE_FLAGS": "1.0.0",
    "UPSTREAM_HOST": "1.0.0",
    "BYTES_RECEIVED": "1.0.0",
    "BYTES_SENT": "1.0.0",
}
# log_format.text_format_source: docs/root/version_history/v1.17.0.rst; envoy commit 43bf707f (PR #14276).
TEXT_FORMAT_SOURCE = "1.17.0"
UPSTREAM_IMAGES = ("1.22.5", "1.23.0", "1.24.0", "1.25.0")  # the regression job's and the bisect's
# What the connection log said before it depended on the version: the wheel's Envoy (1.36-1.40) still gets it.
NEWEST_FORMAT = (
    "[%START_TIME%] downstream=%DOWNSTREAM_REMOTE_ADDRESS% sni=%REQUESTED_SERVER_NAME% flags=%RESPONSE_FLAGS% "
    "details=%CONNECTION_TERMINATION_DETAILS% tls_failure=%DOWNSTREAM_TRANSPORT_FAILURE_REASON% "
    "tls_version=%DOWNSTREAM_TLS_VERSION% cipher=%DOWNSTREAM_TLS_CIPHER% peer=%DOWNSTREAM_PEER_SUBJECT% "
    "upstream=%UPSTREAM_HOST% rx=%BYTES_RECEIVED% tx=%BYTES_SENT%\n"
)


def placement(version: str | None, workdir: str = "/w") -> Placement:
    where = placements.placement(workdir, {"dicom": Address("127.0.0.1", 41104)}, ("dicom.korthweb.test",))
    return dataclasses.replace(where, version=version)


def log_formats(config: dict[str, Any]) -> list[str]:
    [listener] = config["static_resources"]["listeners"]
    assert "access_log" in listener
    return [log["typed_config"]["log_format"]["text_format_source"]["inline_string"] for log in listener["access_log"]]


def rendered(kind: str, options: dict[str, Any], version: str | None) -> list[str]:
    cls = component_class(kind)
    launch = cls(cls.options_model.model_validate(options)).launch(placement(version), "/usr/local/bin/envoy")
    return log_formats(yaml.safe_load(launch.files["envoy.yaml"]))


ENVOY_BASED = {
    "envoy": {},
    "istio-gateway": {"servers": [{"hosts": ["*"], "mode": "SIMPLE"}]},
    "envoy-bootstrap": {"bootstrap": yaml.safe_load(
        (ROOT / "tests" / "fixtures" / "manifests" / "orthweb-envoy" / "envoy.yaml").read_text())},
}


def operators(line: str) -> set[str]:
    return set(re.findall(r"%([A-Z_]+)%", line))


@pytest.mark.parametrize("kind", sorted(ENVOY_BASED))
@pytest.mark.parametrize("version", UPSTREAM_IMAGES)
def test_envoy_1_22_config_names_only_operators_it_knows(kind: str, version: str) -> None:
    [line] = rendered(kind, ENVOY_BASED[kind], version)
    named = operators(line)
    assert named and named <= set(FIRST_RELEASE), f"an operator this test has no first release for: {named}"
    too_new = {op for op in named if Version(FIRST_RELEASE[op]) > Version(version)}
    assert not too_new, f"envoy {version} does not know {too_new}"
    # Only what the release lacks is left out.
    assert named == {op for op, since in FIRST_RELEASE.items() if Version(since) <= Version(version)}


@pytest.mark.parametrize("kind", sorted(ENVOY_BASED))
@pytest.mark.parametrize("version", [None, "1.26.0", "1.36.2", "1.40.0", "unknown"])
def test_envoy_1_26_and_later_or_an_unknown_version_log_everything_as_before(kind: str, version: str | None) -> None:
    assert rendered(kind, ENVOY_BASED[kind], version) == [NEWEST_FORMAT]


def test_a_release_without_the_failure_reason_keeps_every_other_field_in_order() -> None:
    assert connection_log_format("1.25.0") == NEWEST_FORMAT.replace(
        "tls_failure=%DOWNSTREAM_TRANSPORT_FAILURE_REASON% ", "")


def test_an_envoy_older_than_text_format_source_is_a_usage_error_naming_the_oldest() -> None:
    assert connection_log_format(TEXT_FORMAT_SOURCE) == connection_log_format("1.25.0")
    with pytest.raises(UsageError, match=r"envoy 1\.16\.4 is older than 1\.17\.0"):
        component_class("envoy")(EnvoyOptions()).launch(placement("1.16.4"), "/usr/local/bin/envoy")


# A filter_chain_not_found line as Envoy 1.22.5-1.25.0 write it: the 1.40 line of test_diagnose without tls_failure.
ENVOY_1_22_NR = (
    "envoy:access.log: [2026-11-27T23:34:10.101Z] downstream=127.0.0.1:60112 sni=- flags=NR "
    "details=filter_chain_not_found tls_version=- cipher=- peer=- upstream=- rx=0 tx=0"
)
ENVOY_1_22_UF = (
    "envoy:access.log: [2026-11-27T23:34:11.204Z] downstream=127.0.0.1:60114 sni=dicom.korthweb.test flags=UF "
    "details=- tls_version=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256 peer=- upstream=127.0.0.1:41204 rx=0 tx=0"
)


def test_the_diagnosis_reads_a_1_22_line_without_tls_failure() -> None:
    no_chain = diagnose(Symptoms(client_lines=("EOF occurred in violation of protocol",),
                                 proxy_lines=(ENVOY_1_22_NR,), sent_sni=False))
    assert no_chain.reason is Reason.TLS_NO_MATCHING_SNI and f"proxy: {ENVOY_1_22_NR}" in no_chain.evidence
    unreachable = diagnose(Symptoms(client_lines=("Connection reset by peer",), proxy_lines=(ENVOY_1_22_UF,),
                                    sent_sni=True, dicom_stage="associate"))
    assert unreachable.reason is Reason.UPSTREAM_UNREACHABLE


class _Rendered(Exception):
    """Stops the start once the config is rendered: nothing runs."""


def test_the_local_backend_renders_for_the_version_it_checked_the_binary_against(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    envoy = tmp_path / "bin" / "envoy"  # answers --version in the format of Envoy's own binaries
    envoy.write_text("#!/bin/sh\necho 'envoy  version: 3c2a0d8e/1.25.0/Clean/RELEASE/BoringSSL'\n")
    envoy.chmod(0o755)
    formats: list[str] = []

    def launch(self: Any, where: Placement, executable: str) -> Any:
        formats.append(connection_log_format(where.version))
        raise _Rendered

    cls = component_class("envoy")
    monkeypatch.setattr(cls, "launch", launch)
    plan = EnvironmentPlan("key", "edge", (), None, placements.pki_layout(("dicom.korthweb.test",)))
    env = RunningEnvironment(plan=plan, entry=Address("127.0.0.1", 0), rest_urls={}, logs={}, workdir=tmp_path)
    with pytest.raises(_Rendered):
        LocalBackend(tmp_path, {"envoy": str(envoy)})._run(env, cls(EnvoyOptions(version="1.25.0")), "envoy",
                                                           pki_paths(plan), (), None, False)
    assert formats == [connection_log_format("1.25.0")] and "tls_failure" not in formats[0]


def test_the_regression_jobs_no_shared_cipher_is_named_from_the_client_without_tls_failure() -> None:
    # pynetdicom's words (a captured run, tests/fixtures/results_manifests_korthweb_gitops.json) beside a line in
    # the format Envoy 1.17-1.25 are given: no tls_failure= confirms them, and none is needed.
    line = ("envoy:access.log: [2026-11-27T23:34:12.307Z] downstream=127.0.0.1:60116 sni=- flags=- details=- "
            "tls_version=- cipher=- peer=- upstream=- rx=0 tx=0")
    diagnosis = diagnose(Symptoms(
        client_lines=("TCP Initialisation Error: [SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure "
                      "(_ssl.c:1006)",), proxy_lines=(line,)))
    assert diagnosis.reason is Reason.TLS_NO_SHARED_CIPHER
