"""What a run tells as it goes: the protocol the runner calls, and the progress that tells nothing (a library's
default, a bisect's). The console's live table is dicomtls.report.console.ConsoleProgress."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dicomtls.results import CellResult


class Progress(Protocol):
    """What a run tells as it goes (the console's live table, or nothing): called from the environments' threads."""

    def start(self, total: int) -> None: ...
    def environment(self, name: str, state: str) -> None: ...
    def cell_done(self, result: CellResult) -> None: ...
    def stop(self) -> None: ...


class SilentProgress:
    """Progress that says nothing: what a caller of dicomtls.api gets unless it asks for more."""

    def start(self, total: int) -> None: ...
    def environment(self, name: str, state: str) -> None: ...
    def cell_done(self, result: CellResult) -> None: ...
    def stop(self) -> None: ...
