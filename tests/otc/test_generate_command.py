"""``manage.py otc generate``: realistic files named by tier, summary and week."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from otc.parser import WeeklyFileParser

pytestmark = pytest.mark.embedded


def otc(*args: str) -> str:
    out = StringIO()
    call_command("otc", *args, stdout=out)
    return out.getvalue()


def test_generate_writes_one_file_per_week(tmp_path: Path) -> None:
    output = otc(
        "generate", "--weeks", "3", "--rows", "250", "--seed", "4", "--tier", "OTCE",
        "--out", str(tmp_path), "--start", "2025-11-05", "--malformed", "0.05", "--ats",
    )  # fmt: skip
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "finra_otc_ats_20251103.psv",
        "finra_otc_ats_20251110.psv",
        "finra_otc_ats_20251117.psv",
    ]
    assert "wrote 3 OTC ATS week(s) of 250 rows" in output
    with (tmp_path / names[0]).open("rb") as stream:
        parser = WeeklyFileParser(stream, expected_tier="OTC")
        assert sum(1 for _ in parser) == 250
        assert 0 < parser.rejects < 50


def test_generate_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        otc("generate", "--rows", "100", "--seed", "9", "--out", str(tmp_path / name),
            "--start", "2025-11-03", "--non-ats")  # fmt: skip
    a, b = (next((tmp_path / n).iterdir()).read_bytes() for n in ("a", "b"))
    assert a == b and a.startswith(b"tierDescription|issueSymbolIdentifier|")


def test_generate_writes_atss_or_member_firms_as_asked(tmp_path: Path) -> None:
    for flag in ("--ats", "--non-ats"):
        otc("generate", "--rows", "300", "--out", str(tmp_path), "--start", "2025-11-03", flag)
    venues = {}
    for path in sorted(tmp_path.iterdir()):
        with path.open("rb") as stream:
            venues[path.name] = {row.mpid for row in WeeklyFileParser(stream, expected_tier="T1")}
    ats, firms = venues["finra_t1_ats_20251103.psv"], venues["finra_t1_non_ats_20251103.psv"]
    assert "UBSA" in ats and "CDRG" not in ats
    assert "CDRG" in firms and "UBSA" not in firms


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weeks", "0"], "--weeks: must be at least 1, got 0"),
        (["--tier", "T9"], "unknown tier 'T9'"),
        (["--malformed", "2"], "--malformed: must be between 0 and 1, got 2.0"),
        (["--start", "soon"], "'soon' is not a date"),
        (["--no-summary"], "one of the arguments --ats --non-ats is required"),
        (["--non-ats"], "argument --non-ats: not allowed with argument --ats"),
    ],
)
def test_generate_refuses_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    summary = [] if "--no-summary" in args else ["--ats"]
    with pytest.raises(CommandError, match=message) as caught:
        otc("generate", "--out", str(tmp_path), *summary, *[a for a in args if a != "--no-summary"])
    assert caught.value.returncode == 2
    assert not list(tmp_path.iterdir())
