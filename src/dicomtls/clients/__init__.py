"""Clients describe themselves: each DICOM client a scenario may name is one module here that declares what the
rest of dicomtls asks of it, and nothing outside this package and ``dicomtls.probes`` (which runs them) names one.

A client's class says its name (the ``client:`` value in scenarios), the operations and transports it runs, from
which version it sends SNI, whether it sends a client certificate, how each TLS profile translates to its options,
which versions a run may ask for, its version and image recipe on Docker, how doctor finds it here, and which cells
it runs against an endpoint; ``build`` makes the runner (``dicomtls.probes``), imported only then, so that reading a
scenario or a report loads no client library.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from dicomtls import operations, plugins
from dicomtls.errors import UsageError

if TYPE_CHECKING:
    from dicomtls.doctor import Check
    from dicomtls.probes import Client
    from dicomtls.probes.dcmtk import Dcmtk
    from dicomtls.profiles import Offer
    from dicomtls.scenario import Probe

OPERATIONS = tuple(operations.names())
TRANSPORTS = ("tls", "plain")
Advice = Literal["send-sni", "send-client-cert", "use-tls", "trust-ca", "skip-server-check", "default-profile"]
"""What a diagnosis or a fix candidate may tell a client to do, in each client's own words (``ClientKind.advice``)."""


def version_tuple(version: str) -> tuple[int, ...]:
    """"3.6.9" -> (3, 6, 9); a version with no number ("unknown", "default") sorts first."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


@dataclass(frozen=True)
class EndpointRequest:
    """What the cells run against someone else's endpoint depend on (dicomtls.probe_endpoint)."""

    named: bool
    """The endpoint has a name to send as SNI."""
    certs: tuple[str, ...]
    best_cert: str
    operations: tuple[str, ...]
    version: str
    """The version of the command-line client this machine has."""


@dataclass(frozen=True)
class ManifestProbes:
    """A probe group a manifest run (``dicomtls matrix --manifests``) gives this client: what the owners of such
    configurations run."""

    order: int
    """Where the group comes among every client's (cells keep that order)."""
    axes: Mapping[str, Any]
    """The group's axes besides the client, as a scenario writes them."""
    docker_only: bool = False
    """Only the Docker backend can run it (a client version other than the host's)."""
    what: str = ""
    """What a docker_only group runs, for the note that a backend without its own clients leaves it out."""
    web_route: bool = False
    """It runs only in the environments whose proxy has an HTTPS route (an imported config's web server)."""


@dataclass(frozen=True)
class Documented:
    """A command the owners of proxy configurations document, and the probe of this client that reproduces it
    (the report's "your documented command works / does not")."""

    order: int
    """Where it comes in the report's list."""
    command: str
    note: str
    axes: Mapping[str, str]
    """The probe's axes besides the client (sni, client_cert and operation first)."""


class ClientKind:
    """One DICOM client a scenario may name."""

    name: ClassVar[str]
    """The ``client:`` value in scenarios and results."""
    display_name: ClassVar[str]
    """How reports name it."""
    summary: ClassVar[str]
    """What it is, for the scenario reference."""
    operations: ClassVar[tuple[str, ...]] = OPERATIONS
    """The operations it runs (a scenario's ``operation`` axis)."""
    transports: ClassVar[tuple[str, ...]] = TRANSPORTS
    """The transports it speaks (a scenario's ``transport`` axis)."""
    sends_sni_from: ClassVar[str | None] = "0"
    """The first version that can send SNI ("0": every version; None: none)."""
    sends_client_cert: ClassVar[bool] = True
    """False: it cannot present a client certificate (a scenario may give it ``client_cert: none`` only)."""
    is_command_line: ClassVar[bool] = False
    """It runs dcmtk's command-line tools: in the version a cell asks for (``client_version``), on this machine
    or in a backend's client container, checked before a run starts; the run header names that version."""
    image_recipe: ClassVar[str | None] = None
    """Docker backend: images/<recipe>/ carries it, in a client container per version (None: it runs
    in-process). The run header names its version after the recipe: dcmtk, whether stunnel wraps it or not."""
    image_versions: ClassVar[Mapping[str, str]] = {}
    """Docker backend: which Debian release ships which version (the first is the default); declared by the client
    whose recipe it is."""
    image_version_command: ClassVar[tuple[str, ...]] = ()
    """The command that prints its version in its image (a build's check that it got the version it is tagged)."""
    sends_mid_transfer: ClassVar[bool] = False
    """It can stop for a fault after the first fragment of a dataset went out (upstream-restart, proxy-restart)."""
    connects_to_ipv6_literal: ClassVar[bool] = True
    """False: it cannot connect to an IPv6 address (dcmtk builds "host:port" and refuses an IPv6 literal)."""
    reports_peer_alert: ClassVar[bool] = False
    """Its TLS library names the alert the server sent (Python's ssl does; dcmtk's bare words do not): probing an
    endpoint without its logs, its failure explains another client's vague one with the same certificate."""
    is_sidecar: ClassVar[bool] = False
    """It is a plain client behind a TLS sidecar: the client-side fix "put a sidecar in front" runs it."""
    sidecar_program: ClassVar[str] = ""
    """The sidecar's program, as that fix's text names it (``is_sidecar``)."""
    sidecar_can_wrap: ClassVar[bool] = False
    """A sidecar can take its TLS over: that fix is a candidate when it failed for want of SNI."""
    offers_ignore_fix: ClassVar[bool] = False
    """Skipping the server certificate's check is a workaround its users are told (dcmtk -ic, in Traefik setups'
    documentation): a candidate when it rejected a proxy's fallback certificate."""
    advice: ClassVar[Mapping[Advice, str]] = {}
    """Its own words for what a fix tells a client to do (send-client-cert: dcmtk's ``+tls KEY CRT``), quoted after
    its display name by the diagnoses' and fix candidates' texts; what it has no words for, it is left out of."""
    manifest_probes: ClassVar[tuple[ManifestProbes, ...]] = ()
    asks_each_site: ClassVar[bool] = False
    """In a manifest run with several sites behind one proxy, it asks each site by its name (it sends any SNI)."""
    documented: ClassVar[tuple[Documented, ...]] = ()
    reaches_dicom_entry: ClassVar[bool] = True
    """It connects to the DICOM entry, whose connection log the run counts; False: to another port of the proxy (the
    HTTPS route), whose connections that count does not wait for."""
    listing_order: ClassVar[int] = 100

    @classmethod
    def recipe(cls) -> str:
        """Its image recipe (images/<recipe>/), where command-line clients run on the Docker backend."""
        assert cls.image_recipe is not None, f"{cls.name} runs in-process: it has no image"
        return cls.image_recipe

    @classmethod
    def sends_sni(cls, version: str) -> bool:
        """True when this version (a ``client_version``; "default": the backend's own) can send SNI."""
        if cls.sends_sni_from is None:
            return False
        if cls.sends_sni_from == "0":
            return True
        return version != "default" and version_tuple(version) >= version_tuple(cls.sends_sni_from)

    @classmethod
    def sni_problem(cls, version: str) -> str:
        """Why this version cannot send SNI, for a scenario's error."""
        return f"{cls.name} {version} cannot send SNI"

    @classmethod
    def profiles(cls) -> list[str]:
        """The profiles it can run, "default" (its own) first."""
        return ["default"]

    @classmethod
    def unsupported(cls, profile: str) -> str | None:
        """Why it cannot run ``profile`` (one line naming what it can), or None when it can."""
        return None if profile in cls.profiles() else f"{cls.name} has no profile {profile}"

    @classmethod
    def offered(cls, profile: str) -> Offer | None:
        """The versions and suites its ClientHello carries for ``profile``, as declared (None: not declared)."""
        return None

    @classmethod
    def group_problem(cls, group: Any) -> str | None:
        """Why a scenario's probe group cannot run on this client (a ``ProbeGroup``), or None."""
        if cls.sends_sni_from != "0" and set(group.sni) != {"none"}:
            old = [v for v in group.client_version if not cls.sends_sni(v)]
            if old:
                return cls.sni_problem(old[0])
        if not cls.is_command_line and group.client_version != ["default"]:
            return f"client_version applies to dcmtk only: give {cls.name} its own group"
        if set(group.transport) - set(cls.transports):
            return cls.transport_problem()
        if unknown := sorted(set(group.operation) - set(cls.operations)):
            return f"{cls.name} cannot run operation {unknown[0]}: use one of {', '.join(cls.operations)}"
        if not cls.sends_client_cert and set(group.client_cert) != {"none"}:
            return f"{cls.name} sends no client certificate: use client_cert: none"
        return None

    @classmethod
    def transport_problem(cls) -> str:
        return f"{cls.name} speaks only {', '.join(cls.transports)}"

    @classmethod
    def sni_fix(cls) -> tuple[str, tuple[tuple[str, str], ...], str | None]:
        """The client-side fix "send SNI": its words, the probe axes it changes, and why only the Docker backend
        can try it (None: every backend can)."""
        return "send SNI with the server's name", (("sni", "right"),), None

    @classmethod
    def endpoint_probes(cls, request: EndpointRequest) -> tuple[list[Probe], list[Probe]]:
        """The cells it runs against an endpoint: (the client × SNI × certificate cells, its profiles' cells)."""
        return [], []

    @classmethod
    def version(cls, dcmtk: Dcmtk | None) -> str | None:
        """Its version for the run header when its version is not the command-line client's (None)."""
        return None

    @classmethod
    def check_here(cls) -> list[Check]:
        """What doctor checks on this machine for it."""
        return []

    @classmethod
    def build(cls, dcmtk: Dcmtk) -> Client:
        """The runner, around the run's dcmtk, checked that it can run."""
        raise NotImplementedError


_REGISTRY: dict[str, type[ClientKind]] = {}


def register(cls: type[ClientKind]) -> type[ClientKind]:
    """Add a client; a second client of the same name is refused (a plugin cannot replace a built-in)."""
    if _REGISTRY.setdefault(cls.name, cls) is not cls:
        raise plugins.taken("client", cls.name)
    return cls


@functools.cache
def _discover() -> None:
    """The built-in client modules, then the plugins' (entry-point group ``dicomtls.clients``), once per process."""
    plugins.discover(__name__, __path__, plugins.CLIENTS, ClientKind, _REGISTRY, lambda c: c.name, register, "client")


def client_class(name: str) -> type[ClientKind]:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown client {name!r}: use one of {', '.join(names())}") from None


def names() -> list[str]:
    """Every registered client's name, in listing order."""
    return [c.name for c in listed()]


def listed() -> list[type[ClientKind]]:
    _discover()
    return sorted(_REGISTRY.values(), key=lambda c: (c.listing_order, c.name))


def display_names() -> Mapping[str, str]:
    _discover()
    return {c.name: c.display_name for c in _REGISTRY.values()}


def advised(what: Advice, clients: list[type[ClientKind]] | None = None) -> str:
    """How each client (``clients``, default: every registered one) does ``what``, in its words after its display
    name ("dcmtk: +tls KEY CRT; pynetdicom: …"), in listing order: the clients' part of a fix's text."""
    return "; ".join(f"{c.display_name}: {c.advice[what]}" for c in clients or listed() if what in c.advice)


def manifest_groups(brings_clients: bool) -> list[dict[str, Any]]:
    """Every client's manifest-run probe groups, in their order (``brings_clients``: the backend runs the clients'
    other versions too, so the groups that need one of them are in)."""
    found = [(m.order, {"client": c.name, **m.axes}) for c in listed() for m in c.manifest_probes
             if (brings_clients or not m.docker_only) and not m.web_route]
    return [group for _, group in sorted(found, key=lambda found: found[0])]


def web_route_groups() -> list[dict[str, Any]]:
    """The manifest-run probe groups for an environment with an HTTPS route (``ManifestProbes.web_route``)."""
    found = [(m.order, {"client": c.name, **m.axes}) for c in listed() for m in c.manifest_probes if m.web_route]
    return [group for _, group in sorted(found, key=lambda found: found[0])]


def manifest_groups_left_out(brings_clients: bool) -> list[str]:
    """What the manifest-run groups a backend leaves out run (``ManifestProbes.what``): those that need the
    clients' other versions, when the backend does not bring them."""
    return [] if brings_clients else [m.what for c in listed() for m in c.manifest_probes if m.docker_only]


def site_asker() -> str:
    """The client that asks each site of a manifest run by its name."""
    return next(c.name for c in listed() if c.asks_each_site)


def documented_commands() -> list[tuple[str, str, Probe]]:
    """(command, note, the probe that reproduces it) for every client's documented commands, in their order."""
    from dicomtls.scenario import Probe

    found = [(d.order, d.command, d.note, Probe(client=c.name, **d.axes)) for c in listed() for d in c.documented]
    return [(command, note, probe) for _, command, note, probe in sorted(found, key=lambda d: d[0])]


def recipe_owner(recipe: str) -> type[ClientKind] | None:
    """The client that declares images/<recipe>/'s versions, or None."""
    return next((c for c in listed() if c.image_recipe == recipe and c.image_versions), None)


def holder_recipe() -> str:
    """An image built here that has a shell and ``sleep``: a command-line client's (a restartable component's
    holder when the component's own image is an upstream one)."""
    return command_line_recipes()[0]


def command_line_recipes() -> list[str]:
    """The image recipes of the command-line clients (what `invoke images` builds for their cells)."""
    return sorted({c.image_recipe for c in listed() if c.is_command_line and c.image_recipe})

