"""The pytest plugin in a user's own suite, run by pytester against an endpoint `invoke up` left running: a test that
asserts what the endpoint does passes, one asserting a wrong outcome fails with the cells' diagnosis, and a test
taking testinfra's `host` probes that host's address."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import run_invoke, started_under

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]

USER_TESTS = '''
from dicomtls.pytest_plugin import Probed

ENDPOINT = dict(ca={ca!r}, sni={sni!r}, client_cert={client_cert!r}, client_key={client_key!r})


def test_clients_with_the_right_name_and_certificate_get_in(dicomtls_probe):
    probed: Probed = dicomtls_probe({target!r}, **ENDPOINT)
    probed.assert_pass(sni="right", client_cert="valid", profile="default")
    assert probed.passed(client="pynetdicom", sni="right", client_cert="valid", operation="echo", profile="default")


def test_untrusted_client_certificates_are_refused(dicomtls_probe):
    dicomtls_probe({target!r}, **ENDPOINT).assert_fail("tls-unknown-ca", sni="right", client_cert="untrusted")


def test_a_wrong_expectation_fails(dicomtls_probe):
    dicomtls_probe({target!r}, **ENDPOINT).assert_fail(sni="right", client_cert="valid", profile="default")


def test_the_testinfra_host_is_probed(host, dicomtls_probe):
    dicomtls_probe(port={port}, **ENDPOINT).assert_pass(sni="right", client_cert="valid", profile="default")
'''


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("plugin")
    up = run_invoke(["up", "--backend", "local", "--scenario", "orthweb-envoy", "--out", str(tmp / "up")], tmp)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield json.loads((tmp / "state" / "dicomtls" / "up.json").read_text())[0]
    finally:
        down = run_invoke(["down"], tmp)
        assert down.returncode == 0 and not started_under(tmp)


def test_the_plugin_example_passes_and_a_wrong_expectation_fails(
        endpoint: dict[str, Any], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_dicom_tls=USER_TESTS.format(
        target=f"{endpoint['address']}:{endpoint['port']}", port=endpoint["port"], ca=endpoint["ca"],
        sni=endpoint["sni_names"][0], client_cert=endpoint["client_cert"], client_key=endpoint["client_key"]))
    # What is installed beside this checkout (another dicomtls's entry point, xdist) stays out: the plugin and
    # testinfra's are loaded by name.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess("-p", "dicomtls.pytest_plugin", "-p", "testinfra.plugin",
                                           "--hosts=local://", "-p", "no:cacheprovider", timeout=600)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_a_wrong_expectation_fails*",
                                 "*cells with sni=right, client_cert=valid, profile=default did not fail:*",
                                 "*pynetdicom sni=right cert=valid echo: pass*"])
    probed = [p.name for p in pytester.path.rglob("probe-*") if p.is_dir()]
    assert probed == ["probe-1"], "each endpoint is probed once per session, however many tests ask"
