"""haproxy.cfg frontends as environments (manifests.haproxy_environment) and the fixes written back into the file
(fixes.haproxy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtls.errors import UsageError
from dicomtls.fixes import haproxy as haproxy_fix
from dicomtls.fixes.candidates import Edit, NotApplicable
from dicomtls.manifests import manifest_files, translate_files
from dicomtls.manifests.haproxy import parse_haproxy
from dicomtls.manifests.haproxy_environment import translate_haproxy
from dicomtls.scenario import manifest_scenario

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "manifests" / "haproxy" / "haproxy.cfg"
MTLS = ROOT / "tests" / "fixtures" / "manifests" / "haproxy-mtls" / "haproxy.cfg"

TERMINATING = """\
global
    ssl-default-bind-ciphers ECDHE-RSA-AES128-GCM-SHA256
defaults
    mode tcp
frontend dicom
    bind :11112 ssl crt /etc/haproxy/site.pem ca-file /etc/haproxy/ca.crt verify {verify} {extra} # the DICOM port
    use_backend pacs_a if {{ ssl_fc_sni -i a.example.test }}
    use_backend pacs_b if {{ ssl_fc_sni -i b.example.test }}
backend pacs_a
    server a 10.0.0.1:4242
backend pacs_b
    server b1 10.0.0.2:4242
    server b2 10.0.0.3:4242 ssl
"""


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    return path


def test_each_tls_frontend_of_a_haproxy_cfg_becomes_an_environment() -> None:
    tls, sni = translate_files(manifest_files(FIXTURE))
    assert tls.resource == "HAProxyFrontend/dicom_tls"
    assert tls.proxy == {"kind": "haproxy", "client_cert": "optional", "sni": "any",
                         "ciphers": "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA",
                         "ciphersuites": "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384", "min_version": "1.2"}
    assert tls.server == {"kind": "orthanc", "tls": False}
    assert sni.resource == "HAProxyFrontend/dicom_sni"
    assert sni.proxy == {"kind": "haproxy", "passthrough": True, "sni": "any"}
    assert sni.server["tls"] is True


def test_sni_acls_routing_to_two_backends_make_two_sites_the_default_backend_first() -> None:
    _, sni = translate_files([FIXTURE])
    assert sni.sites == (("orthanc-a", ("a.example.test", "dicom-a.example.test")), ("orthanc-b", ("b.example.test",)))


def test_what_haproxy_does_that_is_not_reproduced_is_listed_with_its_line() -> None:
    tls, sni = translate_files([FIXTURE])
    assert any(line.endswith("haproxy.cfg:17: crl-file /usr/local/etc/haproxy/certs/ca.crl: not reproduced (the "
                             "generated PKI revokes nothing)") for line in tls.unhonoured)
    assert any(line.endswith("haproxy.cfg:17: alpn dicom: not reproduced") for line in tls.unhonoured)
    assert any("listen stats: mode http, not DICOM: not read" in line for line in sni.unhonoured)
    assert not any("inspect-delay" in line for line in sni.unhonoured), "the environment inspects the ClientHello too"


def test_a_terminating_frontend_keeps_its_ciphers_versions_strict_sni_and_sites(tmp_path: Path) -> None:
    path = config(tmp_path, TERMINATING.format(verify="required", extra="strict-sni ssl-min-ver TLSv1.3"))
    [t] = translate_haproxy(str(path), parse_haproxy(path.read_text(), path))
    assert t.proxy == {"kind": "haproxy", "client_cert": "required", "sni": "named", "min_version": "1.3",
                       "ciphers": "ECDHE-RSA-AES128-GCM-SHA256"}
    assert t.sites == (("pacs-a", ("a.example.test",)), ("pacs-b", ("b.example.test",)))
    assert any("backend pacs_b: balanced over 2 servers" in line for line in t.unhonoured)
    assert any("server b2 10.0.0.3 ssl: HAProxy encrypts again" in line for line in t.unhonoured)


def test_verify_without_a_ca_file_is_refused_as_haproxy_refuses_it(tmp_path: Path) -> None:
    path = config(tmp_path, "frontend dicom\n    bind :11112 ssl crt /s.pem verify required\n"
                            "    default_backend o\nbackend o\n    server o 10.0.0.1:4242\n")
    with pytest.raises(UsageError, match=r"haproxy.cfg:2: bind … verify required without ca-file"):
        translate_files([path])


def test_a_frontend_carrying_no_tls_is_listed_not_run(tmp_path: Path) -> None:
    path = config(tmp_path, "frontend plain\n    bind :4242\n    default_backend o\nbackend o\n"
                            "    server o 10.0.0.1:4242\n")
    with pytest.raises(UsageError, match="none carries DICOM over TLS"):
        translate_files([path])


def test_a_haproxy_cfg_in_a_tree_is_found_by_its_content_whatever_its_name(tmp_path: Path) -> None:
    (tmp_path / "config" / "haproxy").mkdir(parents=True)
    path = tmp_path / "config" / "haproxy" / "dicom.conf.local"
    path.write_text(FIXTURE.read_text())
    assert manifest_files(tmp_path) == [path]
    scenario = manifest_scenario(tmp_path)
    assert [e.name for e in scenario.environments] == ["haproxy-dicom-tls", "haproxy-dicom-sni"]


# --- fixes written into haproxy.cfg ------------------------------------------------------------------------------


def fixed(path: Path, resource: str, *edits: Edit) -> list[str]:
    [(changed, text)] = haproxy_fix.apply([path], resource, edits).items()
    assert changed == path
    return text.splitlines()


def test_client_cert_optional_sets_verify_optional_on_the_bind_line_and_keeps_its_comment() -> None:
    lines = fixed(MTLS, "HAProxyFrontend/dicom_mtls", Edit("client-cert-optional"))
    assert "    bind :11112 ssl crt orthanc.pem ca-file modalities-ca.crt verify optional  # modalities present a " \
           "certificate" in lines
    assert len(lines) == len(MTLS.read_text().splitlines())


def test_added_cipher_extends_the_inherited_global_ciphers_on_the_bind_only() -> None:
    lines = fixed(MTLS, "HAProxyFrontend/dicom_mtls", Edit("add-cipher", "AES128-SHA"))
    bind = next(line for line in lines if line.strip().startswith("bind"))
    assert "verify required ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
           "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA  #" in bind
    assert sum("ssl-default-bind-ciphers" in line for line in lines) == 1


def test_min_version_replaces_the_bind_lines_own_ssl_min_ver(tmp_path: Path) -> None:
    path = config(tmp_path, TERMINATING.format(verify="optional", extra="ssl-min-ver TLSv1.3"))
    bind = next(line for line in fixed(path, "HAProxyFrontend/dicom", Edit("min-version", "1.2"))
                if line.strip().startswith("bind"))
    assert "ssl-min-ver TLSv1.2 " in bind and "TLSv1.3" not in bind


def test_catch_all_route_drops_strict_sni_and_adds_a_default_backend_after_the_routes(tmp_path: Path) -> None:
    path = config(tmp_path, TERMINATING.format(verify="optional", extra="strict-sni"))
    lines = fixed(path, "HAProxyFrontend/dicom", Edit("catch-all-route"))
    assert "strict-sni" not in "\n".join(lines)
    assert lines[8] == "    default_backend pacs_a"
    assert lines[7].startswith("    use_backend pacs_b")


def test_a_setting_already_as_the_fix_wants_it_is_not_applicable() -> None:
    with pytest.raises(NotApplicable, match="already"):
        haproxy_fix.apply([FIXTURE], "HAProxyFrontend/dicom_tls", (Edit("client-cert-optional"),))
    with pytest.raises(NotApplicable, match="passes TLS through"):
        haproxy_fix.apply([FIXTURE], "HAProxyFrontend/dicom_sni", (Edit("min-version", "1.2"),))
