"""pynetdicom in-process: the one DICOM client here that can send SNI (and any SNI we like)."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pynetdicom
from pynetdicom import AE, evt
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from dicomtls.association import Rejection
from dicomtls.deadlines import stopped_at_deadline
from dicomtls.dicomdata import TestObject, make_object
from dicomtls.operations import Operation, operation
from dicomtls.probes.query_retrieve import FIND_MODEL, MOVE_MODEL, find_study, move_study
from dicomtls.probes import CALLING_AET, ProbeOutcome, Target, common_name
from dicomtls.clients.pynetdicom import python_context
from dicomtls.profiles import python_offer
from dicomtls.scenario import Probe

TIMEOUT_S = 15


class _Capture(logging.Handler):
    """pynetdicom's log lines of one association, while other environments' associations log side by side.

    pynetdicom logs from the caller's thread and from the association's own threads, all to one logger, so
    every capture hears every line with the thread that said it; ``lines`` keeps those of its threads, by name
    (Python numbers unnamed threads and never reuses a number, unlike thread ids)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[str, str]] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{text} [{type(record.exc_info[1]).__name__}: {record.exc_info[1]}]"
        with self._guard:
            self.records.append((record.threadName or "", text))

    def lines(self, threads: set[str]) -> list[str]:
        with self._guard:
            return [text for thread, text in self.records if thread in threads]

    __hash__ = object.__hash__


_LOGGER = logging.getLogger("pynetdicom")
_LOGGER.setLevel(logging.INFO)  # once: saving and restoring it per association races between environments


def tls_context(target: Target, probe: Probe) -> tuple[ssl.SSLContext, str | None]:
    """The client TLS context and the SNI to send; a sent name is also the name the certificate must carry."""
    ctx = python_context(probe.profile, cafile=str(target.pki.ca_cert))
    identity = target.client_identity(probe.client_cert)
    if identity is not None:
        chain, key = identity
        ctx.load_cert_chain(str(chain), str(key))
    server_hostname = target.sni(probe.sni)
    ctx.check_hostname = server_hostname is not None and probe.server_cert_check == "verify"
    if probe.server_cert_check == "ignore":
        ctx.verify_mode = ssl.CERT_NONE
    return ctx, server_hostname


class _StoppableAE(AE):
    """An AE whose connections another thread can cut. At a cell's deadline, shutting its sockets down ends a TLS
    handshake, an ACSE or a DIMSE wait at once; pynetdicom's own abort cannot, for an association still being
    negotiated is no running thread yet, and its socket is reached only here, where pynetdicom creates it."""

    def __init__(self, ae_title: str) -> None:
        super().__init__(ae_title=ae_title)
        self._sockets: list[Any] = []
        self._guard = threading.Lock()

    def _create_socket(self, assoc: Any, address: Any, tls_args: Any) -> Any:
        sock = super()._create_socket(assoc, address, tls_args)
        with self._guard:
            self._sockets.append(sock)
        return sock

    def cut(self) -> None:
        with self._guard:
            sockets = [s.socket for s in self._sockets if s.socket is not None]
        for raw in sockets:
            try:
                # socket.socket's own shutdown: an SSLSocket's would drop its TLS state under the thread using it.
                socket.socket.shutdown(raw, socket.SHUT_RDWR)
            except OSError:
                pass  # not connected yet, or closed already


@dataclass(frozen=True)
class Pynetdicom:
    def version(self) -> str:
        return pynetdicom.__version__

    def run(self, target: Target, probe: Probe, workdir: Path,
            while_sending: Callable[[], None] | None = None) -> ProbeOutcome:
        """``while_sending``: called once, on the association's own thread, right after the first fragment of a
        C-STORE's dataset went out: the rest waits until it returns, so what it does happens mid-transfer."""
        ae = _StoppableAE(probe.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
        ae.connection_timeout = 5
        sent = None
        op = operation(probe.operation)
        if op.dimse == "C-ECHO":
            ae.add_requested_context(Verification)
        if op.sends is not None:
            sent = make_object(op.sends, workdir, own_study=op.own_study)
            ae.add_requested_context(sent.sop_class_uid, sent.transfer_syntax)
        if op.dimse in QUERY_MODELS:
            ae.add_requested_context(QUERY_MODELS[op.dimse])
        called = target.called(probe)
        command = (
            f"pynetdicom associate {target.address} ae_title={called} "
            f"sni={target.sni(probe.sni) if probe.transport == 'tls' else '-'} cert={probe.client_cert} "
            f"{probe.operation}"
            + (f" calling={probe.calling_aet}" if probe.calling_aet != CALLING_AET else "")
            + (f" server-cert={probe.server_cert_check}" if probe.server_cert_check != "verify" else "")
            + (f" profile={probe.profile}" if probe.profile != "default" else "")
        )
        try:
            tls_args = tls_context(target, probe) if probe.transport == "tls" else None
        except ssl.SSLError as exc:
            # The client's own TLS setup refused its profile (no suite left to offer) or its own certificate and
            # key (Python's ssl checks that they match as it loads them): nothing was sent, no proxy heard of it.
            return ProbeOutcome(False, "setup", (f"ssl.SSLError in the client's own setup: {exc}",), command, sent)
        capture = _Capture()
        _LOGGER.addHandler(capture)
        stage, ok, peer, associated, rejection = "connect", False, None, None, None
        threads = {threading.current_thread().name}
        notes: list[str] = []
        try:
            with stopped_at_deadline(ae.cut):  # the cell's deadline cuts its connection
                # pynetdicom's hint says str, but server_hostname=None is how Python's ssl sends no SNI.
                began = time.monotonic()
                assoc = ae.associate(target.address.host, target.address.port, ae_title=called,
                                     tls_args=cast("tuple[ssl.SSLContext, str] | None", tls_args),
                                     evt_handlers=_on_first_dataset_fragment(while_sending))
                threads |= {assoc.name, assoc.dul.name}
                if assoc.is_established:
                    stage, associated = "dimse", round(time.monotonic() - began, 4)
                    peer = _peer_certificate(assoc)
                    try:
                        code = _operate(assoc, op, sent, target, notes)
                    finally:
                        assoc.release()
                    if code == 0x0000:
                        ok, stage = True, "done"
                    elif code is not None or not notes:
                        notes.append(
                            f"DIMSE status {code:#06x}" if code is not None else "no DIMSE response (connection lost)"
                        )
                elif assoc.is_rejected:
                    stage = "associate"
                    notes.append("Association Rejected")
                    rejection = _rejection(assoc)
                elif assoc.is_aborted:
                    notes.append("Association Aborted")
        finally:
            _LOGGER.removeHandler(capture)
            ae.shutdown()
        lines = tuple(r for r in [*capture.lines(threads), *notes] if not ok or "Accepted" in r)
        return ProbeOutcome(ok, stage, lines, command, sent, python_offer(tls_args[0]) if tls_args else None, peer,
                            associated, rejection, confirmed=notes[-1] if ok and notes else "")


QUERY_MODELS = {"C-FIND": FIND_MODEL, "C-MOVE": MOVE_MODEL}


def _operate(assoc: Any, op: type[Operation], sent: TestObject | None, target: Target, notes: list[str]) -> int | None:
    """The operation's DIMSE exchanges on an established association: the final status (None: no answer, or an
    answer that does not match what was sent, said in ``notes``). A query stores its object first."""
    if sent is None:
        return getattr(assoc.send_c_echo(), "Status", None)
    code = getattr(assoc.send_c_store(sent.path), "Status", None)
    if code != 0x0000 or op.dimse == "C-STORE":
        return code
    if op.dimse == "C-FIND":
        return find_study(assoc, sent, notes)
    if target.move_destinations is None:
        notes.append("no way to tell the server where the move destination listens (no REST API, or a backend "
                     "whose servers cannot reach this machine)")
        return None
    assert op.destination is not None
    return move_study(assoc, sent, target.move_destinations, op.destination, notes)


def _on_first_dataset_fragment(call: Callable[[], None] | None) -> list[Any]:
    """pynetdicom event handlers that call ``call`` once, after the first P-DATA-TF carrying dataset bytes (the
    message control header's bit 0 is 0: data, not a command) was sent."""
    if call is None:
        return []
    fired = threading.Event()

    def sent(event: Any) -> None:
        pdu = event.pdu
        if fired.is_set() or not isinstance(pdu, P_DATA_TF):
            return
        if any(item.data and not item.data[0] & 0x01 for item in pdu.presentation_data_value_items):
            fired.set()
            call()

    return [(evt.EVT_PDU_SENT, sent)]


def _rejection(assoc: Any) -> Rejection | None:
    """The A-ASSOCIATE-RJ's fields, from the primitive pynetdicom made of it (``assoc.acceptor.primitive``)."""
    primitive = getattr(assoc.acceptor, "primitive", None)
    result, source, reason = (getattr(primitive, name, None) for name in ("result", "result_source", "diagnostic"))
    if not (isinstance(result, int) and isinstance(source, int) and isinstance(reason, int)):
        return None
    return Rejection(result, source, reason)


def _peer_certificate(assoc: Any) -> str | None:
    """The common name of the certificate the server presented (the binary form is there even when unverified)."""
    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    if not isinstance(sock, ssl.SSLSocket):
        return None
    der = sock.getpeercert(binary_form=True)
    return common_name(der) if der else None


def echo_through(target: Target, sni: str, called_aet: str | None = None, timeout_s: float = 5.0) -> tuple[bool, str]:
    """One C-ECHO with the good client identity and SNI, hostname unchecked: is the path to that name up?
    ``called_aet``: the AE title of the server behind that name (default: the target's). A server that rejects the
    association (it knows only its own modalities' calling AE titles) answered through the whole path: up too."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(target.pki.ca_cert))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(target.pki.client_fullchain), str(target.pki.client_key))
    ae = AE(ae_title=CALLING_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    ae.add_requested_context(Verification)
    try:
        assoc = ae.associate(target.address.host, target.address.port, ae_title=called_aet or target.called_aet,
                             tls_args=(ctx, sni))
        if assoc.is_rejected:  # a server that knows only its own modalities: it answered, the path is up
            rejected = _rejection(assoc)
            return True, f"association rejected ({rejected.describe() if rejected else 'unread'}): the server answered"
        if not assoc.is_established:
            return False, "association not established"
        status = assoc.send_c_echo()
        assoc.release()
        return getattr(status, "Status", None) == 0x0000, f"C-ECHO status {getattr(status, 'Status', None)}"
    finally:
        ae.shutdown()
