"""The raw archive: each capture's original bytes, zstandard-compressed, named by
SHA-256 and verified on every read (Django's ``storages["archive"]``)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard
from django.core.files import File
from django.core.files.storage import Storage, storages

__all__ = [
    "ArchiveCorrupted",
    "ArchiveError",
    "ArchiveMissing",
    "ArchivedFile",
    "archive_storage",
    "iter_chunks",
    "iter_lines",
    "object_name",
    "read_lines",
    "store",
]

_CHUNK = 1 << 20
#: zstandard level 3: about 6x smaller than FINRA's text at several hundred MB/s.
_LEVEL = 3
#: Spooled in memory up to this size while compressing, then a temporary file.
_SPOOL_BYTES = 16 << 20


class ArchiveError(Exception):
    """The archive cannot give a capture's bytes."""


class ArchiveMissing(ArchiveError):
    """No archive object for a checksum."""


class ArchiveCorrupted(ArchiveError):
    """An archive object whose bytes do not decompress to its checksum."""


@dataclass(frozen=True)
class ArchivedFile:
    """What :func:`store` kept: the original's checksum and size, and the object's."""

    checksum: str
    size: int
    name: str
    stored_size: int
    created: bool


def archive_storage() -> Storage:
    return storages["archive"]


def object_name(checksum: str) -> str:
    """Where the bytes with SHA-256 ``checksum`` live in the archive."""
    if len(checksum) != 64 or any(c not in "0123456789abcdef" for c in checksum):
        raise ValueError(f"not a SHA-256 hex digest: {checksum[:80]!r}")
    return f"sha256/{checksum[:2]}/{checksum}.zst"


def store(handle: BinaryIO) -> ArchivedFile:
    """Compress ``handle`` (from its position to the end) into the archive under its
    checksum; bytes already archived are not written again."""
    digest = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        compressor = zstandard.ZstdCompressor(level=_LEVEL, write_checksum=True)
        with compressor.stream_writer(spool, closefd=False) as writer:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
        checksum = digest.hexdigest()
        name = object_name(checksum)
        storage = archive_storage()
        stored_size = spool.tell()
        if storage.exists(name):
            return ArchivedFile(checksum, size, name, storage.size(name), created=False)
        spool.seek(0)
        saved = storage.save(name, File(spool, name=name))
        if saved != name:
            # A concurrent store of the same bytes won the name; keep one object.
            storage.delete(saved)
    return ArchivedFile(checksum, size, name, stored_size, created=True)


def iter_chunks(checksum: str) -> Iterator[bytes]:
    """The original bytes of ``checksum`` in chunks; raises :class:`ArchiveCorrupted`
    after the last chunk if they do not hash to it (callers writing rows must only
    commit once the iterator is exhausted)."""
    storage = archive_storage()
    name = object_name(checksum)
    if not storage.exists(name):
        raise ArchiveMissing(f"archive object {name} is missing")
    digest = hashlib.sha256()
    try:
        with storage.open(name, "rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                yield chunk
    except zstandard.ZstdError as exc:
        raise ArchiveCorrupted(f"archive object {name} does not decompress: {exc}") from exc
    if digest.hexdigest() != checksum:
        raise ArchiveCorrupted(
            f"archive object {name} decompresses to SHA-256 {digest.hexdigest()}, not {checksum}"
        )


def iter_lines(checksum: str) -> Iterator[bytes]:
    """The original file's lines, line endings kept, verified as :func:`iter_chunks`."""
    tail = b""
    for chunk in iter_chunks(checksum):
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        for line in lines:
            yield line + b"\n"
    if tail:
        yield tail


def read_lines(checksum: str, start: int, count: int) -> list[tuple[int, bytes]]:
    """Lines ``start`` … ``start + count - 1`` (the header is line 1) as
    ``(line number, bytes with the line ending)``, after verifying the whole object."""
    if start < 1 or count < 0:
        raise ValueError("start must be >= 1 and count >= 0")
    stop = start + count
    page = [
        (number, line)
        for number, line in enumerate(iter_lines(checksum), start=1)
        if start <= number < stop
    ]
    return page
