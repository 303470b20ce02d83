"""The container images a user's deployment names (``nginx:1.27.4``), against the versions a run used: the Docker
backend runs such an image where it can have it (dicomtls.upstream_images), and otherwise, like every backend, the
program it has; each difference is stated in every report beside the environment's other unhonoured lines, never
left for the user to notice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from dicomtls.components import lookup


class DeclaredImage(BaseModel):
    """One component's image as the user's deployment names it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str
    """The component kind it runs as ("nginx", "orthanc")."""
    reference: str
    """As written, interpolated: "nginx:1.27.4"."""
    version: str | None = None
    """The tag's version number; an image's own numbering (orthancteam/orthanc:25.1.1) is not the program's."""
    where: str
    """Who runs it, and where that is written: "docker-compose.yaml.local:4: compose service nginx-proxy"."""


def departures(images: Sequence[DeclaredImage], versions: Mapping[str, Sequence[str]]) -> list[str]:
    """One line per declared image whose version is not the one run (``versions``: kind -> the versions the run
    used), e.g. "…: compose service nginx-proxy runs nginx:1.27.4; this run used nginx 1.22.1"."""
    lines = []
    for image in images:
        ran = [v for v in versions.get(image.kind, []) if v]
        component = lookup(image.kind)
        # An upstream image's version reads "1.27.4 (REFERENCE@DIGEST)": the number is what its program reports.
        if component is None or not ran or (image.version is not None
                                            and [v.split(" ", 1)[0] for v in ran] == [image.version]):
            continue
        name = component.display_name
        source = ("its program reports that version" if all(" (" in v for v in ran)
                  else "the version this backend has")
        lines.append(f"{image.where} runs {image.reference}; this run used {name} {', '.join(ran)} ({source})")
    return lines
