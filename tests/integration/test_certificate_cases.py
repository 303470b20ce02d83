"""The certificate-cases scenario on both backends, one run each: revoked, self-signed and key-mismatch client
certificates against mutual TLS with a CRL (Envoy, nginx, HAProxy) and without one (Traefik, Orthanc)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import EACH_BACKEND, matrix_run

pytestmark = pytest.mark.integration

CRL_CHECKED = {"envoy-mtls-crl", "nginx-mtls-crl", "haproxy-mtls-crl"}


@pytest.fixture(scope="module", params=EACH_BACKEND)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return matrix_run(tmp_path_factory.mktemp(f"certificate-cases-{request.param}"), "--backend", request.param,
                      "--scenario", "certificate-cases")


def cells(run: dict[str, Any], **where: str) -> list[dict[str, Any]]:
    found = [c for c in run["results"]["cells"] if all(c[k] == v for k, v in where.items())]
    assert found, f"no cell matches {where}"
    return found


def test_certificate_cases_exit_zero_with_every_cell_as_expected_and_nothing_left(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert len(run["results"]["cells"]) == 40
    assert {c["verdict"] for c in run["results"]["cells"]} == {"ok"}
    assert run["leftovers"] == (set(), set())


def test_a_revoked_client_certificate_is_refused_where_the_proxy_reads_the_crl(run: dict[str, Any]) -> None:
    for cell in cells(run, client_cert="revoked"):
        if cell["environment"] in CRL_CHECKED:
            assert (cell["actual"], cell["reason"]) == ("fail", "tls-cert-revoked"), cell["id"]
            # The proxy's words, the client's alert, or the CRL checked here: never a guess.
            assert any("revoked" in e for e in cell["evidence"]), cell["evidence"]
        else:
            assert cell["actual"] == "pass", cell["id"]  # Traefik and Orthanc have no CRL setting


def test_a_mismatched_key_is_the_client_s_own_refusal_never_the_proxy_s(run: dict[str, Any]) -> None:
    for cell in cells(run, client_cert="key-mismatch"):
        assert (cell["actual"], cell["reason"]) == ("fail", "client-key-mismatch"), cell["id"]
        assert "refused its own certificate and key before connecting" in cell["summary"]
        assert [e.split(":", 1)[0] for e in cell["evidence"]] == ["client"], cell["evidence"]


def test_a_self_signed_client_certificate_reads_as_an_unknown_ca_everywhere(run: dict[str, Any]) -> None:
    for cell in cells(run, client_cert="self-signed"):
        assert (cell["actual"], cell["reason"]) == ("fail", "tls-unknown-ca"), cell["id"]
        assert "server rejected the client certificate (self-signed)" in cell["summary"]


def test_the_valid_certificate_passes_the_crl(run: dict[str, Any]) -> None:
    assert {c["actual"] for c in cells(run, client_cert="valid")} == {"pass"}


def test_the_crl_is_public_and_no_ca_key_reaches_an_environment(run: dict[str, Any]) -> None:
    out: Path = run["out"]
    rendered = [p for p in (out / "envs").rglob("*") if p.is_file() and p.suffix in (".yaml", ".conf", ".cfg", ".json")]
    assert rendered
    assert not any("ca-private" in p.read_text(errors="replace") for p in rendered)
