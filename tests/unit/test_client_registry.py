"""What the client modules declare gives the same cells, groups and answers the tables they replaced gave."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtls.clients import client_class, documented_commands, listed, manifest_groups, version_tuple
from dicomtls.probe_endpoint import Request, probes
from dicomtls.scenario import Probe


def _request(named: bool, cert: bool, store: bool) -> Request:
    return Request("pacs.example.test" if named else "192.0.2.7", 11112, Path("ca.crt"),
                   client_cert=Path("c.crt") if cert else None, client_key=Path("c.key") if cert else None,
                   store=Path("ct.dcm") if store else None)


def _as_written_before(request: Request, version: str) -> list[Probe]:
    """probe_endpoint.probes as it was written out before the registry, client by client, and dcmtk via stunnel's
    cells, which the probe had none of then (the sidecar sends the name; once without SNI, when there is one), and the
    edge Orthanc's, added since (never SNI, always a certificate)."""
    certs = ["none", *(["valid"] if request.client_cert else []), "untrusted"]
    best_cert = "valid" if request.client_cert else "none"
    named = request.server_name is not None
    snis = ["none", *(["right", "wrong"] if named else [])]
    best_sni = "right" if named else "none"
    dcmtk_sni = "right" if named and version_tuple(version) >= (3, 6, 8) else "none"
    operations = ["echo", *(["store-file"] if request.store else [])]
    found = [Probe("dcmtk", dcmtk_sni, cert, op) for cert in certs for op in operations]
    found.append(Probe("dcmtk", dcmtk_sni, "none", "echo", server_cert_check="ignore"))
    found.append(Probe("dcmtk", "none", "none", "echo", "plain"))
    found += [Probe("pynetdicom", sni, cert, op) for sni in snis for cert in certs for op in operations]
    found += [Probe("dcmtk-stunnel", best_sni, cert, op) for cert in certs for op in operations]
    found += [Probe("dcmtk-stunnel", "none", best_cert, "echo")] if named else []
    found += [Probe("orthanc-edge", "none", cert, op) for cert in certs if cert != "none" for op in operations]
    found += [Probe("dcmtk", dcmtk_sni, best_cert, "echo", profile=p) for p in ("bcp195", "aes")]
    found += [Probe("pynetdicom", best_sni, best_cert, "echo", profile=p)
              for p in ("dcm4che-tls-aes", "tls1.0-only", "bcp195-rfc8996")]
    return found


@pytest.mark.parametrize("named", [True, False])
@pytest.mark.parametrize("cert", [True, False])
@pytest.mark.parametrize("version", ["3.6.7", "3.6.9", "unknown"])
def test_an_endpoint_gets_the_same_cells_in_the_same_order(named: bool, cert: bool, version: str) -> None:
    request = _request(named, cert, store=cert)
    assert probes(request, version) == _as_written_before(request, version)


def test_dcmtk_sends_sni_from_3_6_8_and_the_others_always() -> None:
    dcmtk = client_class("dcmtk")
    assert not dcmtk.sends_sni("default") and not dcmtk.sends_sni("3.6.7") and dcmtk.sends_sni("3.6.9")
    assert client_class("pynetdicom").sends_sni("default") and client_class("dcmtk-stunnel").sends_sni("3.6.7")


def test_a_manifest_run_gives_docker_only_groups_only_on_docker() -> None:
    local, docker = manifest_groups(brings_clients=False), manifest_groups(brings_clients=True)
    assert docker[:len(local)] == local and [g.get("client_version") for g in docker[len(local):]] == ["3.6.9"]
    assert [g["client"] for g in local] == ["dcmtk", "pynetdicom"] * 3


def test_documented_commands_come_in_their_declared_order() -> None:
    commands = [command for command, _, _ in documented_commands()]
    assert commands[0] == "echoscu +tla -rc +cf ca.crt HOST PORT"
    assert commands[5] == "storescu -c AET@HOST:PORT --tls12 --tls-aes" and len(commands) == 7


def test_only_the_command_line_clients_have_an_image_and_one_client_is_the_sidecar() -> None:
    assert {c.name for c in listed() if c.is_command_line} == {c.name for c in listed() if c.image_recipe}
    assert [c.name for c in listed() if c.is_sidecar] == ["dcmtk-stunnel"]


class _EchoOnly:
    """A probe group's axes, as ClientKind.group_problem reads them."""

    sni = ["none"]
    client_version = ["default"]
    transport = ["tls"]
    operation = ["echo", "store-ct"]
    client_cert = ["valid"]


def test_a_client_declaring_fewer_operations_or_no_certificate_refuses_a_group_asking_for_them() -> None:
    base = client_class("pynetdicom")
    echo_only = type("EchoOnly", (base,), {"name": "echo-only", "operations": ("echo",)})
    no_cert = type("NoCert", (base,), {"name": "no-cert", "sends_client_cert": False})
    assert base.group_problem(_EchoOnly()) is None
    assert "cannot run operation store-ct" in str(echo_only.group_problem(_EchoOnly()))
    assert "sends no client certificate" in str(no_cert.group_problem(_EchoOnly()))
