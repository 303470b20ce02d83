"""results.json: the machine-readable record of a run, one object per cell."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from dicomtls import __version__
from dicomtls.errors import UsageError
from dicomtls.report import redact
from dicomtls.results import CellResult, MatrixResult


SCHEMA_VERSION = "1"
"""The version of results.json's layout, described by the JSON Schema dicomtls/schemas/results.schema.json: raised
when a field changes meaning or goes away (a new optional field keeps it)."""


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
        "policy": [asdict(broken) for broken in r.policy],
        "association_s": r.association_s,
        "release": r.release,
        "release_basis": r.release_basis,
    }


def to_dict(result: MatrixResult) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "dicomtls_version": __version__,
        "run": asdict(result.run),
        "environments": [{**asdict(e), **({"scan": e.scan.to_dict()} if e.scan else {})} for e in result.environments],
        "cells": [cell_record(r) for r in result.cells],
        "policy_violations": [asdict(v) for v in result.violations],
    }


def write(result: MatrixResult, path: Path) -> None:
    write_document(to_dict(result), path)


def write_document(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


@functools.cache
def _results_model() -> type[BaseModel]:
    """The model of what ``to_dict`` writes, built on first use: it takes the types of faults, fixes and scans,
    which a reader of results should not have to import (reports load only the results model)."""
    from dicomtls.faults import FaultReport
    from dicomtls.fixes.prove import FixReport
    from dicomtls.results import BrokenRule, EnvironmentInfo, PolicyViolation, RunInfo
    from dicomtls.scan import ScanResult
    from dicomtls.scenario import Cell

    class _CellRecord(BaseModel):
        """A cell as ``cell_record`` writes it; what an older file lacks (later probe axes, sites, faults) is
        optional."""

        model_config = ConfigDict(extra="allow", strict=True)

        id: str
        scenario: str
        environment: str
        client: str
        sni: str
        client_cert: str
        operation: str
        transport: str = "tls"
        server_cert_check: str = "verify"
        profile: str = "default"
        client_version: str = "default"
        fault: str = "none"
        calling_aet: str = "DICOMTLS"
        called_aet: str = ""
        expected: str
        expected_reason: str | None
        actual: str
        verdict: str
        reason: str | None
        summary: str
        fix: str
        evidence: list[str]
        command: str
        detail: str
        duration_s: float
        sent_bytes: int | None = None
        expected_site: str | None = None
        site: str | None = None
        certificate: str | None = None
        deadline: str | None = None
        error: str | None = None
        fault_report: FaultReport | None = None
        policy: list[BrokenRule] = []
        association_s: float | None = None
        release: str | None = None
        release_basis: str | None = None

    class _Results(BaseModel):
        """What ``to_dict`` writes (and `invoke fix` adds), checked field by field before merge, diff and --baseline
        read it: a hand-edited or damaged file is a usage error naming the field, not a crash in a report."""

        model_config = ConfigDict(extra="allow", strict=True)

        schema_version: str | None = None
        """The layout's version ("1"); absent in a file written before it was recorded."""
        dicomtls_version: str | None = None
        """The dicomtls that wrote the file."""
        run: RunInfo
        environments: list[EnvironmentInfo]
        cells: list[_CellRecord]
        fixes: FixReport | None = None
        policy_violations: list[PolicyViolation] = []

    _Results.model_rebuild(_types_namespace={"ScanResult": ScanResult, "Cell": Cell, "FaultReport": FaultReport,
                                             "FixReport": FixReport})
    return _Results


def typed(doc: dict[str, Any]) -> MatrixResult:
    """A results.json document (as ``read`` returns it) as the results model, the types the run itself held.
    What the file does not record is left at its default: each cell's diagnosis facts (``CellResult.facts``)."""
    from dicomtls.reasons import Reason
    from dicomtls.results import CellResult
    from dicomtls.scenario import Cell, Probe

    checked = _results_model().model_validate_json(json.dumps(doc), strict=True)
    axes = [f.name for f in fields(Probe)]
    results = MatrixResult(checked.run, list(checked.environments))  # type: ignore[attr-defined]
    for record in checked.cells:  # type: ignore[attr-defined]
        probe = Probe(**{axis: getattr(record, axis) for axis in axes})
        expected_reason = Reason(record.expected_reason) if record.expected_reason else None
        cell = Cell(record.scenario, record.environment, probe, record.expected, expected_reason, record.expected_site)
        results.cells.append(CellResult(
            cell, record.actual, Reason(record.reason) if record.reason else None, record.summary, record.fix,
            tuple(record.evidence), record.command, record.detail, record.duration_s, record.sent_bytes, record.site,
            record.certificate, record.fault_report, deadline=record.deadline, error=record.error,
            association_s=record.association_s, release=record.release, release_basis=record.release_basis))
    return results


def read(path: Path) -> dict[str, Any]:
    """A results.json written by dicomtls (or the --out directory holding one); anything else is a usage error."""
    # os.path: False for a name too long for the file system or holding a NUL byte, where Path raises
    if os.path.isdir(path):
        path = path / "results.json"
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file: pass a results.json or the --out directory of a run")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON (line {exc.lineno}): pass a results.json written by invoke matrix") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text: pass a results.json written by invoke matrix") from None
    if not isinstance(doc, dict) or not {"run", "environments", "cells"} <= doc.keys():
        raise UsageError(f"{path}: not a dicomtls results.json (it needs run, environments and cells): pass a "
                         "results.json written by invoke matrix")
    try:
        _results_model().model_validate_json(json.dumps(doc), strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"{path}: not a dicomtls results.json: {where}: {first['msg']}: pass a results.json "
                         "written by invoke matrix, or fix that field") from None
    return doc
