"""The Fixes section's rows, from results.json's ``fixes``: one entry per failing cell, one line per
candidate (✔ passes, ✘ does not, ⚠ passes but breaks another cell or a PS3.15 verdict, – not tried), for
console, summary.md and report.html alike."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

MARKS = {"passes": "✔", "fails": "✘", "breaks": "⚠", "not tried": "–"}


@dataclass(frozen=True)
class TrialRow:
    mark: str
    candidate: str
    kind: str
    change: str
    result: str
    """What happened: "pass", the reason it still fails, or why it was not tried."""
    cost: str | None
    others: list[str]
    """The environment's other cells whose outcome changed, "label: before → after"."""
    verdicts: list[str]
    patch: str | None
    tree: str | None
    status: str
    outcome: str
    """The cell's outcome alone ("pass", a reason, or why it was not tried), to tell like trials apart."""


@dataclass(frozen=True)
class CellRow:
    environment: str
    cell: str
    reason: str
    trials: list[TrialRow]


def rows(fixes: dict[str, Any]) -> list[CellRow]:
    found = []
    for entry in fixes.get("cells", []):
        trials = []
        for t in entry["trials"]:
            candidate = t["candidate"]
            if t["mark"] == "not tried":
                result = f"not tried: {t['why']}"
            elif candidate["kind"] == "client-side":
                result = f"{t['cell']}: {t['after']}"
            else:
                result = t["after"]
            trials.append(TrialRow(
                MARKS[t["mark"]], candidate["id"], candidate["kind"], candidate["change"], result, candidate["cost"],
                [f"{c['cell']}: {c['before']} → {c['after']}" for c in t.get("changed", [])],
                [f"{v['profile']} {_VERDICT[v['before']]} → {_VERDICT[v['after']]}"
                 for v in t.get("verdicts", [])],
                t.get("patch"), t.get("tree"), t["mark"], t["why"] if t["mark"] == "not tried" else t["after"]))
        found.append(CellRow(entry["environment"], entry["cell"], entry["reason"], trials))
    return found


def grouped(cells: list[CellRow]) -> list[tuple[list[CellRow], list[TrialRow]]]:
    """Cells of one environment and reason whose candidates all ended alike, together: a proxy that fails every
    client without SNI the same way reads as one entry with its cells listed (and other cells changed means those
    outside the entry)."""
    groups: dict[tuple[Any, ...], tuple[list[CellRow], list[TrialRow]]] = {}
    for cell in cells:
        key = (cell.environment, cell.reason,
               tuple((t.candidate, t.status, t.outcome, t.patch, tuple(t.verdicts)) for t in cell.trials))
        groups.setdefault(key, ([], cell.trials))[0].append(cell)
    return [(cells, [replace(t, others=[o for o in t.others if o.split(": ", 1)[0] not in {c.cell for c in cells}])
                     for t in trials]) for cells, trials in groups.values()]


def headline(fixes: dict[str, Any]) -> str:
    cells = fixes.get("cells", [])
    fixed = sum(1 for c in cells if any(t["mark"] in ("passes", "breaks") for t in c["trials"]))
    return f"{fixed}/{len(cells)} failing cells have a candidate that makes them pass"


_VERDICT = {True: "✔", False: "✘", None: "?"}  # compliant, not, unknown
