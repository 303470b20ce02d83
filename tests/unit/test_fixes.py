"""Fix candidates per reason and their costs, the edits on each source kind, and the patch they make: minimal,
comments and the file's own spacing kept, paths that `patch -p1` takes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dicomtls.diagnose import EXPLANATIONS, Facts, Reason, Side
from dicomtls.fixes import envoy_bootstrap, options, patch, traefik
from dicomtls.fixes.candidates import Edit, NotApplicable, client_side, server_config
from dicomtls.fixes.prove import _options_variant
from dicomtls.fixes.roundtrip import append_document, edit_document, split_documents
from dicomtls.scenario import ComponentConfig, Probe, environment_key, load_scenario

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "manifests"
NONE = Facts()
FALLBACK_REJECTED = Facts(refused_by=Side.CLIENT, fallback_certificate=True)


def probe(**fields: str) -> Probe:
    return Probe(**{"client": "dcmtk", "sni": "none", "client_cert": "none", "operation": "echo", **fields})


def ids(found: list) -> list[str]:  # type: ignore[type-arg]
    return [c.id for c in found]


def test_no_shared_cipher_adds_the_clients_suite_at_the_cost_of_b10() -> None:
    [candidate] = server_config(Reason.TLS_NO_SHARED_CIPHER, NONE,
                                probe(client="pynetdicom", profile="dcm4che-tls-aes"))
    assert candidate.edits == (Edit("add-cipher", "AES128-SHA"),)
    assert candidate.cost is not None and "B.10" in candidate.cost
    assert ids([c for c, _ in client_side(Reason.TLS_NO_SHARED_CIPHER, NONE, probe(profile="aes"), False)]) \
        == ["client-default-profile"]


def test_fallback_certificate_offers_catch_all_and_default_certificate_alone_and_together() -> None:
    assert ids(server_config(Reason.TLS_UNKNOWN_CA, FALLBACK_REJECTED, probe())) \
        == ["default-certificate", "catch-all-route", "catch-all-route+default-certificate"]
    assert server_config(Reason.TLS_UNKNOWN_CA, Facts(refused_by=Side.SERVER, fallback_certificate=True), probe()) == []


def test_ignoring_the_server_certificate_is_offered_with_its_cost() -> None:
    found = dict((c.id, (c, why)) for c, why in client_side(Reason.TLS_UNKNOWN_CA, FALLBACK_REJECTED, probe(), False))
    ignore, why = found["client-ignores-server-cert"]
    assert why is None and ignore.cost is not None and "server authentication" in ignore.cost
    assert found["client-sends-sni"][1] is not None  # dcmtk 3.6.7 here: only Docker's dcmtk 3.6.9 sends SNI


def test_catch_all_route_costs_clients_without_sni_and_optional_cert_costs_mutual_auth() -> None:
    [catch_all] = server_config(Reason.TLS_NO_MATCHING_SNI, NONE, probe())
    [optional] = server_config(Reason.TLS_CERT_REQUIRED, NONE, probe())
    assert catch_all.cost is not None and "no SNI" in catch_all.cost
    assert optional.cost is not None and "mutual authentication" in optional.cost
    assert ids([c for c, _ in client_side(Reason.TLS_CERT_REQUIRED, NONE, probe(), False)]) == ["client-sends-cert"]


def test_protocol_version_lowers_the_minimum_and_names_what_b10_forbids() -> None:
    [candidate] = server_config(Reason.TLS_PROTOCOL_VERSION, NONE, probe(client="pynetdicom", profile="tls1.1-only"))
    assert candidate.edits == (Edit("min-version", "1.1"),) and "B.10" in (candidate.cost or "")


def test_the_diagnosis_names_the_same_fixes() -> None:
    assert "cipher_suites" in EXPLANATIONS[Reason.TLS_NO_SHARED_CIPHER][1]
    assert "HostSNI(`*`)" in EXPLANATIONS[Reason.TLS_NO_MATCHING_SNI][1]
    assert "optional on the server" in EXPLANATIONS[Reason.TLS_CERT_REQUIRED][1]


def test_round_trip_edit_changes_only_the_edited_lines() -> None:
    text = "# keep me\na:\n  b: { x: 1 }   # and me\n  c: 2\n---\n# second\nd: [1, 2]\n"
    changed = edit_document(text, lambda d: "a" in d, lambda d: d["a"].__setitem__("c", 3))
    assert changed == text.replace("c: 2", "c: 3")
    assert "".join(split_documents(text)) == text
    assert append_document("a: 1", {"b": 2}) == "a: 1\n---\nb: 2\n"


def test_envoy_bootstrap_cipher_edit_keeps_flow_mappings_and_envoys_defaults() -> None:
    path = FIXTURES / "orthweb-envoy" / "envoy.yaml"
    [(where, text)] = envoy_bootstrap.apply([path], "EnvoyBootstrap/envoy", (Edit("add-cipher", "AES128-SHA"),)).items()
    added = [line for line in text.splitlines() if line not in path.read_text().splitlines()]
    assert where == path and added[0].strip() == "cipher_suites:" and added[-1].strip() == "- AES128-SHA"
    assert len(added) == 2 + len(envoy_bootstrap.ENVOY_DEFAULT_CIPHERS)
    assert "socket_address: { address: 0.0.0.0, port_value: 11112 }" in text


def test_envoy_catch_all_is_refused_where_a_chain_already_matches_everyone() -> None:
    with pytest.raises(NotApplicable):
        envoy_bootstrap.apply([FIXTURES / "orthweb-envoy" / "envoy.yaml"], "EnvoyBootstrap/envoy",
                              (Edit("catch-all-route"),))


def test_traefik_default_certificate_goes_into_a_new_default_store_beside_the_route() -> None:
    files = sorted((FIXTURES / "korthweb-traefik").glob("*.yaml"))
    changed = traefik.apply(files, "IngressRouteTCP/orthanc-dicom", (Edit("default-certificate"),))
    [(path, text)] = changed.items()
    assert path.name == "ingressroutetcp.yaml" and text.startswith(path.read_text())
    assert text.endswith("kind: TLSStore\nmetadata:\n  name: default\n  namespace: orthanc\nspec:\n"
                         "  defaultCertificate:\n    secretName: orthanc-dicom-tls\n")


def test_traefik_existing_default_store_is_edited_and_its_comments_kept() -> None:
    files = sorted((FIXTURES / "korthweb-traefik-tlsstore").glob("*.yaml"))
    changed = traefik.apply(files, "IngressRouteTCP/orthweb-dicom", (Edit("client-cert-optional"),))
    [(path, text)] = changed.items()
    assert path.name == "tlsoption.yaml" and "clientAuthType: VerifyClientCertIfGiven" in text
    with pytest.raises(NotApplicable):
        traefik.apply(files, "IngressRouteTCP/orthweb-dicom", (Edit("catch-all-route"),))


def test_component_options_take_the_edits_in_per_version_overrides_too() -> None:
    config = ComponentConfig.model_validate({"kind": "envoy", "per_version": {"<1.40": {"cipher_suites": ["A"]}}})
    edited = options.edited(config, (Edit("add-cipher", "AES128-SHA"),))
    assert edited.options["cipher_suites"] == [*envoy_bootstrap.ENVOY_DEFAULT_CIPHERS, "AES128-SHA"]
    assert edited.per_version["<1.40"]["cipher_suites"] == ["A", "AES128-SHA"]
    with pytest.raises(NotApplicable):
        options.edited(ComponentConfig.model_validate({"kind": "nginx"}), (Edit("add-cipher", "AES128-SHA"),))


def test_patch_applies_with_patch_p1_from_the_directory_holding_the_tree(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.yaml").write_text("a: 1\nb: 2\n")
    diff = patch.unified({"tree/a.yaml": ("a: 1\nb: 2\n", "a: 1\nb: 3\n")})
    assert diff.startswith("--- a/tree/a.yaml\n+++ b/tree/a.yaml\n")
    subprocess.run(["patch", "-p1"], input=diff, text=True, cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "tree" / "a.yaml").read_text() == "a: 1\nb: 3\n"


def test_a_scenario_environment_variant_changes_only_its_proxy_options_and_observes_every_cell() -> None:
    scenario = load_scenario("envoy-sni-named-hosts")
    env = scenario.environment("envoy-named-hosts")
    [candidate] = server_config(Reason.TLS_NO_MATCHING_SNI, NONE, probe())
    variant = _options_variant(scenario, env, candidate, "fix-1").scenario
    [changed] = variant.environments
    assert changed.proxy is not None and changed.proxy.build("proxy").options.sni == "any"  # type: ignore[attr-defined]
    assert environment_key(variant.pki_spec(), changed) != environment_key(scenario.pki_spec(), env)
    cells = variant.cells()
    assert {c.environment for c in cells} == {"envoy-named-hosts"} and {c.expected for c in cells} == {"observe"}
    assert {c.probe for c in cells} == {c.probe for c in scenario.cells() if c.environment == "envoy-named-hosts"}


def test_a_dcmtk_client_without_sni_is_offered_the_stunnel_sidecar_that_sends_it() -> None:
    found = {c.id: c for c, why in client_side(Reason.TLS_NO_MATCHING_SNI, NONE, probe(), False) if why is None}
    assert found["stunnel-sidecar"].changed_probe(probe()).client == "dcmtk-stunnel"
    assert found["stunnel-sidecar"].changed_probe(probe()).sni == "right"
    behind_stunnel = dict(client_side(Reason.TLS_NO_MATCHING_SNI, NONE, probe(client="dcmtk-stunnel"), False))
    assert [c.probe for c in behind_stunnel] == [(("sni", "right"),)]  # stunnel sends SNI itself, any dcmtk
    assert "stunnel-sidecar" not in ids(list(behind_stunnel))


def test_the_offered_sidecar_config_keeps_sni_verification_and_the_client_certificate_proven() -> None:
    from dicomtls.fixes.sidecar import deployable_config

    text = deployable_config("dicom.korthweb.test", probe(client="dcmtk-stunnel", sni="right", client_cert="valid"),
                             "dcmtk-stunnel sni=right cert=valid echo", "istio-named-mutual")
    settings = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line and not line.startswith(";"))
    assert settings["connect"] == "dicom.korthweb.test:11112" and settings["sni"] == "dicom.korthweb.test"
    assert settings["verifyChain"] == "yes" and settings["checkHost"] == "dicom.korthweb.test"
    assert settings["cert"].endswith(".pem") and settings["key"].endswith(".key")
    assert "PRIVATE KEY" not in text
    unverified = deployable_config("x.test", probe(client="dcmtk-stunnel", sni="right", server_cert_check="ignore"),
                                   "c", "e")
    assert "verifyChain = no" in unverified and "CAfile" not in unverified and "cert =" not in unverified
