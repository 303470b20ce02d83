"""What a soak concludes from its rounds: a changed cell, memory growth, and when it fails."""

from __future__ import annotations

from dicomtls.soak import CellHistory, MemoryTrend, SoakResult


def test_a_cell_changed_when_two_rounds_disagree() -> None:
    assert not CellHistory("a", ["pass", "pass", "pass"]).changed
    assert CellHistory("b", ["pass", "fail: timeout", "pass"]).changed
    assert CellHistory("c", ["fail: tls-unknown-ca", "fail: dimse-failure"]).changed


def test_memory_growth_counts_from_the_end_of_the_first_round() -> None:
    trend = MemoryTrend("env", "orthanc", [30, 50, 55, 52])
    assert trend.growth == 2
    assert trend.second_half_growth == -3  # samples[2] -> samples[3]
    assert trend.peak == 55
    assert MemoryTrend("env", "envoy", [64]).growth == 0


def test_a_soak_fails_on_a_changed_cell_an_unexpected_one_a_stopped_component_or_a_leftover() -> None:
    def soak(**kwargs: object) -> SoakResult:
        result = SoakResult("s", "local", 1.0, rounds=2, cells=[CellHistory("a", ["pass", "pass"])])
        for name, value in kwargs.items():
            setattr(result, name, value)
        return result

    assert soak().exit_code == 0
    assert soak(cells=[CellHistory("a", ["pass", "fail: timeout"])]).exit_code == 1
    assert soak(cells=[CellHistory("a", ["pass", "pass"], unexpected_rounds=[1, 2])]).exit_code == 1
    assert soak(stopped="envoy exited: …").exit_code == 1
    assert soak(leftovers=["port 20001 still accepting connections"]).exit_code == 1
