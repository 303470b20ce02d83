"""dicomtls as a user installs it: a wheel that carries its templates, scenarios and image recipes, and a
`dicomtls` command that runs the real matrix from any directory, outside the clone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, leftovers_under

pytestmark = pytest.mark.integration

# What a clone has but a wheel must not need (or must not read): the wheel is built from a copy without them.
NOT_SOURCE = (".git", ".venv", "out", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache", "tests")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from a copy of the clone (so no build/ of an earlier build leaks into it)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(tmp / "dist")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = (tmp / "dist").glob("dicomtls-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the wheel installed; its dependencies come from this interpreter's
    site-packages by a .pth line (offline and fast). A .pth line adds a directory but runs none of its own
    .pth files, so the clone's editable install there cannot leak into this venv."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # Without the clone's PYTHONPATH: pip would take a dicomtls.egg-info there for an installed dicomtls.
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                           "--no-deps", str(wheel)], capture_output=True, text=True, timeout=300,
                          env=user_env(venv, venv.parent))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    dependencies = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "dependencies.pth").write_text("".join(f"{path}\n" for path in dependencies))
    return venv


def user_env(venv: Path, tmp: Path) -> dict[str, str]:
    """A user's shell with the venv activated; the clone's PYTHONPATH is gone. The dependencies' bin comes last:
    it has the envoy and traefik the wheels there carry, as they would be in the venv after a full install."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DICOMTLS_TEMPLATES")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", ""), str(Path(sys.executable).parent)])
    env["XDG_STATE_HOME"] = str(tmp / "state")
    return env


def dicomtls(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "dicomtls"), *args], cwd=cwd, env=user_env(venv, cwd),
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty directory outside the clone, where the user runs the command."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_the_wheel_carries_templates_scenarios_manifests_and_image_recipes(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "dicomtls/_data"
    for template in (ROOT / "templates").rglob("*"):
        if template.is_file():
            assert f"{data}/templates/{template.relative_to(ROOT / 'templates')}" in names
    assert f"{data}/templates/report/report.html.j2" in names
    for scenario in (ROOT / "scenarios").rglob("*.yaml"):
        assert f"{data}/scenarios/{scenario.relative_to(ROOT / 'scenarios')}" in names
    assert any(n.startswith(f"{data}/scenarios/manifests/") for n in names)
    for recipe in (ROOT / "images").glob("*/Dockerfile"):
        assert f"{data}/images/{recipe.relative_to(ROOT / 'images')}" in names
    assert "dicomtls/py.typed" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "dicomtls = dicomtls.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_wheel_carries_the_json_schemas_and_dicomtls_schema_finds_them(wheel: Path, venv: Path,
                                                                          workdir: Path) -> None:
    from dicomtls.json_schemas import SCHEMAS, file_name

    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"dicomtls/schemas/{file_name(name)}" for name in SCHEMAS} <= names
    proc = dicomtls(venv, workdir, "schema", "scenario", "--path")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path.is_relative_to(venv) and path.read_text() == (ROOT / "src" / "dicomtls" / "schemas" /
                                                              file_name("scenario")).read_text()


def test_the_installed_package_reads_its_own_files_not_the_clones(venv: Path, workdir: Path) -> None:
    code = ("import dicomtls, dicomtls.resources as r; "
            "print(dicomtls.__file__); print(r.TEMPLATES); print(r.SCENARIOS); print(r.IMAGES)")
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=workdir, env=user_env(venv, workdir),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.splitlines():
        path = Path(line)
        assert path.is_relative_to(venv) and not path.is_symlink(), line
        assert path.exists()


def test_dicomtls_lists_the_same_tasks_as_invoke_in_the_clone_which_adds_its_developer_tasks(
        venv: Path, workdir: Path) -> None:
    installed = dicomtls(venv, workdir, "--list")
    clone = subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert installed.returncode == 0 and clone.returncode == 0, installed.stderr + clone.stderr

    def listed(stdout: str) -> dict[str, str]:  # task -> the first line of its description (they wrap)
        rows = [line.split(maxsplit=1) for line in stdout.splitlines() if line.startswith("  ") and line[2] != " "]
        return {row[0]: row[1] if len(row) > 1 else "" for row in rows}

    in_clone, in_wheel = listed(clone.stdout), listed(installed.stdout)
    assert "doctor" in in_wheel and set(in_clone) - set(in_wheel) == {"docs", "fuzz"}
    assert {name: in_clone[name] for name in in_wheel} == in_wheel


@pytest.mark.parametrize(("args", "needle"), [(["matrix", "--bogus"], "matrix has no option --bogus"),
                                            (["nosuchtask"], "no task 'nosuchtask'"),
                                            (["up", "--port", "abc"], "--port abc"),
                                            (["diff", "old.json"], "diff needs NEW")])
def test_the_installed_dicomtls_refuses_a_bad_command_line_with_one_line_and_exit_2(
        venv: Path, workdir: Path, args: list[str], needle: str) -> None:
    proc = dicomtls(venv, workdir, *args)
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_the_installed_dicomtls_help_offers_completion_and_no_invoke_option(venv: Path, workdir: Path) -> None:
    proc = dicomtls(venv, workdir, "--help")
    assert proc.returncode == 0 and "--print-completion-script" in proc.stdout
    assert "--dry" not in proc.stdout and "--pty" not in proc.stdout and "--config" not in proc.stdout


def test_dicomtls_pki_writes_under_the_directory_it_is_run_in(venv: Path, workdir: Path) -> None:
    proc = dicomtls(venv, workdir, "pki")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pki = workdir / "out" / "pki" / "manual"
    assert (pki / "ca.crt").is_file() and (pki / "server-fullchain.crt").is_file()
    keys = list(pki.rglob("*.key"))
    assert keys and all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
    assert str(pki) in proc.stdout


def test_a_scenario_path_is_read_relative_to_the_directory_it_is_run_in(venv: Path, workdir: Path) -> None:
    proc = dicomtls(venv, workdir, "matrix", "--scenario", "./nowhere.yaml", "--backend", "local")
    assert proc.returncode == 2
    assert "unknown scenario './nowhere.yaml'" in proc.stderr and "orthweb-envoy" in proc.stderr
    assert "Traceback" not in proc.stderr


def cells_as_expected(proc: subprocess.CompletedProcess[str], out: Path) -> list[dict[str, Any]]:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    for report in ("results.json", "junit.xml", "summary.md", "report.html"):
        assert (out / report).is_file(), report
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert cells and {c["verdict"] for c in cells} == {"ok"}
    return cells


def test_the_installed_command_runs_a_bundled_scenario_with_real_components(venv: Path, workdir: Path) -> None:
    proc = dicomtls(venv, workdir, "matrix", "--scenario", "orthweb-envoy", "--backend", "local")
    cells = cells_as_expected(proc, workdir / "out")
    assert {c["actual"] for c in cells} == {"pass", "fail"}
    assert any(c["actual"] == "pass" and c["operation"] == "store-ct" for c in cells)
    assert leftovers_under(workdir) == (set(), set())


def test_the_installed_command_observes_a_users_manifests_from_a_relative_directory(venv: Path,
                                                                                     workdir: Path) -> None:
    shutil.copytree(ROOT / "tests" / "fixtures" / "manifests" / "orthweb-envoy", workdir / "gitops")
    proc = dicomtls(venv, workdir, "matrix", "--manifests", "./gitops", "--backend", "local", "--out", "reports")
    cells = cells_as_expected(proc, workdir / "reports")
    assert {c["expected"] for c in cells} == {"observe"}
    assert not (workdir / "out").exists()
    assert leftovers_under(workdir) == (set(), set())


USER_SCENARIO = """\
name: mine
description: a user's own scenario in their repository, its manifests named relative to it
pki:
  server_names: [dicom.mine.test]
environments:
  - name: mine-envoy
    manifests: [../gitops/envoy.yaml]
probes:
  - client: pynetdicom
    sni: right
    client_cert: valid
    operation: [echo, store-ct]
expect:
  - match: {}
    outcome: pass
"""


def test_a_users_scenario_file_and_its_manifests_resolve_from_where_they_are(venv: Path, workdir: Path) -> None:
    shutil.copytree(ROOT / "tests" / "fixtures" / "manifests" / "orthweb-envoy", workdir / "gitops")
    (workdir / "checks").mkdir()
    (workdir / "checks" / "mine.yaml").write_text(USER_SCENARIO)
    proc = dicomtls(venv, workdir, "matrix", "--scenario", "./checks/mine.yaml", "--backend", "local")
    cells = cells_as_expected(proc, workdir / "out")
    assert {(c["scenario"], c["actual"]) for c in cells} == {("mine", "pass")} and len(cells) == 2
    assert leftovers_under(workdir) == (set(), set())
