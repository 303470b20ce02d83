"""Placements as the local backend builds them, from the real PKI layout (nothing is generated)."""

from __future__ import annotations

from pathlib import Path

from dicomtls import pki
from dicomtls.backends import SOLE_SITE, EnvironmentPlan
from dicomtls.backends.local import pki_paths
from dicomtls.components import Address, Placement, SiteRoute
from dicomtls.pki import PkiSpec

PKI_DIR = Path("/srv/dicomtls/pki/0123abcd")
UPSTREAM_PORT = 41204


def pki_layout(server_names: tuple[str, ...], sites: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> pki.PkiFiles:
    return pki._layout(PKI_DIR, PkiSpec("two-level", "rsa-2048", server_names, sites=sites))


def placement(workdir: str, listen: dict[str, Address], server_names: tuple[str, ...],
              sites: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> Placement:
    """A proxy in front of one Orthanc (no ``sites``), or of one Orthanc per site on consecutive ports."""
    files = pki_layout(server_names, sites)
    plan = EnvironmentPlan("key", "edge", (), None, files)
    if sites:
        routes = tuple(
            SiteRoute(name, names, Address("127.0.0.1", UPSTREAM_PORT + i), str(files.site(name).fullchain),
                      str(files.site(name).key))
            for i, (name, names) in enumerate(sites))
    else:
        routes = (SiteRoute(SOLE_SITE, server_names, Address("127.0.0.1", UPSTREAM_PORT), str(files.server_fullchain),
                            str(files.server_key)),)
    return Placement(name="edge", workdir=workdir, listen=listen, pki=pki_paths(plan), sites=routes)
