"""Load: many modalities sending at once, through each proxy and straight to Orthanc, side by side.

What users ask once TLS works is "does my ingress slow my studies?". Each target is a real environment
(the same ones the scenarios describe), and at each concurrency level that many threads open pynetdicom
associations at once, each sending a small series of C-STOREs. Targets alternate within every round, so a
noisy machine skews all alike. Speed counts for nothing unless every object then sits in Orthanc exactly
once and intact, which its REST API is asked after the timed part.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pynetdicom import AE
from rich.table import Table

from dicomtls import components
from dicomtls.backends import Backend, RunningEnvironment
from dicomtls.clients.pynetdicom import Pynetdicom as LoadClient
from dicomtls.dicomdata import TestObject, make_object
from dicomtls.environment import start_environment, target_of
from dicomtls.errors import UsageError
from dicomtls.orthanc_rest import instances_of, verify_stored
from dicomtls.plan import plan_environments
from dicomtls.probes import CALLING_AET, Target
from dicomtls.probes.pynetdicom import TIMEOUT_S, tls_context
from dicomtls.runner import auto_jobs
from dicomtls.scenario import Probe, load_scenarios

DIRECT = "direct"


@dataclass(frozen=True)
class LoadTarget:
    """A path to Orthanc, as one environment of a shipped scenario runs it."""

    name: str
    scenario: str
    environment: str


# Each component's own (Component.load_target), in their listing order: a proxy by its kind, the server direct.
TARGETS = tuple(LoadTarget(DIRECT if c.role == "server" else c.kind, *c.load_target)
                for c in components.listed() if c.load_target)
DEFAULT_LEVELS = (1, 8, 32)
# Every association as a modality sends: the right name, the valid client certificate (mTLS targets need it).
_PROBE = Probe(LoadClient.name, "right", "valid", "store-ct")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile, interpolated between the two nearest ranks (numpy's default), so p99 of a few
    samples lies between the two slowest instead of snapping to one of them."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Association:
    seconds: float
    stored: int  # C-STOREs answered with success
    error: str | None = None  # why the association did not complete every C-STORE


@dataclass
class LevelResult:
    """One target at one concurrency level, over every round."""

    target: str
    concurrency: int
    associations: int = 0
    failed: int = 0  # associations that did not store every object
    objects: int = 0
    unverified: int = 0  # objects sent but not in Orthanc exactly once and intact
    bytes: int = 0
    wall_s: float = 0.0  # summed over rounds: the time from the first association's start to the last's end
    latencies_s: list[float] = field(default_factory=list)  # per association: associate, C-STOREs, release
    errors: list[str] = field(default_factory=list)  # the first few, in the client's or Orthanc's words

    @property
    def associations_per_s(self) -> float:
        return (self.associations - self.failed) / self.wall_s if self.wall_s else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.wall_s if self.wall_s else 0.0

    @property
    def p50_s(self) -> float:
        return percentile(self.latencies_s, 50)

    @property
    def p99_s(self) -> float:
        return percentile(self.latencies_s, 99)

    def note(self, error: str) -> None:
        if len(self.errors) < 5:
            self.errors.append(error)


@dataclass
class LoadResult:
    backend: str
    levels: list[int]
    runs: int
    associations_per_worker: int
    objects_per_association: int
    object_bytes: int
    targets: list[str]
    cells: list[LevelResult] = field(default_factory=list)

    def cell(self, target: str, concurrency: int) -> LevelResult:
        return next(c for c in self.cells if c.target == target and c.concurrency == concurrency)

    def ratio(self, target: str, concurrency: int) -> float | None:
        """Throughput through ``target`` as a share of straight to Orthanc: 1.0 is no slower than direct."""
        if DIRECT not in self.targets or target == DIRECT:
            return None
        direct = self.cell(DIRECT, concurrency).mb_per_s
        return self.cell(target, concurrency).mb_per_s / direct if direct else None

    @property
    def unverified(self) -> int:
        return sum(c.unverified for c in self.cells)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.cells)

    @property
    def exit_code(self) -> int:
        return 1 if self.unverified or self.failed else 0

    def to_dict(self) -> dict[str, object]:
        doc = asdict(self)
        for record, cell in zip(doc["cells"], self.cells):  # type: ignore[call-overload]
            del record["latencies_s"]
            record.update(associations_per_s=round(cell.associations_per_s, 2), mb_per_s=round(cell.mb_per_s, 3),
                          p50_s=round(cell.p50_s, 4), p99_s=round(cell.p99_s, 4),
                          ratio_to_direct=_rounded(self.ratio(cell.target, cell.concurrency)))
            record["wall_s"] = round(cell.wall_s, 3)
        return doc


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def parse_levels(text: str | None) -> list[int]:
    """``--concurrency 1,8,32``: associations open at once, each level measured on its own."""
    if text is None:
        return list(DEFAULT_LEVELS)
    parts = [p.strip() for p in str(text).split(",")]
    if not all(p.isdecimal() and int(p) >= 1 for p in parts):
        raise UsageError(f"--concurrency {text}: give whole numbers of associations at once, e.g. 1,8,32")
    return sorted({int(p) for p in parts})


def choose_targets(names: list[str] | None) -> list[LoadTarget]:
    if not names:
        return list(TARGETS)
    known = {t.name: t for t in TARGETS}
    if unknown := [n for n in names if n not in known]:
        raise UsageError(f"--target {unknown[0]}: choose from {', '.join(known)}")
    return [t for t in TARGETS if t.name in names]


def _associate(target: Target, objects: list[TestObject]) -> Association:
    """One modality's association: open it, send its series, release it."""
    ae = AE(ae_title=CALLING_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    ae.connection_timeout = 5
    ae.add_requested_context(objects[0].sop_class_uid, objects[0].transfer_syntax)
    stored, error = 0, None
    began = time.monotonic()
    try:
        assoc = ae.associate(target.address.host, target.address.port, ae_title=target.called_aet,
                             tls_args=tls_context(target, _PROBE))  # type: ignore[arg-type]
        if not assoc.is_established:
            error = "association rejected" if assoc.is_rejected else "association not established"
        else:
            try:
                for sent in objects:
                    status = getattr(assoc.send_c_store(sent.path), "Status", None)
                    if status != 0x0000:
                        error = f"C-STORE status {status:#06x}" if status is not None else "no C-STORE response"
                        break
                    stored += 1
            finally:
                assoc.release()
    except (OSError, RuntimeError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        ae.shutdown()
    return Association(time.monotonic() - began, stored, error)


def _verify(rest_url: str, sent: TestObject) -> str | None:
    """None when Orthanc holds the object exactly once with the sent bytes; otherwise what is wrong."""
    check = verify_stored(rest_url, sent)
    if not check.ok:
        return check.detail
    found = instances_of(rest_url, sent.sop_instance_uid)
    return None if len(found) == 1 else f"Orthanc holds {len(found)} instances of {sent.sop_instance_uid}"


def measure(env: RunningEnvironment, concurrency: int, associations_per_worker: int, objects_per_association: int,
            workdir: Path, into: LevelResult) -> None:
    """``concurrency`` workers, each opening ``associations_per_worker`` associations one after another; then
    every object sent is looked up in Orthanc. Objects are written before the clock starts."""
    target = target_of(env)
    batches = [[make_object("store-ct", workdir) for _ in range(objects_per_association)]
               for _ in range(concurrency * associations_per_worker)]
    done: list[tuple[list[TestObject], Association]] = []
    lock = threading.Lock()
    start = threading.Barrier(concurrency)

    def worker(mine: list[list[TestObject]]) -> None:
        start.wait()
        for batch in mine:
            outcome = _associate(target, batch)
            with lock:
                done.append((batch, outcome))

    threads = [threading.Thread(target=worker, args=(batches[i::concurrency],), name=f"load-{i}")
               for i in range(concurrency)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    into.wall_s += time.monotonic() - began
    for batch, outcome in done:
        into.associations += 1
        into.latencies_s.append(outcome.seconds)
        into.bytes += sum(o.size for o in batch[:outcome.stored])
        if outcome.error:
            into.failed += 1
            into.note(outcome.error)
    sent = [o for batch in batches for o in batch]
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="verify") as pool:
        problems = list(pool.map(lambda o: _verify(env.rest_url, o), sent))
    into.objects += len(sent)
    for problem in problems:
        if problem:
            into.unverified += 1
            into.note(problem)
    for o in sent:
        o.path.unlink(missing_ok=True)


def run_load(backend: Backend, out: Path, targets: list[LoadTarget], levels: list[int], runs: int,
             associations_per_worker: int, objects_per_association: int, say: Callable[[str], None]) -> LoadResult:
    """Start every target's environment once, then per round and level measure each target in turn (the
    order rotating each round), and stop them all, whatever happened."""
    scenarios = load_scenarios(list(dict.fromkeys(t.scenario for t in targets)))
    for scenario in scenarios:
        if backend.name not in scenario.backends:
            raise UsageError(f"scenario {scenario.name} runs on {', '.join(scenario.backends)}, not {backend.name}: "
                             f"use --backend {scenario.backends[0]} or leave its target out")
    groups = {(g.plan.name, s): g for g in plan_environments(scenarios, out / "pki") for s in g.scenarios}
    plans = {t.name: groups[(t.environment, t.scenario)].plan for t in targets}
    sample = make_object("store-ct", out / "load")
    sample.path.unlink()
    result = LoadResult(backend.name, levels, runs, associations_per_worker, objects_per_association, sample.size,
                        [t.name for t in targets])
    result.cells = [LevelResult(t.name, level) for level in levels for t in targets]
    envs: dict[str, RunningEnvironment] = {}
    # Local processes die with the thread that started them: these threads live until the environments stop.
    pool = ThreadPoolExecutor(max_workers=min(len(targets), auto_jobs()), thread_name_prefix="environment")
    try:
        futures = {name: pool.submit(start_environment, backend, plan) for name, plan in plans.items()}
        failure: BaseException | None = None
        for name, future in futures.items():
            try:
                envs[name] = future.result()
                say(f"{name}: {plans[name].name} up at {envs[name].entry}")
            except BaseException as exc:  # the others are stopped below, then this is raised
                failure = failure or exc
        if failure is not None:
            raise failure
        for round_ in range(runs):
            for level in levels:
                shift = round_ % len(targets)
                for t in targets[shift:] + targets[:shift]:
                    cell = result.cell(t.name, level)
                    measure(envs[t.name], level, associations_per_worker, objects_per_association,
                            out / "load" / t.name, cell)
                    say(f"round {round_ + 1}: {t.name} at {level} concurrent: {cell.associations_per_s:.1f} assoc/s "
                        f"so far, {cell.failed} failed, {cell.unverified} unverified")
    finally:
        for env in envs.values():
            backend.stop(env)
        pool.shutdown(wait=True)
        backend.finish()
        shutil.rmtree(out / "load", ignore_errors=True)
    return result


def table(result: LoadResult) -> Table:
    """One row per level and target, direct Orthanc beside the proxies it is the yardstick for."""
    grid = Table(title=f"C-STORE load on the {result.backend} backend: {result.runs} round(s), each worker "
                       f"{result.associations_per_worker} association(s) of {result.objects_per_association} "
                       f"object(s) of {result.object_bytes} bytes")
    for name in ("target", "concurrent", "associations", "assoc/s", "MB/s", "p50 ms", "p99 ms", "failed",
                 "unverified", "MB/s vs direct"):
        grid.add_column(name, justify="left" if name == "target" else "right")
    for level in result.levels:
        for name in result.targets:
            c = result.cell(name, level)
            ratio = result.ratio(name, level)
            grid.add_row(name, str(level), str(c.associations), f"{c.associations_per_s:.1f}", f"{c.mb_per_s:.2f}",
                         f"{c.p50_s * 1000:.0f}", f"{c.p99_s * 1000:.0f}", _flag(c.failed), _flag(c.unverified),
                         "" if ratio is None else f"{ratio:.2f}")
        grid.add_section()
    return grid


def _flag(count: int) -> str:
    return f"[bold red]{count}[/]" if count else "0"


def write(result: LoadResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
