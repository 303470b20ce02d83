"""Scenario files: every mistake is a one-line usage error naming the file, the field and what is allowed;
valid files expand to exactly the cells they describe, each with the outcome its first matching rule gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtls.diagnose import Reason
from dicomtls.errors import UsageError
from dicomtls.scenario import (
    SCENARIOS,
    available,
    environment_key,
    load_scenario,
    load_scenarios,
    parse_scenario,
)

SOURCE = "scenarios/under-test.yaml"

# A minimal valid scenario; each error case changes one thing in it.
BASE = """\
name: under-test
description: a scenario for unit tests
pki:
  server_names: [dicom.example.test]
environments:
  - name: edge
    proxy: { kind: envoy, client_cert: optional }
probes:
  - client: pynetdicom
    sni: [none, right]
expect:
  - match: {}
    outcome: pass
"""


def variant(old: str, new: str, base: str = BASE) -> str:
    assert old in base, f"test setup: {old!r} is not in the base scenario"
    return base.replace(old, new, 1)


def error_for(text: str) -> str:
    with pytest.raises(UsageError) as caught:
        parse_scenario(text, SOURCE)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: "), f"message does not name the file: {message}"
    assert "\n" not in message, "a usage error is one line"
    return message


def test_the_base_scenario_is_valid() -> None:
    scenario = parse_scenario(BASE, SOURCE)
    assert scenario.name == "under-test"
    assert len(scenario.cells()) == 2


# --- errors -----------------------------------------------------------------------------------------------------


def test_malformed_yaml_names_the_line() -> None:
    text = variant("pki:\n  server_names: [dicom.example.test]\n",
                   "pki:\n  server_names: [dicom.example.test]\n    bad_indent: true\n")
    message = error_for(text)
    assert "not valid YAML" in message
    assert "line 5" in message


def test_a_scenario_that_is_not_a_mapping_is_rejected() -> None:
    message = error_for("- name: under-test\n- probes: []\n")
    assert "mapping" in message
    for field in ("name", "description", "pki", "environments", "probes", "expect"):
        assert field in message


def test_an_empty_file_is_not_a_scenario() -> None:
    assert "mapping" in error_for("")


def test_unknown_top_level_field_lists_the_known_ones() -> None:
    message = error_for(BASE + "colour: blue\n")
    assert "colour" in message
    for field in ("name", "description", "pki", "environments", "probes", "expect"):
        assert field in message


def test_unknown_field_in_a_probe_group_lists_the_group_fields() -> None:
    message = error_for(variant("    sni: [none, right]\n", "    sni: [none, right]\n    retries: 3\n"))
    assert "probes.0.retries" in message
    for field in ("client", "sni", "client_cert", "operation", "transport", "environments"):
        assert field in message


def test_unknown_proxy_kind_lists_the_known_kinds() -> None:
    message = error_for(variant("kind: envoy", "kind: caddy"))
    assert "environments.0" in message
    assert "unknown proxy kind 'caddy'" in message
    known = message.split("caddy", 1)[1]
    assert all(kind in known for kind in ("envoy", "haproxy", "nginx", "traefik"))


def test_unknown_server_kind_lists_the_known_kinds() -> None:
    message = error_for(variant("    proxy: { kind: envoy, client_cert: optional }\n",
                                "    server: dcmqrscp\n    proxy: envoy\n"))
    assert "unknown server kind 'dcmqrscp'" in message
    assert "orthanc" in message


def test_bad_component_option_value_lists_the_allowed_values() -> None:
    message = error_for(variant("client_cert: optional", "client_cert: maybe"))
    assert "environments.0" in message
    assert "envoy option client_cert" in message
    for value in ("'none'", "'optional'", "'required'"):
        assert value in message


def test_unknown_component_option_lists_the_components_options() -> None:
    message = error_for(variant("client_cert: optional", "client_cert: optional, colour: blue"))
    assert "envoy option colour" in message
    for option in ("client_cert", "sni", "server_cert", "cipher_suites"):
        assert option in message.split("colour", 1)[1]


def test_expect_rule_with_unknown_axis_lists_the_axes() -> None:
    message = error_for(variant("match: {}", "match: { colour: blue }"))
    assert "expect.0.match" in message
    assert "unknown axis 'colour'" in message
    for axis in ("environment", "client", "sni", "client_cert", "operation", "transport"):
        assert axis in message


def test_expected_failure_without_reason_is_rejected() -> None:
    message = error_for(variant("outcome: pass", "outcome: fail"))
    assert "expect.0" in message
    assert "expected failure must name its reason" in message


def test_expected_pass_with_reason_is_rejected() -> None:
    message = error_for(variant("outcome: pass", "outcome: pass\n    reason: timeout"))
    assert "expect.0" in message
    assert "expected pass has no reason" in message


def test_unknown_reason_lists_the_known_reasons() -> None:
    message = error_for(variant("outcome: pass", "outcome: fail\n    reason: gremlins"))
    assert "expect.0.reason" in message
    for reason in Reason:
        assert f"'{reason.value}'" in message


def test_a_cell_no_rule_covers_is_named() -> None:
    message = error_for(variant("match: {}", "match: { sni: right }"))
    assert "no expect rule covers cell edge/pynetdicom sni=none cert=none echo" in message
    assert "match: {}" in message  # says how to fix it


def test_dcmtk_with_sni_is_rejected() -> None:
    message = error_for(variant("client: pynetdicom", "client: [dcmtk, pynetdicom]"))
    assert "probes.0" in message
    assert "dcmtk" in message and "cannot send SNI" in message
    assert "sni: none" in message


def test_dcmtk_with_only_sni_none_is_accepted() -> None:
    scenario = parse_scenario(variant("client: pynetdicom\n    sni: [none, right]", "client: dcmtk\n    sni: none"),
                              SOURCE)
    assert [c.probe.client for c in scenario.cells()] == ["dcmtk"]


def test_probes_naming_an_unknown_environment_list_the_known_ones() -> None:
    message = error_for(variant("    sni: [none, right]\n", "    sni: [none, right]\n    environments: [edge, edgy]\n"))
    assert "probes" in message
    assert "unknown environment 'edgy'" in message
    assert "use one of edge" in message


def test_duplicate_environment_names_are_rejected() -> None:
    message = error_for(variant("environments:\n", "environments:\n  - name: edge\n    proxy: envoy\n"))
    assert "environment names must be unique" in message
    assert "['edge', 'edge']" in message


def test_tls_server_behind_a_proxy_is_rejected() -> None:
    message = error_for(variant("    proxy: { kind: envoy, client_cert: optional }\n",
                                "    server: { kind: orthanc, tls: true }\n    proxy: envoy\n"))
    assert "environments.0" in message
    assert "proxy in front of a TLS-terminating server" in message
    assert "tls: false" in message


def test_environment_where_nothing_terminates_tls_is_rejected() -> None:
    message = error_for(variant("    proxy: { kind: envoy, client_cert: optional }\n", "    server: orthanc\n"))
    assert "environments.0" in message
    assert "nothing terminates TLS" in message
    assert "add a proxy" in message and "tls: true" in message


def test_passthrough_proxy_in_front_of_plain_orthanc_is_rejected() -> None:
    message = error_for(variant("    proxy: { kind: envoy, client_cert: optional }\n",
                                "    proxy: { kind: haproxy, passthrough: true }\n"))
    assert "environments.0" in message
    assert "passes TLS through" in message and "tls: true" in message


def test_passthrough_proxy_in_front_of_tls_orthanc_is_one_tls_path() -> None:
    scenario = parse_scenario(variant("    proxy: { kind: envoy, client_cert: optional }\n",
                                      "    server: { kind: orthanc, tls: true }\n"
                                      "    proxy: { kind: traefik, passthrough: true }\n"), SOURCE)
    kinds = [c.kind for c in scenario.environments[0].components()]
    assert kinds == ["orthanc", "traefik"]


def test_server_cert_check_axis_defaults_to_verify_and_labels_only_ignore() -> None:
    scenario = parse_scenario(variant("  - client: pynetdicom\n    sni: [none, right]\n",
                                      "  - client: dcmtk\n    server_cert_check: [verify, ignore]\n"), SOURCE)
    labels = sorted(c.probe.label() for c in scenario.cells())
    assert labels == ["dcmtk sni=none cert=none echo", "dcmtk sni=none cert=none echo server-cert-check=ignore"]


def test_environment_name_must_be_lowercase_slug() -> None:
    message = error_for(variant("- name: edge", "- name: Edge_1"))
    assert "environments.0.name" in message


# --- expansion --------------------------------------------------------------------------------------------------

EXPANSION = """\
name: expansion
description: axes multiply per environment
pki: { server_names: [dicom.example.test] }
environments:
  - name: one
    proxy: envoy
  - name: two
    proxy: { kind: envoy, client_cert: required }
  - name: three
    server: { kind: orthanc, tls: true }
probes:
  - client: pynetdicom
    sni: [none, right, wrong]
    client_cert: [none, valid]
    operation: [echo, store-ct]
  - client: dcmtk
    client_cert: [valid, expired]
    environments: [three]
expect:
  - match: { environment: two, client_cert: none }
    outcome: fail
    reason: tls-cert-required
  - match: { client_cert: none }
    outcome: fail
    reason: timeout
  - match: { sni: wrong }
    outcome: fail
    reason: tls-hostname-mismatch
  - match: { client: dcmtk, client_cert: expired }
    outcome: fail
    reason: tls-cert-expired
  - match: {}
    outcome: pass
"""


@pytest.fixture(scope="module")
def expansion():
    return parse_scenario(EXPANSION, "expansion.yaml")


def test_axes_expand_to_the_cartesian_product_per_environment(expansion) -> None:
    cells = expansion.cells()
    # 3 environments x 3 sni x 2 certs x 2 operations, plus dcmtk's 2 certs in one environment
    assert len(cells) == 3 * 3 * 2 * 2 + 2
    assert len({c.id for c in cells}) == len(cells)
    per_env = {name: sum(1 for c in cells if c.environment == name) for name in ("one", "two", "three")}
    assert per_env == {"one": 12, "two": 12, "three": 14}
    dcmtk = [c for c in cells if c.probe.client == "dcmtk"]
    assert {c.environment for c in dcmtk} == {"three"}
    assert {c.probe.sni for c in dcmtk} == {"none"}
    assert {c.probe.operation for c in dcmtk} == {"echo"}  # the default operation
    assert all(c.scenario == "expansion" for c in cells)


def test_first_matching_expect_rule_wins(expansion) -> None:
    by_id = {c.id: c for c in expansion.cells()}
    # matches rules 1, 2 and 3: the first one decides
    cell = by_id["expansion/two/pynetdicom sni=wrong cert=none echo"]
    assert (cell.expected, cell.expected_reason) == ("fail", Reason.TLS_CERT_REQUIRED)
    # matches rules 2 and 3
    cell = by_id["expansion/one/pynetdicom sni=wrong cert=none echo"]
    assert (cell.expected, cell.expected_reason) == ("fail", Reason.TIMEOUT)
    # matches rule 3 and the catch-all
    cell = by_id["expansion/one/pynetdicom sni=wrong cert=valid store-ct"]
    assert (cell.expected, cell.expected_reason) == ("fail", Reason.TLS_HOSTNAME_MISMATCH)
    cell = by_id["expansion/three/dcmtk sni=none cert=expired echo"]
    assert (cell.expected, cell.expected_reason) == ("fail", Reason.TLS_CERT_EXPIRED)
    # only the catch-all
    cell = by_id["expansion/three/pynetdicom sni=right cert=valid echo"]
    assert (cell.expected, cell.expected_reason) == ("pass", None)


def test_a_rule_listing_several_values_matches_any_of_them() -> None:
    text = variant("  - match: {}\n", "  - match: { sni: [right, wrong] }\n    outcome: fail\n    reason: timeout\n"
                   "  - match: {}\n")
    cells = {c.probe.sni: c for c in parse_scenario(text, SOURCE).cells()}
    assert cells["right"].expected_reason is Reason.TIMEOUT
    assert cells["none"].expected == "pass"


def test_overlapping_probe_groups_give_each_cell_once() -> None:
    text = variant("    sni: [none, right]\n", "    sni: [none, right]\n  - client: pynetdicom\n    sni: right\n")
    cells = parse_scenario(text, SOURCE).cells()
    assert [c.probe.sni for c in cells] == ["none", "right"]


# --- loading ----------------------------------------------------------------------------------------------------


def test_unknown_scenario_name_lists_the_available_ones() -> None:
    with pytest.raises(UsageError) as caught:
        load_scenario("nope")
    message = str(caught.value)
    assert "'nope'" in message
    for name in available():
        assert name in message
    assert ".yaml" in message


def test_missing_scenario_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown scenario"):
        load_scenario(str(tmp_path / "absent.yaml"))


def test_scenario_loaded_from_a_path_names_that_path_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(variant("outcome: pass", "outcome: fail"))
    with pytest.raises(UsageError) as caught:
        load_scenario(str(path))
    assert str(caught.value).startswith(f"{path}: expect.0")


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_loads(path: Path) -> None:
    scenario = load_scenario(str(path))
    assert scenario.name == path.stem
    assert scenario.cells()


def test_default_set_holds_the_foundation_scenarios_with_at_least_40_cells() -> None:
    scenarios = load_scenarios(None)
    names = {s.name for s in scenarios}
    assert names >= {"orthweb-envoy", "envoy-mtls", "envoy-sni-named-hosts", "orthanc-native-tls"}
    assert all(s.default for s in scenarios) and names <= set(available())
    assert sum(len(s.cells()) for s in scenarios) >= 40


def test_no_default_scenarios_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "quiet.yaml").write_text(BASE.replace("name: under-test", "name: quiet\ndefault: false"))
    with pytest.raises(UsageError, match="no default scenarios"):
        load_scenarios(None, tmp_path)
    assert [s.name for s in load_scenarios(["quiet"], tmp_path)] == ["quiet"]


# --- environment identity ---------------------------------------------------------------------------------------


def _scenario(name: str, proxy: str, server_names: str = "[dicom.example.test]"):
    text = variant("name: under-test", f"name: {name}")
    text = variant("proxy: { kind: envoy, client_cert: optional }", f"proxy: {proxy}", text)
    text = variant("server_names: [dicom.example.test]", f"server_names: {server_names}", text)
    return parse_scenario(text, f"{name}.yaml")


def _key(scenario) -> str:
    return environment_key(scenario.pki_spec(), scenario.environments[0])


def test_identical_environments_in_two_scenarios_share_a_key() -> None:
    a = _scenario("first", "{ kind: envoy, client_cert: required, sni: any }")
    b = _scenario("second", "{ sni: any, kind: envoy, client_cert: required }")
    assert _key(a) == _key(b)


def test_spelling_out_a_default_option_is_still_the_same_environment() -> None:
    a = _scenario("first", "envoy")
    b = _scenario("second", "{ kind: envoy, client_cert: optional, sni: any, server_cert: valid }")
    assert _key(a) == _key(b)


@pytest.mark.parametrize("proxy", [
    "{ kind: envoy, client_cert: none }",
    "{ kind: envoy, sni: named }",
    "{ kind: envoy, server_cert: mismatched }",
    "{ kind: envoy, cipher_suites: [ECDHE-RSA-AES128-GCM-SHA256] }",
])
def test_a_different_option_is_a_different_environment(proxy: str) -> None:
    assert _key(_scenario("first", "{ kind: envoy, client_cert: optional }")) != _key(_scenario("second", proxy))


def test_a_different_pki_is_a_different_environment() -> None:
    a = _scenario("first", "envoy")
    b = _scenario("second", "envoy", server_names="[other.example.test]")
    assert _key(a) != _key(b)


def test_expect_rule_with_a_value_no_cell_has_is_rejected() -> None:
    text = """
name: typo
description: a misspelt client in an expect rule would silently never match
pki: {server_names: [dicom.test]}
environments:
  - name: e
    proxy: envoy
probes:
  - client: pynetdicom
expect:
  - match: {client: pynetdicm}
    outcome: fail
    reason: timeout
  - match: {}
    outcome: pass
"""
    with pytest.raises(UsageError) as err:
        parse_scenario(text, "typo.yaml")
    message = str(err.value)
    assert "typo.yaml" in message and "pynetdicm" in message and "dcmtk, pynetdicom" in message


# --- several DICOM sites behind one proxy -------------------------------------------------------------------------

SITES = """\
name: sites
description: two sites behind one Envoy
pki:
  topology: one-level
environments:
  - name: edge
    sites:
      - { name: north, server_names: [north.dicom.test] }
      - { name: south, server_names: [south.dicom.test], server: { kind: orthanc, version: 1.12.7 } }
    proxy: { kind: envoy, sni: named }
probes:
  - client: pynetdicom
    sni: [north, south, right, none]
expect:
  - match: { sni: none }
    outcome: fail
    reason: tls-no-matching-sni
  - match: {}
    outcome: pass
"""


def test_sites_expand_to_cells_that_expect_the_site_their_sni_names() -> None:
    scenario = parse_scenario(SITES, SOURCE)
    expected = {c.probe.sni: (c.expected, c.expected_site) for c in scenario.cells()}
    assert expected == {"north": ("pass", "north"), "south": ("pass", "south"), "right": ("pass", "north"),
                        "none": ("fail", None)}


def test_sites_give_the_pki_one_certificate_each_and_the_first_sites_names_for_the_server() -> None:
    spec = parse_scenario(SITES, SOURCE).pki_spec()
    assert spec.sites == (("north", ("north.dicom.test",)), ("south", ("south.dicom.test",)))
    assert spec.server_names == ("north.dicom.test",)


def test_each_site_runs_its_own_server_defaulting_to_the_environments() -> None:
    env = parse_scenario(SITES, SOURCE).environments[0]
    servers = env.servers()
    assert [(site, server.kind, server.options.version) for site, server in servers] == [
        ("north", "orthanc", None), ("south", "orthanc", "1.12.7")]
    assert [c.kind for c in env.components()] == ["orthanc", "orthanc", "envoy"]


def test_a_passing_client_without_sni_must_say_which_site_it_reaches() -> None:
    text = variant("  - match: { sni: none }\n    outcome: fail\n    reason: tls-no-matching-sni\n", "", SITES)
    assert "say which site a passing client with sni=none reaches: add site: NAME" in error_for(text)
    fixed = variant("  - match: {}\n    outcome: pass\n", "  - match: { sni: none }\n    outcome: pass\n    site: south\n"
                    "  - match: {}\n    outcome: pass\n", text)
    cells = {c.probe.sni: c.expected_site for c in parse_scenario(fixed, SOURCE).cells()}
    assert cells["none"] == "south"


def test_a_cell_whose_sni_names_a_site_cannot_be_expected_to_pass_elsewhere() -> None:
    text = variant("  - match: {}\n    outcome: pass\n", "  - match: { sni: south }\n    outcome: pass\n    site: north\n"
                   "  - match: {}\n    outcome: pass\n", SITES)
    assert "expected as outcome: fail, reason: misrouted" in error_for(text)


def test_an_sni_value_that_is_no_site_of_the_environment_lists_the_choices() -> None:
    text = variant("sni: [north, south, right, none]", "sni: [north, east]", SITES)
    assert "sni 'east' is not a choice in environment edge: use one of none, right, wrong, north, south" in error_for(text)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("      - { name: south, server_names: [south.dicom.test], server: { kind: orthanc, version: 1.12.7 } }\n", "",
     "give at least two"),
    ("    proxy: { kind: envoy, sni: named }\n", "", "sites need a proxy"),
    ("name: south,", "name: north,", "site names must be unique"),
    ("name: south,", "name: wrong,", "the sni axis uses that word"),
    ("server_names: [south.dicom.test]", "server_names: [north.dicom.test]", "belongs to sites 'north' and 'south'"),
    ("server: { kind: orthanc, version: 1.12.7 }", "server: { kind: orthanc, tls: true }",
     "either all terminate TLS or none does"),
    ("proxy: { kind: envoy, sni: named }", "proxy: { kind: nginx }", "route several sites with passthrough: true"),
])
def test_bad_sites_are_one_line_errors(old: str, new: str, message: str) -> None:
    assert message in error_for(variant(old, new, SITES))


def test_a_site_keeps_its_names_across_environments() -> None:
    text = SITES.replace("probes:", """\
  - name: other
    sites:
      - { name: north, server_names: [n.dicom.test] }
      - { name: south, server_names: [south.dicom.test] }
    proxy: { kind: envoy, sni: named }
probes:""")
    assert "site 'north' has names ['north.dicom.test'] in one environment and ['n.dicom.test'] in other" in error_for(text)


def test_an_expected_site_outside_environments_with_sites_is_rejected() -> None:
    text = variant("  - match: {}\n    outcome: pass\n", "  - match: {}\n    outcome: pass\n    site: north\n")
    assert "which no environment has" in error_for(text)


def test_pki_server_names_are_needed_where_an_environment_has_no_sites() -> None:
    text = variant("pki:\n  server_names: [dicom.example.test]\n", "pki:\n  topology: one-level\n")
    assert "pki.server_names is missing" in error_for(text)


def test_server_ae_title_that_is_not_one_is_a_one_line_error_naming_the_option() -> None:
    message = error_for(variant("    proxy: { kind: envoy, client_cert: optional }\n",
                                "    server: { kind: orthanc, aet: MY-VERY-LONG-PACS-TITLE }\n"
                                "    proxy: { kind: envoy, client_cert: optional }\n"))
    assert "orthanc option aet" in message and "not a DICOM AE title" in message
    assert "\n" not in message


def test_calling_aet_option_replaces_the_default_only_where_a_group_names_none() -> None:
    scenario = load_scenario("calling-aet")
    assert {cell.probe.calling_aet for cell in scenario.cells()} == {"DICOMTLS", "MODALITY1"}
    probes = [cell.probe for cell in scenario.calling_as("CT1").cells()]
    assert {probe.calling_aet for probe in probes} == {"CT1", "MODALITY1"}
    assert all(f"calling-aet={probe.calling_aet}" in probe.label() for probe in probes)


def test_a_calling_aet_that_is_no_ae_title_names_the_field() -> None:
    text = variant("    client_cert: valid\n", "    client_cert: valid\n    calling_aet: 'PACS\\\\MAIN'\n",
                   (SCENARIOS / "calling-aet.yaml").read_text())
    assert "calling_aet" in error_for(text) and "not a DICOM AE title" in error_for(text)


def test_an_unknown_operation_lists_the_registered_ones() -> None:
    text = variant("operation: [echo, store-ct]", "operation: [echo, get]", (SCENARIOS / "calling-aet.yaml").read_text())
    assert "unknown operation 'get': use one of echo, store-ct, store-large, find, move" in error_for(text)
