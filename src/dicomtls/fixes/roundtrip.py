"""Edit one YAML document of a user's file and change nothing else: ruamel.yaml round-trips the document
(comments, key order, quoting), and only the lines the edit changed are carried into the original text, so the
file's own spacing (``{ a: 1 }`` flow mappings, which ruamel would write ``{a: 1}``) stays as it was."""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Callable
from typing import Any

from ruamel.yaml import YAML

_SEPARATOR = re.compile(r"^---(\s|$)")


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def _dump(data: Any) -> str:
    stream = io.StringIO()
    _yaml().dump(data, stream)
    return stream.getvalue()


def load(text: str) -> Any:
    """One document as round-trip data (None for an empty one or one ruamel cannot read)."""
    try:
        return _yaml().load(text)
    except Exception:  # noqa: BLE001 - ruamel raises several error types; such a document is not edited
        return None


def split_documents(text: str) -> list[str]:
    """The file's text cut before each ``---`` line; joined again they are the file, byte for byte."""
    parts: list[str] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if _SEPARATOR.match(line) and current:
            parts.append("".join(current))
            current = []
        current.append(line)
    parts.append("".join(current))
    return parts


def _transplant(original: str, before: str, after: str) -> str:
    """``original`` with the changes from ``before`` (its round-trip dump) to ``after`` (the edited dump) applied;
    the whole edited dump where a change touches a line the round trip reformatted."""
    old, base, new = original.splitlines(keepends=True), before.splitlines(keepends=True), \
        after.splitlines(keepends=True)
    to_old: dict[int, int] = {}
    for block in difflib.SequenceMatcher(None, old, base, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            to_old[block.b + k] = block.a + k
    result = list(old)
    changes = [op for op in difflib.SequenceMatcher(None, base, new, autojunk=False).get_opcodes() if op[0] != "equal"]
    for _, i1, i2, j1, j2 in reversed(changes):
        if i1 < i2:
            if not all(k in to_old and to_old[k] == to_old[i1] + (k - i1) for k in range(i1, i2)):
                return after
            start, end = to_old[i1], to_old[i1] + (i2 - i1)
        elif i1 in to_old:
            start = end = to_old[i1]
        elif i1 - 1 in to_old:
            start = end = to_old[i1 - 1] + 1
        elif i1 == 0:
            start = end = 0
        else:
            return after
        result[start:end] = new[j1:j2]
    return "".join(result)


def edit_document(text: str, chosen: Callable[[Any], bool], edit: Callable[[Any], None]) -> str | None:
    """The file's text with the first document ``chosen`` accepts changed by ``edit`` (which mutates the
    round-trip data in place); None when no document is chosen."""
    parts = split_documents(text)
    for index, part in enumerate(parts):
        body = _SEPARATOR.sub("", part, count=1) if _SEPARATOR.match(part) else part
        head = part[: len(part) - len(body)]
        data = load(body)
        if data is None or not chosen(data):
            continue
        before = _dump(data)
        edit(data)
        parts[index] = head + _transplant(body, before, _dump(data))
        return "".join(parts)
    return None


def append_document(text: str, data: dict[str, Any]) -> str:
    """The file's text with one more document at its end."""
    ending = "" if text.endswith("\n") or not text else "\n"
    return f"{text}{ending}---\n{_dump(data)}"
