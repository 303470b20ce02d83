"""A candidate's edits on a Helm chart's values: the edit is made on what the chart renders (by the module of the
rendered kind, fixes.traefik or fixes.istio), and each value it changes is traced back to the values key that
renders it, found by rendering again with that key changed. The patch then goes to the values file that sets the
key (the chart's values.yaml, or a --values file in the user's tree), so the chart renders the fix itself. What no
value renders (a route or a document the templates do not write) is not applicable: the templates would need it."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from dicomtls.fixes.candidates import Edit, NotApplicable
from dicomtls.fixes.roundtrip import edit_document
from dicomtls.manifests.charts import ChartValues, rendered_documents

Leaf = tuple[tuple[str | int, ...], Any]


def apply(kind: ModuleType, files: list[Path], resource: str, edits: tuple[Edit, ...],
          values: ChartValues) -> dict[Path, str]:
    """The values files' new texts that make the chart among ``files`` render ``kind``'s edits of ``resource``."""
    chart = next((f for f in files if f.is_dir()), None)
    assert chart is not None, "a chart's environment has its chart among its files"
    before = list(rendered_documents(chart, values).documents)
    wanted = _edited(kind, before, resource, edits)
    changes = [(path, new) for index, (old_doc, new_doc) in enumerate(zip(before, wanted, strict=True))
               for path, new in _changed(old_doc, new_doc, (index,))]
    sources = [chart / "values.yaml", *values.files]
    overrides: dict[tuple[str | int, ...], Any] = {}
    for path, new in changes:
        old = _at(before, path)
        key = _key_rendering(chart, values, sources, overrides, path, old, new)
        overrides[key] = new
    result: dict[Path, str] = {}
    for key, new in overrides.items():
        source = _definer(sources, key)
        text = result.get(source, source.read_text())
        changed = edit_document(text, lambda doc: isinstance(doc, dict), functools.partial(_set, key=key, value=new))
        assert changed is not None
        result[source] = changed
    return result


def _edited(kind: ModuleType, documents: list[dict[str, Any]], resource: str,
            edits: tuple[Edit, ...]) -> list[dict[str, Any]]:
    """The rendered documents with the edits made, as the rendered kind's module makes them in a file."""
    with tempfile.TemporaryDirectory(prefix="dicomtls-chart-fix-") as scratch:
        rendered = Path(scratch) / "rendered.yaml"
        rendered.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        text = kind.apply([rendered], resource, edits).get(rendered, rendered.read_text())
    after = [d for d in yaml.safe_load_all(text) if d is not None]
    if len(after) != len(documents):
        raise NotApplicable("the fix adds a resource the chart's templates do not render: change the templates")
    return after


def _changed(old: Any, new: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """The scalars that differ; a key or list item added or removed is a change of shape no value makes."""
    if isinstance(old, dict) and isinstance(new, dict):
        if old.keys() != new.keys():
            raise NotApplicable(f"the fix adds {'.'.join(map(str, path)) or 'a field'} fields the chart's templates "
                                "do not render: change the templates")
        for key in old:
            yield from _changed(old[key], new[key], (*path, key))
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            raise NotApplicable(f"the fix adds an item to {'.'.join(map(str, path[1:]))}, which the chart's "
                                "templates do not render: change the templates")
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _changed(a, b, (*path, index))
    elif old != new:
        yield path, new


def _at(documents: list[Any], path: tuple[str | int, ...]) -> Any:
    value: Any = documents
    for part in path:
        value = value[part]
    return value


def _leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[Leaf]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    else:
        yield path, value


def _key_rendering(chart: Path, values: ChartValues, sources: list[Path], overrides: dict[Any, Any],
                   path: tuple[str | int, ...], old: Any, new: Any) -> tuple[str | int, ...]:
    """The values key whose value renders ``old`` at ``path``: one holding that value, which renders ``new``
    there when set to it."""
    for expression in values.sets:  # a --set wins over every file: a value it gives is changed where it is given
        key_text, _, value_text = expression.partition("=")
        if value_text == str(old):
            raise NotApplicable(f"{key_text} comes from --set: change it there to {new}")
    merged: dict[str, Any] = {}
    for source in sources:
        if source.is_file():
            merged = _merge(merged, yaml.safe_load(source.read_text()) or {})
    for key, value in _leaves(merged):
        if str(value) != str(old):
            continue
        with tempfile.TemporaryDirectory(prefix="dicomtls-chart-fix-") as scratch:
            trial = Path(scratch) / "values.yaml"
            trial.write_text(yaml.safe_dump(_nested({**overrides, key: new})))
            rendered = rendered_documents(chart, ChartValues((*values.files, trial), values.sets)).documents
        if _at(list(rendered), path) == new:
            return key
    raise NotApplicable(f"no value of the chart renders {'.'.join(map(str, path[1:]))} ({old}): change the templates")


def _definer(sources: list[Path], key: tuple[str | int, ...]) -> Path:
    """The last values file (the one that wins) that sets ``key``; the chart's values.yaml when none does."""
    found = sources[0]
    for source in sources:
        document = yaml.safe_load(source.read_text()) if source.is_file() else None
        for part in key:
            document = document.get(part) if isinstance(document, dict) else None
            if document is None:
                break
        if document is not None:
            found = source
    return found


def _set(document: Any, key: tuple[str | int, ...], value: Any) -> None:
    for part in key[:-1]:
        document = document.setdefault(part, {})
    document[key[-1]] = value


def _nested(flat: dict[tuple[str | int, ...], Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in flat.items():
        _set(result, key, value)
    return result


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        result[key] = _merge(result[key], value) if isinstance(value, dict) and isinstance(result.get(key),
                                                                                            dict) else value
    return result
