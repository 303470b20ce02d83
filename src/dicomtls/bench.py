"""Wall-time benchmarks, measured side by side in one run so that a noisy machine skews both alike.

Each round runs the same matrix once per backend, alternating, in fresh
processes (as a user runs it); the report gives medians and the ratio, and
the CPU seconds each run took: of dicomtls and its children, and of the whole
machine (on Docker the engine and the containers work for the run too). The
whole machine's CPU over its cores is the floor no number of jobs gets under.
Image builds are measured cold (every dicomtls image, base images included,
removed first) and warm (everything present: the no-op a CI run should see).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dicomtls.errors import UsageError


@dataclass
class Timings:
    samples: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # user+sys seconds of dicomtls and its children
    machine: dict[str, list[float]] = field(default_factory=dict)  # busy CPU seconds of every process
    verdicts: dict[str, set[str]] = field(default_factory=dict)  # per run name: each distinct set of outcomes seen

    def add(self, name: str, seconds: float, cpu_s: float | None = None, machine_s: float | None = None) -> None:
        self.samples.setdefault(name, []).append(round(seconds, 2))
        if cpu_s is not None:
            self.cpu.setdefault(name, []).append(round(cpu_s, 2))
        if machine_s is not None:
            self.machine.setdefault(name, []).append(round(machine_s, 2))

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy since boot (Linux's /proc/stat: user, nice, system, irq and
    softirq over every core), or None where there is no such file."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _timed_invoke(args: list[str]) -> tuple[float, float, float | None]:
    """Wall seconds; the CPU seconds (user+sys) of the process and every descendant it waited for (Orthanc
    and the proxies on the local backend; on Docker, what runs in containers is the engine's, not counted); and
    the whole machine's busy CPU seconds meanwhile, the engine and containers included.
    The command is this very package's dicomtls, in a fresh process, as a user runs it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = _busy_seconds()
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dicomtls", *args], capture_output=True, text=True)
    elapsed = time.monotonic() - started
    busy_after = _busy_seconds()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UsageError(f"`dicomtls {' '.join(args)}` exited {proc.returncode} during the benchmark: {tail[0]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    machine = busy_after - busy_before if busy_before is not None and busy_after is not None else None
    return elapsed, cpu, machine


def _outcomes(results: Path) -> str:
    """What a run concluded, without timings or ports: every cell's id, outcome, reason, verdict and site."""
    cells = json.loads(results.read_text())["cells"]
    return json.dumps(sorted([c["id"], c["actual"], c["reason"], c["verdict"], c.get("site")] for c in cells))


def matrix_wall_times(backends: list[str], runs: int, scenarios: list[str], say: Callable[[str], None],
                      jobs: list[str] | None = None) -> Timings:
    """Each round runs every (backend, jobs) pair once, alternating, so drift on a noisy machine hits all alike."""
    timings = Timings()
    selection = [arg for name in scenarios for arg in ("--scenario", name)]
    variants = [(backend, j) for backend in backends for j in (jobs or ["auto"])]
    with tempfile.TemporaryDirectory(prefix="dicomtls-bench-") as tmp:
        for round_ in range(1, runs + 1):
            for backend, j in variants:
                name = f"matrix {backend} jobs={j}"
                out = f"{tmp}/{backend}-{j}"
                seconds, cpu, machine = _timed_invoke(["matrix", "--backend", backend, "--jobs", j, "--out", out,
                                                       *selection])
                timings.add(name, seconds, cpu, machine)
                timings.verdicts.setdefault(backend, set()).add(_outcomes(Path(out) / "results.json"))
                whole = f", machine {machine:.1f} CPU s" if machine is not None else ""
                say(f"round {round_}: {name} took {seconds:.1f}s, {cpu:.1f} CPU s{whole}")
    return timings


def image_build_times(runs: int, say: Callable[[str], None]) -> Timings:
    """Cold: remove every dicomtls image (base images too), then build; warm: build again with all present."""
    from dicomtls.images import _client

    client = _client()
    timings = Timings()
    for round_ in range(1, runs + 1):
        for image in client.images.list(name="dicomtls/*"):
            for tag in image.tags:
                client.images.remove(tag, force=True)
        client.images.prune(filters={"dangling": True})
        cold, _, _ = _timed_invoke(["images"])
        warm, _, _ = _timed_invoke(["images"])
        timings.add("images cold", cold)
        timings.add("images warm", warm)
        say(f"round {round_}: images cold {cold:.1f}s, warm {warm:.1f}s")
    return timings


def report(timings: Timings, say: Callable[[str], None]) -> None:
    for name, samples in timings.samples.items():
        cpu = f"; CPU median {statistics.median(timings.cpu[name]):.1f}s over {timings.cpu[name]}" \
            if name in timings.cpu else ""
        if name in timings.machine:
            machine = statistics.median(timings.machine[name])
            cores = os.cpu_count() or 1
            cpu += f"; machine CPU median {machine:.1f}s, floor {machine / cores:.1f}s on {cores} cores"
        say(f"{name}: median {timings.median(name):.1f}s over {samples}{cpu}")
    names = list(timings.samples)
    for backend, outcomes in timings.verdicts.items():
        say(f"{backend}: verdicts {'identical' if len(outcomes) == 1 else 'DIFFER'} across every run")
    matrices = [n for n in names if n.startswith("matrix ")]
    by_backend: dict[str, list[str]] = {}
    for name in matrices:
        by_backend.setdefault(name.split()[1], []).append(name)
    for backend, runs in by_backend.items():
        base = f"matrix {backend} jobs=1"
        for name in runs:
            if name != base and base in runs:
                say(f"{backend}: {name.split()[2]} / jobs=1 wall time: {timings.median(name) / timings.median(base):.2f}")
    for j in dict.fromkeys(n.split()[2] for n in matrices):
        local, docker = f"matrix local {j}", f"matrix docker {j}"
        if local in names and docker in names:
            say(f"docker / local wall time ({j}): {timings.median(docker) / timings.median(local):.2f}")
    if "images cold" in names:
        say(f"warm / cold image build: {timings.median('images warm') / timings.median('images cold'):.3f}")
