"""What changed between two runs: cells whose outcome or reason moved, cells that appeared or went away.

Cells are matched by their ``id`` (scenario/environment/probe label), so a run
of other scenarios simply shows up as new and vanished cells. A regression is
a cell that passed before and fails now, whatever the scenario expects: that
is the change a CI job must stop on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Change:
    id: str
    before: str  # "pass" or "fail (reason)"
    after: str
    regression: bool

    def describe(self) -> str:
        return f"{self.id}: {self.before} → {self.after}"


@dataclass
class Diff:
    changed: list[Change] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changed if c.regression]

    @property
    def other_changes(self) -> list[Change]:
        return [c for c in self.changed if not c.regression]

    def headline(self) -> str:
        if not (self.changed or self.new or self.vanished):
            return "no cell changed"
        return (f"{len(self.regressions)} regressions, {len(self.other_changes)} other changes, "
                f"{len(self.new)} new cells, {len(self.vanished)} gone")

    def lines(self) -> list[str]:
        """One line per difference, regressions first."""
        return ([f"regression {c.describe()}" for c in self.regressions]
                + [f"changed {c.describe()}" for c in self.other_changes]
                + [f"new {cell_id}" for cell_id in self.new]
                + [f"gone {cell_id}" for cell_id in self.vanished])


def outcome(record: dict[str, Any]) -> str:
    return "pass" if record["actual"] == "pass" else f"fail ({record.get('reason')})"


def compare(old: dict[str, Any], new: dict[str, Any]) -> Diff:
    """Differences from ``old`` to ``new`` (results.json documents), in ``new``'s cell order."""
    before = {c["id"]: c for c in old["cells"]}
    after = {c["id"]: c for c in new["cells"]}
    diff = Diff()
    for cell_id, record in after.items():
        previous = before.get(cell_id)
        if previous is None:
            diff.new.append(cell_id)
        elif outcome(previous) != outcome(record):
            regression = previous["actual"] == "pass" and record["actual"] != "pass"
            diff.changed.append(Change(cell_id, outcome(previous), outcome(record), regression))
    diff.vanished = [cell_id for cell_id in before if cell_id not in after]
    return diff
