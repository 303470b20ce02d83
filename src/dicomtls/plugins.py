"""Plugins from outside: clients and components that another installed distribution brings, found through its
entry points, as pytest finds its ``pytest11`` plugins.

A distribution declares, in its pyproject.toml::

    [project.entry-points."dicomtls.clients"]
    my-client = "my_package.client:MyClient"        # a dicomtls.clients.ClientKind subclass

    [project.entry-points."dicomtls.components"]
    my-proxy = "my_package.proxy:MyProxy"           # a dicomtls.components.Component subclass

Each registry (``dicomtls.clients``, ``dicomtls.components``) loads its group once, after its built-in modules, the
first time anything asks it for a name; the command loads both at its start (``start``). A plugin that does not load, is not the class its group wants, or takes a
name already registered is a usage error naming the entry point and its distribution (exit status 2), never a
traceback and never a silent replacement of a built-in.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from dicomtls.errors import UsageError

CLIENTS = "dicomtls.clients"
"""The entry-point group of clients: each names a ``ClientKind`` subclass."""
COMPONENTS = "dicomtls.components"
"""The entry-point group of components (a proxy or a DICOM server): each names a ``Component`` subclass."""

T = TypeVar("T")


@dataclass(frozen=True)
class Plugin:
    """Where a plugin class came from, for the messages that name it."""

    entry_point: str
    distribution: str

    def __str__(self) -> str:
        return f"plugin {self.entry_point!r} (from {self.distribution})"


def _origin(entry_point: importlib.metadata.EntryPoint) -> Plugin:
    dist = entry_point.dist
    distribution = f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return Plugin(entry_point.name, distribution)


def load(group: str, base: type[T]) -> Iterator[tuple[type[T], Plugin]]:
    """Every class the installed distributions register in ``group``, in entry-point name order, each checked to
    be a subclass of ``base``."""
    for entry_point in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
        origin = _origin(entry_point)
        try:
            found = entry_point.load()
        except UsageError as exc:  # the plugin's import registered a name already taken
            raise UsageError(f"{origin}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - whatever a plugin's import raises is the plugin's failure
            words = str(exc).splitlines()[0] if str(exc) else ""
            raise UsageError(f"{origin} failed to load ({type(exc).__name__}{': ' + words if words else ''}): "
                             f"fix it, or uninstall {origin.distribution.split()[0]}") from None
        if not (isinstance(found, type) and issubclass(found, base)):
            raise UsageError(f"{origin}: {entry_point.value} is not a {base.__module__}.{base.__name__} subclass: "
                             f"point the {group} entry point at one")
        yield found, origin


def discover(package: str, path: Iterable[str], group: str, base: type[T], registry: Mapping[str, type[T]],
             key: Callable[[type[T]], str], register: Callable[[type[T]], object], what: str) -> None:
    """Fill a registry package: import its own modules (each registers itself), then the plugins of ``group``,
    each registered under ``key`` unless its own import already did; a name taken is ``taken``'s error."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
    for cls, origin in load(group, base):
        name = key(cls)
        if registry.get(name) is not cls:  # a plugin module may have registered it itself
            if name in registry:
                raise taken(what, name, origin)
            register(cls)


def taken(what: str, name: str, origin: Plugin | None = None) -> UsageError:
    """The error for a second registration of ``name``: a plugin cannot replace a built-in or another plugin."""
    by = f"{origin}: " if origin is not None else ""
    return UsageError(f"{by}{what} {name!r} is already registered: give the plugin's {what} another name")


def start() -> None:
    """Load every plugin now, at the command's start, as pytest does: a broken one is one line on stderr and exit
    status 2 before any task runs, including where a module reads a registry as it is imported."""
    from dicomtls import clients, components

    try:
        clients.names()
        components.listed()
    except UsageError as exc:
        print(f"dicomtls: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
