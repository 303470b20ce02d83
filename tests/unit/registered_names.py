"""Where the package writes a registered name (a client, a component kind) as a string: what the registry tests
read, so that a name stays in the modules that declare it."""

from __future__ import annotations

import ast
import re
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


def prose_mentions(registered: set[str], modules: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(module, line, name) for every registered name (any case, as a whole word: ``dcmtk`` is not found in
    ``dcmtk-stunnel``) inside a text the user reads, in ``modules`` (module path prefixes under the package): every
    string constant, f-strings' parts included, but docstrings, which are the developers'."""
    pattern = word_pattern(registered)
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        if not module.startswith(modules):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        docstrings = {id(node.value) for node in ast.walk(tree)
                      if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found += [(module, node.lineno, name) for name in dict.fromkeys(pattern.findall(node.value))]
    return found


def word_pattern(registered: set[str]) -> re.Pattern[str]:
    """Any of ``registered`` as a whole word, any case; a hyphen joins words (``dcmtk-stunnel`` is one)."""
    return re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, sorted(registered, key=len, reverse=True)))
                      + r")(?![\w-])", re.IGNORECASE)
