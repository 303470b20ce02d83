"""The package's own types agree with each other: a call site left behind by a refactoring fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_type_checks_with_mypy() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "src/dicomtls"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
