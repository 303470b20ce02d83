"""`invoke probe --format prometheus|nagios` against an endpoint `invoke up` left running: the textfile (and stdout)
read by prometheus_client's parser carries the served certificate's expiry; Nagios exits 0 OK on a sound endpoint
and 2 CRITICAL when a policy rule is broken, with one status line on stdout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import run_invoke, started_under

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("monitoring")
    up = run_invoke(["up", "--backend", "local", "--scenario", "orthweb-envoy", "--out", str(tmp / "up")], tmp)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        env = json.loads((tmp / "state" / "dicomtls" / "up.json").read_text())[0]
        target = ["--target", f"{env['address']}:{env['port']}", "--sni", env["sni_names"][0], "--ca", env["ca"],
                  "--client-cert", env["client_cert"], "--client-key", env["client_key"]]
        runs = {
            "textfile": ["--format", "prometheus", "--textfile", str(tmp / "dicomtls.prom")],
            "stdout": ["--format", "prometheus", "--policy", "preset:cert-days:400"],
            "ok": ["--format", "nagios"],
            "critical": ["--format", "nagios", "--policy", "preset:cert-days:400"],
        }
        ran = {name: run_invoke(["probe", *target, "--out", str(tmp / name), *options], tmp)
               for name, options in runs.items()}
    finally:
        down = run_invoke(["down"], tmp)
    assert down.returncode == 0 and not started_under(tmp)
    yield {"runs": ran, "textfile": (tmp / "dicomtls.prom").read_text(), "sni": env["sni_names"][0],
           "results": json.loads((tmp / "ok" / "probe" / "results.json").read_text())}


def expiry(text: str) -> dict[str, float]:
    return {s.labels["sni"]: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == "dicomtls_certificate_expiry_timestamp_seconds"}


def served_not_after(results: dict[str, Any]) -> float:
    chains = results["environments"][0]["scan"]["chains"]
    return datetime.fromisoformat(chains[0]["certificates"][0]["not_after"]).timestamp()


def test_textfile_parses_and_carries_the_certificates_expiry(probed: dict[str, Any]) -> None:
    proc = probed["runs"]["textfile"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert expiry(probed["textfile"]) == {probed["sni"]: served_not_after(probed["results"]),
                                          "none": served_not_after(probed["results"])}
    assert "dicomtls_probe_success{target=" in probed["textfile"]
    associations = [s.value for family in text_string_to_metric_families(probed["textfile"]) for s in family.samples
                    if s.name == "dicomtls_association_duration_seconds"]
    assert associations and all(0 < value < 15 for value in associations)


def test_prometheus_on_stdout_is_the_exposition_alone_with_the_policy_verdict(probed: dict[str, Any]) -> None:
    proc = probed["runs"]["stdout"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]  # the policy is broken: as without --format
    families = {f.name: f for f in text_string_to_metric_families(proc.stdout)}
    assert [s.value for s in families["dicomtls_policy_ok"].samples] == [0.0]
    assert expiry(proc.stdout)


def test_nagios_ok_on_a_sound_endpoint(probed: dict[str, Any]) -> None:
    proc = probed["runs"]["ok"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.count("\n") == 1 and proc.stdout.startswith("DICOMTLS OK - ")
    assert " | passed=" in proc.stdout and "cert_days=" in proc.stdout


def test_nagios_critical_when_a_policy_rule_is_broken(probed: dict[str, Any]) -> None:
    proc = probed["runs"]["critical"]
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.startswith("DICOMTLS CRITICAL - ") and proc.stdout.count("\n") == 1
    assert "policy rule 'cert-days:400: the served certificate has 400 days left' broken" in proc.stdout


def test_nagios_says_unknown_for_a_refused_command_line(tmp_path: Any) -> None:
    proc = run_invoke(["probe", "--target", "127.0.0.1:1", "--format", "nagios", "--out", str(tmp_path / "o")],
                      tmp_path)
    assert proc.returncode == 3
    assert proc.stdout.startswith("DICOMTLS UNKNOWN - --ca is needed")
