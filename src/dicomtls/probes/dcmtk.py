"""dcmtk's echoscu and storescu, run exactly as a user would type them (called by absolute path,
because pynetdicom installs console scripts with the same names)."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from dicomtls.backends import CommandHost
from dicomtls.components import Address
from dicomtls.errors import UsageError
from dicomtls.association import from_dcmtk
from dicomtls.probes import ProbeOutcome, Target
from dicomtls.clients.dcmtk import BIN as DCMTK_BIN, FLAGS, TOOLS, offer, too_old
from dicomtls.clients.dcmtk import Dcmtk as Kind
from dicomtls.scenario import Probe
from dicomtls.dicomdata import TestObject, make_object
from dicomtls.operations import Operation, operation
from dicomtls.probes.dcmtk_query_retrieve import TOOLS as QUERY_TOOLS
from dicomtls.probes.dcmtk_query_retrieve import find_problem, query_argv

TIMEOUT_S = 15
# What -v prints (every logger at INFO, "I: message"), with dcmtk.dcmtls at DEBUG for the TLS connection details,
# flushed line by line so that a client killed at the timeout leaves what it printed (the server's certificate).
LOG_CONFIG = """\
log4cplus.rootLogger = INFO, console
log4cplus.logger.dcmtk.dcmtls = DEBUG
log4cplus.appender.console = log4cplus::ConsoleAppender
log4cplus.appender.console.ImmediateFlush = true
log4cplus.appender.console.layout = log4cplus::PatternLayout
log4cplus.appender.console.layout.ConversionPattern = %P: %m%n
"""
_ERROR = re.compile(r"^[EF]: |error|Error|failed|Failed|Rejected|Aborted|refused", re.MULTILINE)


@dataclass(frozen=True)
class Dcmtk:
    bindir: Path = DCMTK_BIN
    installed: bool = True
    """True: the probes run this machine's dcmtk; False: a backend runs the versions asked for in containers."""

    def check(self, wanted: set[tuple[str, str]]) -> None:
        """Every (version, profile) asked for can run: the version is there, and knows the profile (+pg: 3.6.8)."""
        if self.installed:
            for tool in TOOLS:
                if not (self.bindir / tool).is_file():
                    raise UsageError(f"dcmtk's {tool} not found in {self.bindir}: apt-get install dcmtk")
        for version, profile in sorted(wanted):
            actual = self.version(version)
            if self.installed and version not in ("default", actual):
                raise UsageError(f"dcmtk {version} is asked for but {self.bindir} has {actual}: use --backend docker")
            if problem := too_old(profile, actual):
                raise UsageError(problem)

    def version(self, wanted: str = "default") -> str:
        if not self.installed:
            from dicomtls.images import spec_for

            return spec_for(Kind.recipe(), None if wanted == "default" else wanted).version
        return _version(self.bindir)

    def run(self, target: Target, probe: Probe, workdir: Path) -> ProbeOutcome:
        objects = workdir.resolve()
        host = target.command_host(Kind.recipe(), self._wanted(probe), self.files(target, probe, objects))
        argv, sent = self.command(host, target, probe, objects, host.address)
        result = host.run(argv, TIMEOUT_S * 3)
        op = operation(probe.operation)
        if op.dimse not in QUERY_TOOLS or sent is None or result.code != 0:
            return self.outcome(probe, argv, result.output, result.code, sent)
        return self._query(host, probe, op, argv, result.output, sent)

    def _query(self, host: CommandHost, probe: Probe, op: type[Operation], store_argv: list[str], stored: str,
               sent: TestObject) -> ProbeOutcome:
        """findscu after the store: the outcome of both, failed when the answer does not name the stored study
        (said as the client's last line)."""
        argv = query_argv(store_argv, self.bindir / QUERY_TOOLS[op.dimse], sent)
        result = host.run(argv, TIMEOUT_S * 3)
        seen = self.outcome(probe, argv, f"{stored}\n{result.output}", result.code, sent)
        seen = replace(seen, command=f"{shlex.join(store_argv)} && {seen.command}")
        problem = find_problem(result.output, sent)
        if seen.ok and problem is None:
            return replace(seen, confirmed="C-FIND named the stored study")
        return replace(seen, ok=False, stage="dimse",
                       lines=seen.lines + ((problem,) if problem and result.code == 0 else ()))

    def files(self, target: Target, probe: Probe, objects: Path) -> tuple[Path, ...]:
        """What the client container must see: every client identity of the test PKI, the CA certificate, the
        objects directory; the same for every cell of an environment, so that one client container serves them
        all (each container is a create, start and removal the engine pays for). Never the CA's key."""
        objects.mkdir(parents=True, exist_ok=True)
        identities = target.client_identities().values()
        return (*(path for identity in identities for path in identity), target.pki.ca_cert, objects)

    @staticmethod
    def _wanted(probe: Probe) -> str | None:
        return None if probe.client_version == "default" else probe.client_version

    def command(self, host: CommandHost, target: Target, probe: Probe, objects: Path,
                address: Address) -> tuple[list[str], TestObject | None]:
        """echoscu or storescu as a user would type it, against ``address``, and the object a store sends."""
        identity = target.client_identity(probe.client_cert)
        # -v's output, plus dcmtls's TLS details (the server's certificate), which are read for that and dropped.
        log_config = objects / "dcmtk-log.cfg"
        log_config.write_text(LOG_CONFIG)
        args = ["-lc", host.path(log_config), "-aet", probe.calling_aet, "-aec", target.called(probe), "-to", str(TIMEOUT_S),
                "-ta", str(TIMEOUT_S), "-td", str(TIMEOUT_S)]
        if probe.transport == "tls":
            if identity is None:
                args.append("+tla")
            else:
                chain, key = identity
                args += ["+tls", host.path(key), host.path(chain)]
            if probe.sni != "none":
                args += ["--request-sni", str(target.sni(probe.sni))]  # dcmtk >= 3.6.8, checked by the scenario
            if probe.server_cert_check == "ignore":
                args.append("-ic")
            else:
                args += ["-rc", "+cf", host.path(target.pki.ca_cert)]
            chosen = FLAGS.get(probe.profile)
            if chosen is not None:
                args.append(chosen.flag)
        args += [address.host, str(address.port)]
        sent = None
        op = operation(probe.operation)
        tool = "echoscu" if op.sends is None else "storescu"  # a query stores its object first (run)
        if op.sends is not None:
            sent = make_object(op.sends, objects, own_study=op.own_study)
            args.append(host.path(sent.path))
        return [str(self.bindir / tool), *args], sent

    def outcome(self, probe: Probe, argv: list[str], output: str, code: int, sent: TestObject | None) -> ProbeOutcome:
        """How far dcmtk got, in its own words (TLS details dropped once the server's certificate is read)."""
        peer = _peer_subject(output)
        lines = tuple(l for l in output.splitlines() if l.strip() and not l.startswith("D:"))
        ok = code == 0 and (sent is None or any("Received Store Response (Success)" in l for l in lines))
        offered = offer(probe.profile, self.version(probe.client_version)) if probe.transport == "tls" else None
        return ProbeOutcome(ok, _stage(lines, ok), _relevant(lines), shlex.join(argv), sent, offered, peer,
                            rejection=from_dcmtk(lines))


_PEER_SUBJECT = re.compile(r"^D: Peer X\.509v3 Certificate\s*\nD:\s+Subject\s*:\s*(.+)$", re.MULTILINE)


def _peer_subject(output: str) -> str | None:
    """The common name (else the whole subject) of the certificate dcmtk's TLS details name."""
    match = _PEER_SUBJECT.search(output)
    if match is None:
        return None
    subject = match.group(1).strip()
    cn = re.search(r"/CN=([^/]+)", subject)
    return cn.group(1) if cn else subject


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
