"""A user's nginx.conf as environments: every `stream {}` server that carries DICOM TLS runs as the nginx component
with the user's ssl_* directives as written (protocols, ciphers, client verification), or, with `ssl_preread` and a
`map $ssl_preread_server_name`, as SNI passthrough to one Orthanc per upstream. Certificate, key and CA files are
replaced by the generated PKI and every upstream by the environment's Orthanc; an `http {}` HTTPS server proxying to
the same Orthanc becomes the environment's web route (DICOMweb cells). Whatever else a server sets is an unhonoured line with its file and line."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomtls.manifests.nginx import NginxConfig, NginxServer, read_nginx
from dicomtls.manifests.project import project_files, project_images, project_notes, project_orthanc
from dicomtls.manifests.recognition import FileKind
from dicomtls.manifests.translation import Translation, sites_of
from dicomtls.manifests.translators import translates

if TYPE_CHECKING:
    from dicomtls.manifests.deployment import Deployment

KIND = "nginx"
_CLIENT_CERT = {None: "none", "off": "none", "optional": "optional", "optional_no_ca": "optional", "on": "required"}
"""ssl_verify_client -> the component's client_cert."""
_CATCH_ALL = "*"  # a name standing for the map's `default` entry (sites_of puts catch-all routes first)


@translates(FileKind.NGINX)
def translate_nginx(path: Path, deployment: Deployment | None) -> list[Translation]:
    """One Translation per stream server carrying DICOM TLS in ``path`` (read through ``deployment``'s mounts and
    with its Orthanc when a compose project mounts it); none when it has no such server."""
    config = config_of(path, deployment)
    certified = {c: s.server_names for s in config.http_servers for c in s.certificates}
    files = project_files(config.file, deployment, config.included)
    translations = []
    for resource, server in servers_by_resource(path, deployment, config).items():
        translation = _translate_server(server, resource, deployment)
        if not translation.server_names:  # the names its certificate serves on the HTTPS side, if any
            names = [n for c in server.certificates for n in certified.get(c, ()) if _is_name(n)]
            translation = replace(translation, server_names=tuple(dict.fromkeys(names)))
        translation = _with_web_route(translation, server, config.http_servers)
        translations.append(replace(translation, unhonoured=(*translation.unhonoured, *config.not_reproduced),
                                    files=files, images=project_images(deployment)))
    return translations


def _with_web_route(translation: Translation, server: NginxServer, https: tuple[NginxServer, ...]) -> Translation:
    """The DICOM server's Orthanc, served over HTTPS by an `http {}` server too (a location whose proxy_pass names
    the same host as the stream server's), as the environment's web route (``web: true``, ``web_path``), with
    Orthanc's DICOMweb plugin behind it: the seed write-up's `curl https://…/app/explorer.html`, as cells. Every
    other HTTPS server and location is said not to be reproduced."""
    dicom_host = _host(server.proxy_pass.servers[0]) if server.proxy_pass and server.proxy_pass.servers else None
    chosen = next(((s, loc) for s in https for loc in s.locations if dicom_host and loc.proxy_pass
                   and _host(loc.proxy_pass) == dicom_host and (loc.strips or loc.path == "/")), None)
    notes = []
    for other in https:
        named = f"{' (' + ' '.join(other.server_names) + ')' if other.server_names else ''}"
        where = f"{other.at}: http server on port {', '.join(map(str, other.ports))} with ssl{named}"
        if chosen is None or other is not chosen[0]:
            notes.append(f"{where}: not reproduced (none of its locations proxies to the DICOM server's host"
                         f"{' ' + dicom_host if dicom_host else ''})")
            continue
        location = chosen[1]
        notes.append(f"{location.at}: location {location.path} -> {location.proxy_pass}: reproduced as the "
                     "environment's web route (the DICOM server's certificate and ssl_* settings, to its Orthanc's "
                     "REST API with the DICOMweb plugin)")
        notes += [f"{loc.at}: location {loc.path}{' -> ' + loc.proxy_pass if loc.proxy_pass else ''}: not reproduced"
                  for loc in other.locations if loc is not location]
    if chosen is None or not server.terminates_tls or server.preread:
        return replace(translation, unhonoured=(*translation.unhonoured, *notes))
    return replace(translation, proxy={**translation.proxy, "web": True, "web_path": chosen[1].path},
                   server={**translation.server, "dicomweb_plugin": True}, unhonoured=(*translation.unhonoured, *notes))


def _host(server: str) -> str:
    """The host of host:port (an address as written in proxy_pass or an upstream's server)."""
    return re.sub(r":\d+$", "", server)


def config_of(path: Path, deployment: Deployment | None) -> NginxConfig:
    """The nginx configuration in ``path``, as the compose project that mounts it read it (its includes through the
    project's mounts)."""
    config = deployment.proxy_config if deployment is not None else None
    return config if isinstance(config, NginxConfig) else read_nginx(path)


def servers_by_resource(path: Path, deployment: Deployment | None,
                        config: NginxConfig | None = None) -> dict[str, NginxServer]:
    """Each stream server carrying DICOM TLS by the resource that names its environment: "NginxServer/<the compose
    service, or the file's stem>", with "-<port>" when there are several."""
    config = config or config_of(path, deployment)
    name = deployment.proxy.name if deployment is not None and deployment.proxy is not None else path.stem
    servers = config.stream_servers
    return {f"NginxServer/{name}" + (f"-{server.ports[0]}" if len(servers) > 1 and server.ports else ""): server
            for server in servers}


def _translate_server(server: NginxServer, resource: str, deployment: Deployment | None) -> Translation:
    notes = list(server.not_reproduced)
    notes += [f"{listen.at}: listen {listen.port} {' '.join(listen.parameters)}: parameters not reproduced"
              for listen in server.listen if listen.parameters]
    notes += [f"{server.settings[name]}: {name}: not reproduced" for name in ("ssl_verify_depth",
                                                                               "ssl_prefer_server_ciphers", "ssl_crl")
              if name in server.settings]
    passthrough = server.preread and not server.terminates_tls
    proxy: dict[str, Any] = {"kind": KIND}
    sites: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if passthrough:
        proxy["passthrough"] = True
        routes: list[tuple[tuple[str, ...], str]] = [((_CATCH_ALL,) if r.server_name == "default" else (r.server_name,),
                   re.sub(r":\d+$", "", r.destination.target))  # a site is named after its host, not its port
                  for r in server.sni_routes if r.destination.target not in ("", '""')]
        proxy["sni"] = "any" if any(names == (_CATCH_ALL,) for names, _ in routes) else "named"
        _, sites = sites_of(routes)
        names = [n for names, _ in routes for n in names if _is_name(n)]
        notes += [f"{r.at}: {r.server_name} -> {r.destination.target}: passed through to the environment's "
                  "Orthanc" + (" for its site" if sites else "") for r in server.sni_routes]
        if not server.sni_routes and server.proxy_pass is not None:
            notes.append(f"{server.proxy_pass.at}: proxy_pass {server.proxy_pass.target}: passed through to the "
                         "environment's Orthanc")
    else:
        proxy["client_cert"] = _CLIENT_CERT[server.verify_client]
        proxy["protocols"] = list(server.protocols) if server.protocols is not None else None
        if server.ciphers is not None:
            proxy["ciphers"] = server.ciphers
        names = [n for n in server.server_names if _is_name(n)]
        if server.verify_client == "optional_no_ca":
            notes.append(f"{server.settings['ssl_verify_client']}: ssl_verify_client optional_no_ca: reproduced as "
                         "optional (a client certificate is verified against the generated CA when sent)")
        notes += [f"{server.settings[d]}: {d}: replaced by the generated PKI's server certificate and key"
                  for d in ("ssl_certificate", "ssl_certificate_key") if d in server.settings]
        notes += [f"{server.settings[d]}: {d}: replaced by the generated PKI's CA bundle"
                  for d in ("ssl_client_certificate", "ssl_trusted_certificate") if d in server.settings]
        if server.preread:
            notes.append(f"{server.settings['ssl_preread']}: ssl_preread on a server that terminates TLS: not "
                         "reproduced")
        if server.proxy_pass is not None:
            destination = server.proxy_pass
            many = f" (upstream of {len(destination.servers)} servers: all of it)" if len(
                destination.servers) > 1 else ""
            notes.append(f"{destination.at}: proxy_pass {destination.target}{many}: pointed at the environment's "
                         "Orthanc")
    if deployment is not None and deployment.proxy is not None and deployment.proxy.image is not None \
            and deployment.proxy.image.kind == KIND:
        proxy["declared_image"] = deployment.proxy.image.reference  # run where Docker can have it
    orthanc, orthanc_notes = project_orthanc(deployment, not passthrough, "nginx.conf")
    return Translation(resource, proxy, orthanc, tuple(dict.fromkeys(names)),
                       (*project_notes(deployment), *notes, *orthanc_notes), sites)


def _is_name(name: str) -> bool:
    """A host name a client can send as SNI: not nginx's catch-alls ("_", ""), wildcards or regular expressions."""
    return bool(name) and name not in ("_", "default") and not name.startswith("~") and "*" not in name \
        and re.fullmatch(r"[A-Za-z0-9.-]+", name) is not None