"""Deployments to check, read from an Ansible inventory with ansible-core's own parser.

People who run Orthanc behind a proxy on several sites already list those
hosts for Ansible, so dicomtls reads that inventory as Ansible does (YAML or
INI, groups, ``host_vars/`` and ``group_vars/`` beside it, ``ansible_host``,
Jinja in values, ``--limit`` patterns) and takes each host's DICOM endpoint from
its ``dicomtls_*`` variables. The same file then drives the server-side checks
(testinfra's ``ansible://`` backend), so what is probed and what is inspected
are the same host.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomtls.association import DEFAULT_CALLING_AET, check_ae_title
from dicomtls.checks import PROGRAMS
from dicomtls.errors import UsageError
from dicomtls.probe_endpoint import Request
from dicomtls.resolve import check_name, ip_literal

# Ansible reads its settings from the environment when first imported: take YAML and INI files only, and fail
# on a file neither can parse instead of carrying on with an empty inventory. testinfra's ansible-inventory
# inherits the same settings.
os.environ.setdefault("ANSIBLE_INVENTORY_ENABLED", "yaml,ini")
os.environ.setdefault("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True")
os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")

REQUIRED = ("dicomtls_port", "dicomtls_ca")


@dataclass(frozen=True)
class Deployment:
    """One inventory host: where its DICOM endpoint answers, how to authenticate, and what it declares about
    its own files (paths on that host, for the server-side checks)."""

    host: str  # the inventory's name for it
    address: str  # dicomtls_host, else ansible_host, else the inventory name: where clients connect
    port: int
    ca: Path
    sni: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    called_aet: str = "ORTHANC"
    calling_aet: str | None = None
    """dicomtls_calling_aet: the AE title the clients call this host as (None: --calling-aet, else DICOMTLS)."""
    orthanc_rest: str | None = None
    server_cert: str | None = None
    server_key: str | None = None
    orthanc_config: str | None = None
    proxy: str | None = None  # envoy | traefik | nginx | haproxy | orthanc: whose process and version to check
    listen_port: int | None = None  # the port on the host itself, when a NAT or Docker publishes another
    key_owner: str | None = None  # who must own the server key (default: whoever runs the proxy)
    inventory: Path = Path(".")
    groups: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    """dicomtls_policy: what must hold for this host, as --policy takes it (preset:NAME, or a policy file here)."""

    @property
    def declares_server_side(self) -> bool:
        """Whether the host says anything about itself: only then is it inspected (and must be reachable so)."""
        return any((self.proxy, self.listen_port, self.server_cert, self.server_key, self.orthanc_config))

    def request(self, calling_aet: str | None = None) -> Request:
        """The probe request for this host; ``calling_aet`` (--calling-aet) where the host sets none."""
        return Request(self.address, self.port, self.ca, self.sni, self.client_cert, self.client_key,
                       self.called_aet, orthanc_rest=self.orthanc_rest, name=self.host,
                       calling_aet=self.calling_aet or calling_aet or DEFAULT_CALLING_AET)


def load_inventory(path: Path, limit: str | None = None) -> list[Deployment]:
    """Every selected host as a deployment; a missing or malformed variable is a one-line usage error."""
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager, split_host_pattern
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    if not os.path.isfile(path):  # os.path: False for a name too long for the file system too, where Path raises
        raise UsageError(f"--inventory {path}: no such file: give an Ansible inventory (YAML or INI)")
    if limit and any(not part.lstrip("!&") for part in split_host_pattern(limit)):  # Ansible: IndexError
        raise UsageError(f"--limit {limit!r}: a ! or & needs a host or group after it, e.g. 'all:!staging'")
    loader = DataLoader()
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            inventory = InventoryManager(loader=loader, sources=[str(path)])
            if limit:
                inventory.subset(limit)
            hosts = inventory.get_hosts()
    except AnsibleError:
        raise UsageError(f"--inventory {path}: {_why_unparsed(said.getvalue())}") from None
    if not hosts:
        where = f"--limit {limit!r} selects" if limit else f"--inventory {path} lists"
        raise UsageError(f"{where} no hosts: name a host or group of the inventory")
    variables = VariableManager(loader=loader, inventory=inventory)
    found = []
    for host in hosts:
        try:  # host_vars/ and group_vars/ are read here: a file of them that is not a mapping fails now
            values = variables.get_vars(host=host)
        except AnsibleError as exc:
            raise UsageError(f"--inventory {path}: host {host.name}: {str(exc).splitlines()[0]}") from None
        templar = Templar(loader=loader, variables=values)
        found.append(_deployment(host.name, _Vars(host.name, values, templar, path), path))
    return found


def _why_unparsed(said: str) -> str:
    """Ansible's first reason, on one line: each plugin it tried warns, the YAML one is the one that matters."""
    for line in said.splitlines():
        line = line.removeprefix("[WARNING]: ").strip()
        if line.startswith("Failed to parse inventory with"):
            return f"not a valid inventory: {line.split(': ', 1)[-1]}"
    return "not a valid inventory (YAML or INI): check it with `ansible-inventory --list -i FILE`"


@dataclass
class _Vars:
    host: str
    values: Any
    templar: Any
    inventory: Path

    def get(self, name: str) -> Any:
        if name not in self.values:
            return None
        try:
            return self.templar.template(self.values[name])
        except Exception as exc:  # noqa: BLE001 - ansible raises several template error types
            raise UsageError(f"inventory {self.inventory}: host {self.host}: {name} does not template: "
                             f"{str(exc).splitlines()[0]}") from None

    def fail(self, name: str, why: str) -> UsageError:
        return UsageError(f"inventory {self.inventory}: host {self.host}: {name} {why}")

    def text(self, name: str) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, f"is {value!r}: give it as a string")
        return str(value)

    def port(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            port = int(str(value))
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise self.fail(name, f"is {value!r}: give a TCP port number (1-65535)")
        return port

    def policies(self, name: str) -> tuple[str, ...]:
        """``preset:NAME`` or policy files on this machine (relative to the inventory), one or a list."""
        value = self.get(name)
        listed = [value] if isinstance(value, str) else value if isinstance(value, list) else None
        if value is None:
            return ()
        if not listed or not all(isinstance(v, str) and v.strip() for v in listed):
            raise self.fail(name, f"is {value!r}: give preset:NAME or a policy file, or a list of them")
        found = []
        for spec in listed:
            path = Path(spec) if spec.startswith("preset:") or Path(spec).is_absolute() else self.inventory.parent / spec
            if not spec.startswith("preset:") and not os.path.isfile(path):
                raise self.fail(name, f"names {path}, which is not a readable file: fix the path")
            found.append(spec if spec.startswith("preset:") else str(path))
        return tuple(found)

    def file(self, name: str) -> Path | None:
        """A file on this machine; relative paths are relative to the inventory."""
        text = self.text(name)
        if text is None:
            return None
        path = Path(text) if Path(text).is_absolute() else self.inventory.parent / text
        if not os.path.isfile(path):  # os.path: False for a name too long for the file system too, where Path raises
            raise self.fail(name, f"names {path}, which is not a readable file: fix the path")
        return path


def _calling_aet(v: _Vars) -> str | None:
    title = v.text("dicomtls_calling_aet")
    if title is None:
        return None
    try:
        return check_ae_title(title, "AE title")
    except ValueError as exc:
        raise v.fail("dicomtls_calling_aet", f"is {title!r}: not a DICOM AE title "
                                             f"({str(exc).split(': ', 1)[1]})") from None


def _deployment(host: str, v: _Vars, inventory: Path) -> Deployment:
    for name in REQUIRED:
        if v.get(name) is None:
            raise UsageError(f"inventory {inventory}: host {host} has no {name}: set it for the host "
                             f"(host_vars/{host}.yml) or its group (group_vars/GROUP.yml)")
    address = v.text("dicomtls_host") or v.text("ansible_host") or host
    if ip_literal(address) is None:
        address = check_name(address, f"inventory {inventory}: host {host}: address")
    sni = v.text("dicomtls_sni")
    cert, key = v.file("dicomtls_client_cert"), v.file("dicomtls_client_key")
    if (cert is None) != (key is None):
        raise v.fail("dicomtls_client_cert" if cert is None else "dicomtls_client_key",
                     "is missing: dicomtls_client_cert and dicomtls_client_key go together")
    rest = v.text("dicomtls_orthanc_rest")
    if rest is not None and not rest.startswith("http://"):
        raise v.fail("dicomtls_orthanc_rest", f"is {rest!r}: give it as http://HOST:PORT")
    proxy = v.text("dicomtls_proxy")
    if proxy is not None and proxy not in PROGRAMS:
        raise v.fail("dicomtls_proxy", f"is {proxy!r}: give one of {', '.join(PROGRAMS)}")
    port = v.port("dicomtls_port")
    assert port is not None
    ca = v.file("dicomtls_ca")
    assert ca is not None
    return Deployment(
        host=host, address=address, port=port, ca=ca,
        sni=check_name(sni, f"inventory {inventory}: host {host}: dicomtls_sni") if sni else None,
        client_cert=cert, client_key=key, called_aet=v.text("dicomtls_called_aet") or "ORTHANC",
        calling_aet=_calling_aet(v),
        orthanc_rest=rest.rstrip("/") if rest else None,
        server_cert=v.text("dicomtls_server_cert"), server_key=v.text("dicomtls_server_key"),
        orthanc_config=v.text("dicomtls_orthanc_config"), proxy=proxy,
        listen_port=v.port("dicomtls_listen_port"), key_owner=v.text("dicomtls_key_owner"),
        inventory=inventory, groups=tuple(str(g) for g in v.get("group_names") or ()),
        policies=v.policies("dicomtls_policy"),
    )
