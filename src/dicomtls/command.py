"""How a dicomtls task takes its options: short flags chosen from one table, numbers checked by dicomtls.

Invoke generates a short flag from each option's first free letter, so ``-h`` on ``matrix`` was ``--shard`` and the
same letter meant different options on different tasks; and it casts a number option with ``int()`` inside its
parser, so ``--runs x`` ended in a traceback. A `Command` instead takes its short flags from `SHORT_FLAGS` (one
letter, one meaning, on every task) and reads a number option (int, float or `Port`, by its annotation or default)
as text, converting it itself: a value that is not a number is a usage error naming the option (exit 2), under the
installed ``dicomtls`` and the clone's ``invoke`` alike. Every task also has its own ``-h/--help``.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from invoke import Exit, Task
from invoke import task as invoke_task
from invoke.parser import Argument

# The short flags, by long option: a new option joins here (or stays long-only). Never h, V or l: on any task
# those are the program's own -h/--help, -V/--version and -l/--list.
SHORT_FLAGS: Mapping[str, str] = {
    "scenario": "s",
    "out": "o",
    "backend": "b",
    "jobs": "j",
    "target": "t",
    "port": "p",
    "manifests": "m",
    "inventory": "i",
    "runs": "n",
}
PROGRAM_SHORT_FLAGS = frozenset("hVl")


class Port(int):
    """A TCP port number, 1 to 65535: what an option annotated ``Port`` holds (``--port 70000`` is a usage error,
    not an OverflowError from bind())."""

    def __new__(cls, text: str | int) -> Port:
        value = super().__new__(cls, text)
        if not 1 <= value <= 65535:
            raise ValueError(f"port {value} out of range")
        return value


_NUMBERS: Mapping[type, str] = {int: "a whole number", float: "a number", Port: "a port number, 1 to 65535"}


def _number_kind(default: Any, annotation: Any) -> type | None:
    """int, float or Port when the option holds a number: by its annotation, or else by its default's type."""
    members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    declared = next((m for m in members if m in _NUMBERS), None)
    if declared is None and type(default) in _NUMBERS:  # bool is not: type(True) is bool
        return type(default)
    return declared


class Command(Task):  # type: ignore[type-arg]
    """An Invoke task whose short flags come from `SHORT_FLAGS` and whose number options are checked on call."""

    def __init__(self, body: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(body, auto_shortflags=False, **kwargs)
        hints = typing.get_type_hints(body)
        self.numbers: dict[str, type] = {}
        for name, param in self.argspec(body).parameters.items():
            kind = _number_kind(param.default, hints.get(name))
            if kind is not None:
                self.numbers[name] = kind

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        letter = SHORT_FLAGS.get(name.replace("_", "-"))
        if letter is not None:
            opts["names"] = [*opts["names"], letter]
        if name in self.numbers:
            opts["kind"] = str  # parsed as text; __call__ converts it and names the option if it is not a number
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        # Invoke pops each help entry as it reads it; keep them for the next parser (completion makes another).
        kept = dict(self.help)
        try:
            arguments: list[Argument] = super().get_arguments(ignore_unknown_help)
        finally:
            self.help = kept
        # A task's own -h/--help: else a task that takes arguments (diff OLD NEW) reads "-h" as its first one.
        return [*arguments, Argument(names=("help", "h"), kind=bool, default=False, help="show this help")]

    def checked(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The task's keyword arguments with number options converted; a usage error (exit 2) names the first
        that is not a number. The program calls it before any task runs, so `pki up --port x` starts nothing."""
        converted = {k: v for k, v in kwargs.items() if k != "help"}  # help is the program's to print
        for name, kind in self.numbers.items():
            if isinstance(converted.get(name), str):
                converted[name] = _convert(kind, name, converted[name])
        return converted

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*args, **self.checked(kwargs))


def _convert(kind: type, name: str, text: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise Exit(f"dicomtls: --{name.replace('_', '-')} {text}: give {_NUMBERS[kind]}", code=2)
    return value  # type: ignore[no-any-return]


task = functools.partial(invoke_task, klass=Command)
"""``@task`` as Invoke's, making a `Command`."""
