"""Probe endpoints that are already running (yours, or ones `invoke up` left), with no environment started.

The same clients, cells, diagnoses and report as a matrix run, against a
target named on the command line or each host of an inventory: each client
with and without SNI, with no, your, and an untrusted client certificate, a
few TLS profiles (dcm4che's ``--tls-aes``, TLS 1.0 only, dcmtk's BCP 195), plain
DICOM, and dcmtk without checking the server (``-ic``) — plus a scan of the
endpoint. A name is resolved once, in :mod:`dicomtls.resolve`; every client
connects to that address and sends the name as SNI. Without the server's logs,
failures the client cannot name are explained from the scan and the other cells
(:mod:`dicomtls.corroborate`). Nothing is expected, so every cell is reported
as observed. Your CA's key is never needed; the untrusted certificate comes
from a throwaway CA made here, and an expired certificate your CA signed cannot
be made, so there is no such cell. C-STOREs run only with ``--store FILE``, and
count as verified only when ``--orthanc-rest URL`` lets dicomtls look the object up.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pydicom

from dicomtls.association import DEFAULT_CALLING_AET
from dicomtls.backends import SOLE_SITE, EnvironmentPlan, RunningEnvironment
from dicomtls.cell import failed, not_run, run_cell
from dicomtls.components import Address
from dicomtls.corroborate import corroborate
from dicomtls.crash import recorded
from dicomtls import clients as client_registry
from dicomtls.clients import EndpointRequest
from dicomtls.deadlines import Deadlines
from dicomtls.diagnose import EXPLANATIONS
from dicomtls.dicomdata import add_source
from dicomtls.environment import recount_connections
from dicomtls.errors import UsageError
from dicomtls.pki import PkiSpec, ensure_pki
from dicomtls.probes import Client, Target
from dicomtls.probes.clients import Clients, clients_for
from dicomtls.probes.dcmtk import Dcmtk
from dicomtls.reasons import Reason
from dicomtls.resolve import Resolver, Unresolved, host_port, ip_literal
from dicomtls.results import OBSERVE, CellResult, EnvironmentInfo, MatrixResult, RunInfo
from dicomtls.runner import STUCK_GRACE_S, Progress, wait_through_interrupts
from dicomtls.scan import Endpoint, ScanResult, scan
from dicomtls.scan_pool import ScanPool
from dicomtls.scenario import Cell, Probe

SCENARIO = "probe"  # the scenario name of every probe cell: nothing is expected of them
STORE_OPERATION = "store-file"
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}  # Implicit, Explicit VR Little Endian (what is sent)


@dataclass(frozen=True)
class Request:
    """One endpoint to probe, as the user named it."""

    host: str  # a DNS name or an IP literal
    port: int
    ca: Path
    sni: str | None = None
    """The name to send and to check the certificate against; default: ``host`` when it is a name."""
    client_cert: Path | None = None
    client_key: Path | None = None
    called_aet: str = "ORTHANC"
    store: Path | None = None
    orthanc_rest: str | None = None
    logs: tuple[Path, ...] = ()
    """The endpoint's own logs: what they gain during a cell is that cell's evidence, as in a matrix run. A file
    named *access.log is read as one line per connection (Envoy's, as `invoke up` configures it)."""
    name: str | None = None
    """What reports call it (an inventory's host); default: HOST:PORT."""
    calling_aet: str = DEFAULT_CALLING_AET
    """The AE title the clients call as."""

    @property
    def server_name(self) -> str | None:
        return self.sni or (None if ip_literal(self.host) else self.host)

    @property
    def label(self) -> str:
        return self.name or host_port(self.host, self.port)

    def endpoint(self, address: str) -> Endpoint:
        return Endpoint(address, self.port, self.server_name, self.ca, self.client_cert, self.client_key,
                        name=None if ip_literal(self.host) else self.host)


def probes(request: Request, command_line_version: str = "3.6.7") -> list[Probe]:
    """The client × SNI × certificate × profile cells worth running against this endpoint: each client's own
    (``ClientKind.endpoint_probes``), then each one's profiles. ``command_line_version``: the version of this
    machine's command-line client (dcmtk sends SNI from 3.6.8 on; before, it sends none)."""
    certs = ("none", *(["valid"] if request.client_cert else []), "untrusted")
    asked = EndpointRequest(named=request.server_name is not None, certs=certs,
                            best_cert="valid" if request.client_cert else "none",
                            operations=("echo", *([STORE_OPERATION] if request.store else [])),
                            version=command_line_version)
    found = [client.endpoint_probes(asked) for client in client_registry.listed()]
    chosen = [probe for base, _ in found for probe in base] + [probe for _, profiled in found for probe in profiled]
    return [dataclasses.replace(probe, calling_aet=request.calling_aet) for probe in chosen]


def _runnable_clients(wanted: list[Probe]) -> tuple[Clients, dict[str, str]]:
    """The clients this machine can run for ``wanted``, and why each other one cannot (stunnel not installed):
    probing an endpoint needs no particular client, so one that is missing here leaves out its own cells only."""
    missing: dict[str, str] = {}
    for name in dict.fromkeys(p.client for p in wanted):
        try:
            clients_for([p for p in wanted if p.client == name], installed=True)
        except UsageError as exc:
            missing[name] = str(exc)
    return clients_for([p for p in wanted if p.client not in missing], installed=True), missing


_MAKING_PKI = threading.Lock()


def _target(request: Request, address: str, pki_root: Path) -> Target:
    """Your CA and client certificate where you gave them; the untrusted one from a throwaway PKI."""
    name = request.server_name or "probe.dicomtls.invalid"
    spec = PkiSpec(server_names=(name,))
    with _MAKING_PKI:  # hosts probed side by side may share a name
        spare = ensure_pki(spec, pki_root / "probe" / spec.digest())  # one per name: an inventory has several
    pki = dataclasses.replace(
        spare, ca_cert=request.ca, ca_bundle=request.ca,
        client_cert=request.client_cert or spare.client_cert,
        client_fullchain=request.client_cert or spare.client_fullchain,
        client_key=request.client_key or spare.client_key,
    )
    return Target(Address(address, request.port), (name,), pki, request.called_aet)


def _check_store_file(path: Path) -> None:
    try:
        meta = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises several types for "not DICOM"
        raise UsageError(f"--store {path} is not a DICOM file ({type(exc).__name__}): give a Part 10 file") from None
    syntax = str(getattr(getattr(meta, "file_meta", None), "TransferSyntaxUID", ""))
    if syntax not in _UNCOMPRESSED:
        raise UsageError(f"--store {path} uses transfer syntax {syntax or 'unknown'}: give an uncompressed file "
                         "(Implicit or Explicit VR Little Endian)")
    missing = [k for k in ("SOPClassUID", "SOPInstanceUID") if not str(getattr(meta, k, "") or "").strip()]
    if missing:
        raise UsageError(f"--store {path} has no {' or '.join(missing)}: give a DICOM object (a C-STORE names its "
                         "class and instance)")


def rest_url(url: str, resolver: Resolver) -> str:
    """Orthanc's REST API at the address the resolver gives its host, so urllib looks nothing up itself."""
    parts = urlsplit(url)
    address = resolver.address(parts.hostname or "", parts.port or 80)
    return parts._replace(netloc=host_port(address, parts.port or 80)).geturl()


def run_probe(requests: list[Request], out: Path, progress: Progress, resolver: Resolver = Resolver(),
              jobs: int = 1, deadlines: Deadlines | None = None) -> MatrixResult:
    """Scan each endpoint, run every probe cell once against it, and return it all as one matrix result,
    one environment per endpoint; ``jobs`` endpoints at a time (each one's cells in order), reported in the
    inventory's order. ``deadlines``: the run's and each cell's, as in a matrix run; an endpoint that fails in
    dicomtls itself (an exception) is that endpoint's error, its cells unknown."""
    started = time.monotonic()
    deadlines = deadlines or Deadlines()
    for request in requests:
        if request.store:
            _check_store_file(request.store)
            add_source(STORE_OPERATION, request.store)
    version = Dcmtk().version()
    planned = [(r, [Cell(SCENARIO, r.label, p, OBSERVE, None) for p in probes(r, version)]) for r in requests]
    built, missing = _runnable_clients([c.probe for _, cells in planned for c in cells])
    planned = [(r, [c for c in cells if c.probe.client not in missing]) for r, cells in planned]
    clients: dict[str, Client | None] = dict(built.by_name)
    versions = {**built.versions({"default"}), "openssl": ssl.OPENSSL_VERSION}
    result = MatrixResult(RunInfo(datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                  "none (existing endpoint)", versions, [SCENARIO]))
    # Hosts side by side scan in worker processes, as a matrix's environments do: in this process each scan's
    # handshakes would hold the GIL that the other hosts' pynetdicom cells need.
    in_flight = min(max(1, jobs), len(requests))
    scans = ScanPool(min(in_flight, os.cpu_count() or 1)) if in_flight > 1 else None
    progress.start(sum(len(cells) for _, cells in planned))
    def one(position: int, request: Request, cells: list[Cell]) -> tuple[EnvironmentInfo, list[CellResult]]:
        for name, why in missing.items():
            progress.environment(request.label, f"{why}: its cells are left out")
        info = EnvironmentInfo(request.label, request.label, [SCENARIO], [], host_port(request.host, request.port),
                               [n for n in (request.server_name,) if n], str(out / "pki"), {}, position=position)
        infos[position] = info
        try:
            found = _probe_one(request, cells, info, out, progress, clients, resolver,
                               scans.scan if scans is not None else scan, deadlines)
        except Exception as exc:  # noqa: BLE001 - one host's failure is that host's: the others go on
            error = recorded(exc, f"probing {request.label}", out)
            info.error = f"dicomtls failed probing it: {error}"
            found = [failed(cell, error) for cell in cells]
        for cr in found:
            progress.cell_done(cr)
        return info, found

    infos: dict[int, EnvironmentInfo] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="endpoint")
    stuck = False
    try:
        futures = [pool.submit(one, position, request, cells) for position, (request, cells) in enumerate(planned)]
        until = deadlines.at + STUCK_GRACE_S
        for position, future in enumerate(futures):
            try:
                info, found = future.result(timeout=max(0.0, until - time.monotonic()))
            except FutureTimeout:  # past the run's deadline and its grace: reported, not waited for
                stuck = True
                request, cells = planned[position]
                info = infos.get(position) or EnvironmentInfo(request.label, request.label, [SCENARIO], [], "", [],
                                                              str(out / "pki"), {}, position=position)
                info.error = f"still busy {STUCK_GRACE_S:g} s after the run's deadline: left unfinished"
                found = [not_run(cell, deadlines) for cell in cells]
            result.environments.append(info)
            result.cells += found
    finally:
        pool.shutdown(wait=not stuck, cancel_futures=True)
        if scans is not None:
            wait_through_interrupts(scans.close)
        progress.stop()
        result.run.wall_s = round(time.monotonic() - started, 2)
    return result


def _probe_one(request: Request, cells: list[Cell], info: EnvironmentInfo, out: Path, progress: Progress,
               clients: dict[str, Client | None], resolver: Resolver,
               scanner: Callable[[Endpoint], ScanResult], deadlines: Deadlines) -> list[CellResult]:
    """One endpoint's scan and cells; a name that does not resolve fails every cell for that reason."""
    try:
        address = resolver.address(request.host, request.port)
        rest = {SOLE_SITE: rest_url(request.orthanc_rest, resolver)} if request.orthanc_rest else {}
    except Unresolved as exc:
        info.error = f"{Reason.DNS_UNRESOLVED}: {exc}"
        summary, fix = EXPLANATIONS[Reason.DNS_UNRESOLVED]
        return [CellResult(c, "fail", Reason.DNS_UNRESOLVED, summary, fix, (str(exc),), "", "", 0.0) for c in cells]
    info.entry = host_port(address, request.port)
    unable = {c.probe.client for c in cells if not client_registry.client_class(c.probe.client).connects_to_ipv6_literal}
    if ":" in address and unable:
        for name in sorted(unable):
            progress.environment(request.label, f"{name} cannot connect to an IPv6 address: its cells are left out")
        cells = [c for c in cells if c.probe.client not in unable]
    target = _target(request, address, out / "pki")
    plan = EnvironmentPlan(SCENARIO, request.label, (), None, target.pki)
    logs = {f"{path.parent.name}/{path.name}": path for path in request.logs}
    env = RunningEnvironment(plan, target.address, rest, logs, out)
    env.connection_log = next((p for p in request.logs if p.name.endswith("access.log")), None)
    progress.environment(request.label, "scanning TLS")
    info.scan = scanner(request.endpoint(address))
    recount_connections(env)
    accepts = info.scan.accepts() if not info.scan.error else None
    progress.environment(request.label, "probing")
    found = [run_cell(cell, env, target, clients, out / "objects" / request.label, accepts, deadlines=deadlines)
             if not deadlines.passed() else not_run(cell, deadlines) for cell in cells]
    return corroborate(found, info.scan)
