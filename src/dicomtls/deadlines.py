"""How long a run and each of its cells may take, and the watch that stops a cell's client when its time is up.

Every client has timeouts of its own (dcmtk's -to/-ta/-td, pynetdicom's), but they bound one step each, not the
cell: a peer that answers every step just in time, a client that ignores them, or a wait of dicomtls's own can keep
a cell, and so the run, going for ever. The deadlines bound both from outside. A client registers how to stop what
it runs (kill its process group, cut its socket) with the cell's watch, which calls that when the cell's time, or
the run's, is up; the cell then ends as ``timeout`` with what was seen until then.

The defaults never fire on a healthy run. Measured on a 2-core machine: the default matrix (230 cells) takes 28 s
locally, its slowest cell 1.0 s (a large C-STORE); the other local scenarios (faults, korthweb-*, haproxy-tls,
nginx-stream: 227 cells) 70 s with --jobs 2, their slowest cell 7.1 s (a fault cell that stops HAProxy's upstream
and brings it back); Docker's default matrix 85 s with --jobs 1.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from dicomtls.errors import UsageError

DEFAULT_CELL_S = 300.0
"""40 times the slowest healthy cell, and beyond what a cell's own bounds add up to on a slow path: its clients
time out after 15 s per step (dcmtk's -to/-ta/-td, pynetdicom's) with a 45 s backstop on a dcmtk run, a REST check
30 s, a fault cell's component 30 s to come back."""
DEFAULT_RUN_S = 3600.0
"""Over 40 times the default matrix on Docker with one job, and short of a CI job's usual limit, so a run that
hangs ends with its reports rather than being killed without them."""

TIMEOUT_HELP = ("deadlines in seconds: run=S for the whole run, cell=S for each cell, comma-separated (e.g. "
                f"cell=60,run=900); what runs out is reported as timeout and exits 1 (default: cell="
                f"{DEFAULT_CELL_S:.0f},run={DEFAULT_RUN_S:.0f})")


@dataclass(frozen=True)
class Deadlines:
    """The run's deadline (counted from ``started``) and each cell's time."""

    run_s: float = DEFAULT_RUN_S
    cell_s: float = DEFAULT_CELL_S
    started: float = field(default_factory=time.monotonic)

    @property
    def at(self) -> float:
        """When the run's time is up (time.monotonic)."""
        return self.started + self.run_s

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.remaining() <= 0

    def longer(self, seconds: float) -> Deadlines:
        """The same deadlines, the run's ``seconds`` longer (a soak's own length comes on top)."""
        return Deadlines(self.run_s + seconds, self.cell_s, self.started)

    def watch(self) -> CellWatch:
        """A watch for the next cell: the cell's time from now, or what is left of the run's if that ends first."""
        now = time.monotonic()
        if now + self.cell_s <= self.at:
            return CellWatch(now + self.cell_s, "cell", self.cell_s)
        return CellWatch(self.at, "run", self.run_s)


def parse_timeout(text: str | None) -> Deadlines:
    """``--timeout run=S,cell=S`` (either or both, any order); None: the defaults. Counted from now."""
    if text is None:
        return Deadlines()
    values: dict[str, float] = {}
    for part in str(text).split(","):
        name, equals, value = part.strip().partition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not equals or name not in ("run", "cell") or name in values or not (0 < seconds < math.inf):
            raise UsageError(f"--timeout {text}: give run=SECONDS and/or cell=SECONDS, comma-separated, each more "
                             "than 0 (e.g. --timeout cell=60,run=900)")
        values[name] = seconds
    return Deadlines(values.get("run", DEFAULT_RUN_S), values.get("cell", DEFAULT_CELL_S))


class CellWatch:
    """One cell's deadline. While the cell runs (``with watch:``), the stops its clients register are called from a
    timer thread when the deadline passes; ``fired`` then says so, and ``which`` deadline it was (cell or run)."""

    def __init__(self, at: float, which: str, limit_s: float) -> None:
        self.at, self.which, self.limit_s = at, which, limit_s
        self._lock = threading.Lock()
        self._stops: list[Callable[[], None]] = []
        self._fired = threading.Event()
        self._timer: threading.Timer | None = None
        self._token: object = None

    @property
    def fired(self) -> bool:
        """The timer has called the stops."""
        return self._fired.is_set()

    @property
    def passed(self) -> bool:
        """The deadline has passed: a client bounded by it (``bounded``) may have ended on its own just before the
        timer fired, and was stopped by the deadline all the same."""
        return self.fired or self.remaining() <= 0

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def __enter__(self) -> CellWatch:
        self._token = _current.set(self)
        self._timer = threading.Timer(max(0.0, self.remaining()), self._fire)
        self._timer.daemon = True
        self._timer.name = "cell-deadline"
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._timer is not None
        self._timer.cancel()
        _current.reset(self._token)  # type: ignore[arg-type]

    def _fire(self) -> None:
        with self._lock:
            self._fired.set()
            stops = list(self._stops)
        for stop in stops:
            _quietly(stop)

    @contextmanager
    def stopping(self, stop: Callable[[], None]) -> Iterator[None]:
        """``stop`` is called if the deadline passes before the block ends (at once if it has passed already)."""
        with self._lock:
            fired = self._fired.is_set()
            if not fired:
                self._stops.append(stop)
        if fired:
            _quietly(stop)
        try:
            yield
        finally:
            with self._lock:
                if stop in self._stops:
                    self._stops.remove(stop)


def _quietly(stop: Callable[[], None]) -> None:
    """A stop that fails has nothing left to stop (the process exited, the socket closed meanwhile)."""
    try:
        stop()
    except OSError:
        pass


_current: ContextVar[CellWatch | None] = ContextVar("cell_watch", default=None)


def current() -> CellWatch | None:
    """The watch of the cell this thread is running, if any."""
    return _current.get()


@contextmanager
def stopped_at_deadline(stop: Callable[[], None]) -> Iterator[None]:
    """For a client: ``stop`` ends what it runs when the current cell's deadline passes (outside a cell: never)."""
    watch = current()
    if watch is None:
        yield
        return
    with watch.stopping(stop):
        yield


def bounded(seconds: float) -> float:
    """A wait of ``seconds``, cut to what is left of the current cell's time (at least a tenth of a second, so a
    last look at a socket or a log still happens)."""
    watch = current()
    return seconds if watch is None else max(0.1, min(seconds, watch.remaining()))
