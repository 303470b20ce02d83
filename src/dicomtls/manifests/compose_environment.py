"""A docker compose project as environments: its proxy's configuration goes to the translator of that kind of file
(nginx_environment, …), with the project around it: the mounts its includes are read through, the Orthanc
configuration its Orthanc service mounts, the images both run, and what the project sets that is not reproduced."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dicomtls.errors import UsageError
from dicomtls.manifests.compose import Service
from dicomtls.manifests.deployment import PROXY_CONFIG_KIND, Deployment, read_deployment
from dicomtls.manifests.located import shown
from dicomtls.manifests.recognition import FileKind
from dicomtls.manifests.translation import Translation
from dicomtls.manifests.translators import translates, translator


CONFIGURATION_DIRECTORIES = {"nginx": "/etc/nginx", "haproxy": "/usr/local/etc/haproxy", "orthanc": "/etc/orthanc"}
"""Where each image reads its configuration (their images' documentation): a bind mount there whose source is
missing is a broken project, not a file still to be made (unlike a certificate a makefile makes)."""
CERTIFICATE_SUFFIXES = (".pem", ".crt", ".cer", ".key", ".p12", ".pfx")


@translates(FileKind.COMPOSE)
def translate_compose(path: Path, deployment: Deployment | None) -> list[Translation]:
    """The environments of the compose project in ``path``: none when its proxy's configuration is not one a
    translator reads (an Envoy bootstrap is read with the manifests instead)."""
    deployment = deployment or read_deployment(path)
    config, proxy = deployment.proxy_config, deployment.proxy
    if proxy is not None and config is None:
        _refuse_missing_configuration(proxy)
    if deployment.orthanc is not None and deployment.orthanc_config is None:
        _refuse_missing_configuration(deployment.orthanc)
    if config is None or proxy is None or proxy.image is None or proxy.image.kind not in PROXY_CONFIG_KIND:
        return []
    translate = translator(PROXY_CONFIG_KIND[proxy.image.kind])
    if translate is None:
        return []
    others = tuple(f"{s.at}: services.{s.name}{f' ({s.image.reference})' if s.image else ''}: not run (neither the "
                   "proxy nor Orthanc)" for s in deployment.compose.services if s.role == "other")
    return [replace(t, unhonoured=(*t.unhonoured, *others)) for t in translate(config.file, deployment)]


def _refuse_missing_configuration(service: Service) -> None:
    """A bind mount of ``service``'s configuration whose source does not exist (and that neither the makefile nor a
    template twin provides, or its configuration would have been found): compose would mount an empty directory."""
    directory = CONFIGURATION_DIRECTORIES.get(service.image.kind) if service.image and service.image.kind else None
    if directory is None:
        return
    for mount in service.mounts:
        if mount.source is not None and not mount.source.exists() and mount.source.suffix not in CERTIFICATE_SUFFIXES \
                and (
                mount.target == directory or mount.target.startswith(directory + "/")):
            raise UsageError(f"{mount.at}: services.{service.name}.volumes: {shown(mount.source)} does not exist, "
                             f"and {service.name} reads its configuration from {mount.target}: fix the path or create "
                             "the file")
