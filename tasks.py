"""The clone's `invoke` tasks: the collection the installed `dicomtls` command runs (src/dicomtls/tasks.py), plus
developer tasks that only make sense in a clone (`docs` writes the docs site's generated reference pages).

When Invoke's own program loads this file, the command line is handed over to the `dicomtls` program, so that
`invoke` in a clone takes the same options and exits with the same statuses (2 on a usage error) as `dicomtls`.
"""

from pathlib import Path

from invoke import Collection, Exit

import dicomtls.tasks
from dicomtls.cli import hand_over_from_invoke
from dicomtls.command import task

DOCS = Path(__file__).resolve().parent / "docs"


@task(help={"check": "write nothing: exit 1 if a generated page is stale (what the test checks)"})
def docs(c, check=False):
    """Regenerate docs/reference/ from the code (clone only).

    The pages of CLI options, scenario and component options, bundled scenarios, reasons and results.json fields;
    then `mkdocs build --strict` or `mkdocs serve` shows the site."""
    from dicomtls import docs_reference

    if check:
        stale = docs_reference.stale(DOCS)
        if stale:
            raise Exit(f"stale: {', '.join(stale)}: run `{docs_reference.REGENERATE}`", code=1)
        return
    changed = docs_reference.write(DOCS)
    print(f"docs: rewrote {', '.join(changed)}" if changed else "docs: every generated page is current")


# A copy of the package's collection: the installed command (and the generated CLI page) stay without `docs`.
ns = Collection.from_module(dicomtls.tasks)
ns.add_task(docs)

hand_over_from_invoke(ns)

__all__ = ["ns"]
