"""Policies on real runs: Orthweb's 2023 Envoy bootstrap (allow_expired_certificate: true) reproduced on the local
backend passes as observed and fails under the client-authentication preset, naming the rule; `invoke probe` of an
endpoint `invoke up` left running fails on a broken rule and passes on rules that hold."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, matrix_run, run_invoke, started_under

pytestmark = pytest.mark.integration

ORTHWEB_2023 = ROOT / "tests" / "fixtures" / "manifests" / "orthweb-envoy-2023"
EXPIRED_RULE = "client-auth: an expired client certificate is refused"


@pytest.fixture(scope="module")
def orthweb_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("policy")
    manifests = ("--backend", "local", "--manifests", str(ORTHWEB_2023))
    return {"observed": matrix_run(tmp / "observed", *manifests),
            "client-auth": matrix_run(tmp / "client-auth", *manifests, "--policy", "preset:client-auth")}


def test_orthweb_2023_observed_exits_0(orthweb_runs: dict[str, dict[str, Any]]) -> None:
    proc = orthweb_runs["observed"]["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert orthweb_runs["observed"]["results"]["policy_violations"] == []


def test_orthweb_2023_fails_the_client_auth_preset_on_its_expired_certificate_cells(
        orthweb_runs: dict[str, dict[str, Any]]) -> None:
    run = orthweb_runs["client-auth"]
    assert run["proc"].returncode == 1, run["proc"].stdout[-3000:] + run["proc"].stderr[-2000:]
    assert run["leftovers"] == (set(), set())
    cells = run["results"]["cells"]
    expired = [c for c in cells if c["client_cert"] == "expired"]
    assert expired and all(c["actual"] == "pass" for c in expired)
    assert {c["id"]: c["policy"] for c in cells if c["policy"]} == {
        c["id"]: [{"rule": EXPIRED_RULE, "wants": "fail"}] for c in expired}
    assert all(c["verdict"] == "unexpected" for c in expired)
    assert f"policy rule '{EXPIRED_RULE}' wants fail" in run["proc"].stdout
    assert EXPIRED_RULE in (run["out"] / "summary.md").read_text()


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("probe-policy")
    policy = tmp / "policy.yaml"
    policy.write_text("cells:\n  - name: every client needs a certificate\n    match: {client_cert: none}\n"
                      "    outcome: fail\n")
    up = run_invoke(["up", "--backend", "local", "--scenario", "orthweb-envoy", "--out", str(tmp / "up")], tmp)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        env = json.loads((tmp / "state" / "dicomtls" / "up.json").read_text())[0]
        target = ["--target", f"{env['address']}:{env['port']}", "--sni", env["sni_names"][0], "--ca", env["ca"],
                  "--client-cert", env["client_cert"], "--client-key", env["client_key"]]
        ran = {name: run_invoke(["probe", *target, "--out", str(tmp / name), *options], tmp)
               for name, options in {"holds": ["--policy", "preset:client-auth", "--policy", "preset:cert-days:30"],
                                     "broken": ["--policy", str(policy), "--policy", "preset:cert-days:400"]}.items()}
        scans = {days: run_invoke(["scan", target[1], *target[2:6], "--json", str(tmp / f"scan-{days}.json"),
                                   "--policy", f"preset:cert-days:{days}", "--policy", "preset:ps315:bcp195-nd",
                                   "--fail-on", "high"], tmp) for days in (30, 400)}
    finally:
        down = run_invoke(["down"], tmp)
    assert down.returncode == 0 and not started_under(tmp)
    yield {**{name: {"proc": proc, "results": json.loads((tmp / name / "probe" / "results.json").read_text())}
              for name, proc in ran.items()},
           "scans": {days: {"proc": proc, "json": json.loads((tmp / f"scan-{days}.json").read_text())}
                     for days, proc in scans.items()}}


def test_probe_passes_when_every_rule_holds(probes: dict[str, Any]) -> None:
    holds = probes["holds"]
    assert holds["proc"].returncode == 0, holds["proc"].stdout[-3000:] + holds["proc"].stderr[-2000:]
    assert holds["results"]["policy_violations"] == [] and not any(c["policy"] for c in holds["results"]["cells"])


def test_probe_fails_on_a_broken_cell_rule_and_a_certificate_too_short_lived(probes: dict[str, Any]) -> None:
    broken = probes["broken"]
    assert broken["proc"].returncode == 1, broken["proc"].stdout[-3000:] + broken["proc"].stderr[-2000:]
    without = [c for c in broken["results"]["cells"] if c["client_cert"] == "none" and c["actual"] == "pass"]
    assert without and all(c["policy"] == [{"rule": "every client needs a certificate", "wants": "fail"}]
                           for c in without)
    assert {v["rule"] for v in broken["results"]["policy_violations"]} == {
        "cert-days:400: the served certificate has 400 days left"}
    assert "policy rule 'cert-days:400: the served certificate has 400 days left' broken" in broken["proc"].stdout


def test_a_bad_policy_is_refused_before_anything_starts(tmp_path: Path) -> None:
    proc = run_invoke(["matrix", "--backend", "local", "--manifests", str(ORTHWEB_2023), "--out", str(tmp_path / "o"),
                       "--policy", "preset:client-authentication"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "dicomtls: --policy preset:client-authentication: unknown preset 'client-authentication': use one of "
        "documented-commands, client-auth, ps315:PROFILE, cert-days:N"]
    assert not (tmp_path / "o" / "envs").exists()


def test_scan_judges_profile_certificate_and_finding_rules(probes: dict[str, Any]) -> None:
    holds, broken = probes["scans"][30], probes["scans"][400]
    assert holds["proc"].returncode == 0, holds["proc"].stdout[-3000:] + holds["proc"].stderr[-2000:]
    assert holds["json"]["policy_violations"] == []
    assert broken["proc"].returncode == 1, broken["proc"].stdout[-3000:] + broken["proc"].stderr[-2000:]
    assert {v["rule"] for v in broken["json"]["policy_violations"]} == {
        "cert-days:400: the served certificate has 400 days left"}
    assert "policy rule 'cert-days:400: the served certificate has 400 days left' broken" in broken["proc"].stdout
