"""`dicomtls init`: a policy that pins what a run observed, in a few readable rules a user edits and commits.

An observed run (a matrix of the user's manifests, a probe of an endpoint) fails on nothing; writing the policy that
makes the next run fail when something changes is the step users skip. One rule per cell would pin it but nobody
reads a hundred rules, so the cells are grouped by what they share: each rule is a box over the probe axes (a set of
values per axis, every other axis free) whose observed cells all ended the same way (a pass, or a failure for one
reason), found by a greedy rule learner: start from every cell, exclude the axis value that keeps out the most cells
that ended otherwise (and, where every exclusion costs some, the cheapest per cell kept out) until only one ending
is left, then free every axis that no longer needs a restriction. Policy rules all apply at once (unlike a
scenario's first-match ``expect``), so overlapping boxes are fine as long as each is pure.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dicomtls.checks import is_check
from dicomtls.errors import UsageError
from dicomtls.findings import SEVERITIES
from dicomtls.reasons import Reason
from dicomtls.results import MatrixResult
from dicomtls.probe_endpoint import SCENARIO as PROBE_SCENARIO
from dicomtls.scenario import AXES

DEFAULT_POLICY_FILE = "dicomtls-policy.yaml"
Ending = tuple[str, Reason | None]
"""How a cell ended: ("pass", None), or ("fail", its reason)."""
_MANIFESTS_PREFIX = "manifests-"  # how dicomtls.scenario.manifest_scenario names a manifest run's scenario
_UNPINNED = (Reason.ENVIRONMENT_FAILED,)  # says nothing about the configuration: never pinned


@dataclass(frozen=True)
class Observed:
    """One cell as a rule learner sees it: its axes' values and how it ended."""

    values: dict[str, str]
    ending: Ending


@dataclass(frozen=True)
class PinnedRule:
    """A cell rule that holds for every observed cell it matches; ``cells``: how many it matched."""

    match: dict[str, list[str]]
    ending: Ending
    cells: int
    client_certs: tuple[str, ...] = ()
    """The client certificates of the cells it matched: a pass with an untrusted or expired one is worth a note."""
    left_out: dict[str, list[str]] = field(default_factory=dict)
    """Per restricted axis, the observed values it does not take: named instead of the values when fewer."""

    @property
    def name(self) -> str:
        outcome, reason = self.ending
        where = describe(self.match, self.left_out)
        return f"{where} passes" if outcome == "pass" else f"{where} fails with {reason}" if reason \
            else f"{where} fails"


def observed_cells(result: MatrixResult) -> list[Observed]:
    """The cells of ``result`` a policy can pin: those that ended (no deadline, no dicomtls error), in an environment
    that started, and not an inventory's server checks."""
    found = []
    for cell in result.cells:
        if is_check(cell) or cell.deadline is not None or cell.error is not None or cell.reason in _UNPINNED:
            continue
        values = {"environment": cell.cell.environment, **asdict(cell.cell.probe)}
        found.append(Observed({axis: str(values[axis]) for axis in AXES},
                              ("pass", None) if cell.actual == "pass" else ("fail", cell.reason)))
    return found


def find_rules(cells: Sequence[Observed]) -> list[PinnedRule]:
    """Few rules that together reproduce how every cell ended: passes first, then each reason's failures (the most
    common first). A cell whose twin on every axis ended otherwise cannot be pinned and is left out."""
    axes = [a for a in AXES if len({c.values[a] for c in cells}) > 1]
    domain = {a: list(dict.fromkeys(c.values[a] for c in cells)) for a in axes}
    endings: dict[tuple[str, ...], set[Ending]] = {}
    for c in cells:
        endings.setdefault(_key(c, axes), set()).add(c.ending)
    pinnable = [c for c in cells if len(endings[_key(c, axes)]) == 1]
    order = sorted(dict.fromkeys(c.ending for c in pinnable),
                   key=lambda e: (e[0] != "pass", -sum(c.ending == e for c in pinnable), str(e[1])))
    rules: list[PinnedRule] = []
    for ending in order:
        left = [c for c in pinnable if c.ending == ending]
        while left:
            box = _pure_box(cells, left, ending, axes, domain)  # kept pure of the unpinnable ones too
            inside = [c for c in pinnable if _fits(c, box)]
            match = {a: [v for v in domain[a] if v in box[a]] for a in axes if len(box[a]) < len(domain[a])}
            certs = tuple(dict.fromkeys(c.values["client_cert"] for c in inside))
            left_out = {a: [v for v in domain[a] if v not in box[a]] for a in match}
            rules.append(PinnedRule(match, ending, len(inside), certs, left_out))
            left = [c for c in left if not _fits(c, box)]
    return _without_redundant(rules, pinnable)


def _key(cell: Observed, axes: list[str]) -> tuple[str, ...]:
    return tuple(cell.values[a] for a in axes)


def _fits(cell: Observed, box: dict[str, set[str]]) -> bool:
    return all(cell.values[a] in allowed for a, allowed in box.items())


def _pure_box(cells: Sequence[Observed], left: list[Observed], ending: Ending, axes: list[str],
              domain: dict[str, list[str]]) -> dict[str, set[str]]:
    """A box holding some of ``left`` and no cell that ended otherwise, as wide as it stays pure."""
    box = {a: set(domain[a]) for a in axes}
    while True:
        inside = [c for c in cells if _fits(c, box)]
        others = [c for c in inside if c.ending != ending]
        if not others:
            break
        mine = [c for c in left if _fits(c, box)]
        best: tuple[tuple[float, int, int, int], str, str] | None = None
        for i, axis in enumerate(axes):
            for j, value in enumerate(domain[axis]):
                if value not in box[axis] or len(box[axis]) == 1:
                    continue
                kept_out = sum(c.values[axis] == value for c in others)
                lost = sum(c.values[axis] == value for c in mine)
                if not kept_out or lost == len(mine):
                    continue
                score = (lost / kept_out, -kept_out, i, j)
                if best is None or score < best[0]:
                    best = (score, axis, value)
        assert best is not None, "two cells alike on every axis ended differently"  # pinnable cells only
        box[best[1]].discard(best[2])
    for axis in axes:  # free what no longer needs restricting
        wider = {**box, axis: set(domain[axis])}
        if all(c.ending == ending for c in cells if _fits(c, wider)):
            box = wider
    return box


def _without_redundant(rules: list[PinnedRule], cells: Sequence[Observed]) -> list[PinnedRule]:
    """Drop a rule whose every cell another kept rule pins too (the narrowest first)."""
    kept = list(rules)
    for rule in sorted(rules, key=lambda r: r.cells):
        others = [r for r in kept if r is not rule]
        if all(any(_matches(r, c) for r in others) for c in cells if _matches(rule, c)):
            kept = others
    return kept


def _matches(rule: PinnedRule, cell: Observed) -> bool:
    return all(cell.values[a] in allowed for a, allowed in rule.match.items())


def describe(match: dict[str, list[str]], left_out: dict[str, list[str]] | None = None) -> str:
    """A match as words: ``client_cert untrusted, sni none/right``; where an axis takes more than three values and
    leaves out fewer, the ones it leaves out of those observed (``environment other than a/b``); ``every cell``
    for none."""
    if not match:
        return "every cell"
    def words(axis: str, values: list[str]) -> str:
        out = (left_out or {}).get(axis, [])
        if len(values) > 3 and 0 < len(out) < len(values):
            return f"{axis} other than {'/'.join(out)}"
        return f"{axis} {'/'.join(values)}"

    return ", ".join(words(axis, values) for axis, values in match.items())


# --- writing ---------------------------------------------------------------------------------------------------


def _protects(rule: PinnedRule, explain: Callable[[Reason], str]) -> list[str]:
    """What a rule keeps from changing unnoticed, for its comment."""
    outcome, reason = rule.ending
    lines = [f"observed on {rule.cells} cell{'s' if rule.cells != 1 else ''}."]
    if outcome == "pass":
        lines.insert(0, "protects: these clients keep reaching the server (their DICOM associations succeed).")
        risky = [c for c in rule.client_certs if c in ("untrusted", "expired")]
        if risky:
            lines.append(f"note: pinned as observed, a client certificate {'/'.join(risky)} is ACCEPTED; if it should "
                         "be refused, make this rule fail or add `presets: [client-auth]`.")
    elif reason is not None:
        lines.insert(0, f"protects: these cells keep being refused with {reason}: {explain(reason)}.")
    else:
        lines.insert(0, "protects: these cells keep failing.")
    return lines


def _finding_threshold(result: MatrixResult) -> str | None:
    """The least severity no observed finding reached: a worse finding is news. None when critical was seen."""
    seen = [SEVERITIES.index(s) for s in _severities(result)]
    worst = max(seen, default=SEVERITIES.index("info"))  # info never fails a run: low is the least to pin
    return SEVERITIES[worst + 1] if worst + 1 < len(SEVERITIES) else None


def _severities(result: MatrixResult) -> list[str]:
    """Every finding's severity a finding rule judges: the configuration's, and the TLS scan's breached PS3.15
    requirements (dicomtls.policy.scan_violations)."""
    found: list[str] = [f.severity for env in result.environments for f in env.findings]
    return found + [f.severity for env in result.environments if env.scan is not None
                    for v in env.scan.verdicts for f in [*v.failures, *v.warnings]]


def usage(result: MatrixResult, policy: str, manifests: str | None = None) -> str:
    """The command that checks a run like ``result``'s against the policy file ``policy``."""
    if manifests is not None:
        return f"invoke matrix --manifests {manifests} --policy {policy}"
    if result.run.scenarios == [PROBE_SCENARIO]:
        targets = " ".join(f"--target {env.entry}" for env in result.environments[:1])
        return f"invoke probe {targets} --ca CA.crt --policy {policy}   (as that probe ran, with its other options)"
    if result.run.scenarios and all(s.startswith(_MANIFESTS_PREFIX) for s in result.run.scenarios):
        return f"invoke matrix --manifests PATH --policy {policy}   (PATH: the manifests that run read)"
    scenarios = " ".join(f"--scenario {s}" for s in result.run.scenarios)
    return f"invoke matrix {scenarios} --policy {policy}"


def _flow(match: dict[str, list[str]]) -> str:
    """A match in YAML flow style, a single value alone (json strings are YAML scalars)."""
    return "{" + ", ".join(f"{axis}: {json.dumps(v[0] if len(v) == 1 else v)}" for axis, v in match.items()) + "}"


def render(result: MatrixResult, rules: list[PinnedRule], usage: str, source: str,
           explain: Callable[[Reason], str]) -> str:
    """The policy file's text: a header on how to use it, then each rule with a comment on what it protects."""
    cells = sum(1 for c in result.cells if not is_check(c))
    lines = [
        f"# dicomtls policy written by `dicomtls init` from {source}",
        f"# ({cells} cells on {result.run.backend}, {result.run.started}): it pins what that run observed.",
        "#",
        "# Check a later run against it (exit 1 and the rule's name when a cell ends otherwise):",
        f"#   {usage}",
        "# Edit it to say what must hold: a rule pins a pass, or a failure for the reasons listed; every rule applies",
        "# to every cell it matches. Every field: the docs' Policy files reference; presets (client-auth,",
        "# documented-commands, ps315:PROFILE, cert-days:N) may be added under `presets:`.",
    ]
    lines.append("cells:" if rules else "cells: []")
    for rule in rules:
        lines.append("")
        lines += [f"  # {wrapped}" for line in _protects(rule, explain)
                  for wrapped in textwrap.wrap(line, 114, subsequent_indent="  ")]
        lines.append(f"  - name: {json.dumps(rule.name)}")
        lines.append(f"    match: {_flow(rule.match)}")
        outcome, reason = rule.ending
        lines.append(f"    outcome: {outcome}")
        if reason is not None:
            lines.append(f"    reason: {reason}")
    threshold = _finding_threshold(result)
    if threshold is not None:
        worst = SEVERITIES[SEVERITIES.index(threshold) - 1]
        seen = f"{worst} at worst" if _severities(result) else "none observed"
        lines += ["", "# protects: no finding (of the configuration, or a PS3.15 requirement its TLS scan breaches) "
                      f"worse than those observed ({seen}).",
                  "findings:",
                  f"  - name: {json.dumps(f'no finding of severity {threshold} or worse')}",
                  f"    severity: {threshold}"]
    return "\n".join(lines) + "\n"


def refuse_overwrite(path: Path, force: bool) -> None:
    """A usage error when ``path`` exists and ``force`` was not given: the user may have edited it since."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists: give --force to replace it, or --write another file")


def write_policy(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path``, refusing to replace a file the user may have edited unless ``force``."""
    refuse_overwrite(path, force)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({exc.strerror}): choose another --write") from None
