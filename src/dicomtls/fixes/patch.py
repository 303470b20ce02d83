"""A proven candidate as a unified diff against the user's files, with a/ and b/ paths from the directory that
holds the user's tree, so `patch -p1` run there (or `git apply`) applies it."""

from __future__ import annotations

import difflib
from pathlib import Path

_NO_NEWLINE = "\\ No newline at end of file\n"


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n" + _NO_NEWLINE
    return lines


def unified(changes: dict[str, tuple[str, str]]) -> str:
    """One diff over every changed file: path (relative, with the tree's own directory first) -> (old, new)."""
    return "".join(
        line for path, (old, new) in sorted(changes.items())
        for line in difflib.unified_diff(_lines(old), _lines(new), f"a/{path}", f"b/{path}", n=3))


def write(path: Path, diff: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(diff)
