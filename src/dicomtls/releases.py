"""Releases that changed whether a DICOM client gets through, each as the cells a scenario runs before and after it.

A scenario's ``releases:`` rows name a release (Envoy 1.23.0, dcmtk 3.6.8, JDK 24), what it changed and for which
clients, and which of the scenario's cells stand for the behaviour before and after it; the ``expect:`` rules say
what each cell must do, as everywhere. What a cell is made of is measured, not declared: after the run each cell of
a row gets its ``release_basis``:

- ``real``: the program that made the release ran, in a version on that side of it (this machine's package, a
  Docker image built from Debian's, a client version);
- ``upstream-image``: the same, from the project's own image (dicomtls.upstream_images);
- ``twin``: another version of the program (or another program, for a release of one dicomtls does not run, such as
  the JDK) configured as that side's defaults: the side says how (``twin``);
- ``version-mismatch``: the program ran in a version on the wrong side and the side declares no twin: the row's cell
  shows nothing about the release, and says so.

The docs table of releases (docs/explanation/releases.md) is written from these rows by ``invoke docs``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from dicomtls.results import EnvironmentInfo, MatrixResult
    from dicomtls.scenario import Cell, Scenario

Basis = Literal["real", "upstream-image", "twin", "version-mismatch"]
Side = Literal["before", "after"]


class ReleaseSide(BaseModel):
    """The cells that behave as the program did on one side of a release."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: dict[str, list[str]]
    """Axis -> values, as an ``expect`` rule matches (environment, client, profile, client_version, ...)."""
    twin: str | None = None
    """How these cells stand for this side where the program that runs is not such a release (a twin): the settings
    that make it behave as that side's defaults. A cell whose program runs a version on this side is real whatever
    this says; one on the other side without it is a version mismatch. Required for a program dicomtls does not run
    (the JDK)."""

    @field_validator("match", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    def matches(self, values: dict[str, str]) -> bool:
        return all(values.get(axis) in allowed for axis, allowed in self.match.items())


class ReleaseRow(BaseModel):
    """One release, what it changed for which DICOM clients, and the cells on either side of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release: str
    """The release as people name it: "Envoy 1.23.0"."""
    program: str | None = None
    """What made the release: a component kind (envoy, nginx, orthanc), a client (dcmtk), or a program dicomtls does
    not run (jdk), whose cells are then all twins. None: no release but a change of configuration (an ECDSA server
    certificate), whose cells are all real."""
    version: str | None = None
    """The release's version: the before side runs an older one, the after side this one or newer."""
    changed: str
    """What the release changed, in one line."""
    clients: str
    """The DICOM clients whose answer it changed."""
    before: list[ReleaseSide] = Field(min_length=1)
    """The cells that behave as before the release (several entries where some are twins and some not)."""
    after: list[ReleaseSide] = Field(min_length=1)
    """The cells that behave as the release and those after it."""

    @field_validator("version")
    @classmethod
    def _a_version(cls, value: str | None) -> str | None:
        try:
            Version(value) if value is not None else None
        except InvalidVersion:
            raise ValueError(f"version {value!r} is not a version number: write it like 1.23.0") from None
        return value

    def side(self, cell: Cell) -> tuple[Side, ReleaseSide] | None:
        """Which side of the release the cell stands for, and the entry that says so (None: not this row's)."""
        values = cell_values(cell)
        for name in ("before", "after"):
            found = next((entry for entry in getattr(self, name) if entry.matches(values)), None)
            if found is not None:
                return name, found  # type: ignore[return-value]
        return None


def cell_values(cell: Cell) -> dict[str, str]:
    """A cell's axes as ``expect`` rules and release sides match them."""
    from dataclasses import asdict

    return {"environment": cell.environment, **asdict(cell.probe)}


def row_problems(rows: Iterable[ReleaseRow], cells: list[Cell], runs: set[str]) -> list[str]:
    """What is wrong with a scenario's rows: a side that matches no cell, or a program dicomtls does not run
    (``runs``: the component kinds and clients) whose side declares no twin."""
    problems = []
    for row in rows:
        if (row.program is None) != (row.version is None):
            problems.append(f"release {row.release!r}: give program and version together (or neither, for a "
                            "change of configuration)")
        for name in ("before", "after"):
            for side in getattr(row, name):
                if not any(side.matches(cell_values(c)) for c in cells):
                    problems.append(f"release {row.release!r}: {name} {side.match} matches no cell: match the cells "
                                    "that show it")
                if row.program is not None and row.program not in runs and side.twin is None:
                    problems.append(f"release {row.release!r}: dicomtls does not run {row.program}, so its {name} "
                                    "cells are twins: say how they are configured (twin:)")
    return problems


def basis(row: ReleaseRow, side: Side, entry: ReleaseSide, ran: str | None) -> Basis:
    """What a cell on ``side`` of ``row`` (matched by ``entry``) was made of, from the version of ``row.program``
    that ran (None: it did not run, or reported no version; an upstream image's reads "1.22.5 (REFERENCE@DIGEST)"):
    the project's image of a release on that side, else a twin where the entry says how it is configured, else the
    program itself on the right side of the release, or not."""
    if row.version is None:
        return "twin" if entry.twin is not None else "real"  # a change of configuration
    number = re.match(r"\d+(\.\d+)*", ran) if ran else None  # the first of "3.6.7, 3.6.9" is the default client
    running = Version(number.group(0)) if number else None
    fits = running is not None and (running < Version(row.version)) == (side == "before")
    if fits and ran is not None and " (" in ran:
        return "upstream-image"  # the release's own build: a twin's settings only restate its defaults
    if entry.twin is not None:
        return "twin"  # configured away from what it is (another version, or another build's defaults)
    return "real" if fits else "version-mismatch"


def program_version(row: ReleaseRow, cell: Cell, env: EnvironmentInfo | None, run_versions: dict[str, str]) -> str | None:
    """The version of ``row.program`` this cell ran: the environment's component, or the client (the version the
    cell asked for, else the run's)."""
    if row.program is None:
        return None
    if env is not None and row.program in env.versions:
        return env.versions[row.program]
    if cell.probe.client == row.program:
        if cell.probe.client_version != "default":
            return cell.probe.client_version
        return run_versions.get(row.program)
    return None


def annotate(result: MatrixResult, scenarios: list[Scenario]) -> None:
    """Give each cell of a release row its row and basis, from the versions the run recorded."""
    rows = {s.name: s.releases for s in scenarios if s.releases}
    if not rows:
        return
    for cell_result in result.cells:
        cell = cell_result.cell
        for row in rows.get(cell.scenario, ()):
            found = row.side(cell)
            if found is None:
                continue
            env = next((e for e in result.environments
                        if e.name == cell.environment and cell.scenario in e.scenarios), None)
            ran = program_version(row, cell, env, result.run.versions)
            cell_result.release = f"{row.release} ({found[0]})"
            cell_result.release_basis = basis(row, found[0], found[1], ran)
            break


def _cells_text(cells: list[Cell]) -> str:
    shown = []
    for cell in cells:
        outcome = "✔" if cell.expected == "pass" else f"✘ `{cell.expected_reason}`"
        shown.append(f"{cell.environment} · {cell.probe.label()}: {outcome}")
    return "<br>".join(shown)


def docs_table(scenario: Scenario) -> str:
    """The releases table: one row per release, its before and after cells with what each is expected to do."""
    cells = scenario.cells()
    lines = [
        "| release | what changed | for which clients | before: cell → expected | after: cell → expected |",
        "|---|---|---|---|---|",
    ]
    for row in scenario.releases:
        sides = {cell.id: found[0] for cell in cells if (found := row.side(cell)) is not None}
        before = [c for c in cells if sides.get(c.id) == "before"]
        after = [c for c in cells if sides.get(c.id) == "after"]
        twins = "".join(f"<br>*{name} twin: {entry.twin}*" for name in ("before", "after")
                        for entry in getattr(row, name) if entry.twin)
        lines.append(f"| {row.release} | {row.changed}{twins} | {row.clients} | {_cells_text(before)} | "
                     f"{_cells_text(after)} |")
    return "\n".join(lines)

