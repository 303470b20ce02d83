"""What every manifest model shares: unknown fields kept and reported, fields read but not reproduced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    """Unknown fields are kept (and reported), fields in ``unhonoured`` are read but cannot be reproduced."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    unhonoured: ClassVar[frozenset[str]] = frozenset()


def unhonoured_fields(model: BaseModel, path: str) -> list[str]:
    """Every field set in the manifest that the translation does not reproduce, as a dotted path."""
    found: list[str] = []
    names = {f.alias or name: name for name, f in type(model).model_fields.items()}
    for alias, name in names.items():
        if name not in model.model_fields_set:
            continue
        value = getattr(model, name)
        here = f"{path}.{alias}"
        if name in getattr(model, "unhonoured", ()):
            found.append(f"{here}: not reproduced")
        elif isinstance(value, BaseModel):
            found += unhonoured_fields(value, here)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found += unhonoured_fields(item, f"{here}[{index}]")
    found += [f"{path}.{key}: not understood" for key in (model.model_extra or {})]
    return found


class Metadata(Spec):
    name: str
    namespace: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


@dataclass
class Manifests:
    """The resources read from a set of files, each with where it came from."""

    resources: list[tuple[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # documents of kinds the tool does not read
    kinds: list[str] = field(default_factory=list)  # every document's kind, read or not, for saying what was found
    located: dict[str, Any] = field(default_factory=dict)
    """A resource's where (as in ``resources``) -> its document's file and first line (located.At)."""

    def of(self, kind: type) -> list[tuple[str, Any]]:
        return [(where, r) for where, r in self.resources if isinstance(r, kind)]
