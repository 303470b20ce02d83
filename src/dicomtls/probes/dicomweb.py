"""DICOMweb over HTTPS through the proxy's web route (urllib3): QIDO-RS for echo; for a store, that QIDO-RS, then
STOW-RS, then QIDO-RS finds the object and WADO-RS gives it back intact.

The TLS side is the run's PKI, as every DICOM client's: the CA, the client identity of the cell, and the SNI of its
axis. Without SNI it connects to the route's address and sends no server_name (Python's ssl never sends an IP
address as one), as a client given an address does.
"""

from __future__ import annotations

import json
import shlex
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path

import pydicom
import urllib3
from urllib3.exceptions import HTTPError

from dicomtls.clients.pynetdicom import python_context
from dicomtls.dicomdata import TestObject, dataset_digest, make_object
from dicomtls.deadlines import stopped_at_deadline
from dicomtls.operations import operation
from dicomtls.orthanc_rest import check_other_bytes
from dicomtls.components import Address
from dicomtls.probes import ProbeOutcome, Target, common_name
from dicomtls.profiles import python_offer
from dicomtls.scenario import Probe

TIMEOUT_S = 15
DICOMWEB = "dicom-web"
DICOM = 'multipart/related; type="application/dicom"'
NO_ROUTE = "the environment has no HTTPS route: give its proxy web: true, and its Orthanc dicomweb_plugin: true"


class Refused(Exception):
    """A request answered with a status other than the one the operation needs."""

    def __init__(self, step: str, status: int, words: str) -> None:
        super().__init__(f"{step}: HTTP {status} {words}".strip())
        self.status = status


class NotIntact(Exception):
    """WADO-RS gave back something other than the object stored: a store not verified, whatever the status."""


def tls_context(target: Target, probe: Probe) -> tuple[ssl.SSLContext, str | None]:
    """The client TLS context and the SNI to send; a sent name is also the name the certificate must carry."""
    ctx = python_context(probe.profile, cafile=str(target.pki.ca_cert))
    identity = target.client_identity(probe.client_cert)
    if identity is not None:
        ctx.load_cert_chain(str(identity[0]), str(identity[1]))
    server_hostname = target.sni(probe.sni)
    ctx.check_hostname = server_hostname is not None and probe.server_cert_check == "verify"
    if probe.server_cert_check == "ignore":
        ctx.verify_mode = ssl.CERT_NONE
    return ctx, server_hostname


@dataclass(frozen=True)
class Dicomweb:
    def run(self, target: Target, probe: Probe, workdir: Path) -> ProbeOutcome:
        where = target.web
        root = f"{target.web_path}{DICOMWEB}"
        if where is None:
            return ProbeOutcome(False, "connect", (NO_ROUTE,), f"dicomweb {probe.operation}: {NO_ROUTE}")
        try:
            ctx, sni = tls_context(target, probe)
        except ssl.SSLError as exc:  # its own profile or key pair refused as it loaded them: nothing was sent
            return ProbeOutcome(False, "setup", (f"ssl.SSLError in the client's own setup: {exc}",),
                                f"dicomweb {probe.operation}")
        command = curl_command(target, probe, where, sni, root)
        pool = urllib3.HTTPSConnectionPool(
            where.host, where.port, ssl_context=ctx, server_hostname=sni,
            assert_hostname=sni if ctx.check_hostname else False, retries=False,
            timeout=urllib3.Timeout(connect=5, read=TIMEOUT_S), maxsize=1)
        # The name a browser would ask for: the SNI's, else the address (a proxy routing on Host sees the same).
        host = {"Host": sni or str(where)}
        sends = operation(probe.operation).sends
        sent = make_object(sends, workdir) if sends is not None else None
        lines: list[str] = []
        stage, ok, status, peer = "connect", False, None, None
        try:
            with stopped_at_deadline(pool.close):
                # First a small QIDO-RS, for a store too: a server that refuses the client after a TLS 1.3
                # handshake says so in an alert the client then reads, where a large STOW-RS body being written
                # would meet only the closed connection.
                _get(pool, host, f"{root}/studies?limit=1", "QIDO-RS", "application/dicom+json")
                lines.append("QIDO-RS: HTTP 200")
                if sent is not None:
                    _exchange(pool, host, root, sent, lines)
                ok, stage = True, "done"
        except Refused as exc:
            stage, status = "http", exc.status
            lines.append(str(exc))
        except NotIntact as exc:
            stage = "verify"
            lines.append(str(exc))
        except HTTPError as exc:
            lines.append(_words(exc))
        except ValueError as exc:  # a 200 whose body is no DICOM JSON: the route leads somewhere else
            stage, status = "http", 200
            lines.append(f"HTTP 200 answered with no DICOM JSON ({exc}): the route leads to another server")
        finally:
            peer = _peer_certificate(pool)
            pool.close()
        return ProbeOutcome(ok, stage, tuple(lines), command, sent, python_offer(ctx), peer, http_status=status)


def curl_command(target: Target, probe: Probe, where: Address, sni: str | None, root: str) -> str:
    """The cell's first request as curl makes it, to repeat by hand (the seed write-up's check): the same CA,
    client identity and SNI (--resolve; by address, curl sends none); what a store goes on to do is said after."""
    parts = ["curl", "--fail", "--cacert", str(target.pki.ca_cert)]
    if (identity := target.client_identity(probe.client_cert)) is not None:
        parts += ["--cert", str(identity[0]), "--key", str(identity[1])]
    if probe.server_cert_check == "ignore":
        parts.append("--insecure")
    host = sni or str(where)
    if sni is not None:
        parts += ["--resolve", f"{sni}:{where.port}:{where.host}"]
        host = f"{sni}:{where.port}"
    parts.append(f"https://{host}{root}/studies?limit=1")
    notes = ["this cell checked the chain, not the name, which curl checks too" if sni is None
             and probe.server_cert_check == "verify" else "",
             f"profile {probe.profile}" if probe.profile != "default" else "",
             f"server certificate {probe.server_cert_check}" if probe.server_cert_check not in ("verify", "ignore")
             else "", f"{probe.operation}: then STOW-RS, QIDO-RS and WADO-RS of its object" if operation(probe.operation).sends
             else ""]
    said = "; ".join(n for n in notes if n)
    return shlex.join(parts) + (f"  # {said}" if said else "")


def _exchange(pool: urllib3.HTTPSConnectionPool, host: dict[str, str], root: str, sent: TestObject,
              lines: list[str]) -> None:
    """STOW-RS the object, QIDO-RS for it, WADO-RS it back and compare its dataset bytes with what was sent."""
    meta = pydicom.dcmread(sent.path, stop_before_pixels=True)
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + sent.path.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode())
    answer = pool.request("POST", f"{root}/studies", body=body, headers={
        **host, "Content-Type": f'{DICOM}; boundary="{boundary}"', "Accept": "application/dicom+json"})
    if answer.status != 200:
        raise Refused("STOW-RS", answer.status, _said(answer))
    failed = json.loads(answer.data or b"{}").get("00081198", {}).get("Value")  # FailedSOPSequence's items
    if failed:
        raise Refused("STOW-RS", answer.status, f"FailedSOPSequence {json.dumps(failed)}")
    lines.append(f"STOW-RS: HTTP 200, {sent.size} bytes")
    found = json.loads(_get(pool, host, f"{root}/instances?SOPInstanceUID={sent.sop_instance_uid}", "QIDO-RS",
                            "application/dicom+json"))
    if len(found) != 1:
        raise Refused("QIDO-RS", 200, f"found {len(found)} instances with SOPInstanceUID {sent.sop_instance_uid}")
    lines.append("QIDO-RS: HTTP 200, 1 instance")
    path = (f"{root}/studies/{meta.StudyInstanceUID}/series/{meta.SeriesInstanceUID}"
            f"/instances/{sent.sop_instance_uid}")
    parts = _parts(_get(pool, host, path, "WADO-RS", f"{DICOM}; transfer-syntax=*", whole=True))
    if len(parts) != 1:
        raise NotIntact(f"WADO-RS: HTTP 200 gave back {len(parts)} parts, not the one instance sent")
    if dataset_digest(parts[0]) == sent.digest:
        lines.append(f"WADO-RS: HTTP 200, the dataset sent (sha256 {sent.digest[:16]}…)")
        return
    # As stored: an Orthanc told to transcode (IngestTranscoding) gives back its own encoding, compared by content.
    check = check_other_bytes("given back by WADO-RS", parts[0], sent)
    if not check.ok:
        raise NotIntact(f"WADO-RS: HTTP 200, {check.detail}")
    lines.append(f"WADO-RS: HTTP 200, {check.detail}")


def _get(pool: urllib3.HTTPSConnectionPool, host: dict[str, str], path: str, step: str, accept: str,
         whole: bool = False) -> bytes:
    answer = pool.request("GET", path, headers={**host, "Accept": accept})
    if answer.status != 200:
        raise Refused(step, answer.status, _said(answer))
    return (answer.headers.get("Content-Type", "").encode() + b"\n" + answer.data) if whole else answer.data


def _parts(typed: bytes) -> list[bytes]:
    """The bodies of a multipart/related answer (its Content-Type first, then a newline, then the body)."""
    content_type, _, body = typed.partition(b"\n")
    boundary = next((p.split(b"=", 1)[1].strip(b' "') for p in content_type.split(b";")
                     if p.strip().lower().startswith(b"boundary=")), None)
    if boundary is None:
        return []
    found = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        _, _, content = chunk.partition(b"\r\n\r\n")
        found.append(content.removesuffix(b"\r\n"))
    return found


def _said(answer: urllib3.BaseHTTPResponse) -> str:
    """The answer's reason and first words (nginx's 400 names the certificate problem there), and who said it."""
    server = answer.headers.get("Server", "")
    text = " ".join(answer.data[:300].decode(errors="replace").split())
    return f"{answer.reason or ''} ({server}): {text}" if server else f"{answer.reason or ''}: {text}"


def _words(exc: Exception) -> str:
    """The innermost cause's words: urllib3 wraps the ssl or socket error, which names the alert or the refusal."""
    while exc.__context__ is not None and isinstance(exc.__context__, Exception):
        exc = exc.__context__
    return f"{type(exc).__name__}: {exc}"


def _peer_certificate(pool: urllib3.HTTPSConnectionPool) -> str | None:
    """The common name of the certificate the route presented, if a connection got that far."""
    conn = next(iter(getattr(pool.pool, "queue", [])), None) if pool.pool is not None else None
    sock = getattr(conn, "sock", None)
    if not isinstance(sock, ssl.SSLSocket):
        return None
    der = sock.getpeercert(binary_form=True)
    return common_name(der) if der else None
