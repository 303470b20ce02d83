"""The default matrix's answers as recorded: (id, actual, reason, site, certificate) of every cell, per backend.

``tests/fixtures/baseline/cells-BACKEND.json`` was written from a run of the default matrix (``invoke matrix
--backend BACKEND``, no ``--scenario``) before a refactor, so that a change meant to keep behaviour is shown to keep
every answer. A test compares each default run the suite makes against it; a difference is a changed behaviour
until someone decides otherwise. The files are refreshed on purpose only, when a change of answers is intended
and explained in the commit that refreshes them:

    PYTHONPATH=src python -m invoke matrix --backend local --out /tmp/baseline-local
    PYTHONPATH=src python -m tests.integration.baseline local /tmp/baseline-local/results.json

(and the same with ``docker``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "baseline"
ANSWER = ("actual", "reason", "site", "certificate")
"""What a cell concluded, without timings, ports, paths or the wording of its summary."""


def baseline_file(backend: str) -> Path:
    return FIXTURES / f"cells-{backend}.json"


def answers_of(cells: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["id"]: {k: c.get(k) for k in ANSWER} for c in cells}


def differences(cells: list[dict[str, Any]], backend: str) -> list[str]:
    """One line per cell whose answer is not the recorded one, naming the cell and what changed; cells that
    appeared or vanished are named too."""
    recorded = answers_of(json.loads(baseline_file(backend).read_text(encoding="utf-8"))["cells"])
    now = answers_of(cells)
    found = []
    for cell in sorted(recorded.keys() | now.keys()):
        if cell not in now:
            found.append(f"{cell}: not in this run (recorded {recorded[cell]})")
        elif cell not in recorded:
            found.append(f"{cell}: not in the baseline (now {now[cell]})")
        elif changed := [f"{k} {recorded[cell][k]!r} -> {now[cell][k]!r}" for k in ANSWER
                         if recorded[cell][k] != now[cell][k]]:
            found.append(f"{cell}: {', '.join(changed)}")
    return found


def refresh(backend: str, results: Path) -> Path:
    """Rewrite the baseline of ``backend`` from a run's results.json: on purpose only (see the module's docstring)."""
    doc = json.loads(results.read_text(encoding="utf-8"))
    if doc["run"]["backend"] != backend:
        raise SystemExit(f"{results} is a run on {doc['run']['backend']}, not {backend}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent, check=True).stdout.strip()
    cells = [{"id": c, **answer} for c, answer in sorted(answers_of(doc["cells"]).items())]
    path = baseline_file(backend)
    path.write_text(json.dumps({"backend": backend, "commit": commit, "cells": cells}, indent=0) + "\n",
                    encoding="utf-8")
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m tests.integration.baseline BACKEND RESULTS_JSON")
    print(refresh(sys.argv[1], Path(sys.argv[2])))
