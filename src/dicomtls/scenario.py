"""Scenario files: which environments to build, which probes to run, and what each cell should do.

A scenario is YAML validated by pydantic. Probe groups are axes that expand to
cells (the cartesian product, per environment); ordered ``expect`` rules give
every cell its expected outcome and, for failures, the reason. A cell no rule
covers is a validation error: an unexpected pass is as much news as an
unexpected failure, so every cell must say what it expects.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import typing
from dataclasses import asdict, dataclass, fields
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from dicomtls import clients as client_registry
from dicomtls import operations
from dicomtls.association import DEFAULT_CALLING_AET, check_ae_title
from dicomtls.components import DEFAULT_SERVER, Component, component_class, kinds
from dicomtls.diagnose import Reason
from dicomtls.errors import UsageError
from dicomtls.findings import Finding
from dicomtls.manifests import (ChartValues, Translation, manifest_files, read_manifests, server_names, translate,
                                translate_files, yaml_manifests)
from dicomtls.manifests.cert_manager import Certificate, DeclaredPki, Issuer, declared_pki
from dicomtls.manifests.image_versions import DeclaredImage
from dicomtls.manifests.located import At
from dicomtls.pki import DEFAULT_VALIDITY_HOURS, Issued, PkiSpec
from dicomtls.profiles import ProfileName
from dicomtls.releases import ReleaseRow, row_problems
from dicomtls.resources import SCENARIOS



@dataclass(frozen=True)
class OneOf:
    """Annotated metadata: the values a string may take, asked when needed (a registry's names, for the reference)."""

    values: Callable[[], list[str]]


def _registered_client(name: str) -> str:
    if name not in client_registry.names():
        raise ValueError(f"unknown client {name!r}: use one of {', '.join(client_registry.names())}")
    return name


Client = Annotated[str, AfterValidator(_registered_client), OneOf(client_registry.names)]
"""A registered client's name (dicomtls.clients)."""
SNI_CHOICES = ("none", "right", "wrong")
Sni = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
"""none, right (the first site's first name), wrong (a name nobody serves), or the name of a site."""
ClientCert = Literal["none", "valid", "untrusted", "expired", "revoked", "self-signed", "key-mismatch"]


def _registered_operation(name: str) -> str:
    if name not in operations.names():
        raise ValueError(f"unknown operation {name!r}: use one of {', '.join(operations.names())}")
    return name


Operation = Annotated[str, AfterValidator(_registered_operation), OneOf(operations.names)]
"""A registered operation's name (dicomtls.operations)."""
Transport = Literal["tls", "plain"]
ServerCertCheck = Literal["verify", "ignore"]  # ignore: dcmtk -ic, the workaround for a proxy's fallback certificate
ClientVersion = Annotated[str, Field(pattern=r"^(default|\d+\.\d+\.\d+)$")]  # default: the backend's own client
Fault = Literal["none", "upstream-down", "upstream-restart", "proxy-restart"]  # injected by dicomtls.faults
AeTitle = Annotated[str, AfterValidator(lambda value: check_ae_title(value, "calling_aet"))]
"""A DICOM AE title: 1-16 printable ASCII characters, no backslash."""
CalledAeTitle = Annotated[str, AfterValidator(lambda value: value and check_ae_title(value, "called_aet"))]
"""A DICOM AE title, or empty: the server's own."""
_AXIS_VALUES = {"client": Client, "sni": Sni, "client_cert": ClientCert, "operation": Operation, "transport": Transport,
                "server_cert_check": ServerCertCheck, "profile": ProfileName, "client_version": ClientVersion,
                "fault": Fault, "calling_aet": AeTitle, "called_aet": CalledAeTitle}
AXES = ("environment", *_AXIS_VALUES)


class StrictModel(BaseModel):
    """A model of user input: an unknown key is an error (a typo never silently does nothing), and it is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


KeyName = Literal["rsa-2048", "rsa-4096", "ecdsa-p256"]


class IssuedConfig(StrictModel):
    """A certificate of the chain as declared (what a cert-manager Certificate makes), instead of the tool's own."""

    common_name: str | None
    """The subject's common name; null: an empty subject (the names are then critical SANs)."""
    key: KeyName = "rsa-2048"
    """The certificate's own key."""
    validity_hours: int = Field(DEFAULT_VALIDITY_HOURS, ge=1)
    """Lifetime: from the day before generation to this many hours after it (cert-manager's duration)."""
    usages: list[str] = []
    """cert-manager's usage names; none: digital signature and key encipherment (a CA adds cert sign)."""

    def issued(self) -> Issued:
        return Issued(self.common_name, self.key, self.validity_hours, tuple(self.usages))


class PkiConfig(StrictModel):
    topology: Literal["one-level", "two-level"] = "one-level"
    """one-level: a self-signed Test CA signs everything; two-level: Root CA -> Intermediate CA -> leaves."""
    key: KeyName = "rsa-2048"
    """The keys of the tool's own certificates (with declared cas/server: the client and negative material)."""
    server_names: list[str] | None = Field(default=None, min_length=1)
    """The server certificate's names; optional when every environment has its own sites."""
    ip_sans: list[str] = []
    """IP addresses the server certificate carries as SANs."""
    cas: list[IssuedConfig] = []
    """The CAs, root first, one per topology level; none: the tool's own. Filled from manifests.pki: true."""
    server: IssuedConfig | None = None
    """The server certificate's subject, key, lifetime and usages (its names are server_names)."""
    server_key: KeyName | None = None
    """The key of the server certificates the proxy or Orthanc presents (ecdsa-p256: an ECDSA-only server);
    default: ``key``. An environment's own ``server_key`` wins."""


class ComponentConfig(StrictModel):
    """``kind`` picks the component; the other keys are that component's options.

    ``per_version`` maps version specifiers ("<1.40", "==1.38.*") to option overrides, applied when a version
    is asked for (the ``version`` option, or each version `invoke bisect` runs); later entries win. It lets
    one scenario describe how a configuration changed between releases.
    """

    kind: str
    """The component: a server (orthanc) or a proxy (envoy, istio-gateway, envoy-bootstrap, traefik, nginx, haproxy)."""
    options: dict[str, Any] = {}
    per_version: dict[str, dict[str, Any]] = {}
    """Version specifier ("<1.40") -> option overrides, applied when that version is asked for."""

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"kind": data}
        if not isinstance(data, dict) or "kind" not in data:
            raise ValueError("needs a 'kind'")
        rest = {k: v for k, v in data.items() if k not in ("kind", "per_version")}
        return {"kind": data["kind"], "options": rest, "per_version": data.get("per_version") or {}}

    @model_validator(mode="after")
    def _per_version_specifiers(self) -> "ComponentConfig":
        for spec, overrides in self.per_version.items():
            try:
                SpecifierSet(spec)
            except InvalidSpecifier:
                raise ValueError(f"per_version key {spec!r} is not a version specifier: write it like '<1.40' "
                                 "or '==1.38.*'") from None
            if "version" in overrides:
                raise ValueError(f"per_version[{spec!r}] cannot set version: it is selected by it")
        return self

    def resolved_options(self) -> dict[str, Any]:
        """The options with every per_version override that matches the asked-for version applied."""
        merged = dict(self.options)
        try:
            version = Version(str(self.options["version"])) if self.options.get("version") else None
        except InvalidVersion:
            version = None
        for spec, overrides in self.per_version.items():
            if version is not None and version in SpecifierSet(spec):
                merged.update(overrides)
        return merged

    def build(self, role: str) -> Component:
        if self.kind not in kinds(role):
            raise ValueError(f"unknown {role} kind {self.kind!r}: use one of {', '.join(kinds(role))}")
        cls = component_class(self.kind)
        for spec, overrides in self.per_version.items():  # each override must make valid options too
            self._validate(cls, {**self.options, **overrides}, f"per_version[{spec!r}] ")
        return self._validate(cls, self.resolved_options(), "")

    def _validate(self, cls: type[Component], options: dict[str, Any], where: str) -> Component:
        try:
            return cls(cls.options_model.model_validate(options))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            msg = first["msg"]
            if first["type"] == "extra_forbidden":
                msg = f"unknown option: use one of {', '.join(cls.options_model.model_fields)}"
            raise ValueError(f"{self.kind} {where}option {field}: {msg}") from None


class ManifestSource(StrictModel):
    """Manifests (relative to the scenario file) the environment's components are read from: Kubernetes resources,
    an Envoy bootstrap, a docker compose project (with the nginx.conf or haproxy.cfg and the orthanc.json it mounts),
    an nginx.conf, an haproxy.cfg, or a Helm chart rendered with its values."""

    files: list[str] = Field(min_length=1)
    """Files or directories (read recursively; a directory holding Chart.yaml is a Helm chart, rendered)."""
    resource: str | None = None
    """Which proxy, "Gateway/NAME", "IngressRouteTCP/NAME", "EnvoyBootstrap/FILE-STEM", "HAProxyFrontend/NAME" or
    "NginxServer/NAME" (the compose service or the file's stem, "-PORT" added when it has several), when the files
    hold several ("Gateway/NAMESPACE/NAME" when two share a name)."""
    pki: bool = False
    """true: the scenario's PKI is the one the files' cert-manager Certificates declare (no pki block then)."""
    values: list[str] = []
    """Values files the charts among the files are rendered with (`helm template --values`; later ones win)."""
    set: list[str] = []
    """KEY=VALUE settings the charts are rendered with (`helm template --set`), after the values files."""

    def chart_values(self, base: Path) -> ChartValues:
        """The values files (relative to ``base``, the scenario's directory) and settings, as Helm takes them."""
        return ChartValues(tuple((base / v).resolve() for v in self.values), tuple(self.set))


class SiteConfig(StrictModel):
    """One DICOM site behind the environment's proxy: its own Orthanc and its own server certificate."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    server_names: list[str] = Field(min_length=1)
    """The names clients ask the proxy for to reach this site; its certificate carries them."""
    server: ComponentConfig | None = None
    """Its DICOM server; default: the environment's ``server``."""

    @field_validator("name")
    @classmethod
    def _not_an_sni_choice(cls, value: str) -> str:
        if value in SNI_CHOICES:
            raise ValueError(f"a site cannot be called {value!r}: the sni axis uses that word")
        return value


class EnvironmentConfig(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    """Lower-case letters, digits and dashes; unique in the scenario."""
    server: ComponentConfig = ComponentConfig(kind=DEFAULT_SERVER)
    """The DICOM server (every site's, unless a site names its own)."""
    sites: list[SiteConfig] = []
    """Several DICOM sites behind one proxy, routed by SNI (at least two; the first is the default route)."""
    proxy: ComponentConfig | None = None
    """The proxy in front of the server; none: clients reach the server itself, which must then terminate TLS."""
    manifests: ManifestSource | None = None
    """Read the proxy (and its sites) from manifests instead of writing proxy: (a list of paths is files:)."""
    unhonoured: tuple[str, ...] = ()
    """Manifest fields the environment does not reproduce: filled from ``manifests``, listed in the report."""
    findings: tuple[Finding, ...] = ()
    """What the manifests do that the user may not know, with the probes that show it: filled from ``manifests``."""
    images: tuple[DeclaredImage, ...] = ()
    """The images the manifests' deployment names (a compose project's): filled from ``manifests``; the report
    states where the run used another version."""
    source: At | None = None
    """The manifest (file and line) the proxy is read from: filled from ``manifests``; CI annotations of its cells
    land there."""
    server_key: KeyName | None = None
    """The key of this environment's server certificates, instead of the scenario's ``pki.server_key`` (an RSA and
    an ECDSA server side by side in one scenario)."""
    backends: list[Literal["local", "docker"]] | None = None
    """Where this environment can run (a version only Docker images have); default: wherever the scenario runs.
    Elsewhere it and its cells are left out of the run, with a note saying so."""

    @model_validator(mode="before")
    @classmethod
    def _from_manifests(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or data.get("manifests") is None:
            return data
        if {"proxy", "unhonoured", "findings", "images", "source"} & data.keys():
            raise ValueError("manifests build the proxy (and list what they cannot reproduce): drop "
                             "proxy/unhonoured/findings/images/source")
        source = data["manifests"]
        source = {"files": source} if isinstance(source, list) else source
        source = ManifestSource.model_validate(source)
        base = Path((info.context or {}).get("base", "."))
        files = [str(f) for entry in source.files for f in manifest_files((base / entry).resolve())]
        values = source.chart_values(base)
        found = translate_files([Path(f) for f in files], source.resource, values)
        if len(found) > 1:
            raise ValueError(f"manifests hold {', '.join(t.resource for t in found)}: pick one with resource:")
        chosen = found[0]
        unhonoured, findings = _pki_notes(source, [Path(f) for f in files], chosen, values)
        sites = [{"name": name, "server_names": list(names)} for name, names in chosen.sites]
        return {**data, "manifests": {"files": files, "resource": chosen.resource, "pki": source.pki,
                                      "values": [str(v) for v in values.files], "set": list(values.sets)},
                "proxy": chosen.proxy, "server": data.get("server", chosen.server),
                "unhonoured": (*chosen.unhonoured, *unhonoured), "findings": (*chosen.findings, *findings),
                "images": chosen.images, "sites": data.get("sites", sites), "source": chosen.source}

    @model_validator(mode="after")
    def _check_components(self) -> "EnvironmentConfig":
        if self.sites:
            self._check_sites()
        # Exactly one component terminates TLS: the proxy, or the servers behind a proxy that passes TLS through.
        server = self.servers()[0][1]
        if self.proxy is not None:
            proxy = self.proxy.build("proxy")
            if problem := proxy.sites_problem(tuple(self.site_names())):
                raise ValueError(problem)
            if proxy.terminates_tls() and server.terminates_tls():
                raise ValueError("a TLS-terminating proxy in front of a TLS-terminating server is not supported: "
                                 "set tls: false on the server, or let the proxy pass TLS through")
            if not proxy.terminates_tls() and not server.terminates_tls():
                raise ValueError("nothing terminates TLS: the proxy passes TLS through, so set tls: true on the server")
        elif not server.terminates_tls():
            raise ValueError("nothing terminates TLS: add a proxy or set tls: true on the server")
        return self

    def _check_sites(self) -> None:
        if len(self.sites) < 2:
            raise ValueError("sites: give at least two (one site is the environment's server with pki.server_names)")
        if self.proxy is None:
            raise ValueError("sites need a proxy in front of them to route by SNI: add one")
        names = [site.name for site in self.sites]
        if len(set(names)) != len(names):
            raise ValueError(f"site names must be unique, got {names}")
        servers = [server for _, server in self.servers()]
        if len({server.terminates_tls() for server in servers}) > 1:
            raise ValueError("the sites' servers either all terminate TLS or none does: give them the same tls")

    def servers(self) -> list[tuple[str | None, Component]]:
        """(site, its server) per site; one (None, server) when the environment has no sites."""
        if not self.sites:
            return [(None, self.server.build("server"))]
        return [(site.name, (site.server or self.server).build("server")) for site in self.sites]

    def components(self) -> list[Component]:
        """Servers first, then the proxy in front of them."""
        built = [server for _, server in self.servers()]
        if self.proxy is not None:
            built.append(self.proxy.build("proxy"))
        return built

    def site_names(self) -> list[str]:
        return [site.name for site in self.sites]


def declared_in(files: list[Path], values: ChartValues | None = None) -> DeclaredPki | None:
    """The PKI the files' cert-manager documents declare for their proxies (None: they hold none)."""
    files = yaml_manifests(files)
    if not files:
        return None
    found = read_manifests(files, values)
    return declared_pki(found, translate(found))


def _pki_notes(source: ManifestSource, files: list[Path], chosen: Translation,
               values: ChartValues) -> tuple[tuple[str, ...], tuple[Finding, ...]]:
    """What the environment reports about the files' cert-manager documents: the declared PKI's unhonoured
    lines and findings when it follows them, else that it does not."""
    declared = declared_in(files, values)
    if declared is None:
        return (), ()
    if source.pki:
        return declared.notes_for(chosen.resource), declared.findings
    if declared.topology is None:
        return declared.unhonoured, ()
    found = read_manifests(yaml_manifests(files), values)
    return tuple(f"{where}: not reproduced: the scenario's pki block makes the PKI (manifests.pki: true follows "
                 "the cert-manager documents)" for where, _ in [*found.of(Certificate), *found.of(Issuer)]), ()


class ProbeGroup(StrictModel):
    client: list[Client]
    """dcmtk (echoscu/storescu), pynetdicom (can send SNI), dcmtk-stunnel (plain dcmtk through a stunnel sidecar)."""
    sni: list[Sni] = ["none"]
    """none, right (the first server name), wrong (a name nobody serves), or a site's name (its first name)."""
    client_cert: list[ClientCert] = ["none"]
    """none, valid, untrusted (from an unrelated CA), expired, revoked (listed in the PKI's CRL), self-signed
    (the client's name, signed by its own key) or key-mismatch (the valid certificate with another key)."""
    operation: list[Operation] = ["echo"]
    """C-ECHO, or a C-STORE of a CT object (store-large: at least 10 MiB), verified in Orthanc's REST API; find,
    move, move-unreachable: a study-root C-FIND or C-MOVE of the study the cell stored first (dicomtls.operations)."""
    transport: list[Transport] = ["tls"]
    """plain: DICOM without TLS (to see what a TLS port says to it)."""
    server_cert_check: list[ServerCertCheck] = ["verify"]
    """verify (dcmtk -rc +cf CA) or ignore (dcmtk -ic, the workaround for a proxy's fallback certificate)."""
    profile: list[ProfileName] = ["default"]
    """The TLS profile the client offers (dicomtls.profiles); default: the client's own."""
    client_version: list[ClientVersion] = ["default"]
    """The dcmtk version (Docker backend: 3.6.7 or 3.6.9); default: the backend's own."""
    fault: list[Fault] = ["none"]
    """What breaks on the path during the cell (dicomtls.faults)."""
    calling_aet: list[AeTitle] = [DEFAULT_CALLING_AET]
    """The AE title the client calls as (dcmtk's -aet); a server that knows only its modalities rejects the others.
    `--calling-aet` replaces the default for the groups that do not set it."""
    called_aet: list[CalledAeTitle] = [""]
    """The AE title the client calls (dcmtk's -aec); empty: the server's own (its ``aet``, each site's)."""
    environments: list[str] | None = None
    """The environments this group runs in; default: all of them."""
    backends: list[Literal["local", "docker"]] | None = None
    """Where this group can run (a client version only Docker images have); default: wherever the scenario runs.
    Elsewhere its cells are left out of the run, with a note saying so."""

    _lists = field_validator("*", mode="before")(_as_list)

    @field_validator("profile", mode="before")
    @classmethod
    def _yaml_null_is_the_null_profile(cls, value: Any) -> Any:
        # Unquoted `null` is YAML's None; here it can only mean dcmtk's NULL-cipher profile (+pn).
        if value is None:
            return ["null"]
        return ["null" if v is None else v for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _clients_can_run_profiles(self) -> "ProbeGroup":
        for client in self.client:
            for profile in self.profile:
                if problem := client_registry.client_class(client).unsupported(profile):
                    raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _faults_send_an_object(self) -> "ProbeGroup":
        faults = set(self.fault) - {"none"}
        stores = [o.name for o in operations.listed() if o.dimse == "C-STORE" and o.in_scenarios]
        if faults and (set(self.operation) - set(stores) or self.transport != ["tls"]):
            raise ValueError("a fault cell sends an object again after the fault: use operation "
                             f"{' or '.join(stores)}, over tls")
        mid_transfer = [c.name for c in client_registry.listed() if c.sends_mid_transfer]
        large = [o.name for o in operations.listed() if o.mid_transfer]
        if faults - {"upstream-down"} and (set(self.client) - set(mid_transfer) or set(self.operation) - set(large)):
            raise ValueError("upstream-restart and proxy-restart kill a component mid-transfer, as the client sends "
                             f"the dataset: use client {' or '.join(mid_transfer)} and operation {' or '.join(large)}")
        return self

    @model_validator(mode="after")
    def _each_client_can_run_the_group(self) -> "ProbeGroup":
        # What each client can send (SNI from which version, which transports, whether a version is asked of it)
        # is its own module's to say.
        for client in self.client:
            if problem := client_registry.client_class(client).group_problem(self):
                raise ValueError(problem)
        return self


class CellMatch(StrictModel):
    """Which cells a rule is about: a scenario's ``expect`` rules and a policy's cell rules (dicomtls.policy)."""

    match: dict[str, list[str]] = {}
    """Axis -> the values it takes (a single value may be written alone); {} matches every cell."""

    @field_validator("match", mode="before")
    @classmethod
    def _match_lists(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(AXES))
        if unknown:
            raise ValueError(f"unknown axis {unknown[0]!r}: match on {', '.join(AXES)}")
        return {k: _as_list(v) for k, v in value.items()}

    def matches(self, values: dict[str, str]) -> bool:
        return all(values[axis] in allowed for axis, allowed in self.match.items())


class Expectation(CellMatch):
    outcome: Literal["pass", "fail", "observe"]
    """observe: nothing is expected, the cell is reported as it turns out (a matrix from manifests)."""
    reason: Reason | None = None
    """The reason an expected failure must have (required with fail)."""
    site: str | None = None
    """In an environment with sites: the site a passing cell must reach. A cell whose SNI names a site (or is
    `right`, the first site) expects that site unless told otherwise."""

    @model_validator(mode="after")
    def _reason_iff_fail(self) -> "Expectation":
        if self.outcome == "fail" and self.reason is None:
            raise ValueError("an expected failure must name its reason")
        if self.outcome != "fail" and self.reason is not None:
            raise ValueError(f"an expected {self.outcome} has no reason")
        if self.site is not None and self.outcome != "pass":
            raise ValueError("site says where a passing cell arrives: it goes with outcome: pass")
        return self


class Scenario(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    """Lower-case letters, digits and dashes: what --scenario takes and cell ids start with."""
    description: str
    """One line, shown in the reports."""
    default: bool = True
    """Part of a plain `invoke matrix`."""
    backends: list[Literal["local", "docker"]] = ["local", "docker"]
    """Where it can run: a scenario with versions other than this machine's needs docker."""
    pki: PkiConfig
    """The test PKI every environment of the scenario uses."""
    environments: list[EnvironmentConfig] = Field(min_length=1)
    """What runs: each a server (or sites) and usually a proxy."""
    probes: list[ProbeGroup] = Field(min_length=1)
    """The clients and what they try; each group expands to the cartesian product of its axes."""
    expect: list[Expectation] = Field(min_length=1)
    """Ordered rules: the first that matches a cell gives its expected outcome; every cell must match one."""
    releases: list[ReleaseRow] = []
    """Releases that changed whether a DICOM client gets through, each with the cells before and after it
    (dicomtls.releases): the docs' table of releases, and each such cell's ``release_basis`` in the results."""

    @model_validator(mode="before")
    @classmethod
    def _version_axes(cls, data: Any) -> Any:
        """A component's ``versions: [1.22.5, 1.23.0]`` makes one environment per version, named
        ``NAME-1-22-5``...; probes and expectations naming NAME apply to each of them."""
        if not isinstance(data, dict) or not isinstance(data.get("environments"), list):
            return data
        expanded: dict[str, list[str]] = {}
        environments = []
        for env in data["environments"]:
            role = next((r for r in ("server", "proxy") if isinstance(env, dict) and isinstance(env.get(r), dict)
                         and "versions" in env[r]), None)
            if role is None:
                environments.append(env)
                continue
            config = dict(env[role])
            versions = config.pop("versions")
            versions = [versions] if isinstance(versions, (str, int, float)) else versions
            if ("version" in config or not isinstance(versions, list) or not versions
                    or not all(isinstance(v, (str, int, float)) for v in versions)):
                raise ValueError(f"environment {env.get('name')!r}: {role}.versions is a list of versions, "
                                 "and replaces version:")
            named = expanded[str(env.get("name"))] = []
            for version in map(str, versions):
                named.append(f"{env.get('name')}-{re.sub(r'[^a-z0-9]+', '-', version.lower()).strip('-')}")
                environments.append({**env, "name": named[-1], role: {**config, "version": version}})
        if not expanded:
            return data

        def names(value: Any) -> Any:
            listed = _as_list(value)
            if not isinstance(listed, list):
                return value
            return [n for item in listed for n in (expanded.get(item, [item]) if isinstance(item, str) else [item])]

        def probe(group: Any) -> Any:
            if isinstance(group, dict) and "environments" in group:
                return {**group, "environments": names(group["environments"])}
            return group

        def rule(expectation: Any) -> Any:
            match = expectation.get("match") if isinstance(expectation, dict) else None
            if isinstance(match, dict) and "environment" in match:
                return {**expectation, "match": {**match, "environment": names(match["environment"])}}
            return expectation

        # probes and expect that are not lists are left as they are, for their fields' validation to refuse
        renamed = {key: [change(item) for item in data[key]] for key, change in (("probes", probe), ("expect", rule))
                   if isinstance(data.get(key), list)}
        return {**data, "environments": environments, **renamed}

    @model_validator(mode="before")
    @classmethod
    def _pki_from_manifests(cls, data: Any, info: ValidationInfo) -> Any:
        """manifests.pki: true makes the scenario's pki block from the cert-manager documents."""
        if not isinstance(data, dict) or not isinstance(data.get("environments"), list):
            return data
        declaring = [(i, e) for i, e in enumerate(data["environments"]) if isinstance(e, dict)
                     and isinstance(e.get("manifests"), dict) and e["manifests"].get("pki") is True]
        if not declaring:
            return data
        if data.get("pki") is not None:
            raise ValueError(f"pki: environments[{declaring[0][0]}].manifests.pki is true, so the manifests make "
                             "the PKI: drop the pki block")
        base = Path((info.context or {}).get("base", "."))
        configs = []
        for i, env in declaring:
            files = env["manifests"].get("files")
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                return data  # the environment's own validation says what is wrong
            values, sets = env["manifests"].get("values") or [], env["manifests"].get("set") or []
            if not all(isinstance(v, str) for v in [*values, *sets]):
                return data
            declared = declared_in([(base / f).resolve() for f in files],
                                   ChartValues(tuple((base / v).resolve() for v in values), tuple(sets)))
            if declared is None or declared.topology is None:
                raise ValueError(f"environments[{i}].manifests.pki: no DICOM proxy in them serves a secret a "
                                 "cert-manager Certificate makes: drop pki: true and give a pki block")
            configs.append(declared.config())
        if any(c != configs[0] for c in configs):
            raise ValueError("environments' manifests declare different PKIs: one PKI serves a scenario, so give "
                             "each its own scenario")
        return {**data, "pki": configs[0]}

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        names = [e.name for e in self.environments]
        if len(set(names)) != len(names):
            raise ValueError(f"environment names must be unique, got {names}")
        if self.pki.server_names is None and any(not e.sites for e in self.environments):
            raise ValueError("pki.server_names is missing: an environment without sites needs the server's names")
        for index, group in enumerate(self.probes):
            for unknown in [e for e in group.environments or () if e not in names]:
                raise ValueError(f"probes name unknown environment {unknown!r}: use one of {', '.join(names)}")
            for env_name in group.environments or names:
                env = self.environment(env_name)
                web = [c for c in group.client if not client_registry.client_class(c).reaches_dicom_entry]
                if web and (env.proxy is None or not env.proxy.options.get("web")):
                    raise ValueError(f"probes[{index}]: client {web[0]} speaks to the proxy's HTTPS route, and "
                                     f"{env_name} has none: give its proxy web: true (and its server "
                                     "dicomweb_plugin: true), or restrict the group to environments with one")
                if "proxy-restart" in group.fault and env.proxy is None:
                    raise ValueError(f"probes[{index}]: fault proxy-restart needs a proxy, and {env_name} has none: "
                                     "restrict the group to environments with a proxy")
                for sni in group.sni:
                    if sni not in SNI_CHOICES and sni not in env.site_names():
                        choices = [*SNI_CHOICES, *env.site_names()]
                        raise ValueError(f"probes[{index}].sni {sni!r} is not a choice in environment {env_name}: "
                                         f"use one of {', '.join(choices)}")
        self.pki_spec()  # sites must agree on their names, and their names on one site
        all_sites = sorted({site for e in self.environments for site in e.site_names()})
        allowed = {"environment": names, "sni": [*SNI_CHOICES, *all_sites], "client": client_registry.names(),
                   "operation": operations.names(),
                   **{axis: list(get_args(kind)) for axis, kind in _AXIS_VALUES.items()
                      if typing.get_origin(kind) is Literal}}
        for index, rule in enumerate(self.expect):
            if rule.site is not None and rule.site not in all_sites:
                raise ValueError(f"expect[{index}] expects site {rule.site!r}, which no environment has: "
                                 f"use one of {', '.join(all_sites) or '(no environment has sites)'}")
            for axis, values in rule.match.items():
                for value in values:
                    if axis in allowed and value not in allowed[axis]:
                        raise ValueError(f"expect[{index}] matches {axis} {value!r}, which no cell has: "
                                         f"use one of {', '.join(allowed[axis])}")
        self.cells()  # every cell needs an expectation
        for row in self.releases:
            for entry in (*row.before, *row.after):
                if not_axes := sorted(set(entry.match) - set(AXES)):
                    raise ValueError(f"release {row.release!r} matches on unknown axis {not_axes[0]!r}: use "
                                     f"{', '.join(AXES)}")
        runs = {k for role in ("server", "proxy") for k in kinds(role)} | set(client_registry.names())
        if problems := row_problems(self.releases, self.cells(), runs):
            raise ValueError(problems[0])
        return self

    def on_backend(self, backend: str) -> tuple["Scenario", list[str]]:
        """The scenario as ``backend`` runs it: without the environments and probe groups that name other
        backends, and a note for each left out."""
        envs = [e for e in self.environments if e.backends is None or backend in e.backends]
        names = {e.name for e in envs}
        notes = [f"scenario {self.name}: environment {e.name} left out on {backend}: it runs on "
                 f"{' and '.join(e.backends or [])} only" for e in self.environments if e.name not in names]
        groups = []
        for index, group in enumerate(self.probes):
            if group.backends is not None and backend not in group.backends:
                notes.append(f"scenario {self.name}: probes[{index}] ({', '.join(group.client)}"
                             f"{'@' + ','.join(group.client_version) if group.client_version != ['default'] else ''}"
                             f") left out on {backend}: it runs on {' and '.join(group.backends)} only")
                continue
            kept = [e for e in group.environments or [e.name for e in self.environments] if e in names]
            if kept:
                groups.append(group.model_copy(update={"environments": kept}))
        if not envs or not groups:
            return self.model_copy(update={"environments": [], "probes": []}), notes
        return self.model_copy(update={"environments": envs, "probes": groups}), notes

    def environment(self, name: str) -> EnvironmentConfig:
        return next(e for e in self.environments if e.name == name)

    def calling_as(self, aet: str) -> "Scenario":
        """The scenario with ``aet`` as the calling AE title of every probe group that does not name its own
        (`--calling-aet`): its cells are labelled and matched with it."""
        groups = [g if "calling_aet" in g.model_fields_set else g.model_copy(update={"calling_aet": [aet]})
                  for g in self.probes]
        changed = self.model_copy(update={"probes": groups})
        changed.cells()  # every cell still needs an expectation
        return changed

    def pki_spec(self, environment: EnvironmentConfig | None = None) -> PkiSpec:
        """The PKI: the server certificate, and one per site over every environment (a site keeps its names);
        ``environment``: the PKI that environment uses (its own server_key)."""
        server_key = (environment.server_key if environment is not None else None) or self.pki.server_key
        sites: dict[str, tuple[str, ...]] = {}
        for env in self.environments:
            for site in env.sites:
                names = tuple(site.server_names)
                if sites.setdefault(site.name, names) != names:
                    raise ValueError(f"site {site.name!r} has names {list(sites[site.name])} in one environment and "
                                     f"{list(names)} in {env.name}: give a site the same names everywhere")
        first_site = next(iter(sites.values()), ())
        server_names = tuple(self.pki.server_names or first_site)
        try:
            return PkiSpec(self.pki.topology, self.pki.key, server_names, tuple(self.pki.ip_sans),
                           sites=tuple(sites.items()), cas=tuple(ca.issued() for ca in self.pki.cas),
                           server=self.pki.server.issued() if self.pki.server else None,
                           server_key=server_key)
        except UsageError as exc:
            raise ValueError(str(exc)) from None

    def cells(self) -> list["Cell"]:
        cells: list[Cell] = []
        seen: set[str] = set()
        for group in self.probes:
            envs = group.environments or [e.name for e in self.environments]
            for env, *chosen in itertools.product(envs, *(getattr(group, axis) for axis in PROBE_AXES)):
                probe = Probe(**dict(zip(PROBE_AXES, chosen)))
                values = {"environment": env, **asdict(probe)}
                rule = next((r for r in self.expect if r.matches(values)), None)
                if rule is None:
                    raise ValueError(f"no expect rule covers cell {env}/{probe.label()}: add one (match: {{}} catches all)")
                cell = Cell(self.name, env, probe, rule.outcome, rule.reason,
                            self._expected_site(self.environment(env), probe, rule))
                if cell.id not in seen:
                    seen.add(cell.id)
                    cells.append(cell)
        return cells

    def _expected_site(self, env: EnvironmentConfig, probe: "Probe", rule: Expectation) -> str | None:
        where = f"cell {env.name}/{probe.label()}"
        if not env.sites:
            if rule.site is not None:
                raise ValueError(f"{where}: the expect rule names site {rule.site!r}, but {env.name} has no sites: "
                                 "restrict the rule to environments with sites")
            return None
        if rule.site is not None and rule.site not in env.site_names():
            raise ValueError(f"{where}: the expect rule names site {rule.site!r}, which {env.name} does not have: "
                             f"use one of {', '.join(env.site_names())}")
        implied = addressed_site(probe.sni, env.site_names())
        if rule.site is not None and implied is not None and rule.site != implied:
            raise ValueError(f"{where}: its SNI asks for site {implied!r}, so it cannot pass at {rule.site!r}: "
                             "a cell routed elsewhere is expected as outcome: fail, reason: misrouted")
        expected = rule.site or implied
        if rule.outcome == "pass" and expected is None:
            raise ValueError(f"{where}: say which site a passing client with sni={probe.sni} reaches: add "
                             f"site: NAME to its expect rule ({', '.join(env.site_names())})")
        return expected if rule.outcome == "pass" else None


def addressed_site(sni: str, sites: list[str]) -> str | None:
    """The site a client's SNI asks for: a site named on the sni axis, or the first for `right`; None otherwise."""
    if sni in sites:
        return sni
    if sni == "right" and sites:
        return sites[0]
    return None


@dataclass(frozen=True)
class Probe:
    client: str
    sni: str
    client_cert: str
    operation: str
    transport: str = "tls"
    server_cert_check: str = "verify"
    profile: str = "default"
    client_version: str = "default"
    fault: str = "none"
    calling_aet: str = DEFAULT_CALLING_AET
    called_aet: str = ""

    @property
    def client_label(self) -> str:
        return self.client if self.client_version == "default" else f"{self.client}@{self.client_version}"

    def extras(self) -> list[str]:
        """The axes set away from their defaults, so old cell ids stay stable as axes are added."""
        shown = []
        for f in fields(self)[PROBE_AXES.index("transport"):]:
            value = getattr(self, f.name)
            if f.name != "client_version" and value != f.default:
                shown.append(value if f.name == "transport" else f"{f.name.replace('_', '-')}={value}")
        return shown

    def label(self) -> str:
        return " ".join([self.client_label, f"sni={self.sni}", f"cert={self.client_cert}", self.operation,
                         *self.extras()])


PROBE_AXES = tuple(f.name for f in fields(Probe))


@dataclass(frozen=True)
class Cell:
    scenario: str
    environment: str
    probe: Probe
    expected: str
    expected_reason: Reason | None
    expected_site: str | None = None
    """In an environment with sites: where a passing cell must arrive."""

    @property
    def id(self) -> str:
        return f"{self.scenario}/{self.environment}/{self.probe.label()}"


def environment_key(spec: PkiSpec, env: EnvironmentConfig) -> str:
    """Identity of what runs, so scenarios that describe the same environment share one instance."""
    def identity(config: ComponentConfig, role: str) -> dict[str, Any]:
        # The validated options, defaults filled in: `{kind: envoy}` and `{kind: envoy, sni: any}` run the same thing.
        return {"kind": config.kind, "options": config.build(role).options.model_dump(mode="json")}

    blob = json.dumps(
        {"pki": spec.digest(), "server": identity(env.server, "server"),
         "sites": [{"name": s.name, "server_names": s.server_names,
                    "server": identity(s.server, "server") if s.server else None} for s in env.sites],
         "proxy": identity(env.proxy, "proxy") if env.proxy else None},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _allowed_fields(loc: tuple[Any, ...], root: type[BaseModel]) -> list[str] | None:
    """The fields of the model that holds ``loc``'s last part, to say what an unknown field could have been."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        candidates = typing.get_args(field.annotation) or (field.annotation,)
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return list(model.model_fields) if model is not None else None


_SHAPES = {
    "list_type": "write a list (one '- item' per line, or [a, b])",
    "dict_type": "write a mapping (key: value lines)",
    "model_type": "write a mapping (key: value lines)",
    "model_attributes_type": "write a mapping (key: value lines)",
    "string_type": "write a string",
    "int_type": "write a whole number",
    "int_parsing": "write a whole number",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
}
"""How to write a value of the shape a field needs, for a value of another shape (a scalar where a list belongs)."""


def format_error(source: str, error: ValidationError, root: type[BaseModel] | None = None) -> str:
    """One line naming the file and the field: what a scenario or a policy (``root``) got wrong."""
    first = error.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if p not in ("options",))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden" and (allowed := _allowed_fields(first["loc"], root or Scenario)):
        msg = f"unknown field: use one of {', '.join(allowed)}"
    elif first["type"] in _SHAPES:
        got = repr(first["input"])
        msg = f"is {got if len(got) <= 40 else got[:37] + '...'}: {_SHAPES[first['type']]}"
    where = f"{source}: {loc}: " if loc else f"{source}: "
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}{msg}{more}"


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it: parsing the scenarios was a tenth of a second per run in pure Python."""


def yaml_mapping(text: str, source: str, shape: str) -> dict[str, Any]:
    """A YAML file's mapping; a usage error naming the file (and the line of a syntax error), or saying ``shape``
    (what such a file is: "a scenario is a YAML mapping with …")."""
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UsageError(f"{source}: not valid YAML{where}: fix the syntax") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source}: {shape}")
    return data


def parse_scenario(text: str, source: str) -> Scenario:
    data = yaml_mapping(text, source, "a scenario is a YAML mapping with name, description, pki, environments, "
                                      "probes, expect")
    try:
        return Scenario.model_validate(data, context={"base": Path(source).parent})
    except ValidationError as exc:
        raise UsageError(format_error(source, exc)) from None
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from None


def manifest_scenario(path: Path, brings_clients: bool = False, values: ChartValues | None = None) -> Scenario:
    """A scenario with one environment per proxy resource in PATH's manifests (a file, or a directory read
    recursively; its Helm charts rendered with ``values``) and nothing expected: the user's own configuration,
    reported as it behaves, with the PKI its cert-manager documents declare. ``brings_clients``: the backend's
    (Backend.brings_clients), for the probes only a backend's own dcmtk 3.6.9 can run."""
    values = values or ChartValues()
    files = manifest_files(path)
    if values != ChartValues() and not any(f.is_dir() for f in files):
        raise UsageError(f"--values/--set: {path} holds no Helm chart (a directory with Chart.yaml) to render with "
                         "them: drop them, or give the chart")
    found = translate_files(files, values=values)
    declared = declared_in(files, values)
    follows = declared is not None and declared.topology is not None
    environments = []
    probes = client_registry.manifest_groups(brings_clients)
    for t in found:
        resource_name = t.resource.split("/", 1)[1]
        name = re.sub(r"[^a-z0-9-]+", "-", f"{t.proxy['kind']}-{resource_name}".lower()).strip("-")
        environments.append({"name": name, "manifests": {"files": [str(f) for f in t.files or files],
                                                         "resource": t.resource, "pki": follows,
                                                         "values": [str(v) for v in values.files],
                                                         "set": list(values.sets)}})
        if t.proxy.get("web"):  # its HTTPS server became the environment's web route
            probes += [{**group, "environments": [name]} for group in client_registry.web_route_groups()]
        if t.sites:  # ask for each site by its name: does its C-STORE land in its Orthanc, and only there?
            probes.append({"client": client_registry.site_asker(), "sni": [site for site, _ in t.sites], "client_cert": "valid",
                           "operation": ["echo", "store-ct"], "environments": [name]})
    named = path.resolve().stem if path.is_file() else path.resolve().name
    data = {
        "name": re.sub(r"[^a-z0-9-]+", "-", f"manifests-{named}".lower()).strip("-"),
        "description": f"the manifests in {path}, reproduced on loopback; nothing expected",
        **({} if follows else {"pki": {"server_names": server_names(found)}}),
        "environments": environments,
        "probes": probes,
        "expect": [{"match": {}, "outcome": "observe"}],
    }
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise UsageError(format_error(str(path), exc)) from None


def available(directory: Path = SCENARIOS) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_scenario(name_or_path: str, directory: Path = SCENARIOS) -> Scenario:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = directory / f"{name_or_path}.yaml"
    if not os.path.isfile(path):  # os.path: False for a name too long for the file system too, where Path raises
        raise UsageError(
            f"unknown scenario {name_or_path!r}: use one of {', '.join(available(directory))} or a path to a .yaml file"
        )
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    return parse_scenario(text, str(path))


def runnable(scenarios: list[Scenario], backend: str, explicit: bool, say: Callable[[str], None]) -> list[Scenario]:
    """Drop default scenarios this backend can't run (with a note); a scenario asked for by name is an error."""
    kept = []
    for scenario in scenarios:
        if backend in scenario.backends:
            kept.append(scenario)
        elif explicit:
            raise UsageError(f"scenario {scenario.name} runs on {', '.join(scenario.backends)}, not {backend}: "
                             f"use --backend {scenario.backends[0]}")
        else:
            say(f"skipping scenario {scenario.name}: it needs the {' or '.join(scenario.backends)} backend")
    if not kept:
        raise UsageError(f"no scenario runs on the {backend} backend: pick another --backend")
    return kept


def load_scenarios(names: list[str] | None, directory: Path = SCENARIOS) -> list[Scenario]:
    """The named scenarios, or every scenario marked default."""
    if names:
        return [load_scenario(n, directory) for n in names]
    scenarios = [load_scenario(n, directory) for n in available(directory)]
    chosen = [s for s in scenarios if s.default]
    if not chosen:
        raise UsageError(f"no default scenarios in {directory}: name one with --scenario")
    return chosen
