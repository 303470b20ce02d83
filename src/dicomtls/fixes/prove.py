"""Prove each candidate: run the variants of the failing cells' environments (and the changed clients) with the
matrix's own runner, side by side as --jobs allows, and compare every cell and PS3.15 verdict with the run they
came from. The user's files are copied and the copy edited; nothing is written in place."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import ValidationError

from dicomtls.backends import Backend
from dicomtls.deadlines import Deadlines
from dicomtls.errors import UsageError
from dicomtls.fixes import chart_values, envoy_bootstrap, haproxy, istio, nginx, options, patch, sidecar, traefik
from dicomtls.manifests.haproxy_environment import RESOURCE as HAPROXY_RESOURCE
from dicomtls.fixes.candidates import Candidate, NotApplicable, client_side, server_config, sidecar_candidate
from dicomtls.reasons import Reason
from dicomtls.results import CellResult, EnvironmentInfo, MatrixResult
from dicomtls.runner import Progress, run_matrix
from dicomtls.scenario import EnvironmentConfig, Expectation, Probe, ProbeGroup, Scenario, environment_key

Mark = Literal["passes", "fails", "breaks", "not tried"]
MARKS: dict[str, str] = {"passes": "✔", "fails": "✘", "breaks": "⚠", "not tried": "–"}

_SOURCES: dict[str, ModuleType] = {"EnvoyBootstrap": envoy_bootstrap, "IngressRouteTCP": traefik, "Gateway": istio,
                                   HAPROXY_RESOURCE: haproxy, "NginxServer": nginx}
"""The manifest kinds whose files a candidate can edit (the resource's prefix)."""


@dataclass
class CellChange:
    cell: str  # the probe's label
    before: str  # "pass" or the reason
    after: str


@dataclass
class VerdictChange:
    profile: str  # "B.10"
    title: str
    before: bool | None  # compliant; None: unknown
    after: bool | None


@dataclass
class Trial:
    candidate: Candidate
    mark: Mark
    after: str = ""
    """The cell's outcome with the candidate: "pass" or the reason."""
    cell: str = ""
    """The cell that was run: the failing one's label, or for a client-side candidate the changed client's."""
    changed: list[CellChange] = field(default_factory=list)
    """The environment's other cells whose outcome changed."""
    verdicts: list[VerdictChange] = field(default_factory=list)
    patch: str | None = None
    """The unified diff against the user's files, relative to the run's --out directory."""
    tree: str | None = None
    """The edited copy of the user's files, relative to --out: `invoke matrix --manifests` on it gives this."""
    why: str = ""
    """Why the candidate was not tried."""


@dataclass
class CellFixes:
    id: str
    scenario: str
    environment: str
    cell: str
    reason: str
    trials: list[Trial]


@dataclass
class FixReport:
    cells: list[CellFixes] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    """Variant environments that did not start: their candidates prove nothing."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def outcome(r: CellResult) -> str:
    return "pass" if r.actual == "pass" else str(r.reason)


@dataclass
class _Variant:
    """One environment with one server-config candidate applied, run as a scenario of its own."""

    scenario: Scenario
    patch: str | None = None
    tree: str | None = None
    diff: str = ""


def _only(scenario: Scenario, env: EnvironmentConfig, name: str, groups: list[ProbeGroup] | None = None) -> Scenario:
    """``scenario`` cut down to ``env`` (its probe groups, or ``groups``), every cell observed."""
    kept = groups if groups is not None else [
        g.model_copy(update={"environments": [env.name]}) for g in scenario.probes
        if g.environments is None or env.name in g.environments]
    return scenario.model_copy(update={"name": name, "environments": [env], "probes": kept,
                                       "expect": [Expectation(outcome="observe")]})


def _tree_root(files: list[Path], manifests_root: Path | None) -> Path:
    """The user's tree: the --manifests directory (or file's directory), else the files' common directory."""
    if manifests_root is not None:
        root = manifests_root.resolve()
        root = root if root.is_dir() else root.parent
        if all(f.is_relative_to(root) for f in files):
            return root
    return Path(os.path.commonpath([str(f.parent) for f in files]))


def _resource(env: EnvironmentConfig) -> tuple[str, str]:
    """(its kind, "Kind/[namespace/]name"): the manifest resource an environment was read from."""
    assert env.manifests is not None and env.manifests.resource is not None  # filled in when the files were read
    return env.manifests.resource.split("/", 1)[0], env.manifests.resource


def _manifest_variant(scenario: Scenario, env: EnvironmentConfig, candidate: Candidate, name: str, where: Path,
                      out: Path, manifests_root: Path | None) -> _Variant:
    assert env.manifests is not None
    kind, resource = _resource(env)
    files = [Path(f) for f in env.manifests.files]
    if any(f.is_dir() for f in files):  # a Helm chart: its values are edited, for it to render the fix
        changed = chart_values.apply(_SOURCES[kind], files, resource, candidate.edits,
                                     env.manifests.chart_values(Path.cwd()))
    else:
        changed = _SOURCES[kind].apply(files, resource, candidate.edits)
    root = _tree_root(files, manifests_root)
    if outside := [str(f) for f in changed if not f.is_relative_to(root)]:
        raise NotApplicable(f"the change goes to {', '.join(outside)}, outside the tree {root}: make it there")
    copy = where / candidate.id / root.name
    shutil.rmtree(copy, ignore_errors=True)
    copies = []
    for f in files:
        target = copy / f.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.is_dir():  # a Helm chart: copied whole, rendered again from the copy
            shutil.copytree(f, target, dirs_exist_ok=True)
        else:
            target.write_text(f.read_text())
        copies.append(str(target))
    for f, text in changed.items():
        (copy / f.relative_to(root)).write_text(text)
    values = [str(copy / v.relative_to(root)) if v in changed and v.is_relative_to(root) else str(v)
              for v in map(Path, env.manifests.values)]
    diff = patch.unified({f"{root.name}/{f.relative_to(root)}": (f.read_text(), text) for f, text in changed.items()})
    variant_env = EnvironmentConfig.model_validate({
        "name": env.name, "manifests": {"files": copies, "resource": resource, "pki": env.manifests.pki,
                                        "values": values, "set": env.manifests.set},
        "server": {"kind": env.server.kind, **env.server.options, "per_version": env.server.per_version}})
    return _Variant(_only(scenario, variant_env, name), str((where / f"{candidate.id}.patch").relative_to(out)),
                    str(copy.relative_to(out)), diff)


def _options_variant(scenario: Scenario, env: EnvironmentConfig, candidate: Candidate, name: str) -> _Variant:
    if env.proxy is None:
        raise NotApplicable(f"{env.name} has no proxy: the server's own TLS options are not edited by this tool")
    variant_env = env.model_copy(update={"proxy": options.edited(env.proxy, candidate.edits)})
    return _Variant(_only(scenario, variant_env, name))


def _unsupported(env: EnvironmentConfig, candidate: Candidate) -> str | None:
    """Why the environment's source cannot take the candidate's edits, or None when it can."""
    if env.manifests is None:
        return None
    kind, resource = _resource(env)
    source = _SOURCES.get(kind)
    if source is None:
        return f"editing {kind} manifests is not built yet"
    for edit in candidate.edits:
        if edit.setting not in source.SETTINGS:
            return f"{resource} has no {edit.setting}"
        if source.SETTINGS[edit.setting] is not None:
            return str(source.SETTINGS[edit.setting])
    return None


def _group(probe: Probe, env: str) -> ProbeGroup:
    return ProbeGroup.model_validate({**{k: [v] for k, v in asdict(probe).items()}, "environments": [env]})


def _info(result: MatrixResult, scenario: Scenario, env: str) -> EnvironmentInfo | None:
    """The environment that ran ``env`` of ``scenario``: by its key, since two scenarios' environments that run
    the same thing share one."""
    key = environment_key(scenario.pki_spec(scenario.environment(env)), scenario.environment(env))
    return next((i for i in result.environments if i.key == key), None)


def _verdicts(before: EnvironmentInfo | None, after: EnvironmentInfo | None) -> list[VerdictChange]:
    if before is None or after is None or before.scan is None or after.scan is None:
        return []
    old = {v.section: v.compliant for v in before.scan.verdicts}
    return [VerdictChange(v.section, v.title, old[v.section], v.compliant) for v in after.scan.verdicts
            if v.section in old and old[v.section] != v.compliant]


def try_fixes(scenarios: list[Scenario], result: MatrixResult, out: Path, backend: Backend, progress: Progress,
              jobs: int = 1, manifests_root: Path | None = None, deadlines: Deadlines | None = None) -> FixReport:
    """For every failing cell of ``result`` (a run of ``scenarios`` into ``out``), each candidate's outcome;
    ``deadlines``: the whole task's, which the candidates' run shares with the matrix before it."""
    by_name = {s.name: s for s in scenarios}
    fixes_dir = out / "fixes"
    shutil.rmtree(fixes_dir, ignore_errors=True)  # no patch of an earlier run may pass for this one's
    report = FixReport()
    variants: dict[tuple[str, str, str], _Variant] = {}  # (scenario, environment, candidate id)
    clients: dict[tuple[str, str], list[Probe]] = {}
    pending: list[tuple[CellResult, list[tuple[Candidate, str | None]]]] = []
    where_of: dict[str, Path] = {}  # a failing cell's id -> the directory of its environment's fixes
    sidecars: dict[str, str] = {}  # a proven sidecar's config, by its path relative to out
    env_names = [(c.cell.scenario, c.cell.environment) for c in result.cells]
    repeated = {e for _, e in env_names if len({s for s, n in set(env_names) if n == e}) > 1}
    own_dcmtk = backend.brings_clients  # the backend's dcmtk 3.6.9 sends SNI; an installed one may not
    for r in result.cells:
        if r.actual != "fail" or r.reason in (None, Reason.ENVIRONMENT_FAILED) or r.deadline or r.error:
            continue
        scenario, probe = by_name[r.cell.scenario], r.cell.probe
        env = scenario.environment(r.cell.environment)
        where = fixes_dir / (f"{scenario.name}-{env.name}" if env.name in repeated else env.name)
        tried: list[tuple[Candidate, str | None]] = []
        for candidate in server_config(r.reason, r.facts, probe):
            key = (scenario.name, env.name, candidate.id)
            why = _unsupported(env, candidate)
            if why is None and key not in variants:
                try:
                    name = f"fix-{len(variants) + 1}"
                    variants[key] = (_manifest_variant(scenario, env, candidate, name, where, out, manifests_root)
                                     if env.manifests is not None else _options_variant(scenario, env, candidate, name))
                except NotApplicable as exc:
                    why = str(exc)
            tried.append((candidate, why))
        for candidate, why in client_side(r.reason, r.facts, probe, own_dcmtk):
            if why is None:
                clients.setdefault((scenario.name, env.name), []).append(candidate.changed_probe(probe))
            tried.append((candidate, why))
        if tried:
            pending.append((r, tried))
            where_of[r.cell.id] = where
    baseline = {(c.cell.scenario, c.cell.environment, c.cell.probe): c for c in result.cells}
    extra: list[Scenario] = [v.scenario for v in variants.values()]
    client_runs: dict[tuple[str, str], str] = {}
    for (scenario_name, env_name), probes in clients.items():
        missing = list(dict.fromkeys(p for p in probes if (scenario_name, env_name, p) not in baseline))
        if missing:
            scenario = by_name[scenario_name]
            env = scenario.environment(env_name)
            client_runs[(scenario_name, env_name)] = name = f"fix-client-{len(client_runs) + 1}"
            try:
                extra.append(_only(scenario, env, name, [_group(p, env_name) for p in missing]))
            except ValidationError as exc:  # a changed probe the scenario model refuses: a bug in the candidates
                raise UsageError(f"fix: cannot run the changed clients of {env_name}: {exc}") from None
    ran = run_matrix(extra, fixes_dir / "run", backend, progress, jobs=jobs, deadlines=deadlines) if extra else None
    report.broken = [f"{i.name} ({i.error})" for i in ran.environments if i.error] if ran else []
    after = {(c.cell.scenario, c.cell.probe): c for c in ran.cells} if ran else {}
    proven: set[tuple[str, str, str]] = set()
    for r, tried in pending:
        s, e = r.cell.scenario, r.cell.environment
        trials = []
        for candidate, why in tried:
            if why is not None:
                trials.append(Trial(candidate, "not tried", cell=r.cell.probe.label(), why=why))
                continue
            if candidate.kind == "client-side":
                changed = candidate.changed_probe(r.cell.probe)
                got = baseline.get((s, e, changed)) or after.get((client_runs.get((s, e), ""), changed))
                mark: Mark = "passes" if got is not None and got.actual == "pass" else "fails"
                trial = Trial(candidate, mark, outcome(got) if got else "not run", changed.label())
                info = _info(result, by_name[s], e)
                if mark == "passes" and candidate is sidecar_candidate() and info is not None:
                    trial.patch = str((where_of[r.cell.id] / "stunnel-sidecar.conf").relative_to(out))
                    sidecars[trial.patch] = sidecar.deployable_config(info.server_names[0], changed, changed.label(), e)
                trials.append(trial)
                continue
            variant = variants[(s, e, candidate.id)]
            name = variant.scenario.name
            mine = after.get((name, r.cell.probe))
            others = [CellChange(c.cell.probe.label(), outcome(c), outcome(a)) for c in result.cells
                      if c.cell.scenario == s and c.cell.environment == e and c is not r
                      and (a := after.get((name, c.cell.probe))) is not None and outcome(a) != outcome(c)]
            verdicts = _verdicts(_info(result, by_name[s], e), _info(ran, variant.scenario, e)) if ran else []
            passed = mine is not None and mine.actual == "pass"
            breaks = any(c.before == "pass" for c in others) or any(v.before and not v.after for v in verdicts)
            mark = ("breaks" if breaks else "passes") if passed else "fails"
            trial = Trial(candidate, mark, outcome(mine) if mine else "not run", r.cell.probe.label(), others, verdicts)
            if passed and variant.patch:
                trial.patch, trial.tree = variant.patch, variant.tree
                proven.add((s, e, candidate.id))
            trials.append(trial)
        report.cells.append(CellFixes(r.cell.id, s, e, r.cell.probe.label(), str(r.reason), trials))
    for key in proven:
        variant = variants[key]
        assert variant.patch is not None
        patch.write(out / variant.patch, variant.diff)
    for path, config in sidecars.items():
        patch.write(out / path, config)
    return report
