"""A candidate's edits on a scenario's component options, for environments that did not come from the user's
files: the proxy's options, or the server's when it terminates TLS itself."""

from __future__ import annotations

from typing import Any

from dicomtls.fixes.candidates import Edit, NotApplicable
from dicomtls.fixes.envoy_bootstrap import ENVOY_DEFAULT_CIPHERS
from dicomtls.scenario import ComponentConfig

_SETTINGS: dict[str, dict[str, Any]] = {
    # kind -> setting -> the option it sets ("add-cipher" appends to the list, the rest set a value)
    "envoy": {"add-cipher": "cipher_suites", "client-cert-optional": ("client_cert", "optional"),
              "catch-all-route": ("sni", "any")},
    "traefik": {"catch-all-route": ("sni", "any"), "default-certificate": ("default_certificate", True),
                "client-cert-optional": ("client_cert", "optional"), "min-version": "min_version"},
    "haproxy": {"client-cert-optional": ("client_cert", "optional"), "catch-all-route": ("sni", "any")},
    "nginx": {"client-cert-optional": ("client_cert", "optional"), "catch-all-route": ("sni", "any")},
}


def _option(kind: str, options: dict[str, Any], edit: Edit) -> dict[str, Any]:
    where = _SETTINGS.get(kind, {}).get(edit.setting)
    if where is None:
        raise NotApplicable(f"the {kind} component has no option for {edit.setting}")
    if edit.setting == "add-cipher":
        suites = list(options.get(where) or ENVOY_DEFAULT_CIPHERS)
        return {where: suites if edit.value in suites else [*suites, edit.value]}
    if edit.setting == "min-version":
        return {where: edit.value}
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
