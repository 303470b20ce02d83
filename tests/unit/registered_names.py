"""Where the package writes a registered name (a client, a component kind) as a string: what the registry tests
read, so that a name stays in the modules that declare it."""

from __future__ import annotations

import ast
from pathlib import Path

import dicomtls

SRC = Path(dicomtls.__file__).parent


def literals(registered: set[str], owners: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(module, line, name) for every string constant outside ``owners`` (module path prefixes under the package)
    that is exactly one of ``registered``."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        if module.startswith(owners):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in registered:
                found.append((module, node.lineno, node.value))
    return found
