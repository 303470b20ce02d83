"""`invoke fix` on the user's own files: the Orthweb-shaped Envoy bootstrap (Envoy 1.40 refuses dcm4che's
--tls-aes offer), Korthweb-style Traefik manifests (a named HostSNI, dcmtk without SNI) and an Orthweb-shaped
compose project whose nginx.conf requires client certificates (a client without one). Each proven patch is
applied with `patch -p1` to a copy of the original tree, and a plain `invoke matrix --manifests` of the patched
tree must give what the fix run reported."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, leftovers_under, matrix_run, run_invoke
from .test_bad_input import assert_one_line_error

pytestmark = pytest.mark.integration

FIXTURES = ROOT / "tests" / "fixtures"
ORTHWEB = FIXTURES / "manifests" / "orthweb-envoy"
TRAEFIK = FIXTURES / "manifests" / "korthweb-traefik"
NGINX_MUTUAL = FIXTURES / "manifests" / "orthweb-compose-mutual"
NGINX_PREREAD = FIXTURES / "manifests" / "nginx-preread-named"


def _digests(tree: Path) -> dict[str, str]:
    return {str(f.relative_to(tree)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(tree.rglob("*"))
            if f.is_file()}


def fix_run(tmp: Path, tree: Path, *args: str) -> dict[str, Any]:
    before = _digests(tree)
    run = matrix_run(tmp, "--backend", "local", "--jobs", "4", *args)
    run["untouched"] = _digests(tree) == before
    return run


@pytest.fixture(scope="module")
def orthweb(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return fix_run(tmp_path_factory.mktemp("fix-orthweb"), ORTHWEB, "--try-fixes", "--manifests", str(ORTHWEB))


@pytest.fixture(scope="module")
def traefik(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("fix-traefik")
    before = _digests(TRAEFIK)
    proc = run_invoke(["fix", "--backend", "local", "--jobs", "4", "--out", str(tmp / "out"), "--scenario",
                       str(FIXTURES / "fix-korthweb-traefik.yaml")], tmp)
    return {"proc": proc, "results": json.loads((tmp / "out" / "results.json").read_text()), "out": tmp / "out",
            "untouched": _digests(TRAEFIK) == before, "leftovers": leftovers_under(tmp)}


@pytest.fixture(scope="module")
def nginx_mutual(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("fix-nginx")
    before = _digests(NGINX_MUTUAL)
    proc = run_invoke(["fix", "--backend", "local", "--jobs", "4", "--out", str(tmp / "out"), "--manifests",
                       str(NGINX_MUTUAL)], tmp)
    return {"proc": proc, "results": json.loads((tmp / "out" / "results.json").read_text()), "out": tmp / "out",
            "untouched": _digests(NGINX_MUTUAL) == before, "leftovers": leftovers_under(tmp)}


def trial(run: dict[str, Any], cell: str, candidate: str) -> dict[str, Any]:
    entry = next(c for c in run["results"]["fixes"]["cells"] if c["cell"] == cell)
    return next(t for t in entry["trials"] if t["candidate"]["id"] == candidate)


def patched_rerun(run: dict[str, Any], found: dict[str, Any], original: Path, tmp: Path) -> dict[str, Any]:
    """The patch applied with `patch -p1` to a copy of the user's tree (from the directory holding it), its files
    equal to those of the tree the fix run ran, then a plain `invoke matrix --manifests` of it."""
    holder = tmp / "user"
    shutil.copytree(original, holder / original.name)
    proc = subprocess.run(["patch", "-p1", "--forward", "-i", str(run["out"] / found["patch"])], cwd=holder,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = _digests(run["out"] / found["tree"])  # the files the environment reads (not a makefile beside them)
    assert {f: d for f, d in _digests(holder / original.name).items() if f in ran} == ran
    return matrix_run(tmp / "rerun", "--backend", "local", "--manifests", str(holder / original.name))


def outcome(cell: dict[str, Any]) -> str:
    return "pass" if cell["actual"] == "pass" else cell["reason"]


def test_fix_run_leaves_the_users_files_as_they_were_and_nothing_running(orthweb: dict[str, Any],
                                                                         traefik: dict[str, Any],
                                                                         nginx_mutual: dict[str, Any]) -> None:
    for run in (orthweb, traefik, nginx_mutual):
        assert run["proc"].returncode == 0, run["proc"].stdout + run["proc"].stderr
        assert run["untouched"]
        assert run["leftovers"] == (set(), set())


def test_envoy_cipher_patch_passes_dcm4che_and_fails_b10(orthweb: dict[str, Any]) -> None:
    found = trial(orthweb, "pynetdicom sni=right cert=none echo profile=dcm4che-tls-aes", "add-cipher-aes128-sha")
    assert found["after"] == "pass"
    assert found["mark"] == "breaks"  # ⚠: it passes, but PS3.15 B.10 no longer holds
    assert {"profile": "B.10", "title": found["verdicts"][0]["title"], "before": True, "after": False} \
        in found["verdicts"]
    assert found["candidate"]["cost"] and "forward secret" in found["candidate"]["cost"]
    assert "+              - AES128-SHA\n" in (orthweb["out"] / found["patch"]).read_text()


def test_client_side_profile_change_passes_against_the_unchanged_envoy(orthweb: dict[str, Any]) -> None:
    found = trial(orthweb, "pynetdicom sni=right cert=none echo profile=dcm4che-tls-aes", "client-default-profile")
    assert (found["mark"], found["cell"], found["after"]) == ("passes", "pynetdicom sni=right cert=none echo", "pass")


def test_envoy_patch_applies_and_its_rerun_gives_the_reported_cells(orthweb: dict[str, Any],
                                                                    tmp_path: Path) -> None:
    cell = "pynetdicom sni=right cert=none echo profile=dcm4che-tls-aes"
    found = trial(orthweb, cell, "add-cipher-aes128-sha")
    rerun = patched_rerun(orthweb, found, ORTHWEB, tmp_path)
    expected = {c["cell"]: c["after"] for c in found["changed"]} | {cell: found["after"]}
    before = {layout_label(c): outcome(c) for c in orthweb["results"]["cells"]}
    after = {layout_label(c): outcome(c) for c in rerun["results"]["cells"]}
    assert after == {label: expected.get(label, was) for label, was in before.items()}
    verdicts = {v["section"]: v["compliant"] for v in rerun["results"]["environments"][0]["scan"]["verdicts"]}
    assert verdicts["B.10"] is False


def layout_label(cell: dict[str, Any]) -> str:
    return cell["id"].split("/", 2)[2]


def test_traefik_catch_all_alone_still_fails_on_the_fallback_certificate(traefik: dict[str, Any]) -> None:
    cell = "dcmtk sni=none cert=none echo"
    assert (trial(traefik, cell, "catch-all-route")["mark"], trial(traefik, cell, "catch-all-route")["after"]) \
        == ("fails", "tls-unknown-ca")
    assert trial(traefik, cell, "default-certificate")["mark"] == "fails"
    both = trial(traefik, cell, "catch-all-route+default-certificate")
    assert (both["after"], both["mark"] in ("passes", "breaks")) == ("pass", True)


def test_traefik_combined_patch_applies_and_its_rerun_passes_dcmtk_without_sni(traefik: dict[str, Any],
                                                                             tmp_path: Path) -> None:
    cell = "dcmtk sni=none cert=none echo"
    found = trial(traefik, cell, "catch-all-route+default-certificate")
    text = (traefik["out"] / found["patch"]).read_text()
    assert "+  - match: HostSNI(`*`)\n" in text and "+  defaultCertificate:\n" in text
    rerun = patched_rerun(traefik, found, TRAEFIK, tmp_path)
    after = {layout_label(c): outcome(c) for c in rerun["results"]["cells"]}
    assert after[cell] == "pass"
    assert all(after[c["cell"]] == c["after"] for c in found["changed"])


def test_reports_carry_the_fixes_with_links_to_the_patches(orthweb: dict[str, Any]) -> None:
    found = trial(orthweb, "pynetdicom sni=right cert=none echo profile=dcm4che-tls-aes", "add-cipher-aes128-sha")
    summary = (orthweb["out"] / "summary.md").read_text()
    page = (orthweb["out"] / "report.html").read_text()
    assert "### Fixes" in summary and f"[patch]({found['patch']})" in summary
    assert '<section id="fixes">' in page and f'href="{found["patch"]}"' in page
    assert "⚠ server-config add-cipher-aes128-sha: pass" in orthweb["proc"].stdout


def test_fix_of_a_missing_tree_is_one_line_and_exit_2(tmp_path: Path, clean_slate: Path) -> None:
    proc = run_invoke(["fix", "--manifests", str(tmp_path / "gitops"), "--out", str(tmp_path / "out")], tmp_path)
    assert_one_line_error(proc, "gitops", "no such file or directory")


def test_traefik_client_without_sni_is_fixed_by_the_stunnel_sidecar_whose_config_is_handed_back(
        traefik: dict[str, Any]) -> None:
    found = trial(traefik, "dcmtk sni=none cert=none echo", "stunnel-sidecar")
    assert (found["mark"], found["cell"], found["after"]) == ("passes", "dcmtk-stunnel sni=right cert=none echo", "pass")
    config = (traefik["out"] / found["patch"]).read_text()
    assert "sni = dicom.korthweb.test" in config and "verifyChain = yes" in config
    assert "checkHost = dicom.korthweb.test" in config


def test_nginx_optional_client_cert_is_proven_and_its_patch_changes_only_ssl_verify_client(
        nginx_mutual: dict[str, Any]) -> None:
    cell = "dcmtk sni=none cert=none echo"
    before = next(c for c in nginx_mutual["results"]["cells"] if layout_label(c) == cell)
    assert outcome(before) == "tls-cert-required"
    found = trial(nginx_mutual, cell, "client-cert-optional")
    assert (found["mark"], found["after"]) == ("passes", "pass")
    assert found["candidate"]["cost"] and "mutual authentication" in found["candidate"]["cost"]
    text = (nginx_mutual["out"] / found["patch"]).read_text()
    removed = [line for line in text.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line for line in text.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert (removed, added) == (["-        ssl_verify_client on;"], ["+        ssl_verify_client optional;"])
    assert "+++ b/orthweb-compose-mutual/config/nginx/nginx.conf" in text


def test_nginx_patch_applies_to_the_users_tree_and_its_rerun_passes_the_client_without_certificate(
        nginx_mutual: dict[str, Any], tmp_path: Path) -> None:
    cell = "dcmtk sni=none cert=none echo"
    found = trial(nginx_mutual, cell, "client-cert-optional")
    check = subprocess.run(["git", "apply", "--check", str(nginx_mutual["out"] / found["patch"])],
                           cwd=NGINX_MUTUAL.parent, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    rerun = patched_rerun(nginx_mutual, found, NGINX_MUTUAL, tmp_path)
    assert rerun["proc"].returncode == 0, rerun["proc"].stdout[-3000:]
    after = {layout_label(c): outcome(c) for c in rerun["results"]["cells"]}
    assert after[cell] == "pass"
    assert all(after[c["cell"]] == c["after"] for c in found["changed"])


def test_nginx_sni_map_without_default_gets_a_proven_default_entry_for_clients_without_sni(tmp_path: Path) -> None:
    run = fix_run(tmp_path, NGINX_PREREAD, "--try-fixes", "--manifests", str(NGINX_PREREAD))
    assert run["proc"].returncode == 0, run["proc"].stdout[-3000:]
    assert run["untouched"] and run["leftovers"] == (set(), set())
    found = trial(run, "pynetdicom sni=none cert=none echo", "catch-all-route")
    assert (found["mark"], found["after"]) == ("passes", "pass")
    text = (run["out"] / found["patch"]).read_text()
    assert [line for line in text.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        "+        default orthanc:4242;"]
    holder = tmp_path / "user"
    shutil.copytree(NGINX_PREREAD, holder / NGINX_PREREAD.name)
    check = subprocess.run(["git", "apply", "--check", str(run["out"] / found["patch"])], cwd=holder,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
