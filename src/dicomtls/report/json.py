"""results.json: the machine-readable record of a run, one object per cell."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dicomtls.errors import UsageError
from dicomtls.report import redact
from dicomtls.results import CellResult, MatrixResult


def cell_record(r: CellResult) -> dict[str, Any]:
    c = r.cell
    return {
        "id": c.id,
        "scenario": c.scenario,
        "environment": c.environment,
        **asdict(c.probe),
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
        "expected_site": c.expected_site,
        "site": r.site,
        "certificate": r.certificate,
        "deadline": r.deadline,
        "error": redact(r.error) if r.error else None,
        "fault_report": {k: redact(v) if isinstance(v, str) else v for k, v in asdict(r.fault).items()}
        if r.fault else None,
    }


def to_dict(result: MatrixResult) -> dict[str, Any]:
    return {
        "run": asdict(result.run),
        "environments": [{**asdict(e), **({"scan": e.scan.to_dict()} if e.scan else {})} for e in result.environments],
        "cells": [cell_record(r) for r in result.cells],
    }


def write(result: MatrixResult, path: Path) -> None:
    write_document(to_dict(result), path)


def write_document(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


_CELL_KEYS = {"id", "scenario", "environment", "expected", "actual", "verdict"}


def read(path: Path) -> dict[str, Any]:
    """A results.json written by dicomtls (or the --out directory holding one); anything else is a usage error."""
    if path.is_dir():
        path = path / "results.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file: pass a results.json or the --out directory of a run") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON (line {exc.lineno}): pass a results.json written by invoke matrix") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text: pass a results.json written by invoke matrix") from None
    cells = doc.get("cells") if isinstance(doc, dict) else None
    if (not isinstance(cells, list) or not isinstance(doc.get("run"), dict)
            or not isinstance(doc.get("environments"), list)
            or not all(isinstance(c, dict) and _CELL_KEYS <= c.keys() for c in cells)):
        raise UsageError(f"{path}: not a dicomtls results.json (it needs run, environments and cells with "
                         f"{', '.join(sorted(_CELL_KEYS))})")
    return doc
