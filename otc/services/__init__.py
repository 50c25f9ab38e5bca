"""Writes for the OTC data path: ingest → normalize → compute (analytics + quality).

Reads live in :mod:`otc.selectors`. Each service is one transaction, so a failure at
any step leaves no half-written rows.
"""

from otc.services.compute import ComputeResult, compute_capture
from otc.services.errors import CaptureNotFound, NotNormalized, OtcError, QualityGateFailed
from otc.services.ingest import IngestResult, ingest_file, ingest_lines
from otc.services.normalize import NormalizeResult, normalize_capture

__all__ = [
    "CaptureNotFound",
    "ComputeResult",
    "IngestResult",
    "NormalizeResult",
    "NotNormalized",
    "OtcError",
    "QualityGateFailed",
    "compute_capture",
    "ingest_file",
    "ingest_lines",
    "normalize_capture",
]
