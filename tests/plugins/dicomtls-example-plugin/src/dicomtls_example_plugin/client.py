"""pynetdicom speaking TLS 1.3 only, as a site that has turned off every older version does: a client dicomtls does
not ship, declared the way a built-in client declares itself (dicomtls.clients), with its own runner."""

from __future__ import annotations

import importlib.metadata
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomtls.clients import ClientKind

if TYPE_CHECKING:
    from dicomtls.probes import Client, ProbeOutcome, Target
    from dicomtls.probes.dcmtk import Dcmtk
    from dicomtls.scenario import Probe

TIMEOUT_S = 15


class PynetdicomTls13(ClientKind):
    name = "pynetdicom-tls13"
    display_name = "pynetdicom (TLS 1.3 only)"
    summary = "pynetdicom-tls13 (pynetdicom with TLS 1.3 as both minimum and maximum; a plugin)"
    operations = ("echo", "store-ct")
    transports = ("tls",)
    listing_order = 200

    @classmethod
    def version(cls, dcmtk: Dcmtk | None) -> str | None:
        return importlib.metadata.version("pynetdicom")

    @classmethod
    def build(cls, dcmtk: Dcmtk) -> Client:
        return Tls13Runner()


@dataclass(frozen=True)
class Tls13Runner:
    """One association per cell: a C-ECHO, or a C-STORE of a fresh CT object that the cell then looks up."""

    def run(self, target: Target, probe: Probe, workdir: Path) -> ProbeOutcome:
        from pynetdicom import AE
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        from dicomtls.dicomdata import make_object
        from dicomtls.probes import CALLING_AET, ProbeOutcome
        from dicomtls.profiles import python_offer

        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(target.pki.ca_cert))
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        identity = target.client_identity(probe.client_cert)
        if identity is not None:
            ctx.load_cert_chain(str(identity[0]), str(identity[1]))
        sni = target.sni(probe.sni)
        ctx.check_hostname = sni is not None
        ae = AE(ae_title=CALLING_AET)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
        ae.connection_timeout = 5
        sent = None
        if probe.operation == "echo":
            ae.add_requested_context(Verification)
        else:
            sent = make_object(probe.operation, workdir)
            ae.add_requested_context(sent.sop_class_uid, sent.transfer_syntax)
        command = (f"pynetdicom (TLS 1.3 only) associate {target.address} ae_title={target.called_aet} "
                   f"sni={sni or '-'} cert={probe.client_cert} {probe.operation}")
        stage, lines, served = "connect", [], None
        try:
            assoc = ae.associate(target.address.host, target.address.port, ae_title=target.called_aet,
                                 tls_args=(ctx, sni))  # type: ignore[arg-type]  # None: no SNI
            if assoc.is_established:
                stage = "dimse"
                served = _served_certificate(assoc)
                try:
                    status = assoc.send_c_echo() if sent is None else assoc.send_c_store(sent.path)
                finally:
                    assoc.release()
                code = getattr(status, "Status", None)
                if code == 0x0000:
                    stage = "done"
                else:
                    lines.append(f"DIMSE status {code:#06x}" if code is not None else "no DIMSE response")
            elif assoc.is_rejected:
                stage, lines = "associate", ["Association Rejected"]
            else:
                lines.append("Association Aborted" if assoc.is_aborted else "Association request failed")
        except (OSError, ssl.SSLError) as exc:
            lines.append(f"{type(exc).__name__}: {exc}")
        finally:
            ae.shutdown()
        return ProbeOutcome(stage == "done", stage, tuple(lines), command, sent, python_offer(ctx), served)


def _served_certificate(assoc: Any) -> str | None:
    """Who the certificate the server presented names, for the report's certificate column."""
    from dicomtls.probes import common_name

    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
    return common_name(der) if der else None
