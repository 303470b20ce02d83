"""junit.xml as CI test-report tools read it (junitparser): a testcase per cell, unexpected cells as failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from junitparser import Failure, JUnitXml

from dicomtls.report import junit

from . import recorded_run as recorded
from .recorded_run import real_run


def with_unexpected() -> dict[str, Any]:
    return recorded.with_unexpected("the server requires a client certificate and the client sent none",
                                    "send a client certificate", ["client: TLS alert certificate required"])


def cases(path: Path) -> list[Any]:
    return [case for suite in JUnitXml.fromfile(str(path)) for case in suite]


def test_junit_has_one_testcase_per_cell_named_by_scenario_environment_and_probe(tmp_path: Path) -> None:
    doc = real_run()
    junit.write_document(doc, tmp_path / "junit.xml")
    found = cases(tmp_path / "junit.xml")
    assert len(found) == len(doc["cells"]) == 34
    for case, cell in zip(found, doc["cells"]):
        assert case.classname == f"{cell['scenario']}.{cell['environment']}"
        assert f"{cell['scenario']}/{cell['environment']}/{case.name}" == cell["id"]
        assert case.is_passed
    assert JUnitXml.fromfile(str(tmp_path / "junit.xml")).tests == 34


def test_unexpected_cells_are_failures_carrying_the_diagnosis(tmp_path: Path) -> None:
    junit.write_document(with_unexpected(), tmp_path / "junit.xml")
    failed = {c.name: c for c in cases(tmp_path / "junit.xml") if not c.is_passed}
    assert set(failed) == {"pynetdicom sni=right cert=none echo", "pynetdicom sni=wrong cert=none echo"}
    broken = failed["pynetdicom sni=right cert=none echo"].result[0]
    assert isinstance(broken, Failure)
    assert broken.type == "tls-cert-required"
    assert broken.message == ("expected pass, got fail (tls-cert-required): "
                              "the server requires a client certificate and the client sent none")
    assert "fix: send a client certificate" in broken.text
    surprise = failed["pynetdicom sni=wrong cert=none echo"].result[0]
    assert surprise.type == "unexpected-pass"
    assert surprise.message == "expected fail (tls-hostname-mismatch), got pass"
