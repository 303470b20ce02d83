"""The published JSON Schemas: current with the models, valid draft 2020-12, accepting every file dicomtls ships or
wrote (bundled scenarios, policy fixtures, captured results.json files and one written now) and refusing what the
models refuse in shape (an unknown key, an unknown client or option, a results.json without its cells)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dicomtls import __version__, json_schemas
from dicomtls.report import json as json_report
from dicomtls.scenario import SAFE_LOADER

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml")) + sorted((FIXTURES / "scenarios").glob("*.yaml"))
POLICIES = sorted((FIXTURES / "policies").glob("*.yaml"))
RESULTS = sorted(FIXTURES.glob("results_*.json"))


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schemas.bundled(name))


def errors(name: str, document: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator(name).iter_errors(document)]


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)


def test_schemas_in_the_package_and_the_docs_match_the_models() -> None:
    stale = json_schemas.stale(ROOT)
    assert not stale, f"JSON Schemas older than the models: {', '.join(stale)}; run `invoke docs`"


@pytest.mark.parametrize("name", list(json_schemas.SCHEMAS))
def test_each_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = json_schemas.bundled(name)
    assert schema["$schema"] == json_schemas.DIALECT
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_bundled_scenario_is_valid_against_the_scenario_schema(path: Path) -> None:
    assert errors("scenario", load_yaml(path)) == []


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_every_policy_fixture_is_valid_against_the_policy_schema(path: Path) -> None:
    assert errors("policy", load_yaml(path)) == []


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_every_captured_results_json_is_valid_against_the_results_schema(path: Path) -> None:
    assert errors("results", json.loads(path.read_text())) == []


def test_a_results_json_written_now_records_its_schema_version_and_is_valid() -> None:
    doc = json_report.to_dict(json_report.typed(json.loads((FIXTURES / "results_probe_orthweb_envoy.json").read_text())))
    assert (doc["schema_version"], doc["dicomtls_version"]) == (json_report.SCHEMA_VERSION, __version__) == ("1", __version__)
    assert errors("results", doc) == []


def test_the_scenario_schema_refuses_an_unknown_key_client_and_component_option() -> None:
    scenario = load_yaml(ROOT / "scenarios" / "orthweb-envoy.yaml")
    assert errors("scenario", {**scenario, "colour": "red"})
    assert errors("scenario", {**scenario, "probes": [{"client": "curl"}]})
    env = {**scenario["environments"][0], "proxy": {**scenario["environments"][0]["proxy"], "cipher": "x"}}
    assert errors("scenario", {**scenario, "environments": [env]})


def test_the_policy_schema_takes_one_value_for_a_list_and_refuses_an_unknown_axis() -> None:
    rule = {"name": "no cert, no entry", "match": {"client_cert": "none"}, "outcome": "fail",
            "reason": "tls-cert-required"}
    assert errors("policy", {"presets": "client-auth", "cells": [rule]}) == []
    assert errors("policy", {"cells": [{**rule, "match": {"colour": "red"}}]})


def test_a_results_json_without_cells_is_refused() -> None:
    doc = json.loads(RESULTS[0].read_text())
    del doc["cells"]
    assert errors("results", doc)


def test_the_schema_command_prints_the_shipped_schema_and_its_path(capsys: pytest.CaptureFixture[str]) -> None:
    from dicomtls import app
    from dicomtls.errors import UsageError

    app.schema("results", path=False)
    assert json.loads(capsys.readouterr().out) == json_schemas.bundled("results")
    app.schema("policy", path=True)
    assert Path(capsys.readouterr().out.strip()) == json_schemas.PACKAGE_DIR / "policy.schema.json"
    with pytest.raises(UsageError, match="no schema 'bogus': give one of scenario, policy, results"):
        app.schema("bogus", path=False)
