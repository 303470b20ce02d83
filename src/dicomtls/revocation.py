"""Whether the test PKI's CRL revokes a client certificate: what a server that names no reason meant.

HAProxy 2.6 logs a revoked client certificate as "SSL client certificate not trusted", the same words as one from
an unknown CA; the CRL the PKI wrote tells the two apart, as the certificate's own notAfter tells an expired one.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509

_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


def revoked_on(cert_path: Path, crl_path: Path) -> str | None:
    """When a CRL in ``crl_path`` (PEM, one per CA) from the leaf's issuer revoked it; None if none does, or the
    PKI has no CRL."""
    try:
        # cryptography reads one CRL per call; the file holds one per CA.
        crls = [x509.load_pem_x509_crl(block) for block in _PEM_CRL.findall(crl_path.read_bytes())]
    except (OSError, ValueError):
        return None
    leaf = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    for crl in crls:
        if crl.issuer != leaf.issuer:
            continue
        if (entry := crl.get_revoked_certificate_by_serial_number(leaf.serial_number)) is not None:
            return entry.revocation_date_utc.isoformat(timespec="seconds")
    return None
