"""The published contract: JSON Schemas of the files dicomtls reads (scenarios, policies) and writes (results.json).

Each schema is generated from the pydantic model that reads the file, so it cannot drift from what dicomtls accepts;
``invoke docs`` writes them into the package (dicomtls/schemas/, shipped in the wheel) and into the docs site, and a
test fails when either copy is older than the models. Editors and CI tools validate against them (yaml-language-
server's ``# yaml-language-server: $schema=...``, check-jsonschema), and a program reading results.json knows its
layout by ``schema_version``.

A model validates the *parsed* object; the schemas describe what a user writes. Where the two differ, the input
shape is added here: a list may be given as one value (a probe group's axes, a rule's ``match`` values, ``reason``,
``presets``), a component is ``kind`` plus that kind's options (each component's own options model), manifests may
be a bare list of files, and what is filled from manifests (``pki`` with ``manifests.pki: true``; an
environment's ``unhonoured``, ``findings`` and ``images``) is not asked for.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

DIALECT = "https://json-schema.org/draft/2020-12/schema"
PACKAGE_DIR = Path(__file__).parent / "schemas"
DOCS_DIR = "reference/schemas"
"""Where the docs site carries them, relative to docs/ (so the site serves them beside the reference pages)."""

Schema = dict[str, Any]


def _one_or_many(prop: Schema) -> Schema:
    """A list property that also takes a single item (the model's before-validators make it a list)."""
    kept: Schema = {k: prop.pop(k) for k in ("default", "description", "title") if k in prop}
    options = prop.pop("anyOf", None) or [prop]
    arrays = [o for o in options if o.get("type") == "array"]
    return {"anyOf": [*(a["items"] for a in arrays), *options], **kept}


def _match(prop: Schema) -> Schema:
    """A rule's ``match``: an axis -> one value or a list of them."""
    from dicomtls.scenario import AXES

    prop["propertyNames"] = {"enum": list(AXES)}
    prop["additionalProperties"] = _one_or_many(prop["additionalProperties"])
    return prop


def _component(role: str, defs: Schema) -> Schema:
    """A ``server:`` or ``proxy:``: a kind alone, or an object of ``kind`` and that kind's options, with
    ``per_version`` overrides and (Docker) ``versions``."""
    from dicomtls.components import component_class, kinds

    shapes: list[Schema] = []
    for kind in kinds(role):
        options = component_class(kind).options_model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(options.pop("$defs", {}))
        properties = {"kind": {"const": kind}, **options.get("properties", {}),
                      "per_version": {"type": "object", "description": "version specifier (\"<1.40\") -> option "
                                      "overrides, applied when that version is asked for",
                                      "additionalProperties": {"type": "object"}},
                      "versions": {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1,
                                   "description": "one environment per version (instead of version:)"}}
        shapes.append({"type": "object", "title": kind, "description": options.get("description", ""),
                       "properties": properties, "required": ["kind", *options.get("required", [])],
                       "additionalProperties": False})
    return {"anyOf": [{"enum": kinds(role)}, *shapes]}


def _prune(schema: Schema) -> Schema:
    """Drop the definitions nothing refers to any more."""
    defs = schema.get("$defs", {})
    while True:
        text = json.dumps({k: v for k, v in schema.items() if k != "$defs"}) + json.dumps(defs)
        unused = [name for name in defs if f'"#/$defs/{name}"' not in text]
        if not unused:
            return schema
        for name in unused:
            del defs[name]


def _published(model: type[BaseModel], title: str, description: str, shape: Callable[[Schema], None]) -> Schema:
    schema = copy.deepcopy(model.model_json_schema())
    shape(schema)
    return _prune({"$schema": DIALECT, **schema, "title": title, "description": description})


def _rules(defs: Schema) -> None:
    """What a scenario's expect rules, its releases' sides and a policy's cell rules share: ``match``, and a reason or
    several."""
    for name in ("Expectation", "CellRule", "ReleaseSide"):
        if name in defs:
            defs[name]["properties"]["match"] = _match(defs[name]["properties"]["match"])
    if "CellRule" in defs:
        defs["CellRule"]["properties"]["reason"] = _one_or_many(defs["CellRule"]["properties"]["reason"])


def scenario() -> Schema:
    from dicomtls.clients import names as client_names
    from dicomtls.scenario import Scenario

    def shape(schema: Schema) -> None:
        defs = schema["$defs"]
        defs["ServerComponent"] = _component("server", defs)
        defs["ProxyComponent"] = _component("proxy", defs)
        server, proxy = {"$ref": "#/$defs/ServerComponent"}, {"$ref": "#/$defs/ProxyComponent"}
        env = defs["EnvironmentConfig"]["properties"]
        env["server"] = {**server, "description": env["server"].get("description", "")}
        env["proxy"] = {"anyOf": [proxy, {"type": "null"}], "description": env["proxy"].get("description", "")}
        env["manifests"] = {"anyOf": [{"$ref": "#/$defs/ManifestSource"}, {"type": "array", "items": {"type": "string"},
                                                                           "minItems": 1}, {"type": "null"}],
                            "description": env["manifests"].get("description", "")}
        for filled in ("unhonoured", "findings", "images"):
            env.pop(filled, None)
        site = defs["SiteConfig"]["properties"]
        site["server"] = {"anyOf": [server, {"type": "null"}], "description": site["server"].get("description", "")}
        group = defs["ProbeGroup"]["properties"]
        group["client"]["items"] = {"enum": client_names()}  # the model asks the registry when it validates
        for axis in group:
            group[axis] = _one_or_many(group[axis])
        group["profile"]["anyOf"].append({"type": "null"})  # YAML's unquoted null: dcmtk's NULL-cipher profile
        _rules(defs)
        schema["required"] = [r for r in schema["required"] if r != "pki"]  # manifests.pki: true makes it
        del defs["ComponentConfig"]

    return _published(Scenario, "dicomtls scenario", "A scenario file (scenarios/*.yaml, --scenario FILE): the "
                      "environments to start, the probes to run in them, and what each cell must do.", shape)


def policy() -> Schema:
    from dicomtls.policy import Policy

    def shape(schema: Schema) -> None:
        schema["properties"]["presets"] = _one_or_many(schema["properties"]["presets"])
        _rules(schema["$defs"])

    return _published(Policy, "dicomtls policy", "A policy file (--policy FILE): presets and rules on cells, "
                      "findings, PS3.15 profiles and the served certificate, all of which must hold.", shape)


def results() -> Schema:
    from dicomtls.report.json import SCHEMA_VERSION, _results_model

    def shape(schema: Schema) -> None:
        schema["$defs"]["CellRecord"] = schema["$defs"].pop("_CellRecord")
        text = json.dumps(schema).replace('"#/$defs/_CellRecord"', '"#/$defs/CellRecord"')
        schema.clear()
        schema.update(json.loads(text))

    return _published(_results_model(), "dicomtls results.json", f"The record of a run (OUT/results.json, "
                      f"schema_version {SCHEMA_VERSION}): its header, environments, cells, policy violations and, "
                      "from invoke fix, the fixes tried.", shape)


SCHEMAS: dict[str, Callable[[], Schema]] = {"scenario": scenario, "policy": policy, "results": results}
"""Each published schema by name (what `dicomtls schema NAME` prints), and the function that makes it."""


def file_name(name: str) -> str:
    return f"{name}.schema.json"


def text(name: str) -> str:
    return json.dumps(SCHEMAS[name](), indent=2, ensure_ascii=False) + "\n"


def targets(root: Path) -> dict[Path, str]:
    """Every schema file under a clone at ``root`` (the package's copy and the docs site's) and its text."""
    found = {}
    for name in SCHEMAS:
        body = text(name)
        found[root / "src" / "dicomtls" / "schemas" / file_name(name)] = body
        found[root / "docs" / DOCS_DIR / file_name(name)] = body
    return found


def stale(root: Path) -> list[str]:
    """The schema files under ``root`` whose committed text differs from what the models give now."""
    return [str(path.relative_to(root)) for path, body in targets(root).items()
            if not path.is_file() or path.read_text(encoding="utf-8") != body]


def write(root: Path) -> list[str]:
    """Write every schema file under ``root``; the ones that changed."""
    changed = stale(root)
    for path, body in targets(root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    return changed


def bundled(name: str) -> Schema:
    """The schema shipped in the package (what an installed dicomtls publishes)."""
    return dict(json.loads((PACKAGE_DIR / file_name(name)).read_text(encoding="utf-8")))
