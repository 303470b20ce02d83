"""Operations describe themselves: each DICOM operation a cell may run (the ``operation`` axis) is one module here
that says what it does and what a cell must do around it, so that adding an operation is one module plus what each
client runs for it.

An operation says its DIMSE service, the object it sends first (a ``dicomdata`` source, verified in the server's
REST API after the cell), whether that object gets a study of its own (what a query or a retrieve asks by), whether
the client must run a Storage SCP the server sends to (C-MOVE), where the server is told that destination listens,
and the server's log words that name why it failed. Nothing here runs a client: the clients' runners
(``dicomtls.probes``) read these declarations.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from dicomtls.errors import UsageError
from dicomtls.reasons import Reason

Destination = Literal["listening", "closed"]
"""Where a C-MOVE's destination points: the client's own Storage SCP, or a port where nothing listens."""

MOVE_DESTINATION_AET = "DICOMTLS-SCP"
"""The AE title of the client's Storage SCP, as the server knows it (a modality the cell declares)."""


@dataclass(frozen=True)
class ServerWords:
    """A server log line that names why the operation failed, and the reason it establishes."""

    pattern: str
    reason: Reason


class Operation:
    """One DICOM operation a scenario's ``operation`` axis may name."""

    name: ClassVar[str]
    """The ``operation:`` value in scenarios and results."""
    summary: ClassVar[str]
    """What it does, for the scenario reference."""
    dimse: ClassVar[str]
    """Its DIMSE service: C-ECHO, C-STORE, C-FIND or C-MOVE."""
    sends: ClassVar[str | None] = None
    """The object it stores first (a ``dicomdata`` source: store-ct, store-large), verified in the server's REST
    API; None: it stores nothing."""
    own_study: ClassVar[bool] = False
    """Its object gets a study of its own, so that a query or a retrieve by study finds that object only."""
    destination: ClassVar[Destination | None] = None
    """C-MOVE: where the destination the server is told of points (None: no destination)."""
    in_scenarios: ClassVar[bool] = True
    """A scenario may name it (False: only `probe --store` runs it, with the user's file)."""
    mid_transfer: ClassVar[bool] = False
    """Its object is large enough for a fault to land while it is being sent (upstream-restart, proxy-restart)."""
    server_words: ClassVar[tuple[ServerWords, ...]] = ()
    """Server log lines that name why it failed, tried in order on a failed cell's logs."""
    listing_order: ClassVar[int] = 100

    @classmethod
    def failure(cls, lines: tuple[str, ...]) -> tuple[Reason, str] | None:
        """The reason its server's words in ``lines`` establish, with the line that says so."""
        for words in cls.server_words:
            rx = re.compile(words.pattern, re.IGNORECASE)
            found = next((line for line in lines if rx.search(line)), None)
            if found is not None:
                return words.reason, found
        return None


_REGISTRY: dict[str, type[Operation]] = {}


def register(cls: type[Operation]) -> type[Operation]:
    if _REGISTRY.setdefault(cls.name, cls) is not cls:
        raise UsageError(f"operation {cls.name!r} is registered twice")
    return cls


@functools.cache
def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def listed() -> list[type[Operation]]:
    _discover()
    return sorted(_REGISTRY.values(), key=lambda o: (o.listing_order, o.name))


def names() -> list[str]:
    """The operations a scenario may name, in listing order."""
    return [o.name for o in listed() if o.in_scenarios]


def operation(name: str) -> type[Operation]:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown operation {name!r}: use one of {', '.join(names())}") from None


def of_service(*services: str) -> tuple[str, ...]:
    """The operations of these DIMSE services (what a client that speaks only those runs)."""
    return tuple(o.name for o in listed() if o.dimse in services and o.in_scenarios)
