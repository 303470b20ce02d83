"""The results model: what a run found, cell by cell and environment by environment.

Reports, diff, merge and results.json read only this module, and it imports nothing that plans, starts or runs
anything (no backend, client, component or manifest): ``import dicomtls.report.json`` stays light, and a report can
be written from a results.json on a machine with none of those. The types behind ``Cell``, ``FaultReport`` and
``ScanResult`` are named for the type checker only: a result holds them, the model never makes one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from dicomtls.findings import ProvedFinding
from dicomtls.reasons import Facts, Reason

if TYPE_CHECKING:
    from dicomtls.faults import FaultReport
    from dicomtls.scan import ScanResult
    from dicomtls.scenario import Cell

OBSERVE = "observe"  # a cell's expectation when nothing is expected: `invoke probe` of an existing endpoint
NOT_VERIFIED = "not verified"  # how a passing C-STORE's detail starts when no REST API could check it


class Outcome(StrEnum):
    """What a cell's client achieved (``CellResult.actual``, a cell's ``expected``)."""

    PASS = "pass"
    FAIL = "fail"


class Verdict(StrEnum):
    """Whether a cell came out as its scenario expected (``CellResult.verdict``)."""

    OK = "ok"
    UNEXPECTED = "unexpected"
    """Not as expected, a policy rule broken, or not an outcome at all: a deadline ended the cell, dicomtls failed
    running it, or a fault's object was lost."""


@dataclass(frozen=True)
class BrokenRule:
    """A policy rule a cell broke (dicomtls.policy): its name, and what it wants of the cell."""

    rule: str
    wants: str  # "pass", "fail", or "fail (REASON or REASON)"


@dataclass(frozen=True)
class PolicyViolation:
    """A policy rule broken by something other than a cell: a finding, a PS3.15 verdict, the served certificate."""

    rule: str
    """The rule's name (a preset's, or the policy file's ``name:``)."""
    environment: str
    """The environment (or, for `invoke scan`, the target) that broke it."""
    what: str
    """What broke it: the finding, the verdict's first failed requirement, the certificate and its days left; or
    why it could not be judged (no scan, a scan error, an unknown verdict), which does not hold either."""
    file: str | None = None
    """The user's file whose setting broke it (a finding's), for a CI annotation there; None when unknown."""
    line: int | None = None
    """The setting's 1-based line in ``file``; None when unknown."""


@dataclass
class CellResult:
    """One cell as it ran: what the client achieved, and for a failure the diagnosis, its fix and its evidence."""

    cell: Cell  # what ran (scenario, environment, the probe's axes) and what was expected of it
    actual: str  # an Outcome's value: pass | fail
    reason: Reason | None  # a failure's diagnosis; None for a pass
    summary: str  # the diagnosis in one sentence, with what this cell saw
    fix: str  # what to change, on which side
    evidence: tuple[str, ...]  # the client's and the proxy's own lines the diagnosis read
    command: str
    detail: str  # a pass's detail: the stored object found in the server, or what could not check it
    duration_s: float
    sent_bytes: int | None = None  # a C-STORE's dataset size
    site: str | None = None  # in an environment with sites: the site whose server took the association
    certificate: str | None = None  # the subject of the leaf certificate the client was served, when it saw one
    fault: FaultReport | None = None  # a fault cell: what was injected, what client and proxy saw, the retry
    facts: Facts = field(default_factory=Facts)  # what the diagnosis established: decisions read these, not summary
    deadline: str | None = None  # "cell" or "run": the deadline that ended the cell (its reason is timeout)
    error: str | None = None  # dicomtls's own failure while running the cell, its first line
    policy: tuple[BrokenRule, ...] = ()  # the policy rules this cell broke (``--policy``)
    association_s: float | None = None  # connect to association accepted, where the client measures it
    release: str | None = None  # a releases row's cell: "Envoy 1.23.0 (after)" (dicomtls.releases)
    release_basis: str | None = None  # what that cell ran: real | upstream-image | twin | version-mismatch

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.actual)

    @property
    def verdict(self) -> Verdict:
        if self.deadline is not None or self.error is not None:
            return Verdict.UNEXPECTED  # not an outcome at all: the cell did not end, or dicomtls failed running it
        if self.policy:
            return Verdict.UNEXPECTED  # whatever the scenario expects, a policy says it must not be so
        if self.fault is not None and not self.fault.retry_ok:
            return Verdict.UNEXPECTED  # whatever the client saw, the object was lost
        if self.cell.expected == OBSERVE:
            return Verdict.OK
        same = self.actual == self.cell.expected and (self.actual == "pass" or self.reason == self.cell.expected_reason)
        if same and self.actual == "pass" and self.cell.expected_site is not None:
            same = self.site == self.cell.expected_site
        return Verdict.OK if same else Verdict.UNEXPECTED


@dataclass
class EnvironmentInfo:
    """One environment of a run (or one endpoint of a probe): what ran, where, its logs, its TLS scan."""

    key: str  # identity of what runs: scenarios that describe the same environment share it
    name: str
    scenarios: list[str]  # the scenarios whose cells ran in it
    components: list[str]  # the component kinds it ran, the server's and the proxy's
    entry: str  # HOST:PORT the clients connected to
    server_names: list[str]  # the names its certificates carry
    pki_dir: str
    logs: dict[str, str]  # component -> its log file, relative to the run's --out directory once the environment has stopped
    error: str | None = None  # why it did not start (its cells are then environment-failed)
    position: int = 0  # index in the whole plan, so merged shards keep an unsharded run's order
    scan: ScanResult | None = None  # the entry's TLS versions, suites, chains and DICOM profile verdicts
    versions: dict[str, str] = field(default_factory=dict)  # component kind -> the version this environment runs
    unhonoured: list[str] = field(default_factory=list)  # manifest fields the environment does not reproduce
    findings: list[ProvedFinding] = field(default_factory=list)  # what the manifests do, with the cells showing it
    sites: list[dict[str, object]] = field(default_factory=list)  # name and server_names of each site behind one proxy
    manifests: dict[str, object] | None = None
    """The user's files it was read from (files, resource, a chart's values files and --set): read again, they
    make the same environment."""
    source_file: str | None = None
    """The manifest its proxy was read from (a run of ``--manifests``), for CI annotations; None otherwise."""
    source_line: int | None = None
    """The first line of its resource in ``source_file`` (a YAML document's); None when the whole file is it."""


@dataclass
class RunInfo:
    """The run's header: when, on which backend, with which versions of everything, which scenarios."""

    started: str  # ISO 8601, UTC
    backend: str
    versions: dict[str, str]  # component kind or client -> version; openssl and python too
    scenarios: list[str]
    wall_s: float = 0.0
    shard: str | None = None  # "K/N" when this run is one shard of a larger one
    jobs: int = 1  # environments in flight at once


@dataclass
class MatrixResult:
    """A whole run: its header, its environments and every cell, in the plan's order."""

    run: RunInfo
    environments: list[EnvironmentInfo] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    violations: list[PolicyViolation] = field(default_factory=list)  # policy rules broken by more than a cell

    @property
    def exit_code(self) -> int:
        """1 when a cell was not as expected, or when something did not run at all: an environment that failed
        to start or a component that stopped fails an observed run too, since its cells prove nothing; and when a
        policy rule was broken."""
        broken = any(e.error for e in self.environments) or any(
            c.reason is Reason.ENVIRONMENT_FAILED for c in self.cells) or bool(self.violations)
        return 0 if all(c.verdict == "ok" for c in self.cells) and not broken else 1

