"""The results model: what a run found, cell by cell and environment by environment.

Reports, diff, merge and results.json read only this module, and it imports nothing that plans, starts or runs
anything (no backend, client, component or manifest): ``import dicomtls.report.json`` stays light, and a report can
be written from a results.json on a machine with none of those. The types behind ``Cell``, ``FaultReport`` and
``ScanResult`` are named for the type checker only: a result holds them, the model never makes one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dicomtls.findings import ProvedFinding
from dicomtls.reasons import Facts, Reason

if TYPE_CHECKING:
    from dicomtls.faults import FaultReport
    from dicomtls.scan import ScanResult
    from dicomtls.scenario import Cell

OBSERVE = "observe"  # a cell's expectation when nothing is expected: `invoke probe` of an existing endpoint
NOT_VERIFIED = "not verified"  # how a passing C-STORE's detail starts when no REST API could check it


@dataclass
class CellResult:
    cell: Cell
    actual: str  # pass | fail
    reason: Reason | None
    summary: str
    fix: str
    evidence: tuple[str, ...]
    command: str
    detail: str
    duration_s: float
    sent_bytes: int | None = None
    site: str | None = None  # in an environment with sites: the site whose server took the association
    certificate: str | None = None  # the subject of the leaf certificate the client was served, when it saw one
    fault: FaultReport | None = None  # a fault cell: what was injected, what client and proxy saw, the retry
    facts: Facts = field(default_factory=Facts)  # what the diagnosis established: decisions read these, not summary
    deadline: str | None = None  # "cell" or "run": the deadline that ended the cell (its reason is timeout)
    error: str | None = None  # dicomtls's own failure while running the cell, its first line

    @property
    def verdict(self) -> str:
        if self.deadline is not None or self.error is not None:
            return "unexpected"  # not an outcome at all: the cell did not end, or dicomtls failed running it
        if self.fault is not None and not self.fault.retry_ok:
            return "unexpected"  # whatever the client saw, the object was lost
        if self.cell.expected == OBSERVE:
            return "ok"
        same = self.actual == self.cell.expected and (self.actual == "pass" or self.reason == self.cell.expected_reason)
        if same and self.actual == "pass" and self.cell.expected_site is not None:
            same = self.site == self.cell.expected_site
        return "ok" if same else "unexpected"


@dataclass
class EnvironmentInfo:
    key: str
    name: str
    scenarios: list[str]
    components: list[str]
    entry: str
    server_names: list[str]
    pki_dir: str
    logs: dict[str, str]  # relative to the run's --out directory once the environment has stopped
    error: str | None = None
    position: int = 0  # index in the whole plan, so merged shards keep an unsharded run's order
    scan: ScanResult | None = None  # the entry's TLS versions, suites, chains and DICOM profile verdicts
    versions: dict[str, str] = field(default_factory=dict)  # component kind -> the version this environment runs
    unhonoured: list[str] = field(default_factory=list)  # manifest fields the environment does not reproduce
    findings: list[ProvedFinding] = field(default_factory=list)  # what the manifests do, with the cells showing it
    sites: list[dict[str, object]] = field(default_factory=list)  # name and server_names of each site behind one proxy
    manifests: dict[str, object] | None = None
    """The user's files it was read from (files, resource, a chart's values files and --set): read again, they
    make the same environment."""


@dataclass
class RunInfo:
    started: str
    backend: str
    versions: dict[str, str]
    scenarios: list[str]
    wall_s: float = 0.0
    shard: str | None = None  # "K/N" when this run is one shard of a larger one
    jobs: int = 1  # environments in flight at once


@dataclass
class MatrixResult:
    run: RunInfo
    environments: list[EnvironmentInfo] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when a cell was not as expected, or when something did not run at all: an environment that failed
        to start or a component that stopped fails an observed run too, since its cells prove nothing."""
        broken = any(e.error for e in self.environments) or any(
            c.reason is Reason.ENVIRONMENT_FAILED for c in self.cells)
        return 0 if all(c.verdict == "ok" for c in self.cells) and not broken else 1

