"""The inbox (``SPINE_INBOX_DIR``): the one directory pipelines read FINRA files from."""

from __future__ import annotations

import os
import re
import stat
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings

__all__ = [
    "InboxPathError",
    "UploadTooLarge",
    "check_relative",
    "inbox_dir",
    "is_inbox_dir",
    "is_inbox_file",
    "open_inbox_file",
    "open_regular",
    "read_chunks",
    "remove",
    "store_stream",
    "upload_name",
]

#: Where uploads and shell ingests are written, below the inbox.
UPLOADS = "uploads"
#: Where a shell's backfill copies the week files of a directory outside the inbox.
BACKFILLS = "backfills"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_MAX = 100
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class InboxPathError(ValueError):
    """A path that may not be used (it is not a relative path inside the inbox)."""


class UploadTooLarge(ValueError):
    """More bytes than ``SPINE_UPLOAD_MAX_BYTES``."""


def inbox_dir() -> Path:
    """The inbox, resolved (its own symlinks followed); created when missing."""
    path = Path(settings.SPINE_INBOX_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def check_relative(value: str) -> str:
    """``value`` as a clean path relative to the inbox, or :class:`InboxPathError`.

    The target need not exist yet (a week's file may arrive later); if it or any of
    its parents exist as symlinks, where they lead must stay inside the inbox.
    """
    if "\x00" in value:
        raise InboxPathError("the path contains a NUL byte")
    text = value.strip()
    if not text:
        raise InboxPathError("the path is empty")
    if text.startswith(("/", "\\", "~")) or os.path.isabs(text) or re.match(r"^[A-Za-z]:", text):
        raise InboxPathError(
            "an absolute path is not allowed: name the file relative to the inbox (SPINE_INBOX_DIR)"
        )
    parts = [part for part in PurePosixPath(text.replace("\\", "/")).parts if part != "."]
    if ".." in parts:
        raise InboxPathError("'..' is not allowed in an inbox path")
    if not parts:
        return "."
    relative = "/".join(parts)
    root = inbox_dir()
    if not _inside(root, Path(os.path.realpath(root / relative))):
        raise InboxPathError(f"{relative} leads outside the inbox (a symlink?)")
    return relative


def _inside(root: Path, target: Path) -> bool:
    return target == root or root in target.parents


def is_inbox_file(relative: str) -> bool:
    """Whether ``relative`` is a regular file inside the inbox (symlinks within it
    followed, never out of it)."""
    try:
        target = _resolved(relative)
        return stat.S_ISREG(os.stat(target, follow_symlinks=False).st_mode)
    except (InboxPathError, OSError):
        return False


def is_inbox_dir(relative: str) -> bool:
    """Whether ``relative`` is a directory inside the inbox ('.' is the inbox)."""
    try:
        return stat.S_ISDIR(os.stat(_resolved(relative), follow_symlinks=False).st_mode)
    except (InboxPathError, OSError):
        return False


def _resolved(relative: str) -> Path:
    """The real path of ``relative`` inside the inbox, checked again now."""
    clean = check_relative(relative)
    root = inbox_dir()
    target = Path(os.path.realpath(root / clean))
    if not _inside(root, target):  # changed since check_relative looked
        raise InboxPathError(f"{clean} leads outside the inbox (a symlink?)")
    return target


@contextmanager
def open_inbox_file(relative: str) -> Iterator[BinaryIO]:
    """Open a regular file of the inbox for reading, following no symlink on the way.

    The path is re-resolved now; each directory below the inbox and the file itself
    are then opened with ``O_NOFOLLOW``, so a component swapped for a symlink since
    the resolution makes the open fail instead of reading what it points to.
    """
    root = inbox_dir()
    target = _resolved(relative)
    parts = target.relative_to(root).parts
    if not parts:
        raise IsADirectoryError(f"{relative} is a directory, not a file")
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise FileNotFoundError(f"no such file in the inbox: {relative}") from None
            except OSError:
                raise InboxPathError(f"{relative} changed while it was being opened") from None
            os.close(fd)
            fd = next_fd
        try:
            file_fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            raise FileNotFoundError(f"no such file in the inbox: {relative}") from None
        except OSError as exc:
            if os.path.islink(target):
                raise InboxPathError(f"{relative} changed to a symlink; not followed") from None
            raise OSError(f"cannot open {relative}: {exc.strerror}") from None
    finally:
        os.close(fd)
    with _regular(file_fd, relative) as handle:
        yield handle


@contextmanager
def open_regular(path: str | Path) -> Iterator[BinaryIO]:
    """Open any path the caller may read (the operator's own file at a shell), refusing
    what is not a regular file: a directory, FIFO or device is named as such, and a
    FIFO is never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a directory, not a file") from None
    with _regular(fd, str(path)) as handle:
        yield handle


@contextmanager
def _regular(fd: int, label: str) -> Iterator[BinaryIO]:
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{label} is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise OSError(f"{label} is not a regular file ({_kind(mode)})")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        yield handle


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def upload_name(original: str) -> str:
    """A unique inbox path for a file arriving as ``original``:
    ``uploads/<uuid>-<safe name>`` (the name reduced to letters, digits, ``._-``)."""
    base = PurePosixPath(original.replace("\\", "/")).name
    safe = _SAFE_NAME.sub("_", base).strip("._")[:_NAME_MAX] or "file"
    return f"{UPLOADS}/{uuid.uuid4().hex}-{safe}"


def store_stream(
    chunks: Iterable[bytes],
    original: str,
    *,
    max_bytes: int | None = None,
    exact: str | None = None,
) -> str:
    """Write ``chunks`` to a new file of the inbox and return its inbox path: a
    unique one (:func:`upload_name`), or ``exact`` when given.

    The bytes go to a hidden part file first, renamed into place when complete, so
    no pipeline can see a half-written file; past ``max_bytes`` the part file is
    removed and :class:`UploadTooLarge` raised.
    """
    relative = check_relative(exact) if exact is not None else upload_name(original)
    final = inbox_dir() / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(f".{final.name}.part")
    written = 0
    try:
        with open(part, "wb") as out:
            for chunk in chunks:
                written += len(chunk)
                if max_bytes is not None and written > max_bytes:
                    raise UploadTooLarge(f"the file is larger than {max_bytes:,} bytes")
                out.write(chunk)
        os.replace(part, final)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return relative


def read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    """A binary handle's bytes in 1 MiB chunks."""
    while chunk := handle.read(_CHUNK):
        yield chunk


def remove(relative: str) -> None:
    """Delete an inbox file written by :func:`store_stream` (an intake that failed)."""
    (inbox_dir() / check_relative(relative)).unlink(missing_ok=True)
