"""Client-certificate cases: a revoked certificate (and the CRL that says so), a self-signed one, and the valid
certificate with a key that is not its own; the proxies' CRL settings; what each case is diagnosed as, from the
lines real proxies and clients printed (tests/fixtures/captured_certificate_cases.json)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dicomtls.components import Address, component_class
from dicomtls.diagnose import Symptoms, diagnose
from dicomtls.errors import UsageError
from dicomtls.pki import PkiFiles, PkiSpec, ensure_pki
from dicomtls.probes import Target
from dicomtls.probes.pynetdicom import Pynetdicom
from dicomtls.reasons import Reason, Side
from dicomtls.revocation import revoked_on
from dicomtls.scenario import Probe, load_scenario, parse_scenario
from tests.unit import placements

CAPTURED = Path(__file__).parents[1] / "fixtures" / "captured_certificate_cases.json"
_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


@pytest.fixture(scope="module", params=["one-level", "two-level"])
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return ensure_pki(PkiSpec(topology=request.param), tmp_path_factory.mktemp("pki"))


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def crls(files: PkiFiles) -> list[x509.CertificateRevocationList]:
    return [x509.load_pem_x509_crl(block) for block in _CRL.findall(files.crl.read_bytes())]


def public_key(path: Path) -> bytes:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_every_ca_level_signs_a_crl_and_only_the_issuing_ca_s_lists_the_revoked_client(made: PkiFiles) -> None:
    cas = [cert(made.ca_cert), *([cert(made.intermediate_cert)] if made.intermediate_cert else [])]
    found = crls(made)
    assert [c.issuer for c in found] == [ca.subject for ca in cas]
    for crl, ca in zip(found, cas):
        assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    revoked = cert(made.revoked_client_cert)
    issuing = found[-1]
    assert issuing.get_revoked_certificate_by_serial_number(revoked.serial_number) is not None
    assert issuing.get_revoked_certificate_by_serial_number(cert(made.client_cert).serial_number) is None
    assert sum(len(list(c)) for c in found) == 1


def test_the_revoked_client_differs_from_the_valid_one_only_by_the_crl(made: PkiFiles) -> None:
    revoked, valid = cert(made.revoked_client_cert), cert(made.client_cert)
    assert (revoked.subject, revoked.issuer, revoked.not_valid_after_utc) == (valid.subject, valid.issuer,
                                                                              valid.not_valid_after_utc)
    assert cert(made.revoked_client_fullchain) == revoked


def test_the_self_signed_client_has_the_client_s_name_and_no_ca_behind_it(made: PkiFiles) -> None:
    own = cert(made.self_signed_client_cert)
    assert own.subject == own.issuer == cert(made.client_cert).subject
    assert public_key(made.self_signed_client_key) == own.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_the_key_mismatch_identity_is_the_valid_certificate_with_a_key_that_is_not_its_own(made: PkiFiles) -> None:
    target = Target(Address("127.0.0.1", 1), ("dicom.example.test",), made)
    chain, key = target.client_identities()["key-mismatch"]
    assert chain == made.client_fullchain
    assert public_key(key) != public_key(made.client_key)
    assert public_key(key) not in {public_key(k) for k in (made.revoked_client_key, made.self_signed_client_key,
                                                           made.untrusted_client_key, made.expired_client_key)}


def test_the_new_client_keys_are_0600_and_the_crl_is_public(made: PkiFiles) -> None:
    for key in (made.revoked_client_key, made.self_signed_client_key, made.other_client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(made.crl.stat().st_mode) == 0o644


def test_a_pki_without_a_crl_is_completed_on_reuse(tmp_path: Path) -> None:
    first = ensure_pki(PkiSpec(), tmp_path)
    first.crl.unlink()  # a PKI made before CRLs existed
    again = ensure_pki(PkiSpec(), tmp_path)
    assert revoked_on(again.revoked_client_fullchain, again.crl) is not None


def test_revoked_on_reads_the_crl_of_the_leaf_s_issuer(made: PkiFiles, tmp_path: Path) -> None:
    assert revoked_on(made.revoked_client_fullchain, made.crl) is not None
    for path in (made.client_fullchain, made.self_signed_client_cert, made.untrusted_client_cert):
        assert revoked_on(path, made.crl) is None
    assert revoked_on(made.revoked_client_fullchain, tmp_path / "absent.crl") is None


# --- the proxies' CRL settings -----------------------------------------------------------------------------------

CRL_PATH = str(placements.PKI_DIR / "ca.crl")


def rendered(kind: str, **options: Any) -> str:
    cls = component_class(kind)
    place = placements.placement("/w", {"dicom": Address("127.0.0.1", 41104)}, ("dicom.example.test",))
    return "\n".join(cls(cls.options_model(**options)).launch(place, "/bin/false").files.values())


def test_the_placement_hands_proxies_the_crl_and_still_no_ca_key() -> None:
    pki = placements.placement("/w", {}, ("dicom.example.test",)).pki
    assert pki.crl == CRL_PATH
    assert not any("ca-private" in value for value in vars(pki).values())


@pytest.mark.parametrize(("kind", "directive"), [("envoy", "crl: { filename: "), ("nginx", "ssl_crl "),
                                                 ("haproxy", " crl-file ")])
def test_client_crl_renders_the_proxy_s_crl_directive_and_is_off_by_default(kind: str, directive: str) -> None:
    on = rendered(kind, client_cert="required", client_crl=True)
    assert f'{directive}"{CRL_PATH}"' in on
    off = rendered(kind, client_cert="required")
    assert "crl" not in off.lower()
    # The directive is all it adds: a line of its own, or (HAProxy) a word on the bind line.
    without = on.replace(f' crl-file "{CRL_PATH}"', "")
    assert [line for line in without.splitlines() if "crl" not in line] == off.splitlines()


def test_envoy_reads_the_crl_inside_the_validation_context() -> None:
    config = yaml.safe_load(rendered("envoy", client_cert="required", client_crl=True))
    context = config["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"]["typed_config"]
    assert context["common_tls_context"]["validation_context"]["crl"] == {"filename": CRL_PATH}


@pytest.mark.parametrize("kind", ["envoy", "nginx", "haproxy"])
def test_client_crl_without_client_certificates_is_refused_in_one_line(kind: str) -> None:
    text = f"""
name: crl-alone
description: a CRL nothing reads
pki: {{ server_names: [dicom.example.test] }}
environments:
  - name: edge
    proxy: {{ kind: {kind}, client_cert: none, client_crl: true }}
probes:
  - client: pynetdicom
expect:
  - match: {{}}
    outcome: pass
"""
    with pytest.raises(UsageError, match="client_crl checks client certificates against the PKI's CRL.*set "
                                         "client_cert: optional or required"):
        parse_scenario(text, "crl-alone.yaml")


def test_the_certificate_cases_scenario_is_named_not_default_and_checks_crls_where_proxies_have_them() -> None:
    scenario = load_scenario("certificate-cases")
    assert not scenario.default
    crl = {env.name: getattr(env.proxy.build("proxy").options, "client_crl", None) if env.proxy else None
           for env in scenario.environments}
    assert [name for name, on in crl.items() if on] == ["envoy-mtls-crl", "nginx-mtls-crl", "haproxy-mtls-crl"]
    cases = {c.probe.client_cert for c in scenario.cells()}
    assert cases == {"valid", "revoked", "self-signed", "key-mismatch"}


# --- the key mismatch is the client's own refusal ---------------------------------------------------------------


def test_pynetdicom_refuses_a_mismatched_key_before_it_connects(made: PkiFiles, tmp_path: Path) -> None:
    # Port 1 on loopback: had the probe connected, it would say "connection refused".
    target = Target(Address("127.0.0.1", 1), ("dicom.example.test",), made)
    outcome = Pynetdicom().run(target, Probe("pynetdicom", "right", "key-mismatch", "echo"), tmp_path)
    assert (outcome.ok, outcome.stage) == (False, "setup")
    assert outcome.lines == (next(l for l in outcome.lines if "KEY_VALUES_MISMATCH" in l),)
    found = diagnose(Symptoms(outcome.lines, sent_client_cert="key-mismatch", dicom_stage=outcome.stage))
    assert found.reason is Reason.CLIENT_KEY_MISMATCH
    assert "refused its own certificate and key before connecting" in found.summary


# --- diagnoses of the captured lines -----------------------------------------------------------------------------


def captured() -> list[dict[str, Any]]:
    return json.loads(CAPTURED.read_text())["cells"]


@pytest.mark.parametrize("cell", captured(), ids=lambda c: c["cell"].removeprefix("certificate-cases/"))
def test_captured_certificate_case_gets_its_reason(cell: dict[str, Any]) -> None:
    found = diagnose(Symptoms(tuple(cell["client_lines"]), tuple(cell["proxy_lines"]), sent_sni=cell["sni"] != "none",
                              sent_client_cert=cell["client_cert"],
                              client_cert_revoked_on=cell["client_cert_revoked_on"]))
    assert found.reason == cell["reason"]
    if found.reason is Reason.CLIENT_KEY_MISMATCH:
        assert found.facts.refused_by is None  # nobody refused anybody: the client never sent a byte
        assert not any(e.startswith("proxy: ") for e in found.evidence)
    else:
        assert found.facts.refused_by is Side.SERVER


def test_the_captured_cases_cover_every_proxy_client_and_failing_case() -> None:
    cells = [c for c in captured() if c["cell"].startswith("certificate-cases/")]
    environments = {c["cell"].split("/")[1] for c in cells}
    assert environments == {"envoy-mtls-crl", "nginx-mtls-crl", "haproxy-mtls-crl", "traefik-mtls", "orthanc-tls"}
    assert {(c["client"], c["client_cert"]) for c in cells} == {
        (client, case) for client in ("dcmtk", "pynetdicom") for case in ("revoked", "self-signed", "key-mismatch")}


def test_haproxy_s_not_trusted_is_read_as_revoked_only_when_the_crl_lists_the_certificate() -> None:
    line = ("haproxy: 127.0.0.1:48766 [07/Dec/2026:21:32:59.819] dicom/1: SSL client certificate not trusted",)
    client = ("F: Association Request Failed: 0006:0317 Peer aborted Association (or never connected)",)
    listed = diagnose(Symptoms(client, line, sent_client_cert="revoked",
                               client_cert_revoked_on="2026-12-06T21:32:53+00:00"))
    assert listed.reason is Reason.TLS_CERT_REVOKED
    assert any("revoked on 2026-12-06T21:32:53+00:00 by the PKI's CRL (checked locally" in e for e in listed.evidence)
    assert diagnose(Symptoms(client, line, sent_client_cert="untrusted")).reason is Reason.TLS_UNKNOWN_CA
