"""results.json: the machine-readable record of a run, one object per cell."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dicomtls.matrix import CellResult, MatrixResult
from dicomtls.report import redact


def cell_record(r: CellResult) -> dict[str, Any]:
    c = r.cell
    return {
        "id": c.id,
        "scenario": c.scenario,
        "environment": c.environment,
        "client": c.probe.client,
        "sni": c.probe.sni,
        "client_cert": c.probe.client_cert,
        "operation": c.probe.operation,
        "transport": c.probe.transport,
        "expected": c.expected,
        "expected_reason": str(c.expected_reason) if c.expected_reason else None,
        "actual": r.actual,
        "verdict": r.verdict,
        "reason": str(r.reason) if r.reason else None,
        "summary": r.summary,
        "fix": r.fix,
        "evidence": [redact(e) for e in r.evidence],
        "command": r.command,
        "detail": r.detail,
        "duration_s": r.duration_s,
        "sent_bytes": r.sent_bytes,
    }


def to_dict(result: MatrixResult) -> dict[str, Any]:
    return {
        "run": asdict(result.run),
        "environments": [asdict(e) for e in result.environments],
        "cells": [cell_record(r) for r in result.cells],
    }


def write(result: MatrixResult, path: Path) -> None:
    path.write_text(json.dumps(to_dict(result), indent=2) + "\n")
