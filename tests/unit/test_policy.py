"""Policies judged on a captured run: Orthweb's 2023 Envoy bootstrap (allow_expired_certificate: true), reproduced on
the local backend and written to tests/fixtures/results_manifests_orthweb_envoy_2023.json."""

from __future__ import annotations

import copy
import datetime
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from dicomtls.errors import UsageError
from dicomtls.findings import ProvedFinding
from dicomtls.policy import load_policies, parse_policy, scan_violations
from dicomtls.policy import apply as apply_policy
from dicomtls.reasons import Reason
from dicomtls.report import html, junit, markdown
from dicomtls.report import json as json_report
from dicomtls.report.console import print_result
from dicomtls.report.layout import probe_of
from dicomtls.results import CellResult, EnvironmentInfo, MatrixResult, RunInfo
from dicomtls.scan import Finding as Requirement
from dicomtls.scan import ScanResult
from dicomtls.scenario import Cell

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORTHWEB = FIXTURES / "results_manifests_orthweb_envoy_2023.json"
EXPIRED_RULE = "client-auth: an expired client certificate is refused"


def captured(doc: dict[str, Any] | None = None) -> MatrixResult:
    """The captured run as the live results a run ends with (what a policy is applied to)."""
    doc = doc or json.loads(ORTHWEB.read_text())
    cells = [CellResult(Cell(r["scenario"], r["environment"], probe_of(r), r["expected"],
                             Reason(r["expected_reason"]) if r["expected_reason"] else None, r.get("expected_site")),
                        r["actual"], Reason(r["reason"]) if r["reason"] else None, r["summary"], r["fix"],
                        tuple(r["evidence"]), r["command"], r["detail"], r["duration_s"]) for r in doc["cells"]]
    environments = [EnvironmentInfo(e["key"], e["name"], e["scenarios"], e["components"], e["entry"],
                                    e["server_names"], e["pki_dir"], e["logs"],
                                    scan=ScanResult.from_dict(e["scan"]) if e.get("scan") else None,
                                    findings=[ProvedFinding(f["text"], tuple(f["cells"]), f["severity"])
                                              for f in e["findings"]]) for e in doc["environments"]]
    return MatrixResult(RunInfo(**doc["run"]), environments, cells)


def judged(*specs: str, fail_on: str | None = None, result: MatrixResult | None = None,
           now: datetime.datetime | None = None) -> MatrixResult:
    result = result or captured()
    policy = load_policies(list(specs), fail_on)
    assert policy is not None
    apply_policy(policy, result, now)
    return result


def broken(result: MatrixResult) -> dict[str, list[str]]:
    return {c.cell.id: [b.rule for b in c.policy] for c in result.cells if c.policy}


def test_the_orthweb_2023_run_is_observed_and_exits_0_without_a_policy() -> None:
    assert captured().exit_code == 0


def test_client_auth_preset_fails_orthweb_2023_on_each_cell_an_expired_certificate_got_through() -> None:
    result = judged("preset:client-auth")
    expired = [c for c in result.cells if c.cell.probe.client_cert == "expired"]
    assert expired and all(c.actual == "pass" for c in expired)  # allow_expired_certificate: true, as captured
    assert broken(result) == {c.cell.id: [EXPIRED_RULE] for c in expired}
    assert all(c.verdict == "unexpected" for c in expired)
    assert result.exit_code == 1


def test_client_auth_holds_where_untrusted_certificates_are_refused_and_none_is_required() -> None:
    result = judged("preset:client-auth")
    untrusted = [c for c in result.cells if c.cell.probe.client_cert == "untrusted"]
    assert untrusted and all(c.actual == "fail" and not c.policy for c in untrusted)
    # require_client_certificate: false and no cell failed for want of one: a client without one may pass
    assert not [c for c in result.cells if c.cell.probe.client_cert == "none" and c.policy]


def test_client_auth_refuses_a_missing_certificate_wherever_the_environment_requires_one() -> None:
    result = captured()
    without = [c for c in result.cells if c.cell.probe.client_cert == "none" and c.actual == "pass"]
    without[0].actual, without[0].reason = "fail", Reason.TLS_CERT_REQUIRED  # one route requires a certificate
    judged("preset:client-auth", result=result)
    missing = "client-auth: a client without a certificate is refused wherever one is required"
    assert all(missing in [b.rule for b in c.policy] for c in without[1:])
    assert not without[0].policy


def test_a_cell_rule_with_reasons_takes_only_failures_for_those_reasons(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("cells:\n  - name: wrong names are told so\n    match: {sni: wrong}\n    outcome: fail\n"
                    "    reason: tls-hostname-mismatch\n  - name: aes clients get in\n    match: {profile: aes}\n"
                    "    outcome: fail\n    reason: [tls-unknown-ca]\n")
    result = judged(str(path))
    assert set(sum(broken(result).values(), [])) == {"aes clients get in"}  # no-shared-cipher is not unknown-ca


def test_documented_commands_preset_names_each_documented_command_that_fails() -> None:
    rules = sorted({r for rs in broken(judged("preset:documented-commands")).values() for r in rs})
    assert rules == [
        "documented-commands: echoscu +tla +pa -rc +cf ca.crt HOST PORT (the retired AES profile: AES128-SHA) works",
        "documented-commands: storescu -c AET@HOST:PORT --tls12 --tls-aes (dcm4che's AES128-SHA-only offer, made "
        "here by pynetdicom) works",
    ]


def test_cert_days_counts_the_days_left_on_each_served_certificate() -> None:
    scan = captured().environments[0].scan
    assert scan is not None
    until = datetime.datetime.fromisoformat(scan.chains[0].certificates[0].not_after)
    ten_days_before = until - datetime.timedelta(days=10)
    short = judged("preset:cert-days:30", now=ten_days_before)
    assert {v.rule for v in short.violations} == {"cert-days:30: the served certificate has 30 days left"}
    assert all("10.0 days left" in v.what for v in short.violations)
    assert short.exit_code == 1
    assert judged("preset:cert-days:5", now=ten_days_before).violations == []


def test_a_profile_rule_breaks_on_a_verdict_that_is_not_compliant_or_unknown() -> None:
    assert judged("preset:ps315:bcp195-nd").violations == []  # Envoy 1.40's defaults comply
    for compliant in (False, None):
        result = captured()
        scan = result.environments[0].scan
        assert scan is not None
        verdict = next(v for v in scan.verdicts if v.name == "bcp195-nd")
        verdict.compliant = compliant
        (verdict.failures if compliant is False else verdict.unknown).append(
            Requirement("PS3.15 B.10", "TLS 1.0 and TLS 1.1 shall not be negotiated", "accepts TLS 1.0"))
        [violation] = judged("preset:ps315:bcp195-nd", result=result).violations
        assert violation.rule.startswith("ps315:bcp195-nd:") and "accepts TLS 1.0" in violation.what


def test_what_was_not_scanned_breaks_a_scan_rule_instead_of_holding() -> None:
    result = captured()
    result.environments[0].scan = None
    [violation] = judged("preset:cert-days:1", result=result).violations
    assert violation.what == "cannot be judged: no TLS scan of the entry"
    failed = ScanResult("dicom.example.test:11112", None, False, error="could not complete a TLS handshake")
    policy = load_policies(["preset:ps315:bcp195"])
    assert policy is not None
    [violation] = scan_violations(policy, "target", failed)
    assert "the TLS scan failed: could not complete a TLS handshake" in violation.what


def test_fail_on_counts_the_findings_at_or_above_its_severity() -> None:
    high = judged(fail_on="high").violations
    assert [v.what.split("]")[0] for v in high] == ["[high"]
    assert "allow_expired_certificate: true" in high[0].what
    assert len(judged(fail_on="medium").violations) == 2
    assert judged(fail_on="critical").violations == []
    assert judged(fail_on="critical").exit_code == 0


def test_every_report_shows_the_broken_rule_and_the_violations(tmp_path: Path) -> None:
    result = judged("preset:client-auth", fail_on="high")
    doc = json_report.to_dict(result)
    json_report.write_document(doc, tmp_path / "results.json")
    assert json_report.read(tmp_path / "results.json") == json.loads(json.dumps(doc))  # the model reads it back
    record = next(c for c in doc["cells"] if c["policy"])
    assert record["verdict"] == "unexpected" and record["policy"] == [{"rule": EXPIRED_RULE, "wants": "fail"}]
    assert [v["rule"] for v in doc["policy_violations"]] == ["fail-on high: no finding of severity high or worse"]
    md = markdown.render(doc)
    assert "## ❌ dicomtls: 3 unexpected, 1 policy violations" in md and "### Policy violations" in md
    assert EXPIRED_RULE in md
    page = html.render(doc)
    assert EXPIRED_RULE in page and "Policy violations (1)" in page
    junit.write_document(doc, tmp_path / "junit.xml")
    failures = ET.parse(tmp_path / "junit.xml").getroot().iter("failure")
    assert sorted({f.get("type") for f in failures}) == ["policy"]
    console = Console(record=True, width=240)
    print_result(result, console)
    text = console.export_text()
    assert f"policy rule '{EXPIRED_RULE}' wants fail" in text
    assert "policy rule 'fail-on high: no finding of severity high or worse' broken: [high]" in text


def test_a_policy_file_combines_presets_and_rules() -> None:
    policy = parse_policy((FIXTURES / "policies" / "orthweb.yaml").read_text(), "orthweb.yaml").resolved()
    assert [r.name for r in policy.cells][:2] == ["dcmtk without SNI reaches Orthanc with a client certificate",
                                                 "a client asking for a name nobody serves is told so"]
    assert EXPIRED_RULE in [r.name for r in policy.cells]
    assert [r.days for r in policy.certificate] == [30]
    result = judged(str(FIXTURES / "policies" / "orthweb.yaml"))
    assert set(sum(broken(result).values(), [])) == {EXPIRED_RULE}
    assert [v.rule for v in result.violations] == ["no high or critical finding"]


@pytest.mark.parametrize(("text", "error"), [
    ("cells:\n  - name: x\n    match: {client_cert: none}\n    outcome: fail\n    reasons: tls-unknown-ca\n",
     "p.yaml: cells.0.reasons: unknown field: use one of match, name, outcome, reason, where_seen"),
    ("cells:\n  - name: x\n    match: {cert: none}\n    outcome: fail\n",
     "p.yaml: cells.0.match: unknown axis 'cert': match on environment, client, sni, client_cert, operation, "
     "transport, server_cert_check, profile, client_version, fault, calling_aet, called_aet"),
    ("cells:\n  - name: x\n    outcome: pass\n    reason: tls-unknown-ca\n",
     "p.yaml: cells.0: reason says how a cell must fail: it goes with outcome: fail"),
    ("presets: [client-auth, cert-days:soon]\n",
     "p.yaml: presets: unknown preset 'cert-days:soon': cert-days takes a whole number of days, e.g. cert-days:30"),
    ("profiles:\n  - name: x\n    profile: bcp196\n",
     "p.yaml: profiles.0.profile: unknown PS3.15 profile 'bcp196': use one of bcp195, bcp195-nd, bcp195-ex, "
     "bcp195-rfc8996"),
    ("certificate: [{name: x, days: -1}]\n", "p.yaml: certificate.0.days: Input should be greater than or equal to 0"),
    ("{}\n", "p.yaml: a policy needs presets or rules: give presets, cells, findings, profiles or certificate"),
    ("- client-auth\n", "p.yaml: a policy is a YAML mapping with presets, cells, findings, profiles, certificate"),
    ("cells: [\n", "p.yaml: not valid YAML at line 2: fix the syntax"),
])
def test_a_bad_policy_file_is_one_line_naming_the_file_and_the_field(text: str, error: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_policy(text, "p.yaml")
    assert str(caught.value) == error


@pytest.mark.parametrize(("specs", "fail_on", "error"), [
    (["preset:client-authentication"], None, "--policy preset:client-authentication: unknown preset "
     "'client-authentication': use one of documented-commands, client-auth, ps315:PROFILE, cert-days:N"),
    (["preset:ps315:b.10"], None, "--policy preset:ps315:b.10: unknown preset 'ps315:b.10': ps315 takes a profile, "
     "one of bcp195, bcp195-nd, bcp195-ex, bcp195-rfc8996"),
    (["no-such-policy.yaml"], None, "--policy no-such-policy.yaml: no such file: give a policy YAML file or "
     "preset:NAME (documented-commands, client-auth, ps315:PROFILE, cert-days:N)"),
    ([], "severe", "--fail-on severe: give a severity, one of info, low, medium, high, critical"),
])
def test_a_bad_policy_option_is_a_usage_error_naming_it(specs: list[str], fail_on: str | None, error: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_policies(specs, fail_on)
    assert str(caught.value) == error


def test_without_policy_or_fail_on_there_is_no_policy() -> None:
    assert load_policies(None) is None
    assert load_policies([], None) is None


def test_a_shard_merge_keeps_every_shards_policy_violations() -> None:
    from dicomtls.shard import merge

    doc = json_report.to_dict(judged(fail_on="high"))
    first, second = copy.deepcopy(doc), copy.deepcopy(doc)
    first["run"]["shard"], second["run"]["shard"] = "1/2", "2/2"
    second["environments"], second["cells"] = [], []
    second["policy_violations"] = [{"rule": "r", "environment": "other", "what": "w"}]
    merged = merge([first, second], ["a", "b"])
    assert [v["environment"] for v in merged["policy_violations"]] == ["envoy-bootstrap-envoy", "other"]


def _inventory(tmp_path: Path, policy: str) -> Path:
    (tmp_path / "ca.crt").write_text("not parsed here\n")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "bhs.yaml").write_text("presets: [cert-days:30]\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(f"all:\n  vars:\n    dicomtls_ca: ca.crt\n    dicomtls_port: 11112\n  children:\n    bhs:\n"
                         f"      vars:\n        dicomtls_policy: {policy}\n      hosts:\n        pacs-bhs:\n"
                         f"    mhr:\n      hosts:\n        pacs-mhr:\n")
    return inventory


def test_an_inventory_group_names_its_hosts_policy_as_presets_and_files_beside_it(tmp_path: Path) -> None:
    from dicomtls.inventory import load_inventory

    bhs, mhr = load_inventory(_inventory(tmp_path, "[preset:client-auth, policies/bhs.yaml]"))
    assert bhs.policies == ("preset:client-auth", str(tmp_path / "policies" / "bhs.yaml"))
    assert mhr.policies == ()


@pytest.mark.parametrize(("policy", "error"), [
    ("3", "host pacs-bhs: dicomtls_policy is 3: give preset:NAME or a policy file, or a list of them"),
    ("policies/none.yaml", "host pacs-bhs: dicomtls_policy names {tmp}/policies/none.yaml, which is not a readable "
                           "file: fix the path"),
])
def test_a_bad_inventory_policy_names_the_host_and_the_variable(tmp_path: Path, policy: str, error: str) -> None:
    from dicomtls.inventory import load_inventory

    with pytest.raises(UsageError) as caught:
        load_inventory(_inventory(tmp_path, policy))
    assert str(caught.value) == f"inventory {tmp_path / 'inventory.yml'}: {error.format(tmp=tmp_path)}"


def test_an_unknown_preset_in_an_inventory_names_the_host_and_the_variable() -> None:
    from dicomtls.app import _host_policy

    with pytest.raises(UsageError) as caught:
        _host_policy(("preset:mtls",), "inventory i.yml: host pacs-bhs: dicomtls_policy")
    assert str(caught.value) == ("inventory i.yml: host pacs-bhs: dicomtls_policy: preset:mtls: unknown preset "
                                 "'mtls': use one of documented-commands, client-auth, ps315:PROFILE, cert-days:N")


def test_a_hosts_own_policy_judges_only_that_hosts_cells_and_scan() -> None:
    assert broken(judged_in("other")) == {} and judged_in("other").violations == []
    assert broken(judged_in("envoy-bootstrap-envoy"))


def judged_in(environment: str) -> MatrixResult:
    result = captured()
    policy = load_policies(["preset:client-auth"], "high")
    assert policy is not None
    apply_policy(policy, result, environment=environment)
    return result
