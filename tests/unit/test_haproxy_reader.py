"""HAProxy configurations read into the TLS front ends they run; every input ends in a model or a UsageError."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomtls.errors import UsageError
from dicomtls.manifests.haproxy import HaproxyConfig, parse_haproxy, read_haproxy, words
from dicomtls.manifests.located import At

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "manifests" / "haproxy" / "haproxy.cfg"
HERE = At(file=Path("h.cfg"), line=1)


def parsed(text: str) -> HaproxyConfig:
    return parse_haproxy(text, Path("haproxy.cfg"))


def frontend(text: str) -> str:
    return f"defaults\n  mode tcp\nbackend b\n  server o 127.0.0.1:4242\nfrontend f\n{text}"


def haproxy_accepts(tmp_path: Path, text: str) -> bool:
    """`haproxy -c` on ``text``, with /a.pem made a real certificate; servers must be loopback (HAProxy resolves
    server names when it checks a configuration)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t",
                    "-keyout", tmp_path / "key", "-out", tmp_path / "crt"], check=True, capture_output=True)
    (tmp_path / "a.pem").write_text((tmp_path / "key").read_text() + (tmp_path / "crt").read_text())
    (tmp_path / "h.cfg").write_text(text.replace("/a.pem", str(tmp_path / "a.pem")))
    ran = subprocess.run(["haproxy", "-c", "-q", "-f", str(tmp_path / "h.cfg")], capture_output=True, timeout=30)
    return ran.returncode == 0


real_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None or shutil.which("openssl") is None,
                                  reason="needs the haproxy and openssl binaries")


def test_a_terminating_bind_reads_certificate_verification_and_versions() -> None:
    config = read_haproxy(FIXTURE)
    tls = next(f for f in config.frontends if f.name == "dicom_tls")
    [bind] = tls.binds
    assert (bind.port, bind.ssl, bind.verify, bind.alpn) == (11112, True, "optional", ("dicom",))
    assert bind.certificates == ("/usr/local/etc/haproxy/certs/site.pem",)
    assert bind.ca_file == "/usr/local/etc/haproxy/certs/ca.crt"
    assert bind.crl_file == "/usr/local/etc/haproxy/certs/ca.crl"
    assert tls.default_backend == "orthanc_a" and bind.at.line == 17


def test_ssl_binds_take_the_global_ssl_default_bind_settings() -> None:
    [bind] = next(f for f in read_haproxy(FIXTURE).frontends if f.name == "dicom_tls").binds
    assert bind.ciphers == "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA"
    assert bind.ciphersuites == "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
    assert bind.min_version == "TLSv1.2" and bind.max_version is None


def test_sni_acls_and_anonymous_acls_route_names_to_backends() -> None:
    sni = next(f for f in read_haproxy(FIXTURE).frontends if f.name == "dicom_sni")
    assert not sni.terminates_tls
    assert [(r.server_names, r.backend) for r in sni.sni_routes] == [
        (("a.example.test", "dicom-a.example.test"), "orthanc_a"), (("b.example.test",), "orthanc_b")]
    assert sni.default_backend == "orthanc_a"


def test_backends_servers_have_address_port_and_line() -> None:
    backends = {b.name: b for b in read_haproxy(FIXTURE).backends}
    [server] = backends["orthanc_b"].servers
    assert (server.address, server.port, server.at.line) == ("orthanc-b", 4242, 36)


def test_keywords_not_reproduced_are_listed_and_http_proxies_are_not_read() -> None:
    config = read_haproxy(FIXTURE)
    sni = next(f for f in config.frontends if f.name == "dicom_sni")
    assert any(n.endswith(":23: tcp-request inspect-delay 5s: not reproduced") for n in sni.not_reproduced)
    assert [f.name for f in config.frontends] == ["dicom_tls", "dicom_sni"]
    assert any("listen stats: mode http" in n for n in config.not_reproduced)


@real_haproxy
def test_the_fixture_is_a_configuration_real_haproxy_accepts(tmp_path: Path) -> None:
    """Certificates made here, servers on loopback: HAProxy resolves server names at start, and only loopback is
    looked up on these machines."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t",
                    "-keyout", tmp_path / "key", "-out", tmp_path / "ca.crt"], check=True, capture_output=True)
    (tmp_path / "site.pem").write_text((tmp_path / "key").read_text() + (tmp_path / "ca.crt").read_text())
    text = FIXTURE.read_text().replace("/usr/local/etc/haproxy/certs", str(tmp_path)).replace(
        f" crl-file {tmp_path}/ca.crl", "").replace("orthanc-a:4242", "127.0.0.1:4242").replace(
        "orthanc-b:4242", "127.0.0.1:4243")
    (tmp_path / "h.cfg").write_text(text)
    ran = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "h.cfg")], capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0, ran.stdout + ran.stderr


@pytest.mark.parametrize(("line", "expected"), [
    ("bind :443 ssl crt /a.pem", ["bind", ":443", "ssl", "crt", "/a.pem"]),
    ("acl a req.ssl_sni -i x # comment", ["acl", "a", "req.ssl_sni", "-i", "x"]),
    ('option "a b" \'c d\'', ["option", "a b", "c d"]),
    ("log-format a\\ b\\#c", ["log-format", "a b#c"]),
    ('x ""', ["x", ""]),
])
def test_lines_split_as_haproxy_splits_them(line: str, expected: list[str]) -> None:
    assert words(line, HERE) == expected


def test_sni_conditions_other_than_an_or_of_sni_matches_are_noted() -> None:
    config = parsed(frontend("  acl s req.ssl_sni x.test\n  acl p src 10.0.0.0/8\n  use_backend b if s p\n"
                             "  use_backend b if !s\n  use_backend b unless s\n"))
    [f] = config.frontends
    assert sum("only SNI matches" in n for n in f.not_reproduced) == 2
    assert any("unless: not reproduced" in n for n in f.not_reproduced)


def test_ports_ranges_and_address_lists_make_one_bind_each() -> None:
    [f] = parsed(frontend("  bind 127.0.0.1:11112-11113,[::1]:11114\n")).frontends
    assert [(b.address, b.port) for b in f.binds] == [("127.0.0.1", 11112), ("127.0.0.1", 11113), ("::1", 11114)]


REFUSED = [
    ("  bind :11112 ssl\n", 6, "no certificate"),
    ("  bind :11112 ssl crt\n", 6, "'crt' expects an argument"),
    ("  bind :11112 ssl crt /a.pem verify sometimes\n", 6, "'verify' expects none, optional or required"),
    ("  bind :11112 ssl crt /a.pem ssl-min-ver TLSv9\n", 6, "'ssl-min-ver' expects one of"),
    ("  bind :99999\n", 6, "the port must be 1-65535"),
    ("  bind nowhere\n", 6, "not an \\[ADDRESS\\]:PORT"),
    ("  bind :1\n  default_backend nope\n", 5, "backend 'nope' is not defined"),
    ("  bind :1\n  use_backend b if unknown\n", 7, "ACL 'unknown' is not declared"),
    ("  bind :1\n  use_backend b if { req.ssl_sni x\n", 7, "never closed"),
    ("  option \"unterminated\n", 6, "unmatched quote"),
]


@pytest.mark.parametrize(("text", "line", "says"), REFUSED)
def test_what_haproxy_refuses_is_a_usage_error_with_file_and_line(text: str, line: int, says: str) -> None:
    with pytest.raises(UsageError, match=rf"haproxy.cfg:{line}: .*{says}"):
        parsed(frontend(text))


@real_haproxy
@pytest.mark.parametrize("text", [text for text, _, _ in REFUSED])
def test_what_the_reader_refuses_real_haproxy_refuses_too(tmp_path: Path, text: str) -> None:
    assert not haproxy_accepts(tmp_path, frontend(text))


@real_haproxy
def test_real_haproxy_accepts_the_frontend_the_refused_cases_start_from(tmp_path: Path) -> None:
    text = frontend("  bind 127.0.0.1:11112 ssl crt /a.pem verify none ssl-min-ver TLSv1.2\n  default_backend b\n")
    assert haproxy_accepts(tmp_path, text) and parsed(text).frontends[0].binds[0].ssl


def test_a_unix_socket_bind_is_refused_as_the_tool_reproduces_tcp_only() -> None:
    with pytest.raises(UsageError, match=r"haproxy.cfg:6: bind /run/h.sock: not a TCP address"):
        parsed(frontend("  bind /run/h.sock\n"))


def test_a_keyword_before_any_section_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"haproxy.cfg:1: unknown keyword 'bind' out of section"):
        parsed("bind :1\n")


def test_a_backend_defined_twice_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"haproxy.cfg:3: backend b is defined twice"):
        parsed("backend b\n  server o o:1\nbackend b\n")


# Structure-aware fuzzing: the fixture's own lines, mutated the ways a hand-edited file goes wrong.
FIXTURE_LINES = FIXTURE.read_text().splitlines()
TOKENS = ["bind", "ssl", "crt", "verify", "required", "ca-file", "ssl-min-ver", "TLSv1.3", "use_backend", "if",
          "unless", "{", "}", "||", "!", "acl", "req.ssl_sni", "-i", "-m", "-f", "--", "frontend", "backend",
          "listen", "defaults", "global", "server", "mode", "http", "tcp", ":", ":0", ":65536", "1-2", "[::]:1",
          "'", '"', "\\", "#", "orthanc_a", "nope", "", "ü", "${X}", "\t", "unix@/s", "default_backend"]


def mutated_from(original: list[str]) -> st.SearchStrategy[str]:
    return mutated(original)


@st.composite
def mutated(draw: st.DrawFn, original: list[str] | None = None) -> str:
    lines = list(original if original is not None else FIXTURE_LINES)
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "replace", "truncate", "join"]))
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            lines.append(draw(st.sampled_from(TOKENS)))
        elif action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action in ("insert", "replace"):
            parts = lines[i].split(" ")
            k = draw(st.integers(0, len(parts) - 1))
            token = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=8)))
            parts[k:k + (action == "replace")] = [token]
            lines[i] = " ".join(parts)
        elif action == "truncate":
            lines[i] = lines[i][:draw(st.integers(0, len(lines[i])))]
        elif i + 1 < len(lines):
            lines[i:i + 2] = [lines[i] + " " + lines[i + 1].strip()]
    return "\n".join(lines)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_every_mutated_configuration_ends_in_a_model_or_a_one_line_usage_error(text: str) -> None:
    try:
        config = parsed(text)
    except UsageError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("haproxy.cfg")
    else:
        assert isinstance(config, HaproxyConfig)


@pytest.fixture(scope="module")
def checkable(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The fixture with a real certificate and loopback servers, so that `haproxy -c` can accept it."""
    directory = tmp_path_factory.mktemp("haproxy-c")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t",
                    "-keyout", directory / "key", "-out", directory / "ca.crt"], check=True, capture_output=True)
    (directory / "site.pem").write_text((directory / "key").read_text() + (directory / "ca.crt").read_text())
    text = FIXTURE.read_text().replace("/usr/local/etc/haproxy/certs", str(directory)).replace(
        f" crl-file {directory}/ca.crl", "").replace("orthanc-a:4242", "127.0.0.1:4242").replace(
        "orthanc-b:4242", "127.0.0.1:4243")
    return directory, text


@real_haproxy
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to keep haproxy off the network")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_configuration_the_reader_refuses_is_refused_by_real_haproxy(
        checkable: tuple[Path, str], data: st.DataObject) -> None:
    """Differential: the reader's UsageErrors (but its own limits, which say "the tool") are HAProxy's errors too.
    haproxy runs in an empty network namespace: a mutation may turn a token into a host name it would resolve."""
    directory, text = checkable
    lines = text.splitlines()
    mutated_text = data.draw(mutated_from(lines))
    try:
        parse_haproxy(mutated_text, directory / "h.cfg")
        return
    except UsageError as exc:
        if "the tool" in str(exc):
            return
    (directory / "h.cfg").write_text(mutated_text)
    ran = subprocess.run(["unshare", "-n", "haproxy", "-c", "-q", "-f", str(directory / "h.cfg")],
                         capture_output=True, text=True, timeout=30)
    assert ran.returncode != 0, mutated_text
