"""`probe --format prometheus|nagios` on a captured probe of orthweb-envoy (an `invoke up` endpoint): the textfile
read back with prometheus_client's own parser, the Nagios state and line for each kind of problem."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dicomtls.report import nagios, prometheus

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results_probe_orthweb_envoy.json"
TARGET = "127.0.0.1:28156"
NOT_AFTER = datetime.fromisoformat("2027-12-07T19:45:16+00:00").timestamp()


@pytest.fixture
def doc() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def samples(text: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        found.setdefault(family.name, []).extend(family.samples)
    return found


def textfile(doc: dict[str, Any], tmp_path: Path, policy: bool = False) -> str:
    path = tmp_path / "dicomtls.prom"
    prometheus.write(doc, path, policy)
    return path.read_text()


def test_textfile_parses_and_carries_the_served_certificates_expiry(doc: dict[str, Any], tmp_path: Path) -> None:
    found = samples(textfile(doc, tmp_path))
    expiry = found["dicomtls_certificate_expiry_timestamp_seconds"]
    assert {(s.labels["sni"], s.value) for s in expiry} == {("dicom.orthweb.test", NOT_AFTER), ("none", NOT_AFTER)}
    assert [(s.labels, s.value) for s in found["dicomtls_probe_success"]] == [({"target": TARGET}, 1.0)]


def test_textfile_has_one_success_and_duration_per_cell(doc: dict[str, Any], tmp_path: Path) -> None:
    found = samples(textfile(doc, tmp_path))
    success = {tuple(sorted(s.labels.items())): s.value for s in found["dicomtls_cell_success"]}
    assert len(success) == len(doc["cells"])
    assert sum(success.values()) == sum(c["actual"] == "pass" for c in doc["cells"])
    assert len(found["dicomtls_cell_duration_seconds"]) == len(doc["cells"])
    dcmtk_untrusted = next(v for k, v in success.items() if ("client", "dcmtk") in k and ("client_cert", "untrusted") in k)
    assert dcmtk_untrusted == 0.0


def test_association_latency_where_the_client_measured_it(doc: dict[str, Any], tmp_path: Path) -> None:
    found = samples(textfile(doc, tmp_path))
    timed = {tuple(sorted(s.labels.items())): s.value for s in found["dicomtls_association_duration_seconds"]}
    measured = [c for c in doc["cells"] if c["association_s"] is not None]
    assert measured and len(timed) == len(measured)
    assert all(0 < value < 15 for value in timed.values())


def test_policy_verdict_only_when_a_policy_judged_the_run(doc: dict[str, Any], tmp_path: Path) -> None:
    assert "dicomtls_policy_ok" not in samples(textfile(doc, tmp_path))
    doc["policy_violations"] = [{"rule": "cert-days:400", "environment": TARGET, "what": "365 days left"}]
    found = samples(textfile(doc, tmp_path, policy=True))
    assert [s.value for s in found["dicomtls_policy_ok"]] == [0.0]
    assert [s.value for s in found["dicomtls_policy_violations"]] == [1.0]


def test_an_unmeasured_cell_is_counted_as_such_not_as_a_failure(doc: dict[str, Any], tmp_path: Path) -> None:
    doc["cells"][0]["deadline"] = "cell"
    found = samples(textfile(doc, tmp_path))
    assert len(found["dicomtls_cell_success"]) == len(doc["cells"]) - 1
    states = {s.labels["state"]: s.value for s in found["dicomtls_cells"]}
    assert states["unmeasured"] == 1.0


def test_the_textfile_is_replaced_whole(doc: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "dicomtls.prom"
    path.write_text("stale\n")
    prometheus.write(doc, path, False)
    assert "stale" not in path.read_text() and [p.name for p in tmp_path.iterdir()] == ["dicomtls.prom"]


def test_nagios_ok_with_the_certificates_days_in_perfdata(doc: dict[str, Any]) -> None:
    found = nagios.status(doc, 14)
    assert found.state == nagios.State.OK == 0
    assert found.line.startswith(f"DICOMTLS OK - {TARGET}: 12/23 cells passed, certificate 365 days left | ")
    assert "cert_days=365.0;14:;0:" in found.line.split(" | ", 1)[1]


def test_nagios_warns_before_the_certificate_ends(doc: dict[str, Any]) -> None:
    found = nagios.status(doc, 400)
    assert found.state == nagios.State.WARNING
    assert "has 365.0 days left" in found.line


def test_nagios_critical_when_no_client_passes(doc: dict[str, Any]) -> None:
    for cell in doc["cells"]:
        cell.update(actual="fail", reason="connection-refused")
    found = nagios.status(doc, 14)
    assert found.state == nagios.State.CRITICAL == 2
    assert f"{TARGET}: no client passed (connection-refused)" in found.line


def test_nagios_critical_on_a_broken_rule_and_warning_on_fail_on(doc: dict[str, Any]) -> None:
    fail_on = {"rule": "fail-on high", "environment": TARGET, "what": "[high] a finding"}
    doc["policy_violations"] = [fail_on]
    assert nagios.status(doc, 14, {"fail-on high"}).state == nagios.State.WARNING
    broken = copy.deepcopy(doc)
    broken["cells"][0]["policy"] = [{"rule": "every client needs a certificate", "wants": "fail"}]
    found = nagios.status(broken, 14, {"fail-on high"})
    assert found.state == nagios.State.CRITICAL
    assert found.line.index("every client needs a certificate") < found.line.index("fail-on high")


def test_nagios_unknown_when_dicomtls_could_not_measure(doc: dict[str, Any]) -> None:
    doc["cells"][3]["error"] = "RuntimeError: boom"
    found = nagios.status(doc, 14)
    assert found.state == nagios.State.UNKNOWN == 3
    assert "1 cells not measured (dicomtls failed: RuntimeError: boom)" in found.line


def test_nagios_line_is_one_line_without_a_stray_pipe(doc: dict[str, Any]) -> None:
    doc["cells"][3]["error"] = "a | b\nsecond line"
    line = nagios.status(doc, 14).line
    assert "\n" not in line and line.count("|") == 1
