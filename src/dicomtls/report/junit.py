"""junit.xml: one testcase per cell, so CI test-report tools show each cell; unexpected cells fail."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from typing import Any

from dicomtls.report import json as json_report
from dicomtls.report import layout, redact
from dicomtls.results import MatrixResult


def write(result: MatrixResult, path: Path) -> None:
    write_document(json_report.to_dict(result), path)


def write_document(doc: dict[str, Any], path: Path) -> None:
    """From the results.json document, so a merge of shards writes the same file an unsharded run does."""
    cells, run = doc["cells"], doc["run"]
    failures = len(layout.unexpected(cells))
    suites = ET.Element("testsuites", name="dicomtls", tests=str(len(cells)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name="dicomtls matrix", tests=str(len(cells)),
                          failures=str(failures), errors="0", timestamp=run["started"],
                          time=f"{run['wall_s']:.2f}")
    for r in cells:
        case = ET.SubElement(suite, "testcase", classname=f"{r['scenario']}.{r['environment']}",
                             name=layout.probe_of(r).label(), time=f"{r['duration_s']:.3f}")
        if r["verdict"] != "ok":
            message = f"expected {layout.wanted(r)}, got {layout.got(r)}" + (f": {r['summary']}" if r["summary"] else "")
            failure = ET.SubElement(case, "failure", message=redact(message),
                                    type="policy" if r.get("policy") else str(r["reason"] or "unexpected-pass"))
            failure.text = redact("\n".join([*r["evidence"], f"fix: {r['fix']}" if r["fix"] else "", r["command"]]).strip())
    violations = doc.get("policy_violations") or []
    if violations:  # one failing case per broken rule that no cell carries
        policy = ET.SubElement(suites, "testsuite", name="dicomtls policy", tests=str(len(violations)),
                               failures=str(len(violations)), errors="0", timestamp=run["started"], time="0")
        for v in violations:
            case = ET.SubElement(policy, "testcase", classname=f"policy.{v['environment']}", name=v["rule"], time="0")
            ET.SubElement(case, "failure", message=redact(v["what"]), type="policy")
        suites.set("tests", str(len(cells) + len(violations)))
        suites.set("failures", str(failures + len(violations)))
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
