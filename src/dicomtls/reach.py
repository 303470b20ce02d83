"""How each registered client reaches an environment `invoke up` left running: one real cell per client.

`up` is for probing by hand. A line of advice written for one client would leave out every other (it once printed
an echoscu command only), so each registered client runs one cell through the same cell runner as a matrix, in
the settings it reaches the environment best with (the server's name as SNI when it can send one, the valid client
certificate when it sends one), and `up` prints the command it ran, which works by hand too, or why it failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dicomtls import clients as client_registry
from dicomtls.backends import Backend, RunningEnvironment
from dicomtls.cell import run_cell
from dicomtls.clients import ClientKind
from dicomtls.environment import target_of
from dicomtls.errors import UsageError
from dicomtls.probes.clients import clients_for
from dicomtls.results import OBSERVE
from dicomtls.scenario import Cell, Probe


@dataclass(frozen=True)
class Reached:
    """One client's cell against a running environment, as `up` prints and records it."""

    client: str
    outcome: str
    """pass, fail, or "not run" (the client cannot run on this machine: ``summary`` says why)."""
    reason: str | None
    summary: str
    command: str

    def line(self) -> str:
        name = client_registry.client_class(self.client).display_name
        if self.outcome == "pass":
            return f"✔ {name}: {self.command}"
        if self.outcome == "not run":
            return f"- {name}: not run: {self.summary}"
        return f"✘ {name}: {self.reason}: {self.summary}; ran: {self.command}"


def best_probe(kind: type[ClientKind]) -> Probe:
    """The cell this client reaches an environment with: all it can send, an echo over TLS."""
    return Probe(kind.name, sni="right" if kind.sends_sni("default") else "none",
                 client_cert="valid" if kind.sends_client_cert else "none",
                 operation="echo" if "echo" in kind.operations else kind.operations[0],
                 transport="tls" if "tls" in kind.transports else kind.transports[0])


def reach(env: RunningEnvironment, scenario: str, backend: Backend, objects: Path) -> list[Reached]:
    """Every registered client's cell against ``env``, in listing order. A client this machine cannot run
    (stunnel missing) is "not run" with the install hint: `up` has started what it was asked to either way."""
    target = target_of(env)
    found = []
    for kind in client_registry.listed():
        probe = best_probe(kind)
        if not kind.reaches_dicom_entry and target.web is None:
            found.append(Reached(kind.name, "not run", None, "the environment has no HTTPS route (web: true on its "
                                 "proxy)", ""))
            continue
        try:
            built = clients_for([probe], installed=not backend.brings_clients)
        except UsageError as exc:
            found.append(Reached(kind.name, "not run", None, str(exc), ""))
            continue
        cell = Cell(scenario, env.plan.name, probe, OBSERVE, None)
        result = run_cell(cell, env, target, built.by_name, objects / kind.name)
        found.append(Reached(kind.name, result.actual, result.reason, result.summary, result.command))
    return found
