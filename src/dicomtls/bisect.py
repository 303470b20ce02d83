"""Find the first version of a component where one cell's outcome flips, like `git bisect` over releases.

The versions are given in order. The first and the last are run; if their
outcomes (pass, or fail with a reason) differ, the versions between are halved
until two neighbours differ. That finds *the* flip when the outcome changes
once along the list, which is what a regression is; a list that flips and flips
back looks unchanged at its ends, so the report says which versions were run.

Each version is installed once into the cache (dicomtls.versions) and run with
the local backend pointed at that binary, with the component's ``version``
option set to what the binary reports, so a scenario's ``per_version`` options
apply. The cell runs through the matrix code, with its diagnosis and evidence.
On a backend that runs upstream images (``Backend.runs_upstream_images``:
``backend="docker"``) each version is instead the component's upstream
image tag (``image: upstream`` unless the scenario names a repository), pulled
once into Docker's cache (dicomtls.upstream_images): real releases that no
wheel carries, such as Envoy 1.22.5 and 1.23.0.

A cell is selected by its id (``SCENARIO/ENVIRONMENT/LABEL``, as in
results.json) or by ``key=value`` pairs over ``scenario`` and the probe axes
(``environment client sni client_cert operation transport server_cert_check
profile``), separated by spaces or commas, that must match exactly one cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from dicomtls.backends import BACKENDS, Backend, backend_class
from dicomtls.backends.local import LocalBackend
from dicomtls.errors import UsageError
from dicomtls.results import CellResult
from dicomtls.progress import SilentProgress
from dicomtls.runner import run_matrix
from dicomtls.scenario import AXES, Cell, Scenario, available, load_scenario
from dicomtls.versions import Installed, install

_KEYS = ("scenario", *AXES)


@dataclass
class Step:
    version: str
    installed: Installed
    result: CellResult
    applied: list[str]  # the scenario's per_version keys that matched this version

    @property
    def outcome(self) -> str:
        return "pass" if self.result.actual == "pass" else f"fail {self.result.reason}"

    def evidence(self) -> list[str]:
        r = self.result
        if r.actual == "pass":
            return [f"passed{': ' + r.detail if r.detail else ''}", f"ran: {r.command}"]
        return [f"why: {r.summary}", *r.evidence, f"ran: {r.command}"]


@dataclass
class BisectResult:
    component: str
    cell: str
    versions: list[str]
    steps: list[Step] = field(default_factory=list)  # each version run, oldest first
    flip: tuple[Step, Step] | None = None
    backend: str = "local"

    @property
    def installs(self) -> tuple[int, int]:
        """(installed now, taken from the cache)"""
        fresh = sum(1 for s in self.steps if s.installed.fresh)
        return fresh, len(self.steps) - fresh

    def lines(self) -> list[str]:
        by_version = {s.version: s for s in self.steps}
        out = [f"bisect {self.component} over {', '.join(self.versions)} for {self.cell}"]
        for version in self.versions:
            step = by_version.get(version)
            out.append(f"  {version:12} {step.outcome if step else '(not run)'}")
        if self.flip is None:
            first = by_version[self.versions[0]]
            out.append(f"no flip: {self.versions[0]} and {self.versions[-1]} both {first.outcome}")
        else:
            before, after = self.flip
            out.append(f"first flip at {self.component} {after.version}: {before.version} {before.outcome} → "
                       f"{after.version} {after.outcome}")
            for step in (before, after):
                options = (f"per_version {', '.join(map(repr, step.applied))} applied" if step.applied
                           else "no per_version options applied")
                out.append(f"  evidence at {step.version} ({step.installed.what} {step.installed.executable} reports "
                           f"{step.installed.reports}; {options}):")
                out.extend(f"    {line}" for line in step.evidence())
        fresh, cached = self.installs
        if any(step.installed.what == "image" for step in self.steps):
            out.append(f"pulls: {fresh} new, {cached} from Docker's cache")
        else:
            out.append(f"installs: {fresh} new, {cached} from the cache")
        return out


def parse_versions(text: str) -> list[str]:
    versions = [v.strip() for v in re.split(r"[,\s]+", text) if v.strip()]
    if len(versions) < 2:
        raise UsageError("--versions needs at least two versions, oldest first: e.g. 1.38.3,1.39.3,1.40.0")
    if len(set(versions)) != len(versions):
        raise UsageError(f"--versions lists a version twice: {', '.join(versions)}")
    for v in versions:
        try:
            Version(v)
        except InvalidVersion:
            raise UsageError(f"--versions: {v!r} is not a version number: e.g. 1.40.0") from None
    return versions


def select_cell(selector: str, scenario_names: list[str] | None) -> tuple[Scenario, Cell]:
    """The one cell ``selector`` names, and its scenario."""
    if "/" in selector and "=" not in selector.split("/", 1)[0]:
        wanted_scenario = selector.split("/", 1)[0]
        scenarios = [load_scenario(wanted_scenario)]
        matches = [(s, c) for s in scenarios for c in s.cells() if c.id == selector.strip()]
    else:
        pairs = _pairs(selector)
        names = [pairs["scenario"]] if "scenario" in pairs else (scenario_names or available())
        scenarios = [load_scenario(n) for n in names]
        matches = [(s, c) for s in scenarios for c in s.cells() if _matches(s, c, pairs)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"--cell {selector!r} matches no cell: use a cell id from results.json or key=value "
                         f"pairs over {', '.join(_KEYS)}")
    sample = "; ".join(c.id for _, c in matches[:3])
    raise UsageError(f"--cell {selector!r} matches {len(matches)} cells (e.g. {sample}): add key=value pairs "
                     "until one is left")


def _pairs(selector: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in (p for p in re.split(r"[,\s]+", selector) if p):
        key, sep, value = item.partition("=")
        key = key.replace("-", "_")
        if not sep or key not in _KEYS or not value:
            raise UsageError(f"--cell: {item!r} is not key=value with a key among {', '.join(_KEYS)}")
        pairs[key] = value
    return pairs


def _matches(scenario: Scenario, cell: Cell, pairs: dict[str, str]) -> bool:
    values = {"scenario": scenario.name, "environment": cell.environment, **vars(cell.probe)}
    return all(values.get(k) == v for k, v in pairs.items())


def _at_version(scenario: Scenario, environment: str, kind: str, version: str,
                image: bool = False) -> tuple[Scenario, list[str]]:
    """The scenario with ``kind`` in ``environment`` asking for ``version`` (``image``: from its upstream image,
    unless it names one), and the per_version keys that apply."""
    envs = []
    applied: list[str] | None = None
    for env in scenario.environments:
        if env.name == environment:
            for role in ("server", "proxy"):
                config = getattr(env, role)
                if config is not None and config.kind == kind:
                    options = {"image": "upstream"} if image else {}
                    config = config.model_copy(update={"options": {**options, **config.options, "version": version}})
                    env = env.model_copy(update={role: config})
                    applied = [spec for spec in config.per_version if Version(version) in SpecifierSet(spec)]
        envs.append(env)
    if applied is None:
        raise UsageError(f"environment {environment} of scenario {scenario.name} has no {kind}: "
                         "choose a cell whose environment runs it")
    return scenario.model_copy(update={"environments": envs}), applied


def _pulled(variant: Scenario, environment: str, kind: str, version: str, backend: Any,
            say: Callable[[str], None]) -> Installed:
    """The upstream image ``variant`` runs ``kind`` from, pulled unless Docker has it."""
    from dicomtls import upstream_images

    env = next(e for e in variant.environments if e.name == environment)
    role = "server" if env.server.kind == kind else "proxy"
    component = getattr(env, role).build(role)
    reference = upstream_images.reference(component)
    say(f"{'using' if backend.has_image(reference) else 'pulling'} {reference}")
    pulled = upstream_images.pull(backend.client, component)
    return Installed(kind, version, pulled.version, pulled.pinned, pulled.fresh, what="image")


def bisect(kind: str, versions: list[str], selector: str, scenario_names: list[str] | None, out: Path,
           say: Callable[[str], None] = lambda _: None, cache: Path | None = None, jobs: int = 1,
           backend: str = "local") -> BisectResult:
    """``jobs`` > 1: the first and the last version, which do not depend on each other, run side by side; the
    halving between them depends on each answer, so it runs one version at a time."""
    if backend not in BACKENDS:
        raise UsageError(f"bisect --backend {backend!r}: use local (PyPI wheels) or docker (upstream image tags)")
    scenario, cell = select_cell(selector, scenario_names)
    upstream = backend_class(backend).runs_upstream_images
    result = BisectResult(kind, cell.id, versions, backend=backend)
    steps: dict[int, Step] = {}

    def run(index: int) -> Step:
        if index in steps:
            return steps[index]
        version = versions[index]
        runner: Backend
        if upstream:
            variant, applied = _at_version(scenario, cell.environment, kind, version, image=True)
            runner = backend_class(backend)(out / f"{kind}-{version}" / "envs")
            installed = _pulled(variant, cell.environment, kind, version, runner, say)
        else:  # the version's wheel binary, run as an installed program on this machine
            installed = install(kind, version, cache, say)
            variant, applied = _at_version(scenario, cell.environment, kind, installed.reports)
            runner = LocalBackend(out / f"{kind}-{version}" / "envs", executables={kind: installed.executable})
        # The scan costs about a second and gives a failure's diagnosis the server's side.
        matrix = run_matrix([variant], out / f"{kind}-{version}", runner, SilentProgress(), only={cell.id})
        step = Step(version, installed, matrix.cells[0], applied)
        say(f"{kind} {version}: {step.outcome}")
        steps[index] = step
        result.steps.append(step)
        return step

    low, high = 0, len(versions) - 1
    if jobs > 1:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="version") as pool:
            ends = list(pool.map(run, (low, high)))
    else:
        ends = [run(low), run(high)]
    result.steps.sort(key=lambda step: versions.index(step.version))
    first = ends[0].outcome
    if ends[1].outcome == first:
        return result
    while high - low > 1:
        middle = (low + high) // 2
        if run(middle).outcome == first:
            low = middle
        else:
            high = middle
    result.flip = (steps[low], steps[high])
    result.steps.sort(key=lambda step: versions.index(step.version))
    return result
