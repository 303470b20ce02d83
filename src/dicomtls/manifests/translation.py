"""One proxy resource as an environment, and the DICOM sites its routes reach."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dicomtls.findings import Finding
from dicomtls.manifests.image_versions import DeclaredImage
from dicomtls.manifests.located import At


@dataclass(frozen=True)
class Translation:
    """One proxy resource as an environment: its components' options and what could not be reproduced."""

    resource: str  # "Gateway/name", "IngressRouteTCP/name" or "EnvoyBootstrap/<file stem>"
    proxy: dict[str, Any]
    server: dict[str, Any]
    server_names: tuple[str, ...]
    unhonoured: tuple[str, ...]
    sites: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(site, the names routed to it) when routes reach two or more destinations: one Orthanc each."""
    findings: tuple[Finding, ...] = ()
    """What the resource does that weakens or surprises (kept, not removed), with the probes that show it."""
    files: tuple[Path, ...] = ()
    """The files it was read from, when it is a configuration of its own (a compose project, an nginx.conf): what
    the environment is rebuilt from, and what no other translation reads again."""
    images: tuple[DeclaredImage, ...] = ()
    """The images its deployment names, for stating the run's departure from their versions."""
    source: At | None = None
    """The file (and line) it is read from: where a CI annotation about its cells lands."""


def sites_of(routes: list[tuple[tuple[str, ...], str]]) -> tuple[dict[str, str], tuple[tuple[str, tuple[str, ...]], ...]]:
    """Sites from (the names a route answers, its destination) in route order, when there are two or more
    destinations: {destination: site}, and each site with its names. A site reached only through "*" carries
    its destination's name, so a client can still ask for it by SNI; catch-all destinations come first, as the
    first site is the one a proxy's catch-all route and default certificate belong to."""
    destinations = list(dict.fromkeys(d for names, d in sorted(routes, key=lambda r: "*" not in r[0])))
    if len(destinations) < 2:
        return {}, ()
    site_of: dict[str, str] = {}
    sites = []
    for destination in destinations:
        base = re.sub(r"[^a-z0-9-]+", "-", destination.split(".")[0].lower()).strip("-") or "site"
        name, n = base, 1
        while name in site_of.values():
            n += 1
            name = f"{base}-{n}"
        site_of[destination] = name
        routed = [host for answered, d in routes if d == destination for host in answered if "*" not in host]
        sites.append((name, tuple(dict.fromkeys(routed)) or (destination,)))
    return site_of, tuple(sites)


def distinct_sites(translations: list[Translation]) -> list[Translation]:
    """A site keeps its names and its certificate across a scenario, so a Service that two resources reach by
    different names (a dev and a prod Gateway, say) becomes two sites: the later one numbered."""
    taken: dict[str, tuple[str, ...]] = {}
    result = []
    for t in translations:
        renamed: dict[str, str] = {}
        for name, names in t.sites:
            final, n = name, 1
            while taken.setdefault(final, names) != names:
                n += 1
                final = f"{name}-{n}"
            renamed[name] = final
        servers = [{**s, "destination": renamed[s["destination"]]} if s.get("destination") in renamed else s
                   for s in t.proxy.get("servers", [])]
        proxy = {**t.proxy, "servers": servers} if "servers" in t.proxy else t.proxy
        result.append(replace(t, proxy=proxy, sites=tuple((renamed[name], names) for name, names in t.sites)))
    return result
