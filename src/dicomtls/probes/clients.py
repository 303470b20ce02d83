"""The clients a run has: the one place that builds every DICOM client a run's cells name, checked that it can run.

Matrix, soak and probe all take their clients from :func:`clients_for`, so no task can leave out a client a
scenario names: soak once kept a table of its own without dcmtk-stunnel and crashed on that client's first cell.
Every client a scenario may name is registered in ``dicomtls.clients``, which builds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicomtls.clients import client_class, listed
from dicomtls.probes import Client
from dicomtls.probes.dcmtk import Dcmtk

if TYPE_CHECKING:
    from dicomtls.scenario import Probe


def is_command_line(name: str) -> bool:
    """The client runs dcmtk's command-line tools: its versions and profiles are checked before a run."""
    return client_class(name).is_command_line


@dataclass(frozen=True)
class Clients:
    """A run's clients, by the name its probes give them."""

    by_name: Mapping[str, Client]
    dcmtk: Dcmtk | None
    """The dcmtk the command-line clients run (also behind stunnel), for the run header's versions; None when no
    cell runs one."""

    def versions(self, command_line_versions: set[str]) -> dict[str, str]:
        """The run header's client versions: the command-line clients' dcmtk in every version the cells ask for
        (when any cell runs one), and each other client's own that a cell runs."""
        found: dict[str, str] = {}
        for kind in listed():
            if kind.is_command_line:
                if self.dcmtk is not None and kind.image_recipe and kind.image_recipe not in found:
                    found[kind.image_recipe] = ", ".join(sorted({self.dcmtk.version(v) for v in command_line_versions}))
            elif kind.name in self.by_name and (own := kind.version(self.dcmtk)) is not None:
                found[kind.name] = own
        return found


def clients_for(probes: Iterable[Probe], installed: bool) -> Clients:
    """Every client ``probes`` name, each checked that it can run what they ask of it (the dcmtk versions and
    profiles, stunnel on PATH), else a UsageError before anything starts. ``installed``: the command-line clients
    run on this machine; False: in a backend's client containers, in the versions the probes ask for."""
    wanted = list(probes)
    dcmtk = Dcmtk(installed=installed)
    command_line = {(p.client_version, p.profile) for p in wanted if is_command_line(p.client)}
    if command_line:
        dcmtk.check(command_line)
    by_name = {name: client_class(name).build(dcmtk) for name in sorted({p.client for p in wanted})}
    return Clients(by_name, dcmtk if command_line else None)
