"""dcmtk behind stunnel: plain DICOM to a TLS-wrapping sidecar in client mode, which speaks TLS to the ingress.

This is what hospitals put in front of modalities that speak no TLS (or no SNI): stunnel sends the SNI, the
client certificate and verifies the server's chain and name, so dcmtk itself runs without TLS. When stunnel's
TLS side fails, dcmtk sees only a closed connection; the reason is in stunnel's own log, which is kept with
dcmtk's words (stunnel's first) for the diagnosis.
"""

from __future__ import annotations

import re
import shlex
import shutil
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from dicomtls.components import Address
from dicomtls.errors import UsageError
from dicomtls.probes import ProbeOutcome, Target
from dicomtls.clients.dcmtk import Dcmtk as Kind
from dicomtls.clients.dcmtk_stunnel import STUNNEL
from dicomtls.probes.dcmtk import TIMEOUT_S, Dcmtk
from dicomtls.profiles import Offer, python_offer
from dicomtls.scenario import Probe

SERVICE = "dicom"
LOOPBACK = "127.0.0.1"
_PORT = "@PORT@"  # in dcmtk's argv: the port stunnel bound, which the wrapper script reads from stunnel's log

# Start stunnel, wait until its log says it listens (port 0: the kernel picks a free one), run dcmtk against it,
# stop stunnel, then print stunnel's log after a marker. $1: stunnel's config; the rest: dcmtk's argv.
_WRAPPER = r"""conf=$1; shift
log=$(mktemp); trap 'rm -f "$log"' EXIT
stunnel4 "$conf" 2>"$log" & pid=$!
until grep -q 'Accepting new connections' "$log"; do
  kill -0 "$pid" 2>/dev/null || { echo "stunnel exited before listening"; echo "@STUNNEL-LOG@"; cat "$log"; exit 97; }
  sleep 0.02
done
port=$(sed -n 's/.* bound to 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log" | head -n 1)
for arg do shift; [ "$arg" = "@PORT@" ] && arg=$port; set -- "$@" "$arg"; done
"$@" 2>&1; code=$?
kill "$pid"; wait "$pid"
echo "@STUNNEL-LOG@"; cat "$log"
exit "$code"
"""
_MARKER = "@STUNNEL-LOG@"


def client_config(connect: Address, sni: str | None, ca_file: str | None, check_host: str | None = None,
                  cert: str | None = None, key: str | None = None, accept: str = f"{LOOPBACK}:0") -> str:
    """stunnel's client-mode config for one DICOM service, as text (file paths, never key material).

    ``connect``: the TLS ingress; ``sni``: the name sent (None: no SNI extension); ``ca_file``: the CA the
    server's chain must end in, None to accept any server certificate (no server authentication); ``check_host``:
    the name the server certificate must carry; ``cert``/``key``: the client certificate chain and its key
    (keep the key 0600); ``accept``: where plain DICOM clients connect (port 0: any free port)."""
    values = [str(connect), sni, ca_file, check_host, cert, key, accept]
    if any(v is not None and ("\n" in v or "\r" in v) for v in values):
        raise ValueError("stunnel config values cannot contain line breaks")
    lines = [
        "; plain DICOM in, TLS out: dcmtk -> stunnel (client mode) -> the TLS ingress",
        "foreground = yes",
        "pid =",
        "syslog = no",
        "debug = info",
        "",
        f"[{SERVICE}]",
        "client = yes",
        f"accept = {accept}",
        f"connect = {connect}",
        *([] if sni else ["; empty: no SNI extension"]),
        f"sni = {sni}" if sni else "sni =",
    ]
    if ca_file is None:
        lines += ["; the server certificate is not checked: no server authentication", "verifyChain = no"]
    else:
        lines += ["verifyChain = yes", f"CAfile = {ca_file}"]
        if check_host:
            lines.append(f"checkHost = {check_host}")
    if cert is not None and key is not None:
        lines += [f"cert = {cert}", f"key = {key}"]
    return "\n".join(lines) + "\n"


def config_for(target: Target, probe: Probe, connect: Address, path: Callable[[Path], str] = str) -> str:
    """The stunnel config a cell runs: its SNI, its client certificate, its CA unless it ignores the server's
    certificate. The certificate must carry the name sent, or the right name when none is sent.
    ``path``: how this machine's files are named where stunnel runs (a client container)."""
    sni = target.sni(probe.sni)
    identity = target.client_identity(probe.client_cert)
    verify = probe.server_cert_check == "verify"
    return client_config(
        connect, sni,
        ca_file=path(target.pki.ca_cert) if verify else None,
        check_host=(sni or target.server_names[0]) if verify else None,
        cert=path(identity[0]) if identity else None,
        key=path(identity[1]) if identity else None,
    )


@dataclass(frozen=True)
class DcmtkViaStunnel:
    """dcmtk (the version the cell asks for) speaking plain DICOM to a per-cell stunnel on loopback."""

    dcmtk: Dcmtk

    def check(self) -> None:
        """On this machine: stunnel is installed (a backend's client image has its own)."""
        if shutil.which(STUNNEL) is None:
            raise UsageError(f"{STUNNEL} not found on PATH (client dcmtk-stunnel): apt-get install stunnel4")

    def run(self, target: Target, probe: Probe, workdir: Path) -> ProbeOutcome:
        objects = workdir.resolve()
        version = None if probe.client_version == "default" else probe.client_version
        host = target.command_host(Kind.recipe(), version, self.dcmtk.files(target, probe, objects))
        conf = objects / "stunnel.conf"
        conf.write_text(config_for(target, probe, host.address, host.path))
        conf.chmod(0o600)
        plain = replace(probe, transport="plain")
        argv, sent = self.dcmtk.command(host, target, plain, objects, Address(LOOPBACK, 0))
        argv[len(argv) - (2 if sent else 1)] = _PORT  # host, port[, file] end the argv
        result = host.run(["sh", "-c", _WRAPPER, "stunnel-dcmtk", host.path(conf), *argv], TIMEOUT_S * 3)
        dcmtk_output, _, stunnel_log = result.output.partition(_MARKER)
        seen = self.dcmtk.outcome(plain, argv, dcmtk_output, result.code, sent)
        command = f"{STUNNEL} {shlex.quote(host.path(conf))} & {seen.command.replace(_PORT, 'PORT')}"
        return replace(seen, lines=connection_lines(stunnel_log) + seen.lines, command=command,
                       offered=stunnel_offer(), peer_certificate=peer_subject(stunnel_log))


_LOG_LINE = re.compile(r"^\S+ \S+ LOG(?P<level>\d)\[(?P<thread>[^\]]+)\]: (?P<text>.*)$")


def connection_lines(log: str) -> tuple[str, ...]:
    """What stunnel warned about or failed at (levels 0-4: its certificate checks, the TLS error, a start-up
    error), and any line that is not its log's; prefixed so the evidence names who said it."""
    kept = []
    for line in log.splitlines():
        m = _LOG_LINE.match(line.strip())
        if m is None or int(m["level"]) <= 4:
            text = line.strip() if m is None else m["text"]
            kept += [f"stunnel: {text}"] if text else []
    return tuple(kept)


_PEER = re.compile(r"Certificate accepted at depth=0: (.+)$", re.MULTILINE)


def peer_subject(log: str) -> str | None:
    """The common name of the server certificate stunnel verified (it names none when it does not verify)."""
    m = _PEER.search(log)
    if m is None:
        return None
    cn = re.search(r"CN=([^,/]+)", m.group(1))
    return cn.group(1).strip() if cn else m.group(1).strip()


def stunnel_offer() -> Offer:
    """stunnel sets no cipher list: OpenSSL's defaults go into its ClientHello, as this machine's OpenSSL has them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("DEFAULT")
    return python_offer(ctx)
