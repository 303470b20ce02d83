"""`invoke probe` resolves a target's name once, through its resolver: every client then connects to that
address (no other lookup, not even by a library), and a name that resolves nowhere is a diagnosed failure.

The endpoint is a loopback port nothing listens on, so the real clients run and are refused at once.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from dicomtls.diagnose import Reason
from dicomtls.pki import PkiSpec, ensure_pki
from dicomtls.probe_endpoint import Request, run_probe
from dicomtls.resolve import Pin, Resolver, ip_literal
from dicomtls.results import CellResult


class Quiet:
    def start(self, total: int) -> None: ...
    def environment(self, name: str, state: str) -> None: ...
    def cell_done(self, result: CellResult) -> None: ...
    def stop(self) -> None: ...


class Spy:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host != "localhost":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return ["127.0.0.1"]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def system_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host any library in this process hands to getaddrinfo (None when it binds a wildcard address)."""
    seen: list[str] = []
    real = socket.getaddrinfo

    def spy(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    return seen


def test_a_pinned_name_is_sent_as_sni_while_every_client_connects_to_the_pinned_address(
        tmp_path: Path, closed_port: int, system_lookups: list[str]) -> None:
    ca = ensure_pki(PkiSpec(server_names=("dicom.example.test",)), tmp_path / "pki").ca_cert
    spy = Spy()
    resolver = Resolver((Pin("dicom.example.test", closed_port, "127.0.0.1"),), spy)
    request = Request("dicom.example.test", closed_port, ca, orthanc_rest=f"http://localhost:{closed_port + 1}")
    result = run_probe([request], tmp_path / "out", Quiet(), resolver)
    assert set(spy.asked) <= {"localhost"}
    # None: pynetdicom asking for its own wildcard bind address
    assert all(ip_literal(h) or h in ("localhost", "None") for h in system_lookups), system_lookups
    sni = {c.cell.probe.sni for c in result.cells if c.cell.probe.client == "pynetdicom"}
    assert sni == {"none", "right", "wrong"}  # the target's name is the right SNI
    assert all(c.reason is Reason.TCP_REFUSED for c in result.cells), [(c.cell.id, c.reason) for c in result.cells]
    assert all(f"127.0.0.1 {closed_port}" in c.command for c in result.cells if c.cell.probe.client == "dcmtk")
    assert result.environments[0].entry == f"127.0.0.1:{closed_port}"


def test_a_name_that_resolves_nowhere_fails_every_cell_as_dns_unresolved(tmp_path: Path, closed_port: int) -> None:
    ca = ensure_pki(PkiSpec(server_names=("dicom.example.test",)), tmp_path / "pki").ca_cert
    spy = Spy()
    result = run_probe([Request("nowhere.example.test", closed_port, ca)], tmp_path / "out", Quiet(),
                       Resolver((), spy))
    assert spy.asked == ["nowhere.example.test"]
    assert result.cells and all(c.reason is Reason.DNS_UNRESOLVED for c in result.cells)
    assert "does not resolve" in (result.environments[0].error or "")


def test_a_failure_probing_one_host_is_that_hosts_error_and_the_other_hosts_still_run(
        tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from dicomtls import probe_endpoint

    real = probe_endpoint.run_cell

    def run_cell(cell: Any, *args: Any, **kwargs: Any) -> CellResult:
        if cell.environment == "broken":
            raise KeyError("dcmtk-stunnel")  # as a client table lacking a client did
        return real(cell, *args, **kwargs)

    monkeypatch.setattr(probe_endpoint, "run_cell", run_cell)
    ca = ensure_pki(PkiSpec(server_names=("dicom.example.test",)), tmp_path / "pki").ca_cert
    requests = [Request("127.0.0.1", closed_port, ca, name=name) for name in ("broken", "fine")]
    result = run_probe(requests, tmp_path / "out", Quiet(), jobs=2)
    broken, fine = result.environments
    assert broken.error == "dicomtls failed probing it: KeyError: 'dcmtk-stunnel' (traceback in crash.log)"
    assert fine.error is None
    mine = [c for c in result.cells if c.cell.environment == "broken"]
    assert mine and all((c.actual, c.reason) == ("fail", Reason.UNKNOWN) for c in mine)
    assert mine[0].error == "KeyError: 'dcmtk-stunnel' (traceback in crash.log)"
    assert "Traceback" in (tmp_path / "out" / "crash.log").read_text()
    assert all(c.reason is Reason.TCP_REFUSED for c in result.cells if c.cell.environment == "fine")
