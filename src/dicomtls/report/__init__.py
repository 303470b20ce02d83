"""Outputs of a matrix run: the terminal matrix, results.json, junit.xml, summary.md and report.html.

Every output goes through :func:`redact` so no private key material can leak
into a report, whatever a log line happened to contain.
"""

from __future__ import annotations

import re
from typing import Any

_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S)


def redact(text: str) -> str:
    return _KEY_BLOCK.sub("[private key redacted]", text)


def redact_all(value: Any) -> Any:
    """``value`` with :func:`redact` applied to every string in it, however deeply nested."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_all(v) for v in value]
    return value
