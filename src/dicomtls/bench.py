"""Wall-time benchmarks, measured side by side in one run so that a noisy machine skews both alike.

Each round runs the same matrix once per backend, alternating, in fresh
processes (as a user runs it); the report gives medians and the ratio. Image
builds are measured cold (every dicomtls image, base images included, removed
first) and warm (everything present: the no-op a CI run should see).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dicomtls.errors import UsageError


@dataclass
class Timings:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(round(seconds, 2))

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


def _timed_invoke(args: list[str]) -> float:
    # The dicomtls command of this very package, in a fresh process, as a user runs it.
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dicomtls", *args], capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UsageError(f"`dicomtls {' '.join(args)}` exited {proc.returncode} during the benchmark: {tail[0]}")
    return elapsed


def matrix_wall_times(backends: list[str], runs: int, scenarios: list[str], say: Callable[[str], None]) -> Timings:
    timings = Timings()
    selection = [arg for name in scenarios for arg in ("--scenario", name)]
    with tempfile.TemporaryDirectory(prefix="dicomtls-bench-") as tmp:
        for round_ in range(1, runs + 1):
            for backend in backends:
                seconds = _timed_invoke(["matrix", "--backend", backend, "--out", f"{tmp}/{backend}", *selection])
                timings.add(f"matrix {backend}", seconds)
                say(f"round {round_}: matrix on {backend} took {seconds:.1f}s")
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
        cold = _timed_invoke(["images"])
        warm = _timed_invoke(["images"])
        timings.add("images cold", cold)
        timings.add("images warm", warm)
        say(f"round {round_}: images cold {cold:.1f}s, warm {warm:.1f}s")
    return timings


def report(timings: Timings, say: Callable[[str], None]) -> None:
    for name, samples in timings.samples.items():
        say(f"{name}: median {timings.median(name):.1f}s over {samples}")
    names = list(timings.samples)
    if "matrix local" in names and "matrix docker" in names:
        ratio = timings.median("matrix docker") / timings.median("matrix local")
        say(f"docker / local wall time: {ratio:.2f}")
    if "images cold" in names:
        say(f"warm / cold image build: {timings.median('images warm') / timings.median('images cold'):.3f}")
