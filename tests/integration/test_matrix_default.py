"""The default matrix, run once as a user runs it, checked cell by cell against what it must show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dicomtls.probes import WRONG_SNI

from . import baseline
from .conftest import SIDE_BY_SIDE, answers, environment_order, matrix_run, scenario_options

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def default_run(local_default_run: dict[str, Any]) -> dict[str, Any]:
    return local_default_run


def cells(run: dict[str, Any], **where: str) -> list[dict[str, Any]]:
    found = [c for c in run["results"]["cells"] if all(c[k] == v for k, v in where.items())]
    assert found, f"no cell matches {where}"
    return found


def test_default_matrix_exits_zero_with_every_cell_as_expected(default_run: dict[str, Any]) -> None:
    proc = default_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    results = default_run["results"]["cells"]
    assert len(results) >= 40
    assert {c["verdict"] for c in results} == {"ok"}
    assert "cells as expected, 0 unexpected" in proc.stdout


def test_default_matrix_gives_the_recorded_answers_cell_by_cell(default_run: dict[str, Any]) -> None:
    """Every cell's (actual, reason, site, certificate) as tests/fixtures/baseline/cells-local.json recorded it.
    Refreshed on purpose only: `invoke matrix --backend local --out OUT`, then
    `PYTHONPATH=src python -m tests.integration.baseline local OUT/results.json` (see tests/integration/baseline.py)."""
    changed = baseline.differences(default_run["results"]["cells"], "local")
    assert not changed, (f"{len(changed)} cells differ from {baseline.baseline_file('local')}:\n"
                         + "\n".join(changed))


def test_default_matrix_covers_four_scenarios_and_records_versions(default_run: dict[str, Any]) -> None:
    run = default_run["results"]["run"]
    assert set(run["scenarios"]) >= {"orthweb-envoy", "envoy-mtls", "envoy-sni-named-hosts", "orthanc-native-tls"}
    assert run["backend"] == "local"
    for component in ("orthanc", "envoy", "dcmtk", "pynetdicom", "openssl"):
        assert run["versions"][component] not in ("", "unknown")


def test_dcmtk_without_sni_is_closed_by_sni_named_envoy(default_run: dict[str, Any]) -> None:
    for cell in cells(default_run, environment="envoy-named-hosts", client="dcmtk"):
        assert cell["actual"] == "fail"
        assert cell["reason"] == "tls-no-matching-sni"
        assert any("NR" in e or "filter_chain" in e for e in cell["evidence"]), cell["evidence"]


def test_pynetdicom_with_right_sni_passes_named_hosts_and_wrong_sni_fails(default_run: dict[str, Any]) -> None:
    assert {c["actual"] for c in cells(default_run, environment="envoy-named-hosts", client="pynetdicom", sni="right")} == {"pass"}
    wrong = cells(default_run, environment="envoy-named-hosts", client="pynetdicom", sni="wrong")
    assert {(c["actual"], c["reason"]) for c in wrong} == {("fail", "tls-no-matching-sni")}


def test_untrusted_client_certificate_is_rejected_with_unknown_ca(default_run: dict[str, Any]) -> None:
    for cell in cells(default_run, client_cert="untrusted", sni="none"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-unknown-ca"), cell["id"]
        assert "server rejected the client certificate" in cell["summary"]


def test_expired_client_certificate_is_rejected_where_the_server_checks(default_run: dict[str, Any]) -> None:
    expired = [c for c in cells(default_run, client_cert="expired") if c["sni"] != "wrong"]
    assert expired
    for cell in expired:
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-cert-expired"), cell["id"]


def test_every_passing_store_was_verified_in_orthanc_including_the_large_object(default_run: dict[str, Any]) -> None:
    stores = [c for c in default_run["results"]["cells"] if c["operation"].startswith("store") and c["actual"] == "pass"]
    assert stores
    for cell in stores:
        assert "holds the sent dataset" in cell["detail"], cell["id"]
    large = [c for c in stores if c["operation"] == "store-large"]
    assert large and all(c["sent_bytes"] >= 10 * 1024 * 1024 for c in large)


def test_junit_has_one_testcase_per_cell(default_run: dict[str, Any]) -> None:
    import xml.etree.ElementTree as ET

    root = ET.parse(default_run["out"] / "junit.xml").getroot()
    assert len(root.findall(".//testcase")) == len(default_run["results"]["cells"])
    assert not root.findall(".//failure")


def test_default_run_leaves_no_process_or_port_behind(default_run: dict[str, Any]) -> None:
    assert default_run["leftovers"] == (set(), set())


def test_private_keys_are_0600_and_never_in_reports(default_run: dict[str, Any]) -> None:
    out: Path = default_run["out"]
    keys = list(out.glob("pki/*/*.key")) + list(out.glob("pki/*/ca-private/*.key"))
    assert keys
    assert all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
    for report in ("results.json", "junit.xml"):
        assert "PRIVATE KEY" not in (out / report).read_text()
    for config in out.glob("envs/*/*/*.[jy]*"):
        assert "ca-private" not in config.read_text(errors="replace"), config


def test_scan_records_what_each_proxy_serves_to_right_wrong_and_no_sni(default_run: dict[str, Any]) -> None:
    environments = {e["name"]: e for e in default_run["results"]["environments"]}
    kinds = {"dicom.korthweb.test": "right", WRONG_SNI: "wrong", None: "none"}
    named = {kinds[c["sni"]]: c for c in environments["envoy-named-hosts"]["scan"]["chains"]}
    assert named["right"]["certificates"] and named["right"]["hostname_match"] is True
    assert named["right"]["intermediate"] == "included"  # two-level PKI: the proxy sends the full chain
    assert not named["wrong"]["certificates"] and named["wrong"]["error"]  # closed: no filter chain matches
    assert not named["none"]["certificates"] and named["none"]["error"]
    wildcard = environments["envoy-wildcard-hosts"]["scan"]["chains"]
    assert len(wildcard) == 3 and all(c["certificates"] for c in wildcard)


# --- several DICOM sites behind one proxy (multi-site-sni) ---------------------------------------------------------


def test_every_multi_site_store_lands_in_the_routed_orthanc_and_in_no_other(default_run: dict[str, Any]) -> None:
    stores = cells(default_run, scenario="multi-site-sni", operation="store-ct", actual="pass")
    assert len(stores) >= 20
    for c in stores:
        other = {"north": "south", "south": "north"}[c["site"]]
        assert c["site"] == c["expected_site"], c["id"]
        assert c["detail"].startswith(f"{c['site']}: Orthanc instance") and c["detail"].endswith(f"not in {other}")
    assert {c["site"] for c in stores} == {"north", "south"}


def test_each_site_is_reached_by_its_own_name_with_its_own_certificate(default_run: dict[str, Any]) -> None:
    for site in ("north", "south"):
        reached = [c for c in cells(default_run, scenario="multi-site-sni", sni=site) if c["actual"] == "pass"]
        assert len(reached) >= 12
        assert {(c["site"], c["certificate"]) for c in reached} == {(site, f"{site}.dicom.test")}


def test_clients_without_sni_reach_the_first_site_or_are_closed(default_run: dict[str, Any]) -> None:
    no_sni = cells(default_run, scenario="multi-site-sni", sni="none")
    by_env: dict[str, set[tuple[str, str | None]]] = {}
    for c in no_sni:
        by_env.setdefault(c["environment"], set()).add((c["actual"], c["site"] or c["reason"]))
    closed = {"envoy-named-sites", "istio-named-hosts", "istio-copied-virtualservice", "haproxy-passthrough"}
    for env, outcomes in by_env.items():
        assert outcomes == ({("fail", "tls-no-matching-sni")} if env in closed else {("pass", "north")}), env
    dcmtk = [c for c in no_sni if c["client"] == "dcmtk" and c["actual"] == "pass"]
    assert dcmtk and {c["certificate"] for c in dcmtk} == {"north.dicom.test"}  # dcmtk 3.6.7 names what it got


def test_a_copied_virtualservice_is_caught_only_by_where_the_store_landed(default_run: dict[str, Any]) -> None:
    (store,) = cells(default_run, environment="istio-copied-virtualservice", sni="south", operation="store-ct")
    assert (store["actual"], store["reason"], store["verdict"]) == ("fail", "misrouted", "ok")
    assert store["certificate"] == "south.dicom.test"  # TLS looks right: south's certificate
    assert store["site"] == "north" and store["detail"].startswith("north: Orthanc instance")
    assert "site north's server took the association" in store["evidence"][0]


def test_the_scan_records_each_sites_chain(default_run: dict[str, Any]) -> None:
    environments = {e["name"]: e for e in default_run["results"]["environments"]}
    chains = {c["sni"]: c for c in environments["haproxy-default-site"]["scan"]["chains"]}
    for site in ("north", "south"):
        served = chains[f"{site}.dicom.test"]
        assert served["hostname_match"] is True and served["certificates"][0]["subject"].startswith(f"CN={site}.")
    assert chains[None]["certificates"][0]["subject"].startswith("CN=north.")  # no SNI: the first crt
    assert [s["name"] for s in environments["haproxy-default-site"]["sites"]] == ["north", "south"]


def test_environments_side_by_side_give_the_answers_of_one_at_a_time(default_run: dict[str, Any],
                                                                      tmp_path: Path) -> None:
    assert default_run["results"]["run"]["jobs"] > 1, "the default run should use --jobs auto"
    one = matrix_run(tmp_path, "--backend", "local", "--jobs", "1", *scenario_options(SIDE_BY_SIDE["local"]))
    assert one["proc"].returncode == 0, one["proc"].stdout[-3000:]
    assert one["results"]["run"]["jobs"] == 1
    assert answers(one) == answers(default_run, SIDE_BY_SIDE["local"])
    repeated = SIDE_BY_SIDE["local"]
    assert environment_order(one, repeated) == environment_order(default_run, repeated)
    assert one["leftovers"] == (set(), set())
