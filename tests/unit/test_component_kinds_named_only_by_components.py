"""A component kind is named as a string only by its own module (and the manifest readers that translate a
user's files into it): everything else asks the registry, so a new proxy is one module plus its template."""

from __future__ import annotations

from dicomtls.components import kinds

from .registered_names import literals

OWNERS = ("components/", "manifests/")
"""Where naming a kind is the point: the component modules, and the readers of Istio, Traefik, Compose, Helm and
Envoy files, which say which component a user's file becomes."""
EXCEPTIONS = {
    ("backends/__init__.py", "orthanc"):
        "SOLE_SITE: the name an environment's only site gets, shown in reports and container names; it names a site "
        "after what runs there, it decides nothing about a kind",
}


def kind_literals() -> list[tuple[str, int, str]]:
    """(module, line, kind) for every string constant outside the owners that is exactly a registered kind."""
    return literals(set(kinds("server")) | set(kinds("proxy")), OWNERS)


def test_no_module_outside_the_components_names_a_component_kind() -> None:
    named = [f"{module}:{line}: {kind!r}" for module, line, kind in kind_literals()
             if (module, kind) not in EXCEPTIONS]
    assert not named, ("these name a component kind by string: declare the decision on the component "
                       "(dicomtls.components.Component) and look it up instead:\n" + "\n".join(named))


def test_every_exception_is_still_needed() -> None:
    used = {(module, kind) for module, _, kind in kind_literals()}
    assert set(EXCEPTIONS) <= used, f"no longer needed, remove them: {sorted(set(EXCEPTIONS) - used)}"
