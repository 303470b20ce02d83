"""What each Invoke task does, as plain functions: tasks.py only parses options and maps errors to exit codes."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from dicomtls.backends import EnvironmentFailed, get_backend, state_dir
from dicomtls.backends.local import LocalProcess, stop_process
from dicomtls.errors import UsageError
from dicomtls.matrix import plan_environments, run_matrix, start_environment
from dicomtls.pki import PkiSpec, ensure_pki
from dicomtls.report import json as json_report
from dicomtls.report import junit
from dicomtls.report.console import ConsoleProgress, print_result
from dicomtls.scenario import load_scenarios


@contextmanager
def interruptible() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so `finally` blocks tear environments down either way."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _console() -> Console:
    """A terminal gets rich output at its width; a CI log gets long unwrapped lines."""
    console = Console()
    return console if console.is_terminal else Console(width=240, soft_wrap=True)


def _out_dir(out: str) -> Path:
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {out} ({exc.strerror}): choose another --out") from None
    return path


def matrix(scenarios: list[str] | None, out: str, backend: str, force_pki: bool = False) -> int:
    """Run the matrix and write the reports; the exit status says whether every cell was as expected."""
    loaded = load_scenarios(scenarios)
    out_path = _out_dir(out)
    chosen = get_backend(backend, out_path / "envs")
    console = _console()
    with interruptible():
        result = run_matrix(loaded, out_path, chosen, ConsoleProgress(console), force_pki=force_pki)
    json_report.write(result, out_path / "results.json")
    junit.write(result, out_path / "junit.xml")
    print_result(result, console)
    console.print(f"reports: {out_path / 'results.json'}, {out_path / 'junit.xml'}", highlight=False)
    return result.exit_code


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
    """Start a scenario's environments and leave them running for hand probing."""
    if not scenarios:
        raise UsageError("name the scenario to start: invoke up --scenario NAME")
    state = _state_file()
    if state.exists():
        raise UsageError(f"environments are already up (recorded in {state}): run `invoke down` first")
    loaded = load_scenarios(scenarios)
    out_path = _out_dir(out)
    chosen = get_backend(backend, out_path / "envs")
    groups = plan_environments(loaded, out_path / "pki")
    if port is not None and len(groups) > 1:
        raise UsageError(f"--port fixes one entry port but the scenarios start {len(groups)} environments: drop --port")
    console = _console()
    started: list[dict[str, object]] = []
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
                    "sni_names": list(group.plan.server_names),
                    "ca": str(pki_files.ca_cert),
                    "client_cert": str(pki_files.client_fullchain),
                    "client_key": str(pki_files.client_key),
                    "orthanc_rest": env.rest_url,
                    "logs": {k: str(v) for k, v in env.logs.items()},
                    "processes": [asdict(h) for h in env.handles if isinstance(h, LocalProcess)],
                }
                started.append(record)
                state.parent.mkdir(parents=True, exist_ok=True)
                state.write_text(json.dumps(started, indent=2))
    except (EnvironmentFailed, KeyboardInterrupt):
        down()
        raise
    for r in started:
        console.print(
            f"[bold]{r['environment']}[/]: {r['address']}:{r['port']}  SNI {', '.join(r['sni_names'])}  "  # type: ignore[arg-type]
            f"CA {r['ca']}  client cert {r['client_cert']} key {r['client_key']}  REST {r['orthanc_rest']}",
            highlight=False,
        )
        console.print(
            f"  try: /usr/bin/echoscu -v -aec ORTHANC +tls {r['client_key']} {r['client_cert']} -rc +cf {r['ca']} "
            f"{r['address']} {r['port']}",
            highlight=False, markup=False,
        )
    console.print("stop them with: invoke down")


def down() -> int:
    """Stop whatever `invoke up` left running; returns how many processes were stopped."""
    state = _state_file()
    if not state.exists():
        return 0
    try:
        records = json.loads(state.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{state} is unreadable: stop the processes by hand, then delete it") from None
    stopped = 0
    for record in records:
        for proc in reversed(record.get("processes", [])):
            p = LocalProcess(**proc)
            if p.alive():
                stopped += 1
            stop_process(p)
    state.unlink()
    return stopped
