"""The clients a run has: the one place that builds every DICOM client a run's cells name, checked that it can run.

Matrix, soak and probe all take their clients from :func:`clients_for`, so no task can leave out a client a
scenario names: soak once kept a table of its own without dcmtk-stunnel and crashed on that client's first cell.
Every client name a scenario may give (``scenario.Client``) has a builder in ``BUILDERS``; a new client is one
entry there, which is where a registry of client plugins would grow from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicomtls.probes import Client
from dicomtls.probes.dcmtk import Dcmtk
from dicomtls.probes.pynetdicom import Pynetdicom
from dicomtls.probes.stunnel import DcmtkViaStunnel

if TYPE_CHECKING:
    from dicomtls.scenario import Probe

COMMAND_LINE = frozenset({"dcmtk", "dcmtk-stunnel"})
"""The clients that run dcmtk's command-line tools: their dcmtk versions and profiles are checked before a run."""


def _via_stunnel(dcmtk: Dcmtk) -> Client:
    client = DcmtkViaStunnel(dcmtk)
    if dcmtk.installed:  # a backend's client image brings its own stunnel
        client.check()
    return client


BUILDERS: dict[str, Callable[[Dcmtk], Client]] = {
    "dcmtk": lambda dcmtk: dcmtk,
    "pynetdicom": lambda dcmtk: Pynetdicom(),
    "dcmtk-stunnel": _via_stunnel,
}
"""Each client name a probe may give -> how to build that client around the run's dcmtk, checking what it needs."""


@dataclass(frozen=True)
class Clients:
    """A run's clients, by the name its probes give them."""

    by_name: Mapping[str, Client]
    dcmtk: Dcmtk | None
    """The dcmtk the command-line clients run (also behind stunnel), for the run header's versions; None when no
    cell runs one."""


def clients_for(probes: Iterable[Probe], installed: bool) -> Clients:
    """Every client ``probes`` name, each checked that it can run what they ask of it (the dcmtk versions and
    profiles, stunnel on PATH), else a UsageError before anything starts. ``installed``: the command-line clients
    run on this machine; False: in a backend's client containers, in the versions the probes ask for."""
    wanted = list(probes)
    dcmtk = Dcmtk(installed=installed)
    command_line = {(p.client_version, p.profile) for p in wanted if p.client in COMMAND_LINE}
    if command_line:
        dcmtk.check(command_line)
    by_name = {name: BUILDERS[name](dcmtk) for name in sorted({p.client for p in wanted})}
    return Clients(by_name, dcmtk if command_line else None)
