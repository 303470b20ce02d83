"""The clone's `invoke` tasks: the collection the installed `dicomtls` command runs (src/dicomtls/tasks.py), plus
the developer tasks that need the clone's tests (fuzz), which the installed command does not carry."""

from __future__ import annotations

import random

from invoke import Collection, Exit, task

import dicomtls.tasks


@task(
    iterable=["target"],
    help={
        "examples": "mutated inputs to try in all, shared by the targets by weight (default 2000)",
        "target": "only this target: scenario, manifests, inventory, results, options or store (repeatable; default all)",
        "seed": "the random seed, to run a campaign again exactly (default: a new one, printed)",
        "verbose": "print every input tried, as the mutations that made it",
    },
)
def fuzz(c, examples=2000, target=None, seed=None, verbose=False):
    """Fuzz every input dicomtls reads; list each crash site with an input that hits it, exit 1 if any.

    Mutated scenarios, manifest trees, inventories, results.json files, option values and --store DICOM files go
    through the readers the tasks use; a crash site is an exception other than a one-line usage error, named by
    its type and the innermost dicomtls line it came from."""
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


ns = Collection.from_module(dicomtls.tasks)  # a copy: the package's own collection stays as it is
ns.add_task(fuzz)
