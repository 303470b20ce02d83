"""Where a C-MOVE sends: the client's own Storage SCP, declared to the server as a modality, as deployments do.

A C-MOVE makes the server open a new association, to the destination AE title's address in its own configuration
(Orthanc: DicomModalities). A deployment points that entry at the client as the server reaches it, and the return
association is plain DICOM from the server to there, outside the ingress. The cell's SCP listens on a port chosen
when it starts, so the entry is written then, through Orthanc's REST API (``PUT /modalities/{id}``: the same entry
DicomModalities holds, changed while it runs).
"""

from __future__ import annotations

import json
import socket
import urllib.request
from dataclasses import dataclass

from dicomtls.deadlines import bounded

MODALITY_ID = "dicomtls-move-destination"
REST_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class MoveDestinations:
    """How a cell tells the servers of an environment where its move destination listens."""

    rest_urls: tuple[str, ...]
    """Every server's REST API (each site's Orthanc)."""
    reach_client_at: str
    """The client's address as the servers reach it (local backend: loopback)."""

    def declare(self, aet: str, port: int) -> None:
        """Point ``aet`` at the client's ``port`` in every server's modalities."""
        body = json.dumps({"AET": aet, "Host": self.reach_client_at, "Port": port}).encode()
        for url in self.rest_urls:
            req = urllib.request.Request(f"{url}/modalities/{MODALITY_ID}", data=body, method="PUT")
            with urllib.request.urlopen(req, timeout=bounded(REST_TIMEOUT_S)):  # noqa: S310 - the environment's own
                pass


def closed_port(host: str) -> int:
    """A port on ``host`` where nothing listens (bound by the kernel's choice, then released)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])

