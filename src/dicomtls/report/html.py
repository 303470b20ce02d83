"""report.html: the whole run in one self-contained page a person can open from a CI artifact.

Rendered with Jinja from ``templates/report/`` with autoescaping on; styles and
the small script are inlined and a Content-Security-Policy forbids fetching
anything, so the file works offline and from any directory. Logs are linked
relative to the page (``logs/<environment>/…``). Whatever the results hold
beyond the fields known here (a TLS scan of each environment, say) is shown
generically, so new data appears without a template change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jinja2

from dicomtls.render import TEMPLATES
from dicomtls.report import fixes as fix_rows
from dicomtls.report import layout, redact_all
from dicomtls.scenario import Probe

TEMPLATE = "report/report.html.j2"

_KNOWN_DOC = {"run", "environments", "cells", "fixes", "policy_violations"}
_KNOWN_RUN = {"started", "backend", "versions", "scenarios", "wall_s", "shard", "jobs"}
_KNOWN_ENV = {"key", "name", "scenarios", "components", "versions", "entry", "server_names", "pki_dir", "logs", "error",
              "position", "unhonoured", "findings"}
_KNOWN_CELL = {"id", "scenario", "environment", "expected", "expected_reason", "actual", "verdict", "reason",
               "summary", "fix", "evidence", "command", "detail", "duration_s", "sent_bytes", "fault_report", "policy",
               *(f.name for f in dataclasses.fields(Probe))}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _table_columns(value: Any) -> list[str] | None:
    """Column names when ``value`` is a list of mappings (rendered as a table), else None."""
    if not value or not all(isinstance(v, dict) for v in value):
        return None
    return list(dict.fromkeys(k for row in value for k in row))


def render(doc: dict[str, Any]) -> str:
    """The page for a results.json document; every string in it is redacted first."""
    doc = redact_all(doc)
    cells = doc["cells"]
    environments = doc["environments"]
    problems = layout.unexpected(cells)
    violations = doc.get("policy_violations") or []
    also = f", {len(violations)} policy violations" if violations else ""
    anchors = {(s, e["name"]): e["key"] for e in environments for s in e.get("scenarios", [])}
    template = _env.get_template(TEMPLATE)
    return template.render(
        doc=doc,
        run=doc["run"],
        environments=environments,
        grids=layout.grids(cells),
        unexpected=problems,
        violations=violations,
        broken_rules=layout.broken_rules,
        legend=layout.expected_failures(cells),
        fixes=fix_rows.grouped(fix_rows.rows(doc["fixes"])) if doc.get("fixes") else None,
        fixes_headline=fix_rows.headline(doc["fixes"]) if doc.get("fixes") else "",
        faults=layout.faults(cells),
        headline=f"{len(cells) - len(problems)}/{len(cells)} cells as expected, {len(problems)} unexpected{also}",
        wanted=layout.wanted,
        got=layout.got,
        table_columns=_table_columns,
        env_anchor=lambda scenario, name: anchors.get((scenario, name), name),
        extra_cell_keys=lambda r: [k for k in r if k not in _KNOWN_CELL],
        extra_env_keys=lambda e: [k for k in e if k not in _KNOWN_ENV],
        extra_run_keys=[k for k in doc["run"] if k not in _KNOWN_RUN],
        extra_doc_keys=[k for k in doc if k not in _KNOWN_DOC],
    )


def write(doc: dict[str, Any], path: Path) -> None:
    path.write_text(render(doc), encoding="utf-8")
