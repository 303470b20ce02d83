"""Invoke tasks: thin wrappers that parse options and map errors to exit codes (2 = bad input or usage)."""

from __future__ import annotations

from invoke import Exit, task

from dicomtls import app
from dicomtls.errors import UsageError


def _guarded(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kwargs)
    except UsageError as exc:
        raise Exit(f"dicomtls: {exc}", code=2) from None
    except KeyboardInterrupt:
        raise Exit("dicomtls: interrupted; everything started was stopped", code=130) from None


@task(
    iterable=["scenario"],
    help={
        "scenario": "scenario name or path to a .yaml file (repeatable; default: every default scenario)",
        "out": "directory for results.json, junit.xml, PKI and logs (default: out)",
        "backend": "where environments run: local",
        "force-pki": "regenerate the PKI even if a matching one exists",
    },
)
def matrix(c, scenario=None, out="out", backend="local", force_pki=False):
    """Run the DICOM-over-TLS matrix and print it; exit 0 iff every cell is as expected."""
    code = _guarded(app.matrix, scenario or None, out, backend, force_pki)
    if code:
        raise Exit(code=code)


@task(
    help={
        "topology": "one-level (Test CA) or two-level (Root -> Intermediate)",
        "out": "directory for the PKI files (default: out/pki/manual)",
        "key": "rsa-2048, rsa-4096 or ecdsa-p256",
        "server-name": "DNS name for the server certificate (repeatable)",
        "force": "regenerate even if matching material exists",
    },
    iterable=["server_name"],
)
def pki(c, topology="one-level", out="out/pki/manual", key="rsa-2048", server_name=None, force=False):
    """Generate a test PKI: CA(s), server, client and the negative certificates."""
    _guarded(app.pki, topology, out, key, server_name or None, force)


@task(
    iterable=["scenario"],
    help={
        "scenario": "scenario to start (repeatable)",
        "out": "directory for PKI and logs (default: out)",
        "backend": "where environments run: local",
        "port": "fix the entry port instead of picking a free one (one environment only)",
    },
)
def up(c, scenario=None, out="out", backend="local", port=None):
    """Start a scenario's environments and leave them running; prints each endpoint."""
    _guarded(app.up, scenario or [], out, backend, int(port) if port else None)


@task
def down(c):
    """Stop everything `invoke up` started."""
    stopped = _guarded(app.down)
    print(f"dicomtls: stopped {stopped} processes")
