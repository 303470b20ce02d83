"""Where a setting came from (file and line), so every report line and every error can point the user at it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class At(BaseModel):
    """A file and, where the reader knows it, the 1-based line."""

    model_config = ConfigDict(frozen=True)
    file: Path
    line: int | None = None

    def __str__(self) -> str:
        return f"{shown(self.file)}:{self.line}" if self.line is not None else str(shown(self.file))


def shown(path: Path) -> Path:
    """A path as the user gave it: relative to the working directory when it is under it."""
    cwd = Path.cwd()
    return path.relative_to(cwd) if path.is_absolute() and path.is_relative_to(cwd) else path
