"""Split a matrix run across machines and put the pieces back together.

The unit of a shard is an environment, not a cell: an environment starts once
and runs all its cells, so splitting its cells would start it on every shard.
Shards are balanced by cell count and computed from the whole plan, so every
shard of ``K/N`` agrees on who runs what without talking to the others.

:func:`merge` turns the ``results.json`` documents of shards 1..N into the
document an unsharded run of the same scenarios writes: same environments and
cells, in the same order. Only the run's timing (``started``, ``wall_s``) and
the run-specific parts of each record (ports, paths, timestamps) differ, as
they do between any two runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomtls.errors import UsageError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as written on the command line
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    match = _SHARD.match(text)
    if not match:
        raise UsageError(f"--shard {text!r}: write K/N, e.g. --shard 1/2")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text}: K must be between 1 and N (N >= 1), e.g. --shard 1/{max(count, 2)}")
    return Shard(index, count)


def assign(weights: Sequence[int], count: int) -> list[int]:
    """The 0-based shard of each item: heaviest first onto the lightest shard.

    Ties go to the earlier item and the lower shard, so the split depends only
    on the weights' order, which every shard computes identically.
    """
    loads = [0] * count
    owner = [0] * len(weights)
    for item in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        target = min(range(count), key=lambda s: (loads[s], s))
        owner[item] = target
        loads[target] += weights[item]
    return owner


def positions(weights: Sequence[int], shard: Shard | None) -> list[int]:
    """Indices of the items this shard runs, in their original order (all of them without a shard)."""
    if shard is None:
        return list(range(len(weights)))
    owner = assign(weights, shard.count)
    return [i for i, s in enumerate(owner) if s == shard.index - 1]


def shard_results(directories: Sequence[Path]) -> list[Path]:
    """The results.json of each shard: a directory is a shard's --out, or holds one such directory per shard
    (as ``actions/download-artifact`` lays out several artifacts)."""
    found: list[Path] = []
    for directory in directories:
        # os.path: False for a name too long for the file system too, where Path raises
        if os.path.isfile(directory / "results.json"):
            found.append(directory / "results.json")
            continue
        inner = sorted(directory.glob("*/results.json")) if os.path.isdir(directory) else []
        if not inner:
            raise UsageError(f"{directory}: no results.json in it or in its subdirectories: "
                             "pass the --out directory of each shard")
        found.extend(inner)
    return found


def merge(documents: Sequence[dict[str, Any]], sources: Sequence[str]) -> dict[str, Any]:
    """One results document from the documents of shards 1..N of the same run (``sources`` names them in errors)."""
    shards = [_shard_of(doc, source) for doc, source in zip(documents, sources)]
    count = shards[0].count
    by_index: dict[int, int] = {}
    for i, (shard, source) in enumerate(zip(shards, sources)):
        if shard.count != count:
            raise UsageError(f"{source} is shard {shard} but {sources[0]} is shard {shards[0]}: "
                             "merge the shards of one run")
        if shard.index in by_index:
            raise UsageError(f"{source} and {sources[by_index[shard.index]]} are both shard {shard}: "
                             "pass each shard once")
        by_index[shard.index] = i
    missing = [str(k) for k in range(1, count + 1) if k not in by_index]
    if missing:
        raise UsageError(f"shard {', '.join(f'{k}/{count}' for k in missing)} missing: pass all {count} shards")
    first = documents[0]["run"]
    for doc, source in zip(documents, sources):
        for field in ("scenarios", "backend"):
            if doc["run"].get(field) != first.get(field):
                raise UsageError(f"{source} ran {field} {doc['run'].get(field)} but {sources[0]} ran "
                                 f"{first.get(field)}: merge the shards of one run")

    environments: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] = []
    for doc in documents:
        by_env = _cells_by_environment(doc)
        for env in doc["environments"]:
            environments.append((env.get("position", 0), env, by_env.get(env["key"], [])))
    environments.sort(key=lambda item: item[0])
    cells = [cell for _, _, env_cells in environments for cell in env_cells]
    ids = [c["id"] for c in cells]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise UsageError(f"cell {duplicate!r} appears in more than one shard: the shards are not of one run")

    run = dict(first)
    run["started"] = min(doc["run"]["started"] for doc in documents)
    run["wall_s"] = max(doc["run"].get("wall_s", 0.0) for doc in documents)  # shards run side by side
    run["versions"] = _merged_versions([doc["run"].get("versions", {}) for doc in documents])
    run["shard"] = None
    merged = {**documents[0], "run": run, "environments": [env for _, env, _ in environments], "cells": cells}
    if any("policy_violations" in doc for doc in documents):  # each shard's own environments broke them
        merged["policy_violations"] = [v for doc in documents for v in doc.get("policy_violations", [])]
    return merged


def _shard_of(doc: dict[str, Any], source: str) -> Shard:
    text = doc.get("run", {}).get("shard")
    if not text:
        raise UsageError(f"{source} is not from a sharded run: merge the outputs of `invoke matrix --shard K/N`")
    return parse_shard(text)


def _cells_by_environment(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Cells keyed by their environment's key: the one with the cell's name that runs its scenario
    (environment names are unique within a scenario)."""
    owners = {(scenario, env["name"]): env["key"] for env in doc["environments"] for scenario in env["scenarios"]}
    grouped: dict[str, list[dict[str, Any]]] = {}
    for cell in doc["cells"]:
        owner = owners.get((cell["scenario"], cell["environment"]))
        if owner is None:
            raise UsageError(f"cell {cell['id']!r} names no environment of its results.json: the file is damaged")
        grouped.setdefault(owner, []).append(cell)
    return grouped


def _merged_versions(all_versions: list[dict[str, str]]) -> dict[str, str]:
    """Shards on different machines may differ; then every version seen is kept, in shard order."""
    merged: dict[str, list[str]] = {}
    for versions in all_versions:
        for name, version in versions.items():
            seen = merged.setdefault(name, [])
            if version not in seen:
                seen.append(version)
    return {name: " / ".join(seen) for name, seen in merged.items()}
