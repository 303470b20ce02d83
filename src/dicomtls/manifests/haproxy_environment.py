"""An HAProxy configuration (read by manifests.haproxy) as environments: each TCP `frontend`/`listen` that terminates
TLS (`bind … ssl crt …`) or routes TLS by SNI (`req.ssl_sni` ACLs → `use_backend`, passed through) becomes one
haproxy environment with the user's bind settings as written (`verify`, `ciphers`, `ciphersuites`, `ssl-min-ver`,
`ssl-max-ver`, `strict-sni`); the certificates and CA files it names are replaced by the generated PKI and every
backend's servers by the environment's Orthanc (one per site where routes reach two or more backends)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomtls.components.haproxy import Haproxy
from dicomtls.errors import UsageError
from dicomtls.manifests.haproxy import BIND_ARGUMENTS, Bind, Frontend, HaproxyConfig, read_haproxy
from dicomtls.manifests.located import shown
from dicomtls.manifests.project import project_files, project_images, project_notes, project_orthanc
from dicomtls.manifests.recognition import FileKind
from dicomtls.manifests.translation import Translation, sites_of
from dicomtls.manifests.translators import translates

if TYPE_CHECKING:
    from dicomtls.manifests.deployment import Deployment

RESOURCE = "HAProxyFrontend"
"""The resource kind of an environment read from haproxy.cfg: "HAProxyFrontend/<frontend or listen name>"."""

_VERSIONS = {"TLSv1.0": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}


@translates(FileKind.HAPROXY)
def translate_haproxy_file(path: Path, deployment: Deployment | None) -> list[Translation]:
    """The environments of the haproxy.cfg in ``path`` (read through ``deployment``, with its Orthanc, when a
    compose project mounts it)."""
    config = deployment.proxy_config if deployment is not None else None
    if not isinstance(config, HaproxyConfig):
        config = read_haproxy(path)
    translations = []
    notes: tuple[str, ...]
    for t in translate_haproxy(str(shown(path)), config):
        server, notes = t.server, ()
        if deployment is not None:
            server, notes = project_orthanc(deployment, not t.proxy.get("passthrough", False), "haproxy.cfg")
        translations.append(replace(t, server=server, unhonoured=(*project_notes(deployment), *t.unhonoured, *notes),
                                    files=project_files(config.file, deployment), images=project_images(deployment)))
    return translations


def translate_haproxy(where: str, config: HaproxyConfig) -> list[Translation]:
    """One Translation per frontend that carries TLS; frontends that carry none are listed, not run."""
    skipped = list(config.not_reproduced)
    translations = []
    for frontend in config.frontends:
        if frontend.terminates_tls:
            translations.append(_terminating(frontend, config))
        elif frontend.sni_routes and any(r.server_names for r in frontend.sni_routes):
            translations.append(_passthrough(frontend, config))
        else:
            skipped.append(f"{frontend.at}: {frontend.section} {frontend.name}: no `bind … ssl` and no req.ssl_sni "
                           "routing, so it carries no DICOM TLS: not run")
    return [Translation(t.resource, t.proxy, t.server, t.server_names, (*t.unhonoured, *skipped), t.sites)
            for t in translations]


def _terminating(frontend: Frontend, config: HaproxyConfig) -> Translation:
    ssl = [b for b in frontend.binds if b.ssl]
    bind, notes = ssl[0], list(frontend.not_reproduced)
    notes += [f"{b.at}: bind port {b.port} without ssl: not reproduced (plain TCP beside the TLS bind)"
              for b in frontend.binds if not b.ssl]
    notes += [f"{b.at}: bind port {b.port}: only the first ssl bind ({bind.at}) is reproduced"
              for b in ssl[1:] if _tls_settings(b) != _tls_settings(bind)]
    verify = bind.verify or "none"  # HAProxy requests no client certificate unless told to
    if verify != "none" and bind.ca_file is None:
        raise UsageError(f"{bind.at}: bind … verify {verify} without ca-file: HAProxy refuses it (add ca-file with "
                         "the CA that issues client certificates)")
    options: dict[str, Any] = {"kind": Haproxy.kind, "client_cert": verify, "sni": "named" if bind.strict_sni else "any"}
    for field in ("ciphers", "ciphersuites"):
        if getattr(bind, field):
            options[field] = getattr(bind, field)
    for field in ("min_version", "max_version"):
        version = getattr(bind, field)
        if version in _VERSIONS:
            options[field] = _VERSIONS[version]
        elif version is not None:
            notes.append(f"{bind.at}: ssl-{field.split('_')[0]}-ver {version}: not reproduced (this build of "
                         "HAProxy has no SSLv3)")
    if bind.crl_file:
        notes.append(f"{bind.at}: crl-file {bind.crl_file}: not reproduced (the generated PKI revokes nothing)")
    if bind.alpn:
        notes.append(f"{bind.at}: alpn {','.join(bind.alpn)}: not reproduced")
    notes += [f"{bind.at}: bind … {word}: not reproduced" for word in _words(bind.other)]
    routes, names, more = _routes(frontend, config)
    _, sites = sites_of(routes)
    return Translation(f"{RESOURCE}/{frontend.name}", options, {"kind": "orthanc", "tls": False},
                       tuple(dict.fromkeys(n for n in names if "*" not in n)), (*notes, *more), sites)


_SNI_INSPECTION = ("tcp-request inspect-delay", "req_ssl_hello_type", "req.ssl_hello_type")
"""What a passthrough frontend needs to read the ClientHello: the environment's own config does the same."""


def _passthrough(frontend: Frontend, config: HaproxyConfig) -> Translation:
    notes = [n for n in frontend.not_reproduced if not any(s in n for s in _SNI_INSPECTION)]
    notes += [f"{b.at}: bind … {word}: not reproduced" for b in frontend.binds for word in _words(b.other)]
    routes, names, more = _routes(frontend, config)
    _, sites = sites_of(routes)
    options = {"kind": Haproxy.kind, "passthrough": True, "sni": "any" if _default(frontend) else "named"}
    return Translation(f"{RESOURCE}/{frontend.name}", options, {"kind": "orthanc", "tls": True,
                                                                  "client_cert": "optional"},
                       tuple(dict.fromkeys(n for n in names if "*" not in n)), (*notes, *more), sites)


def _default(frontend: Frontend) -> str | None:
    """Where a connection no SNI route takes goes: default_backend, a `listen` section's own servers, or a
    use_backend without a condition."""
    unconditional = next((r.backend for r in frontend.sni_routes if not r.server_names), None)
    return frontend.default_backend or unconditional or (frontend.name if frontend.servers else None)


def _routes(frontend: Frontend, config: HaproxyConfig) -> tuple[list[tuple[tuple[str, ...], str]], list[str],
                                                                list[str]]:
    """(names, backend) per route, a catch-all ("*",) for the default; every name routed; and what the backends
    do that is not reproduced (their servers all become the environment's Orthanc)."""
    routes = [(r.server_names, r.backend) for r in frontend.sni_routes if r.server_names]
    if (default := _default(frontend)) is not None:
        routes.append((("*",), default))
    notes: list[str] = []
    backends = {b.name: b for b in config.backends}
    for name in dict.fromkeys(backend for _, backend in routes):
        backend = backends.get(name)
        servers = backend.servers if backend is not None else frontend.servers
        at = backend.at if backend is not None else frontend.at
        if backend is not None:
            notes += backend.not_reproduced
        if not servers:
            notes.append(f"{at}: backend {name} has no server: reproduced as the environment's Orthanc anyway")
        elif len(servers) > 1:
            notes.append(f"{at}: backend {name}: balanced over {len(servers)} servers; all of it goes to one Orthanc")
        notes += [f"{s.at}: server {s.name} {s.address} ssl: HAProxy encrypts again towards it: not reproduced "
                  "(the environment's Orthanc takes plain DICOM from the proxy)" for s in servers if s.ssl]
    names = [n for answered, _ in routes for n in answered]
    return routes, names, notes


def _tls_settings(bind: Bind) -> tuple[Any, ...]:
    return (bind.verify, bind.ca_file, bind.ciphers, bind.ciphersuites, bind.min_version, bind.max_version,
            bind.strict_sni)


def _words(other: tuple[str, ...]) -> list[str]:
    """The bind's other parameters as they were written, keyword and value together where it takes one."""
    shown: list[str] = []
    for word in other:
        if shown and shown[-1] in BIND_ARGUMENTS:
            shown[-1] = f"{shown[-1]} {word}"
        else:
            shown.append(word)
    return shown
