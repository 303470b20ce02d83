"""A candidate's edits on the user's nginx.conf: the stream server's `ssl_verify_client`, `ssl_protocols` and
`ssl_ciphers`, and the `default` entry of the `map $ssl_preread_server_name` an SNI-routing server reads.

Each directive is changed where the reader found it set (the server, or the `stream {}` block it inherits from,
possibly an included file), in the text itself: crossplane gives the line, and only the directive's arguments
are rewritten, so comments, indentation and every other line stay as the user wrote them. A directive the
configuration does not set is added to the server, after its last `listen`, indented like it."""

from __future__ import annotations

import re
from pathlib import Path

from dicomtls.fixes.candidates import Edit, NotApplicable, Setting
from dicomtls.manifests.deployment import read_deployment
from dicomtls.manifests.located import At
from dicomtls.manifests.nginx import NginxServer
from dicomtls.manifests.nginx_environment import servers_by_resource
from dicomtls.manifests.recognition import FileKind, classify

SETTINGS: dict[Setting, str | None] = {"add-cipher": None, "min-version": None, "client-cert-optional": None,
                                       "catch-all-route": None}
"""The settings an nginx stream server has (None: reproduced, so the edit can be proven)."""

NGINX_DEFAULT_CIPHERS = "HIGH:!aNULL:!MD5"
"""ssl_ciphers when a configuration sets none (nginx's documentation of the stream ssl module)."""
_PROTOCOLS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_DEFAULT_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
"""ssl_protocols spelled out when a configuration sets none: nginx's default since 1.27.3, the highest a fix
keeps."""


def _protocol(version: str) -> str:
    """"1.0" -> "TLSv1", "1.2" -> "TLSv1.2": nginx's names."""
    return "TLSv1" if version in ("1", "1.0") else f"TLSv{version}"


def protocols_from(minimum: str, current: tuple[str, ...] | None) -> tuple[str, ...]:
    """Every TLS version from ``minimum`` up to the highest one ``current`` enables (TLS 1.3 when unset)."""
    lowest = _PROTOCOLS.index(_protocol(minimum))
    known = [p for p in (current or _DEFAULT_PROTOCOLS) if p in _PROTOCOLS]
    highest = max([_PROTOCOLS.index(p) for p in known] + [lowest])
    return _PROTOCOLS[lowest:highest + 1]


def with_cipher(current: str | None, suite: str) -> str:
    """The cipher string with ``suite`` added at its end (nginx's default string when unset)."""
    base = current or NGINX_DEFAULT_CIPHERS
    if suite in base.split(":"):
        raise NotApplicable(f"ssl_ciphers already names {suite}")
    return f"{base}:{suite}"


class _Texts:
    """The files being edited, by path; an edit rewrites one directive's arguments or adds one line."""

    def __init__(self, files: list[Path]) -> None:
        self.files = {f.resolve(): f for f in files}
        self.texts: dict[Path, str] = {}
        self.added: dict[Path, list[int]] = {}  # the lines a line was added after, as the reader numbered them

    def _line(self, path: Path, line: int) -> int:
        """The reader's ``line`` in the text as edited so far."""
        return line + sum(1 for after in self.added.get(path, []) if after < line)

    def _text(self, at: At) -> tuple[Path, str]:
        path = self.files.get(at.file.resolve())
        if path is None:
            raise NotApplicable(f"{at} is in a file outside the configuration read: edit it there")
        return path, self.texts.setdefault(path, path.read_text())

    def _line_start(self, text: str, line: int) -> int:
        return sum(len(t) for t in text.splitlines(keepends=True)[:line - 1])

    def set_arguments(self, at: At, directive: str, arguments: str) -> None:
        """The statement ``directive`` that starts on ``at``'s line gets ``arguments`` (quoted as it was)."""
        assert at.line is not None  # crossplane gives every statement's line
        path, text = self._text(at)
        start = self._line_start(text, self._line(path, at.line))
        found = re.compile(rf"\b{re.escape(directive)}(\s+)([^;]*?)(\s*;)").search(text, start)
        if found is None:
            raise NotApplicable(f"{at}: no `{directive} ...;` found on that line")
        quote = found.group(2)[:1] if found.group(2)[:1] in ("'", '"') else ""
        self.texts[path] = (text[:found.start(2)] + f"{quote}{arguments}{quote}" + text[found.end(2):])

    def add_line_after(self, at: At, statement: str) -> None:
        """``statement`` on a line of its own after ``at``'s line, indented like it."""
        assert at.line is not None
        path, text = self._text(at)
        line = self._line(path, at.line)
        lines = text.splitlines(keepends=True)
        previous = lines[line - 1]
        indent = previous[:len(previous) - len(previous.lstrip())]
        ending = "" if previous.endswith("\n") else "\n"
        lines[line - 1] = previous + ending
        lines.insert(line, f"{indent}{statement}\n")
        self.texts[path] = "".join(lines)
        self.added.setdefault(path, []).append(at.line)

    def changed(self) -> dict[Path, str]:
        return {path: text for path, text in self.texts.items() if text != path.read_text()}


def _set_or_add(texts: _Texts, server: NginxServer, directive: str, arguments: str) -> None:
    if directive in server.settings:
        texts.set_arguments(server.settings[directive], directive, arguments)
    else:
        texts.add_line_after(server.listen[-1].at, f"{directive} {arguments};")


def _apply(texts: _Texts, server: NginxServer, edit: Edit) -> None:
    passthrough = server.preread and not server.terminates_tls
    if passthrough and edit.setting != "catch-all-route":
        raise NotApplicable("the server passes TLS through (ssl_preread): the server behind it sets TLS")
    if edit.setting == "client-cert-optional":
        if server.verify_client != "on":
            raise NotApplicable(f"ssl_verify_client is {server.verify_client or 'off'}: no client certificate is "
                                "required")
        texts.set_arguments(server.settings["ssl_verify_client"], "ssl_verify_client", "optional")
    elif edit.setting == "min-version":
        _set_or_add(texts, server, "ssl_protocols", " ".join(protocols_from(edit.value, server.protocols)))
    elif edit.setting == "add-cipher":
        _set_or_add(texts, server, "ssl_ciphers", with_cipher(server.ciphers, edit.value))
    elif edit.setting == "catch-all-route":
        if not passthrough or not server.sni_routes:
            raise NotApplicable("the server terminates TLS and routes every client alike: no SNI route to widen")
        routed = [r for r in server.sni_routes if r.destination.target not in ("", '""')]
        default = next((r for r in server.sni_routes if r.server_name == "default"), None)
        if not routed or (default is not None and default in routed):
            raise NotApplicable("the map already sends clients without a listed name somewhere (its default entry)"
                                if routed else "the map routes no name anywhere")
        if default is not None:
            texts.set_arguments(default.at, "default", routed[0].destination.target)
        else:
            texts.add_line_after(server.sni_routes[-1].at, f"default {routed[0].destination.target};")
    else:
        raise NotApplicable(f"a stream server has no {edit.setting} setting")


def _server(files: list[Path], resource: str) -> NginxServer:
    """The stream server ``resource`` names, read as its environment was: through its compose project when one is
    among ``files``."""
    kinds = {f: classify(f) for f in files}
    compose = next((f for f, k in kinds.items() if k is FileKind.COMPOSE), None)
    deployment = read_deployment(compose) if compose is not None else None  # its .env travels among the files
    config = (deployment.proxy_config.file if deployment is not None and deployment.proxy_config is not None
              else next(f for f, k in kinds.items() if k is FileKind.NGINX))
    servers = servers_by_resource(config, deployment)
    bare = f"NginxServer/{resource.rsplit('/', 1)[-1]}"  # "NginxServer/default/x" when names collided
    server = servers.get(resource) or servers.get(bare)
    assert server is not None, f"no {resource} in {config}"
    return server


def apply(files: list[Path], resource: str, edits: tuple[Edit, ...]) -> dict[Path, str]:
    """The new texts of the files the edits change; ``resource`` is "NginxServer/<name>[-<port>]"."""
    server = _server(files, resource)
    texts = _Texts(files)
    for edit in edits:
        _apply(texts, server, edit)
    return texts.changed()
