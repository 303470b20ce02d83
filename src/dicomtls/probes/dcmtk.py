"""dcmtk's echoscu and storescu, run exactly as a user would type them (called by absolute path,
because pynetdicom installs console scripts with the same names)."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dicomtls.errors import UsageError
from dicomtls.probes import CALLING_AET, ProbeOutcome, Target
from dicomtls.scenario import Probe
from dicomtls.dicomdata import make_object

DCMTK_BIN = Path("/usr/bin")
TIMEOUT_S = 15
_ERROR = re.compile(r"^[EF]: |error|Error|failed|Failed|Rejected|Aborted|refused", re.MULTILINE)


@dataclass(frozen=True)
class Dcmtk:
    bindir: Path = DCMTK_BIN

    def check(self) -> None:
        for tool in ("echoscu", "storescu"):
            if not (self.bindir / tool).is_file():
                raise UsageError(f"dcmtk's {tool} not found in {self.bindir}: apt-get install dcmtk")

    def version(self) -> str:
        out = subprocess.run([str(self.bindir / "echoscu"), "--version"], capture_output=True, text=True).stdout
        match = re.search(r"v(\d+\.\d+\.\d+)", out)
        return match.group(1) if match else "unknown"

    def run(self, target: Target, probe: Probe, workdir: Path) -> ProbeOutcome:
        args = ["-v", "-aet", CALLING_AET, "-aec", target.called_aet, "-to", str(TIMEOUT_S),
                "-ta", str(TIMEOUT_S), "-td", str(TIMEOUT_S)]
        if probe.transport == "tls":
            identity = target.client_identity(probe.client_cert)
            if identity is None:
                args.append("+tla")
            else:
                chain, key = identity
                args += ["+tls", str(key), str(chain)]
            args += ["-rc", "+cf", str(target.pki.ca_cert)]
        args += [target.address.host, str(target.address.port)]
        sent = None
        if probe.operation == "echo":
            tool = "echoscu"
        else:
            tool = "storescu"
            sent = make_object(probe.operation, workdir)
            args.append(str(sent.path))
        argv = [str(self.bindir / tool), *args]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S * 3, stdin=subprocess.DEVNULL)
            output, code = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            output += f"\n{tool} timed out after {TIMEOUT_S * 3}s"
            code = -1
        lines = tuple(l for l in output.splitlines() if l.strip())
        ok = code == 0 and (tool == "echoscu" or any("Received Store Response (Success)" in l for l in lines))
        return ProbeOutcome(ok, _stage(lines, ok), _relevant(lines), shlex.join(argv), sent)


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
