"""dicomtls as a Python library: run a matrix, probe an endpoint, scan one, read a run's results back, all typed.

The ``dicomtls`` command is a client of these functions: what it prints, the reports it writes and its exit
statuses are its own; what runs is what runs here. Errors in what a caller passes are ``UsageError`` (one line
saying what is wrong and how to fix it); an environment that did not start is
``dicomtls.backends.EnvironmentFailed``. A run is silent unless given a ``progress``, and tears down everything it
started when it returns, raises or is interrupted (KeyboardInterrupt).

```python
from dicomtls import api

result = api.run_matrix(["haproxy-tls"], out="out", backend="local")
for cell in result.cells:
    if cell.verdict is api.Verdict.UNEXPECTED:
        print(cell.cell.id, cell.outcome, cell.reason, cell.fix)
api.write_reports(result, "out")
```

Importing this module loads no client library, backend or component: they load when a function runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomtls.errors import UsageError
from dicomtls.progress import Progress, SilentProgress
from dicomtls.reasons import Facts, PeerAlert, Reason, Side
from dicomtls.results import CellResult, EnvironmentInfo, MatrixResult, Outcome, RunInfo, Verdict

if TYPE_CHECKING:
    from dicomtls.manifests.charts import ChartValues
    from dicomtls.backends import Backend
    from dicomtls.deadlines import Deadlines
    from dicomtls.probe_endpoint import Request as ProbeRequest
    from dicomtls.resolve import Unresolved
    from dicomtls.scan import ScanResult
    from dicomtls.scenario import Scenario
    from dicomtls.shard import Shard

__all__ = [
    "CellResult", "EnvironmentInfo", "Facts", "MatrixResult", "MatrixRun", "Outcome", "PeerAlert", "ProbeRequest",
    "Progress", "Reason", "RunInfo", "ScanResult", "Scenario", "Side", "SilentProgress", "Unresolved", "UsageError",
    "Verdict", "chart_values", "matrix", "output_directory", "probe", "probe_endpoints", "read_results", "run_matrix", "scan",
    "write_reports",
]

_LAZY = {"ProbeRequest": ("dicomtls.probe_endpoint", "Request"), "ScanResult": ("dicomtls.scan", "ScanResult"),
         "Scenario": ("dicomtls.scenario", "Scenario"), "Unresolved": ("dicomtls.resolve", "Unresolved")}


def __getattr__(name: str) -> Any:
    """The types that live with what runs (a scan's result, a probe request, a scenario), imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    return getattr(importlib.import_module(module), attribute)


def _deadlines(timeout: str | Deadlines | None) -> Deadlines:
    from dicomtls.deadlines import Deadlines, parse_timeout

    return timeout if isinstance(timeout, Deadlines) else parse_timeout(timeout)


def _jobs(jobs: int | None) -> int:
    from dicomtls.runner import auto_jobs

    if jobs is None:
        return auto_jobs()
    if jobs < 1:
        raise UsageError(f"jobs {jobs}: give a whole number of environments at once (1 or more), or None (auto)")
    return jobs


def output_directory(out: str | Path) -> Path:
    """``out`` made (with its parents) and absolute: components run in their own working directories and read
    their configuration by this path."""
    path = Path(out).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {out} ({exc.strerror}): choose another --out") from None
    return path


@dataclass(frozen=True)
class MatrixRun:
    """A matrix ready to run (what ``matrix`` chose): its scenarios, on its backend, under ``out``."""

    scenarios: list[Scenario]
    backend: Backend
    out: Path
    jobs: int
    deadlines: Deadlines
    shard: Shard | None = None
    force_pki: bool = False

    def run(self, progress: Progress | None = None) -> MatrixResult:
        """Start each environment once, run its cells, tear it down; ``progress`` hears of each (default: silence)."""
        from dicomtls.runner import run_matrix as run_plan

        return run_plan(self.scenarios, self.out, self.backend, progress or SilentProgress(), force_pki=self.force_pki,
                        shard=self.shard, jobs=self.jobs, deadlines=self.deadlines)


def matrix(scenarios: Sequence[str | Path] = (), *, manifests: str | Path | None = None, out: str | Path = "out",
           backend: str | None = None, jobs: int | None = None, timeout: str | Deadlines | None = None,
           shard: str | None = None, force_pki: bool = False,
           notes: Callable[[str], None] | None = None, values: Sequence[str | Path] = (),
           sets: Sequence[str] = (), calling_aet: str | None = None) -> MatrixRun:
    """Load and check a matrix without running it.

    ``scenarios``: bundled scenario names or paths to .yaml files; none (and no ``manifests``): every default
    scenario. ``manifests``: a file or directory of Istio/Traefik/Compose/Helm/Envoy/nginx/HAProxy configuration,
    run as one more scenario, observed. ``backend``: local, docker or auto (None: $DICOMTLS_BACKEND, else auto).
    ``jobs``: environments at once (None: the machine's choice). ``timeout``: ``"run=S,cell=S"`` (or Deadlines),
    counted from now. ``shard``: ``"K/N"``. ``notes``: hears why a default scenario or a manifest probe group was
    left out on this backend (default: nobody). ``values`` and ``sets``: what the Helm charts among ``manifests``
    are rendered with, as `helm template --values FILE --set KEY=VALUE` takes them. ``calling_aet``: the AE title
    every probe group that names none calls as (default: DICOMTLS)."""
    from dicomtls import clients as client_registry
    from dicomtls.backends import get_backend
    from dicomtls.scenario import load_scenarios, manifest_scenario, runnable
    from dicomtls.shard import parse_shard

    say = notes or (lambda _: None)
    rendered_with = chart_values(manifests, [str(v) for v in values], list(sets))
    deadlines = _deadlines(timeout)
    named = [str(s) for s in scenarios]
    loaded = load_scenarios(named) if named or manifests is None else []
    part = parse_shard(shard) if shard else None
    parallel = _jobs(jobs)
    out_path = output_directory(out)
    chosen = get_backend(backend, out_path / "envs")
    if manifests is not None:
        loaded.append(manifest_scenario(Path(manifests), chosen.brings_clients, rendered_with))
        for left_out in client_registry.manifest_groups_left_out(chosen.brings_clients):
            say(f"manifests: {left_out} needs a backend that brings its own clients: left out on {chosen.name}")
    loaded = runnable(loaded, chosen.name, explicit=bool(named or manifests is not None), say=say)
    trimmed = []
    for scenario in loaded:  # environments and probe groups that name other backends
        kept, notes_left_out = scenario.on_backend(chosen.name)
        for note in notes_left_out:
            say(note)
        trimmed.append(kept)
    loaded = trimmed
    if calling_aet is not None:
        loaded = [_calling_as(s, calling_aet) for s in loaded]
    return MatrixRun(loaded, chosen, out_path, parallel, deadlines, part, force_pki)


def _calling_as(scenario: Scenario, aet: str) -> Scenario:
    """``scenario`` calling as ``aet`` wherever it names no calling AE title; a usage error if a cell then has no
    expectation or ``aet`` is no AE title."""
    from dicomtls.association import check_ae_title

    try:
        return scenario.calling_as(check_ae_title(aet, "calling_aet"))
    except ValueError as exc:
        raise UsageError(f"--calling-aet {aet}: scenario {scenario.name}: {exc}") from None


def chart_values(manifests: str | Path | None, values: list[str], sets: list[str]) -> ChartValues:
    """``values`` files and ``sets`` (KEY=VALUE) as Helm takes them, checked before anything starts: they render
    the charts of ``manifests``."""
    from dicomtls.manifests.charts import ChartValues

    if (values or sets) and not manifests:
        raise UsageError("--values and --set render the Helm charts of --manifests: give --manifests CHART_DIR too")
    for value in values:
        if not os.path.isfile(value):
            raise UsageError(f"--values {value}: no such file: give the values file `helm template --values` reads")
    for expression in sets:
        key, equals, _ = expression.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"--set {expression}: write KEY=VALUE (e.g. --set dicom.hostSNI=dicom.example.test), "
                             "as `helm template --set` takes it")
    return ChartValues(tuple(Path(v).resolve() for v in values), tuple(sets))


def run_matrix(scenarios: Sequence[str | Path] = (), *, manifests: str | Path | None = None, out: str | Path = "out",
               backend: str | None = None, jobs: int | None = None, timeout: str | Deadlines | None = None,
               shard: str | None = None, force_pki: bool = False, progress: Progress | None = None,
               notes: Callable[[str], None] | None = None) -> MatrixResult:
    """Run a matrix (see ``matrix`` for the arguments) and return its result; nothing is written but the
    environments' files and logs under ``out`` (``write_reports`` writes the reports)."""
    return matrix(scenarios, manifests=manifests, out=out, backend=backend, jobs=jobs, timeout=timeout, shard=shard,
                  force_pki=force_pki, notes=notes).run(progress)


def probe_endpoints(requests: Sequence[ProbeRequest], *, out: str | Path = "out", pins: Sequence[str] = (),
                    jobs: int | None = None, timeout: str | Deadlines | None = None,
                    progress: Progress | None = None) -> MatrixResult:
    """Probe existing endpoints (``dicomtls.probe_endpoint.Request`` each, exported here as ``ProbeRequest``) with
    every registered client, SNI, certificate and a few profiles; one environment per endpoint in the result.
    ``pins``: ``HOST:PORT:ADDRESS``, answers for names before the system's lookup (curl's --resolve)."""
    from dicomtls.probe_endpoint import run_probe
    from dicomtls.resolve import Resolver, parse_pin

    deadlines = _deadlines(timeout)
    resolver = Resolver(tuple(parse_pin(p) for p in pins))
    out_path = output_directory(out)
    return run_probe(list(requests), out_path, progress or SilentProgress(), resolver, _jobs(jobs), deadlines)


def probe(target: str, ca: str | Path, *, sni: str | None = None, client_cert: str | Path | None = None,
          client_key: str | Path | None = None, called_aet: str = "ORTHANC", out: str | Path = "out",
          pins: Sequence[str] = (), jobs: int | None = None, timeout: str | Deadlines | None = None,
          progress: Progress | None = None) -> MatrixResult:
    """Probe one endpoint, ``HOST:PORT``, whose certificate ``ca`` issued (see ``probe_endpoints``)."""
    from dicomtls.probe_endpoint import Request
    from dicomtls.resolve import parse_target

    aet, host, port = parse_target(target, "target")
    request = Request(host, port, _file(ca, "ca"), sni, _optional_file(client_cert, "client_cert"),
                      _optional_file(client_key, "client_key"), aet or called_aet)
    return probe_endpoints([request], out=out, pins=pins, jobs=jobs, timeout=timeout, progress=progress)


def scan(target: str, *, sni: str | None = None, ca: str | Path | None = None, client_cert: str | Path | None = None,
         client_key: str | Path | None = None, pins: Sequence[str] = ()) -> ScanResult:
    """Scan one TLS endpoint, ``HOST:PORT``: its versions, suites and chains, judged against the DICOM TLS profiles
    (PS3.15 Annex B). ``sni``: the name to send (default: the host, when it is a name). A scan that could not
    complete is the result's ``error``; a name that does not resolve raises ``Unresolved``."""
    from dicomtls.resolve import Resolver, check_name, ip_literal, parse_host_port, parse_pin
    from dicomtls.scan import Endpoint
    from dicomtls.scan import scan as scan_endpoint

    host, port = parse_host_port(target, "target")
    if (client_cert is None) != (client_key is None):
        raise UsageError("client_cert and client_key go together: give both or neither")
    name = None if ip_literal(host) else host
    sni = None if sni is None else check_name(sni, "sni")
    address = Resolver(tuple(parse_pin(p) for p in pins)).address(host, port)
    return scan_endpoint(Endpoint(address, port, sni or name, _optional_file(ca, "ca"),
                                  _optional_file(client_cert, "client_cert"), _optional_file(client_key, "client_key"),
                                  name=name))


def read_results(path: str | Path) -> MatrixResult:
    """A results.json (or the ``out`` directory holding one) as the typed result of its run. What the file does
    not record stays at its default: each cell's diagnosis facts."""
    from dicomtls.report import json as json_report

    return json_report.typed(json_report.read(Path(path)))


def write_reports(result: MatrixResult, out: str | Path) -> list[Path]:
    """results.json, junit.xml, summary.md and report.html of ``result`` in ``out``, as the command writes them."""
    from dicomtls.report import html, junit, markdown
    from dicomtls.report import json as json_report

    out_path = output_directory(out)
    doc = json_report.to_dict(result)
    written = [out_path / name for name in ("results.json", "junit.xml", "summary.md", "report.html")]
    json_report.write_document(doc, written[0])
    junit.write_document(doc, written[1])
    markdown.write(doc, written[2], None)
    html.write(doc, written[3])
    return written


def _file(path: str | Path, what: str) -> Path:
    found = Path(path)
    if not found.is_file():
        raise UsageError(f"{what} {path}: no such file")
    return found


def _optional_file(path: str | Path | None, what: str) -> Path | None:
    return None if path is None else _file(path, what)
