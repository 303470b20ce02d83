"""Which module turns a proxy configuration into environments, keyed by the kind of file recognition.survey() found
(an nginx.conf, a compose project, an haproxy.cfg): each translation module registers itself with ``@translates``,
so a new format is one module, and a compose project hands its proxy's configuration to the same translator a
standalone file of that kind gets. Kubernetes and Envoy YAML are read together instead (a VirtualService names a
Gateway in another file), by manifests.read_manifests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dicomtls.manifests.deployment import Deployment
from dicomtls.manifests.recognition import FileKind
from dicomtls.manifests.translation import Translation

Translator = Callable[[Path, Deployment | None], list[Translation]]
"""(the file, the compose deployment that mounts it or None) -> one Translation per environment it describes."""

_TRANSLATORS: dict[FileKind, Translator] = {}


def translates(kind: FileKind) -> Callable[[Translator], Translator]:
    """Register the decorated function as the translator of files of ``kind``."""
    def register(translator: Translator) -> Translator:
        if kind in _TRANSLATORS:
            raise ValueError(f"two translators for {kind.value} files")
        _TRANSLATORS[kind] = translator
        return translator
    return register


def translator(kind: FileKind | None) -> Translator | None:
    return _TRANSLATORS.get(kind) if kind is not None else None


def translated_kinds() -> frozenset[FileKind]:
    return frozenset(_TRANSLATORS)
