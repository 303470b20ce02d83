"""The suite runs in three pytest-xdist workers on two cores (pyproject's addopts): a test spends about half its
time waiting on Orthanc, a proxy or dockerd. Every test that starts Docker containers goes to one worker, in order,
because Docker tests check that no dicomtls-labelled container or network is left anywhere on the engine; the
local-backend and unit tests run beside them, each scoped to its own directory and ports."""

from __future__ import annotations

import pytest

DOCKER_MODULES = {"test_docker", "test_upstream_images", "test_deployments"}
"""Modules whose tests all use the Docker engine; elsewhere a Docker test says so in its name or parameter."""


def pytest_itemcollected(item: pytest.Item) -> None:
    """Marked as each test is collected, before xdist's own collection hook turns groups into node ids."""
    if (group := _group(item)) is not None:
        item.add_marker(pytest.mark.xdist_group(group))


def _group(item: pytest.Item) -> str | None:
    """The worker group a test belongs to: "docker" for every Docker test; its module's name when it uses one of
    this suite's module- or session-scoped fixtures (a shared run), so that run happens once, on one worker, rather
    than once on every worker that gets one of its tests; None: any worker."""
    module = getattr(item, "module", None)
    if module is None:
        return None
    name = module.__name__.rsplit(".", 1)[-1]
    if name in DOCKER_MODULES or "docker" in item.nodeid.lower():
        return "docker"
    info = getattr(item, "_fixtureinfo", None)
    shared = info is not None and any(
        defs and defs[-1].scope != "function" and defs[-1].baseid for defs in info.name2fixturedefs.values())
    return module.__name__ if shared else None
