"""Policies: what must hold in a run, so that a run whose cells are only observed can fail.

A manifest run, a probe of an endpoint and a scan observe: every outcome is news, none is wrong, and the run exits 0
on a gateway that lets an expired client certificate through. A policy says what must hold, in the vocabulary of a
scenario's ``expect`` rules (``match`` / ``outcome`` / ``reason``) plus rules on what is not a cell: the
configuration's findings (by severity), PS3.15 profile verdicts, and the days the served certificate has left. A cell
that breaks a rule is unexpected, with the rule's name; any other broken rule is a policy violation of the run.
Either exits 1.

Named presets are the common policies, combined at will: ``--policy preset:client-auth --policy preset:cert-days:30``
or ``presets: [client-auth, cert-days:30]`` in a policy file.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from dicomtls import clients as client_registry
from dicomtls.checks import is_check
from dicomtls.errors import UsageError
from dicomtls.findings import SEVERITIES, Severity, at_least
from dicomtls.probes import WRONG_SNI
from dicomtls.profiles import DICOM_PROFILES
from dicomtls.reasons import Reason
from dicomtls.results import BrokenRule, CellResult, MatrixResult, PolicyViolation
from dicomtls.scan import ScanResult
from dicomtls.scenario import CellMatch, StrictModel, format_error, yaml_mapping

PROFILE_NAMES = tuple(p.name for p in DICOM_PROFILES)
PRESET_NOTES = {
    "documented-commands": "every documented `echoscu`/`storescu` command the run reproduces works (the report's "
                           "\"your documented commands\"; dicomtls.clients declares them).",
    "client-auth": "client authentication refuses an untrusted and an expired client certificate, and a client "
                   "without one wherever the environment requires one (some cell of it failed with "
                   "tls-cert-required): a gateway that takes any certificate breaks it.",
    "ps315:PROFILE": f"the PS3.15 profile PROFILE holds ({', '.join(PROFILE_NAMES)}): compliant, not unknown.",
    "cert-days:N": "every certificate the entry serves has at least N days left.",
}
"""What each preset holds to, for the reference page."""
PRESETS = tuple(PRESET_NOTES)
"""The presets' names as a user writes them (PROFILE: a PS3.15 profile name, N: a number of days)."""
POLICY_HELP = (f"what must hold, or the run exits 1: a policy YAML file, or preset:NAME ({', '.join(PRESETS)}; "
               f"PROFILE one of {', '.join(PROFILE_NAMES)}) (repeatable)")
FAIL_ON_HELP = f"exit 1 on a finding of this severity or worse: {', '.join(SEVERITIES)}"


class CellRule(CellMatch):
    """What the cells a rule matches must do: pass, or fail (for one of the reasons, when given)."""

    name: str = Field(min_length=1)
    """Shown with every cell that breaks it."""
    outcome: Literal["pass", "fail"]
    """What each matching cell must do."""
    reason: list[Reason] = []
    """With fail: the reasons a failure may have (a single one may be written alone); none: any reason."""
    where_seen: Reason | None = None
    """Only in environments where some cell failed for this reason (tls-cert-required: where a client certificate
    is required)."""

    @field_validator("reason", mode="before")
    @classmethod
    def _reason_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _reasons_go_with_fail(self) -> "CellRule":
        if self.reason and self.outcome != "fail":
            raise ValueError("reason says how a cell must fail: it goes with outcome: fail")
        return self

    def wants(self) -> str:
        return f"fail ({' or '.join(self.reason)})" if self.reason else self.outcome

    def holds(self, result: CellResult) -> bool:
        if self.outcome == "pass":
            return result.actual == "pass"
        return result.actual != "pass" and (not self.reason or result.reason in self.reason)


class FindingRule(StrictModel):
    """No finding of the configuration (or of the TLS scan) at this severity or worse."""

    name: str = Field(min_length=1)
    """Shown with every finding that breaks it."""
    severity: Severity
    """The least severity that breaks it (info < low < medium < high < critical)."""


class ProfileRule(StrictModel):
    """The entry is compliant with this PS3.15 Annex B profile (an unknown verdict does not hold)."""

    name: str = Field(min_length=1)
    """Shown when the verdict is not compliant."""
    profile: str
    """bcp195 (B.9), bcp195-nd (B.10), bcp195-ex (B.11) or bcp195-rfc8996 (B.12)."""

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PROFILE_NAMES:
            raise ValueError(f"unknown PS3.15 profile {value!r}: use one of {', '.join(PROFILE_NAMES)}")
        return value


class CertificateRule(StrictModel):
    """Every certificate the entry serves (to its names, and without SNI) has at least this many days left."""

    name: str = Field(min_length=1)
    """Shown with every certificate that breaks it."""
    days: int = Field(ge=0)
    """The fewest days left that hold."""


class Policy(StrictModel):
    """A policy file: presets and rules, all of which must hold."""

    presets: list[str] = []
    """documented-commands, client-auth, ps315:PROFILE, cert-days:N."""
    cells: list[CellRule] = []
    """Rules on cells: a cell that breaks one is unexpected."""
    findings: list[FindingRule] = []
    """Rules on the findings in the configuration and the TLS scan's breached PS3.15 requirements."""
    profiles: list[ProfileRule] = []
    """PS3.15 Annex B profiles the entry must comply with."""
    certificate: list[CertificateRule] = []
    """Days the served certificates must have left."""

    @field_validator("presets", mode="before")
    @classmethod
    def _presets_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("presets")
    @classmethod
    def _known_presets(cls, value: list[str]) -> list[str]:
        for name in value:
            preset(name)  # a ValueError naming the choices
        return value

    @model_validator(mode="after")
    def _says_something(self) -> "Policy":
        if not (self.presets or self.cells or self.findings or self.profiles or self.certificate):
            raise ValueError("a policy needs presets or rules: give presets, cells, findings, profiles or certificate")
        return self

    def resolved(self) -> "Policy":
        """This policy with its presets' rules added to its own."""
        return combine([self, *(preset(name) for name in self.presets)])


def combine(policies: Iterable[Policy]) -> Policy:
    """One policy holding every rule of ``policies`` (presets left unexpanded)."""
    chosen = list(policies)
    return Policy.model_construct(
        presets=[n for p in chosen for n in p.presets], cells=[r for p in chosen for r in p.cells],
        findings=[r for p in chosen for r in p.findings], profiles=[r for p in chosen for r in p.profiles],
        certificate=[r for p in chosen for r in p.certificate])


def preset(name: str) -> Policy:
    """The rules of a named preset; a ValueError naming the presets for an unknown one."""
    if name == "documented-commands":
        return Policy.model_construct(cells=[
            CellRule(name=f"documented-commands: {command} ({note}) works", outcome="pass",
                     match={axis: [str(value)] for axis, value in asdict(probe).items()})
            for command, note, probe in client_registry.documented_commands()])
    if name == "client-auth":
        return Policy.model_construct(cells=[
            CellRule(name="client-auth: an untrusted client certificate is refused", outcome="fail",
                     match={"client_cert": ["untrusted"]}),
            CellRule(name="client-auth: an expired client certificate is refused", outcome="fail",
                     match={"client_cert": ["expired"]}),
            CellRule(name="client-auth: a client without a certificate is refused wherever one is required",
                     outcome="fail", match={"client_cert": ["none"], "transport": ["tls"]},
                     where_seen=Reason.TLS_CERT_REQUIRED),
        ])
    kind, _, arg = name.partition(":")
    if kind == "ps315" and arg in PROFILE_NAMES:
        profile = next(p for p in DICOM_PROFILES if p.name == arg)
        return Policy.model_construct(profiles=[
            ProfileRule(name=f"ps315:{arg}: the {profile.title} (PS3.15 {profile.section}) holds", profile=arg)])
    if kind == "cert-days" and re.fullmatch(r"\d{1,5}", arg):
        return Policy.model_construct(certificate=[
            CertificateRule(name=f"cert-days:{int(arg)}: the served certificate has {int(arg)} days left",
                            days=int(arg))])
    if kind == "ps315":
        raise ValueError(f"unknown preset {name!r}: ps315 takes a profile, one of {', '.join(PROFILE_NAMES)}")
    if kind == "cert-days":
        raise ValueError(f"unknown preset {name!r}: cert-days takes a whole number of days, e.g. cert-days:30")
    raise ValueError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")


def fail_on(severity: str | None) -> Policy | None:
    """``--fail-on SEVERITY`` as a policy: no finding at that severity or worse."""
    if severity is None:
        return None
    try:
        return Policy(findings=[FindingRule(name=f"fail-on {severity}: no finding of severity {severity} or worse",
                                            severity=severity)])  # type: ignore[arg-type]
    except ValidationError:
        raise UsageError(f"--fail-on {severity}: give a severity, one of {', '.join(SEVERITIES)}") from None


def parse_policy(text: str, source: str) -> Policy:
    """A policy file's text; a usage error naming the file and the field otherwise."""
    data = yaml_mapping(text, source, "a policy is a YAML mapping with presets, cells, findings, profiles, "
                                      "certificate")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise UsageError(format_error(source, exc, Policy)) from None


def load_policies(specs: list[str] | None, severity: str | None = None) -> Policy | None:
    """The policy ``--policy FILE|preset:NAME`` (repeatable) and ``--fail-on`` ask for, presets expanded; None when
    neither was given."""
    chosen: list[Policy] = []
    for spec in specs or ():
        if spec.startswith("preset:"):
            try:
                chosen.append(preset(spec.removeprefix("preset:")))
            except ValueError as exc:
                raise UsageError(f"--policy {spec}: {exc}") from None
            continue
        if not os.path.isfile(spec):  # os.path: False for a name too long for the file system too, where Path raises
            raise UsageError(f"--policy {spec}: no such file: give a policy YAML file or preset:NAME "
                             f"({', '.join(PRESETS)})")
        try:
            text = Path(spec).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{spec}: cannot read it ({getattr(exc, 'strerror', None) or 'not UTF-8 text'})") from None
        chosen.append(parse_policy(text, spec).resolved())
    if (failing := fail_on(severity)) is not None:
        chosen.append(failing)
    return combine(chosen) if chosen else None


# --- evaluation ------------------------------------------------------------------------------------------------


def apply(policy: Policy, result: MatrixResult, now: datetime.datetime | None = None,
          environment: str | None = None) -> None:
    """Mark each cell with the rules it breaks and list every other broken rule in ``result.violations``; only in
    ``environment`` when given (an inventory host's own policy)."""
    for env_name, cells in _by_environment(result.cells).items():
        if environment is not None and env_name != environment:
            continue
        seen = {c.reason for c in cells}
        for cell in cells:
            if cell.deadline is not None or cell.error is not None:
                continue  # no outcome to judge: already unexpected
            values = {"environment": env_name, **asdict(cell.cell.probe)}
            cell.policy += tuple(BrokenRule(rule.name, rule.wants()) for rule in policy.cells
                                 if rule.matches(values) and (rule.where_seen is None or rule.where_seen in seen)
                                 and not rule.holds(cell))
    for env in result.environments:
        if environment is not None and env.name != environment:
            continue
        result.violations += [replace(broken, file=f.file, line=f.line) for f in env.findings
                              for broken in _finding_violations(policy, env.name, [(f.severity, f.text)])]
        result.violations += scan_violations(policy, env.name, env.scan, now)


def scan_violations(policy: Policy, name: str, scan: ScanResult | None,
                    now: datetime.datetime | None = None) -> list[PolicyViolation]:
    """The profile, certificate and finding rules one scan (of an environment's entry, or of `invoke scan`'s
    target) breaks; a rule the scan cannot judge (no scan, a scan error, an unknown verdict) is broken too, with
    why: what was not measured does not hold."""
    found: list[PolicyViolation] = []
    if scan is None or scan.error:
        why = f"the TLS scan failed: {scan.error}" if scan is not None else "no TLS scan of the entry"
        rules = [r.name for r in policy.profiles] + [r.name for r in policy.certificate]
        return [PolicyViolation(rule, name, f"cannot be judged: {why}") for rule in rules]
    for profile_rule in policy.profiles:
        verdict = next((v for v in scan.verdicts if v.name == profile_rule.profile), None)
        if verdict is None or verdict.compliant is not True:
            found.append(PolicyViolation(profile_rule.name, name, verdict.summary() if verdict else "no verdict"))
    served = [(c.sni, c.certificates[0]) for c in scan.chains if c.certificates and c.sni != WRONG_SNI]
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    for rule in policy.certificate:
        if not served:
            found.append(PolicyViolation(rule.name, name, "cannot be judged: no certificate was served to the scan"))
        for sni, leaf in served:
            left = (datetime.datetime.fromisoformat(leaf.not_after) - moment) / datetime.timedelta(days=1)
            if left < rule.days:
                to = f"with SNI {sni}" if sni else "without SNI"
                found.append(PolicyViolation(rule.name, name, f"{leaf.subject} (served {to}) has {left:.1f} days "
                                                              f"left, until {leaf.not_after}"))
    requirements = {(f.severity, f"{f.requirement} ({f.source}): {f.observed}")
                    for v in scan.verdicts for f in [*v.failures, *v.warnings]}
    found += _finding_violations(policy, name, sorted(requirements, key=lambda f: f[1]))
    return found


def _finding_violations(policy: Policy, name: str, findings: list[tuple[str, str]]) -> list[PolicyViolation]:
    return [PolicyViolation(rule.name, name, f"[{severity}] {text}") for rule in policy.findings
            for severity, text in findings if at_least(severity, rule.severity)]


def _by_environment(cells: list[CellResult]) -> dict[str, list[CellResult]]:
    """The cells a policy judges (not the server checks of an inventory), by environment."""
    found: dict[str, list[CellResult]] = {}
    for cell in cells:
        if not is_check(cell):
            found.setdefault(cell.cell.environment, []).append(cell)
    return found
