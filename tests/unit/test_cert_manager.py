"""cert-manager Issuers, ClusterIssuers and Certificates read as the chain cert-manager issues: the run's PKI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dicomtls.errors import UsageError
from dicomtls.manifests import read_manifests, translate
from dicomtls.manifests.cert_manager import Certificate, DeclaredPki, Issuer, declared_pki, go_duration_hours
from dicomtls.scenario import manifest_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
ONE_LEVEL = ROOT / "tests" / "fixtures" / "manifests" / "cert-manager-one-level"
TWO_LEVEL = ROOT / "tests" / "fixtures" / "manifests" / "cert-manager-two-level"

SELF_SIGNED = """\
apiVersion: cert-manager.io/v1
kind: {kind}
metadata: {{name: {name}}}
spec: {{selfSigned: {{}}}}
"""
CA_ISSUER = """\
apiVersion: cert-manager.io/v1
kind: {kind}
metadata: {{name: {name}}}
spec: {{ca: {{secretName: {secret}}}}}
"""
CERTIFICATE = """\
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {{name: {name}}}
spec:
  secretName: {secret}
  issuerRef: {{name: {issuer}, kind: {issuer_kind}}}
{extra}
"""
GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}}}
spec:
  servers:
  - port: {{number: 11112, protocol: TLS}}
    hosts: {hosts}
    tls: {{mode: SIMPLE, credentialName: {secret}}}
"""
ROUTE = """\
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: dicom}
spec:
  routes: [{match: "HostSNI(`dicom.example.test`)", services: [{name: orthanc, port: 4242}]}]
  tls: {secretName: dicom-tls}
"""


def certificate(name: str, secret: str, issuer: str, *, issuer_kind: str = "Issuer", **spec: Any) -> str:
    extra = yaml.safe_dump(spec, default_flow_style=False).replace("\n", "\n  ") if spec else ""
    return CERTIFICATE.format(name=name, secret=secret, issuer=issuer, issuer_kind=issuer_kind,
                              extra=f"  {extra}".rstrip())


def one_level(leaf: dict[str, Any] | None = None, ca: dict[str, Any] | None = None, hosts: str = '["*"]') -> str:
    """selfSigned → CA (isCA) → ca Issuer → leaf, served by a Gateway."""
    return "---\n".join([
        SELF_SIGNED.format(kind="Issuer", name="selfsigned"),
        certificate("my-ca", "my-ca-secret", "selfsigned", **{"isCA": True, "commonName": "My CA", **(ca or {})}),
        CA_ISSUER.format(kind="Issuer", name="my-ca-issuer", secret="my-ca-secret"),
        certificate("dicom", "dicom-tls", "my-ca-issuer", **(leaf or {"dnsNames": ["dicom.example.test"]})),
        GATEWAY.format(name="gw", hosts=hosts, secret="dicom-tls"),
    ])


def declared(tmp_path: Path, *texts: str) -> DeclaredPki:
    paths = []
    for i, text in enumerate(texts):
        paths.append(tmp_path / f"m{i}.yaml")
        paths[-1].write_text(text)
    found = read_manifests(paths)
    result = declared_pki(found, translate(found))
    assert result is not None
    return result


def test_issuers_cluster_issuers_and_certificates_are_read_not_skipped() -> None:
    found = read_manifests(sorted(TWO_LEVEL.glob("*.yaml")))
    assert found.skipped == []
    kinds = sorted(r.kind for _, r in found.resources if isinstance(r, (Issuer, Certificate)))
    assert kinds == ["Certificate"] * 3 + ["ClusterIssuer"] * 3


def test_korthweb_int_ca_issued_by_self_signed_is_a_one_level_root_and_says_so() -> None:
    scenario = manifest_scenario(ONE_LEVEL)
    assert scenario.pki.topology == "one-level"
    assert [ca.common_name for ca in scenario.pki.cas] == ["int-ca"]
    [finding] = scenario.environments[0].findings
    assert finding.text.startswith("int-ca is a self-signed root, not an intermediate: the chain is one CA level")


def test_a_root_signing_an_intermediate_signing_the_leaf_is_two_levels_without_a_finding() -> None:
    scenario = manifest_scenario(TWO_LEVEL)
    spec = scenario.pki_spec()
    assert spec.topology == "two-level"
    assert [(ca.common_name, ca.key, ca.validity_hours) for ca in spec.cas] == [
        ("Hospital Root CA", "rsa-4096", 87600), ("Imaging Intermediate CA", "rsa-2048", 43800)]
    assert scenario.environments[0].findings == ()


def test_the_served_leaf_gives_the_server_certificate_its_names_key_and_validity() -> None:
    spec = manifest_scenario(TWO_LEVEL).pki_spec()
    assert spec.server_names == ("pacs.hospital.test", "dicom.hospital.test")
    assert spec.server is not None
    assert (spec.server.common_name, spec.server.key, spec.server.validity_hours) == ("pacs.hospital.test",
                                                                                      "rsa-2048", 720)


def test_a_ca_named_like_an_intermediate_but_really_one_gives_no_finding(tmp_path: Path) -> None:
    chain = "---\n".join([
        SELF_SIGNED.format(kind="ClusterIssuer", name="selfsigned"),
        certificate("root-ca", "root", "selfsigned", issuer_kind="ClusterIssuer", isCA=True, commonName="Root"),
        CA_ISSUER.format(kind="ClusterIssuer", name="root-issuer", secret="root"),
        certificate("int-ca", "int", "root-issuer", issuer_kind="ClusterIssuer", isCA=True, commonName="int-ca"),
        CA_ISSUER.format(kind="ClusterIssuer", name="int-issuer", secret="int"),
        certificate("dicom", "dicom-tls", "int-issuer", issuer_kind="ClusterIssuer", dnsNames=["d.example.test"]),
        GATEWAY.format(name="gw", hosts='["*"]', secret="dicom-tls"),
    ])
    result = declared(tmp_path, chain)
    assert result.topology == "two-level" and [c.common_name for c in result.cas] == ["Root", "int-ca"]
    assert result.findings == ()


@pytest.mark.parametrize("key, expected", [
    ({}, "rsa-2048"),
    ({"algorithm": "RSA", "size": 4096}, "rsa-4096"),
    ({"algorithm": "ECDSA"}, "ecdsa-p256"),
    ({"algorithm": "ECDSA", "size": 256}, "ecdsa-p256"),
])
def test_private_key_algorithm_and_size_become_the_key_type(tmp_path: Path, key: dict[str, object],
                                                             expected: str) -> None:
    leaf = {"dnsNames": ["dicom.example.test"], **({"privateKey": key} if key else {})}
    result = declared(tmp_path, one_level(leaf))
    assert result.server is not None and result.server.key == expected and result.key == expected


def test_a_key_the_tool_does_not_make_is_replaced_and_listed(tmp_path: Path) -> None:
    result = declared(tmp_path, one_level({"dnsNames": ["d.example.test"],
                                           "privateKey": {"algorithm": "ECDSA", "size": 384}}))
    assert result.server is not None and result.server.key == "ecdsa-p256"
    assert any("spec.privateKey ECDSA 384: not reproduced" in line for line in result.unhonoured)


@pytest.mark.parametrize("duration, hours", [("2160h", 2160), ("8760h0m0s", 8760), ("1h30m", 2), (None, 2160)])
def test_duration_becomes_the_validity_in_hours(tmp_path: Path, duration: str | None, hours: int) -> None:
    leaf = {"dnsNames": ["d.example.test"], **({"duration": duration} if duration else {})}
    result = declared(tmp_path, one_level(leaf))
    assert result.server is not None and result.server.validity_hours == hours
    assert any("rounded up to 2h" in line for line in result.unhonoured) == (duration == "1h30m")


def test_go_durations_are_parsed_like_go() -> None:
    assert go_duration_hours("90m") == 1.5 and go_duration_hours("2h45m30s") == pytest.approx(2.7583, abs=1e-3)
    with pytest.raises(ValueError, match="not a duration"):
        go_duration_hours("90 days")


def test_names_the_proxy_routes_come_first_so_the_right_sni_reaches_it(tmp_path: Path) -> None:
    leaf = {"dnsNames": ["web.example.test", "dicom.example.test"]}
    result = declared(tmp_path, one_level(leaf, hosts="[dicom.example.test]"))
    assert result.server_names == ("dicom.example.test", "web.example.test")


def test_a_wildcard_name_is_never_the_right_sni_while_a_plain_one_exists(tmp_path: Path) -> None:
    result = declared(tmp_path, one_level({"dnsNames": ["*.example.test", "dicom.example.test"]}))
    assert result.server_names == ("dicom.example.test", "*.example.test")


def test_a_leaf_without_dns_names_carries_its_common_name(tmp_path: Path) -> None:
    result = declared(tmp_path, one_level({"commonName": "dicom.example.test"}))
    assert result.server_names == ("dicom.example.test",)
    assert any("spec.dnsNames: none" in line for line in result.unhonoured)


def test_a_traefik_route_secret_name_picks_the_leaf(tmp_path: Path) -> None:
    text = one_level({"dnsNames": ["dicom.example.test"], "duration": "48h"}).rsplit("---\n", 1)[0]
    result = declared(tmp_path, text + "---\n" + ROUTE)
    assert result.chosen_by == "IngressRouteTCP/dicom"
    assert result.server is not None and result.server.validity_hours == 48


def test_fields_not_reproduced_and_certificates_nobody_serves_are_listed(tmp_path: Path) -> None:
    leaf = {"dnsNames": ["d.example.test"], "renewBefore": "360h", "subject": {"organizations": ["Hospital"]}}
    web = certificate("web", "web-tls", "my-ca-issuer", dnsNames=["web.example.test"])
    result = declared(tmp_path, one_level(leaf) + "---\n" + web)
    listed = "\n".join(result.unhonoured)
    assert "Certificate dicom): spec.renewBefore: not reproduced" in listed
    assert "Certificate dicom): spec.subject: not reproduced" in listed
    assert "Certificate web): not reproduced: not in the chain of the certificate Gateway/gw serves" in listed


def test_an_acme_issued_leaf_keeps_its_names_and_is_signed_by_the_tools_ca(tmp_path: Path) -> None:
    acme = ("apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: letsencrypt}\n"
            "spec: {acme: {server: 'https://acme.invalid/directory', privateKeySecretRef: {name: k}}}\n")
    leaf = certificate("dicom", "dicom-tls", "letsencrypt", issuer_kind="ClusterIssuer",
                       dnsNames=["dicom.example.test"])
    result = declared(tmp_path, acme, leaf, GATEWAY.format(name="gw", hosts='["*"]', secret="dicom-tls"))
    assert result.topology == "one-level" and result.cas == ()
    assert result.server_names == ("dicom.example.test",)
    assert any("spec.acme: not reproduced: the tool's own CA signs the server certificate" in line
               for line in result.unhonoured)


def test_a_ca_secret_no_certificate_makes_is_a_root_named_after_it(tmp_path: Path) -> None:
    text = "---\n".join([CA_ISSUER.format(kind="Issuer", name="hand-made", secret="corp-ca"),
                         certificate("dicom", "dicom-tls", "hand-made", dnsNames=["d.example.test"]),
                         GATEWAY.format(name="gw", hosts='["*"]', secret="dicom-tls")])
    result = declared(tmp_path, text)
    assert [c.common_name for c in result.cas] == ["corp-ca"]
    assert any("no Certificate makes it (a CA made by hand)" in line for line in result.unhonoured)


def test_several_gateways_follow_the_first_and_tell_the_others(tmp_path: Path) -> None:
    other = certificate("other", "other-tls", "my-ca-issuer", dnsNames=["other.example.test"])
    gateway = GATEWAY.format(name="gw2", hosts='["*"]', secret="other-tls").replace("11112", "11113")
    result = declared(tmp_path, one_level(), "---\n".join([other, gateway]))
    assert result.chosen_by == "Gateway/gw" and result.server_names == ("dicom.example.test",)
    assert "one PKI serves the run, and it follows Certificate dicom" in result.notes_for("Gateway/gw2")[-1]
    assert not any("one PKI serves the run" in line for line in result.notes_for("Gateway/gw"))


def test_without_cert_manager_documents_the_pki_is_the_tools_own() -> None:
    scenario = manifest_scenario(ROOT / "tests" / "fixtures" / "manifests" / "korthweb-traefik")
    spec = scenario.pki_spec()
    assert spec.cas == () and spec.server is None and spec.server_names == ("dicom.korthweb.test",)


def test_certificates_no_proxy_serves_leave_the_tools_pki_and_are_listed(tmp_path: Path) -> None:
    text = one_level().replace("credentialName: dicom-tls", "credentialName: something-else")
    result = declared(tmp_path, text)
    assert result.topology is None
    assert any("no DICOM proxy serves its secret dicom-tls" in line for line in result.unhonoured)


# --- errors: one line naming the file, the document and the field ----------------------------------------------


@pytest.mark.parametrize("text, message", [
    (certificate("dicom", "dicom-tls", "nobody", dnsNames=["d.example.test"]) + "---\n"
     + GATEWAY.format(name="gw", hosts='["*"]', secret="dicom-tls"),
     r"m0.yaml \(document 1, Certificate dicom\): spec.issuerRef: no Issuer named nobody in the manifests"),
    ("---\n".join([CA_ISSUER.format(kind="Issuer", name="a", secret="a-secret"),
                   CA_ISSUER.format(kind="Issuer", name="b", secret="b-secret"),
                   certificate("ca-a", "a-secret", "b", isCA=True, commonName="A"),
                   certificate("ca-b", "b-secret", "a", isCA=True, commonName="B"),
                   certificate("dicom", "dicom-tls", "a", dnsNames=["d.example.test"]),
                   GATEWAY.format(name="gw", hosts='["*"]', secret="dicom-tls")]),
     r"\(document 3, Certificate ca-a\): spec.issuerRef: the issuers form a cycle \(ca-a → ca-b → ca-a\)"),
    (one_level(ca={"isCA": False}),
     r"\(document 3, Issuer my-ca-issuer\): spec.ca.secretName my-ca-secret: .* makes it without isCA: true"),
    (certificate("dicom", "dicom-tls", "x", issuer_kind="Issuers", dnsNames=["d.example.test"]) + "---\n"
     + GATEWAY.format(name="gw", hosts='["*"]', secret="dicom-tls"),
     r"\(document 1, Certificate dicom\): spec.issuerRef.kind Issuers"),
])
def test_invalid_references_are_one_line_usage_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as raised:
        declared(tmp_path, text)
    assert "\n" not in str(raised.value)


def test_a_chain_of_three_ca_levels_is_refused(tmp_path: Path) -> None:
    parts = [SELF_SIGNED.format(kind="Issuer", name="ss")]
    issuer = "ss"
    for level in ("l1", "l2", "l3"):
        parts += [certificate(level, f"{level}-s", issuer, isCA=True, commonName=level),
                  CA_ISSUER.format(kind="Issuer", name=f"{level}-i", secret=f"{level}-s")]
        issuer = f"{level}-i"
    parts += [certificate("dicom", "dicom-tls", issuer, dnsNames=["d.example.test"]),
              GATEWAY.format(name="gw", hosts='["*"]', secret="dicom-tls")]
    with pytest.raises(UsageError, match=r"3 CA levels \(l1 → l2 → l3\): the tool reproduces one or two"):
        declared(tmp_path, "---\n".join(parts))


@pytest.mark.parametrize("text, message", [
    ("apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: i}\nspec: {}\n", r"Issuer i\): spec: .*none"),
    ("apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: i}\nspec: {selfSigned: {}, ca: {secretName: s}}\n",
     r"spec: .*has selfSigned, ca"),
    (certificate("c", "s", "i", dnsNames=["d.example.test"], usages=["sever auth"]), r"spec.usages: .*'sever auth'"),
    (certificate("c", "s", "i", dnsNames=["d.example.test"], privateKey={"size": 1024}), r"spec.privateKey: .*1024"),
    (certificate("c", "s", "i", dnsNames=["d.example.test"], duration="30m"), r"spec.duration: .*under 1h"),
    (certificate("c", "s", "i", duration="2160h"), r"spec: .*at least one of commonName, dnsNames"),
])
def test_invalid_cert_manager_documents_name_their_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        read_manifests([path])


# --- in a scenario file -----------------------------------------------------------------------------------------

SCENARIO = """\
name: declared
description: d
{pki}
environments:
  - name: e
    manifests: {{files: [{files}], pki: {follow}}}
probes: [{{client: dcmtk}}]
expect: [{{match: {{}}, outcome: observe}}]
"""


def scenario_text(pki: str = "", follow: str = "true") -> str:
    files = ", ".join(str(p) for p in sorted(ONE_LEVEL.glob("*.yaml")))
    return SCENARIO.format(pki=pki, files=files, follow=follow)


def test_manifests_pki_true_makes_the_scenarios_pki_from_the_certificates() -> None:
    scenario = parse_scenario(scenario_text(), str(ROOT / "s.yaml"))
    assert [ca.common_name for ca in scenario.pki_spec().cas] == ["int-ca"]
    assert scenario.environments[0].findings[0].text.startswith("int-ca is a self-signed root")


def test_manifests_pki_true_next_to_a_pki_block_is_refused() -> None:
    with pytest.raises(UsageError, match="manifests.pki is true, so the manifests make the PKI: drop the pki block"):
        parse_scenario(scenario_text("pki: {server_names: [a.example.test]}"), str(ROOT / "s.yaml"))


def test_without_manifests_pki_the_certificates_are_listed_not_followed() -> None:
    scenario = parse_scenario(scenario_text("pki: {server_names: [a.example.test]}", "false"), str(ROOT / "s.yaml"))
    assert scenario.pki_spec().cas == () and scenario.environments[0].findings == ()
    assert any("Certificate int-ca): not reproduced: the scenario's pki block makes the PKI" in line
               for line in scenario.environments[0].unhonoured)
