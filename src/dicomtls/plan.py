"""Planning a run: which environments its cells need, each started once however many scenarios share it.

Nothing here starts anything but the PKI: the plan is what the runner (``dicomtls.runner``), soak and ``up``
start, and what a shard is cut from.
"""

from __future__ import annotations

import platform
import ssl
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

from dicomtls.backends import SOLE_SITE, Backend, EnvironmentPlan, PlannedSite
from dicomtls.findings import Finding
from dicomtls.manifests.image_versions import DeclaredImage
from dicomtls.manifests.located import At
from dicomtls.pki import PkiFiles, ensure_pki
from dicomtls.scenario import Cell, Scenario, environment_key


@dataclass
class EnvironmentGroup:
    """One environment to start and the cells that run on it, from every scenario that shares it."""

    plan: EnvironmentPlan
    cells: list[Cell]
    scenarios: list[str]
    unhonoured: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    images: list[DeclaredImage] = field(default_factory=list)
    """The images its manifests name, for the report's departure lines (manifests.image_versions)."""
    manifests: dict[str, object] | None = None  # ManifestSource, when read from the user's files
    source: At | None = None
    """The manifest it is read from (the first scenario's that names one), for CI annotations."""


def plan_environments(scenarios: list[Scenario], pki_root: Path, force_pki: bool = False,
                      only: set[str] | None = None) -> list[EnvironmentGroup]:
    """Group cells by what actually runs, so an environment shared by two scenarios starts once.

    ``only``: cell ids to keep (a bisect runs one cell); environments left without cells are not planned.
    """
    groups: OrderedDict[str, EnvironmentGroup] = OrderedDict()
    pki_cache: dict[str, PkiFiles] = {}
    for scenario in scenarios:
        for cell in scenario.cells():
            if only is not None and cell.id not in only:
                continue
            env = scenario.environment(cell.environment)
            spec = scenario.pki_spec(env)  # an environment may have its own server key
            if spec.digest() not in pki_cache:
                pki_cache[spec.digest()] = ensure_pki(spec, pki_root / spec.digest(), force=force_pki)
            pki = pki_cache[spec.digest()]
            key = environment_key(spec, env)
            if key not in groups:
                sites = tuple(
                    PlannedSite(SOLE_SITE, spec.server_names, server, pki.server) if site is None
                    else PlannedSite(site, dict(spec.sites)[site], server, pki.site(site))
                    for site, server in env.servers()
                )
                proxy = env.proxy.build("proxy") if env.proxy is not None else None
                groups[key] = EnvironmentGroup(EnvironmentPlan(key, env.name, sites, proxy, pki), [], [],
                                               manifests=env.manifests.model_dump(mode="json") if env.manifests
                                               else None)
            groups[key].cells.append(cell)
            if cell.probe.fault != "none" and not groups[key].plan.restartable:
                groups[key].plan = replace(groups[key].plan, restartable=True)
            groups[key].unhonoured += [u for u in env.unhonoured if u not in groups[key].unhonoured]
            groups[key].findings += [f for f in env.findings if f not in groups[key].findings]
            groups[key].images += [i for i in env.images if i not in groups[key].images]
            groups[key].source = groups[key].source or env.source
            if scenario.name not in groups[key].scenarios:
                groups[key].scenarios.append(scenario.name)
    return list(groups.values())


def environment_versions(backend: Backend, groups: list[EnvironmentGroup]) -> dict[str, dict[str, list[str]]]:
    """Per environment key, the versions of each kind of component it runs (two sites may run two Orthancs),
    each distinct component asked once."""
    seen: dict[str, str] = {}
    per_env: dict[str, dict[str, list[str]]] = {}
    for group in groups:
        found = per_env.setdefault(group.plan.key, {})
        for component in group.plan.components:
            o = component.options  # an upstream image (image, declared_image) reports its own version and digest
            identity = f"{component.kind}:{o.version}:{o.image}:{o.declared_image}"
            if identity not in seen:
                seen[identity] = backend.component_version(component)
            if seen[identity] not in found.setdefault(component.kind, []):
                found[component.kind].append(seen[identity])
    return per_env


def joined(versions: dict[str, list[str]]) -> dict[str, str]:
    """Versions as results.json shows them: "1.10.1, 1.12.7" where a kind runs in several versions."""
    return {kind: ", ".join(values) for kind, values in versions.items()}


def component_versions(per_env: dict[str, dict[str, list[str]]], client_versions: dict[str, str]) -> dict[str, str]:
    """The run header: every version of each component that ran, so mixed versions show, then the clients'
    (``Clients.versions``)."""
    found: dict[str, list[str]] = {}
    for versions_of_env in per_env.values():
        for kind, values in versions_of_env.items():
            found.setdefault(kind, []).extend(v for v in values if v not in found[kind])
    versions = joined(found)
    versions.update(client_versions)
    versions["openssl"] = ssl.OPENSSL_VERSION
    versions["python"] = platform.python_version()
    return versions


def log_directories(plan: list[EnvironmentGroup]) -> dict[str, str]:
    """OUT/logs/<environment>/ per environment key; a name two environments share gets the key appended."""
    names = Counter(g.plan.name for g in plan)
    return {g.plan.key: g.plan.name if names[g.plan.name] == 1 else f"{g.plan.name}-{g.plan.key}" for g in plan}
