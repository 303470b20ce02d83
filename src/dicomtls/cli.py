"""The ``dicomtls`` command: Invoke's program over the package's own tasks, so it runs from any directory
(``--out``, ``--scenario ./x.yaml`` and ``--manifests ./dir`` are relative to where it is run).

It differs from Invoke's own program where Invoke's conventions are not a command line's: a usage error (an unknown
option or task, a missing argument or value) is one line and exit status 2, since 1 means unexpected cells; its
options are only those that mean something here (no ``--dry``, ``--pty``, ``--config``, ...). In a clone, ``invoke``
loads the top-level tasks.py, which hands the command line over to this program (`hand_over_from_invoke`), so
``invoke matrix`` and ``dicomtls matrix`` are one command.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from invoke import Collection, Exit, ParseError, Program
from invoke.completion.complete import complete, print_completion_script
from invoke.parser import Argument, ParseResult, ParserContext

from dicomtls import __version__
from dicomtls.command import Command
from dicomtls.tasks import ns

_UNKNOWN = re.compile(r"No idea what (?P<token>.+) is!")
_NEEDS_VALUE = re.compile(r"Flag <Argument: (?P<name>[\w-]+)")


class DicomtlsProgram(Program):
    """Invoke's `Program` with dicomtls's options only and usage errors as exit status 2."""

    def core_args(self) -> list[Argument]:
        return [
            Argument(names=("help", "h"), optional=True,
                     help="show this help, or a task's: --help TASK (or TASK --help, TASK -h)"),
            Argument(names=("version", "V"), kind=bool, default=False, help="print the version and exit"),
            Argument(names=("list", "l"), kind=bool, default=False, help="list the tasks"),
            Argument(names=("print-completion-script",), default="",
                     help="print the shell completion script for bash, zsh or fish"),
            Argument(names=("complete",), kind=bool, default=False,
                     help="print completion candidates (what the completion scripts call)"),
        ]

    def run(self, argv: list[str] | None = None, exit: bool = True) -> None:
        try:
            try:
                super().run(argv, exit)
            finally:
                sys.stdout.flush()  # here, where a reader that left is caught, not at the interpreter's exit
        except BrokenPipeError:  # `dicomtls --help | head`: the reader left; say nothing more, as `cat` does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(128 + signal.SIGPIPE)

    def parse_core(self, argv: list[str] | None) -> None:
        with self._usage_errors():
            self.normalize_argv(argv)
            self.parse_core_args()
            if self.args.version.value:
                self.print_version()
                raise Exit
            if self.args["print-completion-script"].value:
                print_completion_script(shell=self.args["print-completion-script"].value, names=self.binary_names)
                raise Exit

    def parse_tasks(self) -> None:
        with self._usage_errors():
            try:
                super().parse_tasks()
            except ParseError as exc:  # `diff -h`: asked for help, not for a diff without its arguments
                if not _asks_for_help(exc.context):
                    self._refuse_options_taken_for_arguments([exc.context] if exc.context else [])
                    raise
                self.tasks = ParseResult([exc.context])
            self._refuse_options_taken_for_arguments(self.tasks)
        asked = next((t.name for t in self.tasks if _asks_for_help(t)), None)
        if asked:
            self.args.help.set_value(asked, cast=False)
            return
        for context in self.tasks:  # every task's values before the first task runs
            command = self.collection[context.name]
            if isinstance(command, Command):
                command.checked(context.as_kwargs)


    def _refuse_options_taken_for_arguments(self, contexts: list[ParserContext]) -> None:
        """Invoke gives a task's missing argument the next token, even ``--bogus`` (``scan --bogus`` scanned a
        target named "--bogus"); a flag-like token there is an unknown option, unless its own flag preceded it."""
        tokens = self.core.unparsed
        for context in contexts:
            for arg in context.positional_args:
                value = arg.value
                if not (isinstance(value, str) and value.startswith("-")):
                    continue
                spellings = {f"-{n}" if len(n) == 1 else f"--{n}" for n in arg.names}
                alone = [i for i, token in enumerate(tokens) if token == value]
                if alone and not any(i > 0 and tokens[i - 1] in spellings for i in alone):
                    raise Exit(f"dicomtls: {context.name} has no option {value}: "
                               f"see `{self.binary} {context.name} --help`", code=2)

    def parse_cleanup(self) -> None:
        with self._usage_errors():
            topic = self.args.help.value
            if topic is True:
                self.print_help()
                raise Exit
            if topic:
                if topic not in self.parser.contexts:
                    raise Exit(f"dicomtls: {self._unknown_task(topic)}", code=2)
                self.print_task_help(topic)
                raise Exit
            if self.args.list.value:
                self.list_tasks()
                raise Exit
            if self.args.complete.value:
                complete(names=self.binary_names, core=self.core, initial_context=self.initial_context,
                         collection=self.collection, parser=self._make_parser())
            if not self.tasks and not self.collection.default:
                self.no_tasks_given()

    def update_config(self, merge: bool = True) -> None:
        # Invoke's version reads its own options (--echo, --pty, --config, ...), which this program does not have.
        if merge:
            self.config.merge()

    def print_help(self) -> None:
        print(f"Usage: {self.binary} [--help] [--version] <task> [--task-options] ...")
        print(f"       {self.binary} <task> --help\n")
        print("Options:\n")
        self.print_columns([row for row in _option_rows(self.initial_context) if "--complete" not in row[0]])
        self.list_tasks()

    def print_task_help(self, name: str) -> None:
        context = self.parser.contexts[name]
        arguments = "".join(f" {arg.name.upper()}" for arg in context.positional_args)
        print(f"Usage: {self.binary} {name} [--options]{arguments}\n")
        for line in (inspect.getdoc(self.collection[name]) or "").splitlines():
            print(self.leading_indent + line if line.strip() else "")
        print("\nOptions:\n")
        self.print_columns(_option_rows(context))

    def task_list_opener(self, extra: str = "") -> str:
        # Invoke heads a bundled namespace's list "Subcommands"; `invoke --list` said "Available tasks" before the
        # clone's invoke handed over to this program.
        return "Available tasks"

    @contextmanager
    def _usage_errors(self) -> Iterator[None]:
        """Turn Invoke's parse errors into one line that says what to do, and exit status 2."""
        try:
            yield
        except ParseError as exc:
            raise Exit(f"dicomtls: {self._explain(exc)}", code=2) from None

    def _explain(self, exc: ParseError) -> str:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "bad command line"
        context: ParserContext | None = exc.context
        task = context.name if context is not None and context.name else None
        helps = f"`{self.binary} {task} --help`" if task else f"`{self.binary} --help`"
        unknown = _UNKNOWN.fullmatch(message)
        if unknown:
            token = ast.literal_eval(unknown["token"])
            if token.startswith("-"):
                where = f"{task} has no option" if task else "unknown option"
                return f"{where} {token}: see {helps}"
            return self._unknown_task(token)
        if context is not None and context.missing_positional_args:
            missing = [str(a.name) for a in context.missing_positional_args]
            return f"{task} needs {_listed([m.upper() for m in missing])} ({_listed([f'--{m}' for m in missing])}): " \
                   f"see {helps}"
        needs_value = _NEEDS_VALUE.match(message)
        if needs_value:
            return f"--{needs_value['name']} needs a value: see {helps}"
        return f"{message.rstrip('!.')}: see {helps}"

    def _unknown_task(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.collection.task_names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"no task {name!r}{hint}: see `{self.binary} --list`"


def _asks_for_help(context: ParserContext | None) -> bool:
    return context is not None and "help" in context.args and context.args["help"].value is True


def _listed(words: list[str]) -> str:
    return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"


_METAVARS = {"help": "[TASK]", "print-completion-script": "SHELL"}


def _option_rows(context: ParserContext) -> list[tuple[str, str]]:
    """(flags, help) per option, sorted by long name, in the ``-s, --scenario SCENARIO`` form people know;
    Invoke's own form shows a repeatable option as a switch (``-s, --scenario``) and a number as ``STRING``."""
    rows = []
    for arg in sorted(context.args.values(), key=lambda a: a.name):
        flags = ", ".join(sorted((f"-{n}" if len(n) == 1 else f"--{n}" for n in arg.names), key=len))
        name = str(arg.name)
        value = "" if not arg.takes_value else _METAVARS.get(name, name.strip("_").upper().replace("-", "_"))
        rows.append((f"{flags} {value}".rstrip(), arg.help or ""))
    return rows


def _program(binary: str, binary_names: list[str], namespace: Collection = ns) -> DicomtlsProgram:
    return DicomtlsProgram(namespace=namespace, name="dicomtls", binary=binary, binary_names=binary_names,
                           version=__version__)


program = _program("dicomtls", ["dicomtls"])


def main() -> None:
    program.run()


# Invoke's options that only chose which tasks.py to load: said, done, and nothing for this program to read.
_INVOKE_LOADER_OPTIONS = frozenset({"collection", "search-root", "no-dedupe"})


def hand_over_from_invoke(namespace: Collection = ns) -> None:
    """Run the clone's ``invoke`` command line as ``dicomtls``'s, then exit; a no-op when Invoke is not running.

    Invoke's own program exits 1 on a parse error and offers its own options (--dry, --pty, ...); nothing in a
    task collection can change either. Its loader imports the clone's tasks.py in the middle of its run, after
    reading its own leading options, so tasks.py calls this: it rebuilds the command line from what Invoke has
    parsed so far and runs it with this program, whose exit status is the command's. ``namespace``: the clone's
    collection, which adds developer tasks to the package's.
    """
    running = getattr(sys.modules.get("invoke.main"), "program", None)
    if not isinstance(running, Program) or running.namespace is not None or not running.argv \
            or hasattr(running, "collection"):
        return
    argv = [running.argv[0]]
    for arg in running.core[0].args.values():
        if not arg.got_value or arg.name in _INVOKE_LOADER_OPTIONS:
            continue
        argv.append(f"--{arg.name}")  # an Invoke-only option is then refused by this program, as a usage error
        if arg.takes_value and arg.value is not True:
            argv.append(str(arg.value))
    argv += running.core.unparsed
    if running.core.remainder:  # after `--`: what the completion scripts complete
        argv += ["--", *running.core.remainder.split(" ")]
    _program("invoke", running.binary_names, namespace).run(argv)
    raise SystemExit(0)
