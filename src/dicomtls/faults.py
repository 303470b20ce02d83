"""Faults injected into a running environment during one cell, and the proof that nothing was lost.

A fault cell stops or kills one component on purpose (through the backend, which knows how), lets the client
meet it, brings the component back, and sends the same object again: it must then be in Orthanc exactly once
and intact, while the interrupted attempt must never have been reported as stored. The kill happens on a real
condition, never after a guessed delay: from the client's own thread, right after the first fragment of the
C-STORE's dataset went out, while the rest waits (see ``Pynetdicom.run``'s ``while_sending``).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from pynetdicom import AE

from dicomtls.backends import Backend, EnvironmentFailed, RunningEnvironment
from dicomtls.dicomdata import TestObject
from dicomtls.orthanc_rest import instance_ids, verify_stored_once
from dicomtls.probes import CALLING_AET, Target
from dicomtls.probes.pynetdicom import echo_through, tls_context
from dicomtls.scenario import Probe

BACK_TIMEOUT_S = 30.0
"""How long a restarted component has to carry a C-ECHO through the whole path again."""


@dataclass
class FaultReport:
    """What a fault cell did and saw, for the reports: the fault, the client's and the proxy's words, the retry."""

    fault: str
    component: str
    injected: str  # what was done to which component, and when
    client_saw: str = ""
    proxy_logged: str = ""
    interrupted: str = ""  # what Orthanc holds of the interrupted attempt
    retry_ok: bool = False
    retry: str = ""  # how the same object was sent again, and what Orthanc's REST API says of it


@dataclass
class Injection:
    """One fault, injected into ``env`` by ``backend`` around one cell's client run."""

    fault: str
    backend: Backend
    env: RunningEnvironment
    report: FaultReport = field(init=False)
    _killed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        plan = self.env.plan
        if self.fault == "proxy-restart":
            assert plan.proxy is not None, "the scenario checks that a proxy-restart environment has a proxy"
            name = plan.proxy.kind
        else:
            name = plan.component_name(plan.sites[0])
        self.report = FaultReport(self.fault, name, "")

    @property
    def kills_entry(self) -> bool:
        """The killed component is the one clients connect to: it logs nothing more for this connection."""
        return self.fault == "proxy-restart"

    def before(self) -> None:
        """upstream-down: the environment's Orthanc is stopped (an orderly shutdown) before the client starts."""
        if self.fault == "upstream-down":
            self.backend.stop_component(self.env, self.report.component)
            self.report.injected = f"{self.report.component} stopped before the cell"

    @property
    def while_sending(self) -> Callable[[], None] | None:
        """The kill, for the client to call mid-transfer; None for a fault that happens before the cell."""
        return self._kill if self.fault in ("upstream-restart", "proxy-restart") else None

    def _kill(self) -> None:
        self.backend.stop_component(self.env, self.report.component, kill=True)
        self._killed = True
        self.report.injected = (f"{self.report.component} killed (as a crash) after the first fragment of the "
                                "C-STORE's dataset had gone out, the rest held back until it was gone")

    def bring_back(self, target: Callable[[], Target]) -> None:
        """Start the component again and wait until a C-ECHO passes through the whole path; ``target``: where
        the path's entry is now (a restarted container may listen on another host port)."""
        if self.fault != "upstream-down" and not self._killed:
            self.report.injected = (f"{self.report.component} was not killed: the client sent no dataset "
                                    "fragment (the C-STORE never started)")
            return
        self.backend.start_component(self.env, self.report.component)
        reach = target()
        deadline = time.monotonic() + BACK_TIMEOUT_S
        while True:
            self.env.connections += 1
            ok, detail = echo_through(reach, self.env.plan.server_names[0])
            if ok:
                return
            if gone := self.backend.exited(self.env):
                raise EnvironmentFailed(f"{self.env.plan.name}: after the {self.fault} fault: {gone}")
            if time.monotonic() > deadline:
                raise EnvironmentFailed(f"{self.env.plan.name}: no C-ECHO through the path within "
                                        f"{BACK_TIMEOUT_S:.0f}s after {self.report.component} was started again "
                                        f"({detail})")
            time.sleep(0.1)

    def prove_nothing_lost(self, target: Target, probe: Probe, sent: TestObject, first_ok: bool) -> None:
        """What Orthanc holds of the interrupted attempt, then the same object sent again: exactly once, intact."""
        rest = self.env.rest_url
        try:
            held = len(instance_ids(rest, sent.sop_instance_uid))
        except OSError as exc:
            held, self.report.interrupted = -1, f"Orthanc's REST API failed: {exc}"
        if held == 0:
            self.report.interrupted = "not in Orthanc: the interrupted object was not stored"
        elif held > 0:
            check = verify_stored_once(rest, sent)
            claimed = "the client was told it was stored" if first_ok else "the client was not told it was stored"
            self.report.interrupted = f"in Orthanc ({claimed}): {check.detail}"
        self.env.connections += 1
        ok, said = send_again(target, probe, sent)
        self.env.settle()
        if not ok:
            self.report.retry = f"the retry failed: {said}"
            return
        check = verify_stored_once(rest, sent)
        self.report.retry_ok = check.ok
        self.report.retry = f"sent again ({said}): {check.detail}"


def send_again(target: Target, probe: Probe, sent: TestObject) -> tuple[bool, str]:
    """The very file of the interrupted attempt, C-STOREd once more over a new association (pynetdicom, with
    the cell's TLS identity and SNI): what a modality's retry does."""
    ctx, server_hostname = tls_context(target, probe)
    ae = AE(ae_title=CALLING_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(sent.sop_class_uid, sent.transfer_syntax)
    try:
        assoc = ae.associate(target.address.host, target.address.port, ae_title=target.called(probe),
                             tls_args=cast("tuple[ssl.SSLContext, str]", (ctx, server_hostname)))
        if not assoc.is_established:
            return False, "association not established"
        try:
            status = assoc.send_c_store(sent.path)
        finally:
            assoc.release()
        code = getattr(status, "Status", None)
        if code != 0x0000:
            return False, f"C-STORE status {code:#06x}" if code is not None else "no C-STORE response"
        return True, "C-STORE success"
    finally:
        ae.shutdown()
