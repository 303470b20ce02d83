"""Faults on the path, classified from what real clients said and what the real proxies logged.

tests/fixtures/captured_faults.json holds the client's lines and the proxy's (and Orthanc's) lines for one
connection, captured on loopback and in Docker from Envoy, the Istio-like gateway, Traefik, nginx and HAProxy
while `scenarios/faults.yaml` stopped or killed Orthanc or the proxy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dicomtls.diagnose import Reason, Symptoms, diagnose

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured_faults.json"
PROXIES = {"envoy", "istio-gateway", "traefik", "nginx", "haproxy"}


def _captured() -> list[dict[str, Any]]:
    return json.loads(CAPTURED.read_text())


def _symptoms(item: dict[str, Any]) -> Symptoms:
    return Symptoms(**{k: tuple(v) if isinstance(v, list) else v for k, v in item["symptoms"].items()})


def test_fixture_covers_every_proxy_for_both_new_reasons() -> None:
    seen = {(i["proxy"], i["expected_reason"]) for i in _captured()}
    for proxy in PROXIES:
        assert (proxy, "upstream-unreachable") in seen and (proxy, "connection-lost") in seen, proxy


@pytest.mark.parametrize("item", _captured(), ids=lambda i: f"{i['proxy']}-{i['backend']}-{i['fault']}-{i['client']}")
def test_captured_fault_is_named_from_the_proxy_and_client_lines(item: dict[str, Any]) -> None:
    diagnosis = diagnose(_symptoms(item))
    assert diagnosis.reason is Reason(item["expected_reason"])
    assert any(e.startswith("client: ") for e in diagnosis.evidence)


@pytest.mark.parametrize("item", [i for i in _captured() if i["expected_reason"] == "upstream-unreachable"],
                         ids=lambda i: f"{i['proxy']}-{i['backend']}-{i['client']}")
def test_upstream_unreachable_quotes_the_proxy_line_that_says_so(item: dict[str, Any]) -> None:
    proxy_evidence = [e for e in diagnose(_symptoms(item)).evidence if e.startswith("proxy: ")]
    assert proxy_evidence and proxy_evidence[0].startswith(f"proxy: {item['proxy']}")
    assert any(word in proxy_evidence[0] for word in ("UF", "dialing backend", "connect() failed", "/-1/"))


def test_the_same_client_words_without_the_proxy_line_are_no_upstream_failure() -> None:
    # Envoy's UF line is what tells a dead upstream from a handshake the proxy cut: without it, no guess.
    item = next(i for i in _captured() if i["proxy"] == "envoy" and i["fault"] == "upstream-down")
    bare = Symptoms(client_lines=tuple(item["symptoms"]["client_lines"]), dicom_stage="connect")
    assert diagnose(bare).reason is not Reason.UPSTREAM_UNREACHABLE


def test_connection_lost_quotes_the_proxy_line_of_the_broken_upstream() -> None:
    item = next(i for i in _captured() if i["proxy"] == "nginx" and i["fault"] == "upstream-restart")
    evidence = diagnose(_symptoms(item)).evidence
    assert any("Connection reset by peer) while proxying and reading from upstream" in e for e in evidence)


def test_haproxy_server_abort_during_data_is_evidence_of_connection_lost() -> None:
    item = next(i for i in _captured() if i["proxy"] == "haproxy" and i["fault"] == "upstream-restart")
    evidence = diagnose(_symptoms(item)).evidence
    assert any(" SD sni=" in e for e in evidence)


def test_a_dimse_failure_status_is_still_a_dimse_failure_not_a_lost_connection() -> None:
    diagnosis = diagnose(Symptoms(client_lines=("Association Accepted", "DIMSE status 0xa700"), dicom_stage="dimse"))
    assert diagnosis.reason is Reason.DIMSE_FAILURE
