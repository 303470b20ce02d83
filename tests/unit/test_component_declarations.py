"""What the rest of dicomtls asks of a component, each registered component answers in its own module."""

from __future__ import annotations

import pytest

from dicomtls import checks, images, load
from dicomtls.components import component_class, kinds, programs
from dicomtls.scenario import load_scenario

ALL = kinds("server") + kinds("proxy")


@pytest.mark.parametrize("kind", ALL)
def test_every_component_names_where_a_cipher_suite_is_set_in_its_own_terms(kind: str) -> None:
    assert component_class(kind).cipher_setting("AES128-SHA")


@pytest.mark.parametrize("kind", [c.kind for c in programs()])
def test_every_program_has_an_image_recipe_with_a_default_version_and_a_host_check(kind: str) -> None:
    cls = component_class(kind)
    recipe = images.recipe(kind)
    assert recipe is not None and recipe.version_command[0] == cls.image_executable
    assert bool(recipe.debian_versions) != bool(recipe.wheel)  # from Debian or from a wheel, not both
    assert images.spec_for(kind, cls(cls.options_model.model_construct()).default_image_version()).component == kind
    assert checks.PROGRAMS[kind] == (cls.executable_name, " ".join(cls.version_args))


def test_components_that_run_anothers_program_have_no_recipe_or_host_check_of_their_own() -> None:
    borrowed = [k for k in ALL if component_class(k).image_recipe is not None]
    assert borrowed and all(images.recipe(k) is None and k not in checks.PROGRAMS for k in borrowed)


def test_load_measures_each_component_through_a_shipped_scenario_it_declares() -> None:
    declared = [c for c in map(component_class, ALL) if c.load_target]
    assert {(t.scenario, t.environment) for t in load.TARGETS} == {c.load_target for c in declared}
    assert load.TARGETS[-1].name == load.DIRECT  # the server's own TLS, last
    for target in load.TARGETS:
        assert target.environment in {e.name for e in load_scenario(target.scenario).environments}
