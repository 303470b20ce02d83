"""The vocabulary a diagnosis concludes in: a cell's named ``Reason`` and the typed ``Facts`` behind it.

Apart from ``dicomtls.diagnose``, which reaches them, so that what only records or reads a verdict (the results
model, reports, diff, merge) imports no log pattern, no profile table and nothing that runs a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dicomtls.association import Rejection


class Reason(StrEnum):
    """Why a cell failed: exactly one per failed cell, named by scenarios' ``expect`` rules and in results.json."""

    DNS_UNRESOLVED = "dns-unresolved"
    TCP_REFUSED = "tcp-refused"
    TLS_NO_SHARED_CIPHER = "tls-no-shared-cipher"
    TLS_PROTOCOL_VERSION = "tls-protocol-version"
    TLS_UNKNOWN_CA = "tls-unknown-ca"
    TLS_CERT_REQUIRED = "tls-cert-required"
    TLS_CERT_EXPIRED = "tls-cert-expired"
    TLS_CERT_REVOKED = "tls-cert-revoked"
    TLS_HOSTNAME_MISMATCH = "tls-hostname-mismatch"
    TLS_NO_MATCHING_SNI = "tls-no-matching-sni"
    TLS_PLAINTEXT_TO_TLS_PORT = "tls-plaintext-to-tls-port"
    TLS_FELL_TO_HTTPS = "tls-fell-to-https"
    TLS_HANDSHAKE_FAILED = "tls-handshake-failed"
    CLIENT_OFFERS_NOTHING = "client-offers-nothing"
    DICOM_ASSOCIATION_REJECTED = "dicom-association-rejected"
    ASSOCIATION_REJECTED_CALLING_AET = "association-rejected-calling-aet"
    ASSOCIATION_REJECTED_CALLED_AET = "association-rejected-called-aet"
    DICOM_ASSOCIATION_ABORTED = "dicom-association-aborted"
    DIMSE_FAILURE = "dimse-failure"
    MOVE_DESTINATION_UNREACHABLE = "move-destination-unreachable"
    MOVE_DESTINATION_UNKNOWN = "move-destination-unknown"
    UPSTREAM_UNREACHABLE = "upstream-unreachable"
    HTTP_ROUTE_MISSING = "http-route-missing"
    HTTP_MISDIRECTED = "http-misdirected"
    HTTP_REFUSED = "http-refused"
    CONNECTION_LOST = "connection-lost"
    STORE_NOT_VERIFIED = "store-not-verified"
    SERVER_CHECK_FAILED = "server-check-failed"
    MISROUTED = "misrouted"
    TIMEOUT = "timeout"
    ENVIRONMENT_FAILED = "environment-failed"
    CLIENT_KEY_MISMATCH = "client-key-mismatch"
    UNKNOWN = "unknown"


class Side(StrEnum):
    """A party to the connection, as the facts name who turned whom away."""

    CLIENT = "client"
    SERVER = "server"  # whichever end terminates TLS: the DICOM server, or the proxy in front of it
    PROXY = "proxy"  # the proxy choosing a route for the connection (by its SNI)


@dataclass(frozen=True)
class PeerAlert:
    """A TLS alert the client received from its peer, as the client reported it."""

    description: str
    """Its RFC 8446 name: ``unknown_ca``, ``certificate_required``, ``handshake_failure``, …"""
    printed: str
    """The client's words for it, lower case with underscores as spaces: ``tlsv13 alert certificate required``."""


@dataclass(frozen=True)
class Facts:
    """What the client's error and the proxy's log lines established beyond the reason. Fix candidates,
    corroboration and the runner decide on these, never on a summary's wording."""

    refused_by: Side | None = None
    """Who turned the other away: the side that rejected the other's certificate (or its lack of one), or the proxy
    that had no route for the client's SNI. None when nobody refused (or a negotiation both sides' settings decide,
    such as no shared cipher)."""
    fallback_certificate: bool = False
    """The proxy logged serving its fallback certificate (Traefik's default) rather than one for the client's SNI."""
    peer_alert: PeerAlert | None = None
    """The TLS alert the client read from its peer, if it printed one."""
    proxy_logged_no_route: bool = False
    """The proxy's own log line for this connection turns it away for want of a route: a proxy that was up and
    deciding (see ``refused_by_a_live_proxy``)."""
    rejection: Rejection | None = None
    """The server's A-ASSOCIATE-RJ (result, source, reason), as the client received it."""

    @property
    def refused(self) -> Side | None:
        """Whose part was turned away: the server's certificate (SERVER), or the client's certificate or SNI."""
        if self.refused_by is None:
            return None
        return Side.SERVER if self.refused_by is Side.CLIENT else Side.CLIENT

    @property
    def server_refused_client(self) -> bool:
        """The server turned the client's certificate (or its lack of one) away. In TLS 1.3 the client has finished
        its half of the handshake by then, so whether it got to read the server's certificate first is a race
        with the server's alert."""
        return self.refused_by is Side.SERVER

    @property
    def fallback_certificate_rejected(self) -> bool:
        """The certificate the client rejected was the proxy's fallback, not the server's: a matter of SNI."""
        return self.fallback_certificate and self.refused_by is Side.CLIENT
