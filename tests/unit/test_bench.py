"""The benchmark's report: ratios beside the CPU that bounds them."""

from __future__ import annotations

import os
import time

from dicomtls import bench


def test_machine_busy_seconds_grow_while_this_process_computes() -> None:
    before = bench._busy_seconds()
    assert before is not None, "Linux has /proc/stat"
    spin_until = time.process_time() + 0.2
    while time.process_time() < spin_until:
        pass
    after = bench._busy_seconds()
    assert after is not None and after - before > 0


def test_report_gives_the_ratio_and_the_floor_the_whole_machine_sets() -> None:
    timings = bench.Timings()
    for wall, cpu, machine in ((100.0, 20.0, 90.0), (102.0, 21.0, 92.0), (98.0, 19.0, 88.0)):
        timings.add("matrix docker jobs=1", wall, cpu, machine)
    for wall, cpu, machine in ((45.0, 20.5, 80.0), (44.0, 20.0, 78.0), (46.0, 21.0, 82.0)):
        timings.add("matrix docker jobs=auto", wall, cpu, machine)
    timings.verdicts["docker"] = {"same"}
    said: list[str] = []
    bench.report(timings, said.append)
    cores = os.cpu_count() or 1
    assert f"matrix docker jobs=auto: median 45.0s over [45.0, 44.0, 46.0]; CPU median 20.5s over [20.5, 20.0, 21.0]; " \
           f"machine CPU median 80.0s, floor {80.0 / cores:.1f}s on {cores} cores" in said
    assert "docker: jobs=auto / jobs=1 wall time: 0.45" in said
    assert "docker: verdicts identical across every run" in said
