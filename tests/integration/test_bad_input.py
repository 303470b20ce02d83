"""Bad input: one line saying what is wrong and how to fix it, exit status 2, no traceback, nothing left running."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .conftest import run_invoke

pytestmark = pytest.mark.integration


def assert_one_line_error(proc, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_scenario_lists_the_known_ones(tmp_path: Path, clean_slate: Path) -> None:
    proc = run_invoke(["matrix", "--scenario", "no-such-thing", "--out", str(tmp_path)], tmp_path)
    assert_one_line_error(proc, "no-such-thing", "orthweb-envoy")


def test_malformed_scenario_names_file_and_line(tmp_path: Path, clean_slate: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nprobes: [\n")
    proc = run_invoke(["matrix", "--scenario", str(bad), "--out", str(tmp_path)], tmp_path)
    assert_one_line_error(proc, str(bad), "line")


def test_unknown_field_names_the_field(tmp_path: Path, clean_slate: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "scenarios" / "envoy-mtls.yaml").read_text()
    bad = tmp_path / "typo.yaml"
    bad.write_text(text.replace("client_cert: required", "client_certificate: required"))
    proc = run_invoke(["matrix", "--scenario", str(bad), "--out", str(tmp_path)], tmp_path)
    assert_one_line_error(proc, str(bad), "client_certificate")


def test_missing_binary_says_how_to_install(tmp_path: Path, clean_slate: Path) -> None:
    proc = run_invoke(["matrix", "--scenario", "orthweb-envoy", "--out", str(tmp_path)], tmp_path,
                      DICOMTLS_ENVOY_BIN=str(tmp_path / "missing-envoy"))
    assert_one_line_error(proc, "DICOMTLS_ENVOY_BIN", "missing-envoy")


def test_port_already_in_use_is_refused_before_anything_starts(tmp_path: Path, clean_slate: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_invoke(["up", "--scenario", "orthweb-envoy", "--port", str(port), "--out", str(tmp_path)], tmp_path)
    assert_one_line_error(proc, str(port), "already in use")


def test_unknown_backend_names_the_choices(tmp_path: Path, clean_slate: Path) -> None:
    proc = run_invoke(["matrix", "--backend", "kubernetes", "--out", str(tmp_path)], tmp_path)
    assert_one_line_error(proc, "kubernetes", "local")


def test_unreadable_certificate_names_the_file_and_the_fix(tmp_path: Path, clean_slate: Path) -> None:
    out = tmp_path / "out"
    first = run_invoke(["pki", "--out", str(out), "--server-name", "dicom.orthweb.test"], tmp_path)
    assert first.returncode == 0, first.stderr
    (out / "server.crt").write_text("garbage\n")
    proc = run_invoke(["pki", "--out", str(out), "--server-name", "dicom.orthweb.test"], tmp_path)
    assert_one_line_error(proc, "server.crt", "--force")


def test_load_with_a_bad_concurrency_says_how_to_give_it(tmp_path: Path, clean_slate: Path) -> None:
    proc = run_invoke(["bench", "--load", "--concurrency", "8,many", "--out", str(tmp_path)], tmp_path)
    assert_one_line_error(proc, "--concurrency 8,many", "1,8,32")


def test_soak_without_a_length_says_how_long_to_give(tmp_path: Path, clean_slate: Path) -> None:
    proc = run_invoke(["soak", "--scenario", "orthweb-envoy", "--minutes", "soon", "--out", str(tmp_path)], tmp_path)
    assert_one_line_error(proc, "--minutes soon", "minutes")
