"""A run's findings, unexpected cells and broken policy rules become GitHub workflow commands on the user's
file and line: escaped as the runner parses them, relative to the workspace, cells with one complaint at one line
grouped (GitHub shows ten annotations of a level per step)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from dicomtls.manifests import manifest_files, translate_files
from dicomtls.report.github_annotations import Annotation, of_run as annotations

from .recorded_run import real_run

ENVOY = "gitops/envoy.yaml"
ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path) -> dict[str, Any]:
    """A recorded run whose first environment has a finding proved by two cells that broke a policy rule."""
    doc = copy.deepcopy(real_run())
    env = doc["environments"][0]
    first, second = doc["cells"][0], doc["cells"][1]
    for cell in (first, second):
        cell["environment"], cell["verdict"] = env["name"], "unexpected"
        cell["policy"] = [{"rule": "client-auth: an expired client certificate is refused", "wants": "fail"}]
    env["findings"] = [
        {"text": "allow_expired_certificate: true: Envoy accepts an expired client certificate", "severity": "high",
         "file": str(tmp_path / ENVOY), "line": 73,
         "cells": [{"id": c["id"], "actual": c["actual"], "reason": c["reason"]} for c in (first, second)]},
        {"text": "int-ca is a self-signed root", "severity": "low", "cells": []},
    ]
    doc["policy_violations"] = []
    return doc


def test_cells_breaking_one_rule_are_one_error_at_the_line_of_the_finding_that_proves_them(tmp_path: Path) -> None:
    doc = _run(tmp_path)
    errors = [a for a in annotations(doc, tmp_path) if a.level == "error"]
    assert len(errors) == 1
    [error] = errors
    assert (error.file, error.line) == (ENVOY, 73)
    assert "'client-auth: an expired client certificate is refused' wants fail: 2 cells" in error.message
    assert doc["cells"][0]["id"] in error.message and doc["cells"][1]["id"] in error.message


def test_findings_are_warnings_or_notices_by_severity_with_or_without_a_file(tmp_path: Path) -> None:
    found = {a.message: a for a in annotations(_run(tmp_path), tmp_path) if a.level != "error"}
    expired = found["allow_expired_certificate: true: Envoy accepts an expired client certificate"]
    assert (expired.level, expired.file, expired.line) == ("warning", ENVOY, 73)
    root = found["int-ca is a self-signed root"]
    assert (root.level, root.file) == ("notice", None)
    assert root.command().startswith("::notice title=")


def test_a_policy_violation_is_an_error_at_its_finding_and_replaces_the_findings_warning(tmp_path: Path) -> None:
    doc = _run(tmp_path)
    doc["policy_violations"] = [{"rule": "fail-on high", "environment": "env", "what": "[high] allow_expired…",
                                 "file": str(tmp_path / ENVOY), "line": 73}]
    at_line = [a for a in annotations(doc, tmp_path) if a.line == 73]
    assert [a.level for a in at_line] == ["error", "error"]  # the rule, the cells; no warning beside them
    assert at_line[0].title == "dicomtls: policy rule 'fail-on high' broken"


def test_a_file_outside_the_workspace_keeps_its_path(tmp_path: Path) -> None:
    doc = _run(tmp_path)
    doc["environments"][0]["findings"][0]["file"] = "/elsewhere/envoy.yaml"
    assert {a.file for a in annotations(doc, tmp_path)} == {"/elsewhere/envoy.yaml", None}


def test_workflow_command_escapes_what_the_runner_would_read_as_syntax() -> None:
    annotation = Annotation("error", "rule: a, b", "100% sure\r\nnext: line, more", "dir,x/a:b.yaml", 7)
    assert annotation.command() == ("::error file=dir%2Cx/a%3Ab.yaml,line=7,title=rule%3A a%2C b::"
                                    "100%25 sure%0D%0Anext: line, more")


def test_a_run_with_nothing_to_say_prints_nothing() -> None:
    doc = copy.deepcopy(real_run())
    for env in doc["environments"]:
        env["findings"] = []
    assert all(c["verdict"] == "ok" for c in doc["cells"])
    assert annotations(doc) == []


def test_a_cell_no_finding_proves_is_annotated_at_its_environments_manifest(tmp_path: Path) -> None:
    doc = _run(tmp_path)
    env = doc["environments"][0]
    env["findings"] = []
    env["source_file"], env["source_line"] = str(tmp_path / "gitops" / "gateway.yaml"), 3
    [error] = [a for a in annotations(doc, tmp_path) if a.level == "error"]
    assert (error.file, error.line) == ("gitops/gateway.yaml", 3)


def test_a_violation_without_a_file_lands_at_its_environments_manifest_else_nowhere(tmp_path: Path) -> None:
    doc = _run(tmp_path)
    env = doc["environments"][0]
    env["source_file"], env["source_line"] = "gitops/gateway.yaml", 3
    doc["policy_violations"] = [
        {"rule": "cert-days:30", "environment": env["name"], "what": "dicom.example.org has 12.0 days left"},
        {"rule": "cert-days:30", "environment": "elsewhere", "what": "no certificate was served"}]
    violations = [a for a in annotations(doc, Path.cwd()) if a.title.startswith("dicomtls: policy rule 'cert-days")]
    assert [(a.file, a.line) for a in violations] == [("gitops/gateway.yaml", 3), (None, None)]


def test_a_finding_whose_reader_knows_no_line_points_at_its_resources_first_line() -> None:
    unrouted = Path("tests/fixtures/manifests/istio-unrouted")
    [translation] = translate_files(manifest_files(ROOT / unrouted))
    lines = (ROOT / unrouted / "gateway.yaml").read_text().splitlines()
    assert translation.findings
    for finding in translation.findings:
        assert finding.file is not None and finding.file.endswith(str(unrouted / "gateway.yaml"))
        assert finding.line is not None and lines[finding.line - 1].startswith("apiVersion:")
