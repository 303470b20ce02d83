"""Every file and option dicomtls reads, as a fuzz target: real inputs from the repository, mutated by
tests.fuzz.mutate, handed to the same function the tasks call.

A target's ``run`` returns when the input became a valid result (a parsed scenario and its run plan, the
deployments of an inventory, merged or compared reports) and raises UsageError when it is bad input; anything else
it raises is a crash site.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from hypothesis import strategies as st

from dicomtls import app, pki
from dicomtls import plan as planning
from dicomtls.backends import EnvironmentFailed, EnvironmentPlan
from dicomtls.backends.local import pki_paths
from dicomtls.components import Address, Placement, SiteRoute
from dicomtls.scenario import Scenario, manifest_scenario, parse_scenario
from tests.fuzz.mutate import Mutated, Pools, mutated

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


@dataclass(frozen=True)
class Target:
    name: str
    inputs: st.SearchStrategy[Mutated]
    run: Callable[[Mutated], None]
    weight: int
    """Its share of a campaign's examples: targets whose inputs are bigger or slower to read get fewer."""


# --- writing a mutated tree back as files ----------------------------------------------------------------------------


def dump_yaml(value: Any) -> str:
    """One YAML document; a list of documents when a file's tree says so (see ``yaml_files``)."""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


def yaml_tree(directory: Path) -> dict[str, Any]:
    """Every file under ``directory``: a YAML file as its list of documents, any other file (or a YAML file that
    does not parse, a Helm template say) as its text."""
    tree: dict[str, Any] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        text = path.read_text()
        tree[str(path.relative_to(directory))] = text
        if path.suffix in (".yaml", ".yml"):
            with contextlib.suppress(yaml.YAMLError):
                tree[str(path.relative_to(directory))] = list(yaml.safe_load_all(text))
    return tree


def write_tree(tree: Any, directory: Path) -> None:
    """The inverse of ``yaml_tree``, for whatever the mutations left: a file whose name was mutated is written under
    a safe name, a file whose documents are no longer a list is one document, a string is the file's text."""
    directory.mkdir(parents=True, exist_ok=True)
    files = tree.items() if isinstance(tree, dict) else [("mutated.yaml", tree)]
    for index, (name, content) in enumerate(files):
        relative = Path(str(name))
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            relative = Path(f"file-{index}.yaml")
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):  # a file kept as text, or a file's documents mutated into one string
            path.write_text(content)
        else:
            documents = content if isinstance(content, list) else [content]
            path.write_text(yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True))


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dicomtls-fuzz-") as name:
        yield Path(name)


# --- the run plan: what a matrix builds before anything starts -------------------------------------------------------


def _layout_only(spec: pki.PkiSpec, directory: Path, force: bool = False) -> pki.PkiFiles:
    """The PKI's file layout without generating a key: rendering needs its paths, not its contents."""
    return pki._layout(directory, spec)


def plan(scenarios: list[Scenario]) -> None:
    """Every cell, environment and component config a matrix over ``scenarios`` would make, nothing started:
    the environments as plan_environments groups them, each component rendered as the local backend
    renders it. A component that refuses to start (EnvironmentFailed) is a result: the matrix reports that
    environment as not started."""
    with mock.patch.object(planning, "ensure_pki", _layout_only):
        groups = planning.plan_environments(scenarios, Path("/nonexistent/dicomtls-fuzz/pki"))
    for group in groups:
        with contextlib.suppress(EnvironmentFailed):
            _render(group.plan)


def _render(environment: EnvironmentPlan) -> None:
    """Each server, then the proxy in front of them, as LocalBackend.start places them (nothing written)."""
    routes = []
    for index, site in enumerate(environment.sites):
        listen = _listen(site.server.ports, 41000 + 10 * index)
        site.server.launch(Placement(environment.name, "/nonexistent/work", listen,
                                     pki_paths(environment, site.identity), (), site.server.options.version),
                           "/bin/false")
        routes.append(SiteRoute(site.name, site.server_names, listen["dicom"], str(site.identity.fullchain),
                                str(site.identity.key)))
    if environment.proxy is not None:
        environment.proxy.launch(Placement(environment.name, "/nonexistent/work",
                                           _listen(environment.proxy.ports, 42000), pki_paths(environment),
                                           tuple(routes), environment.proxy.options.version), "/bin/false")


def _listen(ports: tuple[str, ...], first: int) -> dict[str, Address]:
    return {name: Address("127.0.0.1", first + i) for i, name in enumerate(ports)}


# --- scenario files ------------------------------------------------------------------------------------------------


@cache
def scenario_seeds() -> list[tuple[str, Any]]:
    files = sorted([*(ROOT / "scenarios").glob("*.yaml"), *(FIXTURES / "scenarios").glob("*.yaml")])
    return [(str(f.relative_to(ROOT)), yaml.safe_load(f.read_text())) for f in files]


def run_scenario(case: Mutated) -> None:
    """As `invoke matrix --scenario FILE` reads it: beside the original, so its manifests paths still resolve."""
    plan([parse_scenario(dump_yaml(case.tree), str(ROOT / case.seed))])


# --- manifest trees ------------------------------------------------------------------------------------------------


@cache
def manifest_seeds() -> list[tuple[str, Any]]:
    trees = [*sorted(p for p in (FIXTURES / "manifests").iterdir() if p.is_dir()),
             *sorted(p for p in (ROOT / "scenarios" / "manifests").iterdir() if p.is_dir())]
    return [(str(t.relative_to(ROOT)), yaml_tree(t)) for t in trees]


def run_manifests(case: Mutated) -> None:
    """As `invoke matrix --manifests DIR` reads a tree (the Docker backend's probes included)."""
    with scratch() as directory:
        tree = directory / Path(case.seed).name
        write_tree(case.tree, tree)
        plan([manifest_scenario(tree, brings_clients=True)])


# --- Ansible inventories -------------------------------------------------------------------------------------------


@cache
def inventory_seeds() -> list[tuple[str, Any]]:
    trees = sorted(p for p in (FIXTURES / "inventories").iterdir() if p.is_dir())
    return [(str(t.relative_to(ROOT)), yaml_tree(t)) for t in trees]


def run_inventory(case: Mutated) -> None:
    """As `invoke probe --inventory inventory.yml` reads it, with host_vars/ and group_vars/ beside it."""
    from dicomtls.inventory import load_inventory

    with scratch() as directory, contextlib.redirect_stderr(io.StringIO()):  # Ansible's warnings
        write_tree(case.tree, directory)
        for deployment in load_inventory(directory / "inventory.yml"):
            deployment.request()


# --- results.json, read back by merge, diff and --baseline ---------------------------------------------------------


def _shards(doc: dict[str, Any]) -> dict[str, Any]:
    """A run's results.json as `matrix --shard 1/2` and `--shard 2/2` would have written it."""
    shards = {}
    for index in (1, 2):
        environments = [e for i, e in enumerate(doc["environments"]) if i % 2 == index - 1]
        owned = {(s, e["name"]) for e in environments for s in e["scenarios"]}
        shards[f"shard-{index}"] = {**copy.deepcopy(doc), "run": {**doc["run"], "shard": f"{index}/2"},
                                    "environments": copy.deepcopy(environments),
                                    "cells": [c for c in doc["cells"] if (c["scenario"], c["environment"]) in owned]}
    return shards


@cache
def results_seeds() -> list[tuple[str, Any]]:
    return [(str(f.relative_to(ROOT)), _shards(json.loads(f.read_text())))
            for f in sorted(FIXTURES.glob("results_*.json"))]


def run_results(case: Mutated) -> None:
    """Each mutated shard's results.json through `invoke merge`, and through `invoke diff` (what --baseline
    compares) against the run it came from."""
    shards = case.tree.values() if isinstance(case.tree, dict) else [case.tree]
    with scratch() as directory, contextlib.redirect_stdout(io.StringIO()):
        (directory / "original").mkdir()
        shutil.copy(ROOT / case.seed, directory / "original" / "results.json")
        names = []
        for index, doc in enumerate(shards):
            (directory / f"shard-{index}").mkdir()
            (directory / f"shard-{index}" / "results.json").write_text(json.dumps(doc))
            names.append(str(directory / f"shard-{index}"))
        for name in names:
            app.diff(str(directory / "original"), name)
            app.diff(name, str(directory / "original"))
        app.merge(names, str(directory / "merged"))


# --- a DICOM file for `invoke probe --store FILE` ----------------------------------------------------------------------

STORE_SEEDS = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
               "ExplVR_LitEndNoMeta.dcm")
"""pydicom's own test files (in its wheel): explicit and implicit VR, one big endian, one without file meta."""


def _elements(dataset: Any) -> dict[str, Any]:
    """The data elements a mutation may change: plain values by keyword (sequences and bulk data stay as they are)."""
    found = {}
    for element in dataset:
        value = element.value
        if element.keyword and isinstance(value, (str, int, float)) or (
                isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value)):
            found[element.keyword] = list(value) if isinstance(value, list) else value
        elif element.keyword:
            found[element.keyword] = "<kept>"  # present, not mutated in place (a drop still drops it)
    return found


@cache
def store_seeds() -> list[tuple[str, Any]]:
    import pydicom
    from pydicom.data import get_testdata_file

    seeds = []
    for name in STORE_SEEDS:
        ds = pydicom.dcmread(get_testdata_file(name), force=True)
        seeds.append((name, {"file_meta": _elements(getattr(ds, "file_meta", [])), "dataset": _elements(ds)}))
    return seeds


def _written(case: Mutated, path: Path) -> bool:
    """The seed file with the mutated elements set and the dropped ones deleted; False when pydicom will not write
    it (a value no VR can hold): such an input cannot be made, so it is not tried."""
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file(case.seed), force=True)
    tree = case.tree if isinstance(case.tree, dict) else {}
    for part, holder in (("file_meta", getattr(ds, "file_meta", None)), ("dataset", ds)):
        wanted = tree.get(part) if isinstance(tree.get(part), dict) else {}
        if holder is None:
            continue
        for element in list(holder):
            if element.keyword and element.keyword not in wanted:
                del holder[element.tag]
        for keyword, value in wanted.items():
            if value == "<kept>" or not pydicom.datadict.tag_for_keyword(str(keyword)):
                continue
            try:
                setattr(holder, str(keyword), value)
            except (TypeError, ValueError, AttributeError, OverflowError):
                return False
    try:
        ds.save_as(path, enforce_file_format=False)
    except Exception:  # noqa: BLE001 - pydicom refuses a value many ways; the input is then not made at all
        return False
    return True


def run_store(case: Mutated) -> None:
    """As `invoke probe --store FILE` takes it: checked before anything connects, then made into the objects each
    C-STORE sends."""
    from hypothesis import reject

    from dicomtls.dicomdata import add_source, make_object
    from dicomtls.probe_endpoint import STORE_OPERATION, _check_store_file

    with scratch() as directory, warnings.catch_warnings(), _quiet("pydicom"):
        warnings.simplefilter("ignore")  # pydicom's about the odd values it is given and reads
        path = directory / "object.dcm"
        if not _written(case, path):
            reject()
        _check_store_file(path)
        add_source(STORE_OPERATION, path)
        make_object(STORE_OPERATION, directory / "sent")


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    log = logging.getLogger(logger)
    before = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(before)


# --- command-line values that are small languages of their own -----------------------------------------------------


OPTION_SEEDS: dict[str, list[str]] = {
    "resolve": ["dicom.example.org:11112:192.0.2.10", "dicom.korthweb.test:443:[::1]", "localhost:2762:127.0.0.1"],
    "shard": ["1/2", "2/2", "3/4"],
    "target": ["dicom.example.org:11112", "192.0.2.1:2762", "[2001:db8::1]:11112", "localhost:4242"],
    "versions": ["1.38.3,1.39.3,1.40.0", "1.22.5 1.23.0"],
    "jobs": ["auto", "1", "4"],
    "concurrency": ["1,8,32", "4"],
    "orthanc-rest": ["http://127.0.0.1:8042", "http://localhost:8042/"],
    "called-aet": ["ORTHANC", "STORESCP"],
    "scenario": ["envoy-mtls", "scenarios/envoy-sni-named-hosts.yaml", "tests/fixtures/scenarios/stunnel-istio.yaml"],
    "manifests": ["tests/fixtures/manifests/two-sites", "tests/fixtures/manifests/korthweb-traefik/tlsoption.yaml"],
    "baseline": ["tests/fixtures/results_envoy_sni_named_hosts.json", "tests/fixtures"],
    "inventory": ["tests/fixtures/inventories/two-sites/inventory.yml"],
    "ca": ["tests/fixtures/inventories/one-file/ca.crt"],
    "policy": ["preset:client-auth", "preset:cert-days:30", "preset:ps315:bcp195-nd",
               "tests/fixtures/policies/orthweb.yaml"],
    "fail-on": ["high", "medium"],
    "limit": ["bhs", "all:!bhs", "pacs-mhr", "bhs:&mhr", "pacs-*", "~pacs-(bhs|mhr)"],
    "cell": ["envoy-sni-named-hosts/envoy-named-hosts/pynetdicom sni=right cert=none echo",
             "scenario=envoy-mtls environment=edge client=dcmtk client_cert=valid operation=echo",
             "scenario=envoy-sni-named-hosts sni=wrong client=pynetdicom operation=store-ct"],
}
_TOKENS = re.compile(r"([:/,=\s\[\].]+)")


def option_seeds() -> list[tuple[str, Any]]:
    """Each value split into its tokens and separators, so mutations drop, repeat and swap parts of it."""
    return [(option, _TOKENS.split(value)) for option, values in OPTION_SEEDS.items() for value in values]


def run_option(case: Mutated) -> None:
    """The value through the parser its option goes to (paths relative to the clone, as `invoke` runs there)."""
    from dicomtls import bisect, load, policy, resolve, scenario, shard
    from dicomtls.report import json as json_report
    from dicomtls.inventory import load_inventory

    parts = case.tree if isinstance(case.tree, list) else [case.tree]
    text = "".join(str(p) for p in parts)
    parsers: dict[str, Callable[[str], object]] = {
        "resolve": resolve.parse_pin, "shard": shard.parse_shard, "target": resolve.parse_host_port,
        "versions": bisect.parse_versions, "jobs": app.parse_jobs, "concurrency": load.parse_levels,
        "orthanc-rest": app._orthanc_rest, "called-aet": app._called_aet,
        "cell": lambda t: bisect.select_cell(t, None),
        "scenario": scenario.load_scenario, "manifests": lambda t: manifest_scenario(Path(t)),
        "baseline": lambda t: json_report.read(Path(t)), "inventory": lambda t: load_inventory(Path(t)),
        "ca": lambda t: app._readable(t, "--ca"),
        "policy": lambda t: policy.load_policies([t]), "fail-on": policy.fail_on,
        "limit": lambda t: load_inventory(FIXTURES / "inventories" / "two-sites" / "inventory.yml", t),
    }
    with contextlib.redirect_stderr(io.StringIO()):  # Ansible's warnings
        parsers[case.seed](text)


# --- policies --------------------------------------------------------------------------------------------------------


def policy_seeds() -> list[tuple[str, Any]]:
    files = sorted((FIXTURES / "policies").glob("*.yaml"))
    return [(str(f.relative_to(ROOT)), yaml.safe_load(f.read_text())) for f in files]


def run_policy(case: Mutated) -> None:
    """As `--policy FILE` reads it, presets expanded."""
    from dicomtls.policy import parse_policy

    parse_policy(dump_yaml(case.tree), case.seed).resolved()


def _strategy(seeds: Callable[[], list[tuple[str, Any]]], most: int = 3) -> st.SearchStrategy[Mutated]:
    return st.deferred(lambda: mutated(seeds(), Pools.of([tree for _, tree in seeds()]), most))


TARGETS = [
    Target("scenario", _strategy(scenario_seeds), run_scenario, weight=4),
    Target("manifests", _strategy(manifest_seeds), run_manifests, weight=2),
    Target("inventory", _strategy(inventory_seeds), run_inventory, weight=2),
    Target("results", _strategy(results_seeds), run_results, weight=1),
    Target("options", _strategy(option_seeds), run_option, weight=1),
    Target("store", _strategy(store_seeds), run_store, weight=1),
    Target("policy", _strategy(policy_seeds), run_policy, weight=2),
]
