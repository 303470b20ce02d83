"""The ``dicomtls`` command: Invoke's program over the package's own tasks, so it runs from any directory
(``--out``, ``--scenario ./x.yaml`` and ``--manifests ./dir`` are relative to where it is run)."""

from __future__ import annotations

from invoke import Program

from dicomtls import __version__
from dicomtls.tasks import ns


class _Program(Program):
    def task_list_opener(self, extra: str = "") -> str:
        # Invoke heads a bundled namespace's list "Subcommands"; keep `invoke --list`'s heading so a clone's
        # `invoke --list` and `dicomtls --list` print the same thing.
        namespace, self.namespace = self.namespace, None
        try:
            return super().task_list_opener(extra)
        finally:
            self.namespace = namespace


program = _Program(namespace=ns, name="dicomtls", binary="dicomtls", version=__version__)


def main() -> None:
    program.run()
