"""A plugin that fails to load, or that takes a name already registered, stops the command with one line naming
the plugin and its distribution (exit status 2), as a usage error: never a traceback, never a built-in replaced.

Each plugin here is an installed distribution as importlib.metadata finds one (a .dist-info directory with its
entry points beside its module), on the PYTHONPATH of the command it runs under, never in this environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dicomtls.clients import names
from dicomtls.components import kinds


def installed(site: Path, distribution: str, group: str, entry: str, module: str, code: str) -> Path:
    """``site`` holding ``module`` and a distribution that registers ``entry`` (name = module:Class) in ``group``."""
    info = site / f"{distribution.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")
    (site / f"{module}.py").write_text(code)
    return site


def command_with(site: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`dicomtls --list` with ``site`` on its path: the plugins load at the command's start, whatever it runs."""
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "dicomtls", "--list"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": path, "XDG_STATE_HOME": str(tmp_path)})


def test_a_client_plugin_that_fails_to_import_is_one_line_naming_it_and_its_distribution(tmp_path: Path) -> None:
    site = installed(tmp_path / "site", "broken-client", "dicomtls.clients", "broken = broken_client:Broken",
                     "broken_client", "import a_module_nobody_has\n")
    done = command_with(site, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "dicomtls: plugin 'broken' (from broken-client 1.0) failed to load (ModuleNotFoundError: No module named "
        "'a_module_nobody_has'): fix it, or uninstall broken-client"]
    assert done.stdout == ""  # no task listed: the command stopped at its start


def test_a_component_plugin_that_is_not_a_component_is_refused_in_one_line(tmp_path: Path) -> None:
    site = installed(tmp_path / "site", "odd-proxy", "dicomtls.components", "odd = odd_proxy:Odd",
                     "odd_proxy", "class Odd:\n    kind = 'odd'\n")
    done = command_with(site, tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("dicomtls: plugin 'odd' (from odd-proxy 1.0): odd_proxy:Odd is not a "
                           "dicomtls.components.Component subclass")


def test_a_plugin_client_with_a_built_in_name_is_refused_and_the_built_in_kept(tmp_path: Path) -> None:
    built_in = names()[0]
    code = f"from dicomtls.clients import ClientKind\n\nclass Again(ClientKind):\n    name = {built_in!r}\n"
    site = installed(tmp_path / "site", "again-client", "dicomtls.clients", "again = again_client:Again",
                     "again_client", code)
    done = command_with(site, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"dicomtls: plugin 'again' (from again-client 1.0): client {built_in!r} is already registered: give the "
        "plugin's client another name"]


def test_a_plugin_component_that_registers_a_built_in_kind_itself_is_refused(tmp_path: Path) -> None:
    built_in = kinds("proxy")[0]
    code = ("from dicomtls.components import Component, register\n\n"
            f"@register\nclass Again(Component):\n    kind = {built_in!r}\n")
    site = installed(tmp_path / "site", "again-proxy", "dicomtls.components", "again = again_proxy:Again",
                     "again_proxy", code)
    done = command_with(site, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"dicomtls: plugin 'again' (from again-proxy 1.0): component kind {built_in!r} is already registered: give "
        "the plugin's component kind another name"]
