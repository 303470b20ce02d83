"""An Ansible inventory lists the deployments to probe, read by ansible-core itself: groups, host_vars and
group_vars beside it, ansible_host, Jinja in values, --limit patterns; a bad one is a one-line usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtls.errors import UsageError
from dicomtls.inventory import load_inventory


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "pki").mkdir()
    for name in ("ca.crt", "bhs-client.crt", "bhs-client.key"):
        (tmp_path / "pki" / name).write_text("not parsed here\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("dicomtls_ca: pki/ca.crt\ndicomtls_port: 11112\n")
    (tmp_path / "group_vars" / "bhs.yml").write_text(
        "dicomtls_client_cert: pki/bhs-client.crt\ndicomtls_client_key: \"{{ inventory_dir }}/pki/bhs-client.key\"\n")
    (tmp_path / "host_vars" / "pacs-bhs.yml").write_text("dicomtls_sni: dicom.bhs.example.org\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("""\
all:
  children:
    bhs:
      hosts:
        pacs-bhs:
          ansible_host: 127.0.0.1
          dicomtls_proxy: envoy
    mhr:
      hosts:
        pacs-mhr:
          ansible_connection: local
          dicomtls_host: localhost
          dicomtls_port: 2762
""")
    return inventory


def test_hosts_take_their_endpoint_from_host_group_and_inventory_variables(site: Path) -> None:
    bhs, mhr = load_inventory(site)
    assert (bhs.host, bhs.address, bhs.port, bhs.sni, bhs.proxy) == ("pacs-bhs", "127.0.0.1", 11112,
                                                                     "dicom.bhs.example.org", "envoy")
    assert bhs.ca == site.parent / "pki" / "ca.crt" and bhs.client_key == site.parent / "pki" / "bhs-client.key"
    assert (mhr.address, mhr.port, mhr.client_cert, mhr.groups) == ("localhost", 2762, None, ("mhr",))
    assert bhs.request().label == "pacs-bhs" and bhs.request().server_name == "dicom.bhs.example.org"


def test_limit_selects_hosts_by_ansible_pattern(site: Path) -> None:
    assert [d.host for d in load_inventory(site, "mhr")] == ["pacs-mhr"]
    assert [d.host for d in load_inventory(site, "all:!bhs")] == ["pacs-mhr"]
    with pytest.raises(UsageError, match="selects no hosts"):
        load_inventory(site, "nothere")


def test_an_ini_inventory_reads_the_same(site: Path) -> None:
    ini = site.parent / "hosts.ini"
    ini.write_text("[bhs]\npacs-bhs ansible_host=127.0.0.1\n\n[mhr]\npacs-mhr dicomtls_port=2762\n")
    found = {d.host: d for d in load_inventory(ini)}
    assert found["pacs-bhs"].sni == "dicom.bhs.example.org" and found["pacs-mhr"].port == 2762


def test_a_host_without_a_required_variable_is_one_line_naming_host_and_variable(site: Path) -> None:
    (site.parent / "group_vars" / "all.yml").write_text("dicomtls_ca: pki/ca.crt\n")
    with pytest.raises(UsageError) as caught:
        load_inventory(site)
    message = str(caught.value)
    assert "host pacs-bhs has no dicomtls_port" in message and "\n" not in message


@pytest.mark.parametrize("variables, message", [
    ("dicomtls_port: http", "dicomtls_port is 'http': give a TCP port number"),
    ("dicomtls_ca: pki/missing.crt", "which is not a readable file"),
    ("dicomtls_orthanc_rest: localhost:8042", "give it as http://HOST:PORT"),
    ("dicomtls_sni: not a name", "neither an IP address nor a DNS name"),
    ("dicomtls_client_cert: pki/bhs-client.crt\ndicomtls_client_key: null", "go together"),
    ("dicomtls_proxy: caddy", "dicomtls_proxy is 'caddy': give one of envoy, traefik, nginx, haproxy, orthanc"),
    ("dicomtls_calling_aet: SEVENTEEN_LETTERS", "dicomtls_calling_aet is 'SEVENTEEN_LETTERS': not a DICOM AE title"),
])
def test_malformed_variables_are_one_line_usage_errors(site: Path, variables: str, message: str) -> None:
    (site.parent / "host_vars" / "pacs-mhr.yml").write_text(variables + "\n")
    with pytest.raises(UsageError, match=message) as caught:
        load_inventory(site, "pacs-mhr")
    assert "host pacs-mhr" in str(caught.value) and "\n" not in str(caught.value)


def test_an_unparsable_or_missing_inventory_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("all:\n  hosts: [\n")
    with pytest.raises(UsageError, match="not a valid inventory") as caught:
        load_inventory(bad)
    assert "\n" not in str(caught.value)
    with pytest.raises(UsageError, match="no such file"):
        load_inventory(tmp_path / "absent.yml")


def test_a_hosts_calling_aet_wins_over_the_command_lines_and_that_over_the_default(site: Path) -> None:
    (site.parent / "host_vars" / "pacs-mhr.yml").write_text("dicomtls_calling_aet: MHR_MODALITY\n")
    bhs, mhr = load_inventory(site)
    assert mhr.request("CLI_AET").calling_aet == "MHR_MODALITY"
    assert bhs.request("CLI_AET").calling_aet == "CLI_AET"
    assert bhs.request().calling_aet == "DICOMTLS"
