"""Probes: real DICOM clients run against one environment, each returning a structured outcome.

A probe knows nothing about expectations or diagnosis: it reports how far it
got and what the client said, in the client's own words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID

from dicomtls.association import DEFAULT_CALLING_AET, Rejection
from dicomtls.backends import CommandHost
from dicomtls.backends.local import LocalCommandHost
from dicomtls.components import Address
from dicomtls.dicomdata import TestObject
from dicomtls.move_destination import MoveDestinations
from dicomtls.pki import PkiFiles
from dicomtls.profiles import Offer

if TYPE_CHECKING:
    from dicomtls.scenario import Probe

CALLING_AET = DEFAULT_CALLING_AET
DEFAULT_AET = "ORTHANC"  # Orthanc's own default DicomAet: what an endpoint is called when nobody says otherwise
WRONG_SNI = "wrong-sni.invalid"


@dataclass(frozen=True)
class Target:
    """Where and how to reach a DICOM endpoint."""

    address: Address
    server_names: tuple[str, ...]
    pki: PkiFiles
    called_aet: str = DEFAULT_AET
    """The AE title the clients call: the (first site's) server's configured one."""
    command_hosts: Callable[[str, str | None, tuple[Path, ...]], CommandHost] | None = None
    """Where command-line clients run (a backend's client containers); None: on this machine."""
    sites: dict[str, str] = field(default_factory=dict)
    """Site -> the name that reaches it, when several DICOM sites sit behind one proxy."""
    site_aets: dict[str, str] = field(default_factory=dict)
    """Site -> the AE title its server answers to, when several DICOM sites sit behind one proxy."""
    move_destinations: MoveDestinations | None = None
    """How a C-MOVE cell tells the servers where its Storage SCP listens; None: it cannot."""
    web: Address | None = None
    """The proxy's HTTPS route (DICOMweb), when it has one (``web: true``)."""
    web_path: str = "/"
    """The path under which that route serves the server's REST API (``web_path``)."""

    def command_host(self, client: str, version: str | None, files: tuple[Path, ...]) -> CommandHost:
        """Where to run a command-line client that needs ``files`` (its own identity, the CA, the objects)."""
        if self.command_hosts is None:
            return LocalCommandHost(self.address)
        return self.command_hosts(client, version, files)

    def sni(self, choice: str) -> str | None:
        """The name sent for an sni axis value: none, right, wrong, or a site."""
        if choice in self.sites:
            return self.sites[choice]
        return {"none": None, "right": self.server_names[0], "wrong": WRONG_SNI}[choice]

    def aet(self, choice: str) -> str:
        """The AE title to call for an sni axis value: a site's server's, else the first site's, where a client
        without SNI (or with another name) is routed."""
        return self.site_aets.get(choice, self.called_aet)

    def called(self, probe: Probe) -> str:
        """The AE title a probe calls: its own ``called_aet`` when it names one, else the server's (``aet``)."""
        return probe.called_aet or self.aet(probe.sni)

    def client_identity(self, choice: str) -> tuple[Path, Path] | None:
        """(certificate chain, key) for the probe's client_cert axis value."""
        return None if choice == "none" else self.client_identities()[choice]

    def client_identities(self) -> dict[str, tuple[Path, Path]]:
        """Every client identity of the test PKI, by client_cert axis value."""
        p = self.pki
        return {
            "valid": (p.client_fullchain, p.client_key),
            "untrusted": (p.untrusted_client_cert, p.untrusted_client_key),
            "expired": (p.expired_client_fullchain, p.expired_client_key),
            "revoked": (p.revoked_client_fullchain, p.revoked_client_key),
            "self-signed": (p.self_signed_client_cert, p.self_signed_client_key),
            # The good certificate with a key that is not its own: the client's TLS library may refuse the pair.
            "key-mismatch": (p.client_fullchain, p.other_client_key),
        }


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    stage: str  # how far it got: setup (the client's own TLS setup failed, nothing sent) | connect | associate | dimse | done;
    # an HTTPS client: setup | connect | http | done
    lines: tuple[str, ...]  # the client's own words, errors last
    command: str  # what ran, for a person to repeat by hand
    sent: TestObject | None = None
    offered: Offer | None = None  # the TLS versions and suites the client put in its ClientHello
    peer_certificate: str | None = None  # the subject of the leaf certificate the server presented, if the client saw it
    association_s: float | None = None
    """Seconds from connecting to an accepted association (TCP, the TLS handshake, A-ASSOCIATE), where the client
    measures it (in-process pynetdicom; a command-line client's run is only timed whole)."""
    rejection: Rejection | None = None
    """The server's A-ASSOCIATE-RJ, when it rejected the association: a diagnosis reads the reason from it."""
    confirmed: str = ""
    """What the client checked beyond a success status (a C-FIND's answer, a C-MOVE's arrival), for the report."""
    http_status: int | None = None
    """The HTTP status of the request that failed, for a client that speaks HTTP (DICOMweb): a typed fact the
    diagnosis reads instead of the words around it."""


STAGES = ("setup", "connect", "associate", "dimse", "http", "done")


class Client(Protocol):
    """A DICOM client the matrix runs: dcmtk as commands, pynetdicom in-process."""

    def run(self, target: Target, probe: Probe, workdir: Path) -> ProbeOutcome: ...


class MidTransferClient(Protocol):
    """A client that can stop after the first fragment of a dataset went out (``ClientKind.sends_mid_transfer``):
    ``while_sending`` runs then, on the association's thread, and the rest waits until it returns."""

    def run(self, target: Target, probe: Probe, workdir: Path,
            while_sending: Callable[[], None] | None = None) -> ProbeOutcome: ...


def common_name(der: bytes) -> str | None:
    """Who a served certificate says it is: its common name, else its whole subject."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()
