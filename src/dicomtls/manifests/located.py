"""Where a setting came from (file and line), so every report line and every error can point the user at it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
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


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def yaml_line(node: yaml.Node | None, path: str) -> int | None:
    """The 1-based line of the setting at ``path`` ("static_resources.listeners[1].name", the form the readers
    name fields in) in a composed YAML document: its key's line for a mapping entry, its item's for a list index;
    None when ``node`` is None or the path is not in it. A plain load loses the marks; a composed node keeps them."""
    line = None
    for key, index in _STEP.findall(path):
        if key and isinstance(node, yaml.MappingNode):
            entry = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
            if entry is None:
                return None
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
            line = node.start_mark.line + 1
        else:
            return None
    return line
