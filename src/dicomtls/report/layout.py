"""How a results document is laid out for a person, shared by summary.md and report.html.

The terminal prints the same grids: one per scenario, a row per environment
and probe (client, SNI, client certificate, and any other axis that is not at
its default), a column per operation. Everything here reads the results.json
document, not live objects, so a merged or an old run renders the same way.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from dicomtls.results import NOT_VERIFIED, OBSERVE
from dicomtls.clients import display_names, documented_commands as client_commands
from dicomtls.scenario import Probe

_PROBE_FIELDS = dataclasses.fields(Probe)
_SHOWN = ("client", "sni", "client_cert", "operation")  # their own columns; other axes annotate the client
UNVERIFIED = "✔ not verified"  # a C-STORE that answered success with no REST API to check it


@dataclass(frozen=True)
class GridCell:
    record: dict[str, Any]
    status: str  # pass | xfail (a failure the scenario expects) | unexpected

    @property
    def mark(self) -> str:
        """Short text for the cell, the terminal's marks: ✔, ✘ reason, ‼ for anything unexpected."""
        r = self.record
        if self.status == "pass" and str(r.get("detail") or "").startswith(NOT_VERIFIED):
            return UNVERIFIED
        if self.status == "pass":
            return f"✔ {r['site']}" if r.get("site") else "✔"
        if self.status == "xfail":
            return f"✘ {r['reason']}"
        if r.get("policy"):
            return f"‼ {'✔' if r['actual'] == 'pass' else '✘ ' + str(r['reason'])} breaks the policy"
        if r["actual"] == "pass":
            if r.get("expected_site") and r["expected"] == "pass":
                return f"‼ ✔ at {r.get('site') or 'no site'}, expected {r['expected_site']}"
            return f"‼ ✔ passed, expected {r['expected_reason']}"
        return f"‼ ✘ {r['reason']}"


@dataclass
class Row:
    environment: str
    first_of_environment: bool
    client: str
    sni: str
    client_cert: str
    cells: list[GridCell | None]  # one per operation of the grid

    @property
    def certificate(self) -> str:
        """Who the certificate the client was served says it is (the first of the row's cells that saw one)."""
        return next((c.record["certificate"] for c in self.cells if c and c.record.get("certificate")), "")


@dataclass
class Grid:
    scenario: str
    operations: list[str]
    rows: list[Row]
    sites: bool = False  # some environment has several sites: show where each cell arrived and what it was served


@dataclass(frozen=True)
class ReasonGroup:
    reason: str
    count: int
    summary: str
    fix: str


def status(record: dict[str, Any]) -> str:
    if record["verdict"] != "ok":
        return "unexpected"
    return "pass" if record["actual"] == "pass" else "xfail"


def probe_of(record: dict[str, Any]) -> Probe:
    """The probe a results.json cell ran; axes an older file lacks take their defaults."""
    return Probe(**{f.name: record[f.name] for f in _PROBE_FIELDS if f.name in record})


def client_label(record: dict[str, Any]) -> str:
    """The client, with every other non-default axis in brackets, e.g. ``dcmtk (transport: plain)``."""
    extras = [
        f"{f.name.replace('_', ' ')}: {record[f.name]}"
        for f in _PROBE_FIELDS
        if f.name not in _SHOWN and f.name in record and record[f.name] != f.default
    ]
    return display_names().get(record["client"], record["client"]) + (f" ({', '.join(extras)})" if extras else "")


def grids(cells: list[dict[str, Any]]) -> list[Grid]:
    by_scenario: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for record in cells:
        by_scenario.setdefault(record["scenario"], []).append(record)
    result = []
    for scenario, records in by_scenario.items():
        operations = list(OrderedDict.fromkeys(r["operation"] for r in records))
        rows: OrderedDict[tuple[str, ...], dict[str, dict[str, Any]]] = OrderedDict()
        for r in records:
            key = (r["environment"], client_label(r), r["sni"], r["client_cert"])
            rows.setdefault(key, {})[r["operation"]] = r
        built: list[Row] = []
        previous = None
        for (environment, client, sni, cert), by_op in rows.items():
            built.append(Row(environment, environment != previous, client, sni, cert,
                             [GridCell(by_op[op], status(by_op[op])) if op in by_op else None for op in operations]))
            previous = environment
        result.append(Grid(scenario, operations, built, any(r.get("expected_site") or r.get("site") for r in records)))
    return result


def expected_failures(cells: list[dict[str, Any]]) -> list[ReasonGroup]:
    """The failures the scenarios expect, one group per reason, in order of first appearance."""
    groups: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for record in cells:
        if status(record) == "xfail":
            groups.setdefault(str(record["reason"]), []).append(record)
    return [ReasonGroup(reason, len(rs), rs[0]["summary"], rs[0]["fix"]) for reason, rs in groups.items()]


@dataclass(frozen=True)
class FaultLine:
    """One fault cell as the reports tell it: the fault, what the client saw, what the proxy logged, the retry."""

    id: str
    reason: str
    injected: str
    client_saw: str
    proxy_logged: str
    interrupted: str
    retry_ok: bool
    retry: str


def faults(cells: list[dict[str, Any]]) -> list[FaultLine]:
    """The fault cells of a run, in order (a results.json written before faults has none)."""
    return [FaultLine(r["id"], str(r["reason"]), f["injected"], f["client_saw"], f["proxy_logged"],
                      f["interrupted"], f["retry_ok"], f["retry"])
            for r in cells if (f := r.get("fault_report"))]


def unexpected(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in cells if status(r) == "unexpected"]


def broken_rules(record: dict[str, Any]) -> str:
    """The policy rules a cell broke, by name."""
    return "; ".join(f"policy rule {b['rule']!r}" for b in record.get("policy") or ())


def wanted(record: dict[str, Any]) -> str:
    """What the scenario (or a policy rule the cell broke) expects of a cell, in words: ``pass``, ``pass at SITE``
    or ``fail (reason)``."""
    if record.get("policy"):
        return "; ".join(f"{b['wants']} ({b['rule']})" for b in record["policy"])
    if record["expected"] == "pass":
        return f"pass at {record['expected_site']}" if record.get("expected_site") else "pass"
    return f"fail ({record['expected_reason']})"


def got(record: dict[str, Any]) -> str:
    if record["actual"] == "pass":
        return f"pass at {record['site']}" if record.get("site") else "pass"
    return f"fail ({record['reason']})"


@dataclass(frozen=True)
class DocumentedCommand:
    command: str
    note: str
    record: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.record["actual"] == "pass")

    @property
    def why(self) -> str:
        """Nothing for a pass; the reason and what it means for a failure."""
        if self.passed:
            return ""
        summary = self.record.get("summary")
        return f"{self.record['reason']}" + (f" ({summary})" if summary else "")


def documented_commands(cells: list[dict[str, Any]]) -> OrderedDict[str, list[DocumentedCommand]]:
    """Per observed environment (a manifest run's), each documented command its cells ran, with how it went:
    "your documented command works / does not, and why" at a glance."""
    found: OrderedDict[str, list[DocumentedCommand]] = OrderedDict()
    by_env: OrderedDict[str, dict[Probe, dict[str, Any]]] = OrderedDict()
    for record in cells:
        if record["expected"] == OBSERVE:
            by_env.setdefault(record["environment"], {})[probe_of(record)] = record
    for environment, probes in by_env.items():
        ran = [DocumentedCommand(command, note, probes[probe]) for command, note, probe in client_commands()
               if probe in probes]
        if ran:
            found[environment] = ran
    return found


@dataclass(frozen=True)
class ReleaseCell:
    """A cell of a releases row (dicomtls.releases): which side of which release, what it ran, how it went."""

    release: str  # "Envoy 1.23.0 (after)"
    basis: str  # real | upstream-image | twin | version-mismatch
    id: str
    outcome: str  # ✔, or ✘ and the reason


def releases(cells: list[dict[str, Any]]) -> list[ReleaseCell]:
    """The cells that stand for a side of a release, in run order (a results.json without releases has none)."""
    return [ReleaseCell(str(r["release"]), str(r.get("release_basis")), r["id"],
                        "✔" if r["actual"] == "pass" else f"✘ {r['reason']}")
            for r in cells if r.get("release")]
