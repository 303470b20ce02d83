"""An edge Orthanc as the client: one Orthanc of this host per cell, the environment's entry its only modality
(``UseDicomTls``), driven through its REST API as a hospital's forwarding would be.

The edge runs on this host on both backends and reaches the entry where the host reaches it (a published port on
the Docker backend): a hospital's Orthanc sits outside the cloud's network and reaches the ingress at its public
address. It starts for the cell with the cell's client certificate (Orthanc has only global DICOM TLS settings) and
is killed before the cell is judged, on every path (its store is thrown away); a cell's deadline kills it too.

What the cell reads: the HTTP status and Orthanc's JSON error (``OrthancError``, ``Details``) of
``POST /modalities/{id}/echo`` or ``/store``, and the edge's own warning and error lines (dcmtk's TLS words).
"""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomtls.backends.local import HOST, free_port, kill_processes, release_port, start_process
from dicomtls.clients.orthanc_edge import OrthancEdge as Kind
from dicomtls.clients.orthanc_edge import executable
from dicomtls.components import Address
from dicomtls.deadlines import bounded, stopped_at_deadline
from dicomtls.dicomdata import TestObject, make_object
from dicomtls.errors import UsageError
from dicomtls.operations import operation
from dicomtls.probes import ProbeOutcome, Target
from dicomtls.scenario import Probe

MODALITY = "ingress"
"""The entry's name among the edge's DicomModalities (the ``{id}`` of /modalities/{id}/…)."""
SCU_TIMEOUT_S = 15
"""DicomScuTimeout and the REST calls' ``Timeout``: what the edge waits for the far side."""
REST_TIMEOUT_S = SCU_TIMEOUT_S * 3


def edge_config(target: Target, probe: Probe, workdir: Path, http_port: int) -> dict[str, Any]:
    """The edge's configuration: no DICOM server of its own, REST on loopback, the cell's certificate as its
    global DICOM TLS identity, calling as the cell's calling AE title, the entry as a modality called by the AE
    title the other clients call."""
    identity = target.client_identity(probe.client_cert)
    address = target.address
    tls = {} if identity is None else {  # none: plain DICOM only (ClientKind.group_problem)
        "DicomTlsCertificate": str(identity[0]),
        "DicomTlsPrivateKey": str(identity[1]),
        "DicomTlsTrustedCertificates": str(target.pki.ca_cert),
        "DicomTlsRemoteCertificateRequired": True,
    }
    return {
        "Name": "dicomtls-edge",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "storage"),
        "SyncStorageArea": False,
        "Plugins": [],
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "DicomAet": probe.calling_aet,
        "DicomScuTimeout": SCU_TIMEOUT_S,
        "SaveJobs": False,
        "DicomModalities": {MODALITY: {"AET": target.called(probe), "Host": address.host, "Port": address.port,
                                       "UseDicomTls": probe.transport == "tls"}},
        "DicomTlsEnabled": False,  # its own SCP's TLS: it has none (the certificates below are its SCU's too)
        **tls,
    }


@dataclass(frozen=True)
class Answer:
    """One REST call's answer: its HTTP status (0: no answer) and body."""

    status: int
    body: str

    def error(self) -> dict[str, Any]:
        """Orthanc's JSON error, if the body is one."""
        try:
            found = json.loads(self.body)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def words(self) -> tuple[str, ...]:
        """What the answer says, as the cell's evidence: the status and Orthanc's error, else the body."""
        if self.status == 0:
            return (self.body,)
        error = self.error()
        if "OrthancError" in error:
            details = f": {error['Details']}" if error.get("Details") else ""
            return (f"HTTP {self.status} {error['OrthancError']}{details}",)
        return (f"HTTP {self.status} {self.body.strip()[:300]}",)


def _call(url: str, data: bytes, timeout_s: float = REST_TIMEOUT_S) -> Answer:
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=bounded(timeout_s)) as resp:  # noqa: S310 - loopback only
            return Answer(resp.status, resp.read().decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read().decode(errors="replace"))
    except (urllib.error.URLError, OSError) as exc:
        return Answer(0, f"the edge's REST API did not answer: {exc}")


STARTED = "Orthanc has started"
"""The edge's log line after which every line is the cell's (before it: its start-up)."""


def cell_lines(log: str) -> tuple[str, ...]:
    """The edge's log lines once it started: what it said while the cell ran."""
    _, started, after = log.partition(STARTED)
    return tuple(line.strip() for line in (after if started else log).splitlines()[1:] if line.strip())


def edge_lines(log: str) -> tuple[str, ...]:
    """The edge's warnings and errors while the cell ran (glog's W and E lines), prefixed so the evidence names
    who said them; Orthanc's own shutdown lines left out."""
    return tuple(f"edge: {line}" for line in cell_lines(log)
                 if line[:1] in ("W", "E") and "Orthanc is stopping" not in line)


def stage_of(ok: bool, answer: Answer, log: str) -> str:
    """How far the edge got: done; associate (the server rejected the association); connect (Orthanc's error is
    about "connecting": TCP, TLS or no answer to the A-ASSOCIATE-RQ); dimse (an error after the association was up,
    such as a C-STORE status)."""
    if ok:
        return "done"
    said = " ".join((*answer.words(), *cell_lines(log)))
    if "Association Rejected" in said:
        return "associate"
    if "DicomAssociation - " in said and "connecting to AET" not in said:
        return "dimse"
    return "connect"


@dataclass(frozen=True)
class EdgeOrthanc:
    """This host's Orthanc, started for each cell."""

    binary: str

    @classmethod
    def here(cls) -> EdgeOrthanc:
        found = executable()
        if found is None:
            raise UsageError(f"Orthanc not found (client {Kind.name}): apt-get install orthanc")
        return cls(found)

    def run(self, target: Target, probe: Probe, workdir: Path) -> ProbeOutcome:
        workdir.mkdir(parents=True, exist_ok=True)
        edgedir = Path(tempfile.mkdtemp(prefix="edge-", dir=workdir)).resolve()
        port = free_port()
        conf = edgedir / "orthanc.json"
        conf.write_text(json.dumps(edge_config(target, probe, edgedir, port), indent=2))
        rest = f"http://{HOST}:{port}"
        sends = operation(probe.operation).sends
        sent = make_object(sends, workdir.resolve()) if sends is not None else None
        try:
            process = start_process(Kind.name, [self.binary, "--verbose", str(conf)], edgedir,
                                    (Address(HOST, port),))
        except BaseException:  # the edge not starting is dicomtls's failure, never the endpoint's: the cell's error
            release_port(port)
            raise
        try:
            with stopped_at_deadline(lambda: kill_processes([process])):
                ok, answer = self._operate(rest, probe, sent)
        finally:
            # Killed, not stopped: its store is thrown away, and Orthanc takes 2 s to shut down on SIGTERM.
            kill_processes([process])
            release_port(port)
            shutil.rmtree(edgedir / "storage", ignore_errors=True)
        log = (edgedir / "output.log").read_text(errors="replace")
        (edgedir / "rest-answer.txt").write_text(f"{answer.status}\n{answer.body}")  # beside its log, for a person
        offered = Kind.offered(probe.profile) if probe.transport == "tls" else None
        return ProbeOutcome(ok, stage_of(ok, answer, log), answer.words() + edge_lines(log),
                            self._command(conf, rest, probe), sent, offered)

    @staticmethod
    def _operate(rest: str, probe: Probe, sent: TestObject | None) -> tuple[bool, Answer]:
        modality = f"{rest}/modalities/{MODALITY}"
        if sent is None:
            answer = _call(f"{modality}/echo", json.dumps({"Timeout": SCU_TIMEOUT_S}).encode())
            return answer.status == 200, answer
        uploaded = _call(f"{rest}/instances", sent.path.read_bytes())
        if uploaded.status != 200:
            return False, uploaded
        instance = json.loads(uploaded.body)["ID"]
        body = {"Resources": [instance], "Synchronous": True, "Timeout": SCU_TIMEOUT_S}
        answer = _call(f"{modality}/store", json.dumps(body).encode())
        if answer.status != 200:
            return False, answer
        report = json.loads(answer.body)
        return report.get("FailedInstancesCount", 1) == 0 and report.get("InstancesCount", 0) == 1, answer

    @staticmethod
    def _command(conf: Path, rest: str, probe: Probe) -> str:
        """What to type to do the same by hand: the edge with this config, then the REST call."""
        if operation(probe.operation).sends is None:
            call = f"curl -X POST {rest}/modalities/{MODALITY}/echo -d '{{}}'"
        else:
            call = (f"curl -X POST {rest}/instances --data-binary @OBJECT.dcm; "
                    f"curl -X POST {rest}/modalities/{MODALITY}/store -d '{{\"Resources\": [ID], \"Synchronous\": true}}'")
        return f"Orthanc {shlex.quote(str(conf))} & {call}"
