"""dicomtls in the user's own pytest suite (a ``pytest11`` entry point): the ``dicomtls_probe`` fixture probes a DICOM
TLS endpoint with every registered client, SNI and client certificate, as ``dicomtls probe`` does, and returns its
cells to assert on.

Users of testinfra and Molecule already check their hosts with pytest; this puts the DICOM check beside their
``host.service("orthanc").is_running``. In a test that takes testinfra's ``host`` fixture, the endpoint's address is
the host's (``host.backend.hostname``; 127.0.0.1 for ``local://``; ``ansible_host`` with the ansible backend), so a
test parametrised by ``--hosts`` probes each host. Each endpoint is probed once per session however many tests ask.

pytest loads this module in every suite of an environment where dicomtls is installed: importing it imports nothing
but pytest, and testinfra is never imported (its ``host`` fixture is asked for only when a test has it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from dicomtls.results import CellResult, MatrixResult

DEFAULT_PORT = 11112


@dataclass(frozen=True)
class Probed:
    """One endpoint's probe: its cells, chosen by their axes (``client``, ``sni``, ``client_cert``, ``operation``,
    ``transport``, ``server_cert_check``, ``profile``) and asserted on with messages that carry the diagnosis."""

    result: MatrixResult
    target: str

    def cells(self, **axes: str) -> list[CellResult]:
        """The cells whose axes have these values (``client_cert="untrusted"``); every cell when none are given."""
        from dataclasses import asdict

        return [c for c in self.result.cells if _matches(asdict(c.cell.probe), axes)]

    def passed(self, **axes: str) -> bool:
        """Some cell matches and every matching one passed."""
        chosen = self.cells(**axes)
        return bool(chosen) and all(c.actual == "pass" for c in chosen)

    def assert_pass(self, **axes: str) -> None:
        """Every cell matching ``axes`` (at least one) passed; else an AssertionError listing each that did not,
        with its reason, diagnosis and fix."""
        self._assert(axes, lambda c: c.actual == "pass", "pass")

    def assert_fail(self, reason: str | None = None, **axes: str) -> None:
        """Every cell matching ``axes`` (at least one) failed, for ``reason`` when given (``tls-unknown-ca``)."""
        wanted = f"fail with {reason}" if reason else "fail"
        self._assert(axes, lambda c: c.actual != "pass" and (reason is None or c.reason == reason), wanted)

    def _assert(self, axes: dict[str, str], holds: Callable[[CellResult], bool], wanted: str) -> None:
        chosen = self.cells(**axes)
        where = ", ".join(f"{k}={v}" for k, v in axes.items()) or "every cell"
        if not chosen:
            raise AssertionError(f"{self.target}: no cell has {where}: probed {_labels(self.result.cells)}")
        wrong = [c for c in chosen if not holds(c)]
        if wrong:
            lines = [f"{self.target}: {len(wrong)} of {len(chosen)} cells with {where} did not {wanted}:"]
            lines += [f"  {c.cell.probe.label()}: {c.actual}{f' ({c.reason})' if c.reason else ''}"
                      f"{f': {c.summary}' if c.summary else ''}{f'; fix: {c.fix}' if c.fix else ''}" for c in wrong]
            raise AssertionError("\n".join(lines))


def _matches(values: dict[str, Any], axes: dict[str, str]) -> bool:
    unknown = sorted(set(axes) - set(values))
    if unknown:
        raise TypeError(f"no axis {unknown[0]!r}: choose cells by {', '.join(values)}")
    return all(str(values[axis]) == str(value) for axis, value in axes.items())


def _labels(cells: list[CellResult]) -> str:
    return "; ".join(c.cell.probe.label() for c in cells) or "no cells"


def _host_address(request: pytest.FixtureRequest) -> str | None:
    """The address of testinfra's ``host`` when the test takes it; None otherwise."""
    if "host" not in request.fixturenames:
        return None
    host = request.getfixturevalue("host")
    address = _TESTINFRA_ADDRESS.get(host.backend.get_connection_type(), lambda h: h.backend.hostname)
    return str(address(host))


# testinfra's connection types (not dicomtls backends) whose hostname is not the address to connect to.
_TESTINFRA_ADDRESS: dict[str, Callable[[Any], str]] = {
    "local": lambda host: "127.0.0.1",  # this machine; its hostname is "local"
    "ansible": lambda host: host.ansible.get_variables().get("ansible_host", host.backend.hostname),
}


class DicomtlsProbe:
    """What the ``dicomtls_probe`` fixture gives: call it with the endpoint to probe."""

    def __init__(self, request: pytest.FixtureRequest, cache: dict[tuple[Any, ...], Probed], out: Path) -> None:
        self._request = request
        self._cache = cache
        self._out = out

    def __call__(self, target: str | None = None, *, ca: str | Path, port: int = DEFAULT_PORT, sni: str | None = None,
                 client_cert: str | Path | None = None, client_key: str | Path | None = None,
                 called_aet: str = "ORTHANC", timeout: str | None = None) -> Probed:
        """Probe ``target`` (``HOST:PORT``; default: testinfra's ``host`` at ``port``) whose certificate ``ca``
        issued; the other arguments are `dicomtls probe`'s options. A bad argument raises dicomtls's UsageError."""
        if target is None:
            address = _host_address(self._request)
            if address is None:
                raise pytest.UsageError("dicomtls_probe: give the endpoint as HOST:PORT, or take testinfra's `host` "
                                        "fixture in the test so that its address is probed")
            target = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        key = (target, str(ca), sni, str(client_cert), str(client_key), called_aet, timeout)
        if key not in self._cache:
            from dicomtls import api

            out = self._out / f"probe-{len(self._cache) + 1}"
            result = api.probe(target, ca, sni=sni, client_cert=client_cert, client_key=client_key,
                               called_aet=called_aet, out=out, timeout=timeout)
            self._cache[key] = Probed(result, target)
        return self._cache[key]


@pytest.fixture(scope="session")
def _dicomtls_probes(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[tuple[Any, ...], Probed], Path]:
    return {}, tmp_path_factory.mktemp("dicomtls")


@pytest.fixture
def dicomtls_probe(request: pytest.FixtureRequest,
                   _dicomtls_probes: tuple[dict[tuple[Any, ...], Probed], Path]) -> DicomtlsProbe:
    """Probe a DICOM TLS endpoint (once per session per endpoint) and assert on its cells:

    ``dicomtls_probe("dicom.example.org:11112", ca="ca.pem").assert_fail("tls-unknown-ca", client_cert="untrusted")``
    """
    cache, out = _dicomtls_probes
    return DicomtlsProbe(request, cache, out)
