"""Baseline diff: cells whose outcome or reason changed, new and gone cells, and a regression stops CI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dicomtls import app
from dicomtls.diff import compare
from dicomtls.errors import UsageError
from dicomtls.report import json as json_report

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results_envoy_sni_named_hosts.json"
PASSING = "envoy-sni-named-hosts/envoy-named-hosts/pynetdicom sni=right cert=none echo"
FAILING = "envoy-sni-named-hosts/envoy-named-hosts/dcmtk sni=none cert=none echo"


def real_run() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def cell(doc: dict[str, Any], cell_id: str) -> dict[str, Any]:
    return next(c for c in doc["cells"] if c["id"] == cell_id)


def broken(doc: dict[str, Any]) -> dict[str, Any]:
    """The same run, had the proxy started requiring client certificates: a passing cell now fails."""
    doc = copy.deepcopy(doc)
    c = cell(doc, PASSING)
    c.update(actual="fail", verdict="unexpected", reason="tls-cert-required",
             summary="the server requires a client certificate and the client sent none")
    return doc


def test_the_same_run_twice_has_no_changes() -> None:
    changes = compare(real_run(), real_run())
    assert (changes.changed, changes.new, changes.vanished) == ([], [], [])
    assert changes.headline() == "no cell changed"


def test_a_cell_that_passed_and_now_fails_is_a_regression() -> None:
    changes = compare(real_run(), broken(real_run()))
    assert [c.id for c in changes.regressions] == [PASSING]
    assert changes.regressions[0].describe() == f"{PASSING}: pass → fail (tls-cert-required)"
    assert changes.lines() == [f"regression {PASSING}: pass → fail (tls-cert-required)"]


def test_a_fix_is_a_change_but_no_regression() -> None:
    changes = compare(broken(real_run()), real_run())
    assert changes.regressions == []
    assert [c.describe() for c in changes.other_changes] == [f"{PASSING}: fail (tls-cert-required) → pass"]


def test_a_failure_for_another_reason_is_a_change_but_no_regression() -> None:
    new = real_run()
    cell(new, FAILING)["reason"] = "tls-unknown-ca"
    changes = compare(real_run(), new)
    assert changes.regressions == []
    assert [c.describe() for c in changes.other_changes] == [
        f"{FAILING}: fail (tls-no-matching-sni) → fail (tls-unknown-ca)"]


def test_cells_are_matched_by_id_so_other_cells_show_as_new_and_gone() -> None:
    old, new = real_run(), real_run()
    gone = new["cells"].pop(0)
    added = copy.deepcopy(new["cells"][0])
    added["id"] = "another/scenario/cell"
    new["cells"].append(added)
    changes = compare(old, new)
    assert changes.vanished == [gone["id"]]
    assert changes.new == ["another/scenario/cell"]
    assert changes.changed == []
    assert changes.headline() == "0 regressions, 0 other changes, 1 new cells, 1 gone"


def test_invoke_diff_exits_1_on_a_regression_and_0_otherwise(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    json_report.write_document(real_run(), tmp_path / "old" / "results.json")
    json_report.write_document(broken(real_run()), tmp_path / "new" / "results.json")
    assert app.diff(str(tmp_path / "old"), str(tmp_path / "new" / "results.json")) == 1
    assert app.diff(str(tmp_path / "new"), str(tmp_path / "old")) == 0
    assert app.diff(str(tmp_path / "old"), str(tmp_path / "old")) == 0


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", r"not JSON \(line 1\)"),
    ('{"cells": []}', "not a dicomtls results.json"),
    ('{"run": {}, "environments": [], "cells": [{"id": "x"}]}', "not a dicomtls results.json"),
    ("[1, 2]", "not a dicomtls results.json"),
])
def test_a_bad_results_file_is_a_one_line_usage_error(tmp_path: Path, content: str | None, message: str) -> None:
    bad = tmp_path / "results.json"
    if content is not None:
        bad.write_text(content)
    good = tmp_path / "good.json"
    json_report.write_document(real_run(), good)
    with pytest.raises(UsageError, match=message) as raised:
        app.diff(str(good), str(bad))
    assert "\n" not in str(raised.value)
    assert str(bad) in str(raised.value)
