"""What each Invoke task does, as plain functions: tasks.py only parses options and maps errors to exit codes."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from dicomtls import api
from dicomtls import clients as client_registry
from dicomtls.association import DEFAULT_CALLING_AET, check_ae_title
from dicomtls.backends import RunningEnvironment, get_backend, release, state_dir
from dicomtls.deadlines import parse_timeout
from dicomtls.diff import Diff, compare
from dicomtls.errors import UsageError
from dicomtls.checks import is_check
from dicomtls.diagnose import EXPLANATIONS, Reason
from dicomtls.fixes.prove import try_fixes as try_fixes_of
from dicomtls.environment import start_environment, target_of
from dicomtls.plan import plan_environments
from dicomtls.policy import apply as apply_policy
from dicomtls.policy import Policy, load_policies, scan_violations
from dicomtls.reach import Reached, reach
from dicomtls.results import MatrixResult
from dicomtls.runner import auto_jobs
from dicomtls.pki import PkiSpec, ensure_pki
from dicomtls.report import json as json_report
from dicomtls.report import html, junit, markdown
from dicomtls.report.console import ConsoleProgress, print_fixes, print_result
from dicomtls.resolve import Resolver, Unresolved, check_name, parse_host_port, parse_pin, parse_target
from dicomtls.scenario import available, load_scenario, load_scenarios, runnable
from dicomtls.shard import merge as shard_merge
from dicomtls.shard import shard_results


@contextmanager
def interruptible() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so `finally` blocks tear environments down either way. Only the first one
    interrupts: the process is then tearing down and on its way out, and users press Ctrl-C again and again. A
    second interrupt would cut a teardown short, land in Python's own shutdown code (not safe to re-enter: its fork
    server's stop raised TypeError) and end the run with a traceback, so any later one is ignored to the end:
    SIG_IGN, which Python's exit keeps (a Python handler it resets, so a late Ctrl-C killed the process instead of
    letting it exit 130), and nothing is started after an interrupt that could inherit it."""

    def _interrupt(signum: int, frame: object) -> None:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:  # known before any signal can reach _interrupt
        signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is _interrupt:
                signal.signal(sig, handler)


def _console(stderr: bool = False) -> Console:
    """A terminal gets rich output at its width; a CI log gets long unwrapped lines. ``stderr``: when stdout
    carries a monitoring format (`probe --format`)."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(width=240, soft_wrap=True, stderr=stderr)


def _out_dir(out: str) -> Path:
    return api.output_directory(out)


def parse_jobs(text: str | int | None) -> int:
    """``auto`` (the machine's choice) or a whole number of environments to run at once."""
    if text is None or str(text) == "auto":
        return auto_jobs()
    if not str(text).isdecimal() or int(text) < 1:
        raise UsageError(f"--jobs {text}: give a whole number of environments at once (1 or more), or auto")
    return int(text)


def matrix(scenarios: list[str] | None, out: str, backend: str, force_pki: bool = False,
           shard: str | None = None, baseline: str | None = None, manifests: str | None = None,
           jobs: str | None = "auto", try_fixes: bool = False, timeout: str | None = None,
           policies: list[str] | None = None, fail_on: str | None = None, values: list[str] | None = None,
           sets: list[str] | None = None, calling_aet: str | None = None) -> int:
    """Run the matrix and write the reports; the exit status says whether every cell was as expected
    (and, against a baseline, that no cell which passed there fails now). ``manifests``: a file or directory of the
    user's configuration (Istio/Traefik/Envoy manifests, Helm charts, compose + nginx or HAProxy), run instead of the
    default scenarios (beside any named ones), observed.
    ``try_fixes``: then prove each failing cell's fix candidates (dicomtls.fixes); 1 if a variant did not start.
    ``timeout``: ``run=S,cell=S`` (dicomtls.deadlines), the run's counted from here and shared with the fixes.
    ``policies``: ``--policy FILE|preset:NAME`` (dicomtls.policy), with ``fail_on``'s severity: what must hold.
    ``values``/``sets``: what the Helm charts among the manifests are rendered with (`helm template`'s --values and
    --set). ``calling_aet``: the AE title every probe group that names none calls as (`--calling-aet`)."""
    deadlines = parse_timeout(timeout)
    policy = load_policies(policies, fail_on)
    parallel = parse_jobs(jobs)
    old = json_report.read(Path(baseline)) if baseline else None
    console = _console()
    prepared = api.matrix(scenarios or (), manifests=manifests, out=out, backend=backend, jobs=parallel,
                          timeout=deadlines, shard=shard, force_pki=force_pki, notes=console.print,
                          values=values or (), sets=sets or (),
                          calling_aet=_calling_aet(calling_aet) if calling_aet is not None else None)
    with interruptible():
        result = prepared.run(ConsoleProgress(console, parallel))
        if policy is not None:
            apply_policy(policy, result)
        fixes = try_fixes_of(prepared.scenarios, result, prepared.out, prepared.backend,
                             ConsoleProgress(console, parallel), parallel, Path(manifests) if manifests else None,
                             deadlines) if try_fixes else None
    doc = json_report.to_dict(result)
    if fixes is not None:
        doc["fixes"] = fixes.to_dict()
    changes = compare(old, doc) if old is not None else None
    print_result(result, console)
    if fixes is not None:
        print_fixes(doc["fixes"], console)
    if changes is not None:
        _print_changes(changes, console, f"since {baseline}")
    _write_reports(doc, prepared.out, changes, console)
    return 1 if result.exit_code or (changes and changes.regressions) or (fixes and fixes.broken) else 0


def _write_reports(doc: dict[str, Any], out: Path, changes: Diff | None, console: Console) -> None:
    """results.json, junit.xml, summary.md and report.html: all four from the same document."""
    json_report.write_document(doc, out / "results.json")
    junit.write_document(doc, out / "junit.xml")
    markdown.write(doc, out / "summary.md", changes)
    html.write(doc, out / "report.html")
    names = ", ".join(str(out / n) for n in ("results.json", "junit.xml", "summary.md", "report.html"))
    logs = f"; logs: {out / 'logs'}" if (out / "logs").is_dir() else ""
    console.print(f"reports: {names}{logs}", highlight=False)


def _print_changes(changes: Diff, console: Console, where: str) -> None:
    style = "bold red" if changes.regressions else "bold"
    console.print(f"[{style}]{where}: {changes.headline()}[/]", highlight=False)
    for line in changes.lines():
        console.print(f"  {line}", highlight=False, markup=False)


def merge(shard_dirs: list[str], out: str) -> int:
    """Combine the --out directories of shards 1..N into the reports of one run; 1 if a cell is unexpected."""
    if not shard_dirs:
        raise UsageError("name the shards' output directories: invoke merge --shards DIR [--shards DIR ...] --out DIR")
    files = shard_results([Path(d) for d in shard_dirs])
    if any(f.parent.resolve() == Path(out).resolve() for f in files):
        raise UsageError(f"--out {out} is one of the shards: write the merged run to another directory")
    doc = shard_merge([json_report.read(f) for f in files], [str(f) for f in files])
    out_path = _out_dir(out)
    shutil.rmtree(out_path / "logs", ignore_errors=True)
    for f in files:
        if (f.parent / "logs").is_dir():
            shutil.copytree(f.parent / "logs", out_path / "logs", dirs_exist_ok=True)
    console = _console()
    _write_reports(doc, out_path, None, console)
    problems = sum(1 for c in doc["cells"] if c["verdict"] != "ok") + len(doc.get("policy_violations", []))
    console.print(f"merged {len(files)} shards: {len(doc['cells']) - problems}/{len(doc['cells'])} cells as expected, "
                  f"{problems} unexpected or policy violations", highlight=False)
    return 1 if problems else 0


def diff(old: str, new: str) -> int:
    """Print what changed from one run's results.json to another's; 1 if a cell that passed now fails."""
    changes = compare(json_report.read(Path(old)), json_report.read(Path(new)))
    _print_changes(changes, _console(), f"{old} → {new}")
    return 1 if changes.regressions else 0


def print_annotations(results: str) -> None:
    """Print each annotation of a run's results.json as a workflow command, one a line (the runner reads stdout)."""
    from dicomtls.report import github_annotations as github

    for annotation in github.of_run(json_report.read(Path(results)), github.workspace()):
        print(annotation.command())


def schema(name: str, path: bool) -> None:
    """The shipped JSON Schema ``name`` (dicomtls.json_schemas) on stdout, or its file's path."""
    from dicomtls import json_schemas

    if name not in json_schemas.SCHEMAS:
        raise UsageError(f"no schema {name!r}: give one of {', '.join(json_schemas.SCHEMAS)}")
    found = json_schemas.PACKAGE_DIR / json_schemas.file_name(name)
    print(found if path else found.read_text(encoding="utf-8"), end="\n" if path else "")


def pki(topology: str, out: str, key: str, server_names: list[str] | None, force: bool) -> None:
    spec = PkiSpec(topology, key, tuple(server_names or ("dicom.example.test",)))  # type: ignore[arg-type]
    files = ensure_pki(spec, _out_dir(out), force=force)
    console = _console()
    console.print(f"PKI ({spec.topology}, {spec.key}) in {files.directory}", highlight=False)
    for name in ("ca_cert", "ca_bundle", "server_fullchain", "server_key", "client_cert", "client_key",
                 "client_p12", "truststore_p12"):
        console.print(f"  {name:17} {getattr(files, name)}", highlight=False)


def _state_file() -> Path:
    return state_dir() / "up.json"


def up(scenarios: list[str], out: str, backend: str, port: int | None) -> None:
    """Start a scenario's environments and leave them running for hand probing; each registered client reaches each
    one once (dicomtls.reach), and the command it ran, or why it failed, is printed and recorded."""
    if not scenarios:
        raise UsageError("name the scenario to start: invoke up --scenario NAME")
    state = _state_file()
    if state.exists():
        raise UsageError(f"environments are already up (recorded in {state}): run `invoke down` first")
    loaded = load_scenarios(scenarios)
    out_path = _out_dir(out)
    chosen = get_backend(backend, out_path / "envs")
    console = _console()
    loaded = runnable(loaded, chosen.name, explicit=True, say=console.print)
    groups = plan_environments(loaded, out_path / "pki")
    if port is not None and len(groups) > 1:
        raise UsageError(f"--port fixes one entry port but the scenarios start {len(groups)} environments: drop --port")
    started: list[dict[str, Any]] = []
    running: list[tuple[RunningEnvironment, str]] = []
    try:
        with interruptible():
            for group in groups:
                console.print(f"starting {group.plan.name} …", highlight=False)
                env = start_environment(chosen, group.plan, detached=True, entry_port=port)
                pki_files = group.plan.pki
                record = {
                    "environment": group.plan.name,
                    "scenarios": group.scenarios,
                    "backend": chosen.name,
                    "address": env.entry.host,
                    "port": env.entry.port,
                    "sni_names": list(group.plan.all_names),
                    "called_aet": target_of(env).called_aet,
                    "ca": str(pki_files.ca_cert),
                    "client_cert": str(pki_files.client_fullchain),
                    "client_key": str(pki_files.client_key),
                    "orthanc_rest": env.rest_url,
                    **({"sites": {site.name: {"sni_names": list(site.server_names), "orthanc_rest": env.rest_urls[site.name]}
                                  for site in group.plan.sites}} if group.plan.multi_site else {}),
                    "logs": {k: str(v) for k, v in env.logs.items()},
                    "handles": chosen.detach(env),
                }
                started.append(record)
                state.parent.mkdir(parents=True, exist_ok=True)
                state.write_text(json.dumps(started, indent=2))  # recorded first: `down` stops it whatever follows
                running.append((env, group.scenarios[0]))
            # Each environment's cells in turn, the environments side by side, as a matrix runs them.
            with ThreadPoolExecutor(max_workers=auto_jobs(), thread_name_prefix="reach") as pool:
                try:
                    reached = list(pool.map(lambda found: reach(found[0], found[1], chosen, out_path / "reach" /
                                                                found[0].plan.name), running))
                finally:  # the clients' containers serve this process only: `down` finds the environments alone
                    chosen.finish()
            for record, found in zip(started, reached):
                record["clients"] = [asdict(r) for r in found]
            state.write_text(json.dumps(started, indent=2))
    except BaseException:  # whatever stops the start (a version this machine lacks, Ctrl-C): nothing is left up
        down()
        raise
    for r in started:
        console.print(
            f"[bold]{r['environment']}[/]: {r['address']}:{r['port']}  SNI {', '.join(r['sni_names'])}  "
            f"CA {r['ca']}  client cert {r['client_cert']} key {r['client_key']}  REST {r['orthanc_rest']}",
            highlight=False,
        )
        for site, where in r.get("sites", {}).items():
            console.print(f"  site {site}: SNI {', '.join(where['sni_names'])}  REST {where['orthanc_rest']}",
                          highlight=False)
        for reached in r["clients"]:
            console.print(f"  {Reached(**reached).line()}", highlight=False, markup=False)
        # The clients' lines may name paths inside a client container; this one runs from here as it is.
        console.print(
            f"  try: /usr/bin/echoscu -v -aec {r['called_aet']} +tls {r['client_key']} {r['client_cert']} -rc "
            f"+cf {r['ca']} {r['address']} {r['port']}",
            highlight=False, markup=False,
        )
    console.print("stop them with: invoke down")


def down() -> int:
    """Stop whatever `invoke up` left running; returns how many components were stopped."""
    state = _state_file()
    if not state.exists():
        return 0
    try:
        records = json.loads(state.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{state} is unreadable: stop the processes by hand, then delete it") from None
    # Every environment of a backend at once: one after another, each waited out its Orthanc's 2 s stop (52 s
    # after an `up` of the default scenarios' 20 environments).
    handles: dict[str, list[dict[str, object]]] = {}
    for record in records:
        handles.setdefault(record["backend"], []).extend(record.get("handles", []))
    stopped = sum(release(backend, found) for backend, found in handles.items())
    state.unlink()
    return stopped


def images(scenarios: list[str] | None, component: str | None, version: str | None) -> None:
    """Build every image the scenarios' environments and dcmtk clients need; a no-op when they exist."""
    from dicomtls.images import ensure_image, spec_for

    console = _console()
    say = lambda text: console.print(text, highlight=False)  # noqa: E731
    if component:
        specs = [spec_for(component, version)]
    else:
        specs = []
        for scenario in load_scenarios(scenarios) if scenarios else [load_scenario(n) for n in available()]:
            for env in scenario.environments:
                for built in env.components():
                    if built.options.image is not None:
                        continue  # pulled when a run needs it, never built: `images` stays offline
                    specs.append(spec_for(built.recipe(), built.options.version or built.default_image_version()))
            specs += [spec_for(client.recipe(), None) for client in client_registry.listed()
                      if client.is_command_line and any(c.probe.client == client.name for c in scenario.cells())]
    for spec in dict.fromkeys(specs):
        say(f"{ensure_image(spec, say)} ready")


def clean() -> int:
    from dicomtls.backends.docker import clean_all

    return clean_all()



def _readable(path: str | None, what: str) -> Path | None:
    if path is None:
        return None
    found = Path(path)
    if not os.path.isfile(found):  # os.path: False for a name too long for the file system too, where Path raises
        raise UsageError(f"{what} {path} is not a readable file: check the path")
    return found


def resolver(pins: list[str] | None) -> Resolver:
    """The one resolver a run uses: ``--resolve HOST:PORT:ADDR`` pins first, then the system's."""
    return Resolver(tuple(parse_pin(p) for p in pins or ()))


def _identity(client_cert: str | None, client_key: str | None) -> tuple[Path | None, Path | None]:
    if (client_cert is None) != (client_key is None):
        raise UsageError("--client-cert and --client-key go together: give both or neither")
    return _readable(client_cert, "--client-cert"), _readable(client_key, "--client-key")


def _sni(sni: str | None) -> str | None:
    return None if sni is None else check_name(sni, "--sni")


def scan(target: str, sni: str | None, ca: str | None, client_cert: str | None, client_key: str | None,
         json_out: str | None, pins: list[str] | None = None, policies: list[str] | None = None,
         fail_on: str | None = None) -> int:
    """Scan one TLS endpoint and judge it against the DICOM TLS profiles; 1 when the scan could not complete or a
    policy's profile, certificate or finding rule (``policies``, ``fail_on``) is broken."""
    from dicomtls.report.console import print_scan, print_violations

    policy = load_policies(policies, fail_on)
    parse_host_port(target)
    cert, key = _identity(client_cert, client_key)
    try:
        result = api.scan(target, sni=_sni(sni), ca=_readable(ca, "--ca"), client_cert=cert, client_key=key,
                          pins=pins or ())
    except Unresolved as exc:
        _console().print(f"✘ {Reason.DNS_UNRESOLVED}: {exc}; {EXPLANATIONS[Reason.DNS_UNRESOLVED][1]}",
                         highlight=False, markup=False)
        return 1
    console = _console()
    print_scan(result, console)
    violations = scan_violations(policy, target, result) if policy is not None else []
    print_violations(violations, console)
    if json_out:
        doc = result.to_dict()
        if policy is not None:
            doc["policy_violations"] = [dataclasses.asdict(v) for v in violations]
        Path(json_out).write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if result.error or violations else 0


def bisect(component: str, versions: str, cell: str, scenarios: list[str] | None, out: str,
           jobs: str | None = "auto", backend: str = "local") -> int:
    """Run one cell over ordered versions of a component; print the first flip with the evidence on both sides."""
    from dicomtls.bisect import bisect as run_bisect
    from dicomtls.bisect import parse_versions

    ordered = parse_versions(versions)
    parallel = parse_jobs(jobs)
    console = _console()
    say = lambda line: console.print(line, highlight=False, markup=False)  # noqa: E731
    with interruptible():
        result = run_bisect(component, ordered, cell, scenarios, _out_dir(out) / "bisect", say, jobs=parallel,
                            backend=backend)
    for line in result.lines():
        say(line)
    return 0


def _orthanc_rest(url: str | None, what: str = "--orthanc-rest") -> str | None:
    if url is None:
        return None
    if not url.startswith("http://"):
        raise UsageError(f"{what} {url!r}: give it as http://HOST:PORT")
    parse_host_port(url.removeprefix("http://").split("/", 1)[0], what)
    return url.rstrip("/")


def _called_aet(called_aet: str, what: str = "--called-aet") -> str:
    if not re.fullmatch(r"[ -~]{1,16}", called_aet) or called_aet.strip() != called_aet:
        raise UsageError(f"{what} {called_aet!r} is not an AE title: 1-16 printable ASCII characters")
    return called_aet


def _calling_aet(calling_aet: str) -> str:
    try:
        return check_ae_title(calling_aet, "--calling-aet")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


DEFAULT_AET = "ORTHANC"
"""The called AE title when nobody names one: Orthanc's default DicomAet."""
TEXT, PROMETHEUS, NAGIOS = "text", "prometheus", "nagios"
FORMATS = (TEXT, PROMETHEUS, NAGIOS)
"""`probe --format`: the terminal's report (and the files in --out), or also a monitoring system's on stdout."""
DEFAULT_WARN_DAYS = 14.0


def _monitor_options(output: str, textfile: str | None, warn_days: str | float | None) -> float:
    """``--format``, ``--textfile`` and ``--warn-days`` checked together; the days."""
    if output not in FORMATS:
        raise UsageError(f"--format {output}: give one of {', '.join(FORMATS)}")
    if textfile is not None:
        if output != PROMETHEUS:
            raise UsageError("--textfile is where --format prometheus writes: add --format prometheus, or drop it")
        if not os.path.isdir(os.path.dirname(os.path.abspath(textfile))):
            raise UsageError(f"--textfile {textfile}: its directory does not exist: give a file in node_exporter's "
                             "--collector.textfile.directory")
        if not textfile.endswith(".prom"):
            raise UsageError(f"--textfile {textfile}: node_exporter reads only *.prom files: name it so")
    if warn_days is not None and output != NAGIOS:
        raise UsageError("--warn-days sets when --format nagios warns: add --format nagios, or drop it")
    try:
        days = DEFAULT_WARN_DAYS if warn_days is None else float(warn_days)
    except ValueError:
        days = -1.0
    if not 0 <= days < math.inf:
        raise UsageError(f"--warn-days {warn_days}: give the days a certificate may have left before a warning, "
                         "0 or more")
    return days


def probe(target: str | None, sni: str | None, ca: str | None, client_cert: str | None, client_key: str | None,
          called_aet: str, store: str | None, orthanc_rest: str | None, out: str,
          logs: list[str] | None = None, pins: list[str] | None = None, inventory: str | None = None,
          limit: str | None = None, jobs: str | None = "auto", timeout: str | None = None,
          policies: list[str] | None = None, fail_on: str | None = None, output: str = TEXT,
          textfile: str | None = None, warn_days: str | float | None = None, calling_aet: str | None = None) -> int:
    """Probe existing endpoints (one --target, or every host of an --inventory) with every client, SNI,
    certificate and a few profiles, and check an inventory's hosts from the inside; 1 when an endpoint had no
    passing cell, a server check failed, or a policy rule (``policies``, ``fail_on``) is broken. ``output``:
    ``--format`` (text, prometheus to ``textfile`` or stdout, nagios: its exit status, warned ``warn_days``
    before a certificate's end). ``called_aet``: None is ORTHANC, or the AET of an AET@HOST:PORT target;
    ``calling_aet``: what the clients call as (default DICOMTLS; an inventory host's dicomtls_calling_aet wins)."""
    from dicomtls.probe_endpoint import Request

    deadlines = parse_timeout(timeout)
    policy = load_policies(policies, fail_on)
    days = _monitor_options(output, textfile, warn_days)
    if (target is None) == (inventory is None):
        raise UsageError("name what to probe: --target HOST:PORT, or --inventory FILE (not both)")
    if limit is not None and inventory is None:
        raise UsageError("--limit selects hosts of an --inventory: give one")
    if inventory is not None:
        from dicomtls.inventory import Deployment, load_inventory

        per_host = {"--ca": ca, "--sni": sni, "--client-cert": client_cert, "--client-key": client_key,
                    "--orthanc-rest": orthanc_rest}
        if stray := next((option for option, value in per_host.items() if value), None):
            raise UsageError(f"{stray} applies to --target; with --inventory set "
                             f"dicomtls_{stray[2:].replace('-', '_')} for the host or its group")
        if store or logs:
            raise UsageError(f"{'--store' if store else '--log'} applies to --target only: drop it with --inventory")

        if called_aet is not None:
            raise UsageError("--called-aet applies to --target; with --inventory set dicomtls_called_aet for the host "
                             "or its group")
        deployments: list[Deployment] = load_inventory(Path(inventory), limit)
        calling = _calling_aet(calling_aet) if calling_aet is not None else None
        requests = [d.request(calling) for d in deployments]
        own: dict[str, Policy] = {
            d.host: _host_policy(d.policies, f"inventory {inventory}: host {d.host}: dicomtls_policy")
            for d in deployments if d.policies}
    else:
        assert target is not None
        if ca is None:
            raise UsageError("--ca is needed: the CA certificate that issued the endpoint's certificate")
        aet, host, port = parse_target(target)
        if aet is not None and called_aet is not None and aet != called_aet:
            raise UsageError(f"--target {target} calls {aet}, --called-aet {called_aet}: name the called AE title once")
        cert, key = _identity(client_cert, client_key)
        ca_file = _readable(ca, "--ca")
        assert ca_file is not None
        log_files = tuple(path for log in logs or () if (path := _readable(log, "--log")) is not None)
        requests = [Request(host, port, ca_file, _sni(sni), cert, key, _called_aet(aet or called_aet or DEFAULT_AET),
                            _readable(store, "--store"), _orthanc_rest(orthanc_rest), log_files,
                            calling_aet=_calling_aet(calling_aet or DEFAULT_CALLING_AET))]
        deployments, own = [], {}
    resolver(pins)  # each pin checked before anything runs
    parallel = parse_jobs(jobs)
    out_path = _out_dir(out) / "probe"
    console = _console(stderr=output != TEXT)
    with interruptible():
        result = api.probe_endpoints(requests, out=out_path, pins=pins or (), jobs=parallel, timeout=deadlines,
                                     progress=ConsoleProgress(console, parallel))
        if deployments:
            from dicomtls.checks import run_checks

            run_checks(deployments, result, out_path.parent)  # a crash's log: OUT/crash.log
        if policy is not None:
            apply_policy(policy, result)
        for host, host_policy in own.items():
            apply_policy(host_policy, result, environment=host)
    from dicomtls.report.console import print_scan

    for info in result.environments:
        if info.scan is not None:
            print_scan(info.scan, console)
    print_result(result, console)
    doc = json_report.to_dict(result)
    _write_reports(doc, out_path, None, console)
    if output == PROMETHEUS:
        from dicomtls.report import prometheus

        prometheus.write(doc, Path(textfile) if textfile else None, policy=policy is not None or bool(own))
    elif output == NAGIOS:
        from dicomtls.policy import fail_on as fail_on_policy
        from dicomtls.report import nagios

        warning = fail_on_policy(fail_on)
        found = nagios.status(doc, days, {r.name for r in warning.findings} if warning else set())
        print(found.line, flush=True)
        return found.state
    return probe_exit_code(result)



def _host_policy(specs: tuple[str, ...], where: str) -> Policy:
    """An inventory host's dicomtls_policy, read as --policy reads it; its errors name the host's variable."""
    try:
        found = load_policies(list(specs))
    except UsageError as exc:
        raise UsageError(f"{where}: {str(exc).removeprefix('--policy ')}") from None
    assert found is not None
    return found


def probe_exit_code(result: MatrixResult) -> int:
    """1 when an endpoint passed no cell or a check on a server failed: each host must be reachable and sound;
    when a cell did not end (a deadline) or dicomtls failed running one; and when a policy rule was broken."""
    if (any(c.deadline or c.error or c.policy for c in result.cells) or any(e.error for e in result.environments)
            or result.violations):
        return 1
    for info in result.environments:
        mine = [c for c in result.cells if c.cell.environment == info.name]
        probes_passed = any(c.actual == "pass" for c in mine if not is_check(c))
        if not probes_passed or any(c.actual == "fail" for c in mine if is_check(c)):
            return 1
    return 0


def bench(runs: int, backends: list[str], scenarios: list[str], images: bool, jobs: list[str] | None = None) -> None:
    from dicomtls import bench as benchmarks

    if runs < 1:
        raise UsageError(f"--runs {runs}: give at least 1")
    for j in jobs or []:
        parse_jobs(j)
    console = _console()
    say = lambda text: console.print(text, highlight=False)  # noqa: E731
    if not scenarios:  # like for like: the default scenarios every timed backend runs
        scenarios = [s.name for s in load_scenarios(None) if all(b in s.backends for b in backends)]
    timings = benchmarks.matrix_wall_times(backends, runs, scenarios, say, jobs or None)
    if images:
        timings.samples.update(benchmarks.image_build_times(runs, say).samples)
    benchmarks.report(timings, say)



def _count(value: str | int, option: str) -> int:
    if not str(value).isdecimal() or int(value) < 1:
        raise UsageError(f"{option} {value}: give a whole number, 1 or more")
    return int(value)


def bench_load(runs: str | int, backends: list[str] | None, out: str, concurrency: str | None,
               targets: list[str] | None, associations: str | int, objects: str | int,
               timing_options: bool = False) -> int:
    """C-STOREs from many associations at once through each proxy and straight to Orthanc; 1 when an association
    failed or an object is not in Orthanc exactly once and intact."""
    from dicomtls import load

    if timing_options:
        raise UsageError("--scenario, --images and --jobs time the matrix, not the load: drop them with --load")
    rounds = _count(runs, "--runs")
    per_worker, per_association = _count(associations, "--associations"), _count(objects, "--objects")
    if backends and len(backends) > 1:
        raise UsageError("--load measures one backend at a time: give a single --backend")
    levels = load.parse_levels(concurrency)
    chosen_targets = load.choose_targets(targets)
    out_path = _out_dir(out)
    chosen = get_backend(backends[0] if backends else "local", out_path / "envs")
    console = _console()
    say = lambda text: console.print(text, highlight=False)  # noqa: E731
    with interruptible():
        result = load.run_load(chosen, out_path, chosen_targets, levels, rounds, per_worker, per_association, say)
    console.print(load.table(result))
    load.write(result, out_path / "bench-load.json")
    say(f"{result.failed} failed associations, {result.unverified} unverified objects; written to "
        f"{out_path / 'bench-load.json'}")
    return result.exit_code


def soak(scenarios: list[str], minutes: str | float, out: str, backend: str | None, jobs: str | None = "auto",
         timeout: str | None = None) -> int:
    """Repeat the scenarios' cells for ``minutes`` on one set of environments; 1 when a cell changed its outcome
    or was not as expected, a component stopped, or anything was left after teardown. ``timeout``: ``run=S,cell=S``
    (dicomtls.deadlines); the soak's own minutes come on top of the run's."""
    from dicomtls import soak as soaking

    deadlines = parse_timeout(timeout)
    if not scenarios:
        raise UsageError("name the scenario to soak: invoke soak --scenario NAME --minutes N")
    try:
        length = float(minutes)
    except ValueError:
        length = -1.0
    if not 0 < length < math.inf:  # nan and inf too: a soak ends when its minutes are up
        raise UsageError(f"--minutes {minutes}: give how long to soak, in minutes (e.g. 5 or 0.5)")
    parallel = parse_jobs(jobs)
    loaded = load_scenarios(scenarios)
    out_path = _out_dir(out)
    chosen = get_backend(backend, out_path / "envs")
    loaded = runnable(loaded, chosen.name, explicit=True, say=print)
    console = _console()
    say = lambda text: console.print(text, highlight=False, markup=False)  # noqa: E731
    with interruptible():
        result = soaking.run_soak(loaded, out_path, chosen, length, parallel, say, deadlines.longer(length * 60))
    for table in soaking.tables(result):
        console.print(table)
    soaking.write(result, out_path / "soak.json")
    if result.stopped:
        say(f"stopped early: {result.stopped}")
    for left in result.leftovers:
        say(f"left after teardown: {left}")
    say(f"{len(result.changed)} changed cells, {len(result.unexpected)} unexpected, {len(result.leftovers)} leftovers "
        f"after {result.rounds} rounds; written to {out_path / 'soak.json'}")
    return result.exit_code


def init(results: str | None, manifests: str | None, write: str, force: bool, out: str, backend: str | None,
         jobs: str | None = "auto", timeout: str | None = None) -> int:
    """Write a policy pinning what a run observed (``results``: its results.json or --out directory; or
    ``manifests``, run first as `matrix --manifests` runs them) to ``write``; 1 when the run had an environment
    that did not start (what it did not measure is no baseline) or when nothing could be pinned."""
    from dicomtls.diagnose import EXPLANATIONS
    from dicomtls.init_policy import find_rules, observed_cells, refuse_overwrite, render, usage, write_policy

    if (results is None) == (manifests is None):
        raise UsageError("say what to pin: --from OUT/results.json (a run's), or --manifests PATH (run it now)")
    target = Path(write)
    refuse_overwrite(target, force)  # before a run of minutes, not after it
    console = _console()
    if results is not None:
        result, source = api.read_results(results), results
    else:
        assert manifests is not None
        deadlines = parse_timeout(timeout)
        parallel = parse_jobs(jobs)
        prepared = api.matrix((), manifests=manifests, out=out, backend=backend, jobs=parallel, timeout=deadlines,
                              notes=console.print)
        with interruptible():
            result = prepared.run(ConsoleProgress(console, parallel))
        print_result(result, console)
        _write_reports(json_report.to_dict(result), prepared.out, None, console)
        source = f"--manifests {manifests}"
    failed = [e.name for e in result.environments if e.error]
    if failed:
        console.print(f"init: {', '.join(failed)} did not start: nothing written, since what did not run cannot be "
                      "pinned; fix it and run init again", highlight=False, markup=False)
        return 1
    rules = find_rules(observed_cells(result))
    if not rules:
        console.print("init: no cell ended (every one timed out or could not run): nothing to pin, nothing written",
                      highlight=False, markup=False)
        return 1
    text = render(result, rules, usage(result, write, manifests), source, lambda r: EXPLANATIONS[r][0])
    write_policy(target, text, force)
    console.print(f"init: wrote {write}: {len(rules)} cell rules pinning {len(observed_cells(result))} cells; check a "
                  f"later run with `{usage(result, write, manifests)}`", highlight=False, markup=False)
    return 0
