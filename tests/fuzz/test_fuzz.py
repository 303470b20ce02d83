"""Whatever is wrong with a scenario, a manifest tree, an inventory, a results.json, an option's value, a
--store file or a policy, dicomtls ends in a result or in a one-line usage error (exit 2), never in a traceback.

The same mutated inputs on every run (the "ci" profile is derandomized and keeps no example database),
about 12 s of one core in all; `invoke fuzz --examples N` explores far more of them with a fresh seed.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings

from tests.fuzz.campaign import CI, check
from tests.fuzz.mutate import Mutated
from tests.fuzz.targets import TARGETS, Target

CI_EXAMPLES = {"scenario": 300, "manifests": 80, "inventory": 120, "results": 60, "options": 300, "store": 40,
               "policy": 200}
"""Per target, sized by how long one input takes to read (a manifest tree, a merge with its four reports)."""


def _test(target: Target) -> Callable[..., None]:
    @settings(CI, max_examples=CI_EXAMPLES[target.name])
    @given(target.inputs)
    def test(case: Mutated) -> None:
        check(target, case)

    test.__name__ = f"test_every_mutated_{target.name}_input_ends_in_a_result_or_a_one_line_usage_error"
    return test


for _target in TARGETS:  # one test per target, each with its own budget (and its own hypothesis statistics)
    _made = _test(_target)
    globals()[_made.__name__] = _made
