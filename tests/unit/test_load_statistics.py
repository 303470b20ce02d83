"""The load figures: percentiles, throughput, the proxy / direct ratio, and when a load run fails."""

from __future__ import annotations

import pytest

from dicomtls.errors import UsageError
from dicomtls.load import DIRECT, LevelResult, LoadResult, choose_targets, parse_levels, percentile


def test_percentiles_interpolate_between_the_nearest_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([float(i) for i in range(1, 101)], 99) == pytest.approx(99.01)
    assert percentile([0.2, 0.9], 99) == pytest.approx(0.893)


def test_percentile_of_one_sample_is_that_sample_and_of_none_is_zero() -> None:
    assert percentile([0.7], 50) == percentile([0.7], 99) == 0.7
    assert percentile([], 99) == 0.0


def test_throughput_counts_only_associations_that_stored_everything() -> None:
    cell = LevelResult("envoy", 8, associations=10, failed=2, bytes=8_000_000, wall_s=4.0)
    assert cell.associations_per_s == 2.0
    assert cell.mb_per_s == 2.0


def _run(**mb_per_s: float) -> LoadResult:
    result = LoadResult("local", [32], 1, 1, 1, 1000, list(mb_per_s))
    result.cells = [LevelResult(name, 32, associations=1, bytes=int(rate * 1e6), wall_s=1.0)
                    for name, rate in mb_per_s.items()]
    return result


def test_ratio_is_a_proxys_throughput_over_direct_orthancs() -> None:
    result = _run(envoy=3.0, nginx=6.0, direct=4.0)
    assert result.ratio("envoy", 32) == pytest.approx(0.75)
    assert result.ratio("nginx", 32) == pytest.approx(1.5)
    assert result.ratio(DIRECT, 32) is None
    assert result.to_dict()["cells"][0]["ratio_to_direct"] == 0.75  # type: ignore[index]


def test_without_direct_orthanc_there_is_no_ratio() -> None:
    assert _run(envoy=3.0).ratio("envoy", 32) is None


def test_one_unverified_object_or_failed_association_fails_the_run() -> None:
    result = _run(envoy=3.0, direct=4.0)
    assert result.exit_code == 0
    result.cells[1].unverified = 1
    assert result.exit_code == 1
    result.cells[1].unverified, result.cells[0].failed = 0, 1
    assert result.exit_code == 1


def test_concurrency_levels_are_whole_numbers_in_order() -> None:
    assert parse_levels(None) == [1, 8, 32]
    assert parse_levels("32, 1,8,8") == [1, 8, 32]
    for bad in ("0", "a,8", "1.5", ""):
        with pytest.raises(UsageError, match="--concurrency"):
            parse_levels(bad)


def test_unknown_target_names_the_choices() -> None:
    assert [t.name for t in choose_targets(["direct", "envoy"])] == ["envoy", "direct"]
    with pytest.raises(UsageError, match="istio-gateway"):
        choose_targets(["apache"])
