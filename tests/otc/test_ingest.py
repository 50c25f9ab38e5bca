"""Ingest: staged captures with lineage, raw rows, rejects, atomic failure, supersession."""

from __future__ import annotations

import hashlib
import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from otc import archive
from otc.models import Capture, CaptureState, Reject, SymbolWeekSummary, VenueVolume
from otc.parser import MAX_REJECT_RAW_CHARS, FileFormatError
from otc.services import compute_capture, ingest_file, ingest_lines, normalize_capture, partitions
from tests.otc.etl_support import (
    HEADER_LINE,
    WEEK,
    assert_nothing_stored,
    byte_lines,
    file_bytes,
    row,
    run_etl,
    write_file,
)

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

GOOD = [
    row("AABB", "OTCN", 6753871, 171),
    row("AABB", "OTCX", 40313, 3),
    row("ZZZZ", "OTCN", 500, 5),
]


# --- the real FINRA file ------------------------------------------------------------


def test_real_file_is_stored_as_received(real_otc_file: Path) -> None:
    result = ingest_file(real_otc_file, tier="OTC", week="2025-12-17", ats=True)

    assert result.status == "created"
    assert result.week == date(2025, 12, 15) and result.ats is True
    assert (result.rows, result.rejects) == (5328, 0)
    assert result.checksum == hashlib.sha256(real_otc_file.read_bytes()).hexdigest()
    capture = Capture.objects.get(pk=result.capture_id)
    assert capture.source == str(real_otc_file)
    assert capture.last_update_dates == ["2025-12-15"]
    assert capture.warnings == []
    # The archive holds the bytes as received, and the rows are parsed from it.
    assert b"".join(archive.iter_chunks(result.checksum)) == real_otc_file.read_bytes()
    assert archive.read_lines(result.checksum, 2, 1) == [
        (
            2,
            b"OTC|AABB|Asia Broadband Inc Common Stock|OTCN OTC LINK NQB IDQS"
            b"|OTCN|6753871|171|2025-12-15\n",
        )
    ]
    assert partitions.staged_exists(capture.pk) and not VenueVolume.objects.exists()
    normalize_capture(capture.pk)
    assert VenueVolume.objects.filter(capture=capture).count() == 5328
    first = VenueVolume.objects.get(capture=capture, line_no=2)
    assert (first.symbol, first.mpid, first.share_volume, first.trade_count) == (
        "AABB",
        "OTCN",
        6753871,
        171,
    )
    assert first.issue_name == "Asia Broadband Inc Common Stock"
    assert first.venue_name == "OTCN OTC LINK NQB IDQS"
    assert first.pk == (capture.pk << 32) + 2


# --- re-ingest and supersession -------------------------------------------------------


def test_identical_file_is_a_no_op_that_says_so(tmp_path: Path) -> None:
    path = write_file(tmp_path, GOOD)
    first = run_etl(path)  # current once computed
    again = ingest_file(path, tier="OTCE", week=WEEK + timedelta(days=3), ats=False)

    assert again.status == "unchanged"
    assert again.capture_id == first["capture_id"]
    assert again.as_dict()["status"] == "unchanged"
    assert again.state == CaptureState.CURRENT
    assert Capture.objects.count() == 1
    assert VenueVolume.objects.count() == 3


def test_identical_lines_are_a_no_op_after_streaming(tmp_path: Path) -> None:
    data = file_bytes(GOOD)
    first = run_etl(data)
    again = ingest_lines(iter(byte_lines(data)), source="api:q2", tier="OTC", week=WEEK, ats=False)

    assert (again.status, again.capture_id) == ("unchanged", first["capture_id"])
    assert Capture.objects.count() == 1
    assert VenueVolume.objects.count() == 3  # nothing parsed a second time


def test_identical_bytes_of_a_staged_capture_resume_it(tmp_path: Path) -> None:
    path = write_file(tmp_path, GOOD)
    staged = ingest_file(path, tier="OTC", week=WEEK, ats=False)
    again = ingest_lines(
        byte_lines(path.read_bytes()), source="api", tier="OTC", week=WEEK, ats=False
    )
    by_file = ingest_file(path, tier="OTC", week=WEEK, ats=False)

    assert (staged.status, staged.state, staged.current_capture_id) == ("created", "staged", None)
    for result in (again, by_file):
        assert (result.status, result.capture_id, result.state) == (
            "resumed",
            staged.capture_id,
            "staged",
        )
    assert Capture.objects.count() == 1
    assert partitions.staged_exists(staged.capture_id)


def test_new_capture_is_staged_until_compute_promotes_it(tmp_path: Path) -> None:
    old = run_etl(write_file(tmp_path, GOOD, "a.psv"))
    corrected = [*GOOD[:2], row("ZZZZ", "OTCN", 700, 7)]
    new = ingest_file(write_file(tmp_path, corrected, "b.psv"), tier="OTC", week=WEEK, ats=False)

    assert (new.status, new.state, new.current_capture_id) == (
        "created",
        "staged",
        old["capture_id"],
    )
    assert Capture.objects.get(pk=old["capture_id"]).state == CaptureState.CURRENT
    normalize_capture(new.capture_id)
    assert Capture.objects.get(pk=old["capture_id"]).state == CaptureState.CURRENT
    computed = compute_capture(new.capture_id)

    assert (computed.promoted, computed.superseded_capture_id) == (True, old["capture_id"])
    previous = Capture.objects.get(pk=old["capture_id"])
    current = Capture.objects.get(pk=new.capture_id)
    assert (previous.state, current.state) == ("superseded", "current")
    assert previous.superseded_by_id == current.pk
    assert previous.superseded_at == current.promoted_at
    assert current.promoted_at > current.ingested_at
    assert current.superseded_at is None
    assert VenueVolume.objects.filter(capture=previous).count() == 3  # still queryable


def test_ats_and_non_ats_are_separate_captures(tmp_path: Path) -> None:
    path = write_file(tmp_path, GOOD)
    non_ats = ingest_file(path, tier="OTC", week=WEEK, ats=False)
    ats = ingest_file(path, tier="OTC", week=WEEK, ats=True)
    assert ats.status == "created"
    assert ats.capture_id != non_ats.capture_id


def test_lines_from_an_api_keep_their_source() -> None:
    result = ingest_lines(
        byte_lines(file_bytes(GOOD)),
        source="finra api weeklySummary OTCE 2025-12-15",
        tier="OTCE",
        week="2025-12-15",
        ats=False,
    )
    capture = Capture.objects.get(pk=result.capture_id)
    assert (capture.tier, capture.source) == ("OTC", "finra api weeklySummary OTCE 2025-12-15")


# --- row-level problems become rejects ------------------------------------------------


def test_row_errors_become_rejects_with_line_and_reason(tmp_path: Path) -> None:
    lines = [
        row("GOOD", "OTCN", 100, 1),  # line 2
        row("BADV", "OTCN", "12,345", 1),  # 3 non-numeric volume
        row("NEGT", "OTCN", 100, -4),  # 4 negative trades
        row("", "OTCN", 100, 1),  # 5 empty symbol
        row("NOMP", "", 100, 1),  # 6 empty MPID
        row("TIER", "OTCN", 100, 1, tier="T1"),  # 7 wrong tier
        row("GOOD", "OTCX", 50, 1),  # 8
        row("GOOD", "OTCN", 999, 9),  # 9 duplicate of line 2
        "OTC|SHORT|only three",  # 10 wrong field count
    ]
    result = ingest_file(write_file(tmp_path, lines), tier="OTC", week=WEEK, ats=False)

    assert (result.rows, result.rejects) == (9, 6)  # duplicates are found by normalize
    assert normalize_capture(result.capture_id).duplicates == 1
    assert Capture.objects.get().reject_count == 7
    reasons = dict(Reject.objects.values_list("line_no", "reason"))
    assert reasons[3] == "non-numeric totalWeeklyShareQuantity: '12,345'"
    assert reasons[4] == "negative totalWeeklyTradeCount: -4"
    assert reasons[5] == "empty issueSymbolIdentifier"
    assert reasons[6] == "empty MPID"
    assert reasons[7].startswith("tier does not match expected tier OTC")
    assert reasons[9] == "duplicate symbol+MPID: GOOD/OTCN repeats line 2"
    assert reasons[10] == "expected 8 fields, got 3"
    assert Reject.objects.get(line_no=9).raw == lines[7]
    assert Reject.objects.get(line_no=9).kind == "duplicate"
    assert Reject.objects.get(line_no=3).kind == "invalid"
    assert len(archive.read_lines(Capture.objects.get().checksum, 1, 20)) == 10  # as received

    kept = VenueVolume.objects.order_by("mpid").values_list("symbol", "mpid", "share_volume")
    assert list(kept) == [("GOOD", "OTCN", 100), ("GOOD", "OTCX", 50)]


def test_bom_crlf_and_awkward_names_are_accepted(tmp_path: Path) -> None:
    name = 'Kestrel "K" Co., Ltd. ($1 Pref) (Cayman)'
    data = b"\xef\xbb\xbf" + file_bytes([row("KSTR", "OTCN", 10, 1, name=name)], newline="\r\n")
    result = ingest_lines(byte_lines(data), source="bom", tier="OTC", week=WEEK, ats=False)
    assert (result.rows, result.rejects) == (1, 0)
    normalize_capture(result.capture_id)
    assert VenueVolume.objects.get().issue_name == name


def test_mixed_last_update_dates_are_a_warning(tmp_path: Path) -> None:
    lines = [row("AAAA", "OTCN", 1, 1), row("BBBB", "OTCN", 1, 1, updated="2026-01-05")]
    result = ingest_file(write_file(tmp_path, lines), tier="OTC", week=WEEK, ats=False)
    assert result.rejects == 0
    assert result.warnings == ["mixed lastUpdateDate values in one file: 2025-12-29, 2026-01-05"]
    assert Capture.objects.get().last_update_dates == ["2025-12-29", "2026-01-05"]


def test_update_date_before_the_week_is_a_warning(tmp_path: Path) -> None:
    path = write_file(tmp_path, [row("AAAA", "OTCN", 1, 1, updated="2025-12-01")])
    result = ingest_file(path, tier="OTC", week=WEEK, ats=False)
    assert result.warnings == [
        "lastUpdateDate 2025-12-01 is before the reporting week 2025-12-15: "
        "check the week given for this capture"
    ]


# --- bounded input: over-long fields, unstorable values, control bytes, blank lines -----

MB = 1 << 20


def _stored(capture_id: int) -> dict[str, object]:
    return {
        "rejects": dict(
            Reject.objects.filter(capture_id=capture_id).values_list("line_no", "reason")
        ),
        "volumes": sorted(
            VenueVolume.objects.filter(capture_id=capture_id).values_list("symbol", "mpid")
        ),
    }


#: Enough good rows that one or two rejects keep the quality grade above F.
MANY = [row(f"G{i:03d}", "OTCN", i + 1, 1) for i in range(300)]


def test_a_1_mb_symbol_is_a_reject_and_the_rest_of_the_file_is_computed(tmp_path: Path) -> None:
    lines = [*GOOD, row("X" * MB, "OTCN", 10, 1, name="X Corp"), row("YYYY", "OTCN", 20, 2), *MANY]
    result = run_etl(write_file(tmp_path, lines))

    assert (result["ingest"]["rows"], result["ingest"]["rejects"]) == (305, 1)
    stored = _stored(result["capture_id"])
    assert stored["rejects"] == {5: "issueSymbolIdentifier is 1048576 characters; at most 20"}
    assert ("YYYY", "OTCN") in stored["volumes"] and len(stored["volumes"]) == 304
    raw = Reject.objects.get(line_no=5).raw
    assert raw.startswith("OTC|XXXX") and len(raw) < MAX_REJECT_RAW_CHARS + 50
    checksum = Capture.objects.get(pk=result["capture_id"]).checksum
    ((_, line),) = archive.read_lines(checksum, 5, 1)
    assert len(line) > MB and line.startswith(raw[:100].encode())  # the archive keeps it whole
    assert SymbolWeekSummary.objects.filter(capture_id=result["capture_id"]).count() == 303


def test_a_10_mb_issue_name_is_a_reject(tmp_path: Path) -> None:
    lines = [*GOOD, row("BIGN", "OTCN", 10, 1, name="N" * (10 * MB))]
    result = ingest_file(write_file(tmp_path, lines), tier="OTC", week=WEEK, ats=False)
    assert _stored(result.capture_id)["rejects"] == {
        5: "issueName is 10485760 characters; at most 255"
    }


def test_volumes_no_bigint_holds_are_rejects(tmp_path: Path) -> None:
    too_big = 9223372036854775808
    lines = [*GOOD, row("HUGE", "OTCN", too_big, 1), row("HUGE", "OTCX", too_big, 1), *MANY]
    result = run_etl(write_file(tmp_path, lines))

    assert _stored(result["capture_id"])["rejects"] == {
        5: f"totalWeeklyShareQuantity out of range: {too_big}",
        6: f"totalWeeklyShareQuantity out of range: {too_big}",
    }
    assert not SymbolWeekSummary.objects.filter(symbol="HUGE").exists()


def test_a_nul_byte_in_file_line_12_is_a_reject_on_line_12(tmp_path: Path) -> None:
    lines = [row(f"S{i:03d}", "OTCN", i + 1, 1) for i in range(10)]  # file lines 2..11
    lines += [row("NULL", "OTCN", 5, 1, name="Bad\x00Name"), row("LAST", "OTCN", 7, 1), *MANY]
    result = run_etl(write_file(tmp_path, lines))

    assert (result["ingest"]["rows"], result["ingest"]["rejects"]) == (312, 1)
    stored = _stored(result["capture_id"])
    position = lines[10].index("\x00") + 1
    assert stored["rejects"] == {
        12: f"control character '\\x00' in issueName at character {position}"
    }
    assert Reject.objects.get().raw == lines[10].replace("\x00", "\\x00")
    assert len(stored["volumes"]) == 311 and ("LAST", "OTCN") in stored["volumes"]


def test_other_control_characters_are_rejects_too(tmp_path: Path) -> None:
    tab = row("TABS", "OT\tN", 1, 1, venue="Venue")
    escape = row("ESC", "OTCN", 1, 1, venue="A\x1bB")
    at = escape.index(chr(27)) + 1
    result = ingest_file(
        write_file(tmp_path, [*GOOD, tab, escape]), tier="OTC", week=WEEK, ats=False
    )
    assert _stored(result.capture_id)["rejects"] == {
        5: f"control character '\\t' in MPID at character {tab.index(chr(9)) + 1}",
        6: f"control character '\\x1b' in marketParticipantName at character {at}",
    }


def test_whitespace_only_lines_are_skipped_not_rejected(tmp_path: Path) -> None:
    data = file_bytes(GOOD).replace(b"\n", b"\n   \n", 1) + b" \t \n"
    result = ingest_lines(byte_lines(data), source="test", tier="OTC", week=WEEK, ats=False)
    assert (result.rows, result.rejects) == (3, 0)
    assert result.warnings == ["2 blank line(s) skipped"]


def test_a_trailing_whitespace_line_leaves_the_real_file_whole_and_its_grade(
    real_otc_file: Path,
) -> None:
    result = run_etl(real_otc_file.read_bytes() + b"   \n", week="2025-12-15", ats=True)
    assert (result["ingest"]["rows"], result["ingest"]["rejects"]) == (5328, 0)
    assert result["compute"]["grade"] == "A"


def test_a_10_mb_single_line_file_is_a_short_error_and_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "one-line.psv"
    path.write_bytes(b"x" * (10 * MB))
    with pytest.raises(FileFormatError) as caught:
        ingest_file(path, tier="OTC", week=WEEK, ats=False)
    assert len(str(caught.value)) < 300
    assert str(caught.value).startswith("line 1: header row is longer than 65536 bytes")
    assert_nothing_stored()


# --- file-level problems leave nothing behind -----------------------------------------

BAD_FILES = {
    "empty": (b"", "line 1: empty file: expected a header row"),
    "header only": (
        (HEADER_LINE + "\n").encode(),
        "line 1: file has a header but no data rows",
    ),
    "missing column": (
        b"tierDescription|issueSymbolIdentifier|issueName|marketParticipantName|MPID"
        b"|totalWeeklyShareQuantity|totalWeeklyTradeCount\nOTC|A|B|C|D|1|1\n",
        "line 1: invalid header: missing columns: lastUpdateDate",
    ),
    "extra column": (
        (HEADER_LINE + "|extra\n" + row("AAAA", "OTCN", 1, 1) + "|x\n").encode(),
        "line 1: invalid header: unexpected columns: 'extra'",
    ),
    "comma delimited": (
        (HEADER_LINE.replace("|", ",") + "\n").encode(),
        "line 1: expected '|' delimiter, found ','-delimited header",
    ),
    "utf-16": (
        "\ufeff".encode("utf-16-le") + HEADER_LINE.encode("utf-16-le"),
        "line 1: file is UTF-16 encoded: expected UTF-8",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_file_level_errors_name_the_problem_and_store_nothing(tmp_path: Path, case: str) -> None:
    data, message = BAD_FILES[case]
    path = tmp_path / "bad.psv"
    path.write_bytes(data)
    with pytest.raises(FileFormatError) as caught:
        ingest_file(path, tier="OTC", week=WEEK, ats=False)
    assert str(caught.value) == message
    assert_nothing_stored()


def test_bad_bytes_deep_in_the_file_roll_back_rows_already_streamed(tmp_path: Path) -> None:
    good = [row(f"S{i:04d}", "OTCN", i + 1, 1) for i in range(12_000)]
    data = file_bytes(good) + b"OTC|BAD\xff|x|y|OTCN|1|1|2025-12-29\n"
    path = tmp_path / "late.psv"
    path.write_bytes(data)
    with pytest.raises(FileFormatError, match=r"^line 12002: not valid UTF-8: byte 0xff"):
        ingest_file(path, tier="OTC", week=WEEK, ats=False)
    assert_nothing_stored()
    # the connection is still usable and a good file goes in afterwards
    ok = ingest_file(write_file(tmp_path, GOOD), tier="OTC", week=WEEK, ats=False)
    assert ok.status == "created"


def test_failed_correction_keeps_the_previous_capture_current(tmp_path: Path) -> None:
    good = ingest_file(write_file(tmp_path, GOOD, "a.psv"), tier="OTC", week=WEEK, ats=False)
    bad = tmp_path / "b.psv"
    bad.write_bytes((HEADER_LINE + "\n").encode())
    with pytest.raises(FileFormatError):
        ingest_file(bad, tier="OTC", week=WEEK, ats=False)
    assert list(Capture.objects.values_list("pk", "superseded_at")) == [(good.capture_id, None)]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file: .*nope.psv"):
        ingest_file(tmp_path / "nope.psv", tier="OTC", week=WEEK, ats=False)


def test_unknown_tier_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown tier 'T3'"):
        ingest_file(write_file(tmp_path, GOOD), tier="T3", week=WEEK, ats=False)
    assert_nothing_stored()


def test_bytes_the_archive_cannot_give_back_intact_leave_nothing(tmp_path: Path) -> None:
    data = file_bytes([*GOOD, row("KEEP", "OTCN", 1, 1)])
    checksum = hashlib.sha256(data).hexdigest()
    storage, name = archive.archive_storage(), archive.object_name(checksum)
    if storage.exists(name):
        storage.delete(name)
    # An object already under this checksum whose bytes are not these (a damaged disk),
    # of the very size the store would write, so the store keeps it: the ingest reads
    # it back, finds out after the last line, and rolls back.
    archive.store(io.BytesIO(data))
    with storage.open(name, "rb") as stored:
        compressed = stored.read()
    storage.delete(name)
    # The frame's own checksum (its last byte) damaged: everything decompresses first.
    storage.save(name, ContentFile(compressed[:-1] + bytes([compressed[-1] ^ 0xFF])))
    tables = partitions.capture_tables()
    try:
        with pytest.raises(archive.ArchiveCorrupted, match=f"archive object {name}"):
            ingest_lines(byte_lines(data), source="api", tier="OTC", week=WEEK, ats=False)
        assert_nothing_stored()
        assert partitions.capture_tables() == tables  # no staged table left either
    finally:
        storage.delete(name)
    result = ingest_lines(byte_lines(data), source="api", tier="OTC", week=WEEK, ats=False)
    assert (result.status, result.rows) == ("created", 4)
