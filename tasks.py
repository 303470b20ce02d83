"""The clone's `invoke` tasks: the collection the installed `dicomtls` command runs (src/dicomtls/tasks.py), plus
developer tasks that only make sense in a clone (`docs` writes the docs site's generated reference pages, `fuzz` runs
the fuzz campaign of the clone's tests/fuzz).

When Invoke's own program loads this file, the command line is handed over to the `dicomtls` program, so that
`invoke` in a clone takes the same options and exits with the same statuses (2 on a usage error) as `dicomtls`.
"""

import random
from pathlib import Path

from invoke import Collection, Exit

import dicomtls.tasks
from dicomtls.cli import hand_over_from_invoke
from dicomtls.command import task

DOCS = Path(__file__).resolve().parent / "docs"


@task(help={"check": "write nothing: exit 1 if a generated page is stale (what the test checks)"})
def docs(c, check=False):
    """Regenerate docs/reference/ from the code (clone only).

    The pages of CLI options, scenario and component options, bundled scenarios, reasons and results.json fields,
    and the JSON Schemas (into the site and the package); then `mkdocs build --strict` or `mkdocs serve` shows the
    site."""
    from dicomtls import docs_reference, json_schemas

    if check:
        stale = docs_reference.stale(DOCS) + json_schemas.stale(DOCS.parent)
        if stale:
            raise Exit(f"stale: {', '.join(stale)}: run `{docs_reference.REGENERATE}`", code=1)
        return
    changed = docs_reference.write(DOCS) + json_schemas.write(DOCS.parent)
    print(f"docs: rewrote {', '.join(changed)}" if changed else "docs: every generated page is current")


@task(
    iterable=["target"],
    help={
        "examples": "mutated inputs to try in all, shared by the targets by weight (default 2000)",
        "target": "only this target: scenario, manifests, inventory, results, options, store or policy (repeatable; "
                  "default all)",
        "seed": "the random seed, to run a campaign again exactly (default: a new one, printed)",
        "verbose": "print every input tried, as the mutations that made it",
    },
)
def fuzz(c, examples=2000, target=None, seed=None, verbose=False):
    """Fuzz every input dicomtls reads; list each crash site with an input that hits it, exit 1 if any.

    Mutated scenarios, manifest trees, inventories, results.json files, option values, --store DICOM files and
    policies go through the readers the tasks use; a crash site is an exception other than a one-line usage error,
    named by its type and the innermost dicomtls line it came from."""
    from tests.fuzz.campaign import campaign
    from tests.fuzz.targets import TARGETS

    names = [t.name for t in TARGETS]
    if unknown := [t for t in target or [] if t not in names]:
        raise Exit(f"fuzz: --target {unknown[0]!r}: use one of {', '.join(names)}", code=2)
    if int(examples) < 1:
        raise Exit(f"fuzz: --examples {examples}: give 1 or more", code=2)
    if seed is not None and not str(seed).isdecimal():
        raise Exit(f"fuzz: --seed {seed}: give a whole number (the one a campaign printed)", code=2)
    chosen_seed = int(seed) if seed is not None else random.randrange(2**32)
    print(f"fuzz: {examples} inputs, seed {chosen_seed}", flush=True)
    reports = campaign(int(examples), chosen_seed, target or None, verbose=verbose)
    sites = {}
    for report in reports:
        results = report.tried - report.usage_errors - sum(f.hits for f in report.crashes.values())
        print(f"  {report.name:<10} {report.tried:>6} inputs: {results} results, {report.usage_errors} usage errors, "
              f"{len(report.crashes)} crash sites")
        sites.update({f"{report.name}: {where}": found for where, found in report.crashes.items()})
    tried = sum(r.tried for r in reports)
    print(f"fuzz: {tried} inputs tried, {len(sites)} crash sites")
    for where, found in sites.items():
        print(f"  {where} ({found.hits} inputs)\n    {found.message}\n    e.g. {found.example}")
    if sites:
        raise Exit(code=1)


# A copy of the package's collection: the installed command (and the generated CLI page) stay without the
# developer tasks.
ns = Collection.from_module(dicomtls.tasks)
ns.add_task(docs)
ns.add_task(fuzz)

hand_over_from_invoke(ns)

__all__ = ["ns"]
