"""An HAProxy configuration (haproxy.cfg) read into the TLS front ends it runs: `bind … ssl crt …` with its client
verification, ciphers and versions; SNI routing (`req.ssl_sni` ACLs → `use_backend`) for TLS passed through; the
backends' servers. Each thing keeps its file and line, and every keyword the tool does not reproduce is listed.

The parser is written here, line by line after HAProxy's own tokenizer rules (cfgparse.c: words split on blanks,
`#` comments, backslash escapes, single and double quotes), because the one Python package for it, pyhaproxy
(last release 2019), keeps no line numbers, knows none of the `bind` SSL options and raises a bare Exception on
sections it does not know (resolvers, peers, program…)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from dicomtls.errors import UsageError
from dicomtls.manifests.located import At, shown
from dicomtls.manifests.spec import Spec

SECTIONS = frozenset({"global", "defaults", "frontend", "backend", "listen", "resolvers", "userlist", "peers",
                      "mailers", "program", "http-errors", "ring", "cache", "fcgi-app", "crt-store", "traces",
                      "log-forward"})
TLS_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
BIND_ARGUMENTS = frozenset({"crt", "crt-list", "ca-file", "crl-file", "verify", "ciphers", "ciphersuites",
                            "ssl-min-ver", "ssl-max-ver", "alpn", "npn", "curves", "ecdhe", "sigalgs",
                            "client-sigalgs", "ca-verify-file", "ca-sign-file", "ca-sign-pass", "ca-ignore-err",
                            "crt-ignore-err", "name", "id", "process", "thread", "maxconn", "interface", "mss",
                            "nice", "user", "group", "mode", "uid", "gid", "tcp-ut", "backlog", "level",
                            "severity-output", "proto", "label", "namespace", "tls-ticket-keys", "quic-cc-algo",
                            "default-crt"})
"""`bind` keywords that take one argument (HAProxy's bind keyword table); the others are flags."""
SNI_FETCHES = frozenset({"req.ssl_sni", "req_ssl_sni", "ssl_fc_sni"})


class Bind(Spec):
    address: str | None = None  # None: every address
    port: int
    ssl: bool = False
    certificates: tuple[str, ...] = ()  # crt (and crt-list) paths, as HAProxy sees them
    ca_file: str | None = None
    crl_file: str | None = None
    verify: Literal["none", "optional", "required"] | None = None  # None: HAProxy's default, none (even with ca-file)
    ciphers: str | None = None  # TLS ≤ 1.2 (own or ssl-default-bind-ciphers)
    ciphersuites: str | None = None  # TLS 1.3
    min_version: str | None = None
    max_version: str | None = None
    alpn: tuple[str, ...] = ()
    strict_sni: bool = False
    other: tuple[str, ...] = ()  # parameters not read into fields
    at: At


class Server(Spec):
    name: str
    address: str
    port: int | None = None
    ssl: bool = False
    at: At


class SniRoute(Spec):
    """`use_backend BACKEND if <SNI condition>`: the server names it answers and where they go."""

    server_names: tuple[str, ...]
    backend: str
    at: At


class Backend(Spec):
    name: str
    mode: str = "tcp"
    servers: tuple[Server, ...] = ()
    at: At
    not_reproduced: tuple[str, ...] = ()


class Frontend(Spec):
    """A `frontend`, or the front half of a `listen` section (whose servers it then holds itself)."""

    name: str
    section: Literal["frontend", "listen"]
    mode: str = "tcp"
    binds: tuple[Bind, ...] = ()
    sni_routes: tuple[SniRoute, ...] = ()
    default_backend: str | None = None
    servers: tuple[Server, ...] = ()
    at: At
    not_reproduced: tuple[str, ...] = ()

    @property
    def terminates_tls(self) -> bool:
        return any(b.ssl for b in self.binds)


class HaproxyConfig(Spec):
    file: Path
    frontends: tuple[Frontend, ...] = ()
    """Every frontend/listen section in TCP mode: the ones that can carry DICOM (TLS terminated or passed)."""
    backends: tuple[Backend, ...] = ()
    not_reproduced: tuple[str, ...] = ()


def read_haproxy(path: Path) -> HaproxyConfig:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{shown(path)}: cannot read the HAProxy configuration ({exc})") from None
    return parse_haproxy(text, path)


def words(line: str, at: At) -> list[str]:
    """One line split as HAProxy splits it: blanks separate, `#` starts a comment, `\\` escapes, quotes group."""
    out: list[str] = []
    current: list[str] = []
    started = False
    quote: str | None = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote is None and c in " \t":
            if started:
                out.append("".join(current))
                current, started = [], False
        elif quote is None and c == "#":
            break
        elif c == "\\" and quote != "'":
            if i + 1 >= len(line):
                raise UsageError(f"{at}: a backslash ends the line: HAProxy joins no lines; remove it")
            current.append(line[i + 1])
            started = True
            i += 1
        elif c in "'\"" and quote in (None, c):
            quote = None if quote == c else c
            started = True
        else:
            current.append(c)
            started = True
        i += 1
    if quote is not None:
        raise UsageError(f"{at}: unmatched quote ({quote}): HAProxy refuses the line")
    if started:
        out.append("".join(current))
    return out


class _Section:
    def __init__(self, keyword: str, name: str, at: At) -> None:
        self.keyword, self.name, self.at = keyword, name, at
        self.lines: list[tuple[list[str], At]] = []


def parse_haproxy(text: str, path: Path) -> HaproxyConfig:
    """``text`` (the content of ``path``) into the model; what HAProxy would refuse is a UsageError with file:line."""
    sections: list[_Section] = []
    for number, raw in enumerate(text.splitlines(), 1):
        at = At(file=path, line=number)
        tokens = words(raw, at)
        if not tokens:
            continue
        if tokens[0] in SECTIONS:
            name = tokens[1] if len(tokens) > 1 else ""
            if tokens[0] in ("frontend", "backend", "listen") and not name:
                raise UsageError(f"{at}: '{tokens[0]}' needs a name")
            sections.append(_Section(tokens[0], name, at))
        elif not sections:
            raise UsageError(f"{at}: unknown keyword '{tokens[0]}' out of section: start with global, defaults, "
                             "frontend, backend or listen")
        else:
            sections[-1].lines.append((tokens, at))
    defaults = _bind_defaults([s for s in sections if s.keyword == "global"])
    notes = [f"{s.at}: {s.keyword} {s.name}".rstrip() + ": not read" for s in sections
             if s.keyword not in ("global", "defaults", "frontend", "backend", "listen")]
    mode = "tcp"  # HAProxy's own default
    frontends: list[Frontend] = []
    backends: list[Backend] = []
    for section in sections:
        if section.keyword == "defaults":
            mode = next((t[1] for t, _ in section.lines if t[0] == "mode" and len(t) > 1), mode)
        elif section.keyword in ("frontend", "listen"):
            frontend = _frontend(section, mode, defaults)
            if frontend.mode == "tcp":
                frontends.append(frontend)
            else:
                notes.append(f"{section.at}: {section.keyword} {section.name}: mode {frontend.mode}, not DICOM: "
                             "not read")
        elif section.keyword == "backend":
            backends.append(_backend(section, mode))
    names = [b.name for b in backends] + [f.name for f in frontends if f.section == "listen"]
    for frontend in frontends:
        for target, at in [*((r.backend, r.at) for r in frontend.sni_routes),
                           *((frontend.default_backend, frontend.at) for _ in [0] if frontend.default_backend)]:
            if target not in names and "%[" not in str(target):
                raise UsageError(f"{at}: backend {target!r} is not defined: HAProxy refuses the configuration")
    seen: set[str] = set()
    for backend in backends:
        if backend.name in seen:
            raise UsageError(f"{backend.at}: backend {backend.name} is defined twice: HAProxy refuses it")
        seen.add(backend.name)
    return HaproxyConfig(file=path, frontends=tuple(frontends), backends=tuple(backends), not_reproduced=tuple(notes))


def _bind_defaults(globals_: list[_Section]) -> dict[str, str]:
    """ssl-default-bind-* of the global section: what an ssl bind without its own setting uses."""
    found: dict[str, str] = {}
    for section in globals_:
        for tokens, at in section.lines:
            keyword, args = tokens[0], tokens[1:]
            if keyword in ("ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites"):
                if len(args) != 1:
                    raise UsageError(f"{at}: '{keyword}' expects one cipher string")
                found[keyword.removeprefix("ssl-default-bind-")] = args[0]
            elif keyword == "ssl-default-bind-options":
                for i, option in enumerate(args):
                    if option in ("ssl-min-ver", "ssl-max-ver"):
                        found[option] = _version(args[i + 1] if i + 1 < len(args) else "", option, at)
            elif keyword in ("crt-base", "ca-base") and args:
                found[keyword] = args[0]
    return found


def _version(value: str, keyword: str, at: At) -> str:
    if value not in TLS_VERSIONS:
        raise UsageError(f"{at}: '{keyword}' expects one of {', '.join(TLS_VERSIONS)}, not {value!r}")
    return value


def _frontend(section: _Section, mode: str, defaults: dict[str, str]) -> Frontend:
    binds: list[Bind] = []
    routes: list[SniRoute] = []
    servers: list[Server] = []
    acls: dict[str, list[tuple[str, tuple[str, ...], At]]] = {}
    notes: list[str] = []
    default_backend = None
    for tokens, at in section.lines:
        keyword, args = tokens[0], tokens[1:]
        if keyword == "bind":
            binds += _binds(args, at, defaults)
        elif keyword == "mode":
            if not args or args[0] not in ("tcp", "http", "log", "spop"):
                raise UsageError(f"{at}: 'mode' expects tcp or http")
            mode = args[0]
        elif keyword == "acl":
            if len(args) < 2:
                raise UsageError(f"{at}: 'acl' expects a name and a criterion")
            acls.setdefault(args[0], []).append((args[1], _acl_values(args[2:], at), at))
        elif keyword == "use_backend":
            if not args:
                raise UsageError(f"{at}: 'use_backend' expects a backend name")
            route, note = _route(args, acls, at)
            routes.append(route)
            notes += [note] if note else []
        elif keyword == "default_backend":
            if len(args) != 1:
                raise UsageError(f"{at}: 'default_backend' expects one backend name")
            default_backend = args[0]
        elif keyword == "server" and section.keyword == "listen":
            servers.append(_server(args, at))
        else:
            notes.append(f"{at}: {' '.join(tokens)}: not reproduced")
    return Frontend(name=section.name, section=section.keyword, mode=mode, binds=tuple(binds),  # type: ignore[arg-type]
                    sni_routes=tuple(routes), default_backend=default_backend, servers=tuple(servers),
                    at=section.at, not_reproduced=tuple(notes))


def _acl_values(args: list[str], at: At) -> tuple[str, ...]:
    """An ACL's patterns, its flags (-i, -m METHOD, -f FILE, --) left out; a pattern file cannot be read here."""
    values: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--":
            values += args[i + 1:]
            break
        if args[i] in ("-m", "-f", "-M"):
            if i + 1 >= len(args):
                raise UsageError(f"{at}: ACL flag '{args[i]}' expects an argument")
            if args[i] == "-f":
                values.append(f"@file:{args[i + 1]}")
            i += 2
            continue
        if args[i] in ("-i", "-n", "-u"):
            i += 1
            continue
        values.append(args[i])
        i += 1
    return tuple(values)


def _route(args: list[str], acls: dict[str, list[tuple[str, tuple[str, ...], At]]],
           at: At) -> tuple[SniRoute, str | None]:
    """use_backend NAME [if|unless CONDITION]: the SNI names it answers, when the condition is a plain OR of SNI
    matches (named ACLs or anonymous `{ req.ssl_sni ... }`); anything else routes no name and is noted."""
    backend, rest = args[0], args[1:]
    if not rest:
        return SniRoute(server_names=(), backend=backend, at=at), None
    if rest[0] not in ("if", "unless") or len(rest) < 2:
        raise UsageError(f"{at}: 'use_backend {backend}' expects 'if' or 'unless' and a condition")
    condition = rest[1:]
    if rest[0] == "unless":
        return SniRoute(server_names=(), backend=backend, at=at), f"{at}: use_backend … unless: not reproduced"
    names: list[str] = []
    terms, i = [], 0
    while i < len(condition):
        if condition[i] == "{":
            end = condition.index("}", i) if "}" in condition[i:] else -1
            if end < 0:
                raise UsageError(f"{at}: an anonymous ACL '{{' is never closed with '}}'")
            terms.append(("anonymous", condition[i + 1:end]))
            i = end + 1
        elif condition[i] in ("||", "or"):
            i += 1
        else:
            terms.append(("named", [condition[i]]))
            i += 1
    understood = True
    for kind, term in terms:
        if kind == "anonymous":
            if not term:
                raise UsageError(f"{at}: an anonymous ACL '{{ }}' is empty")
            fetch, values = term[0], _acl_values(term[1:], at)
            understood &= fetch in SNI_FETCHES
            names += values if fetch in SNI_FETCHES else []
        elif term[0].startswith("!") or term[0] not in acls:
            if term[0].lstrip("!") not in acls:
                raise UsageError(f"{at}: ACL {term[0].lstrip('!')!r} is not declared in this section")
            understood = False
        else:
            for fetch, values, _ in acls[term[0]]:
                understood &= fetch in SNI_FETCHES
                names += values if fetch in SNI_FETCHES else []
    if sum(t in ("||", "or") for t in condition) != len(terms) - 1:
        understood = False  # terms side by side are ANDed
    note = None if understood and names else f"{at}: use_backend {' '.join(args)}: only SNI matches joined by " \
                                             "|| are reproduced"
    return SniRoute(server_names=tuple(n for n in names if not n.startswith("@file:")), backend=backend,
                    at=at), note


_ADDRESS = re.compile(r"^(?:(?:ipv4@|ipv6@|tcp@|tcp4@|tcp6@)?(?P<address>\[[^\]]*\]|[^:\[\]]*|[0-9a-fA-F:]*::?)?:)?"
                      r"(?P<port>\d+)(?:-(?P<last>\d+))?$")


def _port_range(spec: str, at: At) -> tuple[str | None, list[int]]:
    found = _ADDRESS.match(spec)
    if found is None:
        raise UsageError(f"{at}: {spec!r}: not an [ADDRESS]:PORT HAProxy listens on")
    first, last = int(found["port"]), int(found["last"] or found["port"])
    if not 0 < first <= last < 65536:
        raise UsageError(f"{at}: {spec!r}: the port must be 1-65535")
    address = (found["address"] or "").strip("[]")
    return (None if address in ("", "*", "0.0.0.0", "::") else address), list(range(first, last + 1))


def _binds(args: list[str], at: At, defaults: dict[str, str]) -> list[Bind]:
    if not args:
        raise UsageError(f"{at}: 'bind' expects an address")
    specs, params = args[0].split(","), args[1:]
    fields: dict[str, Any] = {}
    certificates: list[str] = []
    other: list[str] = []
    i = 0
    while i < len(params):
        keyword = params[i]
        if keyword in BIND_ARGUMENTS:
            if i + 1 >= len(params):
                raise UsageError(f"{at}: bind: '{keyword}' expects an argument")
            value = params[i + 1]
            if keyword in ("crt", "crt-list", "default-crt"):
                base = defaults.get("crt-base")
                certificates.append(f"{base.rstrip('/')}/{value}" if base and not value.startswith("/") else value)
            elif keyword == "verify":
                if value not in ("none", "optional", "required"):
                    raise UsageError(f"{at}: bind: 'verify' expects none, optional or required, not {value!r}")
                fields["verify"] = value
            elif keyword in ("ssl-min-ver", "ssl-max-ver"):
                fields[keyword.replace("ssl-", "").replace("-ver", "_version")] = _version(value, keyword, at)
            elif keyword in ("ca-file", "crl-file"):
                base = defaults.get("ca-base")
                fields[keyword.replace("-", "_")] = f"{base.rstrip('/')}/{value}" if base and not value.startswith(
                    "/") else value
            elif keyword in ("ciphers", "ciphersuites"):
                fields[keyword] = value
            elif keyword == "alpn":
                fields["alpn"] = tuple(value.split(","))
            else:
                other += [keyword, value]
            i += 2
            continue
        if keyword == "ssl":
            fields["ssl"] = True
        elif keyword == "strict-sni":
            fields["strict_sni"] = True
        else:
            other.append(keyword)
        i += 1
    if fields.get("ssl"):
        if not certificates:
            raise UsageError(f"{at}: bind {args[0]} ssl: no certificate (crt or crt-list): HAProxy refuses it")
        for key, name in (("ciphers", "ciphers"), ("ciphersuites", "ciphersuites"), ("min_version", "ssl-min-ver"),
                          ("max_version", "ssl-max-ver")):
            if key not in fields and name in defaults:
                fields[key] = defaults[name]
    binds = []
    for spec in specs:
        if spec.startswith(("unix@", "/", "abns@", "fd@", "sockpair@", "quic4@", "quic6@")):
            raise UsageError(f"{at}: bind {spec}: not a TCP address; the tool reproduces TCP listeners only")
        address, ports = _port_range(spec, at)
        binds += [Bind.model_validate({**fields, "address": address, "port": port, "other": tuple(other), "at": at,
                                       "certificates": tuple(certificates)}) for port in ports]
    return binds


def _server(args: list[str], at: At) -> Server:
    if len(args) < 2:
        raise UsageError(f"{at}: 'server' expects a name and an address")
    name, address = args[0], args[1]
    host, _, port = address.rpartition(":") if ":" in address and not address.endswith("]") else (address, "", "")
    if port and not port.isdigit() or port and not 0 < int(port) < 65536:
        raise UsageError(f"{at}: server {name} {address}: the port must be a number 1-65535")
    return Server(name=name, address=(host or address).strip("[]"), port=int(port) if port else None,
                  ssl="ssl" in args[2:], at=at)


def _backend(section: _Section, mode: str) -> Backend:
    servers = []
    notes = []
    for tokens, at in section.lines:
        if tokens[0] == "server":
            servers.append(_server(tokens[1:], at))
        elif tokens[0] == "mode" and len(tokens) > 1:
            mode = tokens[1]
        else:
            notes.append(f"{at}: {' '.join(tokens)}: not reproduced")
    return Backend(name=section.name, mode=mode, servers=tuple(servers), at=section.at, not_reproduced=tuple(notes))
