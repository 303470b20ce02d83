"""The terminal view: a live progress bar while cells run, then one matrix per scenario and the diagnoses.

When output is not a terminal (CI logs), progress degrades to one plain line per event.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from dicomtls.findings import describe
from dicomtls.report import fixes as fix_rows
from dicomtls.report import layout, redact
from dicomtls.report.json import cell_record
from dicomtls.results import OBSERVE, CellResult, MatrixResult, PolicyViolation
from dicomtls.scan import ScanResult


class ConsoleProgress:
    """Environments in flight and cells done/total on a terminal; one plain line per event in a CI log.

    Environments run side by side, so every method may be called from several threads at once."""

    def __init__(self, console: Console, jobs: int = 1) -> None:
        self.console = console
        self.live = console.is_terminal
        self.jobs = jobs
        self.failures = 0
        self.done = 0
        self.total = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._in_flight: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        self.total = total
        jobs = f", {self.jobs} environments at a time" if self.jobs > 1 else ""
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[failures]}"), TimeElapsedColumn(), console=self.console, transient=True,
            )
            self._task = self._progress.add_task("starting", total=total, failures="")
            self._progress.start()
        self.console.print(f"dicomtls: {total} cells{jobs}", highlight=False)

    def environment(self, name: str, state: str) -> None:
        with self._lock:
            if state == "stopped" or state.startswith("failed"):
                self._in_flight.pop(name, None)
            else:
                self._in_flight[name] = state
            description = "; ".join(f"{n}: {s}" for n, s in self._in_flight.items()) or "finishing"
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=escape(_shortened(description)))
        elif state != "stopped":
            self.console.print(f"environment {name}: {state}", markup=False, highlight=False)

    def cell_done(self, result: CellResult) -> None:
        with self._lock:
            self.done += 1
            if result.verdict != "ok":
                self.failures += 1
            done, failures = self.done, self.failures
        if self._progress is not None and self._task is not None:
            note = f"[red]{failures} unexpected" if failures else ""
            self._progress.update(self._task, advance=1, failures=note)
        else:
            self.console.print(f"[{done}/{self.total}] {_grid_cell(result).mark} {result.cell.id}",
                               markup=False, highlight=False)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _shortened(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


_STYLES = {"pass": "green", "xfail": "yellow", "unexpected": "bold red"}
_MARKS = {True: "✔", False: "✘", None: "?"}  # a PS3.15 verdict: compliant, not, unknown (a probe it reads failed)


def _mark(cell: layout.GridCell) -> Text:
    mark = cell.mark
    return Text(mark, style="yellow" if mark == layout.UNVERIFIED else _STYLES[cell.status])


def _grid_cell(result: CellResult) -> layout.GridCell:
    record = cell_record(result)
    return layout.GridCell(record, layout.status(record))


def print_result(result: MatrixResult, console: Console) -> None:
    run = result.run
    versions = ", ".join(f"{k} {v}" for k, v in run.versions.items())
    console.print(f"[bold]dicomtls matrix[/] backend={run.backend} started={run.started}", highlight=False)
    console.print(f"  {versions}", highlight=False)
    for grid in layout.grids([cell_record(r) for r in result.cells]):
        table = Table(title=grid.scenario, title_justify="left", title_style="bold")
        for name in ("environment", "client", "sni", "client cert", *grid.operations):
            table.add_column(name)
        if grid.sites:
            table.add_column("served certificate")
        for row in grid.rows:
            table.add_row(row.environment if row.first_of_environment else "", row.client, row.sni, row.client_cert,
                          *[_mark(c) if c else Text("") for c in row.cells],
                          *([row.certificate] if grid.sites else []), end_section=False)
        console.print(table)
    _print_scans(result, console)
    _print_documented(result, console)
    _print_findings(result, console)
    _print_unhonoured(result, console)
    _print_faults(result, console)
    _print_releases(result, console)
    unexpected = [r for r in result.cells if r.verdict != "ok"]
    for r in unexpected:
        _print_unexpected(r, console)
    print_violations(result.violations, console)
    observed = bool(result.cells) and all(r.cell.expected == OBSERVE for r in result.cells)
    _print_legend([r for r in result.cells if r.actual == "fail" and r.verdict == "ok"], console,
                  "failures" if observed else "expected failures")
    ok = len(result.cells) - len(unexpected)
    style = "green" if not unexpected and not result.violations else "bold red"
    violations = f", {len(result.violations)} policy violations" if result.violations else ""
    if observed:
        passed = sum(1 for r in result.cells if r.actual == "pass")
        broken = (f", {len(unexpected)} unexpected" if unexpected else "") + violations
        line = f"{passed} passed, {len(result.cells) - passed} failed{broken} in {run.wall_s:.1f}s"
        console.print(f"[bold red]{line}[/]" if broken else line, highlight=False)
        return
    console.print(
        f"[{style}]{ok}/{len(result.cells)} cells as expected, {len(unexpected)} unexpected{violations}[/] "
        f"across {len(result.environments)} environments in {run.wall_s:.1f}s",
        highlight=False,
    )


def print_fixes(fixes: dict[str, Any], console: Console) -> None:
    """The Fixes section: per failing cell each candidate, what it did to the environment's other cells and the
    PS3.15 verdicts, and its patch."""
    console.print(f"[bold]Fixes[/] ({fix_rows.headline(fixes)}; ✔ passes, ✘ does not, ⚠ passes but breaks "
                  "another cell or a PS3.15 verdict, – not tried):", highlight=False)
    for cells, trials in fix_rows.grouped(fix_rows.rows(fixes)):
        names = ", ".join(c.cell for c in cells)
        console.print(f"  {cells[0].environment} ({cells[0].reason}): {names}", highlight=False, markup=False)
        for t in trials:
            result = t.outcome if t.status == "not tried" or len(cells) > 1 else t.result
            shown = f"not tried: {result}" if t.status == "not tried" else result
            console.print(f"    {t.mark} {t.kind} {t.candidate}: {shown}", highlight=False, markup=False)
            if t.status == "not tried":
                continue
            details = ([f"costs: {t.cost}"] if t.cost else []) + ([f"PS3.15: {', '.join(t.verdicts)}"]
                                                                  if t.verdicts else [])
            broken = [o for o in t.others if ": pass → " in o]
            if t.others:
                passing = sum(1 for o in t.others if o.endswith("→ pass"))
                details.append(f"other cells changed: {len(t.others)}, {passing} of them to pass"
                               + (f"; broken: {'; '.join(broken)}" if broken else ""))
            if t.patch:
                details.append(f"patch: {t.patch}")
            for line in details:
                console.print(f"        {line}", highlight=False, markup=False)
    for broken in fixes.get("broken", []):
        console.print(f"  [bold red]a variant did not start: {broken}[/]", highlight=False)


def _print_documented(result: MatrixResult, console: Console) -> None:
    """In an observed run, the commands the config's owners document: does each work here, and why not."""
    for environment, commands in layout.documented_commands([cell_record(r) for r in result.cells]).items():
        console.print(f"[bold]{escape(environment)}[/]: your documented commands:", highlight=False)
        for c in commands:
            mark = Text("✔", style="green") if c.passed else Text("✘", style="red")
            console.print(Text("  ").append(mark).append(f" {c.command} ({c.note})" + (f": {c.why}" if c.why else "")))


def _print_findings(result: MatrixResult, console: Console) -> None:
    """What an environment's own configuration does that the user may not know, with the cells showing it."""
    for env in result.environments:
        if env.findings:
            console.print(f"[bold yellow]{env.name}[/]: findings:", highlight=False)
            for finding in env.findings:
                console.print(f"  ⚠ [{finding.severity}] {finding.text}", highlight=False, markup=False)
                for cell in finding.cells:
                    console.print(f"      {describe(cell)}", highlight=False, markup=False)


def _print_unhonoured(result: MatrixResult, console: Console) -> None:
    """Manifest fields an environment does not reproduce: its cells say nothing about them."""
    for env in result.environments:
        if env.unhonoured:
            console.print(f"[bold]{env.name}[/]: not reproduced from the manifests:", highlight=False)
            for line in env.unhonoured:
                console.print(f"  - {line}", highlight=False, markup=False)


def _print_releases(result: MatrixResult, console: Console) -> None:
    """Per cell of a releases row: the release side it stands for and what ran it (real, upstream image, twin)."""
    lines = layout.releases([cell_record(r) for r in result.cells])
    if lines:
        console.print("[bold]releases[/] (each cell's basis: real, upstream-image or twin):")
    for line in lines:
        console.print(f"  {line.release} [{line.basis}] {line.id}: {line.outcome}", highlight=False, markup=False)


def _print_faults(result: MatrixResult, console: Console) -> None:
    """Per fault cell: what was done, what the client saw, what the proxy logged, and whether the retry delivered."""
    lines = layout.faults([cell_record(r) for r in result.cells])
    if lines:
        console.print("[bold]faults[/] (the same object sent again after each, checked in Orthanc's REST API):")
    for f in lines:
        mark = Text("✔ retry delivered", style="green") if f.retry_ok else Text("✘ retry not delivered",
                                                                                   style="bold red")
        console.print(Text(f"  {f.id}: {f.reason}: ").append(mark))
        for label, text in (("fault", f.injected), ("client saw", f.client_saw), ("proxy logged", f.proxy_logged),
                            ("interrupted object", f.interrupted), ("retry", f.retry)):
            console.print(f"      {label}: {redact(text)}", highlight=False, markup=False)


def _print_unexpected(r: CellResult, console: Console) -> None:
    if r.policy:
        got = "passed" if r.actual == "pass" else f"failed ({r.reason})"
        for broken in r.policy:
            console.print(Text(f"‼ {r.cell.id}: {got}, but policy rule {broken.rule!r} wants {broken.wants}",
                               style="bold red"))
        if r.actual == "fail":
            console.print(f"    why: {r.summary}", highlight=False, markup=False)
        if r.command:
            console.print(f"    ran: {r.command}", highlight=False, markup=False)
        return
    if r.actual == "pass" and r.cell.expected == "pass":
        console.print(Text(f"‼ {r.cell.id}: arrived at site {r.site or '(none logged it)'}, but the scenario expects "
                           f"site {r.cell.expected_site}", style="bold red"))
        if r.detail:
            console.print(f"    {r.detail}", highlight=False, markup=False)
        return
    if r.actual == "pass":
        console.print(Text(f"‼ {r.cell.id}: passed, but the scenario expects {r.cell.expected_reason}",
                           style="bold red"))
        return
    want = {"pass": "pass", OBSERVE: "an outcome"}.get(r.cell.expected, str(r.cell.expected_reason))
    said = f"{r.reason}, expected {want}" if r.deadline is None else f"{r.reason} at the {r.deadline}'s deadline"
    console.print(Text(f"‼ {r.cell.id}: {said}", style="bold red"))
    console.print(f"    why: {r.summary}", highlight=False, markup=False)
    console.print(f"    fix: {r.fix}", highlight=False, markup=False)
    for line in r.evidence:
        console.print(f"    {redact(line)}", highlight=False, markup=False)
    if r.command:
        console.print(f"    ran: {r.command}", highlight=False, markup=False)


def _print_legend(expected_failures: list[CellResult], console: Console, title: str = "expected failures") -> None:
    """One line per reason for the failures the scenarios expect; results.json has each cell's evidence."""
    by_reason: OrderedDict[str, list[CellResult]] = OrderedDict()
    for r in expected_failures:
        by_reason.setdefault(str(r.reason), []).append(r)
    if not by_reason:
        return
    console.print(f"[bold]{title}[/] (evidence per cell in results.json):")
    for reason, cells in by_reason.items():
        console.print(f"  [yellow]✘ {reason}[/] ×{len(cells)}: {cells[0].summary}; fix: {cells[0].fix}",
                      highlight=False)


def _print_scans(result: MatrixResult, console: Console) -> None:
    """One line per scanned environment: its TLS versions and a mark per DICOM profile, then why one fails."""
    scanned = [e for e in result.environments if e.scan is not None]
    if not scanned:
        return
    console.print("[bold]TLS scan[/] of each entry (PS3.15 Annex B profiles; every finding in results.json):")
    for env in scanned:
        scan = env.scan
        assert scan is not None
        if scan.error:
            console.print(f"  {env.name}: {scan.status}: {scan.error}", highlight=False, markup=False)
            continue
        marks = "  ".join(f"{v.section} {_MARKS[v.compliant]}" for v in scan.verdicts)
        console.print(f"  {env.name}: {', '.join(scan.versions)}   {marks}", highlight=False, markup=False)
        # The first failed requirement of each profile; profiles failing the same one share a line.
        failing: OrderedDict[tuple[str, str, str], list[str]] = OrderedDict()
        for verdict in scan.verdicts:
            if verdict.compliant is not True:
                first = (verdict.failures or verdict.unknown)[0]
                failing.setdefault((_MARKS[verdict.compliant], first.requirement, first.observed), []).append(
                    verdict.section)
        for (mark, requirement, observed), sections in failing.items():
            console.print(f"      {mark} {', '.join(sections)}: {requirement}: {observed}", highlight=False,
                          markup=False)


def print_violations(violations: list[PolicyViolation], console: Console) -> None:
    """The policy rules a run broke beyond its cells: one red line each, with what broke it."""
    for v in violations:
        console.print(Text(f"‼ {v.environment}: policy rule {v.rule!r} broken: {v.what}", style="bold red"))


def print_scan(scan: ScanResult, console: Console) -> None:
    """Everything `invoke scan` found about one endpoint, then a verdict per DICOM TLS profile."""
    who = f"{scan.target}" + (f" (SNI {scan.sni})" if scan.sni else " (no SNI)")
    cert = "with the client certificate" if scan.client_cert else "without a client certificate"
    console.print(f"[bold]TLS scan[/] of {who}, {cert}, by {scan.tool} in {scan.duration_s:.1f}s", highlight=False)
    if scan.error:
        console.print(f"  ✘ {scan.status}: {scan.error}", highlight=False, markup=False)
        return
    for note in scan.notes:
        console.print(f"  note: {note}", highlight=False, markup=False)
    for version, suites in scan.protocols.items():
        names = ", ".join(s.openssl_name for s in suites) if suites else "refused"
        console.print(f"  {version:8} {names}", highlight=False, markup=False)
    for version, why in scan.unknown.items():
        console.print(f"  {version:8} unknown: {why}", highlight=False, markup=False)
    if scan.curves:
        console.print(f"  curves   {', '.join(scan.curves)}", highlight=False)
    if scan.prefers_tls13 is not None:
        console.print(f"  a TLS 1.2+1.3 client gets {'TLS 1.3' if scan.prefers_tls13 else 'TLS 1.2'}", highlight=False)
    for chain in scan.chains:
        console.print(f"  chain served {'with SNI ' + chain.sni if chain.sni else 'without SNI'}:", highlight=False,
                      markup=False)
        if chain.error:
            console.print(f"    no chain: {chain.error}", highlight=False, markup=False)
            continue
        for index, c in enumerate(chain.certificates):
            sans = f"; SANs {', '.join(c.sans)}" if c.sans else ""
            console.print(f"    [{index}] {c.subject} (issuer {c.issuer}; {c.key}; until {c.not_after}{sans})",
                          highlight=False, markup=False)
        facts = [f"intermediate {chain.intermediate}"]
        if chain.complete is not None:
            facts.append("chain leads to the CA" if chain.complete else "chain does NOT lead to the CA")
        if chain.hostname_match is not None:
            facts.append(f"leaf {'names' if chain.hostname_match else 'does NOT name'} {chain.sni}")
        console.print(f"    {'; '.join(facts)}", highlight=False, markup=False)
    console.print("[bold]DICOM TLS profiles[/] (PS3.15 Annex B):", highlight=False)
    for verdict in scan.verdicts:
        mark = Text(_MARKS[verdict.compliant], style={True: "green", False: "red", None: "yellow"}[verdict.compliant])
        console.print(Text("  ").append(mark).append(f" {verdict.section} {verdict.title}"))
        for finding in verdict.failures:
            console.print(f"      shall: {finding.requirement} ({finding.source}): {finding.observed}",
                          highlight=False, markup=False)
        for finding in verdict.unknown:
            console.print(f"      shall, unknown: {finding.requirement} ({finding.source}): {finding.observed}",
                          highlight=False, markup=False)
        for finding in verdict.warnings:
            console.print(f"      should: {finding.requirement} ({finding.source}): {finding.observed}",
                          highlight=False, markup=False)
