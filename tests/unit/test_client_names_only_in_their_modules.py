"""A client is named as a string only by its own module (dicomtls.clients) and the code that runs it
(dicomtls.probes): everything else asks the registry, so a new client is one module there plus its runner."""

from __future__ import annotations

import ast
from pathlib import Path

import dicomtls
from dicomtls.clients import names

SRC = Path(dicomtls.__file__).parent
OWNERS = ("clients/", "probes/")
"""Where naming a client is the point: the client modules that declare them, and the runners."""
EXCEPTIONS: dict[tuple[str, str], str] = {}
"""(module, client) -> why that module may name it. None today."""


def client_literals() -> list[tuple[str, int, str]]:
    """(module, line, name) for every string constant outside the owners that is exactly a registered client."""
    registered = set(names())
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        if module.startswith(OWNERS):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in registered:
                found.append((module, node.lineno, node.value))
    return found


def test_no_module_outside_the_clients_names_a_client() -> None:
    named = [f"{module}:{line}: {name!r}" for module, line, name in client_literals()
             if (module, name) not in EXCEPTIONS]
    assert not named, ("these name a client by string: declare the decision on the client "
                       "(dicomtls.clients.ClientKind) and look it up instead:\n" + "\n".join(named))


def test_every_exception_is_still_needed() -> None:
    used = {(module, name) for module, _, name in client_literals()}
    assert set(EXCEPTIONS) <= used, f"no longer needed, remove them: {sorted(set(EXCEPTIONS) - used)}"


def test_the_registry_has_the_shipped_clients() -> None:
    assert {"dcmtk", "pynetdicom", "dcmtk-stunnel"} <= set(names())
