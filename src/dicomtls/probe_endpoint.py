"""Probe an endpoint that is already running (yours, or one `invoke up` left), with no environment started.

The same clients, cells, diagnoses and report as a matrix run, against a
target named on the command line: each client with and without SNI, with no,
your, and an untrusted client certificate, and a few TLS profiles (dcm4che's
``--tls-aes``, TLS 1.0 only, dcmtk's BCP 195) — plus a scan of the endpoint.
Nothing is expected, so every cell is reported as observed. Your CA's key is
never needed; the untrusted certificate comes from a throwaway CA made here,
and an expired certificate your CA signed cannot be made, so there is no such
cell. C-STOREs run only with ``--store FILE``, and count as verified only when
``--orthanc-rest URL`` lets dicomtls look the object up.
"""

from __future__ import annotations

import dataclasses
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pydicom

from dicomtls.backends import EnvironmentPlan, RunningEnvironment
from dicomtls.components import Address
from dicomtls.dicomdata import add_source
from dicomtls.errors import UsageError
from dicomtls.matrix import (
    OBSERVE, EnvironmentInfo, MatrixResult, Progress, RunInfo, recount_connections, run_cell,
)
from dicomtls.pki import PkiSpec, ensure_pki
from dicomtls.probes import Client, Target
from dicomtls.probes.dcmtk import Dcmtk
from dicomtls.probes.pynetdicom import Pynetdicom
from dicomtls.scan import Endpoint, scan
from dicomtls.scenario import Cell, Probe

STORE_OPERATION = "store-file"
DCMTK_PROFILES = ("bcp195", "aes")
PYNETDICOM_PROFILES = ("dcm4che-tls-aes", "tls1.0-only", "bcp195-rfc8996")
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


@dataclass(frozen=True)
class Request:
    endpoint: Endpoint
    called_aet: str = "ORTHANC"
    store: Path | None = None
    orthanc_rest: str | None = None
    logs: tuple[Path, ...] = ()
    """The endpoint's own logs: what they gain during a cell is that cell's evidence, as in a matrix run. A file
    named *access.log is read as one line per connection (Envoy's, as `invoke up` configures it)."""


def probes(request: Request) -> list[Probe]:
    """The client × SNI × certificate × profile cells worth running against this endpoint."""
    e = request.endpoint
    certs = ["none", *(["valid"] if e.client_cert else []), "untrusted"]
    best_cert = "valid" if e.client_cert else "none"
    snis = ["none", *(["right", "wrong"] if e.sni else [])]
    best_sni = "right" if e.sni else "none"
    operations = ["echo", *([STORE_OPERATION] if request.store else [])]
    found = [Probe("dcmtk", "none", cert, op) for cert in certs for op in operations]
    found.append(Probe("dcmtk", "none", "none", "echo", "plain"))
    found += [Probe("pynetdicom", sni, cert, op) for sni in snis for cert in certs for op in operations]
    found += [Probe("dcmtk", "none", best_cert, "echo", profile=p) for p in DCMTK_PROFILES]
    found += [Probe("pynetdicom", best_sni, best_cert, "echo", profile=p) for p in PYNETDICOM_PROFILES]
    return found


def _target(request: Request, pki_root: Path) -> Target:
    """Your CA and client certificate where you gave them; the untrusted one from a throwaway PKI."""
    e = request.endpoint
    spare = ensure_pki(PkiSpec(server_names=(e.sni or "probe.dicomtls.invalid",)), pki_root / "probe")
    ca = e.ca or spare.ca_cert  # without --ca the clients cannot trust the server: the cells will say so
    pki = dataclasses.replace(
        spare, ca_cert=ca, ca_bundle=ca,
        client_cert=e.client_cert or spare.client_cert, client_fullchain=e.client_cert or spare.client_fullchain,
        client_key=e.client_key or spare.client_key,
    )
    return Target(Address(e.host, e.port), (e.sni or "probe.dicomtls.invalid",), pki, request.called_aet)


def _check_store_file(path: Path) -> None:
    try:
        meta = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises several types for "not DICOM"
        raise UsageError(f"--store {path} is not a DICOM file ({type(exc).__name__}): give a Part 10 file") from None
    syntax = str(getattr(getattr(meta, "file_meta", None), "TransferSyntaxUID", ""))
    if syntax not in _UNCOMPRESSED:
        raise UsageError(f"--store {path} uses transfer syntax {syntax or 'unknown'}: give an uncompressed file "
                         "(Implicit or Explicit VR Little Endian)")


def run_probe(request: Request, out: Path, progress: Progress) -> MatrixResult:
    """Scan the endpoint, run every probe cell once, and return it all as a matrix result."""
    started = time.monotonic()
    e = request.endpoint
    if request.store:
        _check_store_file(request.store)
        add_source(STORE_OPERATION, request.store)
    target = _target(request, out / "pki")
    cells = [Cell("probe", str(e), p, OBSERVE, None) for p in probes(request)]
    dcmtk = Dcmtk()
    dcmtk.check({(c.probe.client_version, c.probe.profile) for c in cells if c.probe.client == "dcmtk"})
    plan = EnvironmentPlan("probe", str(e), (), None, target.pki)
    logs = {f"{path.parent.name}/{path.name}": path for path in request.logs}
    rest = {"orthanc": request.orthanc_rest} if request.orthanc_rest else {}
    env = RunningEnvironment(plan, target.address, rest, logs, out)
    env.connection_log = next((p for p in request.logs if p.name.endswith("access.log")), None)
    versions = {"dcmtk": dcmtk.version(), "pynetdicom": Pynetdicom().version(), "openssl": ssl.OPENSSL_VERSION}
    result = MatrixResult(RunInfo(datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                  "none (existing endpoint)", versions, ["probe"]))
    info = EnvironmentInfo("probe", str(e), ["probe"], [], str(e), list(target.server_names), str(out / "pki"), {})
    result.environments.append(info)
    progress.start(len(cells))
    try:
        progress.environment(str(e), "scanning TLS")
        info.scan = scan(e)
        recount_connections(env)
        accepts = info.scan.accepts() if not info.scan.error else None
        progress.environment(str(e), "probing")
        clients: dict[str, Client | None] = {"dcmtk": dcmtk, "pynetdicom": Pynetdicom()}
        for cell in cells:
            cr = run_cell(cell, env, target, clients, out / "objects", accepts)
            result.cells.append(cr)
            progress.cell_done(cr)
    finally:
        progress.stop()
        result.run.wall_s = round(time.monotonic() - started, 2)
    return result
