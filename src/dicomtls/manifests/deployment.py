"""A user's repository as the deployments it describes: each compose project with the proxy configuration and the
Orthanc configuration its services mount, read together (the proxy's includes through the compose mounts, Orthanc's
`${VAR}` from its service's environment), plus the Helm charts and Kubernetes/Envoy files found beside them."""

from __future__ import annotations

import re
from pathlib import Path

from dicomtls.manifests.compose import ComposeProject, Port, Service, read_compose
from dicomtls.manifests.haproxy import HaproxyConfig, read_haproxy
from dicomtls.manifests.located import shown
from dicomtls.manifests.nginx import NginxConfig, read_nginx
from dicomtls.manifests.orthanc_config import OrthancConfigFile, read_orthanc_config
from dicomtls.manifests.recognition import FileKind, survey
from dicomtls.manifests.spec import Spec

PROXY_CONFIG_KIND = {"nginx": FileKind.NGINX, "haproxy": FileKind.HAPROXY}
"""The proxies whose own configuration file this module reads (Envoy/Traefik configs are read as manifests)."""


class Deployment(Spec):
    """One compose project: its proxy, its Orthanc, their configurations and the DICOM port the proxy publishes."""

    compose: ComposeProject
    proxy: Service | None = None
    proxy_config: NginxConfig | HaproxyConfig | None = None
    proxy_manifests: tuple[Path, ...] = ()
    """An Envoy proxy's mounted bootstrap, for manifests.read_manifests (which reads Envoy bootstraps)."""
    orthanc: Service | None = None
    orthanc_config: OrthancConfigFile | None = None
    not_reproduced: tuple[str, ...] = ()

    @property
    def all_not_reproduced(self) -> tuple[str, ...]:
        """Every line of what the tool will not reproduce: the project's, its proxy's, its Orthanc's."""
        config = self.proxy_config
        servers = (() if config is None else config.stream_servers if isinstance(config, NginxConfig)
                   else config.frontends)
        return (*self.not_reproduced, *(config.not_reproduced if config else ()),
                *(n for s in servers for n in s.not_reproduced),
                *(self.orthanc_config.not_reproduced if self.orthanc_config else ()))

    @property
    def dicom_ports(self) -> tuple[Port, ...]:
        """The proxy's published ports that reach one of its DICOM TLS listeners."""
        if self.proxy is None or self.proxy_config is None:
            return ()
        if isinstance(self.proxy_config, NginxConfig):
            listening = {p for s in self.proxy_config.stream_servers for p in s.ports}
        else:
            listening = {b.port for f in self.proxy_config.frontends for b in f.binds}
        return tuple(p for p in self.proxy.ports if p.target in listening)


class Repository(Spec):
    """Everything recognised under a directory."""

    root: Path
    files: dict[Path, FileKind]
    deployments: tuple[Deployment, ...] = ()

    def of(self, kind: FileKind) -> tuple[Path, ...]:
        return tuple(p for p, k in self.files.items() if k is kind)

    @property
    def charts(self) -> tuple[Path, ...]:
        return tuple(p.parent for p in self.of(FileKind.HELM_CHART))

    @property
    def manifests(self) -> tuple[Path, ...]:
        """Files for manifests.read_manifests: Kubernetes resources and Envoy bootstraps."""
        return (*self.of(FileKind.KUBERNETES), *self.of(FileKind.ENVOY))


def read_repository(root: Path) -> Repository:
    """Classify every file under ``root`` by content, and read each compose project with what it mounts."""
    files = survey(root)
    deployments = [read_deployment(path, files) for path, kind in files.items() if kind is FileKind.COMPOSE]
    return Repository(root=root, files=files, deployments=tuple(d for d in deployments if d.proxy or d.orthanc))


def read_deployment(compose_file: Path, files: dict[Path, FileKind] | None = None) -> Deployment:
    """``compose_file`` with the proxy and Orthanc configurations its services mount. A mounted file a makefile
    copies into place (`cp orthanc.json.local orthanc.json`) is read from its source when it is not there yet."""
    files = files if files is not None else survey(compose_file.parent)
    project = read_compose(compose_file)
    notes = list(project.not_reproduced)
    copies = _makefile_copies(compose_file.parent)
    proxy = project.proxies[0] if project.proxies else None
    orthanc = project.orthancs[0] if project.orthancs else None
    notes += [f"{s.at}: services.{s.name}: a second {s.role} service: not read"
              for s in [*project.proxies[1:], *project.orthancs[1:]]]
    proxy_config: NginxConfig | HaproxyConfig | None = None
    if proxy is not None and proxy.image is not None and proxy.image.kind in PROXY_CONFIG_KIND:
        kind = PROXY_CONFIG_KIND[proxy.image.kind]
        found = _mounted(proxy, kind, files, copies, notes)
        if found is None:
            notes.append(f"{proxy.at}: services.{proxy.name}: mounts no {kind.value} configuration this tool found: "
                         "the image's built-in one is not read")
        elif kind is FileKind.NGINX:
            proxy_config = read_nginx(found, mounts=project.mounts())
        else:
            proxy_config = read_haproxy(found)
    proxy_manifests: tuple[Path, ...] = ()
    if proxy is not None and proxy.image is not None and proxy.image.kind == "envoy":
        bootstrap = _mounted(proxy, FileKind.ENVOY, files, copies, notes)
        proxy_manifests = (bootstrap,) if bootstrap else ()
        if bootstrap is None:
            notes.append(f"{proxy.at}: services.{proxy.name}: mounts no Envoy bootstrap this tool found")
    if proxy is not None and proxy.image is not None and proxy.image.kind == "traefik":
        notes.append(f"{proxy.at}: services.{proxy.name}: Traefik's own configuration (static, file provider, "
                     "labels) is not read; its Kubernetes CRDs are, as manifests")
    orthanc_config = None
    if orthanc is not None:
        notes += [f"{orthanc.at}: services.{orthanc.name}.environment.{name}: the image turns it into Orthanc "
                  "configuration: not read" for name, value in orthanc.environment.items()
                  if name.startswith("ORTHANC__") or (name == "ORTHANC_JSON" and value.strip())]
        found = _mounted(orthanc, FileKind.ORTHANC, files, copies, notes)
        if found is not None:
            orthanc_config = read_orthanc_config(found, orthanc.environment)
    return Deployment(compose=project, proxy=proxy, proxy_config=proxy_config, proxy_manifests=proxy_manifests,
                      orthanc=orthanc,
                      orthanc_config=orthanc_config, not_reproduced=tuple(notes))


def _mounted(service: Service, kind: FileKind, files: dict[Path, FileKind], copies: dict[Path, Path],
             notes: list[str]) -> Path | None:
    """The file of ``kind`` that ``service`` bind-mounts (a file, or one inside a mounted directory)."""
    for mount in service.mounts:
        if mount.source is None:
            continue
        source = mount.source
        if not source.exists() and source in copies and files.get(copies[source]) is kind:
            notes.append(f"{mount.at}: {shown(source)} is made by the makefile (cp {shown(copies[source])}): "
                         f"read {shown(copies[source])}")
            return copies[source]
        if source.is_file() and files.get(source) is kind:
            return source
        if source.is_dir():
            inside = sorted(p for p, k in files.items() if k is kind and p.is_relative_to(source))
            notes += [f"{mount.at}: {shown(p)}: one configuration per mounted directory is read ({inside[0].name}): "
                      "not read" for p in inside[1:]]
            if inside:
                return inside[0]
        if not source.exists():
            twin = next((p for p, k in files.items() if k is kind and p.parent == source.parent
                         and p.name.startswith(source.name + ".")), None)
            if twin is not None:
                notes.append(f"{mount.at}: {shown(source)} does not exist yet: read {shown(twin)}, its template")
                return twin
    return None


_COPY = re.compile(r"^\s*@?(?:cp|install)\s+(?:-\S+\s+)*(\S+)\s+(\S+)\s*$", re.M)


def _makefile_copies(directory: Path) -> dict[Path, Path]:
    """{destination: source} of the plain `cp SOURCE DEST` lines in the project's makefile."""
    makefile = next((directory / n for n in ("makefile", "Makefile", "GNUmakefile") if (directory / n).is_file()), None)
    if makefile is None:
        return {}
    return {(directory / dest).resolve(): (directory / src).resolve()
            for src, dest in _COPY.findall(makefile.read_text(errors="replace")) if "$" not in src + dest}
