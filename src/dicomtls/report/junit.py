"""junit.xml: one testcase per cell, so CI test-report tools show each cell; unexpected cells fail."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from dicomtls.matrix import MatrixResult
from dicomtls.report import redact


def write(result: MatrixResult, path: Path) -> None:
    failures = sum(1 for r in result.cells if r.verdict != "ok")
    suites = ET.Element("testsuites", name="dicomtls", tests=str(len(result.cells)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name="dicomtls matrix", tests=str(len(result.cells)),
                          failures=str(failures), errors="0", timestamp=result.run.started,
                          time=f"{result.run.wall_s:.2f}")
    for r in result.cells:
        case = ET.SubElement(suite, "testcase", classname=f"{r.cell.scenario}.{r.cell.environment}",
                             name=r.cell.probe.label(), time=f"{r.duration_s:.3f}")
        if r.verdict != "ok":
            expected = r.cell.expected + (f" ({r.cell.expected_reason})" if r.cell.expected_reason else "")
            got = r.actual + (f" ({r.reason})" if r.reason else "")
            failure = ET.SubElement(case, "failure", message=f"expected {expected}, got {got}: {r.summary}",
                                    type=str(r.reason or "unexpected-pass"))
            failure.text = redact("\n".join([*r.evidence, f"fix: {r.fix}" if r.fix else "", r.command]).strip())
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
