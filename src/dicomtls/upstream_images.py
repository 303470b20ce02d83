"""Components run from their projects' own container images (``envoyproxy/envoy:v1.22.5``), pulled when missing.

A regression such as Envoy 1.23's is best reproduced on the real release. An
upstream image is trusted for two things only, both from its documentation:
where the program is (``Component.upstream_executable``) and how it prints its
version (``Component.version_args``). No shell, ``ss`` or package manager is
assumed inside: the Docker backend overrides the entrypoint with the program,
waits for ports from outside the container, follows its output through
Docker's log API and runs it as the image's own user.

Nothing is pulled unless a scenario names an image (the ``image`` option, or
``invoke bisect --backend docker``), or a user's deployment declares one
(``declared_image``, from a compose file) and DICOMTLS_REGISTRY is set: the
default, air-gapped run contacts no registry. A declared image that cannot be
had is no error: the run uses the version this backend has, and says so. ``DICOMTLS_REGISTRY`` names the registry a reference without one is
pulled from (a mirror, or ``127.0.0.1:PORT`` in the tests); unset, Docker's
default (Docker Hub) serves it. A reference already present is never pulled
again, so a run with the registry gone still works.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from dicomtls.components import Component
from dicomtls.errors import UsageError

REGISTRY_ENV = "DICOMTLS_REGISTRY"
DOCKER_HUB = "docker.io"


def registry() -> str | None:
    """The registry the user named for pulls, or None (no base image is pulled; upstream references go to
    Docker's default)."""
    return os.environ.get(REGISTRY_ENV, "").strip().rstrip("/") or None


def wanted(component: Component) -> bool:
    return component.options.image is not None


def reference(component: Component) -> str:
    """The full image reference a component's ``image`` option (or else its ``declared_image``) names, with the
    registry and tag filled in."""
    image = component.options.image or component.options.declared_image
    assert image is not None
    cls = type(component)
    if component.options.image is None and ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
        image = f"{image}:latest"  # a deployment's bare repository means what Docker makes of it
    if image == "upstream":
        if cls.upstream_repository is None:
            raise UsageError(f"{cls.kind} has no known upstream image: name one with image: REPOSITORY:TAG")
        image = cls.upstream_repository
    last = image.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in image:
        version = component.options.version or component.default_image_version()
        image = f"{image}:{cls.upstream_tag.format(version=version)}"
    return with_registry(image)


def with_registry(image: str) -> str:
    """``envoyproxy/envoy:v1.22.5`` from DICOMTLS_REGISTRY when one is named; a reference naming its own
    registry (a first part with a dot or a port, or localhost) is left as it is."""
    first = image.split("/", 1)[0]
    names_registry = "/" in image and ("." in first or ":" in first or first == "localhost")
    chosen = registry()
    if names_registry or chosen is None or chosen == DOCKER_HUB:
        return image
    return f"{chosen}/{image}"


def runs_upstream(client: Any, component: Component) -> bool:
    """Whether the component runs from an upstream image: the one its ``image`` names, or the image its user's
    deployment declares when that image can be had without contacting a registry the user did not name (in
    Docker's cache, or pulled from DICOMTLS_REGISTRY) and dicomtls knows where its program is."""
    if wanted(component):
        return True
    if component.options.declared_image is None or type(component).upstream_executable is None:
        return False
    ref = reference(component)
    with _LOCK:
        if ref in _SEEN:
            return True
        if ref in _UNAVAILABLE:
            return False
    import docker

    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        if registry() is None:
            with _LOCK:
                _UNAVAILABLE[ref] = "not in Docker's cache, and no registry is named (DICOMTLS_REGISTRY)"
            return False
    try:
        pull(client, component)
    except UsageError as exc:
        with _LOCK:
            _UNAVAILABLE[ref] = str(exc)
        return False
    return True


def executable(component: Component) -> str:
    cls = type(component)
    if cls.upstream_executable is None:
        raise UsageError(f"dicomtls does not know where {cls.kind}'s program is in an upstream image: "
                         f"drop image: from the {cls.kind}, or run it from a built image")
    return cls.upstream_executable


@dataclass(frozen=True)
class Pulled:
    """An upstream image as this run uses it."""

    reference: str
    image_id: str
    digest: str  # the registry's manifest digest (sha256:...), or the local image id when it has none
    user: str  # the image's configured user ("" is root)
    version: str  # what the program reports
    fresh: bool  # pulled by this run, not found in Docker's cache

    @property
    def pinned(self) -> str:
        """The reference with its digest: what reports show, so a rerun can ask for exactly this image."""
        return f"{self.reference}@{self.digest}"

    @property
    def report(self) -> str:
        return f"{self.version} ({self.pinned})"


_LOCK = threading.Lock()  # environments side by side may want the same image: pull it once
_SEEN: dict[str, Pulled] = {}
_UNAVAILABLE: dict[str, str] = {}  # a declared image that could not be had, and why: asked once per process


def pull(client: Any, component: Component) -> Pulled:
    """The component's upstream image, pulled when missing; its digest and the version its program reports.

    A missing image that cannot be pulled (no such tag, no registry answering) is a usage error naming the
    reference. An asked-for version the program does not report is one too: the tag lied, or the scenario."""
    ref = reference(component)
    with _LOCK:
        if ref not in _SEEN:
            _SEEN[ref] = _pull(client, component, ref)
        return _SEEN[ref]


def _pull(client: Any, component: Component, ref: str) -> Pulled:
    import docker

    fresh = False
    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        try:
            image = client.images.pull(ref)
        except docker.errors.DockerException as exc:
            reason = _first_line(exc)
            raise UsageError(f"image {ref} is not here and cannot be pulled ({reason}): check the reference, "
                             f"or the registry ({REGISTRY_ENV})") from None
        fresh = True
    found = _version(client, image.id, component)
    asked = component.options.version
    if asked and found != asked:
        raise UsageError(f"{ref} runs {component.kind} {found}, not {asked}: fix the version or the image")
    return Pulled(ref, image.id, _digest(image.attrs, ref), image.attrs["Config"].get("User") or "", found, fresh)


def _digest(attrs: dict[str, Any], ref: str) -> str:
    repository = ref.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    for entry in attrs.get("RepoDigests") or []:
        name, _, digest = entry.partition("@")
        if name == repository:
            return digest
    return str(attrs["Id"])


def _version(client: Any, image_id: str, component: Component) -> str:
    """Run the program alone (entrypoint overridden, no network) with its version flag."""
    out = client.containers.run(image_id, list(component.version_args), entrypoint=[executable(component)],
                                remove=True, stdout=True, stderr=True, network_mode="none",
                                labels={"dicomtls": "probe"})
    match = re.search(component.version_pattern, out.decode(errors="replace"))
    return match.group(1) if match else "unknown"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def numeric_user(client: Any, pulled: Pulled) -> tuple[int, int]:
    """The uid and gid the image runs as. A user given by name is looked up in the image's own /etc/passwd,
    read from a created (never started) container: nothing runs inside for it."""
    user, _, group = pulled.user.partition(":")
    if not user:
        return 0, 0
    if user.isdigit():
        return int(user), int(group) if group.isdigit() else int(user)
    entry = _passwd_entry(client, pulled.image_id, user)
    if entry is None:
        raise UsageError(f"{pulled.reference} runs as user {user!r}, which its /etc/passwd does not list")
    return entry


def _passwd_entry(client: Any, image_id: str, user: str) -> tuple[int, int] | None:
    import io
    import tarfile

    import docker

    container = client.containers.create(image_id, ["/"], entrypoint=["/"], labels={"dicomtls": "probe"})
    try:
        stream, _ = container.get_archive("/etc/passwd")
        tar = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
        member = tar.extractfile(tar.getmembers()[0])
        text = member.read().decode(errors="replace") if member else ""
    except docker.errors.NotFound:
        return None
    finally:
        container.remove(force=True)
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[0] == user:
            return int(fields[2]), int(fields[3])
    return None
