"""What a compose project adds to the environment its proxy's configuration describes, whichever proxy it is: the
Orthanc its Orthanc service's configuration makes, the images both services name, the files read, and what the
project sets that is not reproduced. A standalone proxy configuration has none of it, and says so."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomtls.manifests.image_versions import DeclaredImage
from dicomtls.manifests.orthanc_server import orthanc_server

if TYPE_CHECKING:
    from dicomtls.manifests.deployment import Deployment

SERVER_KIND = "orthanc"


def project_orthanc(deployment: Deployment | None, terminates: bool,
                    standalone: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The environment's server options and what of them is not reproduced; ``terminates``: the proxy terminates
    TLS (else Orthanc does, behind a passthrough); ``standalone``: what the proxy's file is ("nginx.conf")."""
    if deployment is not None and deployment.orthanc_config is not None:
        return orthanc_server(deployment.orthanc_config, proxy_terminates_tls=terminates)
    server: dict[str, Any] = {"kind": SERVER_KIND,
                              **({} if terminates else {"tls": True, "client_cert": "optional"})}
    why = ("its compose project mounts no Orthanc configuration this tool found" if deployment is not None
           else f"a standalone {standalone} names no Orthanc configuration")
    return server, (f"the environment's Orthanc runs with Orthanc's defaults: {why}",)


def project_notes(deployment: Deployment | None) -> tuple[str, ...]:
    return deployment.not_reproduced if deployment is not None else ()


def project_images(deployment: Deployment | None) -> tuple[DeclaredImage, ...]:
    """The proxy's and Orthanc's images, as the compose file names them."""
    if deployment is None:
        return ()
    return tuple(DeclaredImage(kind=service.image.kind, reference=service.image.reference,
                               version=service.image.version, where=f"{service.at}: compose service {service.name}")
                 for service in (deployment.proxy, deployment.orthanc)
                 if service is not None and service.image is not None and service.image.kind is not None)


def project_files(path: Path, deployment: Deployment | None, included: tuple[Path, ...] = ()) -> tuple[Path, ...]:
    """The files an environment was read from: the proxy's configuration ``path`` and the files it ``included``,
    and with a project its compose file, the ``.env`` beside it and Orthanc's configuration (what a fix copies and
    edits, and what a rebuilt scenario reads again)."""
    if deployment is None:
        return (path, *included)
    return tuple(f for f in (deployment.compose.file, deployment.compose.env_file, path, *included,
                             deployment.orthanc_config.file if deployment.orthanc_config else None)
                 if f is not None and f.is_file())
