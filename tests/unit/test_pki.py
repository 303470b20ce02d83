"""The test PKI: certificates a proxy must accept, ones it must refuse, and files nobody else can read."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import stat
import subprocess
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dicomtls import pki
from dicomtls.errors import UsageError
from dicomtls.pki import PKCS12_PASSWORD, PkiFiles, PkiSpec, ensure_pki, load_pki

# RSA-4096 is left to a single test: generating it is slow.
SPECS = [
    PkiSpec(topology=topology, key=key)
    for topology in ("one-level", "two-level")
    for key in ("rsa-2048", "ecdsa-p256")
]

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


@pytest.fixture(scope="module", params=SPECS, ids=lambda spec: f"{spec.topology}-{spec.key}")
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    """One PKI per topology and key type, shared by the tests that only read it."""
    return ensure_pki(request.param, tmp_path_factory.mktemp("pki"))


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def private_key(path: Path) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    return key


def issuing_ca(files: PkiFiles) -> x509.Certificate:
    return cert(files.intermediate_cert or files.ca_cert)


def chain(files: PkiFiles) -> list[x509.Certificate]:
    return [cert(files.intermediate_cert)] if files.intermediate_cert else []


def leaf_keys(files: PkiFiles) -> set[Path]:
    return {
        files.server_key,
        files.client_key,
        files.untrusted_client_key,
        files.expired_client_key,
        files.revoked_client_key,
        files.self_signed_client_key,
        files.other_client_key,
        files.mismatched_server_key,
    }


def ca_keys(files: PkiFiles) -> set[Path]:
    names = ["root.key", "untrusted-ca.key"] + (["intermediate.key"] if files.intermediate_cert else [])
    return {files.private_dir / name for name in names}


def all_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def snapshot(directory: Path) -> dict[Path, tuple[int, bytes]]:
    return {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in all_files(directory)}


def extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension:
    return certificate.extensions.get_extension_for_class(kind)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def openssl_verify(files: PkiFiles, target: Path, *options: str) -> subprocess.CompletedProcess[str]:
    untrusted = ["-untrusted", str(files.intermediate_cert)] if files.intermediate_cert else []
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(files.ca_cert), *untrusted, *options, str(target)],
        capture_output=True,
        text=True,
        check=False,
    )


# --- openssl's view ---------------------------------------------------------


@needs_openssl
def test_openssl_accepts_server_and_client_certificates_for_their_purpose(made: PkiFiles) -> None:
    for target, purpose in [(made.server_cert, "sslserver"), (made.client_cert, "sslclient")]:
        for options in ([], ["-purpose", purpose]):
            result = openssl_verify(made, target, *options)
            assert result.returncode == 0, result.stdout + result.stderr
            assert result.stdout.strip().endswith(": OK")


@needs_openssl
def test_openssl_refuses_each_leaf_for_the_other_purpose(made: PkiFiles) -> None:
    for target, purpose in [(made.server_cert, "sslclient"), (made.client_cert, "sslserver")]:
        result = openssl_verify(made, target, "-purpose", purpose)
        assert result.returncode != 0
        assert "unsuitable certificate purpose" in result.stdout + result.stderr


@needs_openssl
def test_openssl_rejects_client_certificate_from_untrusted_ca(made: PkiFiles) -> None:
    result = openssl_verify(made, made.untrusted_client_cert, "-purpose", "sslclient")
    assert result.returncode != 0
    assert "unable to get local issuer certificate" in result.stdout + result.stderr


@needs_openssl
def test_openssl_rejects_expired_client_certificate_as_expired(made: PkiFiles) -> None:
    result = openssl_verify(made, made.expired_client_cert, "-purpose", "sslclient")
    assert result.returncode != 0
    assert "certificate has expired" in result.stdout + result.stderr


@needs_openssl
def test_openssl_rejects_mismatched_server_certificate_only_for_the_host_name(made: PkiFiles) -> None:
    host = made.spec.server_names[0]
    good = openssl_verify(made, made.server_cert, "-purpose", "sslserver", "-verify_hostname", host)
    assert good.returncode == 0, good.stdout + good.stderr
    # Without a host name to check it is a perfectly good server certificate ...
    chained = openssl_verify(made, made.mismatched_server_cert, "-purpose", "sslserver")
    assert chained.returncode == 0, chained.stdout + chained.stderr
    # ... so a proxy that refuses it really checked the name.
    wrong = openssl_verify(made, made.mismatched_server_cert, "-purpose", "sslserver", "-verify_hostname", host)
    assert wrong.returncode != 0
    assert "hostname mismatch" in wrong.stdout + wrong.stderr


@needs_openssl
def test_openssl_reads_client_p12_with_the_password(made: PkiFiles) -> None:
    result = subprocess.run(
        ["openssl", "pkcs12", "-in", str(made.client_p12), "-passin", f"pass:{PKCS12_PASSWORD}", "-nodes"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "PRIVATE KEY" in result.stdout
    assert f"CN = {made.spec.client_name}" in result.stdout


@pytest.mark.skipif(shutil.which("keytool") is None, reason="Java keytool not installed")
def test_java_keytool_lists_the_truststore_as_trusted_ca_entries(made: PkiFiles) -> None:
    result = subprocess.run(
        ["keytool", "-list", "-storetype", "PKCS12", "-keystore", str(made.truststore_p12)]
        + ["-storepass", PKCS12_PASSWORD],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    expected = 2 if made.intermediate_cert else 1
    assert result.stdout.count("trustedCertEntry") == expected
    assert "PrivateKeyEntry" not in result.stdout


# --- certificate contents ---------------------------------------------------


def test_ca_certificates_are_critical_cas_with_the_topology_path_length(made: PkiFiles) -> None:
    root = cert(made.ca_cert)
    expected = [(root, 1 if made.intermediate_cert else 0), (cert(made.directory / "untrusted-ca.crt"), 0)]
    if made.intermediate_cert:
        expected.append((cert(made.intermediate_cert), 0))
    for ca, path_length in expected:
        constraints = extension(ca, x509.BasicConstraints)
        assert constraints.critical
        assert constraints.value.ca is True
        assert constraints.value.path_length == path_length
        usage = extension(ca, x509.KeyUsage)
        assert usage.critical
        assert usage.value.key_cert_sign and usage.value.crl_sign
        assert not usage.value.digital_signature
        assert extension(ca, x509.SubjectKeyIdentifier).value.digest


def test_ca_names_follow_the_topology(made: PkiFiles) -> None:
    def common_name(path: Path) -> str:
        return cert(path).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value

    if made.intermediate_cert:
        assert common_name(made.ca_cert) == "dicomtls Root CA"
        assert common_name(made.intermediate_cert) == "dicomtls Intermediate CA"
    else:
        assert common_name(made.ca_cert) == "dicomtls Test CA"
    assert common_name(made.directory / "untrusted-ca.crt") == "dicomtls Untrusted CA"


def test_every_certificate_links_to_its_issuer_by_key_identifier_and_signature(made: PkiFiles) -> None:
    root = cert(made.ca_cert)
    issuer = issuing_ca(made)
    untrusted_ca = cert(made.directory / "untrusted-ca.crt")
    links = [
        (made.server_cert, issuer),
        (made.client_cert, issuer),
        (made.expired_client_cert, issuer),
        (made.mismatched_server_cert, issuer),
        (made.untrusted_client_cert, untrusted_ca),
    ]
    if made.intermediate_cert:
        links.append((made.intermediate_cert, root))
    for path, parent in links:
        child = cert(path)
        child.verify_directly_issued_by(parent)
        aki = extension(child, x509.AuthorityKeyIdentifier).value.key_identifier
        assert aki == extension(parent, x509.SubjectKeyIdentifier).value.digest, path.name
    for self_signed in (root, untrusted_ca):
        self_signed.verify_directly_issued_by(self_signed)


def test_server_certificate_has_server_auth_and_scenario_sans_only(made: PkiFiles) -> None:
    server = cert(made.server_cert)
    assert list(extension(server, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = extension(server, x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == list(made.spec.server_names)
    assert sans.get_values_for_type(x509.IPAddress) == []
    assert len(sans) == len(made.spec.server_names)
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == made.spec.server_names[0]
    constraints = extension(server, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False


def test_mismatched_server_certificate_names_only_the_wrong_host(made: PkiFiles) -> None:
    mismatched = cert(made.mismatched_server_cert)
    assert list(extension(mismatched, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = extension(mismatched, x509.SubjectAlternativeName).value
    assert list(sans) == [x509.DNSName("wrong-host.invalid")]
    assert not set(made.spec.server_names) & set(sans.get_values_for_type(x509.DNSName))


def test_client_certificates_have_client_auth_only(made: PkiFiles) -> None:
    for path in (made.client_cert, made.expired_client_cert, made.untrusted_client_cert):
        client = cert(path)
        assert list(extension(client, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == made.spec.client_name
        assert extension(client, x509.BasicConstraints).value.ca is False
        with pytest.raises(x509.ExtensionNotFound):
            extension(client, x509.SubjectAlternativeName)


def test_leaf_key_usage_is_critical_and_allows_key_encipherment_only_for_rsa_servers(made: PkiFiles) -> None:
    rsa_keys = made.spec.key.startswith("rsa-")
    for path in (made.server_cert, made.mismatched_server_cert):
        usage = extension(cert(path), x509.KeyUsage)
        assert usage.critical
        assert usage.value.digital_signature
        assert usage.value.key_encipherment is rsa_keys
        assert not usage.value.key_cert_sign
    for path in (made.client_cert, made.expired_client_cert, made.untrusted_client_cert):
        usage = extension(cert(path), x509.KeyUsage)
        assert usage.critical
        assert usage.value.digital_signature
        assert not usage.value.key_encipherment and not usage.value.key_cert_sign


def test_every_key_uses_the_spec_key_type_and_matches_its_certificate(made: PkiFiles) -> None:
    pairs = {
        made.server_key: made.server_cert,
        made.client_key: made.client_cert,
        made.untrusted_client_key: made.untrusted_client_cert,
        made.expired_client_key: made.expired_client_cert,
        made.mismatched_server_key: made.mismatched_server_cert,
        made.private_dir / "root.key": made.ca_cert,
        made.private_dir / "untrusted-ca.key": made.directory / "untrusted-ca.crt",
    }
    if made.intermediate_cert:
        pairs[made.private_dir / "intermediate.key"] = made.intermediate_cert
    for key_path, cert_path in pairs.items():
        key = private_key(key_path)
        if made.spec.key == "ecdsa-p256":
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            assert isinstance(key.curve, ec.SECP256R1)
        else:
            assert isinstance(key, rsa.RSAPrivateKey)
            assert key.key_size == 2048
        assert key.public_key() == cert(cert_path).public_key(), key_path.name


def test_rsa_4096_spec_makes_4096_bit_keys(tmp_path: Path) -> None:
    files = ensure_pki(PkiSpec(key="rsa-4096"), tmp_path)
    for path in [*leaf_keys(files), *ca_keys(files)]:
        key = private_key(path)
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 4096, path.name


def test_certificates_are_signed_with_sha256_and_have_distinct_serials(made: PkiFiles) -> None:
    paths = [
        made.ca_cert,
        made.intermediate_cert,
        made.directory / "untrusted-ca.crt",
        made.server_cert,
        made.client_cert,
        made.untrusted_client_cert,
        made.expired_client_cert,
        made.mismatched_server_cert,
    ]
    everything = [cert(path) for path in paths if path]
    for certificate in everything:
        assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
    assert len({certificate.serial_number for certificate in everything}) == len(everything)


def test_good_certificates_are_valid_from_a_day_ago_for_a_year(made: PkiFiles) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    slack = datetime.timedelta(minutes=5)
    day = datetime.timedelta(days=1)
    for path in filter(None, [made.ca_cert, made.intermediate_cert, made.server_cert, made.client_cert]):
        certificate = cert(path)
        assert abs(certificate.not_valid_before_utc - (now - day)) < slack, path.name
        assert abs(certificate.not_valid_after_utc - (now + 365 * day)) < slack, path.name


def test_expired_client_certificate_is_really_expired(made: PkiFiles) -> None:
    expired = cert(made.expired_client_cert)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert expired.not_valid_after_utc < now - datetime.timedelta(hours=12)
    assert expired.not_valid_before_utc < expired.not_valid_after_utc
    assert expired.issuer == issuing_ca(made).subject


def test_ip_sans_appear_only_when_asked(tmp_path: Path) -> None:
    spec = PkiSpec(server_names=("pacs.example.test", "pacs"), ip_sans=("127.0.0.1", "::1"))
    files = ensure_pki(spec, tmp_path)
    sans = extension(cert(files.server_cert), x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["pacs.example.test", "pacs"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    mismatched = extension(cert(files.mismatched_server_cert), x509.SubjectAlternativeName).value
    assert mismatched.get_values_for_type(x509.IPAddress) == []
    if shutil.which("openssl"):
        result = openssl_verify(files, files.server_cert, "-verify_ip", "127.0.0.1")
        assert result.returncode == 0, result.stdout + result.stderr


def test_fullchain_files_hold_the_leaf_then_the_intermediate(made: PkiFiles) -> None:
    for leaf, fullchain in [
        (made.server_cert, made.server_fullchain),
        (made.client_cert, made.client_fullchain),
        (made.expired_client_cert, made.expired_client_fullchain),
        (made.mismatched_server_cert, made.mismatched_server_fullchain),
    ]:
        assert certs(fullchain) == [cert(leaf), *chain(made)], fullchain.name
    assert certs(made.ca_bundle) == [cert(made.ca_cert), *chain(made)]


def test_client_p12_holds_the_client_key_certificate_and_chain(made: PkiFiles) -> None:
    bundle = pkcs12.load_pkcs12(made.client_p12.read_bytes(), PKCS12_PASSWORD.encode())
    assert bundle.cert is not None and bundle.cert.certificate == cert(made.client_cert)
    assert bundle.key is not None and bundle.key.public_key() == cert(made.client_cert).public_key()
    assert [extra.certificate for extra in bundle.additional_certs] == chain(made)
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(made.client_p12.read_bytes(), b"wrong password")


def test_truststore_holds_the_ca_certificates_and_no_key(made: PkiFiles) -> None:
    store = pkcs12.load_pkcs12(made.truststore_p12.read_bytes(), PKCS12_PASSWORD.encode())
    assert store.key is None
    assert store.cert is None
    assert [extra.certificate for extra in store.additional_certs] == [cert(made.ca_cert), *chain(made)]


# --- file safety -------------------------------------------------------------


def test_private_keys_are_written_0600(made: PkiFiles) -> None:
    keys = [path for path in all_files(made.directory) if path.suffix == ".key"]
    assert set(keys) == leaf_keys(made) | ca_keys(made)
    for path in keys:
        assert mode(path) == 0o600, path.name
    assert mode(made.client_p12) == 0o600  # it holds the client key too


def test_ca_private_directory_is_0700_and_certificates_0644(made: PkiFiles) -> None:
    assert mode(made.private_dir) == 0o700
    for path in all_files(made.directory):
        if path.suffix == ".crt" or path.name in ("truststore.p12", "pki.json"):
            assert mode(path) == 0o644, path.name


def test_ca_keys_exist_only_under_ca_private(made: PkiFiles) -> None:
    assert set(made.private_dir.iterdir()) == ca_keys(made)
    ca_public_keys = [private_key(path).public_key() for path in ca_keys(made)]
    for path in all_files(made.directory):
        if made.private_dir in path.parents:
            continue
        if b"PRIVATE KEY" in path.read_bytes():
            assert path in leaf_keys(made), f"{path.name} holds a private key"
            assert private_key(path).public_key() not in ca_public_keys, f"{path.name} holds a CA key"


def test_private_keys_are_created_0600_not_tightened_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: dict[str, tuple[int, int]] = {}
    real_open = os.open

    def spy(path: os.PathLike[str] | str, flags: int, mode: int = 0o777, *args: object, **kwargs: object) -> int:
        opened[os.fspath(path)] = (flags, mode)
        return real_open(path, flags, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    files = ensure_pki(PkiSpec(topology="two-level", key="ecdsa-p256"), tmp_path)
    monkeypatch.undo()
    for path in leaf_keys(files) | ca_keys(files) | {files.client_p12}:
        flags, created_mode = opened[str(path)]
        assert flags & os.O_CREAT and flags & os.O_EXCL, path.name
        assert created_mode == 0o600, path.name


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_file_modes_do_not_depend_on_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        files = ensure_pki(PkiSpec(key="ecdsa-p256"), tmp_path / "out")
    finally:
        os.umask(previous)
    assert mode(files.server_key) == 0o600
    assert mode(files.private_dir / "root.key") == 0o600
    assert mode(files.server_cert) == 0o644
    assert mode(files.private_dir) == 0o700


def test_pki_json_records_the_spec_and_nothing_secret(made: PkiFiles) -> None:
    raw = (made.directory / "pki.json").read_text()
    record = json.loads(raw)
    assert record["spec"] == json.loads(json.dumps(asdict(made.spec)))
    assert record["digest"] == made.spec.digest()
    assert set(record) == {"format", "digest", "spec"}
    assert "PRIVATE" not in raw


# --- reuse and replacement -----------------------------------------------------


def test_second_run_with_the_same_spec_rewrites_nothing(tmp_path: Path) -> None:
    spec = PkiSpec(topology="two-level", key="ecdsa-p256")
    first = ensure_pki(spec, tmp_path)
    before = snapshot(tmp_path)
    second = ensure_pki(PkiSpec(topology="two-level", key="ecdsa-p256"), tmp_path)
    assert second == first
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "change",
    [
        {"topology": "two-level"},
        {"key": "rsa-2048"},
        {"server_names": ("other.example.test",)},
        {"ip_sans": ("127.0.0.1",)},
        {"client_name": "someone-else"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_different_spec_is_refused_without_force(tmp_path: Path, change: dict[str, object]) -> None:
    spec = PkiSpec(key="ecdsa-p256")
    ensure_pki(spec, tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(UsageError) as refused:
        ensure_pki(replace(spec, **change), tmp_path)
    message = str(refused.value)
    assert str(tmp_path) in message and "--force" in message and "--out" in message
    assert "\n" not in message
    assert snapshot(tmp_path) == before


def test_force_regenerates_everything(tmp_path: Path) -> None:
    first = ensure_pki(PkiSpec(topology="two-level", key="ecdsa-p256"), tmp_path)
    old_serial = cert(first.server_cert).serial_number
    old_root = first.ca_cert.read_bytes()
    second = ensure_pki(PkiSpec(topology="two-level", key="ecdsa-p256"), tmp_path, force=True)
    assert cert(second.server_cert).serial_number != old_serial
    assert second.ca_cert.read_bytes() != old_root


def test_force_to_one_level_leaves_no_intermediate_behind(tmp_path: Path) -> None:
    ensure_pki(PkiSpec(topology="two-level", key="ecdsa-p256"), tmp_path)
    files = ensure_pki(PkiSpec(topology="one-level", key="ecdsa-p256"), tmp_path, force=True)
    assert files.intermediate_cert is None
    assert not (tmp_path / "intermediate.crt").exists()
    assert not (files.private_dir / "intermediate.key").exists()
    assert load_pki(tmp_path) == files


@pytest.mark.parametrize("lost", ["server.key", "ca-private/root.key", "pki.json", "truststore.p12"])
def test_an_incomplete_directory_is_regenerated(tmp_path: Path, lost: str) -> None:
    spec = PkiSpec(key="ecdsa-p256")
    first = ensure_pki(spec, tmp_path)
    old_serial = cert(first.server_cert).serial_number
    (tmp_path / lost).unlink()
    files = ensure_pki(spec, tmp_path)
    assert (tmp_path / lost).is_file()
    assert cert(files.server_cert).serial_number != old_serial
    assert load_pki(tmp_path) == files


def test_a_corrupt_record_is_regenerated_by_ensure_and_refused_by_load(tmp_path: Path) -> None:
    spec = PkiSpec(key="ecdsa-p256")
    ensure_pki(spec, tmp_path)
    (tmp_path / "pki.json").write_text("{not json")
    with pytest.raises(UsageError, match="unreadable"):
        load_pki(tmp_path)
    ensure_pki(spec, tmp_path)
    assert load_pki(tmp_path).spec == spec


def test_certificates_about_to_expire_are_regenerated_instead_of_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = PkiSpec(key="ecdsa-p256")
    first = ensure_pki(spec, tmp_path)
    old_serial = cert(first.server_cert).serial_number
    later = pki._now() + datetime.timedelta(days=365)
    monkeypatch.setattr(pki, "_now", lambda: later)
    files = ensure_pki(spec, tmp_path)
    assert cert(files.server_cert).serial_number != old_serial


def test_load_pki_returns_what_ensure_pki_made(made: PkiFiles) -> None:
    assert load_pki(made.directory) == made


def test_load_pki_on_an_empty_directory_raises_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no PKI"):
        load_pki(tmp_path)
    with pytest.raises(UsageError, match="no PKI"):
        load_pki(tmp_path / "absent")


def test_load_pki_refuses_an_incomplete_directory(tmp_path: Path) -> None:
    ensure_pki(PkiSpec(key="ecdsa-p256"), tmp_path)
    (tmp_path / "client.p12").unlink()
    with pytest.raises(UsageError, match="incomplete.*client.p12"):
        load_pki(tmp_path)


def test_out_that_is_a_file_raises_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "pki"
    target.write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        ensure_pki(PkiSpec(), target)


# --- the spec ----------------------------------------------------------------


def test_digest_is_short_stable_and_changes_with_every_field() -> None:
    spec = PkiSpec()
    assert spec.digest() == PkiSpec().digest()
    assert len(spec.digest()) == 10 and int(spec.digest(), 16) >= 0
    variants = [
        replace(spec, topology="two-level"),
        replace(spec, key="ecdsa-p256"),
        replace(spec, server_names=("other.example.test",)),
        replace(spec, ip_sans=("127.0.0.1",)),
        replace(spec, client_name="other"),
    ]
    assert len({spec.digest(), *(variant.digest() for variant in variants)}) == len(variants) + 1


def test_spec_accepts_lists_but_stores_tuples() -> None:
    spec = PkiSpec(server_names=["a.test", "b.test"], ip_sans=["10.0.0.1"])  # type: ignore[arg-type]
    assert spec.server_names == ("a.test", "b.test") and spec.ip_sans == ("10.0.0.1",)
    assert spec == PkiSpec(server_names=("a.test", "b.test"), ip_sans=("10.0.0.1",))


@pytest.mark.parametrize(
    "fields, complaint",
    [
        ({"topology": "three-level"}, "topology"),
        ({"key": "rsa-1024"}, "key type"),
        ({"server_names": ()}, "at least one"),
        ({"server_names": "dicom.example.test"}, "single string"),
        ({"server_names": ("bad_name!",)}, "not a DNS name"),
        ({"server_names": ("wrong-host.invalid",)}, "reserved"),
        ({"server_names": ("127.0.0.1",)}, "put it in ip_sans"),
        ({"ip_sans": ("localhost",)}, "not an IP address"),
        ({"client_name": " "}, "client_name"),
    ],
)
def test_invalid_specs_raise_usage_error(fields: dict[str, object], complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint):
        PkiSpec(**fields)  # type: ignore[arg-type]


def test_an_unreadable_certificate_is_refused_not_silently_replaced(tmp_path: Path) -> None:
    spec = PkiSpec(key="ecdsa-p256")
    ensure_pki(spec, tmp_path)
    (tmp_path / "ca.crt").write_text("not a certificate\n")
    with pytest.raises(UsageError, match="ca.crt is not a readable PEM certificate.*--force"):
        ensure_pki(spec, tmp_path)
    assert ensure_pki(spec, tmp_path, force=True).ca_cert.read_text().startswith("-----BEGIN CERTIFICATE-----")


# --- one server certificate per DICOM site -------------------------------------------------------------------------

SITED = PkiSpec(sites=(("north", ("north.dicom.test",)), ("south", ("south.dicom.test", "pacs-south.dicom.test"))))


@pytest.fixture(scope="module")
def sited(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return ensure_pki(SITED, tmp_path_factory.mktemp("sited"))


def test_each_site_gets_a_server_certificate_naming_only_that_site(sited: PkiFiles) -> None:
    for site, names in SITED.sites:
        identity = sited.site(site)
        leaf = cert(identity.cert)
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == list(names)
        assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == names[0]
        assert leaf.issuer == issuing_ca(sited).subject
        assert certs(identity.fullchain)[0] == leaf
        assert private_key(identity.key).public_key() == leaf.public_key()
        assert stat.S_IMODE(identity.key.stat().st_mode) == 0o600


def test_a_pki_with_sites_is_reloaded_with_them(sited: PkiFiles) -> None:
    assert load_pki(sited.directory).spec == SITED
    assert load_pki(sited.directory).site("south") == sited.site("south")


def test_sites_change_the_digest_and_a_pki_without_sites_keeps_its_old_one() -> None:
    assert SITED.digest() != PkiSpec().digest()
    # The fields a PKI had before sites and declared certificates existed.
    fields = {k: v for k, v in asdict(PkiSpec()).items() if k not in ("sites", "cas", "server", "server_key")}
    import hashlib
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    assert PkiSpec().digest() == hashlib.sha256(canonical.encode()).hexdigest()[:10]


def test_an_unknown_site_is_a_usage_error(sited: PkiFiles) -> None:
    with pytest.raises(UsageError, match="no certificate for site 'east'"):
        sited.site("east")


@pytest.mark.parametrize(("sites", "message"), [
    ((("North", ("n.test",)),), "not a file-safe name"),
    ((("north", ()),), "has no server names"),
    ((("north", ("n.test",)), ("north", ("m.test",))), "named twice"),
    ((("north", ("n.test",)), ("south", ("N.test",))), "belongs to sites 'north' and 'south'"),
    ((("north", ("127.0.0.1",)),), "is not a DNS name"),
])
def test_bad_sites_are_refused(sites: tuple, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        PkiSpec(sites=sites)


# --- a declared chain (cert-manager Certificates) -----------------------------------------------------------------

DECLARED = PkiSpec(
    topology="two-level",
    server_names=("pacs.hospital.test", "dicom.hospital.test"),
    cas=(pki.Issued("Hospital Root CA", "ecdsa-p256", 87600), pki.Issued("Imaging Intermediate CA", "rsa-2048", 43800)),
    server=pki.Issued("pacs.hospital.test", "ecdsa-p256", 720, ("server auth", "client auth")),
)


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return ensure_pki(DECLARED, tmp_path_factory.mktemp("declared"))


def test_declared_chain_has_the_declared_names_keys_and_lifetimes(declared: PkiFiles) -> None:
    root, intermediate, server = cert(declared.ca_cert), cert(declared.intermediate_cert), cert(declared.server_cert)
    assert root.subject.rfc4514_string() == root.issuer.rfc4514_string() == "CN=Hospital Root CA"
    assert intermediate.subject.rfc4514_string() == "CN=Imaging Intermediate CA"
    assert intermediate.issuer == root.subject and server.issuer == intermediate.subject
    assert server.subject.rfc4514_string() == "CN=pacs.hospital.test"
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(intermediate.public_key(), rsa.RSAPublicKey) and intermediate.public_key().key_size == 2048
    assert isinstance(server.public_key(), ec.EllipticCurvePublicKey)
    for certificate, hours in ((root, 87600), (intermediate, 43800), (server, 720)):
        lifetime = certificate.not_valid_after_utc - pki._now()
        assert datetime.timedelta(hours=hours) - datetime.timedelta(minutes=5) < lifetime <= datetime.timedelta(hours=hours)
    assert [c.subject for c in certs(declared.server_fullchain)] == [server.subject, intermediate.subject]


def test_declared_cas_have_cert_managers_usages_and_no_path_length(declared: PkiFiles) -> None:
    for path in (declared.ca_cert, declared.intermediate_cert):
        ca = cert(path)
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value == x509.BasicConstraints(True, None)
        usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.key_cert_sign and usage.digital_signature and usage.key_encipherment and not usage.crl_sign


def test_declared_server_usages_are_the_extended_usages_alone(declared: PkiFiles) -> None:
    server = cert(declared.server_cert)
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        server.extensions.get_extension_for_class(x509.KeyUsage)


def test_a_server_without_declared_usages_gets_cert_managers_defaults(tmp_path: Path) -> None:
    spec = PkiSpec(server=pki.Issued("dicom.example.test", "rsa-2048", 2160))
    server = cert(ensure_pki(spec, tmp_path).server_cert)
    usage = server.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        server.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_a_server_without_common_name_has_an_empty_subject_and_critical_sans(tmp_path: Path) -> None:
    spec = PkiSpec(server=pki.Issued(None, "rsa-2048", 2160))
    server = cert(ensure_pki(spec, tmp_path).server_cert)
    assert len(server.subject) == 0
    assert server.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


def test_the_client_and_the_negative_material_come_from_the_declared_issuing_ca(declared: PkiFiles) -> None:
    intermediate = cert(declared.intermediate_cert)
    for path in (declared.client_cert, declared.expired_client_cert, declared.mismatched_server_cert):
        assert cert(path).issuer == intermediate.subject
    assert cert(declared.untrusted_client_cert).issuer != intermediate.subject
    assert stat.S_IMODE((declared.private_dir / "intermediate.key").stat().st_mode) == 0o600


@needs_openssl
def test_openssl_verifies_the_declared_chain_for_server_and_client(declared: PkiFiles) -> None:
    for leaf, purpose in ((declared.server_cert, "sslserver"), (declared.client_cert, "sslclient")):
        result = subprocess.run(["openssl", "verify", "-CAfile", str(declared.ca_cert), "-untrusted",
                                 str(declared.intermediate_cert), "-purpose", purpose, str(leaf)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_declared_pki_is_reloaded_with_its_certificates(declared: PkiFiles) -> None:
    assert load_pki(declared.directory).spec == DECLARED


def test_declared_certificates_change_the_digest() -> None:
    plain = replace(DECLARED, cas=(), server=None)
    assert len({DECLARED.digest(), plain.digest(), replace(DECLARED, server=None).digest()}) == 3


@pytest.mark.parametrize(
    "fields, complaint",
    [
        ({"cas": (pki.Issued("only one", "rsa-2048", 24),), "topology": "two-level"}, "2 CA"),
        ({"cas": (pki.Issued(None, "rsa-2048", 24),)}, "needs a common name"),
    ],
)
def test_invalid_declared_chains_raise_usage_error(fields: dict[str, object], complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint):
        PkiSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args, complaint",
    [
        (("x", "rsa-1024", 24), "key type"),
        (("x", "rsa-2048", 0), "at least an hour"),
        (("x", "rsa-2048", 24, ("sever auth",)), "unknown usage"),
        (("x", "rsa-2048", 24, ("encipher only",)), "key agreement"),
    ],
)
def test_invalid_declared_certificates_raise_usage_error(args: tuple, complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint):
        pki.Issued(*args)
