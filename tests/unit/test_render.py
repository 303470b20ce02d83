"""Component configs rendered through the real templates: what Envoy and Orthanc will be told to do."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from dicomtls.components import Address, Placement, component_class
from dicomtls.components.envoy import EnvoyOptions
from dicomtls.components.orthanc import OrthancOptions
from dicomtls.errors import UsageError
from dicomtls.render import render
from tests.unit import placements

SERVER_NAMES = ("dicom.korthweb.test", "dicom2.korthweb.test")
PKI_DIR = placements.PKI_DIR


def placement(workdir: str = "/srv/dicomtls/env/edge", sites: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> Placement:
    return placements.placement(
        workdir, {"dicom": Address("127.0.0.1", 41104), "http": Address("127.0.0.1", 41105)}, SERVER_NAMES, sites)


def envoy_config(where: Placement | None = None, **options: Any) -> tuple[str, dict[str, Any]]:
    cls = component_class("envoy")
    launch = cls(EnvoyOptions(**options)).launch(where or placement(), "/usr/local/bin/envoy")
    text = launch.files["envoy.yaml"]
    return text, yaml.safe_load(text)


def orthanc_config(where: Placement | None = None, **options: Any) -> tuple[str, dict[str, Any]]:
    cls = component_class("orthanc")
    launch = cls(OrthancOptions(**options)).launch(where or placement(), "/usr/sbin/Orthanc")
    text = launch.files["orthanc.json"]
    return text, json.loads(text, object_pairs_hook=_each_key_once)


def _each_key_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Orthanc's JSON reader keeps the last of a repeated key without a word: a repeat hides an edit."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    assert not repeated, f"orthanc.json sets {repeated} more than once"
    return dict(pairs)


def listener(config: dict[str, Any]) -> dict[str, Any]:
    (only,) = config["static_resources"]["listeners"]
    return only


def chain(config: dict[str, Any]) -> dict[str, Any]:
    (only,) = listener(config)["filter_chains"]
    return only


def tls_context(config: dict[str, Any]) -> dict[str, Any]:
    socket = chain(config)["transport_socket"]
    assert socket["name"] == "envoy.transport_sockets.tls"
    return socket["typed_config"]


# --- Envoy ------------------------------------------------------------------------------------------------------


def test_envoy_config_is_yaml_wired_to_the_placement() -> None:
    where = placement()
    _, config = envoy_config(where)
    address = listener(config)["address"]["socket_address"]
    assert (address["address"], address["port_value"]) == ("127.0.0.1", 41104)
    (cluster,) = config["static_resources"]["clusters"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (endpoint["address"], endpoint["port_value"]) == ("127.0.0.1", 41204)
    (proxy,) = chain(config)["filters"]
    assert proxy["typed_config"]["cluster"] == cluster["name"]
    log = listener(config)["access_log"][0]["typed_config"]
    assert log["path"] == f"{where.workdir}/access.log"


def test_envoy_launch_reads_the_rendered_config_and_tails_its_access_log() -> None:
    launch = component_class("envoy")(EnvoyOptions()).launch(placement(), "/usr/local/bin/envoy")
    assert launch.args[launch.args.index("-c") + 1] == "/srv/dicomtls/env/edge/envoy.yaml"
    assert launch.connection_log == "access.log"


def test_envoy_access_log_records_what_the_diagnosis_reads() -> None:
    _, config = envoy_config()
    line = listener(config)["access_log"][0]["typed_config"]["log_format"]["text_format_source"]["inline_string"]
    for field in ("sni=%REQUESTED_SERVER_NAME%", "flags=%RESPONSE_FLAGS%",
                  "tls_failure=%DOWNSTREAM_TRANSPORT_FAILURE_REASON%"):
        assert field in line
    assert line.endswith("\n")


def test_envoy_workdir_with_awkward_characters_still_renders_valid_yaml() -> None:
    where = placement(workdir='/tmp/dicom tls: "x" #1')
    _, config = envoy_config(where)
    assert listener(config)["access_log"][0]["typed_config"]["path"] == '/tmp/dicom tls: "x" #1/access.log'


def test_envoy_sni_named_matches_server_names_behind_a_tls_inspector() -> None:
    _, config = envoy_config(sni="named")
    assert chain(config)["filter_chain_match"]["server_names"] == list(SERVER_NAMES)
    filters = [f["name"] for f in listener(config).get("listener_filters", [])]
    assert filters == ["envoy.filters.listener.tls_inspector"]


def test_envoy_sni_any_has_one_catch_all_filter_chain() -> None:
    _, config = envoy_config(sni="any")
    assert "filter_chain_match" not in chain(config)
    assert "listener_filters" not in listener(config)


def test_envoy_client_cert_required_requires_and_verifies_client_certificates() -> None:
    _, config = envoy_config(client_cert="required")
    context = tls_context(config)
    assert context["require_client_certificate"] is True
    trusted = context["common_tls_context"]["validation_context"]["trusted_ca"]["filename"]
    assert trusted == str(PKI_DIR / "ca-bundle.crt")


def test_envoy_client_cert_optional_verifies_but_does_not_require() -> None:
    _, config = envoy_config(client_cert="optional")
    context = tls_context(config)
    assert context["require_client_certificate"] is False
    assert "validation_context" in context["common_tls_context"]


def test_envoy_client_cert_none_does_not_validate_client_certificates() -> None:
    _, config = envoy_config(client_cert="none")
    context = tls_context(config)
    assert context["require_client_certificate"] is False
    assert "validation_context" not in context["common_tls_context"]


def test_envoy_cipher_suites_appear_only_when_given() -> None:
    _, default = envoy_config()
    assert "tls_params" not in tls_context(default)["common_tls_context"]
    suites = ("ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384")
    _, restricted = envoy_config(cipher_suites=suites)
    assert tls_context(restricted)["common_tls_context"]["tls_params"]["cipher_suites"] == list(suites)


@pytest.mark.parametrize(("server_cert", "chain_file", "key_file"), [
    ("valid", "server-fullchain.crt", "server.key"),
    ("mismatched", "mismatched-server-fullchain.crt", "mismatched-server.key"),
])
def test_envoy_presents_the_server_certificate_the_options_pick(server_cert: str, chain_file: str,
                                                                key_file: str) -> None:
    _, config = envoy_config(server_cert=server_cert)
    (identity,) = tls_context(config)["common_tls_context"]["tls_certificates"]
    assert identity["certificate_chain"]["filename"] == str(PKI_DIR / chain_file)
    assert identity["private_key"]["filename"] == str(PKI_DIR / key_file)


# --- Orthanc ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"tls": True}, {"tls": True, "client_cert": "optional"},
                                     {"tls": True, "server_cert": "mismatched"},
                                     {"ingest_transcoding": "1.2.840.10008.1.2.4.70", "always_allow_store": False}])
def test_orthanc_config_sets_each_option_once(options: dict[str, Any]) -> None:
    _, config = orthanc_config(**options)
    assert config["SyncStorageArea"] is False


def test_orthanc_plain_config_is_json_without_tls() -> None:
    where = placement()
    _, config = orthanc_config(where, tls=False)
    assert config["DicomTlsEnabled"] is False
    assert not [k for k in config if k.startswith("DicomTls") and k != "DicomTlsEnabled"]
    assert config["DicomPort"] == 41104
    assert config["HttpPort"] == 41105
    assert config["StorageDirectory"] == f"{where.workdir}/storage"
    assert config["DicomAet"] == "ORTHANC"


@pytest.mark.parametrize(("client_cert", "required"), [("required", True), ("optional", False)])
def test_orthanc_tls_config_follows_the_options(client_cert: str, required: bool) -> None:
    _, config = orthanc_config(tls=True, client_cert=client_cert)
    assert config["DicomTlsEnabled"] is True
    assert config["DicomTlsRemoteCertificateRequired"] is required
    assert config["DicomTlsCertificate"] == str(PKI_DIR / "server-fullchain.crt")
    assert config["DicomTlsPrivateKey"] == str(PKI_DIR / "server.key")
    assert config["DicomTlsTrustedCertificates"] == str(PKI_DIR / "ca-bundle.crt")


def test_orthanc_mismatched_server_cert_presents_the_wrong_san_certificate() -> None:
    _, config = orthanc_config(tls=True, server_cert="mismatched")
    assert config["DicomTlsCertificate"] == str(PKI_DIR / "mismatched-server-fullchain.crt")
    assert config["DicomTlsPrivateKey"] == str(PKI_DIR / "mismatched-server.key")


def test_orthanc_launch_reads_the_rendered_config() -> None:
    launch = component_class("orthanc")(OrthancOptions()).launch(placement(), "/usr/sbin/Orthanc")
    assert launch.args[-1] == "/srv/dicomtls/env/edge/orthanc.json"
    assert set(launch.files) == {"orthanc.json"}


# --- secrets ----------------------------------------------------------------------------------------------------

ALL_CONFIGS = [
    ("envoy", {"client_cert": "required", "sni": "named", "cipher_suites": ("ECDHE-RSA-AES128-GCM-SHA256",)}),
    ("envoy", {"client_cert": "none", "server_cert": "mismatched"}),
    ("envoy", {}),
    ("orthanc", {"tls": True, "client_cert": "required"}),
    ("orthanc", {"tls": True, "server_cert": "mismatched"}),
    ("orthanc", {}),
]


@pytest.mark.parametrize(("kind", "options"), ALL_CONFIGS, ids=lambda v: str(v))
def test_rendered_configs_carry_no_private_key_material_or_ca_private_paths(kind: str, options: dict[str, Any]) -> None:
    cls = component_class(kind)
    launch = cls(cls.options_model(**options)).launch(placement(), "/bin/true")
    assert launch.files
    for text in launch.files.values():
        assert "PRIVATE KEY" not in text
        assert "ca-private" not in text
        assert str(PKI_DIR / "ca-private") not in text


def test_the_placement_pki_paths_exclude_the_ca_private_directory() -> None:
    paths = placement().pki
    assert not any("ca-private" in value for value in vars(paths).values())


# --- the renderer -----------------------------------------------------------------------------------------------


def test_missing_template_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not found"):
        render("envoy/absent.yaml.j2")


def test_missing_template_variable_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="envoy/envoy.yaml.j2"):
        render("envoy/envoy.yaml.j2", sni="any")


SITES = (("north", ("north.dicom.test",)), ("south", ("south.dicom.test",)))


def test_envoy_gives_each_site_a_chain_with_its_certificate_and_cluster_and_the_first_catches_the_rest() -> None:
    _, config = envoy_config(placement(sites=SITES), sni="any")
    files = placements.pki_layout(SERVER_NAMES, SITES)
    north, south = listener(config)["filter_chains"]
    assert listener(config)["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    assert "filter_chain_match" not in north  # the default chain: no SNI, or a name no other chain claims
    assert south["filter_chain_match"] == {"server_names": ["south.dicom.test"]}
    for chain_, site in ((north, "north"), (south, "south")):
        tls = chain_["transport_socket"]["typed_config"]["common_tls_context"]["tls_certificates"][0]
        assert tls["certificate_chain"]["filename"] == str(files.site(site).fullchain)
        assert chain_["filters"][0]["typed_config"]["cluster"] == site
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert set(clusters) == {"north", "south"}
    endpoint = clusters["south"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 41205}


def test_envoy_named_sites_have_no_default_chain() -> None:
    _, config = envoy_config(placement(sites=SITES), sni="named")
    assert [c["filter_chain_match"]["server_names"] for c in listener(config)["filter_chains"]] == [
        ["north.dicom.test"], ["south.dicom.test"]]


def test_orthanc_config_takes_the_users_dicom_options() -> None:
    _, config = orthanc_config(aet="SOMEAET", check_called_aet=True, ingest_transcoding="1.2.840.10008.1.2.4.70",
                               storage_compression=True)
    assert config["DicomAet"] == "SOMEAET"
    assert config["DicomCheckCalledAet"] is True
    assert config["IngestTranscoding"] == "1.2.840.10008.1.2.4.70"
    assert config["StorageCompression"] is True
    assert "DicomModalities" not in config  # anyone may echo and store: no modality to declare


def test_orthanc_defaults_are_orthancs_own() -> None:
    _, config = orthanc_config()
    assert (config["DicomAet"], config["DicomCheckCalledAet"], config["StorageCompression"]) == ("ORTHANC", False,
                                                                                                  False)
    assert (config["DicomAlwaysAllowEcho"], config["DicomAlwaysAllowStore"]) == (True, True)
    assert "IngestTranscoding" not in config


@pytest.mark.parametrize("closed", ["always_allow_echo", "always_allow_store"])
def test_orthanc_that_answers_only_its_modalities_declares_the_probes_calling_aet_one(closed: str) -> None:
    _, config = orthanc_config(**{closed: False})
    assert [entry[0] for entry in config["DicomModalities"].values()] == ["DICOMTLS"]


@pytest.mark.parametrize(("option", "value", "words"), [
    ("aet", "A" * 17, "must not exceed 16 characters"),
    ("aet", "    ", "must not consist entirely of spaces"),
    ("aet", "PACS\\MAIN", "backslash"),
    ("aet", "PACS\x07", "control"),
    ("ingest_transcoding", "1.2.840.10008.5.1.4.1.1.2", "not a DICOM transfer syntax UID"),
    ("ingest_transcoding", "JPEG", "not a DICOM transfer syntax UID"),
])
def test_orthanc_refuses_an_ae_title_or_transfer_syntax_it_could_not_use(option: str, value: str,
                                                                         words: str) -> None:
    with pytest.raises(ValueError, match=words):
        OrthancOptions(**{option: value})


def test_locked_down_orthanc_declares_only_the_modalities_it_is_given() -> None:
    _, config = orthanc_config(always_allow_echo=False, always_allow_store=False, modalities=["CT1", "MR-2"])
    assert [entry[0] for entry in config["DicomModalities"].values()] == ["CT1", "MR-2"]
    assert (config["DicomAlwaysAllowEcho"], config["DicomAlwaysAllowStore"]) == (False, False)
