"""An nginx configuration (nginx.conf and what it includes), read with NGINX's own parser library, crossplane,
into the TLS servers it runs: the `stream {}` servers that terminate (or pass through) DICOM TLS, and the `http {}`
HTTPS servers beside them. Every setting keeps the file and line it came from; directives in those servers that the
tool cannot reproduce are listed, never dropped silently."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import crossplane
from crossplane.errors import NgxParserBaseException
from packaging.version import Version
from dicomtls.errors import UsageError
from dicomtls.manifests.located import At, shown
from dicomtls.manifests.spec import Spec

TLS_DIRECTIVES = ("ssl_protocols", "ssl_ciphers", "ssl_prefer_server_ciphers", "ssl_certificate",
                  "ssl_certificate_key", "ssl_verify_client", "ssl_client_certificate", "ssl_trusted_certificate",
                  "ssl_crl", "ssl_verify_depth")
"""Directives nginx inherits from the enclosing `stream {}`/`http {}` block into each server."""

READ = frozenset({*TLS_DIRECTIVES, "listen", "proxy_pass", "ssl_preread", "server_name"})
"""Directives of a server that the reader turns into the model; every other one in a server is unhonoured."""


class Listen(Spec):
    address: str | None = None  # None: every address
    port: int
    ssl: bool
    parameters: tuple[str, ...] = ()
    at: At


class Destination(Spec):
    """Where a `proxy_pass` (or a map entry) sends connections: as written, and the host:port it resolves to."""

    target: str
    servers: tuple[str, ...]
    at: At


class SniRoute(Spec):
    """One entry of `map $ssl_preread_server_name ...`: a client's SNI (or "default") and where it goes."""

    server_name: str
    destination: Destination
    at: At


class Location(Spec):
    """A prefix `location` of an HTTPS server and the HTTP server its `proxy_pass` names (host:port, no scheme)."""

    path: str
    proxy_pass: str | None = None
    strips: bool = False
    """Its proxy_pass carries a URI (``http://orthanc:8042/``): nginx replaces the location's path with it."""
    at: At


class NginxServer(Spec):
    context: Literal["stream", "http"]
    at: At
    listen: tuple[Listen, ...]
    server_names: tuple[str, ...] = ()
    protocols: tuple[str, ...] | None = None  # ssl_protocols; None: nginx's default, see default_protocols()
    ciphers: str | None = None
    prefer_server_ciphers: bool | None = None
    certificates: tuple[str, ...] = ()  # paths as nginx sees them (in the container)
    certificate_keys: tuple[str, ...] = ()
    verify_client: Literal["on", "off", "optional", "optional_no_ca"] | None = None
    client_certificate: str | None = None
    trusted_certificate: str | None = None
    crl: str | None = None
    verify_depth: int | None = None
    preread: bool = False
    proxy_pass: Destination | None = None
    sni_routes: tuple[SniRoute, ...] = ()
    locations: tuple[Location, ...] = ()
    """An HTTPS server's prefix locations (``location /orthanc/``), read for its web route."""
    settings: dict[str, At] = {}
    """Every directive read into the model, with where it was set (the server or its enclosing block)."""
    not_reproduced: tuple[str, ...] = ()
    """Directives of this server that the tool does not reproduce, each as "file:line: directive args"."""
    unhonoured = frozenset({"verify_depth", "prefer_server_ciphers"})

    @property
    def terminates_tls(self) -> bool:
        return any(listen.ssl for listen in self.listen)

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(listen.port for listen in self.listen))


class NginxConfig(Spec):
    file: Path
    stream_servers: tuple[NginxServer, ...] = ()
    """Servers in `stream {}` that carry TLS: listening with `ssl`, or routing by SNI with `ssl_preread on`."""
    http_servers: tuple[NginxServer, ...] = ()
    """Servers in `http {}` listening with `ssl` (HTTPS), kept for later HTTPS checks."""
    not_reproduced: tuple[str, ...] = ()
    """Includes not found here, stream servers without TLS, and the like."""
    included: tuple[Path, ...] = ()
    """The files its includes read, in the order read: part of the configuration a fix edits and copies."""


def default_protocols(version: str) -> tuple[str, ...]:
    """The ssl_protocols nginx ``version`` uses when the configuration sets none: TLS 1.3 joined in 1.23.4,
    TLS 1.0/1.1 left in 1.27.3 (its CHANGES)."""
    release = Version(version)
    if release >= Version("1.27.3"):
        return ("TLSv1.2", "TLSv1.3")
    if release >= Version("1.23.4"):
        return ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    return ("TLSv1", "TLSv1.1", "TLSv1.2")


def read_nginx(path: Path, mounts: dict[str, Path] | None = None) -> NginxConfig:
    """Parse ``path`` with crossplane, then its includes: a relative one from the main file's directory (nginx's
    conf dir), an absolute one only through ``mounts`` ({container path: host path}, from the compose file that
    mounts them), since an absolute path names the container's file, not this machine's. A syntax error, a
    directive in the wrong block or with the wrong arguments is a UsageError naming file and line; an include that
    cannot be found is only noted."""
    if not path.is_file():
        raise UsageError(f"{shown(path)}: no such nginx configuration file")
    notes: list[str] = []
    main = _parse(path, path.parent, mounts or {}, notes, check_ctx=True)
    streams: list[NginxServer] = []
    https: list[NginxServer] = []
    for block in main:
        if block["directive"] == "stream":
            for server in _servers(block, "stream"):
                if server.terminates_tls or server.preread:
                    streams.append(server)
                else:
                    notes.append(f"{server.at}: stream server without ssl or ssl_preread (plain TCP): not read")
        elif block["directive"] == "http":
            https += [s for s in _servers(block, "http") if s.terminates_tls]
    return NginxConfig(file=path, stream_servers=tuple(streams), http_servers=tuple(https),
                       not_reproduced=tuple(notes), included=tuple(p for p in _files(main) if p != path))


def _files(statements: list[dict[str, Any]]) -> dict[Path, None]:
    """The files the statements came from, in order, once each."""
    found: dict[Path, None] = {}
    for stmt in statements:
        found[Path(stmt["file"])] = None
        found |= _files(stmt.get("block", []))
    return found


def _parse(path: Path, conf_dir: Path, mounts: dict[str, Path], notes: list[str], check_ctx: bool,
           seen: frozenset[Path] = frozenset()) -> list[dict[str, Any]]:
    """One file's statements, each with its "file", includes spliced in. An included file is checked without
    its context (crossplane would start it at the top level), as nginx checks it where it is included."""
    payload = crossplane.parse(str(path), single=True, check_ctx=check_ctx, onerror=lambda e: e)
    for error in payload["errors"]:
        exc = error.get("callback")
        message = exc.strerror if isinstance(exc, NgxParserBaseException) else error["error"]
        raise UsageError(f"{At(file=path, line=error.get('line'))}: {message}: fix the nginx configuration "
                         "(`nginx -t` reports the same)")
    return _spliced(payload["config"][0]["parsed"], path, conf_dir, mounts, notes, seen | {path})


def _spliced(statements: list[dict[str, Any]], path: Path, conf_dir: Path, mounts: dict[str, Path],
             notes: list[str], seen: frozenset[Path]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for stmt in statements:
        stmt["file"] = str(path)
        if "block" in stmt:
            stmt["block"] = _spliced(stmt["block"], path, conf_dir, mounts, notes, seen)
        if stmt["directive"] != "include":
            result.append(stmt)
            continue
        files = _included(stmt["args"][0], conf_dir, mounts)
        if not files:
            mounted = _mount_of(stmt["args"][0], mounts)
            why = ("no such file in the directory mounted there" if mounted is not None
                   else "a path in the container that the project does not mount" if stmt["args"][0].startswith("/")
                   else "no such file beside the configuration")
            notes.append(f"{_at(stmt)}: include {stmt['args'][0]}: not found here ({why}): not read")
        for included in files:
            if included in seen:
                raise UsageError(f"{_at(stmt)}: include {stmt['args'][0]} includes itself")
            result += _parse(included, conf_dir, mounts, notes, check_ctx=False, seen=seen)
    return result


def _included(pattern: str, conf_dir: Path, mounts: dict[str, Path]) -> list[Path]:
    if pattern.startswith("/"):
        mount = _mount_of(pattern, mounts)
        if mount is None:
            return []
        base, rest = mounts[mount], pattern[len(mount):].lstrip("/")
    else:
        base, rest = conf_dir, pattern
    if not rest:
        return [base] if base.is_file() else []
    return sorted(p for p in base.glob(rest) if p.is_file())


def _mount_of(pattern: str, mounts: dict[str, Path]) -> str | None:
    """The container path of the mount an absolute include falls under (the longest), or None."""
    if not pattern.startswith("/"):
        return None
    return max((m for m in mounts if pattern == m or pattern.startswith(m.rstrip("/") + "/")), key=len, default=None)


def _at(stmt: dict[str, Any]) -> At:
    return At(file=Path(stmt["file"]), line=stmt["line"])


def _text(stmt: dict[str, Any]) -> str:
    return " ".join([stmt["directive"], *stmt["args"]])


def _servers(block: dict[str, Any], context: Literal["stream", "http"]) -> list[NginxServer]:
    """Each `server` of a stream/http block, with the TLS directives it inherits from the block."""
    inherited: dict[str, list[dict[str, Any]]] = {s["directive"]: [] for s in block["block"]}
    for stmt in block["block"]:
        inherited[stmt["directive"]].append(stmt)
    upstreams = {s["args"][0]: s for s in block["block"] if s["directive"] == "upstream"}
    maps = {s["args"][1]: s for s in block["block"] if s["directive"] == "map" and len(s["args"]) == 2}
    return [_server(stmt, context, inherited, upstreams, maps) for stmt in block["block"]
            if stmt["directive"] == "server"]


def _server(stmt: dict[str, Any], context: Literal["stream", "http"], inherited: dict[str, list[dict[str, Any]]],
            upstreams: dict[str, dict[str, Any]], maps: dict[str, dict[str, Any]]) -> NginxServer:
    own: dict[str, list[dict[str, Any]]] = {}
    for inner in stmt["block"]:
        own.setdefault(inner["directive"], []).append(inner)
    chosen = {name: own.get(name) or inherited.get(name, []) for name in TLS_DIRECTIVES}
    chosen |= {name: own.get(name, []) for name in ("listen", "proxy_pass", "ssl_preread", "server_name")}
    values: dict[str, Any] = {"context": context, "at": _at(stmt)}
    settings = {name: _at(found[-1]) for name, found in chosen.items() if found}

    def last(name: str) -> dict[str, Any] | None:
        return chosen[name][-1] if chosen[name] else None

    values["listen"] = tuple(_listen(s) for s in chosen["listen"])
    values["server_names"] = tuple(a for s in chosen["server_name"] for a in s["args"])
    if (s := last("ssl_protocols")) is not None:
        values["protocols"] = tuple(s["args"])
    if (s := last("ssl_ciphers")) is not None:
        values["ciphers"] = s["args"][0]
    if (s := last("ssl_prefer_server_ciphers")) is not None:
        values["prefer_server_ciphers"] = s["args"][0] == "on"
    values["certificates"] = tuple(s["args"][0] for s in chosen["ssl_certificate"])
    values["certificate_keys"] = tuple(s["args"][0] for s in chosen["ssl_certificate_key"])
    if (s := last("ssl_verify_client")) is not None:
        if s["args"][0] not in ("on", "off", "optional", "optional_no_ca"):
            raise UsageError(f"{_at(s)}: ssl_verify_client {s['args'][0]}: nginx takes on, off, optional or "
                             "optional_no_ca")
        values["verify_client"] = s["args"][0]
    for name, field in (("ssl_client_certificate", "client_certificate"),
                        ("ssl_trusted_certificate", "trusted_certificate"), ("ssl_crl", "crl")):
        if (s := last(name)) is not None:
            values[field] = s["args"][0]
    if (s := last("ssl_verify_depth")) is not None:
        values["verify_depth"] = _number(s)
    values["preread"] = (s := last("ssl_preread")) is not None and s["args"][0] == "on"
    if (s := last("proxy_pass")) is not None and context == "stream":
        target = s["args"][0]
        if target.startswith("$"):
            values["sni_routes"] = _sni_routes(s, maps, upstreams)
        values["proxy_pass"] = _destination(target, _at(s), upstreams)
    values["settings"] = settings
    if context == "http":
        values["locations"] = tuple(_location(inner) for inner in stmt["block"]
                                    if inner["directive"] == "location" and len(inner["args"]) == 1)
    values["not_reproduced"] = tuple(f"{_at(inner)}: {_text(inner)}: not reproduced" for inner in stmt["block"]
                                     if inner["directive"] not in READ
                                     and not (context == "http" and inner["directive"] == "location"))
    values["not_reproduced"] += tuple(f"{_at(inner)}: location {' '.join(inner['args'])}: HTTP routing, not read"
                                      for inner in stmt["block"] if context == "http"
                                      and inner["directive"] == "location")
    server = NginxServer(**values)
    if server.terminates_tls and not server.certificates:
        raise UsageError(f"{server.at}: listens with ssl but no ssl_certificate is set for it: nginx refuses to "
                         "start (`no \"ssl_certificate\" is defined`); add ssl_certificate and ssl_certificate_key")
    return server


_HTTP_TARGET = re.compile(r"^https?://(?P<server>[^/]+)(?P<uri>/.*)?$")


def _location(stmt: dict[str, Any]) -> Location:
    """A prefix location (one argument: no `=`, `~` modifier) and where its proxy_pass sends requests."""
    passes = [inner for inner in stmt.get("block", []) if inner["directive"] == "proxy_pass"]
    found = _HTTP_TARGET.match(passes[-1]["args"][0]) if passes else None
    return Location(path=stmt["args"][0], proxy_pass=found["server"] if found else None,
                    strips=bool(found and found["uri"]), at=_at(stmt))


_LISTEN = re.compile(r"^(?:(?P<address>\[[^\]]+\]|[^:\[\]]+):)?(?P<port>\d+)$")


def _listen(stmt: dict[str, Any]) -> Listen:
    spec, *parameters = stmt["args"]
    if spec.startswith("unix:"):
        raise UsageError(f"{_at(stmt)}: listen {spec}: a UNIX socket; the tool reproduces TCP listeners only")
    found = _LISTEN.match(spec)
    if found is None and spec.isdigit() is False and ":" not in spec:
        found = _LISTEN.match(f"{spec}:80")  # `listen host;` listens on port 80 (http) like nginx
    if found is None or not 0 < int(found["port"]) < 65536:
        raise UsageError(f"{_at(stmt)}: listen {spec}: not an address:port nginx accepts")
    address = (found["address"] or "").strip("[]")
    return Listen(address=None if address in ("", "*") else address, port=int(found["port"]), ssl="ssl" in parameters,
                  parameters=tuple(p for p in parameters if p != "ssl"), at=_at(stmt))


def _number(stmt: dict[str, Any]) -> int:
    try:
        return int(stmt["args"][0])
    except ValueError:
        raise UsageError(f"{_at(stmt)}: {_text(stmt)}: expects a number") from None


def _destination(target: str, at: At, upstreams: dict[str, dict[str, Any]]) -> Destination:
    """``target`` is host:port, an `upstream {}` block's name, or a variable (resolved through a map)."""
    if target in upstreams:
        block = upstreams[target]
        servers = tuple(s["args"][0] for s in block["block"] if s["directive"] == "server")
        if not servers:
            raise UsageError(f"{_at(block)}: upstream {target} has no server: nginx refuses to start")
        return Destination(target=target, servers=servers, at=at)
    if target.startswith("$"):
        return Destination(target=target, servers=(), at=at)
    if ":" not in target.removeprefix("unix:") and not target.startswith("unix:"):
        raise UsageError(f"{at}: proxy_pass {target}: no port and no upstream {{}} of that name: nginx refuses it "
                         "(`no port in upstream`)")
    return Destination(target=target, servers=(target,), at=at)


def _sni_routes(stmt: dict[str, Any], maps: dict[str, dict[str, Any]],
                upstreams: dict[str, dict[str, Any]]) -> tuple[SniRoute, ...]:
    variable = stmt["args"][0]
    block = maps.get(variable)
    if block is None:
        raise UsageError(f"{_at(stmt)}: proxy_pass {variable}: no `map ... {variable}` in this stream block sets it")
    if block["args"][0] != "$ssl_preread_server_name":
        raise UsageError(f"{_at(block)}: map {block['args'][0]} {variable}: the tool routes by "
                         "$ssl_preread_server_name (the client's SNI) only")
    routes = []
    for entry in block["block"]:
        if entry["directive"] in ("hostnames", "volatile") and not entry["args"]:
            continue
        if len(entry["args"]) != 1:
            raise UsageError(f"{_at(entry)}: map entry {_text(entry)}: expects a name and one value")
        value = entry["args"][0]
        destination = (Destination(target="", servers=(), at=_at(entry)) if not value  # `""`: the connection is closed
                       else _destination(value, _at(entry), upstreams))
        routes.append(SniRoute(server_name=entry["directive"], destination=destination, at=_at(entry)))
    return tuple(routes)


__all__ = ["Destination", "Listen", "NginxConfig", "NginxServer", "SniRoute", "default_protocols", "read_nginx"]
