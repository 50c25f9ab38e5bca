"""The raw archive: each capture's original bytes, zstandard-compressed, named by
SHA-256 and verified on every read (Django's ``storages["archive"]``, docs/otc.md)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

__all__ = [
    "ArchiveCorrupted",
    "ArchiveError",
    "ArchiveMissing",
    "ArchiveUnavailable",
    "ArchivedFile",
    "LinePage",
    "archive_storage",
    "describe_storage",
    "iter_chunks",
    "iter_lines",
    "line_text",
    "object_name",
    "probe",
    "read_lines",
    "read_page",
    "store",
    "verify",
]

_CHUNK = 1 << 20
#: zstandard level 3: about 6x smaller than FINRA's text at several hundred MB/s.
_LEVEL = 3
#: Spooled in memory up to this size while compressing, then a temporary file.
_SPOOL_BYTES = 16 << 20
_HEX = frozenset("0123456789abcdef")


class ArchiveError(Exception):
    """The archive cannot give a capture's bytes."""


class ArchiveMissing(ArchiveError):
    """No archive object for a checksum."""


class ArchiveCorrupted(ArchiveError):
    """An archive object whose bytes do not decompress to its checksum."""


class ArchiveUnavailable(ArchiveError):
    """The archive's storage could not be reached or refused the request."""


@dataclass(frozen=True)
class ArchivedFile:
    """What :func:`store` kept: the original's checksum and size, and the object's."""

    checksum: str
    size: int
    name: str
    stored_size: int
    created: bool
    #: True when an object already under the name failed verification and was replaced.
    repaired: bool = False


@dataclass(frozen=True)
class LinePage:
    """Lines of one archived file, read after verifying all of it (:func:`read_page`)."""

    checksum: str
    start: int
    lines: list[tuple[int, bytes]]
    #: How many lines the whole file has (a last line without a line ending counts).
    line_count: int


def archive_storage() -> Storage:
    return storages["archive"]


def describe_storage(storage: Storage | None = None) -> str:
    """Where the archive lives, for messages: a directory or ``s3://bucket/prefix``
    (never credentials)."""
    storage = storage or archive_storage()
    if isinstance(storage, FileSystemStorage):
        return str(storage.location)
    bucket = getattr(storage, "bucket_name", None)
    if bucket:
        prefix = str(getattr(storage, "location", "") or "").strip("/")
        return f"s3://{bucket}/{prefix}".rstrip("/")
    return type(storage).__name__


def object_name(checksum: str) -> str:
    """Where the bytes with SHA-256 ``checksum`` live in the archive."""
    if len(checksum) != 64 or not set(checksum) <= _HEX:
        raise ValueError(f"not a SHA-256 hex digest: {checksum[:80]!r}")
    return f"sha256/{checksum[:2]}/{checksum}.zst"


def _unavailable(name: str, exc: Exception) -> ArchiveUnavailable:
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    return ArchiveUnavailable(f"archive storage failed on {name}: {detail}")


def store(handle: BinaryIO) -> ArchivedFile:
    """Compress ``handle`` (from its position to the end) into the archive under its
    checksum; bytes already archived are not written again.

    Safe when several processes store the same bytes at once: an object only ever
    appears under its name complete (a rename on a filesystem, one PUT on S3), and
    every writer writes the same content. An existing object of another size is
    verified and, if it is corrupt, replaced (``repaired``).
    """
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
        repaired = False
        try:
            if storage.exists(name):
                existing = storage.size(name)
                if existing == stored_size:
                    return ArchivedFile(checksum, size, name, existing, created=False)
                try:
                    verify(checksum)
                except ArchiveCorrupted:
                    repaired = True
                else:
                    return ArchivedFile(checksum, size, name, existing, created=False)
            spool.seek(0)
            _put(storage, name, spool)
        except ArchiveError:
            raise
        except Exception as exc:  # botocore and OS errors: the storage said no
            raise _unavailable(name, exc) from exc
    return ArchivedFile(checksum, size, name, stored_size, created=True, repaired=repaired)


def _put(storage: Storage, name: str, spool: BinaryIO) -> None:
    """Write ``spool`` as object ``name`` so that it is never seen half-written."""
    if isinstance(storage, FileSystemStorage):
        final = storage.path(name)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        partial = f"{final}.{uuid.uuid4().hex}.partial"
        try:
            with open(partial, "xb") as out:
                while chunk := spool.read(_CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if storage.file_permissions_mode is not None:
                os.chmod(partial, storage.file_permissions_mode)
            # Atomic; a concurrent writer of the same name wrote the same bytes.
            os.replace(partial, final)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return
    # Object stores (S3: one PUT, visible only when complete) overwrite in place.
    saved = storage.save(name, File(spool, name=name))
    if saved != name:
        storage.delete(saved)
        raise ArchiveUnavailable(
            f"archive storage {type(storage).__name__} renamed {name} to {saved} "
            "(configure it to overwrite: objects are named by their content)"
        )


def iter_chunks(checksum: str) -> Iterator[bytes]:
    """The original bytes of ``checksum`` in chunks; raises :class:`ArchiveCorrupted`
    after the last chunk if they do not hash to it (callers writing rows must only
    commit once the iterator is exhausted)."""
    storage = archive_storage()
    name = object_name(checksum)
    where = f"archive object {name} in {describe_storage(storage)}"
    try:
        raw = storage.open(name, "rb")
    except FileNotFoundError:
        raise ArchiveMissing(f"{where} is missing") from None
    except Exception as exc:
        if _is_not_found(exc):
            raise ArchiveMissing(f"{where} is missing") from None
        raise _unavailable(name, exc) from exc
    digest = hashlib.sha256()
    size = 0
    try:
        with raw:
            reader = zstandard.ZstdDecompressor().stream_reader(
                raw, read_size=_CHUNK, read_across_frames=True
            )
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                yield chunk
    except zstandard.ZstdError as exc:
        raise ArchiveCorrupted(f"{where} is corrupted: it does not decompress ({exc})") from exc
    except FileNotFoundError:
        raise ArchiveMissing(f"{where} is missing") from None
    except OSError as exc:
        raise _unavailable(name, exc) from exc
    except Exception as exc:
        if _is_not_found(exc):
            raise ArchiveMissing(f"{where} is missing") from None
        raise _unavailable(name, exc) from exc
    if digest.hexdigest() != checksum:
        raise ArchiveCorrupted(
            f"{where} is corrupted: it decompresses to {size:,} bytes with SHA-256 "
            f"{digest.hexdigest()}, not {checksum}"
        )


def _is_not_found(exc: Exception) -> bool:
    """A botocore ClientError for a missing key or bucket (without importing botocore)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


def verify(checksum: str) -> int:
    """Read the whole object back; its original size, or :class:`ArchiveError`."""
    return sum(len(chunk) for chunk in iter_chunks(checksum))


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


def read_page(checksum: str, start: int, count: int) -> LinePage:
    """Lines ``start`` … ``start + count - 1`` (the header is line 1) with their line
    endings, and the file's line count, after verifying the whole object.

    Only chunks holding wanted lines are split; the rest are hashed and their line
    endings counted, so a page costs one decompress-and-hash pass over the object.
    """
    if start < 1 or count < 0:
        raise ValueError("start must be >= 1 and count >= 0")
    stop = start + count
    number = 1  # the line the next byte belongs to
    partial: list[bytes] = []  # line ``number`` so far, kept while it is wanted
    lines: list[tuple[int, bytes]] = []
    last_byte = b""
    for chunk in iter_chunks(checksum):
        last_byte = chunk[-1:]
        endings = chunk.count(b"\n")
        if number >= stop or number + endings < start:
            number += endings
            continue
        pieces = chunk.split(b"\n")
        for piece in pieces[:-1]:
            if start <= number < stop:
                partial.append(piece)
                lines.append((number, b"".join(partial) + b"\n"))
            partial.clear()
            number += 1
        if start <= number < stop:
            partial.append(pieces[-1])
    unterminated = last_byte not in (b"", b"\n")
    if partial and unterminated and start <= number < stop:
        lines.append((number, b"".join(partial)))
    line_count = number if unterminated else number - 1
    return LinePage(checksum, start, lines, line_count)


def read_lines(checksum: str, start: int, count: int) -> list[tuple[int, bytes]]:
    """Lines ``start`` … ``start + count - 1`` (the header is line 1) as
    ``(line number, bytes with the line ending)``, after verifying the whole object."""
    return read_page(checksum, start, count).lines


def line_text(line: bytes) -> str:
    """A line as the API and commands show it: the line ending (``\\n`` or ``\\r\\n``)
    removed, the rest decoded as UTF-8 with undecodable bytes as U+FFFD (a UTF-8 BOM
    on line 1 stays, as U+FEFF)."""
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line.decode("utf-8", errors="replace")


def probe() -> str:
    """Write, read back and delete a small object under ``probe/``; where the archive
    is, or :class:`ArchiveUnavailable` naming what failed (the health check)."""
    storage = archive_storage()
    where = describe_storage(storage)
    name = f"probe/{uuid.uuid4().hex}"
    payload = b"market-spine archive probe\n"
    try:
        with tempfile.SpooledTemporaryFile() as handle:
            handle.write(payload)
            handle.seek(0)
            saved = storage.save(name, File(handle, name=name))
        try:
            with storage.open(saved, "rb") as back:
                if back.read() != payload:
                    raise ArchiveUnavailable(f"archive {where} returned other bytes than written")
        finally:
            storage.delete(saved)
    except ArchiveError:
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ArchiveUnavailable(f"archive {where} is not writable: {detail}") from exc
    return where
