"""A candidate's edits on a scenario's component options, for environments that did not come from the user's
files: the proxy's options, or the server's when it terminates TLS itself. Where each setting lives is the
component's to say (``Component.fix_options``)."""

from __future__ import annotations

from typing import Any

from dicomtls.components import lookup
from dicomtls.fixes.candidates import Edit, NotApplicable
from dicomtls.scenario import ComponentConfig


def _option(kind: str, options: dict[str, Any], edit: Edit) -> dict[str, Any]:
    component = lookup(kind)
    where = component.fix_options.get(edit.setting) if component is not None else None
    if component is None or where is None:
        raise NotApplicable(f"the {kind} component has no option for {edit.setting}")
    if edit.setting == "add-cipher":
        assert isinstance(where, str)
        suites = list(options.get(where) or component.cipher_suites_default)
        return {where: suites if edit.value in suites else [*suites, edit.value]}
    if edit.setting == "min-version":
        assert isinstance(where, str)
        return {where: edit.value}
    assert isinstance(where, tuple)
    name, value = where
    if options.get(name) == value:
        raise NotApplicable(f"{kind} already has {name}: {value}")
    return {name: value}


def edited(config: ComponentConfig, edits: tuple[Edit, ...]) -> ComponentConfig:
    """The component with the edits made in its options and in every per_version override that sets them too."""
    options, per_version = dict(config.options), {k: dict(v) for k, v in config.per_version.items()}
    for edit in edits:
        change = _option(config.kind, config.resolved_options() | options, edit)
        options.update(change)
        for overrides in per_version.values():
            own = change
            if edit.setting == "add-cipher" and set(change) & set(overrides):
                own = _option(config.kind, {**options, **overrides}, edit)  # the override's own list, extended
            overrides.update({k: v for k, v in own.items() if k in overrides})
    return ComponentConfig.model_validate({"kind": config.kind, **options, "per_version": per_version})
