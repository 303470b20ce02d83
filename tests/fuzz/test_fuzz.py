"""Whatever is wrong with a scenario, a manifest tree, an inventory, a results.json or an option's value, dicomtls
ends in a result or in a one-line usage error (exit 2), never in a traceback.

The same mutated inputs on every run (the "ci" profile is derandomized and keeps no example database), about
10 s in all; `invoke fuzz --examples N` explores far more of them with a fresh seed.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from tests.fuzz.campaign import CI, check
from tests.fuzz.mutate import Mutated
from tests.fuzz.targets import TARGETS, Target

CI_EXAMPLES = {"scenario": 150, "manifests": 30, "inventory": 60, "results": 25, "options": 150}
"""Per target, sized by how long one input takes to read (a manifest tree, a merge with its four reports)."""


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_every_mutated_input_ends_in_a_result_or_a_one_line_usage_error(target: Target) -> None:
    @settings(CI, max_examples=CI_EXAMPLES[target.name])
    @given(target.inputs)
    def reads(case: Mutated) -> None:
        check(target, case)

    reads()
