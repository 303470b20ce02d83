"""A fuzz campaign: many mutated inputs per target, every crash recorded instead of stopping at the first, so one
run lists every distinct crash site (exception type and the dicomtls line it came from). `invoke fuzz` runs it."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import UnsatisfiedAssumption

import dicomtls
from dicomtls.errors import UsageError
from tests.fuzz.mutate import Mutated
from tests.fuzz.targets import ROOT, TARGETS, Target

PACKAGE = Path(dicomtls.__file__).parent  # the dicomtls being fuzzed (a crash site is its innermost line)

CI = settings(derandomize=True, database=None, deadline=None, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
"""The suite's fuzz tests: the same examples on every run (no random seed, no example database), no deadline
(a loaded CI machine is slow, not wrong)."""


class Crash(Exception):
    """What the property forbids: an exception other than UsageError, or a UsageError of more than one line."""


def check(target: Target, case: Mutated) -> bool:
    """The property: the input ends in a result (True) or in a one-line UsageError (False)."""
    try:
        target.run(case)
    except UsageError as exc:
        if "\n" in str(exc) or not str(exc).strip():
            raise Crash(f"a usage error that is not one line: {str(exc)!r}") from exc
        return False
    return True


def site(exc: BaseException) -> str:
    """Where a crash happened: its exception type and the innermost dicomtls line in the traceback (the
    innermost line at all when none is dicomtls's)."""
    cause = exc.__cause__ if isinstance(exc, Crash) and exc.__cause__ is not None else exc
    frames = traceback.extract_tb(cause.__traceback__)
    ours = [f for f in frames if Path(f.filename).is_relative_to(PACKAGE)] or frames
    if not ours:
        return f"{type(cause).__name__} at ?"
    filename = Path(ours[-1].filename)
    where = f"{filename.relative_to(ROOT) if filename.is_relative_to(ROOT) else filename}:{ours[-1].lineno}"
    kind = "multi-line UsageError" if isinstance(exc, Crash) else type(exc).__name__
    return f"{kind} at {where}"


@dataclass
class Found:
    """One crash site: how often it was hit, and the smallest input that hit it."""

    site: str
    hits: int = 0
    example: str = ""
    message: str = ""


@dataclass
class TargetReport:
    name: str
    tried: int = 0
    usage_errors: int = 0
    crashes: dict[str, Found] = field(default_factory=dict)


def run_target(target: Target, examples: int, seed: int, say: Callable[[str], None] = lambda _: None
               ) -> TargetReport:
    """``examples`` inputs from random ``seed``; generation only: a crash is recorded, not shrunk."""
    report = TargetReport(target.name)

    @hypothesis.seed(seed)
    @settings(CI, max_examples=examples, derandomize=False, phases=[Phase.generate])
    @given(target.inputs)
    def explore(case: Mutated) -> None:
        try:
            made = check(target, case)
        except UnsatisfiedAssumption:
            raise  # an input that cannot be made (tests.fuzz.targets.run_store): not tried
        except Exception as exc:  # noqa: BLE001 - a campaign records every crash and goes on
            report.tried += 1
            say(f"{target.name} #{report.tried}: {case.describe()} -> crash")
            found = report.crashes.setdefault(site(exc), Found(site(exc)))
            found.hits += 1
            if not found.example or len(case.describe()) < len(found.example):
                found.example = case.describe()
                found.message = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            return
        report.tried += 1
        report.usage_errors += not made
        say(f"{target.name} #{report.tried}: {case.describe()} -> {'result' if made else 'usage error'}")

    explore()
    return report


def split(examples: int, targets: list[Target]) -> dict[str, int]:
    """``examples`` shared by the targets' weights, the remainder to the first ones (each gets at least one)."""
    total = sum(t.weight for t in targets)
    shares = {t.name: examples * t.weight // total for t in targets}
    for target in targets[: examples - sum(shares.values())]:
        shares[target.name] += 1
    return {name: max(1, share) for name, share in shares.items()}


def campaign(examples: int, seed: int, names: list[str] | None = None, say: Callable[[str], None] = print,
             verbose: bool = False) -> list[TargetReport]:
    chosen = [t for t in TARGETS if not names or t.name in names]
    budget = split(examples, chosen)
    reports = []
    for target in chosen:
        say(f"fuzz {target.name}: {budget[target.name]} inputs")
        reports.append(run_target(target, budget[target.name], seed, say if verbose else lambda _: None))
    return reports
