"""dicomtls: prove that DICOM over TLS works through real proxies, cell by cell."""

__version__ = "0.1.0"
