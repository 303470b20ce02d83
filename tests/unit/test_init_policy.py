"""`dicomtls init` on captured runs: the policy it writes pins every observed cell in a few readable rules, loads
as --policy loads it, holds on the run it came from, and breaks (naming its rule) when a cell ends otherwise."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dicomtls import api
from dicomtls.cli import program
from dicomtls.diagnose import EXPLANATIONS
from dicomtls.init_policy import Observed, PinnedRule, find_rules, observed_cells, render, usage
from dicomtls.policy import apply as apply_policy
from dicomtls.policy import load_policies
from dicomtls.reasons import Reason
from dicomtls.results import MatrixResult

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CAPTURED = sorted(FIXTURES.glob("results_*.json"))
ORTHWEB_2023 = FIXTURES / "results_manifests_orthweb_envoy_2023.json"
NAMED_HOSTS = FIXTURES / "results_envoy_sni_named_hosts.json"


def written(result: MatrixResult, tmp_path: Path) -> Path:
    path = tmp_path / "dicomtls-policy.yaml"
    path.write_text(render(result, find_rules(observed_cells(result)), usage(result, str(path)), "a test",
                           lambda r: EXPLANATIONS[r][0]))
    return path


def broken_rules(result: MatrixResult, policy: Path) -> dict[str, set[str]]:
    """Cell id -> the names of the rules it breaks, for the policy file applied as `--policy FILE` applies it."""
    loaded = load_policies([str(policy)])
    assert loaded is not None
    apply_policy(loaded, result)
    return {c.cell.id: {b.rule for b in c.policy} for c in result.cells if c.policy}


def names(rules: list[PinnedRule]) -> list[str]:
    return [r.name for r in rules]


@pytest.mark.parametrize("fixture", CAPTURED, ids=lambda p: p.stem)
def test_the_written_policy_loads_and_holds_on_the_run_it_pins(fixture: Path, tmp_path: Path) -> None:
    result = api.read_results(fixture)
    assert broken_rules(result, written(result, tmp_path)) == {}
    assert result.violations == []


@pytest.mark.parametrize("fixture", CAPTURED, ids=lambda p: p.stem)
def test_every_observed_cell_is_pinned_by_a_few_rules(fixture: Path) -> None:
    cells = observed_cells(api.read_results(fixture))
    rules = find_rules(cells)
    assert 3 * len(rules) < len(cells)  # a few readable rules: fewer than one per three cells
    for cell in cells:
        matching = [r for r in rules if all(cell.values[a] in v for a, v in r.match.items())]
        assert matching and all(r.ending == cell.ending for r in matching), cell


def test_orthweb_2023_is_pinned_by_what_its_cells_share() -> None:
    assert names(find_rules(observed_cells(api.read_results(ORTHWEB_2023)))) == [
        "sni none/right, client_cert none/valid/expired, profile default passes",
        "sni wrong fails with tls-hostname-mismatch",
        "profile aes/dcm4che-tls-aes fails with tls-no-shared-cipher",
        "client_cert untrusted fails with tls-unknown-ca",
    ]


def test_rules_narrow_to_an_environment_only_where_environments_differ() -> None:
    rules = names(find_rules(observed_cells(api.read_results(NAMED_HOSTS))))
    assert "environment envoy-named-hosts, sni none/wrong fails with tls-no-matching-sni" in rules
    assert "environment envoy-wildcard-hosts, sni wrong fails with tls-hostname-mismatch" in rules


def test_an_untrusted_certificate_let_through_breaks_the_rule_that_pinned_its_refusal(tmp_path: Path) -> None:
    result = api.read_results(ORTHWEB_2023)
    policy = written(result, tmp_path)
    untrusted = [c for c in result.cells if c.cell.probe.client_cert == "untrusted"]
    for cell in untrusted:
        cell.actual, cell.reason = "pass", None
    assert broken_rules(result, policy) == {
        c.cell.id: {"client_cert untrusted fails with tls-unknown-ca"} for c in untrusted}


def test_a_pass_that_accepts_an_expired_certificate_carries_a_note(tmp_path: Path) -> None:
    text = written(api.read_results(ORTHWEB_2023), tmp_path).read_text()
    assert "a client certificate expired is ACCEPTED" in text
    assert "# protects: these cells keep being refused with tls-unknown-ca" in text


def test_findings_worse_than_the_worst_observed_are_pinned(tmp_path: Path) -> None:
    text = written(api.read_results(ORTHWEB_2023), tmp_path).read_text()  # its worst finding: high
    assert 'findings:\n  - name: "no finding of severity critical or worse"\n    severity: critical\n' in text


def test_cells_alike_on_every_axis_that_ended_differently_are_left_unpinned() -> None:
    base = {"environment": "e", "client": "dcmtk", "sni": "none", "client_cert": "valid", "operation": "echo",
            "transport": "tls", "server_cert_check": "verify", "profile": "default", "client_version": "default",
            "fault": "none", "calling_aet": "DICOMTLS", "called_aet": ""}
    cells = [Observed(base, ("pass", None)), Observed(base, ("fail", Reason.TLS_UNKNOWN_CA)),
             Observed({**base, "client_cert": "none"}, ("fail", Reason.TLS_CERT_REQUIRED))]
    rules = find_rules(cells)
    assert [(r.match, r.ending) for r in rules] == [({"client_cert": ["none"]}, ("fail", Reason.TLS_CERT_REQUIRED))]


def test_where_no_box_of_shared_values_fits_each_cell_gets_its_own_rule() -> None:
    base = {"environment": "e", "client": "dcmtk", "sni": "none", "client_cert": "valid", "operation": "echo",
            "transport": "tls", "server_cert_check": "verify", "profile": "default", "client_version": "default",
            "fault": "none", "calling_aet": "DICOMTLS", "called_aet": ""}
    xor = [Observed({**base, "sni": sni, "client_cert": cert}, ("pass", None) if (sni == "none") == (cert == "valid")
                    else ("fail", Reason.TLS_CERT_REQUIRED))
           for sni in ("none", "right") for cert in ("valid", "none")]
    assert sorted(names(find_rules(xor))) == [
        "sni none, client_cert none fails with tls-cert-required", "sni none, client_cert valid passes",
        "sni right, client_cert none passes", "sni right, client_cert valid fails with tls-cert-required"]


def test_cells_that_did_not_end_are_not_pinned() -> None:
    result = api.read_results(ORTHWEB_2023)
    result.cells = [dataclasses.replace(c, error="dicomtls crashed") if c.cell.probe.sni == "wrong" else c
                    for c in result.cells]
    assert not any("sni wrong" in name for name in names(find_rules(observed_cells(result))))


def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        program.run(["dicomtls", *argv])
        code = 0
    except SystemExit as exited:
        code = exited.code or 0  # type: ignore[assignment]
    out, err = capsys.readouterr()
    return code, out, err


def test_init_writes_the_policy_and_refuses_to_overwrite_it_without_force(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "p.yaml"
    code, out, _ = run("init", "--from", str(ORTHWEB_2023), "--write", str(target), capsys=capsys)
    assert code == 0 and target.is_file() and f"wrote {target}" in out
    target.write_text("# edited\n")
    code, out, err = run("init", "--from", str(ORTHWEB_2023), "--write", str(target), capsys=capsys)
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [f"dicomtls: {target} exists: give --force to replace it, or --write "
                                        "another file"]
    assert target.read_text() == "# edited\n"
    code, _, _ = run("init", "--from", str(ORTHWEB_2023), "--write", str(target), "--force", capsys=capsys)
    assert code == 0 and target.read_text().startswith("# dicomtls policy written by `dicomtls init`")


def test_init_needs_a_run_or_manifests_but_not_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["--from", str(ORTHWEB_2023), "--manifests", str(tmp_path)]):
        code, _, err = run("init", "--write", str(tmp_path / "p.yaml"), *argv, capsys=capsys)
        assert code == 2 and err.strip().splitlines() == [
            "dicomtls: say what to pin: --from OUT/results.json (a run's), or --manifests PATH (run it now)"]


def test_the_header_names_the_command_that_checks_a_run_like_the_pinned_one() -> None:
    result = api.read_results(ORTHWEB_2023)
    assert usage(result, "p.yaml", "envoy.yaml") == "invoke matrix --manifests envoy.yaml --policy p.yaml"
    assert usage(result, "p.yaml").startswith("invoke matrix --manifests PATH --policy p.yaml")
    result.run.scenarios = ["probe"]
    assert usage(result, "p.yaml").startswith(f"invoke probe --target {result.environments[0].entry} --ca CA.crt "
                                              "--policy p.yaml")
    result.run.scenarios = ["envoy-mtls", "haproxy-tls"]
    assert usage(result, "p.yaml") == "invoke matrix --scenario envoy-mtls --scenario haproxy-tls --policy p.yaml"


def test_init_from_a_file_that_is_not_a_run_is_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "p.yaml"
    code, _, err = run("init", "--from", str(tmp_path / "nothing.json"), "--write", str(target), capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "nothing.json: no such file" in err
    assert not target.exists()


def test_a_long_list_of_environments_is_named_by_the_ones_it_leaves_out() -> None:
    base = {"environment": "e", "client": "dcmtk", "sni": "none", "client_cert": "valid", "operation": "echo",
            "transport": "tls", "server_cert_check": "verify", "profile": "default", "client_version": "default",
            "fault": "none", "calling_aet": "DICOMTLS", "called_aet": ""}
    cells = [Observed({**base, "environment": env, "sni": sni},
                      ("fail", Reason.TLS_NO_MATCHING_SNI) if env == "named" and sni == "none" else ("pass", None))
             for env in ("a", "b", "c", "d", "named") for sni in ("none", "right")]
    assert names(find_rules(cells)) == ["environment other than named passes", "sni right passes",
                                        "environment named, sni none fails with tls-no-matching-sni"]
    assert find_rules(cells)[0].match == {"environment": ["a", "b", "c", "d"]}
