"""Code outside ``backends/`` asks what a backend can do (``Backend.brings_clients``, ``runs_upstream_images``), never
which one it is: a new backend declares its capabilities on its class and every task follows, with no
``if backend.name == "docker"`` to find and extend. A backend's name stays for people and records (the run header,
results.json, messages) and for a scenario's ``backends:`` list, which is the user's data: membership in it
(``backend.name in scenario.backends``) compares with no literal and is not caught here."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

import dicomtls
from dicomtls.backends import BACKENDS, Backend, backend_class

SRC = Path(dicomtls.__file__).parent
OWNER = "backends/"
"""Where naming a backend is the point: the classes themselves, and ``backend_class``, the registry by name."""
EXCEPTIONS: dict[tuple[str, str], str] = {}
"""(module, backend name) -> why that module may compare a backend's name with a literal; none needed today."""


def _named(node: ast.expr) -> list[str]:
    """The backend names a comparison's operand spells out: a string, or a tuple, list or set of them."""
    if isinstance(node, ast.Constant) and node.value in BACKENDS:
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [name for element in node.elts for name in _named(element)]
    return []


def name_comparisons(source: str) -> list[tuple[int, str]]:
    """(line, name) for every ``==``, ``!=``, ``in``, ``not in`` and ``match`` case against a backend's name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            found += [(node.lineno, name) for operand in (node.left, *node.comparators) for name in _named(operand)]
        elif isinstance(node, ast.MatchValue):
            found += [(node.lineno, name) for name in _named(node.value)]
    return found


def comparisons_outside_backends() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        if not module.startswith(OWNER):
            found += [(module, line, name) for line, name in name_comparisons(path.read_text())]
    return found


def test_no_code_outside_the_backends_branches_on_a_backends_name() -> None:
    named = [f"{module}:{line}: {name!r}" for module, line, name in comparisons_outside_backends()
             if (module, name) not in EXCEPTIONS]
    assert not named, ("these compare a backend's name with a literal: declare what they need as a capability "
                       "on the backend classes (dicomtls.backends.Backend) and ask it instead:\n" + "\n".join(named))


def test_every_exception_is_still_needed() -> None:
    used = {(module, name) for module, _, name in comparisons_outside_backends()}
    assert set(EXCEPTIONS) <= used, f"no longer needed, remove them: {sorted(set(EXCEPTIONS) - used)}"


@pytest.mark.parametrize("source", ['docker = backend.name == "docker"', 'if self.backend != "local": pass',
                                    'ok = backend in ("local", "docker")',
                                    'match backend.name:\n    case "docker": pass'])
def test_the_check_sees_each_way_of_branching_on_a_name(source: str) -> None:
    assert name_comparisons(source)


def test_membership_in_a_scenarios_backends_list_is_not_a_branch_on_a_name() -> None:
    assert not name_comparisons("if backend.name not in scenario.backends: pass")


CAPABILITIES = [name for name, hint in typing.get_type_hints(Backend).items()
                if typing.get_origin(hint) is typing.ClassVar]


def test_the_protocol_declares_capabilities() -> None:
    assert set(CAPABILITIES) >= {"brings_clients", "runs_upstream_images"}


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_declares_every_capability_on_its_class(name: str) -> None:
    cls = backend_class(name)
    missing = [capability for capability in CAPABILITIES if not isinstance(cls.__dict__.get(capability), bool)]
    assert not missing, f"{cls.__name__} does not declare {', '.join(missing)}"
