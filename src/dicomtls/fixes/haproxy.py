"""A candidate's edits on the user's haproxy.cfg: the `bind … ssl` lines of the frontend the environment came from
(`verify`, `ssl-min-ver`, `ciphers`), or a `default_backend` line for a catch-all route. Only the words edited
change: the rest of each line (quoting, spacing, comments) stays as the user wrote it."""

from __future__ import annotations

import re
from pathlib import Path

from dicomtls.fixes.candidates import Edit, NotApplicable, Setting
from dicomtls.manifests.haproxy import Frontend, read_haproxy
from dicomtls.manifests.recognition import FileKind, classify

SETTINGS: dict[Setting, str | None] = {"client-cert-optional": None, "min-version": None, "add-cipher": None,
                                       "catch-all-route": None}


def apply(files: list[Path], resource: str, edits: tuple[Edit, ...]) -> dict[Path, str]:
    """The new text of the haproxy.cfg holding ``resource`` ("HAProxyFrontend/NAME") with the edits made."""
    name = resource.split("/", 1)[1]
    for path in files:
        config = read_haproxy(path) if path.is_file() and classify(path) is FileKind.HAPROXY else None
        frontend = next((f for f in config.frontends if f.name == name), None) if config is not None else None
        if frontend is not None:
            lines = path.read_text().splitlines(keepends=True)
            for edit in edits:
                _edit(lines, frontend, edit)
            return {path: "".join(lines)}
    raise NotApplicable(f"no frontend {name} in the HAProxy configurations")


def _edit(lines: list[str], frontend: Frontend, edit: Edit) -> None:
    if edit.setting == "catch-all-route":
        _catch_all(lines, frontend)
        return
    binds = [b for b in frontend.binds if b.ssl]
    if not binds:
        raise NotApplicable(f"{frontend.section} {frontend.name} passes TLS through: the server behind it sets "
                            f"{edit.setting}")
    for line in dict.fromkeys(b.at.line for b in binds if b.at.line is not None):
        text = lines[line - 1]
        if edit.setting == "client-cert-optional":
            if re.search(r"\sverify\s+optional\b", text):
                raise NotApplicable("the bind already verifies client certificates only when sent (verify optional)")
            text = _set(text, "verify", "optional")
        elif edit.setting == "min-version":
            text = _set(text, "ssl-min-ver", f"TLSv{edit.value}")
        elif edit.setting == "add-cipher":
            text = _add_cipher(text, edit.value, next(b for b in binds if b.at.line == line).ciphers)
        else:
            raise NotApplicable(f"HAProxy's configuration has no {edit.setting} here")
        lines[line - 1] = text


def _split_comment(line: str) -> tuple[str, str]:
    """The line's words and its trailing comment (with the blanks before it, and the line ending)."""
    ending = line[len(line.rstrip("\r\n")):]
    body = line[:len(line) - len(ending)]
    found = re.search(r"\s+#", body)
    if found is None:
        stripped = body.rstrip()
        return stripped, body[len(stripped):] + ending
    return body[:found.start()], body[found.start():] + ending


def _set(line: str, keyword: str, value: str) -> str:
    """``keyword VALUE`` on the bind line: the value replaced where the keyword is, else appended."""
    code, rest = _split_comment(line)
    pattern = re.compile(rf"(\s{re.escape(keyword)}\s+)(\"[^\"]*\"|'[^']*'|\S+)")
    if pattern.search(code):
        return pattern.sub(lambda m: m[1] + value, code, count=1) + rest
    return f"{code} {keyword} {value}{rest}"


def _add_cipher(line: str, suite: str, effective: str | None) -> str:
    """The bind's cipher string with ``suite`` appended: its own `ciphers`, or the global ssl-default-bind-ciphers
    it inherits (then written on the bind, so the other frontends keep theirs)."""
    if effective is None:
        raise NotApplicable("the bind has no cipher string (HAProxy's default): nothing to add the suite to")
    if suite in effective.split(":"):
        raise NotApplicable(f"the bind's ciphers already list {suite}")
    return _set(line, "ciphers", f"{effective}:{suite}")


def _catch_all(lines: list[str], frontend: Frontend) -> None:
    """Every client routed: `strict-sni` dropped from the bind lines (a handshake without a matching name then
    gets the first certificate), and a `default_backend` after the last routing line when there is none (the
    backend the first route names)."""
    strict = [b.at.line for b in frontend.binds if b.strict_sni and b.at.line is not None]
    for line in dict.fromkeys(strict):
        code, rest = _split_comment(lines[line - 1])
        lines[line - 1] = re.sub(r"\s+strict-sni(?=\s|$)", "", code) + rest
    if frontend.default_backend is not None or any(not r.server_names for r in frontend.sni_routes) \
            or frontend.servers:
        if not strict:
            raise NotApplicable(f"{frontend.section} {frontend.name} already takes every client (a default backend, "
                                "no strict-sni)")
        return
    if not frontend.sni_routes:
        raise NotApplicable(f"{frontend.section} {frontend.name} routes nothing by name")
    last = max(r.at.line for r in frontend.sni_routes if r.at.line is not None)
    indent = re.match(r"\s*", lines[last - 1])
    if not lines[last - 1].endswith("\n"):
        lines[last - 1] += "\n"
    lines.insert(last, f"{indent[0] if indent else '    '}default_backend {frontend.sni_routes[0].backend}\n")
