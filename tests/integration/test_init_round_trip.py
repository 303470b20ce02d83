"""`dicomtls init` round trip on the manifest fixtures of each proxy kind, on the local backend: init from the
manifests writes a policy; the unchanged configuration passes it (exit 0); a copy with its client verification
changed fails it (exit 1), naming a rule of the written policy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, leftovers_under, run_invoke

pytestmark = pytest.mark.integration

MANIFESTS = ROOT / "tests" / "fixtures" / "manifests"

BREAKS = {
    # fixture: (file, what it says, what the broken copy says): each makes a client without a certificate (or with
    # an expired one) end otherwise than the run init pinned.
    "orthweb-envoy": ("envoy.yaml", "require_client_certificate: false", "require_client_certificate: true"),
    "orthweb-envoy-2023": ("envoy.yaml", "allow_expired_certificate: true", "allow_expired_certificate: false"),
    "korthweb-traefik": ("tlsoption.yaml", "clientAuthType: NoClientCert",
                         "clientAuthType: RequireAndVerifyClientCert"),
    "korthweb-manual": ("orthweb.yaml", "mode: SIMPLE", "mode: MUTUAL"),
    "haproxy": ("haproxy.cfg", "verify optional", "verify required"),
    "korthweb-helm": ("values.yaml", "clientAuthType: NoClientCert", "clientAuthType: RequireAndVerifyClientCert"),
    "orthweb-compose": ("config/nginx/nginx.conf", "ssl_handshake_timeout 30s;",
                        "ssl_handshake_timeout 30s;\n        ssl_verify_client on;\n"
                        "        ssl_client_certificate /etc/nginx/site.pem;"),
}


def _tail(proc: object) -> str:
    return getattr(proc, "stdout", "")[-3000:] + getattr(proc, "stderr", "")[-2000:]


@pytest.mark.parametrize("fixture", sorted(BREAKS))
def test_init_pins_the_observed_run_and_a_broken_config_breaks_a_named_rule(fixture: str, tmp_path: Path) -> None:
    unchanged, broken = tmp_path / "unchanged", tmp_path / "broken"
    shutil.copytree(MANIFESTS / fixture, unchanged)
    shutil.copytree(MANIFESTS / fixture, broken)
    name, said, changed = BREAKS[fixture]
    text = (broken / name).read_text()
    assert said in text
    (broken / name).write_text(text.replace(said, changed, 1))
    policy = tmp_path / "dicomtls-policy.yaml"

    init = run_invoke(["init", "--backend", "local", "--manifests", str(unchanged), "--out", str(tmp_path / "init"),
                       "--write", str(policy)], tmp_path)
    assert init.returncode == 0, _tail(init)
    rules = [r["name"] for r in yaml.safe_load(policy.read_text())["cells"]]
    observed = json.loads((tmp_path / "init" / "results.json").read_text())["cells"]
    assert 0 < len(rules) < len(observed) / 3  # grouped, not one rule per cell

    runs = {}
    for label, manifests in (("unchanged", unchanged), ("broken", broken)):
        runs[label] = run_invoke(["matrix", "--backend", "local", "--manifests", str(manifests), "--policy",
                                  str(policy), "--out", str(tmp_path / label / "out")], tmp_path)
    assert runs["unchanged"].returncode == 0, _tail(runs["unchanged"])
    assert runs["broken"].returncode == 1, _tail(runs["broken"])
    cells = json.loads((tmp_path / "broken" / "out" / "results.json").read_text())["cells"]
    broke = {b["rule"] for c in cells for b in c["policy"]}
    assert broke and broke <= set(rules), broke
    assert all(f"policy rule '{rule}' wants" in runs["broken"].stdout for rule in broke)
    assert leftovers_under(tmp_path) == (set(), set())
