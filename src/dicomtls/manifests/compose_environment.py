"""A docker compose project as environments: its proxy's configuration goes to the translator of that kind of file
(nginx_environment, …), with the project around it: the mounts its includes are read through, the Orthanc
configuration its Orthanc service mounts, the images both run, and what the project sets that is not reproduced."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dicomtls.manifests.deployment import PROXY_CONFIG_KIND, Deployment, read_deployment
from dicomtls.manifests.recognition import FileKind
from dicomtls.manifests.translation import Translation
from dicomtls.manifests.translators import translates, translator


@translates(FileKind.COMPOSE)
def translate_compose(path: Path, deployment: Deployment | None) -> list[Translation]:
    """The environments of the compose project in ``path``: none when its proxy's configuration is not one a
    translator reads (an Envoy bootstrap is read with the manifests instead)."""
    deployment = deployment or read_deployment(path)
    config, proxy = deployment.proxy_config, deployment.proxy
    if config is None or proxy is None or proxy.image is None or proxy.image.kind not in PROXY_CONFIG_KIND:
        return []
    translate = translator(PROXY_CONFIG_KIND[proxy.image.kind])
    if translate is None:
        return []
    others = tuple(f"{s.at}: services.{s.name}{f' ({s.image.reference})' if s.image else ''}: not run (neither the "
                   "proxy nor Orthanc)" for s in deployment.compose.services if s.role == "other")
    return [replace(t, unhonoured=(*t.unhonoured, *others)) for t in translate(config.file, deployment)]
