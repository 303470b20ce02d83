"""A finding is shown with the cells of its environment that prove it, in every report."""

from __future__ import annotations

import copy
from types import SimpleNamespace

from dicomtls.findings import Finding, prove
from dicomtls.report import html, markdown
from dicomtls.scenario import Probe

from .recorded_run import real_run


def _result(cell_id: str, client_cert: str, actual: str, reason: str | None) -> SimpleNamespace:
    probe = Probe(client="dcmtk", sni="none", client_cert=client_cert, operation="echo")
    return SimpleNamespace(cell=SimpleNamespace(id=cell_id, probe=probe), actual=actual, reason=reason)


def test_a_finding_is_proved_by_exactly_the_cells_matching_its_probe_fields() -> None:
    finding = Finding.of("accepts an expired client certificate", severity="high", client_cert="expired")
    proved = prove(finding, [_result("a", "expired", "pass", None), _result("b", "valid", "pass", None),
                             _result("c", "expired", "fail", "tls-cert-expired")])
    assert [c["id"] for c in proved.cells] == ["a", "c"]
    assert proved.cells[1]["reason"] == "tls-cert-expired"


def test_a_finding_no_probe_can_show_has_no_cells() -> None:
    assert prove(Finding("int-ca is a self-signed root", "low"), [_result("a", "none", "pass", None)]).cells == ()


def test_reports_show_findings_next_to_the_cells_that_prove_them() -> None:
    doc = copy.deepcopy(real_run())
    env = doc["environments"][0]
    env["findings"] = [{"text": "validation_context.allow_expired_certificate: true <kept>",
                        "cells": [{"id": "x/y/dcmtk cert=expired echo", "actual": "pass", "reason": None}]}]
    md = markdown.render(doc)
    assert r"⚠ validation\_context.allow\_expired\_certificate: true &lt;kept&gt;" in md
    assert "✔ x/y/dcmtk cert=expired echo" in md
    page = html.render(doc)
    assert "allow_expired_certificate: true &lt;kept&gt;" in page
    assert "x/y/dcmtk cert=expired echo" in page
