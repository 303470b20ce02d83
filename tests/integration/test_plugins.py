"""A client and a proxy from a package outside dicomtls (tests/plugins/dicomtls-example-plugin), found through its
entry points only, run in a matrix on the local backend like built-in ones: the proof that a new client or proxy
needs no edit of dicomtls. The plugin is installed into this test's own directory and put on the run's PYTHONPATH,
never into the shared environment, whose registered names other tests check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, cells, environment, matrix_run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("stunnel4") is None, reason="stunnel4 is not installed (install.sh installs it)"),
]

PLUGIN = ROOT / "tests" / "plugins" / "dicomtls-example-plugin"
CLIENT, PROXY = "pynetdicom-tls13", "stunnel-proxy"


def install_plugin(into: Path) -> Path:
    """pip-installs a copy of the plugin (pip builds in the source tree) into ``into``/site; returns that."""
    source = into / "source"
    shutil.copytree(PLUGIN, source)
    site = into / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(source)], check=True, capture_output=True, timeout=120)
    return site


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("plugin")
    site = install_plugin(tmp)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return matrix_run(tmp, "--backend", "local", "--scenario", str(PLUGIN / "example-plugin.yaml"), PYTHONPATH=path)


def test_plugin_run_has_every_cell_as_expected_and_leaves_nothing(run: dict[str, Any]) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert run["leftovers"] == (set(), set())  # the plugin's stunnel stopped with the environment


def test_plugin_proxy_runs_its_own_program_from_its_own_template(run: dict[str, Any]) -> None:
    env = environment(run, "stunnel-proxy-client-cert-optional")
    assert PROXY in env["components"]
    assert env["versions"][PROXY].startswith("5.")  # what stunnel4 -version printed, read by the plugin's pattern
    config = (run["out"] / "envs").rglob("stunnel.conf")
    assert any("verifyChain = yes" in path.read_text() for path in config)


def test_plugin_client_stores_through_the_plugin_proxy_and_the_object_is_verified(run: dict[str, Any]) -> None:
    stored = cells(run, client=CLIENT, operation="store-ct")
    assert {c["client_cert"] for c in stored} == {"none", "valid"}
    for cell in stored:
        assert (cell["actual"], cell["verdict"]) == ("pass", "ok")
        assert "holds the sent dataset" in cell["detail"], cell["detail"]  # looked up in Orthanc, digest compared
        assert cell["certificate"] == "dicom.plugin.test"
    assert run["results"]["run"]["versions"][CLIENT]


def test_plugin_client_refused_by_the_plugin_proxy_gets_a_diagnosis_like_a_built_in_one(run: dict[str, Any]) -> None:
    [refused] = cells(run, client=CLIENT, client_cert="untrusted")
    assert (refused["actual"], refused["reason"], refused["verdict"]) == ("fail", "tls-unknown-ca", "ok")


def test_built_in_client_runs_through_the_plugin_proxy(run: dict[str, Any]) -> None:
    [built_in] = cells(run, client="pynetdicom")
    assert (built_in["actual"], built_in["verdict"]) == ("pass", "ok")
