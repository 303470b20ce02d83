"""GitHub annotations for a run: each finding, unexpected cell and broken policy rule as a workflow command
(``::error file=F,line=L,title=T::message``), so a reviewer sees it on the line of the user's file that causes it.

Read from results.json alone (what the Action has after the run, and what a later job downloads). A cell is
annotated where the finding that proves it points (the Envoy line that lets an expired certificate through), else
at its environment's manifest (the resource's first line), else on no file; cells with the same complaint at one
place make one annotation, since GitHub shows at most ten of a level per step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dicomtls.findings import SEVERITIES, at_least

Level = Literal["error", "warning", "notice"]


@dataclass(frozen=True)
class Annotation:
    """One workflow command: its level, title and message, and where it belongs (file and line, when known)."""

    level: Level
    title: str
    message: str
    file: str | None = None
    line: int | None = None

    def command(self) -> str:
        """The line a GitHub runner turns into an annotation, escaped as the workflow-command rules require."""
        properties = [f"file={_property(self.file)}"] if self.file else []
        properties += [f"line={self.line}"] if self.file and self.line else []
        properties.append(f"title={_property(self.title)}")
        return f"::{self.level} {','.join(properties)}::{_data(self.message)}"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def of_run(doc: dict[str, Any], workspace: Path | None = None) -> list[Annotation]:
    """Every annotation of a results.json document: errors for environments that did not start (at their
    manifest), broken policy rules and unexpected cells, then a warning (medium and worse) or notice per finding not already an error.
    Files are made relative to ``workspace`` (GitHub's $GITHUB_WORKSPACE) when they are inside it."""
    base = (workspace or Path.cwd()).resolve()
    found = [*_environment_errors(doc), *_violations(doc), *_cells(doc), *_findings(doc)]
    return [Annotation(a.level, a.title, a.message, _relative(a.file, base), a.line) if a.file else a for a in found]


def workspace() -> Path:
    """Where the user's files are: $GITHUB_WORKSPACE in a GitHub job, else the working directory."""
    return Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd())


def _relative(file: str, base: Path) -> str:
    path = Path(file) if Path(file).is_absolute() else Path.cwd() / file
    resolved = path.resolve()
    return str(resolved.relative_to(base)) if resolved.is_relative_to(base) else file


def _environment_errors(doc: dict[str, Any]) -> Iterator[Annotation]:
    for env in doc["environments"]:
        if env.get("error"):
            yield Annotation("error", f"dicomtls: {env['name']} did not run",
                             f"{env['name']}: {env['error']}: its cells prove nothing", env.get("source_file"),
                             env.get("source_line"))


def _sources(doc: dict[str, Any]) -> dict[str, tuple[str | None, int | None]]:
    """Each environment's name -> the manifest (file, line) its proxy was read from; (None, None) when none."""
    return {env["name"]: (env.get("source_file"), env.get("source_line")) for env in doc["environments"]}


def _violations(doc: dict[str, Any]) -> Iterator[Annotation]:
    sources = _sources(doc)
    for broken in doc.get("policy_violations", []):
        file, line = (broken["file"], broken.get("line")) if broken.get("file") else \
            sources.get(broken["environment"], (None, None))
        yield Annotation("error", f"dicomtls: policy rule '{broken['rule']}' broken",
                         f"{broken['environment']}: {broken['what']}", file, line)


def _proving(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each proven cell's id -> the worst finding of its environment that it proves (where it is annotated)."""
    shown: dict[str, dict[str, Any]] = {}
    for env in doc["environments"]:
        for finding in sorted(env.get("findings", []), key=lambda f: -SEVERITIES.index(f.get("severity", "medium"))):
            for cell in finding.get("cells", []):
                shown.setdefault(cell["id"], finding)
    return shown


def _complaint(cell: dict[str, Any]) -> tuple[str, str]:
    """(title, what is wrong) of an unexpected cell; cells with the same pair at one place share an annotation."""
    if cell.get("deadline"):
        return "dicomtls: a cell did not end", f"ended by the {cell['deadline']} deadline"
    if cell.get("error"):
        return "dicomtls: a cell could not run", f"dicomtls failed running it: {cell['error']}"
    actual = "passed" if cell["actual"] == "pass" else "failed"
    actual += f" ({cell['reason']})" if cell.get("reason") else ""
    if cell.get("policy"):
        rules = "; ".join(f"'{b['rule']}' wants {b['wants']}" for b in cell["policy"])
        return f"dicomtls: policy rule {', '.join(repr(b['rule']) for b in cell['policy'])} broken", \
            f"{actual}, but policy rule {rules}"
    report = cell.get("fault_report")
    if report is not None and not report.get("retry_ok", True):
        return "dicomtls: an object was lost", f"{actual}, and the retry after the fault did not store the object"
    expected = cell["expected"] + (f" ({cell['expected_reason']})" if cell.get("expected_reason") else "")
    return "dicomtls: unexpected cell", f"{actual}, expected {expected}"


def _cells(doc: dict[str, Any]) -> Iterator[Annotation]:
    proving, sources = _proving(doc), _sources(doc)
    grouped: dict[tuple[str | None, int | None, str, str], list[str]] = {}
    for cell in doc["cells"]:
        if cell["verdict"] != "unexpected":
            continue
        finding = proving.get(cell["id"], {})
        file, line = (finding["file"], finding.get("line")) if finding.get("file") else \
            sources.get(cell["environment"], (None, None))
        title, what = _complaint(cell)
        grouped.setdefault((file, line, title, what), []).append(cell["id"])
    for (file, line, title, what), ids in grouped.items():
        cells = f"{len(ids)} cells" if len(ids) > 1 else "a cell"
        yield Annotation("error", title, f"{what}: {cells}: " + "; ".join(ids), file, line)


def _findings(doc: dict[str, Any]) -> Iterator[Annotation]:
    """A finding as a warning or notice, unless a policy violation already stands at its line."""
    taken = {(v.get("file"), v.get("line")) for v in doc.get("policy_violations", []) if v.get("file")}
    for env in doc["environments"]:
        for finding in env.get("findings", []):
            if finding.get("file") and (finding.get("file"), finding.get("line")) in taken:
                continue
            severity = finding.get("severity", "medium")
            level: Level = "warning" if at_least(severity, "medium") else "notice"
            yield Annotation(level, f"dicomtls: {severity} finding in {env['name']}", finding["text"],
                             finding.get("file"), finding.get("line"))
