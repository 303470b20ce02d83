"""The suite runs in two pytest-xdist workers (pyproject's addopts): every test that starts Docker containers
goes to one of them, in order, because Docker tests check that no dicomtls-labelled container or network is
left anywhere on the engine; the local-backend and unit tests run beside them, each scoped to its own
directory and ports. A Docker run spends most of its time waiting on dockerd, so the two overlap well."""

from __future__ import annotations

import pytest

DOCKER_MODULES = {"test_docker", "test_upstream_images", "test_deployments"}
"""Modules whose tests all use the Docker engine; elsewhere a Docker test says so in its name or parameter."""


def pytest_itemcollected(item: pytest.Item) -> None:
    """Marked as each test is collected, before xdist's own collection hook turns groups into node ids."""
    module = getattr(item, "module", None)
    if module is not None and (module.__name__.rsplit(".", 1)[-1] in DOCKER_MODULES or "docker" in item.nodeid.lower()):
        item.add_marker(pytest.mark.xdist_group("docker"))
