"""A Helm chart rendered by Helm's own engine, as `helm template` renders it: the `helm` binary where it is on PATH,
otherwise Helm's Go SDK through the helm-python-sdk wheel (offline, no cluster). Subcharts the chart depends on but
that are not in its charts/ directory are skipped and listed with their version: the Traefik chart's version says
which Traefik the user runs. The rendered documents are YAML, for manifests.read_manifests."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version
from ruamel.yaml import YAML

from dicomtls.errors import UsageError
from dicomtls.manifests.located import At, shown
from dicomtls.manifests.spec import Spec

RENDER_TIMEOUT = 120  # seconds: a chart renders in well under one


class Dependency(Spec):
    name: str
    version: str
    repository: str | None = None
    condition: str | None = None
    at: At

    @property
    def traefik_major(self) -> int | None:
        """The Traefik major a version of the Traefik chart ships: chart 28.0.0 brought Traefik v3.0."""
        if self.name != "traefik":
            return None
        try:
            return 3 if Version(self.version.lstrip("^~>=< ").split(",")[0].replace("x", "0")) >= Version("28") else 2
        except InvalidVersion:
            return None


class RenderedChart(Spec):
    chart: Path
    name: str
    version: str
    app_version: str | None = None
    engine: str  # "helm v3.16.2" or "helm-python-sdk 0.2.2 (Helm SDK v4.2.3)"
    text: str  # every document, each after a "# Source: CHART/templates/FILE" line, as `helm template` prints it
    documents: tuple[tuple[str, dict[str, Any]], ...] = ()  # (template path, document)
    missing: tuple[Dependency, ...] = ()
    """Subcharts declared in Chart.yaml but not in charts/: not rendered."""

    @property
    def not_reproduced(self) -> tuple[str, ...]:
        return tuple(f"{d.at}: dependency {d.name} {d.version}"
                     + (f" (Traefik v{d.traefik_major})" if d.traefik_major else "")
                     + ": not in charts/ (run `helm dependency build`), so not rendered" for d in self.missing)

    def write(self, path: Path) -> Path:
        """The rendered documents as one YAML file, for read_manifests."""
        path.write_text(self.text)
        return path


def _redacted(document: dict[str, Any]) -> dict[str, Any]:
    """A Secret's values replaced: the tool generates its own PKI, and key material (genCA/genSignedCert output)
    must reach no file or report."""
    if document.get("kind") != "Secret":
        return document
    return {**document, **{k: {name: "REDACTED" for name in document[k] or {}} for k in ("data", "stringData")
                           if isinstance(document.get(k), dict)}}


def is_chart(path: Path) -> bool:
    return path.is_dir() and (path / "Chart.yaml").is_file()


def render_chart(chart: Path, release: str = "release", namespace: str = "default",
                 values: list[Path] | None = None, set_values: list[str] | None = None) -> RenderedChart:
    """Render ``chart`` as `helm template RELEASE CHART -n NAMESPACE -f VALUES… --set KEY=VALUE…` would. A chart
    Helm cannot load or render is a UsageError naming the file and line Helm reports."""
    if not is_chart(chart):
        raise UsageError(f"{shown(chart)}: not a Helm chart (no Chart.yaml in it)")
    metadata, dependencies = _chart_yaml(chart / "Chart.yaml")
    present = {p.name for p in (chart / "charts").iterdir()} if (chart / "charts").is_dir() else set()
    missing = tuple(d for d in dependencies if not any(n == d.name or n.startswith(f"{d.name}-") for n in present))
    for path in values or []:
        if not path.is_file():
            raise UsageError(f"--values {shown(path)}: no such file")
    binary = shutil.which("helm")
    if binary is not None:
        engine, rendered = _with_binary(binary, chart, release, namespace, values or [], set_values or [], missing)
    else:
        engine, rendered = _with_sdk(chart, release, namespace, values or [], set_values or [])
    documents: list[tuple[str, dict[str, Any]]] = []
    for source, body in rendered:
        try:
            loaded = [d for d in yaml.safe_load_all(body) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise UsageError(f"{_template(chart, source)}: renders to invalid YAML"
                             f"{f' at line {mark.line + 1} of its output' if mark else ''}") from None
        documents += [(source, _redacted(d)) for d in loaded if isinstance(d, dict)]
    text = [f"---\n# Source: {source}\n{yaml.safe_dump(d, sort_keys=False)}" for source, d in documents]
    return RenderedChart(chart=chart, name=str(metadata.get("name", chart.name)), version=str(metadata.get("version")),
                         app_version=str(metadata["appVersion"]) if metadata.get("appVersion") else None,
                         engine=engine, text="".join(text), documents=tuple(documents), missing=missing)


def _chart_yaml(path: Path) -> tuple[dict[str, Any], list[Dependency]]:
    try:
        document = YAML(typ="rt").load(path.read_text())
    except Exception as exc:  # ruamel's errors have no common base with a mark
        mark = getattr(exc, "problem_mark", None)
        where = At(file=path, line=mark.line + 1 if mark else None)
        raise UsageError(f"{where}: not valid YAML: fix Chart.yaml") from None
    if not isinstance(document, dict) or "name" not in document or "version" not in document:
        raise UsageError(f"{shown(path)}: a Chart.yaml needs name and version")
    raw: Any = document.get("dependencies") or []
    dependencies = [Dependency(name=str(d["name"]), version=str(d.get("version", "")),
                               repository=d.get("repository"), condition=d.get("condition"),
                               at=At(file=path, line=raw.lc.item(i)[0] + 1))
                    for i, d in enumerate(raw) if isinstance(d, dict) and "name" in d]
    return dict(document), dependencies


def _with_sdk(chart: Path, release: str, namespace: str, values: list[Path],
              set_values: list[str]) -> tuple[str, list[tuple[str, str]]]:
    """Helm's Go SDK renders what is in the chart: missing subcharts are simply absent from it."""
    import helm_python as helm

    merged: dict[str, Any] = {}
    for path in values:
        try:
            merged = _merge(merged, helm.values_from_yaml(path.read_text()))
        except helm.HelmError as exc:
            line = _YAML_LINE.search(str(exc))
            raise UsageError(f"{At(file=path, line=int(line['line']) if line else None)}: not a values file Helm "
                             f"reads: {_one_line(str(exc))}") from None
    for expression in set_values:
        try:
            merged = _merge(merged, helm.parse_set_string(expression))
        except helm.HelmError as exc:
            raise UsageError(f"--set {expression}: Helm cannot parse it ({_one_line(str(exc))}): "
                             "write KEY=VALUE") from None
    try:
        rendered = helm.Chart.load(chart).render(merged, name=release, namespace=namespace, is_install=True)
    except helm.HelmError as exc:
        raise UsageError(f"{_located(chart, str(exc))}: Helm cannot render the chart: {_one_line(str(exc))}") from None
    engine = f"helm-python-sdk {helm.__version__} (Helm SDK {helm.helm_sdk_version()})"
    return engine, [(k, v) for k, v in sorted(rendered.items()) if not k.endswith(".txt")]


def _with_binary(binary: str, chart: Path, release: str, namespace: str, values: list[Path], set_values: list[str],
                 missing: tuple[Dependency, ...]) -> tuple[str, list[tuple[str, str]]]:
    """`helm template` refuses a chart whose dependencies are missing: it renders a copy without them."""
    version = subprocess.run([binary, "version", "--short"], capture_output=True, text=True,
                             timeout=RENDER_TIMEOUT).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="dicomtls-chart-") as scratch:
        copy = Path(scratch) / chart.name
        shutil.copytree(chart, copy)
        if missing:
            yaml_rt = YAML(typ="rt")
            document = yaml_rt.load((copy / "Chart.yaml").read_text())
            document["dependencies"] = [d for d in document["dependencies"]
                                        if d.get("name") not in {m.name for m in missing}]
            with (copy / "Chart.yaml").open("w") as out:
                yaml_rt.dump(document, out)
            (copy / "Chart.lock").unlink(missing_ok=True)
        command = [binary, "template", release, str(copy), "--namespace", namespace,
                   *(a for v in values for a in ("--values", str(v.resolve()))),
                   *(a for s in set_values for a in ("--set", s))]
        ran = subprocess.run(command, capture_output=True, text=True, timeout=RENDER_TIMEOUT)
    if ran.returncode != 0:
        message = _one_line(ran.stderr.strip().removeprefix("Error: "))
        raise UsageError(f"{_located(chart, message)}: Helm cannot render the chart: {message}")
    documents = re.split(r"^---\s*\n# Source: (\S+)\s*\n", ran.stdout, flags=re.M)
    return f"helm {version}", list(zip(documents[1::2], documents[2::2], strict=True))


_TEMPLATE_AT = re.compile(r"(?P<file>[\w.-]+(?:/[\w.-]+)*\.(?:ya?ml|tpl|txt|json)):(?P<line>\d+)")
_YAML_LINE = re.compile(r"yaml: line (?P<line>\d+)")


def _template(chart: Path, source: str) -> Path:
    """"orthanc/templates/x.yaml" (Helm names templates from the chart's name) as a file in ``chart``."""
    return chart / source.split("/", 1)[1] if "/" in source else chart / source


def _located(chart: Path, message: str) -> At:
    """The template file and line Helm's message names ("orthanc/templates/x.yaml:9"), else the chart."""
    if (found := _TEMPLATE_AT.search(message)) is not None:
        return At(file=_template(chart, found["file"]), line=int(found["line"]))
    return At(file=chart)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's mergeMaps: nested maps merged, anything else replaced by the later value."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = value
    return result
