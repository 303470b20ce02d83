"""Checks on the server side of each inventory host, run with pytest-testinfra over the same inventory.

A probe sees what a client sees; these look at what the host declares about
itself (``dicomtls_server_cert`` and ``_key``, ``dicomtls_orthanc_config``,
``dicomtls_proxy``) through testinfra's ``ansible://`` backend, so an SSH,
Docker or local host is reached as Ansible would reach it. Each check is one
:class:`Check` in :data:`CHECKS`: a name, when it applies, and a function of the
testinfra host, the deployment and its scan. A check becomes a cell expected to
pass (scenario ``checks``), so every report shows it with its evidence and a
failed one fails the run. Nothing here reads the server's private key: only its
mode and owner.

A check reaches its host only through :class:`_Guarded`, which turns whatever
testinfra raises (no connection, a command that fails, a file it cannot read)
into :class:`HostFailed`: that is the host's failure and fails the check with
what the host said. Any other exception out of a check is a bug in the check,
so it is a crash of dicomtls (:mod:`dicomtls.crash`), not the host's fault. A
check whose input is unknown (the scan it compares with ended in an error) is
unknown, not failed and never passed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from dicomtls import components
from dicomtls.crash import crashed, first_line
from dicomtls.diagnose import EXPLANATIONS, Reason
from dicomtls.results import CellResult, EnvironmentInfo, MatrixResult
from dicomtls.scenario import Cell, Probe

if TYPE_CHECKING:
    from dicomtls.inventory import Deployment

SCENARIO = "checks"
OPERATION = "check"
RENEW_WITHIN_DAYS = 14  # a server certificate closer to its notAfter than this fails: renew it now

# The program each dicomtls_proxy kind runs (/proc/PID/comm), and how it tells its version: one per program
# among the components (Component.executable_name, version_args), in their listing order.
PROGRAMS: dict[str, tuple[str, str]] = {
    c.kind: (c.executable_name, " ".join(c.version_args)) for c in components.programs()
}


@dataclass(frozen=True)
class Outcome:
    ok: bool | None  # None: unknown, what the check compares with could not be measured
    summary: str  # one line: what was found
    evidence: tuple[str, ...] = ()


class HostFailed(Exception):
    """The host could not answer what a check asked: the check fails with this, the host's own words."""


class _Guarded:
    """testinfra's host, or a module or result it hands out, whose failures are :class:`HostFailed`."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        value = _through_testinfra(lambda: getattr(self._target, name))
        if callable(value):
            return lambda *args, **kwargs: _guarded(_through_testinfra(lambda: value(*args, **kwargs)))
        return _guarded(value)


def _guarded(value: Any) -> Any:
    return _Guarded(value) if type(value).__module__.startswith("testinfra") else value


def _through_testinfra(step: Callable[[], Any]) -> Any:
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 - testinfra raises what the connection, command or module raises
        raise HostFailed(first_line(exc)[:300]) from exc


@dataclass(frozen=True)
class Check:
    name: str
    applies: Callable[[Deployment], bool]
    run: Callable[[Any, Deployment, EnvironmentInfo], Outcome]
    """(testinfra host, deployment, the probe's environment with its scan) -> outcome."""


def is_check(result: CellResult) -> bool:
    return result.cell.scenario == SCENARIO


def _load_pem(host: Any, path: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificates(host.file(path).content)[0]
    except ValueError:  # cryptography: no PEM certificate in it
        raise HostFailed(f"{path} holds no PEM certificate") from None


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        return [str(n) for n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                .value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        return []


def _server_cert(host: Any, d: Deployment, info: EnvironmentInfo) -> Outcome:
    assert d.server_cert is not None
    if not host.file(d.server_cert).exists:
        return Outcome(False, f"{d.server_cert} does not exist")
    cert = _load_pem(host, d.server_cert)
    sans = _sans(cert)
    now = datetime.now(timezone.utc)
    days = int((cert.not_valid_after_utc - now).total_seconds() / 86400)
    until = cert.not_valid_after_utc.isoformat(timespec="seconds")
    facts = (f"{d.server_cert}: subject {cert.subject.rfc4514_string()}", f"SANs {', '.join(sans) or 'none'}",
             f"valid until {until} ({days} days left)")
    if cert.not_valid_before_utc > now:
        return Outcome(False, f"{d.server_cert} is not valid before {cert.not_valid_before_utc.isoformat()}", facts)
    if cert.not_valid_after_utc < now:
        return Outcome(False, f"{d.server_cert} expired on {until}", facts)
    if days < RENEW_WITHIN_DAYS:
        return Outcome(False, f"{d.server_cert} expires in {days} days ({until}): renew it", facts)
    if d.sni and not any(_covers(san, d.sni) for san in sans):
        return Outcome(False, f"{d.server_cert} does not name {d.sni} (SANs {', '.join(sans) or 'none'})", facts)
    return Outcome(True, f"names {', '.join(sans) or 'no DNS name'}; {days} days left", facts)


def _covers(san: str, name: str) -> bool:
    san, name = san.lower(), name.lower()
    return san == name or (san.startswith("*.") and name.split(".", 1)[-1] == san[2:])


def _server_key(host: Any, d: Deployment, info: EnvironmentInfo) -> Outcome:
    assert d.server_key is not None
    key = host.file(d.server_key)
    if not key.exists:
        return Outcome(False, f"{d.server_key} does not exist")
    mode, owner = key.mode, key.user
    facts = (f"{d.server_key}: mode {mode:04o}, owner {owner}, group {key.group}",)
    if mode & 0o077:
        return Outcome(False, f"{d.server_key} is mode {mode:04o}: others can read it; chmod 0600", facts)
    if d.key_owner and owner != d.key_owner:
        return Outcome(False, f"{d.server_key} is owned by {owner}, not {d.key_owner}", facts)
    return Outcome(True, f"mode {mode:04o}, owner {owner}", facts)


def _served_leaf(host: Any, d: Deployment, info: EnvironmentInfo) -> Outcome:
    """The certificate the endpoint serves to the right SNI is the one the host declares: no stale copy, no
    other certificate deployed in front of it."""
    assert d.server_cert is not None
    scan = info.scan
    chain = next((c for c in scan.chains if c.certificates), None) if scan else None
    if scan is None or scan.error:
        return Outcome(None, f"unknown: no served certificate to compare ({scan.error if scan else 'not scanned'})")
    if chain is None:
        return Outcome(False, "the endpoint served no certificate to compare (no handshake of the scan got a chain)")
    if not host.file(d.server_cert).exists:
        return Outcome(False, f"{d.server_cert} does not exist")
    on_disk = _load_pem(host, d.server_cert).fingerprint(hashes.SHA256()).hex()
    served = chain.certificates[0]
    facts = (f"served to SNI {chain.sni or '(none)'}: {served.subject}, sha256 {served.sha256}",
             f"{d.server_cert}: sha256 {on_disk}")
    if served.sha256 != on_disk:
        return Outcome(False, f"the endpoint serves another certificate than {d.server_cert}", facts)
    return Outcome(True, f"the endpoint serves {d.server_cert}", facts)


# Which process listens on a TCP port, from /proc alone (minimal images have no ss or ps): the socket's inode
# in /proc/net/tcp{,6}, then the process holding it. Prints "PID COMM EXE" per listener.
_LISTENER = r"""
hex=$(printf ':%04X' {port})
for inode in $(awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p {{print $10}}' /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u); do
  for fd in /proc/[0-9]*/fd/*; do
    if [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$inode]" ]; then
      pid=${{fd#/proc/}}; pid=${{pid%%/*}}
      echo "$pid $(cat /proc/$pid/comm) $(readlink /proc/$pid/exe)"
    fi
  done
done | sort -u
"""


def _listeners(host: Any, port: int) -> list[tuple[str, str, str]]:
    out = host.run(_LISTENER.format(port=port))
    found = []
    for line in out.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            found.append((parts[0], parts[1], parts[2]))
    return found


def _listening(host: Any, d: Deployment, info: EnvironmentInfo) -> Outcome:
    port = d.listen_port or d.port
    found = _listeners(host, port)
    if not found:
        return Outcome(False, f"nothing listens on TCP port {port} on the host")
    facts = tuple(f"PID {pid} {comm} ({exe}) listens on {port}" for pid, comm, exe in found)
    if d.proxy and not any(comm == PROGRAMS[d.proxy][0] for _, comm, _ in found):
        return Outcome(False, f"port {port} is held by {found[0][1]}, not {PROGRAMS[d.proxy][0]}", facts)
    return Outcome(True, f"{found[0][1]} (PID {found[0][0]}) listens on {port}", facts)


def _proxy_version(host: Any, d: Deployment, info: EnvironmentInfo) -> Outcome:
    """The version of the very process that listens on the port (its /proc/PID/exe), not of whatever binary
    is first on PATH."""
    assert d.proxy is not None
    program, flag = PROGRAMS[d.proxy]
    mine = [(pid, exe) for pid, comm, exe in _listeners(host, d.listen_port or d.port) if comm == program]
    if not mine:
        return Outcome(False, f"no {program} process listens on {d.listen_port or d.port}")
    pid, exe = mine[0]
    out = host.run(f"{shlex.quote(exe)} {flag}")
    text = (out.stdout + out.stderr).strip()
    version = re.search(r"\d+\.\d+\.\d+", text)
    facts = (f"{exe} {flag}: {text.splitlines()[0] if text else '(no output)'}",)
    if out.rc != 0 or version is None:
        return Outcome(False, f"{exe} {flag} did not print a version (exit {out.rc})", facts)
    info.versions[d.proxy] = version.group(0)
    return Outcome(True, f"{program} {version.group(0)} (PID {pid}, {exe})", facts)


_COMMENT = re.compile(r'("(?:\\.|[^"\\])*")|/\*.*?\*/|//[^\n]*', re.S)


def _orthanc_config(host: Any, d: Deployment, info: EnvironmentInfo) -> Outcome:
    """Orthanc's DicomTls* settings (Orthanc's JSON allows comments); where Orthanc terminates TLS itself, they
    must enable it with the declared certificate and files that exist."""
    assert d.orthanc_config is not None
    if not host.file(d.orthanc_config).exists:
        return Outcome(False, f"{d.orthanc_config} does not exist")
    text = host.file(d.orthanc_config).content_string
    try:
        config = json.loads(_COMMENT.sub(lambda m: m.group(1) or "", text))
    except ValueError as exc:
        return Outcome(False, f"{d.orthanc_config} is not JSON: {exc}")
    tls = {k: v for k, v in config.items() if k.startswith("DicomTls")}
    facts = tuple(f"{k}: {json.dumps(v)}" for k, v in tls.items()) or ("no DicomTls* setting",)
    enabled = tls.get("DicomTlsEnabled") is True
    if d.proxy is None or components.component_class(d.proxy).role != "server":  # TLS ends at a proxy
        return Outcome(True, "DicomTls enabled" if enabled else "DicomTls off (TLS ends at the proxy)", facts)
    if not enabled:
        return Outcome(False, f"{d.orthanc_config}: DicomTlsEnabled is not true, yet Orthanc serves TLS here", facts)
    missing = [f"{k} {tls[k]}" for k in ("DicomTlsCertificate", "DicomTlsPrivateKey", "DicomTlsTrustedCertificates")
               if k in tls and not host.file(str(tls[k])).exists]
    if missing:
        return Outcome(False, f"{d.orthanc_config} names files that do not exist: {', '.join(missing)}", facts)
    if d.server_cert and tls.get("DicomTlsCertificate") != d.server_cert:
        return Outcome(False, f"DicomTlsCertificate is {tls.get('DicomTlsCertificate')}, not {d.server_cert}", facts)
    required = tls.get("DicomTlsRemoteCertificateRequired", True)
    return Outcome(True, f"DicomTls enabled, client certificate {'required' if required else 'optional'}", facts)


CHECKS: tuple[Check, ...] = (
    Check("listening", lambda d: d.declares_server_side, _listening),
    Check("proxy-version", lambda d: d.proxy is not None, _proxy_version),
    Check("server-cert", lambda d: d.server_cert is not None, _server_cert),
    Check("served-leaf", lambda d: d.server_cert is not None, _served_leaf),
    Check("server-key", lambda d: d.server_key is not None, _server_key),
    Check("orthanc-config", lambda d: d.orthanc_config is not None, _orthanc_config),
)


def host_of(d: Deployment) -> Any:
    """testinfra's host for an inventory entry, reached the way Ansible's connection settings say."""
    import testinfra

    # testinfra reads the inventory with ansible-inventory, installed beside this interpreter.
    if shutil.which("ansible-inventory") is None:
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return testinfra.get_host(f"ansible://{d.host}?ansible_inventory={d.inventory.resolve()}")


def run_checks(deployments: list[Deployment], result: MatrixResult, out: Path,
               checks: tuple[Check, ...] = CHECKS) -> None:
    """Every check that applies to each host, appended to ``result`` as cells expected to pass. A bug in a check
    raises :class:`dicomtls.crash.Crashed`, its traceback in OUT/crash.log."""
    by_name = {info.name: info for info in result.environments}
    for d in [d for d in deployments if d.declares_server_side]:
        info = by_name[d.host]
        info.scenarios.append(SCENARIO)
        unreachable = None
        try:
            host = _Guarded(host_of(d))
        except Exception as exc:  # noqa: BLE001 - testinfra raises whatever the connection raises
            host, unreachable = None, f"testinfra cannot reach {d.host}: {exc}"
        for check in checks:
            if check.applies(d):
                result.cells.append(_run(check, host, d, info, unreachable, out))


def _run(check: Check, host: Any, d: Deployment, info: EnvironmentInfo, unreachable: str | None,
         out: Path) -> CellResult:
    cell = Cell(SCENARIO, d.host, Probe(check.name, "-", "-", OPERATION), "pass", None)
    began = time.monotonic()
    try:
        outcome = Outcome(False, unreachable) if unreachable else check.run(host, d, info)
    except HostFailed as exc:
        outcome = Outcome(False, f"could not run on {d.host}: {exc}")
    except Exception as exc:  # noqa: BLE001 - not the host's answer: a bug in the check
        raise crashed(exc, f"check {check.name} on {d.host}", out) from None
    duration = round(time.monotonic() - began, 3)
    command = f"testinfra ansible://{d.host} ({d.inventory}): {check.name}"
    if outcome.ok:
        return CellResult(cell, "pass", None, outcome.summary, "", outcome.evidence, command, outcome.summary,
                          duration)
    reason = Reason.SERVER_CHECK_FAILED if outcome.ok is False else Reason.UNKNOWN
    _, fix = EXPLANATIONS[reason]
    return CellResult(cell, "fail", reason, outcome.summary, fix, outcome.evidence, command, "", duration)
