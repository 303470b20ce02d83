"""What reads results stays light: reports, diff, merge and results.json import the results model, never what
plans, starts or runs an environment. Measured the way a user would see it, with ``python -X importtime`` in a
fresh interpreter, so nothing this test process imported first can hide a module."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pynetdicom", "dicomtls.backends", "dicomtls.manifests", "dicomtls.components", "dicomtls.probes")
"""A client library, the backends, the manifest readers, the components and the clients: what runs a matrix."""

RUNNING = ("dicomtls.plan", "dicomtls.environment", "dicomtls.cell", "dicomtls.runner")
"""The modules that plan and run a matrix, which no report needs to read one."""


def loaded_by(statement: str) -> list[str]:
    """Every module ``statement`` loads in a fresh interpreter, as ``-X importtime`` lists them."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    return [line.rsplit("|", 1)[1].strip() for line in lines[1:]]  # the first line is the header


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("module", ["dicomtls.report.json", "dicomtls.results", "dicomtls.diff", "dicomtls.shard",
                                    "dicomtls.api"])
def test_reading_results_loads_no_client_backend_manifest_or_component(module: str) -> None:
    loaded = loaded_by(f"import {module}")
    assert module in loaded
    heavy = [m for m in loaded if within(m, HEAVY)]
    assert not heavy, f"import {module} loads {', '.join(heavy)}"


def test_reports_import_the_results_model_not_the_runner() -> None:
    reports = ("console", "fixes", "html", "json", "junit", "layout", "markdown")
    loaded = loaded_by("; ".join(f"import dicomtls.report.{name}" for name in reports))
    assert "dicomtls.results" in loaded
    running = [m for m in loaded if within(m, RUNNING)]
    assert not running, f"the reports load {', '.join(running)}"
