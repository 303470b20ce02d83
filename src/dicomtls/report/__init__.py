"""Outputs of a matrix run: the terminal matrix, results.json and junit.xml.

Every output goes through :func:`redact` so no private key material can leak
into a report, whatever a log line happened to contain.
"""

from __future__ import annotations

import re

_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S)


def redact(text: str) -> str:
    return _KEY_BLOCK.sub("[private key redacted]", text)
