"""dcmtk's echoscu and storescu, run exactly as a user would type them (called by absolute path,
because pynetdicom installs console scripts with the same names)."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dicomtls.errors import UsageError
from dicomtls.probes import CALLING_AET, ProbeOutcome, Target
from dicomtls.profiles import PROFILES, dcmtk_offer, dcmtk_too_old
from dicomtls.scenario import Probe
from dicomtls.dicomdata import make_object

DCMTK_BIN = Path("/usr/bin")
TIMEOUT_S = 15
_ERROR = re.compile(r"^[EF]: |error|Error|failed|Failed|Rejected|Aborted|refused", re.MULTILINE)


@dataclass(frozen=True)
class Dcmtk:
    bindir: Path = DCMTK_BIN

    def check(self, profiles: set[str] | frozenset[str] = frozenset()) -> None:
        """dcmtk is installed and can run every TLS profile asked of it (+pg needs 3.6.8)."""
        for tool in ("echoscu", "storescu"):
            if not (self.bindir / tool).is_file():
                raise UsageError(f"dcmtk's {tool} not found in {self.bindir}: apt-get install dcmtk")
        for profile in sorted(profiles):
            if problem := dcmtk_too_old(profile, self.version()):
                raise UsageError(problem)

    def version(self) -> str:
        return _version(self.bindir)

    def run(self, target: Target, probe: Probe, workdir: Path) -> ProbeOutcome:
        identity = target.client_identity(probe.client_cert)
        objects = workdir.resolve()
        objects.mkdir(parents=True, exist_ok=True)
        host = target.command_host("dcmtk", None, (*(identity or ()), target.pki.ca_cert, objects))
        args = ["-v", "-aet", CALLING_AET, "-aec", target.called_aet, "-to", str(TIMEOUT_S),
                "-ta", str(TIMEOUT_S), "-td", str(TIMEOUT_S)]
        if probe.transport == "tls":
            if identity is None:
                args.append("+tla")
            else:
                chain, key = identity
                args += ["+tls", host.path(key), host.path(chain)]
            if probe.server_cert_check == "ignore":
                args.append("-ic")
            else:
                args += ["-rc", "+cf", host.path(target.pki.ca_cert)]
            chosen = PROFILES[probe.profile].dcmtk
            if chosen is not None:
                args.append(chosen.flag)
        args += [host.address.host, str(host.address.port)]
        sent = None
        if probe.operation == "echo":
            tool = "echoscu"
        else:
            tool = "storescu"
            sent = make_object(probe.operation, objects)
            args.append(host.path(sent.path))
        argv = [str(self.bindir / tool), *args]
        result = host.run(argv, TIMEOUT_S * 3)
        output, code = result.output, result.code
        lines = tuple(l for l in output.splitlines() if l.strip())
        ok = code == 0 and (tool == "echoscu" or any("Received Store Response (Success)" in l for l in lines))
        offered = dcmtk_offer(probe.profile, self.version()) if probe.transport == "tls" else None
        return ProbeOutcome(ok, _stage(lines, ok), _relevant(lines), shlex.join(argv), sent, offered)


@cache
def _version(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "echoscu"), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"v(\d+\.\d+\.\d+)", out)
    return match.group(1) if match else "unknown"


def _stage(lines: tuple[str, ...], ok: bool) -> str:
    text = "\n".join(lines)
    if ok:
        return "done"
    if "Association Accepted" in text:
        return "dimse"
    if "Association Rejected" in text:
        return "associate"
    return "connect"


def _relevant(lines: tuple[str, ...]) -> tuple[str, ...]:
    """Error lines first-class, the rest kept short: dcmtk -v prints a line per step."""
    errors = [l for l in lines if _ERROR.search(l)]
    return tuple(errors) if errors else lines[-6:]
