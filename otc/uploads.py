"""Upload size limit: stop reading an upload once it passes ``SPINE_UPLOAD_MAX_BYTES``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest


def upload_too_large(request: Any) -> bool:
    """Whether this request's upload was cut off at the size limit."""
    return bool(getattr(request, "upload_too_large", False))


class SizeLimitUploadHandler(FileUploadHandler):
    """Counts upload bytes and stops the parse past the limit."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = int(settings.SPINE_UPLOAD_MAX_BYTES)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            if self.request is not None:
                self.request.upload_too_large = True  # type: ignore[attr-defined]
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
