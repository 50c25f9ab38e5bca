"""The raw archive on the filesystem and on a real S3 API server: byte-exact round trips,
one object per checksum, concurrent stores, corruption and absence detected on read."""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import date
from pathlib import Path

import pytest
import zstandard
from django.core.files.base import ContentFile

from otc import archive
from otc.archive import ArchiveCorrupted, ArchiveMissing, ArchiveUnavailable
from otc.sample.generator import generate_week
from tests.support.s3_server import S3Server, s3_archive_settings, use_archive


def _generated(rows: int = 300, seed: int = 5) -> bytes:
    buffer = io.BytesIO()
    generate_week(buffer, tier="T1", week=date(2025, 12, 1), rows=rows, seed=seed, ats=True)
    return buffer.getvalue()


def _dialect(data: bytes, kind: str) -> bytes:
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    if kind == "no-final-newline":
        return data.rstrip(b"\n")
    return data


def _lines(data: bytes) -> list[bytes]:
    """The file's lines, endings kept: split after every LF (CR stays with its line)."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return lines + ([parts[-1]] if parts[-1] else [])


def _objects() -> list[str]:
    storage = archive.archive_storage()
    found = []
    for prefix in storage.listdir("sha256")[0]:
        found += [f"sha256/{prefix}/{name}" for name in storage.listdir(f"sha256/{prefix}")[1]]
    return found


def _replace_object(name: str, data: bytes) -> None:
    """Overwrite an object at rest through the storage itself (a disk or bucket fault)."""
    storage = archive.archive_storage()
    storage.delete(name)
    assert storage.save(name, ContentFile(data)) == name


def _assert_exact(data: bytes) -> None:
    stored = archive.store(io.BytesIO(data))
    assert stored.checksum == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data) and stored.created
    assert stored.name == archive.object_name(stored.checksum)
    assert b"".join(archive.iter_chunks(stored.checksum)) == data
    expected = _lines(data)
    assert list(archive.iter_lines(stored.checksum)) == expected
    page = archive.read_page(stored.checksum, 1, len(expected) + 5)
    assert page.lines == list(enumerate(expected, start=1))
    assert page.line_count == len(expected)
    assert archive.verify(stored.checksum) == len(data)


def test_real_finra_week_round_trips_byte_exact(archive_kind: str, real_otc_file: Path) -> None:
    data = real_otc_file.read_bytes()
    _assert_exact(data)
    stored = archive.store(io.BytesIO(data))
    assert not stored.created and stored.stored_size < len(data) / 3
    page = archive.read_page(stored.checksum, 5_000, 10)
    assert [number for number, _ in page.lines] == list(range(5_000, 5_010))
    assert [line for _, line in page.lines] == _lines(data)[4_999:5_009]
    assert page.line_count == 5_329  # the header and 5,328 rows


@pytest.mark.parametrize("kind", ["lf", "crlf", "bom", "no-final-newline"])
def test_generated_weeks_round_trip_byte_exact(archive_kind: str, kind: str) -> None:
    data = _dialect(_generated(), kind)
    _assert_exact(data)
    first = archive.read_lines(hashlib.sha256(data).hexdigest(), 1, 1)[0][1]
    assert archive.line_text(first).startswith(
        "\ufefftierDescription|" if kind == "bom" else "tierDescription|"
    )
    last_number, last = archive.read_lines(hashlib.sha256(data).hexdigest(), 301, 10)[0]
    assert last_number == 301 and last == _lines(data)[-1]
    assert last.endswith(b"\r\n" if kind == "crlf" else b"\n") or kind == "no-final-newline"


@pytest.mark.embedded
def test_pages_across_chunk_boundaries_equal_the_file() -> None:
    data = _generated(rows=25_000, seed=11).replace(b"\n", b"\r\n")  # over 2 chunks of 1 MiB
    assert len(data) > 2 * (1 << 20)
    checksum = archive.store(io.BytesIO(data)).checksum
    expected = _lines(data)
    for start, count in [(1, 3), (9_000, 1000), (12_345, 777), (25_000, 5), (25_001, 1)]:
        page = archive.read_page(checksum, start, count)
        assert page.lines == list(enumerate(expected, start=1))[start - 1 : start - 1 + count]
        assert page.line_count == 25_001
    assert archive.read_page(checksum, 30_000, 10).lines == []
    assert archive.read_page(checksum, 1, 0).lines == []
    with pytest.raises(ValueError, match="start must be >= 1"):
        archive.read_page(checksum, 0, 1)


@pytest.mark.embedded
def test_empty_and_one_line_files() -> None:
    for data in (b"", b"x", b"x\n", b"\n\n"):
        _assert_exact(data)


def test_same_bytes_are_one_object(archive_kind: str) -> None:
    data = _generated()
    first = archive.store(io.BytesIO(data))
    second = archive.store(io.BytesIO(data))
    other = archive.store(io.BytesIO(_dialect(data, "crlf")))
    assert first.created and not second.created and other.created
    assert second.stored_size == first.stored_size
    assert sorted(_objects()) == sorted([first.name, other.name])


def test_concurrent_stores_of_the_same_bytes(archive_kind: str) -> None:
    data = _generated(rows=2_000)
    results: list[archive.ArchivedFile] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def store() -> None:
        try:
            barrier.wait(timeout=60)
            results.append(archive.store(io.BytesIO(data)))
            assert b"".join(archive.iter_chunks(hashlib.sha256(data).hexdigest())) == data
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(results) == 6 and len({result.checksum for result in results}) == 1
    assert _objects() == [results[0].name]
    assert archive.verify(results[0].checksum) == len(data)


@pytest.mark.parametrize(
    "fault",
    ["flip-byte", "truncate", "other-bytes", "empty", "not-zstd", "trailing-junk", "twice"],
)
def test_corrupted_object_is_detected_on_every_read(archive_kind: str, fault: str) -> None:
    data = _generated()
    stored = archive.store(io.BytesIO(data))
    compressed = archive.archive_storage().open(stored.name, "rb").read()
    broken = {
        "flip-byte": compressed[:100] + bytes([compressed[100] ^ 0x01]) + compressed[101:],
        "truncate": compressed[: len(compressed) // 2],
        "other-bytes": zstandard.ZstdCompressor().compress(data.replace(b"ATS", b"ATZ")),
        "empty": b"",
        "not-zstd": data[:500],
        "trailing-junk": compressed + b"junk after the frame",
        "twice": compressed + compressed,  # two valid frames: the bytes twice over
    }[fault]
    _replace_object(stored.name, broken)
    for read in (
        lambda: b"".join(archive.iter_chunks(stored.checksum)),
        lambda: list(archive.iter_lines(stored.checksum)),
        lambda: archive.read_lines(stored.checksum, 1, 1),
        lambda: archive.verify(stored.checksum),
    ):
        with pytest.raises(ArchiveCorrupted) as excinfo:
            read()
        message = str(excinfo.value)
        assert f"archive object {stored.name}" in message and "is corrupted" in message


def test_store_replaces_a_corrupted_object(archive_kind: str) -> None:
    data = _generated()
    stored = archive.store(io.BytesIO(data))
    _replace_object(stored.name, b"garbage")
    again = archive.store(io.BytesIO(data))
    assert again.created and again.repaired
    assert b"".join(archive.iter_chunks(stored.checksum)) == data
    assert _objects() == [stored.name]


def test_missing_object(archive_kind: str) -> None:
    checksum = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(ArchiveMissing, match=f"archive object sha256/{checksum[:2]}/{checksum}"):
        archive.verify(checksum)
    with pytest.raises(ArchiveMissing, match="is missing"):
        archive.read_page(checksum, 1, 10)
    with pytest.raises(ValueError, match="not a SHA-256"):
        archive.object_name("abc")


def test_probe_writes_and_cleans_up(archive_kind: str) -> None:
    where = archive.probe()
    assert where.startswith("s3://spine-test-") if archive_kind == "s3" else Path(where).is_dir()
    assert archive.archive_storage().listdir("probe")[1] == []


def test_unreachable_s3_is_unavailable(settings, s3_server: S3Server) -> None:
    config = s3_server.config("no-such-bucket-here")
    use_archive(settings, s3_archive_settings(config))
    with pytest.raises(ArchiveUnavailable, match="no-such-bucket-here"):
        archive.probe()
    with pytest.raises(archive.ArchiveError, match="no-such-bucket-here|archive"):
        archive.verify(hashlib.sha256(b"x").hexdigest())


@pytest.mark.embedded
def test_line_text_strips_the_ending_and_decodes() -> None:
    assert archive.line_text(b"a|b\r\n") == "a|b"
    assert archive.line_text(b"a|b\n") == "a|b"
    assert archive.line_text(b"a|b") == "a|b"
    assert archive.line_text(b"a\rb\n") == "a\rb"
    assert archive.line_text(b"\xef\xbb\xbfh|x\n") == "\ufeffh|x"
    assert archive.line_text("Société|é\n".encode()) == "Société|é"
    assert archive.line_text(b"bad \xff byte\n") == "bad \ufffd byte"
