"""A bug in dicomtls is a crash of dicomtls: never a host's, cell's or user's failure; and how an unexpected
exception is named where it is a result's error instead (a scan's, a host's).

Where code runs something that can fail for reasons outside dicomtls (a host that
does not answer, a client that errs), the expected failures are caught by type and
become that host's or cell's result; anything else that escapes is a bug here, and
blaming the host for it would send the user after a problem they do not have. Such
code turns the exception into :class:`Crashed` with :func:`crashed`: the task prints
one line naming the log and exits 1. Where one bug must not cost the rest of a run (a
runner thread, one host of an inventory), :func:`recorded` names it as that
environment's, cell's or host's error instead, and the run exits 1. Either way the
traceback goes to OUT/crash.log, appended, so every failure of a run is kept.
"""

from __future__ import annotations

import threading
import traceback
from datetime import datetime, timezone
from pathlib import Path

CRASH_LOG = "crash.log"
_LOG_LOCK = threading.Lock()  # runner threads record side by side


class Crashed(Exception):
    """dicomtls hit a bug; ``log`` holds the traceback. Tasks print the message as one line and exit 1."""

    def __init__(self, what: str, log: Path) -> None:
        super().__init__(f"crashed: {what}; the traceback is in {log}: please report it with that file")
        self.log = log


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``: an unexpected exception, named on one line."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _log(exc: BaseException, summary: str, out: Path) -> Path:
    log = out / CRASH_LOG
    with _LOG_LOCK:
        out.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as f:
            f.write(f"--- {datetime.now(timezone.utc).isoformat(timespec='seconds')} {summary}\n")
            f.write("".join(traceback.format_exception(exc)))
    return log


def crashed(exc: BaseException, what: str, out: Path) -> Crashed:
    """Append ``exc``'s traceback to OUT/crash.log, headed by ``what`` was being done, and return the Crashed
    to raise (``raise crashed(...) from None``: the traceback is in the log, not on the terminal)."""
    summary = f"{what}: {first_line(exc)}"
    return Crashed(summary, _log(exc, summary, out))


def recorded(exc: BaseException, what: str, out: Path) -> str:
    """dicomtls's own failure at ``what``, kept as a result's error: its traceback appended to OUT/crash.log, and
    its first line (naming the log) returned for the reports."""
    _log(exc, f"{what}: {first_line(exc)}", out)
    return f"{first_line(exc)} (traceback in {CRASH_LOG})"
