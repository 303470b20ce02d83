"""dcmtk via stunnel: the client-mode config a cell runs, and what stunnel's own log says when its TLS side fails.

The logs under tests/fixtures/stunnel/ are stunnel 5.68's real output (OpenSSL 3.0), captured against the
Istio twin of korthweb-istio's Gateways (named-simple, wildcard-mutual) and, for the missing shared cipher,
an nginx stream server that allows only an ECDSA suite while serving an RSA certificate; cases.json holds
the proxy's line for the same connection. dcmtk itself saw the same closed connection every time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from dicomtls.components import Address
from dicomtls.diagnose import Reason, Symptoms, diagnose
from dicomtls.probes import Target
from dicomtls.probes.stunnel import client_config, config_for, connection_lines, peer_subject
from dicomtls.scenario import Probe, parse_scenario

from .placements import pki_layout

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stunnel"
CASES: dict[str, dict[str, Any]] = json.loads((FIXTURES / "cases.json").read_text())
DCMTK_SAW = tuple((FIXTURES / "dcmtk-peer-aborted.txt").read_text().splitlines())
NAME = "dicom.korthweb.test"
INGRESS = Address("127.0.0.1", 11112)


def target() -> Target:
    return Target(INGRESS, (NAME,), pki_layout((NAME,)))


def settings(text: str) -> dict[str, str]:
    """The config's key = value lines, comments dropped (stunnel has no comments after a value)."""
    pairs = (line.partition("=") for line in text.splitlines() if not line.startswith(";"))
    return {k.strip(): v.strip() for k, _, v in pairs if v.strip()}


def test_config_sends_sni_the_client_certificate_and_checks_chain_and_name() -> None:
    t = target()
    text = config_for(t, Probe("dcmtk-stunnel", "right", "valid", "echo"), INGRESS)
    found = settings(text)
    assert found["client"] == "yes" and found["connect"] == "127.0.0.1:11112"
    assert found["accept"] == "127.0.0.1:0"  # a free loopback port, read back from stunnel's log
    assert found["sni"] == NAME and found["checkHost"] == NAME
    assert found["verifyChain"] == "yes" and found["CAfile"] == str(t.pki.ca_cert)
    assert found["cert"] == str(t.pki.client_fullchain) and found["key"] == str(t.pki.client_key)


def test_config_names_key_files_never_key_material() -> None:
    text = config_for(target(), Probe("dcmtk-stunnel", "right", "valid", "echo"), INGRESS)
    assert "PRIVATE KEY" not in text and "BEGIN" not in text


def test_config_without_sni_disables_the_extension_and_still_checks_the_servers_name() -> None:
    found = settings(config_for(target(), Probe("dcmtk-stunnel", "none", "none", "echo"), INGRESS))
    assert "sni" not in found  # `sni =` with nothing after it: no SNI extension
    assert "sni =" in config_for(target(), Probe("dcmtk-stunnel", "none", "none", "echo"), INGRESS).splitlines()
    assert found["checkHost"] == NAME
    assert "cert" not in found and "key" not in found


def test_config_with_a_wrong_sni_checks_the_certificate_for_that_name() -> None:
    found = settings(config_for(target(), Probe("dcmtk-stunnel", "wrong", "untrusted", "echo"), INGRESS))
    assert found["sni"] == found["checkHost"] == "wrong-sni.invalid"
    assert found["cert"].endswith("untrusted-client.crt")


def test_config_that_ignores_the_server_certificate_says_so_and_loads_no_ca() -> None:
    text = config_for(target(), Probe("dcmtk-stunnel", "right", "expired", "echo", server_cert_check="ignore"),
                      INGRESS)
    found = settings(text)
    assert found["verifyChain"] == "no" and "CAfile" not in found and "checkHost" not in found
    assert "no server authentication" in text
    assert found["cert"].endswith("expired-client-fullchain.crt")


def test_config_paths_follow_where_stunnel_runs() -> None:
    t = target()
    text = config_for(t, Probe("dcmtk-stunnel", "right", "valid", "echo"), Address("dicom.korthweb.test", 11112),
                      path=lambda p: f"/mnt/{p.name}")
    found = settings(text)
    assert found["connect"] == "dicom.korthweb.test:11112"
    assert found["CAfile"] == "/mnt/ca.crt" and found["key"] == "/mnt/client.key"


def test_config_for_a_deployment_listens_where_it_is_told() -> None:
    text = client_config(Address("pacs.example.org", 11112), "pacs.example.org", "/etc/stunnel/ca.crt",
                         "pacs.example.org", accept="0.0.0.0:104")
    assert settings(text)["accept"] == "0.0.0.0:104"


def test_config_values_cannot_smuggle_a_line() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        client_config(INGRESS, "dicom.korthweb.test\nexec = /bin/sh", None)


@pytest.mark.parametrize("case", sorted(CASES))
def test_stunnel_log_with_the_proxy_line_names_the_reason(case: str) -> None:
    captured = CASES[case]
    symptoms = Symptoms(
        client_lines=connection_lines((FIXTURES / f"{case}.log").read_text()) + DCMTK_SAW,
        proxy_lines=tuple(captured["proxy_lines"]),
        sent_sni=captured["sent_sni"],
        sent_client_cert=captured["sent_client_cert"],
    )
    assert diagnose(symptoms).reason == Reason(captured["reason"])


@pytest.mark.parametrize("case, reason", [
    ("hostname-mismatch", Reason.TLS_HOSTNAME_MISMATCH),
    ("unknown-ca-server-cert", Reason.TLS_UNKNOWN_CA),
    ("unknown-ca-client-cert", Reason.TLS_UNKNOWN_CA),
    ("no-shared-cipher", Reason.TLS_NO_SHARED_CIPHER),
])
def test_stunnel_log_alone_names_the_reason_where_tls_did(case: str, reason: Reason) -> None:
    found = diagnose(Symptoms(client_lines=connection_lines((FIXTURES / f"{case}.log").read_text()) + DCMTK_SAW,
                              sent_sni=True, sent_client_cert=CASES[case]["sent_client_cert"]))
    assert found.reason is reason
    assert found.evidence[0].startswith("client: stunnel: ")


def test_stunnel_log_says_which_side_rejected_whom() -> None:
    def summary(case: str) -> str:
        lines = connection_lines((FIXTURES / f"{case}.log").read_text()) + DCMTK_SAW
        return diagnose(Symptoms(client_lines=lines, sent_sni=True,
                                 sent_client_cert=CASES[case]["sent_client_cert"])).summary
    assert summary("unknown-ca-server-cert").startswith("the client rejected the server's certificate")
    assert summary("unknown-ca-client-cert").startswith("the server rejected the client certificate (untrusted)")


def test_without_stunnels_log_dcmtk_alone_sees_only_a_closed_connection() -> None:
    found = diagnose(Symptoms(client_lines=DCMTK_SAW, sent_sni=True, sent_client_cert="valid"))
    assert found.reason is Reason.TLS_HANDSHAKE_FAILED


def test_connection_lines_keep_warnings_and_errors_only() -> None:
    assert connection_lines((FIXTURES / "pass.log").read_text()) == ()
    kept = connection_lines((FIXTURES / "hostname-mismatch.log").read_text())
    assert kept == ("stunnel: CERT: Subject checks failed",
                    f"stunnel: Rejected by CERT at depth=0: O=dicomtls test PKI, CN={NAME}",
                    "stunnel: SSL_connect: ../ssl/statem/statem_clnt.c:1889: error:0A000086:SSL routines::"
                    "certificate verify failed")


def test_the_verified_server_certificate_is_named() -> None:
    assert peer_subject((FIXTURES / "pass.log").read_text()) == NAME
    assert peer_subject((FIXTURES / "hostname-mismatch.log").read_text()) is None


def _group(extra: str) -> str:
    return f"""
name: t
description: t
pki: {{server_names: [dicom.example.test]}}
environments: [{{name: e, proxy: {{kind: envoy}}}}]
probes:
  - client: dcmtk-stunnel
{extra}
expect: [{{match: {{}}, outcome: pass}}]
"""


def test_dcmtk_via_stunnel_sends_sni_whatever_the_dcmtk_version() -> None:
    scenario = parse_scenario(_group("    sni: right\n    client_version: 3.6.7"), "t.yaml")
    assert {c.probe.client for c in scenario.cells()} == {"dcmtk-stunnel"}


@pytest.mark.parametrize("extra, says", [
    ("    transport: plain", "dcmtk-stunnel always speaks TLS"),
    ("    profile: aes", "dcmtk-stunnel offers OpenSSL's defaults"),
])
def test_dcmtk_via_stunnel_rejects_axes_it_cannot_honour(extra: str, says: str) -> None:
    from dicomtls.errors import UsageError

    with pytest.raises(UsageError, match=says):
        parse_scenario(_group(extra), "t.yaml")


def test_a_sidecar_started_by_a_local_command_dies_with_it_at_the_timeout(tmp_path: Path) -> None:
    import psutil

    from dicomtls.backends.local import LocalCommandHost

    marker = tmp_path / "sidecar-alive"
    # Like the wrapper: a helper in the background, then a client that never ends.
    script = f'sleep 300 & echo $! > {marker}; sleep 300'
    result = LocalCommandHost(INGRESS).run(["sh", "-c", script], timeout_s=1)
    assert result.code == -1 and "timed out" in result.output
    sidecar = int(marker.read_text())

    def dead() -> bool:  # SIGKILL is delivered asynchronously: the process may take a moment to become a zombie
        try:
            return psutil.Process(sidecar).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 5
    while not dead() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dead()
