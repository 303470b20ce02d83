"""A real run's results.json (envoy-sni-named-hosts) and ways to make some of its cells unexpected."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results_envoy_sni_named_hosts.json"
BROKEN = "envoy-sni-named-hosts/envoy-named-hosts/pynetdicom sni=right cert=none echo"
SURPRISE = "envoy-sni-named-hosts/envoy-wildcard-hosts/pynetdicom sni=wrong cert=none echo"


def real_run() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def with_unexpected(summary: str, fix: str, evidence: list[str], surprise: bool = True) -> dict[str, Any]:
    """The real run with BROKEN failing where it should pass and, if ``surprise``, SURPRISE passing where it
    should fail; the texts are the caller's, to exercise its escaping and redaction."""
    doc = copy.deepcopy(real_run())
    for c in doc["cells"]:
        if c["id"] == BROKEN:
            c.update(actual="fail", verdict="unexpected", reason="tls-cert-required", summary=summary, fix=fix,
                     evidence=evidence)
        if surprise and c["id"] == SURPRISE:
            c.update(actual="pass", verdict="unexpected", reason=None, summary="", fix="", evidence=[])
    return doc
