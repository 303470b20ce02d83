"""Several DICOM sites behind one proxy: where a cell arrived, and whether that is where it should have."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from dicomtls.backends import EnvironmentPlan, LogCursor, PlannedSite, RunningEnvironment
from dicomtls.cell import _site_reached
from dicomtls.components import Address, component_class
from dicomtls.diagnose import Reason
from dicomtls.pki import ServerIdentity
from dicomtls.backends.local import LocalCommandHost
from dicomtls.environment import target_of
from dicomtls.probes.dcmtk import Dcmtk, _peer_subject
from dicomtls.report import json as json_report, layout, markdown
from dicomtls.report.console import print_result
from dicomtls.results import CellResult, EnvironmentInfo, MatrixResult, RunInfo
from dicomtls.scenario import Cell, Probe, addressed_site
from tests.unit import placements

# Captured from Orthanc 1.10.1 (Debian 12) and 1.12.7 (Debian 13) with --verbose, behind Envoy.
ORTHANC_1_10 = [
    "I1130 16:45:43.423433 CommandDispatcher.cpp:333] (dicom) Association Received from AET  on IP 127.0.0.1",
    "I1130 16:45:45.615611 CommandDispatcher.cpp:333] (dicom) Association Received from AET ECHOSCU on IP 127.0.0.1",
    "I1130 16:45:45.615737 main.cpp:317] Incoming connection from AET ECHOSCU on IP 127.0.0.1, calling AET ORTHANC",
]
ORTHANC_1_12_READINESS = (
    "I1130 17:10:28.434464     DICOM-SERVER CommandDispatcher.cpp:334] (dicom) Association Received from AET  on IP "
    "127.0.0.1")
ORTHANC_1_12 = "I1130 17:10:30.266959     DICOM-SERVER main.cpp:323] Incoming connection from AET DICOMTLS on IP " \
               "172.25.0.4, calling AET ORTHANC"

# Captured from dcmtk 3.6.7's echoscu with the dcmtls logger at DEBUG (probes.dcmtk.LOG_CONFIG).
DCMTK_TLS_DETAILS = """\
I: Requesting Association
D: ================== BEGIN TLS CONNECTION DETAILS =================
D: Transport connection: TLS over TCP/IP
D:   Protocol    : TLSv1.3
D:   Ciphersuite : TLS_AES_256_GCM_SHA384, encryption: 256 bits
D: Peer X.509v3 Certificate
D:   Subject     : /O=dicomtls test PKI/CN=south.dicom.test
D:   Issued by   : /O=dicomtls test PKI/CN=dicomtls Test CA
D: =================== END TLS CONNECTION DETAILS ==================
I: Association Accepted (Max Send PDV: 16372)
"""


def two_sites(tmp_path: Path) -> RunningEnvironment:
    orthanc = component_class("orthanc")
    server = orthanc(orthanc.options_model())
    identity = ServerIdentity(Path("k"), Path("c"), Path("f"))
    plan = EnvironmentPlan("key", "edge", (PlannedSite("north", ("north.dicom.test",), server, identity),
                                          PlannedSite("south", ("south.dicom.test",), server, identity)),
                           None, placements.pki_layout(("north.dicom.test",)))
    logs = {name: tmp_path / f"{name}.log" for name in ("orthanc-north", "orthanc-south")}
    for path in logs.values():
        path.write_text("")
    return RunningEnvironment(plan, Address("127.0.0.1", 1), {}, logs, tmp_path)


def test_the_site_reached_is_the_one_whose_orthanc_logged_the_association(tmp_path: Path) -> None:
    env = two_sites(tmp_path)
    cursor = env.log_cursor()
    with env.logs["orthanc-north"].open("a") as north:
        north.write(ORTHANC_1_12_READINESS + "\n")  # a bare TCP connection names no AET: not a client
    with env.logs["orthanc-south"].open("a") as south:
        south.write("\n".join(ORTHANC_1_10) + "\n")
    assert _site_reached(env, cursor) == "south"


def test_orthanc_1_12_association_lines_are_recognised(tmp_path: Path) -> None:
    env = two_sites(tmp_path)
    cursor = env.log_cursor()
    env.logs["orthanc-north"].write_text(ORTHANC_1_12 + "\n")
    assert _site_reached(env, cursor) == "north"


def test_no_association_logged_means_no_site(tmp_path: Path) -> None:
    env = two_sites(tmp_path)
    env.logs["orthanc-north"].write_text(ORTHANC_1_10[2] + "\n")  # before the cell began
    cursor = LogCursor(env.logs)
    cursor.mark()
    assert _site_reached(env, cursor) is None


def test_dcmtk_names_the_certificate_it_was_served() -> None:
    assert _peer_subject(DCMTK_TLS_DETAILS) == "south.dicom.test"
    assert _peer_subject("I: Requesting Association\nF: Association Request Failed: 000b:0017\n") is None


def test_the_sni_axis_addresses_a_site_by_name_or_the_first_by_right() -> None:
    sites = ["north", "south"]
    assert addressed_site("south", sites) == "south"
    assert addressed_site("right", sites) == "north"
    assert addressed_site("none", sites) is None
    assert addressed_site("wrong", sites) is None


def cell_result(sni: str, expected_site: str | None, site: str | None, actual: str = "pass",
                reason: Reason | None = None) -> CellResult:
    cell = Cell("sites", "edge", Probe("pynetdicom", sni, "valid", "store-ct"), "pass", None, expected_site)
    return CellResult(cell, actual, reason, "", "", (), "pynetdicom …", "", 0.1, 100, site, f"{sni}.dicom.test")


def test_a_pass_at_the_expected_site_is_as_expected_and_anywhere_else_is_not() -> None:
    assert cell_result("none", "north", "north").verdict == "ok"
    assert cell_result("none", "north", "south").verdict == "unexpected"
    assert cell_result("none", "north", None).verdict == "unexpected"


def test_reports_show_where_each_cell_arrived_and_what_it_was_served() -> None:
    result = MatrixResult(RunInfo("2026-11-30T00:00:00+00:00", "local", {}, ["sites"]),
                          [EnvironmentInfo("key", "edge", ["sites"], ["orthanc", "orthanc", "envoy"], "", [], "", {},
                                           sites=[{"name": "north", "server_names": ["north.dicom.test"]},
                                                  {"name": "south", "server_names": ["south.dicom.test"]}])],
                          [cell_result("south", "south", "south"), cell_result("none", "north", "south")])
    doc = json_report.to_dict(result)
    record = doc["cells"][1]
    assert (record["expected_site"], record["site"], record["certificate"]) == ("north", "south", "none.dicom.test")
    (grid,) = layout.grids(doc["cells"])
    assert grid.sites
    assert [row.cells[0].mark for row in grid.rows] == ["✔ south", "‼ ✔ at south, expected north"]
    summary = markdown.render(doc)
    assert "| served certificate |" in summary
    assert "❌ pass at south, expected pass at north" in summary
    assert "edge routes by SNI to sites north: north.dicom.test; south: south.dicom.test" in summary
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_result(result, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "✔ south" in text and "served certificate" in text
    assert "arrived at site south, but the scenario expects site north" in text


def sites_with_their_own_ae_titles(tmp_path: Path) -> RunningEnvironment:
    orthanc = component_class("orthanc")
    identity = ServerIdentity(Path("k"), Path("c"), Path("f"))
    north, south = (orthanc(orthanc.options_model(aet=aet)) for aet in ("NORTHPACS", "SOUTHPACS"))
    plan = EnvironmentPlan("key", "edge", (PlannedSite("north", ("north.dicom.test",), north, identity),
                                          PlannedSite("south", ("south.dicom.test",), south, identity)),
                           None, placements.pki_layout(("north.dicom.test",)))
    return RunningEnvironment(plan, Address("127.0.0.1", 1), {}, {}, tmp_path)


def test_each_site_is_called_by_its_own_servers_ae_title_and_the_catch_all_by_the_first(tmp_path: Path) -> None:
    target = target_of(sites_with_their_own_ae_titles(tmp_path))
    assert target.aet("south") == "SOUTHPACS"
    assert {target.aet(choice) for choice in ("north", "right", "none", "wrong")} == {"NORTHPACS"}


def test_dcmtk_calls_the_ae_title_of_the_site_its_sni_addresses(tmp_path: Path) -> None:
    target = target_of(sites_with_their_own_ae_titles(tmp_path))
    argv, _ = Dcmtk().command(LocalCommandHost(target.address), target, Probe("dcmtk", "south", "valid", "echo"),
                              tmp_path, target.address)
    assert argv[argv.index("-aec") + 1] == "SOUTHPACS"
