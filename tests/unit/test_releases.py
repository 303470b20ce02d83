"""ECDSA server keys and the releases scenario: what the PKI issues, how a release's cells are told apart (real,
upstream image, twin), what a client that offers nothing is diagnosed as, and the docs table that cannot drift."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dicomtls.clients.pynetdicom import python_context
from dicomtls.components import Address, component_class
from dicomtls.diagnose import Symptoms, diagnose
from dicomtls.errors import UsageError
from dicomtls.pki import PkiSpec, ensure_pki, load_pki
from dicomtls.profiles import Offer, explain_cipher_mismatch
from dicomtls.reasons import Reason
from dicomtls.releases import ReleaseRow, basis, docs_table
from dicomtls.scenario import Scenario, load_scenario
from tests.unit import placements

ECDSA_ACCEPTS = {"TLS 1.2": ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA")}


def _key(path: Path) -> object:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_key()


# --- the ECDSA server key ----------------------------------------------------------------------------------------


def test_server_key_ecdsa_issues_every_server_certificate_on_p256_and_keeps_rsa_elsewhere(tmp_path: Path) -> None:
    files = ensure_pki(PkiSpec(server_names=("dicom.test",), sites=(("north", ("north.test",)),),
                               server_key="ecdsa-p256"), tmp_path / "pki")
    for cert in (files.server_cert, files.mismatched_server_cert, files.site("north").cert):
        key = _key(cert)
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    for cert in (files.ca_cert, files.client_cert):
        assert isinstance(_key(cert), rsa.RSAPublicKey)
    usage = x509.load_pem_x509_certificate(files.server_cert.read_bytes()).extensions.get_extension_for_class(
        x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment  # an ECDSA key only signs


def test_server_key_unset_leaves_the_pki_digest_and_directory_as_they_were() -> None:
    # PKIs made before server_key existed are reused, byte for byte: the default spec's digest does not change.
    assert PkiSpec(server_names=("dicom.test",)).digest() == PkiSpec(server_names=("dicom.test",),
                                                                        server_key=None).digest()
    assert PkiSpec(server_names=("dicom.test",)).digest() != PkiSpec(server_names=("dicom.test",),
                                                                        server_key="ecdsa-p256").digest()


def test_server_key_is_recorded_and_read_back(tmp_path: Path) -> None:
    spec = PkiSpec(server_names=("dicom.test",), server_key="ecdsa-p256")
    ensure_pki(spec, tmp_path / "pki")
    assert load_pki(tmp_path / "pki").spec == spec


def test_server_key_with_a_declared_server_certificate_is_refused() -> None:
    from dicomtls.pki import Issued

    with pytest.raises(UsageError, match="pki.server.key"):
        PkiSpec(server_names=("dicom.test",), server=Issued("dicom.test"), server_key="ecdsa-p256")


def _scenario(**pki: object) -> Scenario:
    return Scenario.model_validate({
        "name": "keys", "description": "d", "pki": {"server_names": ["dicom.test"], **pki},
        "environments": [{"name": "rsa", "proxy": {"kind": "envoy"}},
                         {"name": "ecdsa", "server_key": "ecdsa-p256", "proxy": {"kind": "envoy"}}],
        "probes": [{"client": "pynetdicom"}], "expect": [{"match": {}, "outcome": "pass"}]})


def test_an_environment_server_key_overrides_the_scenarios_and_gets_its_own_pki() -> None:
    scenario = _scenario()
    rsa_spec, ecdsa_spec = (scenario.pki_spec(scenario.environment(n)) for n in ("rsa", "ecdsa"))
    assert (rsa_spec.server_key_type, ecdsa_spec.server_key_type) == ("rsa-2048", "ecdsa-p256")
    assert rsa_spec.digest() != ecdsa_spec.digest()
    assert _scenario(server_key="ecdsa-p256").pki_spec(None).server_key_type == "ecdsa-p256"


# --- Envoy's TLS version bounds (the Envoy 1.21 twin, the TLS 1.2 ECDSA listener) --------------------------------


def test_envoy_renders_tls_version_bounds_only_when_set() -> None:
    envoy = component_class("envoy")
    where = placements.placement("/w", {"dicom": Address("127.0.0.1", 41104)}, ("dicom.test",))

    def params(**options: object) -> dict[str, object] | None:
        config = yaml.safe_load(envoy(envoy.options_model(**options)).launch(where, "/bin/false").files["envoy.yaml"])
        chain = config["static_resources"]["listeners"][0]["filter_chains"][0]
        return chain["transport_socket"]["typed_config"]["common_tls_context"].get("tls_params")

    assert params() is None
    assert params(min_version="TLSv1_0", max_version="TLSv1_2") == {
        "tls_minimum_protocol_version": "TLSv1_0", "tls_maximum_protocol_version": "TLSv1_2"}


# --- a client that offers nothing ----------------------------------------------------------------------------------


def test_dcm4che_tls_aes_on_jdk24_twin_is_refused_by_pythons_own_ssl_setup() -> None:
    with pytest.raises(ssl.SSLError, match="No cipher can be selected"):
        python_context("dcm4che-tls-aes-jdk24")


def test_a_client_whose_setup_failed_is_diagnosed_client_offers_nothing_whatever_the_proxy_logged() -> None:
    # The pynetdicom probe's own words when its SSLContext refused the profile (captured from a run).
    diagnosis = diagnose(Symptoms(
        client_lines=("ssl.SSLError in the client's own setup: ('No cipher can be selected.',)",),
        proxy_lines=("envoy:access.log: flags=- tls_failure=TLS_error:NO_SHARED_CIPHER",),
        dicom_stage="setup"))
    assert diagnosis.reason is Reason.CLIENT_OFFERS_NOTHING
    assert "no server or proxy was involved" in diagnosis.summary
    assert diagnosis.facts.refused_by is None


def test_jsse_refusing_to_start_a_handshake_is_client_offers_nothing() -> None:
    diagnosis = diagnose(Symptoms(client_lines=(
        "javax.net.ssl.SSLHandshakeException: No appropriate protocol (protocol is disabled or cipher suites are "
        "inappropriate)",)))
    assert diagnosis.reason is Reason.CLIENT_OFFERS_NOTHING


# --- an ECDSA-only server --------------------------------------------------------------------------------------------


def test_no_shared_cipher_with_an_ecdsa_only_server_says_so_and_asks_for_an_rsa_certificate() -> None:
    mismatch = explain_cipher_mismatch(Offer(("TLS 1.2",), ("AES128-SHA",)), ECDSA_ACCEPTS, "envoy")
    assert mismatch is not None
    assert mismatch.summary.startswith("ECDSA server certificate, the client offers only RSA suites")
    assert "RSA certificate" in mismatch.fix and "cipher list" not in mismatch.fix


def test_no_shared_cipher_with_an_rsa_server_still_suggests_adding_the_suite() -> None:
    mismatch = explain_cipher_mismatch(Offer(("TLS 1.2",), ("AES128-SHA",)),
                                       {"TLS 1.2": ("ECDHE-RSA-AES128-GCM-SHA256",)}, "envoy")
    assert mismatch is not None and "ECDSA" not in mismatch.summary and "add AES128-SHA" in mismatch.fix


# --- release rows ----------------------------------------------------------------------------------------------------


def _row(**sides: object) -> ReleaseRow:
    return ReleaseRow.model_validate({"release": "Envoy 1.23.0", "program": "envoy", "version": "1.23.0",
                                      "changed": "c", "clients": "k", "before": [{"match": {}, "twin": "legacy list"}],
                                      "after": [{"match": {}}], **sides})


def test_a_cell_running_a_release_on_its_side_is_real_and_from_an_upstream_image_says_so() -> None:
    row = _row()
    assert basis(row, "after", row.after[0], "1.40.0") == "real"
    assert basis(row, "after", row.after[0], "1.23.0 (envoyproxy/envoy:v1.23.0@sha256:abc)") == "upstream-image"


def test_a_declared_twin_is_a_twin_unless_the_releases_own_image_ran() -> None:
    row = _row()
    assert basis(row, "before", row.before[0], "1.40.0") == "twin"
    assert basis(row, "before", row.before[0], "1.22.0") == "twin"  # configured: another build's defaults
    assert basis(row, "before", row.before[0], "1.22.5 (envoyproxy/envoy:v1.22.5@sha256:abc)") == "upstream-image"


def test_an_undeclared_wrong_version_is_a_mismatch() -> None:
    row = _row()
    assert basis(row, "after", row.after[0], "1.22.5") == "version-mismatch"
    assert basis(row, "after", row.after[0], None) == "version-mismatch"


def test_a_row_without_a_program_is_a_change_of_configuration_and_real() -> None:
    row = _row(program=None, version=None)
    assert basis(row, "after", row.after[0], None) == "real"


def test_a_release_of_a_program_dicomtls_does_not_run_must_say_how_its_twin_is_made() -> None:
    data = yaml.safe_load(Path("scenarios/releases.yaml").read_text())
    jdk = next(r for r in data["releases"] if r.get("program") == "jdk")
    del jdk["after"][0]["twin"]
    with pytest.raises(Exception, match="does not run jdk"):
        Scenario.model_validate(data)


def test_a_release_side_that_matches_no_cell_is_refused() -> None:
    data = yaml.safe_load(Path("scenarios/releases.yaml").read_text())
    data["releases"][0]["after"] = [{"match": {"environment": "envoy-current", "profile": "tls1.1-only"}}]
    with pytest.raises(Exception, match="matches no cell"):
        Scenario.model_validate(data)


def test_every_release_row_has_cells_on_both_sides_with_an_expectation() -> None:
    scenario = load_scenario("releases")
    cells = scenario.cells()
    assert len(scenario.releases) >= 7
    for row in scenario.releases:
        sides = {found[0] for c in cells if (found := row.side(c)) is not None}
        assert sides == {"before", "after"}, row.release


def test_a_backend_leaves_out_the_environments_and_groups_it_cannot_run_and_says_why() -> None:
    scenario = load_scenario("releases")
    local, notes = scenario.on_backend("local")
    docker, none_left_out = scenario.on_backend("docker")
    assert none_left_out == [] and len(docker.cells()) == len(scenario.cells())
    assert {c.environment for c in local.cells()} == {e.name for e in scenario.environments if e.backends is None}
    assert not any(c.probe.client_version == "3.6.9" for c in local.cells())
    assert notes and all("left out on local" in n and "docker only" in n for n in notes)


def test_the_docs_table_lists_every_release_with_its_cells_and_twins() -> None:
    scenario = load_scenario("releases")
    table = docs_table(scenario)
    for row in scenario.releases:
        assert f"| {row.release} |" in table
    assert "client-offers-nothing" in table and "JDK 24" in table and "*before twin:" in table


# --- Orthanc 1.12.4's DICOM TLS options -----------------------------------------------------------------------------


def _orthanc_json(**options: object) -> dict[str, object]:
    import json

    orthanc = component_class("orthanc")
    where = placements.placement("/w", {"dicom": Address("127.0.0.1", 4242), "http": Address("127.0.0.1", 8042)},
                                 ("dicom.test",))
    return json.loads(orthanc(orthanc.options_model(**options)).launch(where, "/bin/false").files["orthanc.json"])


def test_orthanc_tls_minimum_and_ciphers_are_written_only_when_set() -> None:
    assert "DicomTlsMinimumProtocolVersion" not in _orthanc_json(tls=True)
    written = _orthanc_json(tls=True, version="1.12.7", tls_minimum_protocol_version=4,
                            tls_ciphers_accepted=["ECDHE-RSA-AES128-GCM-SHA256"])
    assert written["DicomTlsMinimumProtocolVersion"] == 4
    assert written["DicomTlsCiphersAccepted"] == ["ECDHE-RSA-AES128-GCM-SHA256"]


@pytest.mark.parametrize("options, words", [
    ({"tls_minimum_protocol_version": 4, "tls_ciphers_accepted": ["AES128-SHA"]}, "came in Orthanc 1.12.4"),
    ({"version": "1.10.1", "tls_ciphers_accepted": ["AES128-SHA"]}, "came in Orthanc 1.12.4"),
    ({"version": "1.12.7", "tls_minimum_protocol_version": 4}, "without tls_ciphers_accepted"),
])
def test_orthanc_tls_options_an_orthanc_would_ignore_or_refuse_are_usage_errors(options: dict[str, object],
                                                                                words: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=words):
        component_class("orthanc").options_model(tls=True, **options)


def test_an_upstream_image_reports_its_own_version_beside_the_same_kinds_built_one() -> None:
    from types import SimpleNamespace

    from dicomtls.plan import environment_versions

    def group(key: str, declared: str | None) -> SimpleNamespace:
        options = SimpleNamespace(version=None, image=None, declared_image=declared)
        return SimpleNamespace(plan=SimpleNamespace(key=key, components=[SimpleNamespace(kind="envoy", options=options)]))

    class Backend:
        def component_version(self, component: SimpleNamespace) -> str:
            declared = component.options.declared_image
            return f"1.40.0 ({declared}@sha256:abc)" if declared else "1.40.0"

    found = environment_versions(Backend(), [group("built", None), group("upstream", "envoyproxy/envoy:v1.40.0")])  # type: ignore[arg-type]
    assert found == {"built": {"envoy": ["1.40.0"]},
                     "upstream": {"envoy": ["1.40.0 (envoyproxy/envoy:v1.40.0@sha256:abc)"]}}
