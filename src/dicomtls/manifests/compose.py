"""A docker compose project (the compose file and the `.env` beside it), read as `docker compose config` reads it:
variables interpolated by the compose specification's rules, bind mounts resolved from the compose file's directory.
What it yields: which service is the TLS proxy and which is Orthanc (by image), the configuration files they mount,
the ports they publish and their image versions, each with the file and line it came from.

Interpolation is written here (compose-go's rules: `$$`, `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?e}`,
`${VAR?e}`, `${VAR:+r}`, `${VAR+r}`, nested defaults) because no well-kept Python library implements it: the
compose-spec bindings parse without interpolating, docker-compose 1.x is retired. The `.env` file is read by
python-dotenv (its values interpolated by the same rules, earlier lines first). The shell environment of *this*
machine is not used: the project runs elsewhere, so only ``env`` given by the caller overrides `.env`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from dicomtls.errors import UsageError
from dicomtls.manifests.located import At, shown
from dicomtls.manifests.spec import Spec

ImageKind = Literal["nginx", "haproxy", "envoy", "traefik", "orthanc"]
PROXY_KINDS: tuple[ImageKind, ...] = ("nginx", "haproxy", "envoy", "traefik")
ORTHANC_NAMES = frozenset({"orthanc", "orthanc-plugins", "orthanc-python"})
"""Image names of Orthanc itself under orthancteam/, jodogne/, osimis/ (orthanc-auth-service etc. are not)."""


class Image(Spec):
    reference: str  # as interpolated: "nginx:1.27.4"
    name: str  # the repository without registry or tag: "nginx", "orthancteam/orthanc"
    tag: str | None = None
    version: str | None = None  # the tag's leading version number: "1.27.4" (the image's, not always the program's)
    kind: ImageKind | None = None


class Mount(Spec):
    target: str
    source: Path | None = None  # a bind mount's host path, resolved from the compose file's directory
    volume: str | None = None  # a named volume
    read_only: bool = False
    at: At


class Port(Spec):
    target: int  # in the container
    published: int | None = None  # on the host; None: an ephemeral port
    host_ip: str | None = None
    protocol: str = "tcp"
    at: At


class Service(Spec):
    name: str
    at: At
    image: Image | None = None
    environment: dict[str, str] = {}
    """The container's environment (values interpolated; may hold passwords: never print it whole)."""
    mounts: tuple[Mount, ...] = ()
    ports: tuple[Port, ...] = ()

    @property
    def role(self) -> Literal["proxy", "orthanc", "other"]:
        kind = self.image.kind if self.image else None
        return "proxy" if kind in PROXY_KINDS else "orthanc" if kind == "orthanc" else "other"

    def host_path(self, container_path: str) -> Path | None:
        """The file on this machine a bind mount puts at ``container_path`` (longest mount wins)."""
        for mount in sorted(self.mounts, key=lambda m: len(m.target), reverse=True):
            if mount.source is None:
                continue
            if container_path == mount.target:
                return mount.source
            if container_path.startswith(mount.target.rstrip("/") + "/"):
                return mount.source / container_path[len(mount.target.rstrip("/")) + 1:]
        return None


class ComposeProject(Spec):
    file: Path
    env_file: Path | None = None
    services: tuple[Service, ...] = ()
    variables: dict[str, Literal["env", ".env", "default", "unset"]] = {}
    """Each variable the compose file interpolates and where its value came from (values not kept)."""
    not_reproduced: tuple[str, ...] = ()

    @property
    def proxies(self) -> tuple[Service, ...]:
        return tuple(s for s in self.services if s.role == "proxy")

    @property
    def orthancs(self) -> tuple[Service, ...]:
        return tuple(s for s in self.services if s.role == "orthanc")

    def mounts(self) -> dict[str, Path]:
        """Every bind mount of every service, {container path: host path}, for reading configs that name paths."""
        return {m.target: m.source for s in self.services for m in s.mounts if m.source is not None}


def read_compose(path: Path, env: Mapping[str, str] | None = None, env_file: Path | None = None) -> ComposeProject:
    """Read the compose file ``path`` with the `.env` beside it (or ``env_file``); ``env`` wins over `.env`, as
    the shell environment does for compose. An invalid file is a UsageError naming file and line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"{shown(path)}: cannot read the compose file ({exc.strerror})") from None
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise UsageError(f"{At(file=path, line=mark.line + 1 if mark else None)}: not valid YAML "
                         f"({exc.problem}): fix the compose file") from None
    if not isinstance(document, CommentedMap) or not isinstance(document.get("services"), CommentedMap):
        raise UsageError(f"{shown(path)}: not a compose file: it needs a `services:` mapping")
    dotenv = env_file or path.parent / ".env"
    variables: dict[str, Literal["env", ".env", "default", "unset"]] = {}
    values = {**(_dotenv(dotenv) if dotenv.is_file() else {}), **(env or {})}
    sources: dict[str, Literal["env", ".env"]] = {k: ("env" if env and k in env else ".env") for k in values}
    interpolation = _Interpolation(values, sources, variables)
    notes = [f"{At(file=path, line=_line(document, key))}: {key}: not reproduced" for key in document
             if key in ("include", "secrets", "configs")]
    services = [_service(str(name), body, At(file=path, line=_line(document["services"], name)), interpolation, notes)
                for name, body in document["services"].items()]
    override = next((path.parent / n for n in ("docker-compose.override.yaml", "docker-compose.override.yml",
                                                  "compose.override.yaml", "compose.override.yml")
                     if (path.parent / n).is_file()), None)
    if override is not None:
        notes.append(f"{shown(override)}: compose merges it into {path.name} when run with default file names: "
                     "not read")
    notes += [f"{shown(path)}: ${{{name}}} is not set and has no default: compose puts an empty string there"
              for name, source in variables.items() if source == "unset"]
    return ComposeProject(file=path, env_file=dotenv if dotenv.is_file() else None, services=tuple(services),
                          variables=variables, not_reproduced=tuple(notes))


def _dotenv(path: Path) -> dict[str, str]:
    raw = dotenv_values(path, interpolate=False)
    values: dict[str, str] = {}
    interpolation = _Interpolation(values, {}, {})
    for key, value in raw.items():
        if value is not None:
            values[key] = interpolation.text(value, At(file=path))
    return values


def _line(mapping: CommentedMap, key: Any) -> int:
    return int(mapping.lc.key(key)[0]) + 1


def _item_line(seq: CommentedSeq, index: int) -> int:
    return int(seq.lc.item(index)[0]) + 1


class _Interpolation:
    """compose-go's template rules over a set of values; records where each variable's value came from."""

    def __init__(self, values: Mapping[str, str], sources: Mapping[str, Literal["env", ".env"]],
                 used: dict[str, Literal["env", ".env", "default", "unset"]]) -> None:
        self.values, self.sources, self.used = values, sources, used

    def text(self, value: str, at: At) -> str:
        out: list[str] = []
        i = 0
        while i < len(value):
            if value[i] != "$":
                out.append(value[i])
                i += 1
            elif value.startswith("$$", i):
                out.append("$")
                i += 2
            elif value.startswith("${", i):
                end = _closing(value, i, at)
                out.append(self._braced(value[i + 2:end], at))
                i = end + 1
            elif (name := re.match(r"[A-Za-z_][A-Za-z0-9_]*", value[i + 1:])) is not None:
                out.append(self._lookup(name[0], None))
                i += 1 + len(name[0])
            else:
                raise UsageError(f"{at}: invalid interpolation format in {value!r}: write $$ for a literal $")
        return "".join(out)

    def _lookup(self, name: str, default: str | None) -> str:
        if name in self.values:
            self.used[name] = self.sources.get(name, ".env")
            return self.values[name]
        self.used.setdefault(name, "unset" if default is None else "default")
        return default or ""

    def _braced(self, body: str, at: At) -> str:
        found = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", body, re.S)
        if found is None:
            raise UsageError(f"{at}: invalid interpolation format ${{{body}}}: compose refuses it")
        name, op, argument = found[1], found[2], found[3] or ""
        present = name in self.values
        empty = not present or self.values[name] == ""
        if op is None:
            return self._lookup(name, None)
        missing = empty if op.startswith(":") else not present
        kind = op[-1]
        if kind == "-":
            return self._lookup(name, None) if not missing else self._defaulted(name, argument, at)
        if kind == "?":
            if missing:
                raise UsageError(f"{at}: required variable {name} is missing a value: {self.text(argument, at)} "
                                 "(compose refuses to start): set it in .env")
            return self._lookup(name, None)
        self._lookup(name, None)
        return "" if missing else self.text(argument, at)

    def _defaulted(self, name: str, argument: str, at: At) -> str:
        self.used[name] = "default"
        return self.text(argument, at)


def _closing(value: str, start: int, at: At) -> int:
    """The index of the `}` closing the `${` at ``start``, nested `${...}` counted."""
    depth, i = 0, start
    while i < len(value):
        if value.startswith("${", i):
            depth += 1
            i += 2
            continue
        if value[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise UsageError(f"{at}: invalid interpolation format in {value!r}: a ${{ is never closed")


def _service(name: str, services: Any, at: At, interpolation: _Interpolation, notes: list[str]) -> Service:
    if not isinstance(services, CommentedMap):
        raise UsageError(f"{at}: services.{name}: a service is a mapping")
    compose = at.file

    def here(key: str) -> At:
        return At(file=compose, line=_line(services, key)) if key in services else at

    image = None
    if "image" in services:
        image = parse_image(interpolation.text(str(services["image"]), here("image")))
    elif "build" in services:
        notes.append(f"{here('build')}: services.{name}.build: an image built from source; its kind is unknown")
    environment = {**_env_files(services.get("env_file"), interpolation, here("env_file"), name),
                   **_environment(services.get("environment"), interpolation, here("environment"), name)}
    mounts = _mounts(services.get("volumes"), compose, interpolation, here("volumes"), name)
    ports = _ports(services.get("ports"), interpolation, here("ports"), name)
    notes += [f"{here(key)}: services.{name}.{key}: not reproduced" for key in ("extends", "configs", "secrets")
              if key in services]
    return Service(name=name, at=at, image=image, environment=environment, mounts=mounts, ports=ports)


_REFERENCE = re.compile(r"^(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]*))?(?:@(?P<digest>[\w:]+))?$")


def parse_image(reference: str) -> Image:
    """An image reference split as Docker splits it, and what it runs (by its repository's last component)."""
    found = _REFERENCE.match(reference.strip())
    if found is None:
        return Image(reference=reference, name=reference)
    full, tag = found["name"], found["tag"]
    parts = full.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]  # a registry host
    if parts[0] == "library":
        parts = parts[1:]
    name, last = "/".join(parts), parts[-1]
    kind: ImageKind | None = None
    for candidate in PROXY_KINDS:
        if last == candidate or last.startswith(candidate + "-"):
            kind = candidate
    if last in ORTHANC_NAMES:
        kind = "orthanc"
    version = re.match(r"v?(\d+(?:\.\d+)*)", tag) if tag else None
    return Image(reference=reference, name=name, tag=tag, version=version[1] if version else None, kind=kind)


def _env_files(raw: Any, interpolation: _Interpolation, at: At, service: str) -> dict[str, str]:
    """A service's `env_file:` (a path, a list of paths, or of {path, required}), read in order, later files
    winning, as compose does; `environment:` wins over all of them."""
    if raw is None:
        return {}
    entries = raw if isinstance(raw, CommentedSeq) else [raw]
    values: dict[str, str] = {}
    for entry in entries:
        path, required = (entry.get("path"), entry.get("required", True)) if isinstance(entry, CommentedMap) \
            else (entry, True)
        file = at.file.parent / interpolation.text(str(path), at)
        if not file.is_file():
            if required:
                raise UsageError(f"{at}: services.{service}.env_file {shown(file)}: no such file (compose refuses "
                                 "to start): create it or mark it `required: false`")
            continue
        values.update(_dotenv(file))
    return values


def _environment(raw: Any, interpolation: _Interpolation, at: At, service: str) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, CommentedMap):
        return {str(k): interpolation.text("" if v is None else str(v), At(file=at.file, line=_line(raw, k)))
                for k, v in raw.items()}
    if isinstance(raw, CommentedSeq):
        result = {}
        for i, item in enumerate(raw):
            key, sep, value = str(item).partition("=")
            if sep:  # "NAME" alone takes the value from compose's own shell: unknown here
                result[key] = interpolation.text(value, At(file=at.file, line=_item_line(raw, i)))
        return result
    raise UsageError(f"{at}: services.{service}.environment: a mapping or a list of NAME=value")


def _mounts(raw: Any, compose: Path, interpolation: _Interpolation, at: At, service: str) -> tuple[Mount, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, CommentedSeq):
        raise UsageError(f"{at}: services.{service}.volumes: a list")
    mounts = []
    for i, item in enumerate(raw):
        where = At(file=compose, line=_item_line(raw, i))
        if isinstance(item, CommentedMap):
            kind = str(item.get("type", "volume"))
            source = interpolation.text(str(item.get("source", "")), where)
            target = interpolation.text(str(item.get("target", "")), where)
            read_only = bool(item.get("read_only", False))
        else:
            fields = interpolation.text(str(item), where).split(":")
            if len(fields) == 1:
                kind, source, target, read_only = "volume", "", fields[0], False
            else:
                source, target = fields[0], fields[1]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
                read_only = len(fields) > 2 and "ro" in fields[2].split(",")
        if not target.startswith("/"):
            raise UsageError(f"{where}: services.{service}.volumes[{i}]: the target {target!r} must be an absolute "
                             "path in the container")
        if kind == "bind":
            host = Path(source).expanduser()
            mounts.append(Mount(target=target, source=(compose.parent / host).resolve() if not host.is_absolute()
                                else host, read_only=read_only, at=where))
        else:
            mounts.append(Mount(target=target, volume=source or None, read_only=read_only, at=where))
    return tuple(mounts)


_PORT = re.compile(r"^(?:(?P<ip>\[[^\]]+\]|\d+\.\d+\.\d+\.\d+):)?(?:(?P<published>[\d-]*):)?"
                   r"(?P<target>[\d-]+)(?:/(?P<proto>\w+))?$")


def _ports(raw: Any, interpolation: _Interpolation, at: At, service: str) -> tuple[Port, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, CommentedSeq):
        raise UsageError(f"{at}: services.{service}.ports: a list")
    ports: list[Port] = []
    for i, item in enumerate(raw):
        where = At(file=at.file, line=_item_line(raw, i))
        if isinstance(item, CommentedMap):
            try:
                published = item.get("published")
                ports.append(Port(target=int(interpolation.text(str(item["target"]), where)),
                                  published=int(interpolation.text(str(published), where)) if published else None,
                                  host_ip=item.get("host_ip"), protocol=str(item.get("protocol", "tcp")), at=where))
            except (KeyError, ValueError):
                raise UsageError(f"{where}: services.{service}.ports[{i}]: target and published must be port "
                                 "numbers") from None
            continue
        found = _PORT.match(interpolation.text(str(item), where))
        if found is None:
            raise UsageError(f"{where}: services.{service}.ports[{i}] {item!r}: not [IP:][HOST:]CONTAINER[/PROTO]")
        targets, published_range = _range(found["target"], where), _range(found["published"] or "", where)
        if published_range and len(published_range) != len(targets):
            raise UsageError(f"{where}: services.{service}.ports[{i}] {item!r}: the two ranges differ in length")
        for n, target in enumerate(targets):
            ports.append(Port(target=target, published=published_range[n] if published_range else None,
                              host_ip=(found["ip"] or "").strip("[]") or None, protocol=found["proto"] or "tcp",
                              at=where))
    return tuple(ports)


def _range(text: str, at: At) -> list[int]:
    if not text:
        return []
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if not 0 < first <= last < 65536:
        raise UsageError(f"{at}: port {text}: not a port number (1-65535)")
    return list(range(first, last + 1))
