"""Sharding: every environment runs on exactly one shard, shards carry similar cell counts, and merging the
shards' results gives back the document of one run."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dicomtls.errors import UsageError
from dicomtls.shard import Shard, assign, merge, parse_shard, positions, shard_results

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results_envoy_sni_named_hosts.json"


def real_run() -> dict[str, Any]:
    """results.json of a real `invoke matrix --scenario envoy-sni-named-hosts` (2 environments, 34 cells)."""
    return json.loads(FIXTURE.read_text())


def three_environments() -> dict[str, Any]:
    """The real run with a third environment of another scenario appended, unevenly sized."""
    doc = real_run()
    env = copy.deepcopy(doc["environments"][1])
    env.update(key="abc123abc123", name="extra-env", scenarios=["other"], position=2)
    cells = []
    for cell in copy.deepcopy(doc["cells"][:5]):
        cell.update(scenario="other", environment="extra-env")
        cell["id"] = "other/extra-env/" + cell["id"].split("/", 2)[2]
        cells.append(cell)
    doc["environments"].append(env)
    doc["cells"] += cells
    doc["run"]["scenarios"] = ["envoy-sni-named-hosts", "other"]
    return doc


def split(doc: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """What `invoke matrix --shard K/N` writes for each K, cut from an unsharded run's document."""
    envs = doc["environments"]
    weights = [sum(1 for c in doc["cells"] if c["environment"] == e["name"] and c["scenario"] in e["scenarios"])
               for e in envs]
    shards = []
    for k in range(1, count + 1):
        mine = [envs[i] for i in positions(weights, Shard(k, count))]
        names = {(s, e["name"]) for e in mine for s in e["scenarios"]}
        part = copy.deepcopy(doc)
        part["run"]["shard"] = f"{k}/{count}"
        part["run"]["started"] = f"2026-01-0{k}T00:00:00+00:00"
        part["environments"] = copy.deepcopy(mine)
        part["cells"] = [c for c in doc["cells"] if (c["scenario"], c["environment"]) in names]
        shards.append(part)
    return shards


def without_timing(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for key in ("started", "wall_s"):
        doc["run"].pop(key)
    return doc


# --- the split ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, shard", [("1/2", Shard(1, 2)), ("2/2", Shard(2, 2)), (" 3 / 4 ", Shard(3, 4)),
                                         ("1/1", Shard(1, 1))])
def test_shard_is_written_k_of_n(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == f"{shard.index}/{shard.count}"


@pytest.mark.parametrize("text", ["", "2", "0/2", "3/2", "1/0", "a/b", "1/2/3", "-1/2"])
def test_a_shard_that_is_not_k_of_n_is_a_usage_error_saying_how(text: str) -> None:
    with pytest.raises(UsageError, match="K"):
        parse_shard(text)


def test_every_item_lands_on_exactly_one_shard() -> None:
    weights = [17, 3, 9, 9, 1, 30, 2, 2]
    for count in (1, 2, 3, 5):
        taken = [i for k in range(1, count + 1) for i in positions(weights, Shard(k, count))]
        assert sorted(taken) == list(range(len(weights)))


def test_shards_are_balanced_by_cell_count_heaviest_first() -> None:
    weights = [10, 3, 3, 3, 1]
    owner = assign(weights, 2)
    loads = [sum(w for w, o in zip(weights, owner) if o == s) for s in range(2)]
    assert loads == [10, 10]


def test_the_split_is_deterministic_and_keeps_plan_order_within_a_shard() -> None:
    weights = [5, 5, 5, 5, 4]
    first = [positions(weights, Shard(k, 2)) for k in (1, 2)]
    assert first == [positions(weights, Shard(k, 2)) for k in (1, 2)]
    for chosen in first:
        assert chosen == sorted(chosen)


def test_more_shards_than_environments_leaves_some_shards_empty() -> None:
    assert [positions([4, 7], Shard(k, 3)) for k in (1, 2, 3)] == [[1], [0], []]


def test_no_shard_means_everything() -> None:
    assert positions([1, 2, 3], None) == [0, 1, 2]


# --- the merge ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3])
def test_merging_the_shards_gives_the_unsharded_document_back(count: int) -> None:
    whole = three_environments()
    shards = split(whole, count)
    merged = merge(list(reversed(shards)), [f"shard{k}" for k in range(count, 0, -1)])
    assert without_timing(merged) == without_timing(whole)
    assert merged["run"]["shard"] is None
    assert merged["run"]["started"] == "2026-01-01T00:00:00+00:00"
    assert [c["id"] for c in merged["cells"]] == [c["id"] for c in whole["cells"]]


def test_merging_keeps_every_version_two_machines_reported() -> None:
    one, two = split(real_run(), 2)
    two["run"]["versions"]["envoy"] = "1.41.0"
    merged = merge([one, two], ["a", "b"])
    assert merged["run"]["versions"]["envoy"] == "1.40.0 / 1.41.0"
    assert merged["run"]["versions"]["orthanc"] == "1.10.1"


def test_a_missing_shard_is_named() -> None:
    shards = split(three_environments(), 3)
    with pytest.raises(UsageError, match="shard 2/3 missing"):
        merge([shards[0], shards[2]], ["a", "c"])


def test_the_same_shard_twice_is_refused() -> None:
    one, two = split(real_run(), 2)
    with pytest.raises(UsageError, match="both shard 1/2"):
        merge([one, one, two], ["a", "b", "c"])


def test_shards_of_different_splits_are_refused() -> None:
    one, _ = split(real_run(), 2)
    whole = split(real_run(), 1)[0]
    with pytest.raises(UsageError, match="one run"):
        merge([one, whole], ["a", "b"])


def test_shards_of_different_scenarios_are_refused() -> None:
    one, two = split(real_run(), 2)
    two["run"]["scenarios"] = ["orthweb-envoy"]
    with pytest.raises(UsageError, match="scenarios"):
        merge([one, two], ["a", "b"])


def test_an_unsharded_run_cannot_be_merged() -> None:
    with pytest.raises(UsageError, match="not from a sharded run"):
        merge([real_run()], ["out/results.json"])


def test_shard_directories_are_found_directly_or_one_level_down(tmp_path: Path) -> None:
    for name in ("dicomtls-shard-1", "dicomtls-shard-2"):
        (tmp_path / "shards" / name).mkdir(parents=True)
        (tmp_path / "shards" / name / "results.json").write_text("{}")
    direct = shard_results([tmp_path / "shards" / "dicomtls-shard-2"])
    assert direct == [tmp_path / "shards" / "dicomtls-shard-2" / "results.json"]
    nested = shard_results([tmp_path / "shards"])
    assert [p.parent.name for p in nested] == ["dicomtls-shard-1", "dicomtls-shard-2"]


def test_a_directory_without_results_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no results.json"):
        shard_results([tmp_path])
