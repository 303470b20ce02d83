"""A fix's edits on the user's nginx.conf: the directive changed where it was set, in place, comments and layout
kept; one added after the server's listen when the configuration leaves it at nginx's default; the patch applies
to the user's tree with `git apply` and `patch -p1`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dicomtls.fixes import nginx, patch
from dicomtls.fixes.candidates import Candidate, Edit, NotApplicable
from dicomtls.fixes.prove import _unsupported
from dicomtls.manifests import manifest_files, translate_files
from dicomtls.scenario import EnvironmentConfig

MUTUAL = Path(__file__).parents[1] / "fixtures" / "manifests" / "orthweb-compose-mutual"
RESOURCE = "NginxServer/nginx-proxy"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    copy = tmp_path / MUTUAL.name
    shutil.copytree(MUTUAL, copy)
    return copy


def files(tree: Path) -> list[Path]:
    return [Path(f) for t in translate_files(manifest_files(tree)) for f in t.files]


def conf(tree: Path) -> Path:
    return tree / "config" / "nginx" / "nginx.conf"


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new) if a != b]


def standalone(tmp_path: Path, server: str, stream: str = "") -> Path:
    path = tmp_path / "nginx.conf"
    path.write_text("events {}\n\nstream {\n" + stream + "    server {\n" + server + "    }\n}\n")
    return path


def test_the_environment_carries_the_projects_env_file_so_its_copy_reads_the_same(tree: Path) -> None:
    assert {f.name for f in files(tree)} == {"docker-compose.yaml.local", ".env", "nginx.conf", "orthanc.json.local"}


def test_client_cert_optional_rewrites_ssl_verify_client_on_its_own_line_and_keeps_the_comment(tree: Path) -> None:
    before = conf(tree).read_text()
    after = nginx.apply(files(tree), RESOURCE, (Edit("client-cert-optional"),))[conf(tree)]
    assert changed_lines(before, after) == [("        ssl_verify_client on;", "        ssl_verify_client optional;")]
    assert "# every modality must present its certificate" in after


def test_min_version_spells_every_protocol_from_the_new_minimum_up(tree: Path) -> None:
    before = conf(tree).read_text()
    after = nginx.apply(files(tree), RESOURCE, (Edit("min-version", "1.0"),))[conf(tree)]
    assert changed_lines(before, after) == [("        ssl_protocols TLSv1.2 TLSv1.3;",
                                             "        ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;")]


def test_add_cipher_appends_the_suite_to_the_users_cipher_string(tree: Path) -> None:
    before = conf(tree).read_text()
    after = nginx.apply(files(tree), RESOURCE, (Edit("add-cipher", "AES128-SHA"),))[conf(tree)]
    assert changed_lines(before, after) == [("        ssl_ciphers HIGH:!aNULL:!MD5:ECDH+AESGCM;",
                                             "        ssl_ciphers HIGH:!aNULL:!MD5:ECDH+AESGCM:AES128-SHA;")]


def test_a_directive_left_at_its_default_is_added_after_the_listen_with_nginxs_default_extended(
        tmp_path: Path) -> None:
    path = standalone(tmp_path, "        listen 11112 ssl;\n        ssl_certificate /c.pem;\n"
                                "        ssl_certificate_key /c.pem;\n        proxy_pass orthanc:4242;\n")
    after = nginx.apply([path], "NginxServer/nginx", (Edit("add-cipher", "AES128-SHA"),))[path]
    assert "        listen 11112 ssl;\n        ssl_ciphers HIGH:!aNULL:!MD5:AES128-SHA;\n        ssl_certificate" \
        in after


def test_edits_made_together_each_find_their_line_after_an_added_one(tmp_path: Path) -> None:
    path = standalone(tmp_path, "        listen 11112 ssl;\n        ssl_certificate /c.pem;\n"
                                "        ssl_certificate_key /c.pem;\n        ssl_verify_client on;\n"
                                "        ssl_client_certificate /ca.crt;\n        proxy_pass orthanc:4242;\n")
    after = nginx.apply([path], "NginxServer/nginx", (Edit("add-cipher", "AES128-SHA"), Edit("client-cert-optional")))
    assert "        listen 11112 ssl;\n        ssl_ciphers HIGH:!aNULL:!MD5:AES128-SHA;\n" in after[path]
    assert "        ssl_verify_client optional;\n" in after[path]


def test_a_directive_inherited_from_the_stream_block_is_changed_there(tmp_path: Path) -> None:
    path = standalone(tmp_path, "        listen 11112 ssl;\n        proxy_pass orthanc:4242;\n",
                      stream="    ssl_certificate /c.pem;\n    ssl_certificate_key /c.pem;\n"
                             "    ssl_protocols \"TLSv1.3\";  # modern only\n")
    after = nginx.apply([path], "NginxServer/nginx", (Edit("min-version", "1.2"),))[path]
    assert "    ssl_protocols \"TLSv1.2 TLSv1.3\";  # modern only\n" in after


def test_a_directive_set_in_an_included_file_is_edited_in_that_file(tmp_path: Path) -> None:
    (tmp_path / "tls.conf").write_text("ssl_verify_client on;\nssl_client_certificate /ca.crt;\n")
    path = standalone(tmp_path, "        listen 11112 ssl;\n        ssl_certificate /c.pem;\n"
                                "        ssl_certificate_key /c.pem;\n        include tls.conf;\n"
                                "        proxy_pass orthanc:4242;\n")
    edited = nginx.apply([path, tmp_path / "tls.conf"], "NginxServer/nginx", (Edit("client-cert-optional"),))
    assert edited == {tmp_path / "tls.conf": "ssl_verify_client optional;\nssl_client_certificate /ca.crt;\n"}


def test_client_cert_optional_is_refused_where_no_certificate_is_required(tmp_path: Path) -> None:
    path = standalone(tmp_path, "        listen 11112 ssl;\n        ssl_certificate /c.pem;\n"
                                "        ssl_certificate_key /c.pem;\n        proxy_pass orthanc:4242;\n")
    with pytest.raises(NotApplicable, match="ssl_verify_client is off"):
        nginx.apply([path], "NginxServer/nginx", (Edit("client-cert-optional"),))


PREREAD = """    map $ssl_preread_server_name $site {
        dicom.example.test  orthanc-a:4242;
        other.example.test  orthanc-b:4242;
    }
"""


def test_catch_all_adds_a_default_entry_to_the_sni_map_routing_to_its_first_site(tmp_path: Path) -> None:
    path = standalone(tmp_path, "        listen 11112;\n        ssl_preread on;\n        proxy_pass $site;\n",
                      stream=PREREAD)
    after = nginx.apply([path], "NginxServer/nginx", (Edit("catch-all-route"),))[path]
    assert "        other.example.test  orthanc-b:4242;\n        default orthanc-a:4242;\n    }\n" in after


def test_catch_all_fills_an_empty_default_and_refuses_a_default_that_routes(tmp_path: Path) -> None:
    empty = PREREAD.replace("    }\n", "        default \"\";\n    }\n")
    path = standalone(tmp_path, "        listen 11112;\n        ssl_preread on;\n        proxy_pass $site;\n",
                      stream=empty)
    after = nginx.apply([path], "NginxServer/nginx", (Edit("catch-all-route"),))[path]
    assert "        default \"orthanc-a:4242\";\n" in after
    path.write_text(after)
    with pytest.raises(NotApplicable, match="already"):
        nginx.apply([path], "NginxServer/nginx", (Edit("catch-all-route"),))


def test_tls_edits_are_refused_where_nginx_passes_tls_through(tmp_path: Path) -> None:
    path = standalone(tmp_path, "        listen 11112;\n        ssl_preread on;\n        proxy_pass $site;\n",
                      stream=PREREAD)
    with pytest.raises(NotApplicable, match="passes TLS through"):
        nginx.apply([path], "NginxServer/nginx", (Edit("min-version", "1.2"),))


def test_an_nginx_environment_takes_its_settings_but_not_a_default_certificate(tree: Path) -> None:
    env = EnvironmentConfig.model_validate({"name": "e", "manifests": {"files": [str(f) for f in files(tree)],
                                                                       "resource": RESOURCE}})
    optional = Candidate("optional", "server-config", "", None, (Edit("client-cert-optional"),))
    both = Candidate("both", "server-config", "", None, (Edit("catch-all-route"), Edit("default-certificate")))
    assert _unsupported(env, optional) is None
    assert _unsupported(env, both) == f"{RESOURCE} has no default-certificate"


@pytest.mark.parametrize("edit", [Edit("client-cert-optional"), Edit("min-version", "1.1"),
                                  Edit("add-cipher", "AES256-SHA")])
def test_the_patch_applies_to_the_users_tree_with_git_apply_and_patch(tree: Path, tmp_path: Path, edit: Edit) -> None:
    changed = nginx.apply(files(tree), RESOURCE, (edit,))
    diff = patch.unified({f"{tree.name}/{f.relative_to(tree)}": (f.read_text(), text) for f, text in changed.items()})
    patch.write(tmp_path / "fix.patch", diff)
    for command in (["git", "apply", "--check", str(tmp_path / "fix.patch")],
                    ["patch", "-p1", "--dry-run", "-i", str(tmp_path / "fix.patch")]):
        proc = subprocess.run(command, cwd=tree.parent, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    subprocess.run(["patch", "-p1", "-i", str(tmp_path / "fix.patch")], cwd=tree.parent, check=True,
                   capture_output=True)
    assert {f: f.read_text() for f in changed} == changed
