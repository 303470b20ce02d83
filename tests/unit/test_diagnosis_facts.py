"""The facts a diagnosis establishes (who refused whom, whether the proxy served its fallback certificate, the TLS
alert the client read, the proxy's own no-route line), read from captured real outputs; and the proof that the
summaries' wording decides nothing: reworded, every reason, fact, fix candidate and corroboration stays the same.

The symptoms are tests/fixtures/captured_failures.json and captured_faults.json (real runs), and Traefik's lines
captured in test_diagnose.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dicomtls.corroborate import corroborate
from dicomtls.diagnose import EXPLANATIONS, SUMMARIES, Diagnosis, Facts, PeerAlert, Side, Symptoms, diagnose
from dicomtls.fixes.candidates import client_side, server_config
from dicomtls.results import OBSERVE, CellResult
from dicomtls.scenario import Cell, Probe

from .test_diagnose import DCMTK_VERIFY_FAILED, TRAEFIK_FALLBACK

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CAPTURED: list[dict[str, Any]] = [
    *json.loads((FIXTURES / "captured_failures.json").read_text()),
    *json.loads((FIXTURES / "captured_faults.json").read_text()),
]
TRAEFIK_STRICT_SNI_ALERT = "F: Association Request Failed: 000b:0c58 TLS error: tlsv1 unrecognized name"
DCMTK_HANDSHAKE_FAILURE = "F: Association Request Failed: 0006:031c TLS error: sslv3 alert handshake failure"


def symptoms(item: dict[str, Any], **changed: Any) -> Symptoms:
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in item["symptoms"].items()}
    return Symptoms(**{**fields, **changed})


def captured(cell: str) -> dict[str, Any]:
    """The captured failure whose cell id ends with ``cell`` ("environment/probe label")."""
    [item] = [i for i in CAPTURED if i.get("cell", "").endswith(cell)]
    return item


def facts_of(cell: str, **changed: Any) -> Facts:
    return diagnose(symptoms(captured(cell), **changed)).facts


# --- who refused whom ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", [
    "envoy-client-cert-required/dcmtk sni=none cert=none echo",  # Envoy's log: no certificate
    "envoy-client-cert-required/pynetdicom sni=none cert=untrusted echo",  # the unknown_ca alert
    "orthanc-tls-client-cert-required/dcmtk sni=none cert=expired echo",  # Orthanc's word, the certificate's date
    "orthanc-tls-client-cert-required/pynetdicom sni=right cert=none echo",  # the certificate_required alert
])
def test_a_server_turning_the_client_certificate_away_is_refused_by_the_server(cell: str) -> None:
    facts = facts_of(cell)
    assert facts.refused_by is Side.SERVER and facts.refused is Side.CLIENT
    assert facts.server_refused_client


@pytest.mark.parametrize("cell", [
    "orthanc-tls-wrong-san/pynetdicom sni=right cert=valid echo",
    "envoy-optional-cert/pynetdicom sni=wrong cert=none echo",
])
def test_a_client_rejecting_the_server_certificate_is_refused_by_the_client(cell: str) -> None:
    facts = facts_of(cell)
    assert facts.refused_by is Side.CLIENT and facts.refused is Side.SERVER
    assert not facts.server_refused_client


def test_a_client_that_fails_to_verify_the_server_refused_it() -> None:
    facts = diagnose(Symptoms(client_lines=(DCMTK_VERIFY_FAILED,))).facts
    assert facts.refused_by is Side.CLIENT and facts.peer_alert is None


def test_a_proxy_without_a_route_for_the_sni_refused_the_client_and_its_log_says_so() -> None:
    facts = facts_of("envoy-named-hosts/dcmtk sni=none cert=none echo")
    assert facts.refused_by is Side.PROXY and facts.refused is Side.CLIENT
    assert facts.proxy_logged_no_route and not facts.server_refused_client


def test_an_unrecognized_name_alert_without_the_proxys_log_is_a_refusal_the_log_does_not_show() -> None:
    facts = diagnose(Symptoms(client_lines=(TRAEFIK_STRICT_SNI_ALERT,))).facts
    assert facts.refused_by is Side.PROXY and not facts.proxy_logged_no_route
    assert facts.peer_alert == PeerAlert("unrecognized_name", "tlsv1 unrecognized name")


def test_the_no_route_fact_follows_the_proxy_line_the_evidence_quotes() -> None:
    item = captured("envoy-named-hosts/dcmtk sni=none cert=none echo")
    assert not facts_of("envoy-named-hosts/dcmtk sni=none cert=none echo", proxy_lines=()).proxy_logged_no_route
    unrouted = [line for line in item["symptoms"]["proxy_lines"] if "flags=NR" in line]
    assert unrouted and diagnose(symptoms(item)).evidence[-1] == f"proxy: {unrouted[0]}"


@pytest.mark.parametrize("item", [i for i in CAPTURED if "fault" in i],
                         ids=lambda i: f"{i['proxy']}-{i['backend']}-{i['fault']}-{i['client']}")
def test_nobody_refused_anyone_when_the_path_broke(item: dict[str, Any]) -> None:
    facts = diagnose(symptoms(item)).facts
    assert facts.refused_by is None and facts.refused is None and not facts.proxy_logged_no_route


def test_nobody_refused_a_certificate_in_plain_dicom_to_a_tls_port_or_a_cipher_mismatch() -> None:
    assert facts_of("envoy-optional-cert/dcmtk sni=none cert=none echo plain").refused_by is None
    assert diagnose(Symptoms(client_lines=(DCMTK_HANDSHAKE_FAILURE,))).facts.refused_by is None


# --- the peer's alert ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "alert"), [
    ("envoy-client-cert-required/pynetdicom sni=none cert=none echo",
     PeerAlert("certificate_required", "tlsv13 alert certificate required")),
    ("envoy-client-cert-required/pynetdicom sni=none cert=untrusted echo",
     PeerAlert("unknown_ca", "tlsv1 alert unknown ca")),
    ("orthanc-tls-client-cert-optional/pynetdicom sni=right cert=expired echo",
     PeerAlert("certificate_expired", "sslv3 alert certificate expired")),
    ("envoy-client-cert-required/dcmtk sni=none cert=none echo", None),  # dcmtk saw only a broken pipe
    ("orthanc-tls-wrong-san/pynetdicom sni=right cert=valid echo", None),  # the client's own verdict, no alert
])
def test_the_alert_the_client_read_is_named_as_rfc_8446_names_it(cell: str, alert: PeerAlert | None) -> None:
    assert facts_of(cell).peer_alert == alert


def test_dcmtks_generic_handshake_failure_alert_is_the_peers_alert_too() -> None:
    facts = diagnose(Symptoms(client_lines=(DCMTK_HANDSHAKE_FAILURE,))).facts
    assert facts.peer_alert == PeerAlert("handshake_failure", "sslv3 alert handshake failure")


# --- the fallback certificate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("item", [i for i in CAPTURED if i.get("expected_reason") == "tls-fell-to-https"],
                         ids=lambda i: i["cell"])
def test_traefik_logging_its_default_certificate_is_a_fallback_certificate_served(item: dict[str, Any]) -> None:
    facts = diagnose(symptoms(item)).facts
    assert facts.fallback_certificate and facts.refused_by is None and not facts.fallback_certificate_rejected


def test_a_client_rejecting_traefiks_fallback_certificate_is_offered_the_sni_fixes() -> None:
    diagnosis = diagnose(Symptoms(client_lines=(DCMTK_VERIFY_FAILED,), proxy_lines=(TRAEFIK_FALLBACK,)))
    assert diagnosis.facts.fallback_certificate_rejected
    assert [c.id for c in server_config(diagnosis.reason, diagnosis.facts, Probe("dcmtk", "none", "none", "echo"))] \
        == ["default-certificate", "catch-all-route", "catch-all-route+default-certificate"]


def test_no_fallback_certificate_where_the_proxy_did_not_log_one() -> None:
    assert not any(diagnose(symptoms(i)).facts.fallback_certificate for i in CAPTURED if "traefik" not in i.get(
        "cell", i.get("proxy", "")))


# --- wording decides nothing --------------------------------------------------------------------------------------


def _label_probe(label: str) -> Probe:
    """A Probe from a captured cell's label: "dcmtk sni=none cert=none echo [plain] [server-cert-check=ignore]"."""
    client, *words = label.split()
    fields = dict(w.split("=", 1) for w in words if "=" in w)
    return Probe(client, fields["sni"], fields["cert"], "echo", "plain" if "plain" in words else "tls",
                 fields.get("server-cert-check", "verify"))


def _result(cell: str, diagnosis: Diagnosis) -> CellResult:
    probe = _label_probe(cell.rsplit("/", 1)[1])
    return CellResult(Cell("probe", "endpoint", probe, OBSERVE, None), "fail", diagnosis.reason, diagnosis.summary,
                      diagnosis.fix, diagnosis.evidence, "", "", 0.1, facts=diagnosis.facts)


def _verdicts() -> tuple[list[Any], list[str]]:
    """(everything decided, every summary) over the captured symptoms, each with SNI and without and every client
    certificate, with the fix candidates each client would get, and the corroboration of an endpoint probed without
    its logs."""
    decided: list[Any] = []
    summaries: list[str] = []
    variants: list[dict[str, Any]] = [{"sent_sni": sni, "sent_client_cert": cert} for sni in (False, True)
                for cert in ("none", "valid", "untrusted", "expired")]
    variants.append({"client_lines": (DCMTK_VERIFY_FAILED,), "proxy_lines": (TRAEFIK_FALLBACK,)})
    for item in CAPTURED:
        for changed in variants:
            d = diagnose(symptoms(item, **changed))
            summaries.append(d.summary)
            candidates = [
                ([c.id for c in server_config(d.reason, d.facts, probe)],
                 [(c.id, why) for c, why in client_side(d.reason, d.facts, probe, docker)])
                for probe in (Probe(client, "none", "none", "echo") for client in ("dcmtk", "pynetdicom"))
                for docker in (False, True)]
            decided.append((d.reason, d.facts, d.server_refused_client, d.evidence, candidates))
    # Orthanc's own TLS probed from outside: no server log, so dcmtk's bare failures take pynetdicom's alerts.
    endpoint = [_result(i["cell"], diagnose(symptoms(i, proxy_lines=()))) for i in CAPTURED
                if "orthanc-tls-client-cert-required/" in i.get("cell", "")]
    corroborated = corroborate(endpoint, None)
    summaries += [r.summary for r in corroborated]
    decided.append([(r.reason, r.facts, r.evidence) for r in corroborated])
    return decided, summaries


def _reword(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every summary and fix in other words, keeping only the templates' placeholders."""
    for n, (key, text) in enumerate(SUMMARIES.items()):
        monkeypatch.setitem(SUMMARIES, key, " ".join([f"wording #{n}", *re.findall(r"\{\w+\}", text)]))
    for n, reason in enumerate(EXPLANATIONS):
        monkeypatch.setitem(EXPLANATIONS, reason, (f"explanation #{n}", f"remedy #{n}"))


def test_rewording_every_summary_changes_no_reason_fact_candidate_or_corroboration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    decided, summaries = _verdicts()
    _reword(monkeypatch)
    reworded, new_summaries = _verdicts()
    assert len(new_summaries) == len(summaries)
    assert not [old for old, new in zip(summaries, new_summaries) if old == new]  # every summary's words changed
    assert reworded == decided


def test_the_corroborated_cell_takes_the_refusal_its_sibling_established() -> None:
    endpoint = [_result(i["cell"], diagnose(symptoms(i, proxy_lines=()))) for i in CAPTURED
                if "orthanc-tls-client-cert-required/" in i.get("cell", "")]
    dcmtk = next(r for r in endpoint if r.cell.probe.client == "dcmtk" and r.cell.probe.client_cert == "none")
    assert dcmtk.facts.refused_by is None  # all dcmtk said was that the peer went away
    explained = next(r for r in corroborate(endpoint, None) if r.cell == dcmtk.cell)
    assert explained.facts.refused_by is Side.SERVER and explained.facts.peer_alert is not None
    assert explained.evidence[-1] == f"pynetdicom with the same certificate got: {explained.facts.peer_alert.printed}"
