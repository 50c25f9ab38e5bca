"""Error signatures and replay pacing: pure functions, no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlq.pacing import Pacer, paced_seconds
from dlq.signature import error_class, error_signature, is_signature, normalise_message

pytestmark = pytest.mark.embedded


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("ValueError: row 1234 of 5000 is bad", "ValueError: row <n> of <n> is bad"),
        (
            "KeyError: execution 3f2a9c1e-1111-2222-3333-444455556666 missing",
            "KeyError: execution <uuid> missing",
        ),
        ("OSError: cannot open /var/inbox/t1_2025-10-06.psv", "OSError: cannot open <path>"),
        ("RuntimeError: at 2025-10-06T10:11:12Z", "RuntimeError: at <datetime>"),
        ("RuntimeError: week 2025-10-06 not published", "RuntimeError: week <date> not published"),
        ("RuntimeError: at 10:11:12 sharp", "RuntimeError: at <time> sharp"),
        ("MemoryError: object at 0x7f3a2b1c", "MemoryError: object at <hex>"),
        ("ValueError: digest deadbeef1234 wrong", "ValueError: digest <hex> wrong"),
        ("ValueError: tier T1 refused", "ValueError: tier T1 refused"),
        ("timed out: exceeded its time limit of 30s", "timed out: exceeded its time limit of <n>s"),
        ("ValueError:   spaced\n\tout", "ValueError: spaced out"),
    ],
)
def test_normalise_strips_what_varies(error: str, expected: str) -> None:
    assert normalise_message(error) == expected


def test_error_class_from_error_or_traceback() -> None:
    assert error_class("ValueError: nope") == "ValueError"
    assert error_class("otc.errors.BadFile: nope") == "otc.errors.BadFile"
    assert error_class("timed out: 30s") == ""
    assert error_class("fenced: lost", "Traceback...\n  File x\nKeyError: 'a'\n") == "KeyError"
    assert error_class("worker lost", "") == ""


def test_signature_groups_the_same_failure_and_splits_different_ones() -> None:
    a = error_signature("otc.ingest", "ValueError: row 12 bad in /in/a.psv", failure_kind="error")
    b = error_signature("otc.ingest", "ValueError: row 99 bad in /in/b.psv", failure_kind="error")
    assert a == b and is_signature(a)
    assert a != error_signature(
        "otc.other", "ValueError: row 12 bad in /in/a.psv", failure_kind="error"
    )
    assert a != error_signature(
        "otc.ingest", "KeyError: row 12 bad in /in/a.psv", failure_kind="error"
    )
    assert a != error_signature(
        "otc.ingest", "ValueError: row 12 bad in /in/a.psv", failure_kind="timeout"
    )
    assert a != error_signature(
        "otc.ingest", "ValueError: col 12 bad in /in/a.psv", failure_kind="error"
    )


def test_is_signature() -> None:
    assert is_signature("0123456789abcdef")
    assert not is_signature("0123456789ABCDEF")
    assert not is_signature("0123")
    assert not is_signature("")


@given(st.text(max_size=300), st.integers(), st.uuids())
def test_numbers_and_uuids_never_change_the_signature(prefix: str, number: int, value) -> None:
    one = error_signature(
        "p", f"ValueError: {prefix} id {number} ref {value}", failure_kind="error"
    )
    two = error_signature(
        "p",
        f"ValueError: {prefix} id 7 ref 00000000-0000-0000-0000-000000000000",
        failure_kind="error",
    )
    assert one == two


@given(st.text(max_size=2000), st.text(max_size=50))
def test_signature_is_total_and_stable(error: str, pipeline: str) -> None:
    first = error_signature(pipeline, error)
    assert is_signature(first)
    assert first == error_signature(pipeline, error)
    assert normalise_message(normalise_message(error)) == normalise_message(error)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("rate", [1, 6, 60, 600])
def test_pacer_releases_at_most_rate_a_minute(rate: int) -> None:
    clock = FakeClock()
    checks: list[float] = []
    pacer = Pacer(rate, clock=clock, sleep=clock.sleep, checkpoint=lambda: checks.append(clock.now))
    releases = [pacer.wait() for _ in range(25)]
    assert releases[0] == 1000.0  # the first at once
    gaps = [b - a for a, b in zip(releases, releases[1:], strict=False)]
    assert all(gap >= 60 / rate - 1e-9 for gap in gaps)
    for start in releases:
        assert sum(1 for t in releases if start <= t < start + 60) <= rate
    assert releases[-1] - releases[0] == pytest.approx(paced_seconds(25, rate))
    assert max(clock.slept) <= 1.0 and checks  # sliced, with a checkpoint between slices


def test_pacer_does_not_wait_when_work_is_slower_than_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(60, clock=clock, sleep=clock.sleep)
    pacer.wait()
    clock.now += 5  # the replay itself took longer than the interval
    pacer.wait()
    assert clock.slept == []


def test_pacer_refuses_a_rate_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Pacer(0)


def test_a_long_run_of_digits_is_a_number_not_a_uuid() -> None:
    assert normalise_message(f"id {10**31} ref {'9' * 32}") == "id <n> ref <n>"
    assert normalise_message("ref 3f2504e04f8911d39a0c0305e82c3301") == "ref <hex>"
    assert normalise_message("ref 3f2504e0-4f89-11d3-9a0c-0305e82c3301") == "ref <uuid>"
