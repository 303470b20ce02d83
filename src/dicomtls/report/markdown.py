"""summary.md: the run as GitHub-flavoured Markdown, for $GITHUB_STEP_SUMMARY or a pull-request comment.

Unexpected cells come first, with their reason and fix, because that is what
a reader of a red check needs; then one table per scenario (✅ pass, 🟡 a
failure the scenario expects, ❌ not what the scenario says), the expected
failures by reason, and each environment with links to its logs. The run's
timing is on one line of its own (see :data:`RUN_LINE`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dicomtls.diff import Diff
from dicomtls.findings import describe
from dicomtls.report import fixes as fix_rows
from dicomtls.report import layout, redact_all

EMOJI = {"pass": "✅", "xfail": "🟡", "unexpected": "❌"}
RUN_LINE = "<sub>run:"  # the one line with when and how long; everything else depends on the results alone
MAX_DETAILED = 50  # unexpected cells shown in full; GitHub caps a step summary at 1 MiB
MAX_EVIDENCE_LINES = 8


_MARKUP = re.compile(r"([\\`*_\[\]~])")


def _text(value: object) -> str:
    """Plain text that Markdown and GitHub's HTML sanitiser show as written: no emphasis, links or tags."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKUP.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def _cell(value: object) -> str:
    """Text for a table cell: a pipe would end the cell."""
    return _text(value).replace("|", "\\|")


def _code(value: object) -> str:
    """Inline code, fenced with more backticks than the text contains."""
    text = str(value).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _block(lines: list[str]) -> list[str]:
    text = "\n".join(lines)
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return [fence, *lines, fence]


def _mark(cell: layout.GridCell) -> str:
    r = cell.record
    if cell.status == "pass":
        return EMOJI["pass"] + (f" {_cell(r['site'])}" if r.get("site") else "")
    if cell.status == "xfail":
        return f"{EMOJI['xfail']} {_cell(r['reason'])}"
    if r.get("policy"):
        return f"{EMOJI['unexpected']} {_cell(layout.got(r))}, breaks the policy"
    if r["actual"] == "pass" and r["expected"] == "pass":  # arrived at another site than expected
        return f"{EMOJI['unexpected']} {_cell(layout.got(r))}, expected {_cell(layout.wanted(r))}"
    if r["actual"] == "pass":
        return f"{EMOJI['unexpected']} passed, expected {_cell(r['expected_reason'])}"
    return f"{EMOJI['unexpected']} {_cell(r['reason'])}"


def render(doc: dict[str, Any], changes: Diff | None = None) -> str:
    doc = redact_all(doc)
    cells, run = doc["cells"], doc["run"]
    problems = layout.unexpected(cells)
    violations = doc.get("policy_violations") or []
    ok = len(cells) - len(problems)
    out: list[str] = []
    if problems or violations:
        also = f", {len(violations)} policy violations" if violations else ""
        out.append(f"## ❌ dicomtls: {len(problems)} unexpected{also}, {ok}/{len(cells)} cells as expected")
    else:
        out.append(f"## ✅ dicomtls: {ok}/{len(cells)} cells as expected")
    versions = ", ".join(f"{k} {v}" for k, v in run.get("versions", {}).items())
    out += ["", f"scenarios: {_text(', '.join(run.get('scenarios', [])))} · "
                f"{len(doc['environments'])} environments · {_text(versions)}",
            "", f"{RUN_LINE} started {_text(run.get('started'))}, {run.get('wall_s', 0):.1f}s, "
                f"backend {_text(run.get('backend'))}</sub>", ""]

    if problems:
        out += ["### Unexpected cells", ""]
        for r in problems[:MAX_DETAILED]:
            out += _unexpected(r)
        if len(problems) > MAX_DETAILED:
            out += [f"… and {len(problems) - MAX_DETAILED} more: see report.html or results.json", ""]

    if violations:
        out += ["### Policy violations", ""]
        out += [f"- {EMOJI['unexpected']} **{_text(v['environment'])}**: {_text(v['rule'])}: {_text(v['what'])}"
                for v in violations]
        out.append("")

    if changes is not None:
        out += _changes(changes)

    for grid in layout.grids(cells):
        served = ["served certificate"] if grid.sites else []
        out += [f"### {_text(grid.scenario)}", "",
                "| environment | client | sni | client cert | "
                + " | ".join(_cell(o) for o in [*grid.operations, *served]) + " |",
                "|---" * (4 + len(grid.operations) + len(served)) + "|"]
        for row in grid.rows:
            env = f"**{_cell(row.environment)}**" if row.first_of_environment else ""
            marks = [_mark(c) if c else "" for c in row.cells] + ([_cell(row.certificate)] if served else [])
            out.append(f"| {env} | {_cell(row.client)} | {_cell(row.sni)} | {_cell(row.client_cert)} | "
                       + " | ".join(marks) + " |")
        out.append("")

    if doc.get("fixes"):
        out += _fixes(doc["fixes"])

    legend = layout.expected_failures(cells)
    if legend:
        out += ["### Expected failures", ""]
        out += [f"- {EMOJI['xfail']} {_code(g.reason)} ×{g.count}: {_text(g.summary)}; fix: {_text(g.fix)}"
                for g in legend]
        out.append("")

    fault_lines = layout.faults(cells)
    if fault_lines:
        out += ["### Faults", "", "The same object is sent again after each fault and checked in Orthanc's REST API.",
                "", "| cell | reason | fault | client saw | proxy logged | interrupted object | retry |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {_cell(f.id)} | {_code(f.reason)} | {_cell(f.injected)} | {_cell(f.client_saw)} | "
                f"{_cell(f.proxy_logged)} | {_cell(f.interrupted)} | "
                f"{'✅' if f.retry_ok else '❌'} {_cell(f.retry)} |" for f in fault_lines]
        out.append("")

    out += ["### Environments", "", "| environment | scenarios | path | logs |", "|---|---|---|---|"]
    for env in doc["environments"]:
        path = " → ".join(["client", *reversed(env.get("components", []))])
        logs = " · ".join(f"[{_cell(name)}]({link})" for name, link in env.get("logs", {}).items()) or "none kept"
        name = _cell(env["name"]) + (f" ❌ did not start: {_cell(env['error'])}" if env.get("error") else "")
        if (env.get("scan") or {}).get("error"):
            name += f" ❌ scan-error: {_cell(env['scan']['error'])}"
        out.append(f"| {name} | {_cell(', '.join(env.get('scenarios', [])))} | {_cell(path)} | {logs} |")
    for env in doc["environments"]:
        if env.get("sites"):
            sites = "; ".join(f"{_text(s['name'])}: {_text(', '.join(s['server_names']))}" for s in env["sites"])
            out += ["", f"{_text(env['name'])} routes by SNI to sites {sites} (the first takes the catch-all route)."]
    if releases := layout.releases(cells):
        out += ["", "**Releases** (what each cell ran: real, upstream-image or twin):", "",
                "| release | basis | cell | result |", "|---|---|---|---|"]
        out += [f"| {_cell(r.release)} | {_cell(r.basis)} | {_cell(r.id)} | {_cell(r.outcome)} |" for r in releases]
    for environment, commands in layout.documented_commands(cells).items():
        out += ["", f"**{_text(environment)}**: your documented commands:", ""]
        out += [f"- {'✔' if c.passed else '✘'} {_code(c.command)} ({_text(c.note)})"
                + (f": {_text(c.why)}" if c.why else "") for c in commands]
    for env in doc["environments"]:
        if env.get("findings"):
            out += ["", f"**{_text(env['name'])}**: findings:", ""]
            for finding in env["findings"]:
                severity = f"**{_text(finding['severity'])}** " if finding.get("severity") else ""
                out.append(f"- ⚠ {severity}{_text(finding['text'])}")
                out += [f"  - {_text(describe(cell))}" for cell in finding.get("cells", [])]
    for env in doc["environments"]:
        if env.get("unhonoured"):
            out += ["", f"**{_text(env['name'])}**: not reproduced from the manifests (its cells say nothing about "
                        "these):", "", *(f"- {_text(line)}" for line in env["unhonoured"])]
    out += ["", "✅ pass · 🟡 a failure the scenario expects · ❌ not what the scenario says. "
                "Every cell's diagnosis is in report.html and results.json; logs are in the run's `logs/`.", ""]
    return "\n".join(out)


def _unexpected(r: dict[str, Any]) -> list[str]:
    lines = [f"- {EMOJI['unexpected']} **{_text(r['id'])}**: expected {_text(layout.wanted(r))}, "
             f"got {_text(layout.got(r))}"]
    if r.get("summary"):
        lines.append(f"  - why: {_text(r['summary'])}")
    if r.get("fix"):
        lines.append(f"  - fix: {_text(r['fix'])}")
    if r.get("command"):
        lines.append(f"  - ran: {_code(r['command'])}")
    evidence = list(r.get("evidence") or [])
    if evidence:
        shown = evidence[:MAX_EVIDENCE_LINES]
        if len(evidence) > len(shown):
            shown.append(f"… {len(evidence) - len(shown)} more lines in results.json")
        lines += ["", *("  " + line for line in _block(shown))]
    lines.append("")
    return lines


def _fixes(fixes: dict[str, Any]) -> list[str]:
    lines = ["### Fixes", "", f"{_text(fix_rows.headline(fixes))}: ✔ passes · ✘ does not · ⚠ passes but breaks another "
             "cell or a PS3.15 verdict · – not tried.", ""]
    for cells, trials in fix_rows.grouped(fix_rows.rows(fixes)):
        lines.append(f"- **{_text(cells[0].environment)}** ({_code(cells[0].reason)}): "
                     + ", ".join(_code(c.cell) for c in cells))
        for t in trials:
            patch = f" · [patch]({t.patch})" if t.patch else ""
            result = t.result if len(cells) == 1 else (f"not tried: {t.outcome}" if t.status == "not tried"
                                                       else t.outcome)
            lines.append(f"  - {t.mark} {_text(t.kind)} {_code(t.candidate)}: {_text(t.change)} → {_text(result)}"
                         + patch)
            if t.cost and t.status != "not tried":
                lines.append(f"    - costs: {_text(t.cost)}")
            if t.verdicts:
                lines.append(f"    - PS3.15: {_text(', '.join(t.verdicts))}")
            if t.others:
                lines.append(f"    - other cells changed: {_text('; '.join(t.others))}")
    for broken in fixes.get("broken", []):
        lines.append(f"- ❌ a variant did not start: {_text(broken)}")
    lines.append("")
    return lines


def _changes(changes: Diff) -> list[str]:
    lines = [f"### Since the baseline: {_text(changes.headline())}", ""]
    for change in changes.regressions:
        lines.append(f"- ❌ regression {_text(change.describe())}")
    for change in changes.other_changes:
        lines.append(f"- 🔀 {_text(change.describe())}")
    for cell_id in changes.new:
        lines.append(f"- ➕ new {_text(cell_id)}")
    for cell_id in changes.vanished:
        lines.append(f"- ➖ gone {_text(cell_id)}")
    lines.append("")
    return lines


def write(doc: dict[str, Any], path: Path, changes: Diff | None = None) -> None:
    path.write_text(render(doc, changes), encoding="utf-8")
