"""The Docker backend: each environment is a user-defined network, each component a container.

Containers carry the scenario's host names as network aliases, so SNI names
resolve inside the network (the proxy reaches each Orthanc by name, as in a
cluster). Rendered configs and the PKI files a component
needs are mounted read-only, one file at a time: the CA private key is never
mounted. One client container per dcmtk version serves the whole run and
connects to the proxy's address, as a modality outside the cluster does: it
shares this host's network where the host routes to containers (a rootful
engine on this Linux machine), else it joins each environment's network in
turn. It sees only what its cells were given (client identities, the CA
certificate, the objects), linked into a directory of its own; never a CA or
server key. A container on a user-defined network costs the engine about 0.6
CPU seconds to create, start and remove (most of it the network namespace and
its DNS rules), joining another network a third of that. The host's probes
reach the entry and Orthanc's REST port at the containers' own addresses where
it routes to them; elsewhere, and for `invoke up`, those two ports are
published on 127.0.0.1. Publishing costs the engine a docker-proxy process per
port and a copy of every byte through it.
Everything carries the run's labels, so `invoke clean` (and the next run) can
remove what a killed run left behind.
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dicomtls.backends import (CommandResult, EnvironmentFailed, EnvironmentPlan, RunningEnvironment, log_tail,
                               stopped_on_failure)
from dicomtls.clients import holder_recipe
from dicomtls.components import Address, Component, PkiPaths, Placement, SiteRoute
from dicomtls.deadlines import bounded
from dicomtls.errors import UsageError
from dicomtls.pki import ServerIdentity
from dicomtls.images import LABEL, ImageSpec, ensure_image, spec_for, _client, _exists
from dicomtls import upstream_images

CONTAINER_PORTS = {"dicom": 11112, "http": 8042, "web": 8443}
PORT_TIMEOUT_S = 30.0
HOLDER_SUFFIX = "-net"  # the container that holds a restartable component's network (see DockerBackend._run)
RUN_LABEL = f"{LABEL}.run"
OWNER_LABEL = f"{LABEL}.owner-pid"


def _pki_files(plan: EnvironmentPlan) -> dict[str, Path]:
    """The PKI files a server or proxy may see; deliberately nothing from the CA's private directory."""
    p = plan.pki
    files = {
        "ca.crt": p.ca_cert,
        "ca-bundle.crt": p.ca_bundle,
        "server.key": p.server_key,
        "server-fullchain.crt": p.server_fullchain,
        "mismatched-server.key": p.mismatched_server_key,
        "mismatched-server-fullchain.crt": p.mismatched_server_fullchain,
        "ca.crl": p.crl,
    }
    for site in plan.sites:
        files[site.identity.key.name] = site.identity.key
        files[site.identity.fullchain.name] = site.identity.fullchain
    return files


def _gateway(network: dict[str, Any]) -> str | None:
    """The address of this host on a bridge network, as its containers reach it."""
    configs = (network.get("IPAM") or {}).get("Config") or []
    return next((c["Gateway"] for c in configs if c.get("Gateway") and ":" not in c["Gateway"]), None)


def _pki_paths(identity: ServerIdentity | None = None) -> PkiPaths:
    """The PKI as a container sees it under /pki; ``identity``: the server certificate it presents (a site's)."""
    return PkiPaths(
        ca_cert="/pki/ca.crt",
        ca_bundle="/pki/ca-bundle.crt",
        server_key=f"/pki/{identity.key.name}" if identity else "/pki/server.key",
        server_fullchain=f"/pki/{identity.fullchain.name}" if identity else "/pki/server-fullchain.crt",
        mismatched_server_key="/pki/mismatched-server.key",
        mismatched_server_fullchain="/pki/mismatched-server-fullchain.crt",
        crl="/pki/ca.crl",
    )


@dataclass
class DockerHandles:
    """What a running environment consists of, enough to remove it later from another process."""

    network: str
    containers: list[str] = field(default_factory=list)
    published: bool = True  # the host reaches entry and REST through ports published on 127.0.0.1


@dataclass
class _SharedClient:
    """A client container for the whole run, and the environment networks it is on now (none when it shares
    this host's network)."""

    container: Any
    networks: set[str]


class DockerBackend:
    name = "docker"
    brings_clients: ClassVar[bool] = True  # a client container per dcmtk version of images.py's recipes
    runs_upstream_images: ClassVar[bool] = True  # dicomtls.upstream_images pulls them

    def __init__(self, workroot: Path) -> None:
        self.workroot = workroot.resolve()  # bind mounts need absolute paths
        self.client = _client()
        self.run_id = uuid.uuid4().hex[:12]
        self.routed = _routes_to_containers(self.client)
        self._clients: dict[str, _SharedClient] = {}  # by image tag
        self._clients_lock = threading.Lock()  # environments start and stop side by side
        self._images: dict[ImageSpec, str] = {}
        self._images_lock = threading.Lock()
        sweep_orphans(self.client)

    def labels(self, role: str) -> dict[str, str]:
        return {LABEL: role, RUN_LABEL: self.run_id, OWNER_LABEL: str(os.getpid())}

    def _upstream(self, component: Component) -> bool:
        """The component runs from an upstream image (its ``image``, or the one its deployment declares)."""
        return upstream_images.runs_upstream(self.client, component)

    def executable(self, component: Component) -> str:
        if self._upstream(component):
            return upstream_images.executable(component)
        return component.image_executable

    def has_image(self, reference: str) -> bool:
        return _exists(self.client, reference)

    def image(self, component: Component) -> str:
        if self._upstream(component):
            return upstream_images.pull(self.client, component).image_id
        return self._built(spec_for(component.recipe(), self.component_version(component)))

    def _built(self, spec: ImageSpec) -> str:
        """The image's tag, checked once per run: a check is two engine calls and a hash of its recipe, under the
        lock that serialises builds, and every component of every environment asks."""
        with self._images_lock:
            tag = self._images.get(spec)
        if tag is None:
            tag = ensure_image(spec, client=self.client)
            with self._images_lock:
                self._images[spec] = tag
        return tag

    def start(self, plan: EnvironmentPlan, *, detached: bool = False, entry_port: int | None = None) -> RunningEnvironment:
        envdir = self.workroot / f"{plan.name}-{plan.key}"
        # A previous run's logs would be read as this run's: the diagnosis counts connection lines.
        shutil.rmtree(envdir, ignore_errors=True)
        envdir.mkdir(parents=True)
        # `invoke up` prints addresses a user types: 127.0.0.1 and a port, as with the local backend.
        handles = DockerHandles(f"dicomtls-{self.run_id}-{plan.key}", published=detached or not self.routed)
        env = RunningEnvironment(plan=plan, entry=Address("127.0.0.1", 0), rest_urls={}, logs={}, workdir=envdir,
                                 handles=[handles])
        # `invoke up` outlives this process: don't let the next run's sweep take these for orphans.
        extra_labels = {OWNER_LABEL: "detached"} if detached else {}
        with stopped_on_failure(self, env):
            self.client.api.create_network(handles.network, driver="bridge",
                                           labels={**self.labels("network"), **extra_labels})
            if self.routed:  # the containers reach this host at their network's gateway (a C-MOVE's destination)
                env.client_address = _gateway(self.client.api.inspect_network(handles.network))
            routes: list[SiteRoute] = []
            for site in plan.sites:
                name = plan.component_name(site)
                is_entry = plan.proxy is None
                # The entry answers to every SNI name, so client containers reach it by any of them.
                aliases = list(plan.all_names) if is_entry else [name]
                container = self._run(env, handles, site.server, name, aliases, _pki_paths(site.identity), (),
                                      entry_port if is_entry else None, extra_labels)
                env.rest_urls[site.name] = f"http://{_reached(container, 'http', handles.published)}"
                routes.append(SiteRoute(site.name, site.server_names, Address(aliases[0], CONTAINER_PORTS["dicom"]),
                                        f"/pki/{site.identity.fullchain.name}", f"/pki/{site.identity.key.name}",
                                        Address(aliases[0], CONTAINER_PORTS["http"])))
            if plan.proxy is not None:
                self._run(env, handles, plan.proxy, plan.proxy.kind, list(plan.all_names), _pki_paths(),
                          tuple(routes), entry_port, extra_labels)
        hosts: dict[tuple[str, str | None, tuple[Path, ...]], DockerCommandHost] = {}

        def command_host(client: str, version: str | None, files: tuple[Path, ...]) -> DockerCommandHost:
            key = (client, version, files)
            if key not in hosts:
                assert env.client_entry is not None  # set once the entry component listens
                hosts[key] = DockerCommandHost(self._join_client(handles, client, version), env.client_entry,
                                               self._links(env), files)
            return hosts[key]

        env.command_hosts = command_host
        return env

    def _run(self, env: RunningEnvironment, handles: DockerHandles, component: Component, name: str,
             aliases: list[str], pki: PkiPaths, sites: tuple[SiteRoute, ...], entry_port: int | None,
             extra_labels: dict[str, str]) -> Any:
        """Start one component's container on the environment's network and wait until its ports accept."""
        plan = env.plan
        is_entry = component is plan.entry_component
        listen = {port: Address("0.0.0.0", CONTAINER_PORTS[port]) for port in component.port_names()}
        workdir = env.workdir / name
        workdir.mkdir(exist_ok=True)
        version = upstream_images.pull(self.client, component).version if self._upstream(component) \
            else self.component_version(component)
        placement = Placement(name=plan.name, workdir="/work", listen=listen, pki=pki, sites=sites, version=version,
                              upstream_image=self._upstream(component))
        launch = component.launch(placement, self.executable(component))
        for filename, content in launch.files.items():
            (workdir / filename).write_text(content)
        (workdir / "output.log").write_text("")
        mounts = {str(workdir): {"bind": "/work", "mode": "rw"}}
        for file_name, path in _pki_files(plan).items():
            mounts[str(path)] = {"bind": f"/pki/{file_name}", "mode": "ro"}
        for filename in launch.files:
            mounts[str(workdir / filename)] = {"bind": f"/work/{filename}", "mode": "ro"}
        published = {f"{CONTAINER_PORTS['dicom']}/tcp": ("127.0.0.1", entry_port)} if is_entry else {}
        if "http" in component.ports:
            published[f"{CONTAINER_PORTS['http']}/tcp"] = ("127.0.0.1", None)
        if is_entry and "web" in component.port_names():
            published[f"{CONTAINER_PORTS['web']}/tcp"] = ("127.0.0.1", None)
        if not handles.published:
            published = {}
        upstream = self._upstream(component)
        if upstream:
            # Nothing but the program: it is the entrypoint, its output comes through Docker's log API.
            command: dict[str, Any] = {"entrypoint": [launch.executable], "command": launch.args}
            self._readable_by_image_user(component, workdir, mounts, env.workdir / f"{name}.pki")
        else:
            # The log is read to its end through the very descriptor the program writes to, so a restarted
            # component goes on after what it said before, even one that drops O_APPEND (HAProxy's F_SETFL).
            command = {"command": ["/bin/sh", "-c", "exec 3<>/work/output.log && cat <&3 >/dev/null && "
                                   f"exec {shlex.join([launch.executable, *launch.args])} >&3 2>&3 3>&-"]}
        network: dict[str, Any] = dict(
            ports=published, network=handles.network,
            networking_config={handles.network: self.client.api.create_endpoint_config(aliases=aliases)})
        holder = None
        if plan.restartable:
            # A holder owns the address, the aliases and the published ports, as a pod's sandbox does: the
            # component restarts in it with the same IP (nginx and HAProxy resolve their upstream once) and host
            # ports, and a killed component's peers get a reset, not silence from a vanished host. An upstream
            # image may have no `sleep`: its holder is a command-line client's image (dcmtk's), built here.
            holder_image = self._built(spec_for(holder_recipe(), None)) if upstream \
                else self.image(component)
            holder = self.client.containers.create(
                holder_image, ["sleep", "infinity"], name=f"{handles.network}-{name}{HOLDER_SUFFIX}",
                labels={**self.labels(component.kind), **extra_labels}, init=True, **network)
            handles.containers.append(holder.id)
            holder.start()
            network = dict(network_mode=f"container:{holder.id}")
        container = self.client.containers.create(
            self.image(component), **command, name=f"{handles.network}-{name}",
            labels={**self.labels(component.kind), **extra_labels}, volumes=mounts, init=True, working_dir="/work",
            **network,
        )
        handles.containers.append(container.id)
        container.start()
        if upstream:
            _follow_output(container, workdir / "output.log")
        env.logs[name] = workdir / "output.log"
        if launch.connection_log:
            env.connection_log = workdir / launch.connection_log
            if env.connection_log != env.logs[name]:  # HAProxy logs connections on stdout
                env.logs[f"{name}:{launch.connection_log}"] = env.connection_log
        for other in launch.logs:
            env.logs[f"{name}:{other}"] = workdir / other
        for port in component.port_names():
            _wait_listening(container, holder or container, CONTAINER_PORTS[port], workdir / "output.log", name,
                            shell=not upstream)
            if launch.connection_log and port == "dicom":
                env.connections += 1
        published_by = holder or container
        published_by.reload()
        if is_entry:
            env.entry = _reached(published_by, "dicom", handles.published)
            env.client_entry = Address(_address(published_by), CONTAINER_PORTS["dicom"])
            if "web" in component.port_names():
                env.web_entry = _reached(published_by, "web", handles.published)
        return published_by

    def _readable_by_image_user(self, component: Component, workdir: Path, mounts: dict[str, dict[str, str]],
                                pki_copies: Path) -> None:
        """An upstream image runs as its own user. When that is not root nor this process's user, it gets its
        own copies of the PKI files (0400, owned by it, mounted read-only) and owns its working directory: the
        run's keys stay 0600 and nobody else's. Changing owners takes root; otherwise say so."""
        uid, gid = upstream_images.numeric_user(self.client, upstream_images.pull(self.client, component))
        if uid in (0, os.geteuid()):
            return
        if os.geteuid() != 0:
            raise UsageError(f"{upstream_images.reference(component)} runs as uid {uid}, which cannot read this "
                             f"run's 0600 key files: run dicomtls as root, or as uid {uid}")
        pki_copies.mkdir(mode=0o700)
        for source, mount in list(mounts.items()):
            if mount["bind"].startswith("/pki/"):
                copy = pki_copies / Path(mount["bind"]).name
                shutil.copyfile(source, copy)
                os.chown(copy, uid, gid)
                copy.chmod(0o400)
                del mounts[source]
                mounts[str(copy)] = mount
        os.chown(workdir, uid, gid)

    def _links(self, env: RunningEnvironment) -> Path:
        """Where an environment's client files are linked for the shared client containers to see."""
        return self.workroot / _CLIENT_FILES / env.workdir.name

    def _join_client(self, handles: DockerHandles, client: str, version: str | None) -> Any:
        """The run's client container for this image, able to reach the environment's entry."""
        spec = spec_for(client, version)  # the default version and the same one named share a container
        with self._clients_lock:
            shared = self._clients.get(spec.tag)
            if shared is None:
                root = self.workroot / _CLIENT_FILES
                root.mkdir(mode=0o700, exist_ok=True)
                image = self._built(spec)
                # On this host's network it reaches every environment's entry without joining each network.
                network: dict[str, Any] = dict(network_mode="host") if self.routed else dict(network=handles.network)
                container = self.client.containers.run(
                    image, ["sleep", "infinity"], detach=True, init=True, **network,
                    volumes={str(root): {"bind": _CLIENT_MOUNT, "mode": "ro"}}, labels=self.labels(f"client-{client}"),
                    name=f"dicomtls-{self.run_id}-{client}-{spec.version}",
                )
                shared = self._clients[spec.tag] = _SharedClient(
                    container, set() if self.routed else {handles.network})
            elif not self.routed and handles.network not in shared.networks:
                self.client.api.connect_container_to_network(shared.container.id, handles.network)
                shared.networks.add(handles.network)
            return shared.container

    def _leave_clients(self, network: str) -> None:
        with self._clients_lock:
            for shared in self._clients.values():
                if network in shared.networks:
                    shared.networks.discard(network)
                    _unless_gone(self.client.api.disconnect_container_from_network, shared.container.id, network,
                                 force=True)

    def finish(self) -> None:
        with self._clients_lock:
            for shared in self._clients.values():
                _unless_gone(self.client.api.remove_container, shared.container.id, force=True)
            self._clients.clear()
        shutil.rmtree(self.workroot / _CLIENT_FILES, ignore_errors=True)

    def component_version(self, component: Component) -> str:
        if self._upstream(component):
            return upstream_images.pull(self.client, component).report
        # Images are checked against their version when built, so the tag is the truth.
        return component.options.version or component.default_image_version()

    def exited(self, env: RunningEnvironment) -> str | None:
        # One list call per check: the matrix asks after every cell.
        owned = {c: h.network for h in env.handles if isinstance(h, DockerHandles) for c in h.containers}
        found_ids = self.client.api.containers(all=True, filters={"id": list(owned)}) if owned else []
        listed = {c["Id"]: c for c in found_ids}
        for container_id, network in owned.items():
            found = listed.get(container_id)
            if found is None or found["State"] not in ("created", "running"):
                name = found["Names"][0].lstrip("/").removeprefix(f"{network}-") if found else container_id[:12]
                log = env.logs.get(name)
                return f"{name} exited: {log_tail(log) if log else '(no log)'}"
        return None

    def detach(self, env: RunningEnvironment) -> list[dict[str, object]]:
        return [asdict(h) for h in env.handles if isinstance(h, DockerHandles)]

    def stop_component(self, env: RunningEnvironment, name: str, *, kill: bool = False) -> None:
        container = self._container(env, name)
        if kill:
            container.kill()
        else:
            container.stop(timeout=5)
        container.wait(condition="not-running")

    def start_component(self, env: RunningEnvironment, name: str) -> None:
        """The same container again: its /work (the rendered files, Orthanc's storage) is a bind mount, so it
        survives. In a restartable plan its holder kept address and ports; otherwise Docker publishes them anew."""
        container = self._container(env, name)
        component = env.plan.component_named(name)
        upstream = self._upstream(component)
        restarted = int(time.time())
        container.start()
        if upstream:  # the earlier follower ended with the stopped container; say only what is new
            _follow_output(container, env.logs[name], since=restarted)
        addressed = self._container(env, f"{name}{HOLDER_SUFFIX}") if env.plan.restartable else container
        for port in component.port_names():
            _wait_listening(container, addressed, CONTAINER_PORTS[port], env.logs[name], name, shell=not upstream)
        container.reload()
        if env.plan.restartable:
            return
        published = next(h for h in env.handles if isinstance(h, DockerHandles)).published
        if component is env.plan.entry_component:
            env.entry = _reached(container, "dicom", published)
            if "web" in component.port_names():
                env.web_entry = _reached(container, "web", published)
        for site in env.plan.sites:
            if env.plan.component_name(site) == name:
                env.rest_urls[site.name] = f"http://{_reached(container, 'http', published)}"

    def _container(self, env: RunningEnvironment, name: str) -> Any:
        handles = next(h for h in env.handles if isinstance(h, DockerHandles))
        import docker

        try:
            return self.client.containers.get(f"{handles.network}-{name}")
        except docker.errors.NotFound:
            raise UsageError(f"{env.plan.name} has no component {name!r}") from None

    def stop(self, env: RunningEnvironment) -> None:
        for handles in env.handles:
            if isinstance(handles, DockerHandles):
                self._leave_clients(handles.network)
                remove(self.client, handles)
        env.handles.clear()
        shutil.rmtree(self._links(env), ignore_errors=True)

    def memory(self, env: RunningEnvironment) -> dict[str, int]:
        """Each container's anonymous memory (cgroup v2 ``anon``, v1 ``rss``): its RSS, without the page cache
        that Orthanc's stored files fill and the kernel gives back."""
        found: dict[str, int] = {}
        for handles in env.handles:
            if not isinstance(handles, DockerHandles) or not handles.containers:
                continue
            for container in self.client.api.containers(filters={"id": handles.containers}):
                stats = self.client.api.stats(container["Id"], stream=False, one_shot=True).get("memory_stats", {})
                detail = stats.get("stats", {})
                name = container["Names"][0].lstrip("/").removeprefix(f"{handles.network}-")
                found[name] = int(detail.get("anon", detail.get("rss", stats.get("usage", 0))))
        return found

    def leftovers(self, handles: list[dict[str, object]], workdir: Path) -> list[str]:
        left = []
        for raw in handles:
            h = DockerHandles(**raw)  # type: ignore[arg-type]
            for container in self.client.api.containers(all=True, filters={"name": f"^/{h.network}-"}):
                left.append(f"container {container['Names'][0].lstrip('/')} ({container['State']})")
            left += [f"network {n['Name']}" for n in self.client.api.networks(names=[h.network])]
        return left


def release_containers(handles: list[dict[str, object]]) -> int:
    client = _client()
    running = 0
    for raw in handles:
        h = DockerHandles(**raw)  # type: ignore[arg-type]
        running += len(client.api.containers(filters={"id": h.containers})) if h.containers else 0
        remove(client, h)
    return running


def remove(client: Any, handles: DockerHandles) -> None:
    """Remove an environment's containers by their name prefix as well as by the ids recorded: a Ctrl-C after
    Docker created a container but before the SDK returned its id leaves one that was never recorded."""
    named = client.api.containers(all=True, filters={"name": f"^/{handles.network}-"})
    for container_id in dict.fromkeys([*reversed(handles.containers), *(c["Id"] for c in named)]):
        _unless_gone(client.api.remove_container, container_id, force=True)
    for network in client.api.networks(names=[handles.network]):
        _unless_gone(client.api.remove_network, network["Id"])


def _labelled_containers(client: Any) -> list[dict[str, Any]]:
    """Every container carrying the tool's label, as the list call returns them: inspecting each in turn
    would race with another run (a shard beside this one) removing its own."""
    return client.api.containers(all=True, filters={"label": LABEL})  # type: ignore[no-any-return]


def _unless_gone(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run a Docker API call on a container or network; one already removed (404), or being removed by someone
    else (409), is not ours to remove any more."""
    import docker

    try:
        call(*args, **kwargs)
    except docker.errors.APIError as exc:
        if exc.status_code not in (404, 409):
            raise


def sweep_orphans(client: Any) -> int:
    """Remove what runs killed without a chance to clean up left: their owner process is gone."""
    import docker

    def orphaned(labels: dict[str, str] | None) -> bool:
        owner = (labels or {}).get(OWNER_LABEL, "")
        return owner.isdigit() and not Path(f"/proc/{owner}").exists()

    removed = 0
    for container in _labelled_containers(client):
        if orphaned(container.get("Labels")):
            _unless_gone(client.api.remove_container, container["Id"], force=True)
            removed += 1
    for network in client.api.networks(filters={"label": LABEL}):
        try:
            attached = client.api.inspect_network(network["Id"]).get("Containers")
        except docker.errors.NotFound:
            continue
        if not attached and orphaned(network.get("Labels")):
            _unless_gone(client.api.remove_network, network["Id"])
    return removed


def clean_all() -> int:
    """`invoke clean`: every container and network the tool created, whoever owns it."""
    client = _client()
    containers = _labelled_containers(client)
    for container in containers:
        _unless_gone(client.api.remove_container, container["Id"], force=True)
    networks = client.api.networks(filters={"label": LABEL})
    for network in networks:
        _unless_gone(client.api.remove_network, network["Id"])
    return len(containers) + len(networks)


_CLIENT_FILES = ".clients"  # under the work root: the only host directory client containers see
_CLIENT_MOUNT = "/mnt/files"


def _link(source: Path, link: Path) -> None:
    """``link`` names ``source``'s very file (a hard link: what is written to it later shows too), or a fresh copy
    where the two cannot share a filesystem."""
    link.parent.mkdir(mode=0o700, exist_ok=True)
    try:
        if link.exists() and link.samefile(source):
            return
        link.unlink(missing_ok=True)
        os.link(source, link)
    except OSError:
        shutil.copy2(source, link)


def _reached(container: Any, name: str, published: bool) -> Address:
    """Where this host reaches a container's port: on 127.0.0.1 when published, else at the container's address."""
    if published:
        bindings = container.attrs["NetworkSettings"]["Ports"][f"{CONTAINER_PORTS[name]}/tcp"]
        return Address("127.0.0.1", int(bindings[0]["HostPort"]))
    return Address(_address(container), CONTAINER_PORTS[name])


def _address(container: Any) -> str:
    return str(next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"])


def _routes_to_containers(client: Any) -> bool:
    """Whether this host routes to the engine's bridge networks: a rootful engine on this Linux machine. Rootless
    Docker keeps them in its own network namespace, Docker Desktop in a VM, a remote DOCKER_HOST elsewhere."""
    host = os.environ.get("DOCKER_HOST", "")
    if sys.platform != "linux" or (host and not host.startswith("unix://")):
        return False
    return not any("rootless" in option for option in client.info().get("SecurityOptions") or ())


def _wait_listening(container: Any, addressed: Any, port: int, log: Path, kind: str, *, shell: bool) -> None:
    """Connect from here to the port at the container's address (``addressed``: itself, or the holder whose
    network it shares), not to the published port, which docker-proxy answers before anything listens. Where this
    host cannot reach container addresses (rootless Docker, an engine in a VM), check from inside through the
    image's shell (``shell``): each such check is a `docker exec`, far dearer to the engine than a connect."""
    deadline = time.monotonic() + PORT_TIMEOUT_S
    address = None
    inside = False
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("created", "running"):
            raise EnvironmentFailed(f"{kind} container exited: {log_tail(log)}")
        if inside:
            code, _ = container.exec_run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"])
            if code == 0:
                return
        else:
            if not address:
                addressed.reload()
                address = _address(addressed)
            try:
                socket.create_connection((address, port), timeout=1).close()
                return
            except ConnectionRefusedError:
                pass  # reachable, not listening yet
            except OSError:
                inside = shell  # no route to container addresses from here
        time.sleep(0.1)
    raise EnvironmentFailed(f"{kind} did not listen on port {port} within {PORT_TIMEOUT_S:.0f}s: {log_tail(log)}")


def _follow_output(container: Any, log: Path, since: int | None = None) -> None:
    """Append the container's stdout and stderr to ``log`` as Docker streams them (from ``since``, a Unix time),
    until it stops."""
    def follow() -> None:
        import docker

        try:
            with log.open("ab") as out:
                for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True, since=since):
                    out.write(chunk)
                    out.flush()
        except (docker.errors.DockerException, OSError):
            pass  # the container went away: nothing more to read

    threading.Thread(target=follow, name=f"logs-{container.name}", daemon=True).start()


@dataclass
class DockerCommandHost:
    """A command-line client in a shared client container, on the environment's network; it sees the files of
    ``allowed`` (and what is under its directories) once they are linked for it, nothing else of the host."""

    container: Any
    address: Address  # the proxy's address on the environment's network
    links: Path
    allowed: tuple[Path, ...]
    _names: dict[Path, str] = field(default_factory=dict)

    def path(self, host_path: Path) -> str:
        if not any(host_path == p or p in host_path.parents for p in self.allowed):
            raise UsageError(f"{host_path} is not given to the client container: pass it in the probe's files")
        name = self._names.setdefault(host_path, f"{len(self._names)}-{host_path.name}")
        _link(host_path, self.links / name)
        return f"{_CLIENT_MOUNT}/{self.links.name}/{name}"

    def run(self, argv: list[str], timeout_s: float) -> CommandResult:
        # dcmtk's own -to/-ta/-td bound the run; `timeout` is the backstop that timeout_s asks for, no later than
        # the cell's deadline (`timeout 0` would be none at all).
        code, output = self.container.exec_run(["timeout", str(max(1, math.ceil(bounded(timeout_s)))), *argv])
        text = output.decode(errors="replace") if output else ""
        if code == 124:
            text += f"\n{Path(argv[0]).name} timed out after {timeout_s:.0f}s"
        return CommandResult(code, text)
