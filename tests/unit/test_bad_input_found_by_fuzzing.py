"""Inputs the fuzzer (tests/fuzz) turned into tracebacks, each pinned as the one-line usage error it is now: a scalar
where a list belongs, a damaged results.json, a host_vars file that is not a mapping, a path too long for the file
system, a superscript digit, a big-endian --store file, a line break in a quoted value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydicom.data import get_testdata_file

from dicomtls import app
from dicomtls.errors import UsageError
from dicomtls.inventory import load_inventory
from dicomtls.probe_endpoint import _check_store_file
from dicomtls.resolve import parse_host_port, parse_pin
from dicomtls.scenario import SCENARIOS, load_scenario, manifest_scenario, parse_scenario

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def one_line(caught: pytest.ExceptionInfo[UsageError]) -> str:
    message = str(caught.value)
    assert "\n" not in message and message.strip(), message
    return message


@pytest.mark.parametrize("field", ["probes", "expect"])
@pytest.mark.parametrize("value", [3, "edge", None, {"client": "dcmtk"}])
def test_a_scalar_where_a_list_belongs_names_the_field_and_says_to_write_a_list(field: str, value: object) -> None:
    # its proxy has versions: (one environment each): their expansion iterated probes and expect before validation
    data = yaml.safe_load((SCENARIOS / "envoy-upstream-regression.yaml").read_text())
    data[field] = value
    with pytest.raises(UsageError) as caught:
        parse_scenario(yaml.safe_dump(data), "scenarios/envoy-upstream-regression.yaml")
    assert one_line(caught).startswith(f"scenarios/envoy-upstream-regression.yaml: {field}: is ")
    assert "write a list" in str(caught.value)


@pytest.mark.parametrize("versions", [221, 1.5, {"v": "1.23.0"}, None])
def test_versions_that_are_not_a_list_of_versions_name_the_environment(versions: object) -> None:
    data = yaml.safe_load((SCENARIOS / "envoy-upstream-regression.yaml").read_text())
    data["environments"][0]["proxy"]["versions"] = versions
    try:
        parse_scenario(yaml.safe_dump(data), "scenarios/envoy-upstream-regression.yaml")
    except UsageError as caught:
        assert "\n" not in str(caught) and "scenarios/envoy-upstream-regression.yaml: " in str(caught)


def test_an_environment_list_nested_in_an_expect_match_is_a_usage_error() -> None:
    data = yaml.safe_load((SCENARIOS / "envoy-upstream-regression.yaml").read_text())
    data["expect"][0]["match"]["environment"] = [["nested"]]
    with pytest.raises(UsageError) as caught:
        parse_scenario(yaml.safe_dump(data), "scenarios/envoy-upstream-regression.yaml")
    assert one_line(caught).startswith("scenarios/envoy-upstream-regression.yaml: expect.0.match.environment")


def _run(tmp_path: Path) -> tuple[dict, Path]:  # type: ignore[type-arg]
    doc = json.loads((FIXTURES / "results_envoy_sni_named_hosts.json").read_text())
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.json").write_text(json.dumps(doc))
    return doc, tmp_path / "old"


@pytest.mark.parametrize("damage, field", [
    (lambda d: d["cells"][3].update(id=["a", "b"]), "cells.3.id"),
    (lambda d: d["cells"][0].pop("duration_s"), "cells.0.duration_s"),
    (lambda d: d["cells"][5].update(client_cert=["none"]), "cells.5.client_cert"),
    (lambda d: d["run"].update(started=0.26), "run.started"),
    (lambda d: d["run"].update(versions=""), "run.versions"),
    (lambda d: d["environments"][0].update(key=["k"]), "environments.0.key"),
])
def test_a_damaged_results_json_is_a_usage_error_naming_the_field(tmp_path: Path, damage, field: str) -> None:  # type: ignore[no-untyped-def]
    doc, old = _run(tmp_path)
    damage(doc)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "results.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError) as caught:
        app.diff(str(old), str(tmp_path / "new"))
    assert f": {field}: " in one_line(caught)


def test_a_group_vars_file_that_is_not_a_mapping_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("- dicomtls_port: 11112\n")
    (tmp_path / "inventory.yml").write_text("all:\n  hosts:\n    pacs:\n      dicomtls_port: 11112\n")
    with pytest.raises(UsageError) as caught:
        load_inventory(tmp_path / "inventory.yml")
    assert "host pacs" in one_line(caught) and "group_vars/all.yml" in str(caught.value)


@pytest.mark.parametrize("limit", ["!", "bhs:!", "&", "bhs,&"])
def test_a_limit_with_a_bare_negation_or_intersection_is_a_usage_error(limit: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_inventory(FIXTURES / "inventories" / "two-sites" / "inventory.yml", limit)
    assert "--limit" in one_line(caught)


@pytest.mark.parametrize("read", [
    lambda long: load_scenario(long),
    lambda long: load_scenario(long + ".yaml"),
    lambda long: manifest_scenario(Path(long)),
    lambda long: app.diff(long, long),
    lambda long: app.merge([long], "out"),
    lambda long: load_inventory(Path(long)),
    lambda long: app._readable(long, "--ca"),
], ids=["scenario-name", "scenario-file", "manifests", "baseline", "shards", "inventory", "ca"])
def test_a_path_too_long_for_the_file_system_is_a_usage_error(read) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as caught:
        read("a" * 300)
    one_line(caught)


@pytest.mark.parametrize("read", [
    lambda bad: load_scenario(bad + ".yaml"),
    lambda bad: manifest_scenario(Path(bad)),
    lambda bad: app.diff(bad, bad),
    lambda bad: load_inventory(Path(bad)),
    lambda bad: app._readable(bad, "--ca"),
], ids=["scenario-file", "manifests", "baseline", "inventory", "ca"])
def test_a_path_with_a_nul_byte_is_a_usage_error(read) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as caught:
        read("results\x00.json")
    one_line(caught)


@pytest.mark.parametrize("parse", [
    lambda: parse_host_port("dicom.example.org:²"),
    lambda: parse_pin("dicom.example.org:1²:127.0.0.1"),
    lambda: app.parse_jobs("²"),
    lambda: app._count("²", "--runs"),
])
def test_a_superscript_digit_is_not_a_number(parse) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as caught:
        parse()
    one_line(caught)


def test_a_line_break_in_a_quoted_value_keeps_the_usage_error_on_one_line() -> None:
    with pytest.raises(UsageError) as caught:
        app.parse_jobs("1\n2")
    assert "--jobs 1\\n2" in one_line(caught)


def test_a_big_endian_store_file_is_refused_before_anything_connects() -> None:
    with pytest.raises(UsageError) as caught:
        _check_store_file(Path(get_testdata_file("MR_small_bigendian.dcm")))
    assert "Little Endian" in one_line(caught)


def test_a_store_file_without_sop_uids_is_refused_before_anything_connects(tmp_path: Path) -> None:
    import pydicom

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.SOPClassUID
    ds.save_as(tmp_path / "no-class.dcm")
    with pytest.raises(UsageError) as caught:
        _check_store_file(tmp_path / "no-class.dcm")
    assert "SOPClassUID" in one_line(caught)


@pytest.mark.parametrize("minutes", ["inf", "nan", "-1", "0"])
def test_a_soak_that_would_never_end_is_refused_before_anything_starts(tmp_path: Path, minutes: str) -> None:
    with pytest.raises(UsageError, match=f"--minutes {minutes}: give how long to soak"):
        app.soak(["orthweb-envoy"], minutes, str(tmp_path / "out"), "local")
