"""Groups, paced replay batches, edit-and-replay and bulk discard, through the services
and selectors on real failures (the local backend runs each execution inline)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import User

from dlq import selectors, services
from dlq.errors import (
    AlreadyResolved,
    BadSelection,
    DeadLetterNotFound,
    NoteRequired,
    NothingToReplay,
    ParamsRejected,
)
from dlq.models import DeadLetter, Resolution
from dlq.pacing import Pacer
from dlq.signature import error_signature
from executions.models import Execution, ExecutionStatus, TriggerSource

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_park_stores_class_and_signature(run_failure):
    _, one = run_failure("diag.fail", {"message": "row 12 of /in/a.psv is bad"})
    _, two = run_failure("diag.fail", {"message": "row 977 of /in/b.psv is bad"})
    _, other = run_failure("diag.fail", {"message": "vendor said no"})
    assert one.error_class == "RuntimeError"
    assert one.signature == two.signature != other.signature
    assert one.signature == error_signature(
        "diag.fail", one.error, one.traceback, failure_kind="error"
    )


def test_groups_count_first_last_and_example(run_failure, operator: User):
    _, a = run_failure("diag.fail", {"message": "row 1 bad"})
    _, b = run_failure("diag.fail", {"message": "row 2 bad"})
    _, c = run_failure("diag.fail", {"message": "row 3 bad"})
    _, lone = run_failure("diag.fail", {"message": "something else"})
    services.discard(c, by=operator, note="dupe")  # closed letters leave their group

    rows = list(selectors.dead_letter_groups())
    assert [r["count"] for r in rows] == [2, 1]
    big = rows[0]
    assert big["signature"] == a.signature and big["pipeline"] == "diag.fail"
    assert big["failure_kind"] == "error" and big["error_class"] == "RuntimeError"
    assert big["first_seen"] == a.created_at and big["last_seen"] == b.created_at
    assert big["example_id"] == b.pk
    assert selectors.group_examples([b.pk])[b.pk].error == "RuntimeError: row 2 bad"
    assert list(selectors.dead_letter_groups(pipeline="nope")) == []
    assert selectors.group_summary(lone.signature)["count"] == 1
    assert selectors.group_summary("0" * 16) is None


def test_backfill_gives_old_letters_a_signature(run_failure):
    _, letter = run_failure("diag.fail", {"message": "row 5 bad"})
    expected = letter.signature
    DeadLetter.objects.filter(pk=letter.pk).update(signature="", error_class="")
    migration = import_module("dlq.migrations.0002_error_signature")
    migration.backfill_signatures(django_apps, None)
    letter.refresh_from_db()
    assert letter.signature == expected and letter.error_class == "RuntimeError"


@pytest.mark.parametrize(
    ("kwargs", "message", "error"),
    [
        ({"ids": [999_999]}, "no dead letter with id 999999", DeadLetterNotFound),
        ({"ids": ["x"]}, "'x' is not a dead letter id", BadSelection),
        ({"ids": []}, "no dead letter ids given", BadSelection),
        ({"signature": "XYZ"}, "'XYZ' is not a signature", BadSelection),
        ({"signature": "0" * 16}, "no open dead letters have signature", DeadLetterNotFound),
        ({}, "exactly one", BadSelection),
        ({"ids": [1], "signature": "0" * 16}, "exactly one", BadSelection),
    ],
)
def test_bad_selections_are_refused(
    run_failure, kwargs: dict[str, Any], message: str, error: type[Exception]
):
    run_failure()
    with pytest.raises(error, match=message):
        selectors.select_letters(**kwargs)


def test_selection_keeps_the_order_given(run_failure):
    _, a = run_failure()
    _, b = run_failure()
    assert [x.pk for x in selectors.select_letters(ids=[b.pk, a.pk, b.pk])] == [b.pk, a.pk]
    assert [x.pk for x in selectors.select_letters(signature=a.signature)] == [a.pk, b.pk]


def test_run_batch_replays_in_order_at_the_rate(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    letters = [run_failure()[1] for _ in range(4)]
    services.discard(letters[2], by=operator, note="not wanted")
    clock = FakeClock()
    released: list[float] = []
    pacer = Pacer(2, clock=clock, sleep=clock.sleep)  # one every 30 s
    original_wait = pacer.wait

    def wait() -> float:
        released.append(original_wait())
        return released[-1]

    pacer.wait = wait  # type: ignore[method-assign]
    progress: list[dict[str, Any]] = []
    ids = [x.pk for x in reversed(letters)]
    with django_capture_on_commit_callbacks(execute=True):
        result = services.run_replay_batch(
            ids, by=operator, pacer=pacer, progress=progress.append, batch_id="b1"
        )

    assert released == [0.0, 30.0, 60.0, 90.0]
    assert [e["dead_letter_id"] for e in result.letters] == ids
    assert [e["outcome"] for e in result.letters] == ["replayed", "refused", "replayed", "replayed"]
    assert "already discarded" in result.letters[1]["reason"]
    assert [(p["done"], p["total"]) for p in progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    body = result.as_dict()
    assert body["replayed"] == 3 and body["refused"] == 1 and body["rate_per_minute"] == 2
    for entry in result.letters:
        letter = DeadLetter.objects.get(pk=entry["dead_letter_id"])
        if entry["outcome"] == "replayed":
            assert letter.resolution == Resolution.REPLAYED
            assert str(letter.replay_execution_id) == entry["execution_id"]
            assert letter.resolved_by == operator and letter.note == "replayed in batch b1"


def test_submit_and_run_a_batch_end_to_end(
    run_failure, operator: User, settings: Any, django_capture_on_commit_callbacks, monkeypatch
):
    settings.SPINE_REPLAY_RATE = 6
    sleeps: list[float] = []
    clock = FakeClock()

    def fake_pacer(rate: int, **kwargs: Any) -> Pacer:
        return Pacer(
            rate, clock=clock, sleep=lambda s: (sleeps.append(s), clock.sleep(s)), **kwargs
        )

    monkeypatch.setattr("dlq.pipelines.Pacer", fake_pacer)
    letters = [run_failure()[1] for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.submit_replay_batch(
            letters, by=operator, trigger_source=TriggerSource.ADMIN, signature=letters[0].signature
        )
    batch.refresh_from_db()
    assert batch.pipeline == "dlq.replay_batch" and batch.lane == "maintenance"
    assert batch.status == ExecutionStatus.SUCCEEDED, batch.error
    assert batch.params["ids"] == [x.pk for x in letters]
    assert batch.params["requested_by"] == operator.username
    assert batch.result["replayed"] == 3 and batch.result["total"] == 3
    assert sum(sleeps) == pytest.approx(20.0)  # two gaps of 10 s at 6 a minute
    progress = selectors.replay_batch_progress(batch)
    assert progress["done"] == 3 and progress["total"] == 3 and not progress["running"]
    events = batch.events.filter(type=selectors.PROGRESS_EVENT).order_by("timestamp", "id")
    assert [e.data["done"] for e in events] == [1, 2, 3]
    for letter in letters:
        letter.refresh_from_db()
        assert letter.resolution == Resolution.REPLAYED and letter.resolved_by == operator
        assert letter.replay_execution.parent_id == letter.execution_id


def test_submit_refuses_without_writing(run_failure, operator: User, settings: Any):
    _, letter = run_failure()
    services.discard(letter, by=operator, note="gone")
    before = Execution.objects.count()
    with pytest.raises(NothingToReplay, match="already closed"):
        services.submit_replay_batch([letter], by=operator, trigger_source=TriggerSource.API)
    settings.SPINE_REPLAY_RATE = 1
    many = [run_failure()[1] for _ in range(2)]
    before = Execution.objects.count()
    monkey_many = many * 200  # the check counts letters, duplicates included
    with pytest.raises(BadSelection, match="SPINE_REPLAY_RATE=1 a minute"):
        services.submit_replay_batch(monkey_many, by=operator, trigger_source=TriggerSource.API)
    assert Execution.objects.count() == before


def test_edit_and_replay_keeps_the_original_and_the_change(
    run_failure, flaky_pipeline, operator: User, django_capture_on_commit_callbacks
):
    _, letter = run_failure("dlq_test.flaky", {"tier": "T2"})
    original = dict(letter.params)
    with django_capture_on_commit_callbacks(execute=True):
        replay = services.edit_and_replay(
            letter, {"tier": "OTC", "week": "2025-10-06"}, by=operator
        )
    letter.refresh_from_db()
    assert replay.params == {"tier": "OTC", "week": "2025-10-06"}
    assert letter.params == replay.params and letter.original_params == original
    [change] = letter.params_changes
    assert change["by"] == operator.username and change["at"]
    assert change["diff"] == {
        "tier": {"old": "T2", "new": "OTC"},
        "week": {"old": None, "new": "2025-10-06"},
    }
    assert letter.resolution == Resolution.REPLAYED and letter.replay_execution_id == replay.pk
    replayed = letter.execution.events.get(type="dead_letter_replayed")
    assert replayed.data["params_diff"]["tier"] == {"old": "T2", "new": "OTC"}


def test_edit_and_replay_refuses_bad_params_and_writes_nothing(
    run_failure, flaky_pipeline, operator: User
):
    _, letter = run_failure("dlq_test.flaky", {"tier": "T2"})
    before = Execution.objects.count()
    with pytest.raises(ParamsRejected, match="tier") as excinfo:
        services.edit_and_replay(letter, {"tier": "T9"}, by=operator)
    assert "tier" in excinfo.value.errors
    with pytest.raises(ParamsRejected, match="unknown parameter"):
        services.edit_and_replay(letter, {"colour": "red"}, by=operator)
    letter.refresh_from_db()
    assert letter.is_open and letter.original_params is None and letter.params_changes == []
    assert Execution.objects.count() == before
    services.discard(letter, by=operator, note="x")
    with pytest.raises(AlreadyResolved):
        services.edit_and_replay(letter, {"tier": "T1"}, by=operator)


def test_bulk_discard_needs_a_reason_and_skips_closed(run_failure, operator: User):
    _, a = run_failure()
    _, b = run_failure()
    services.resolve(b, by=operator, note="fixed")
    with pytest.raises(NoteRequired, match="needs a reason"):
        services.discard_letters([a, b], by=operator, reason="  ")
    a.refresh_from_db()
    assert a.is_open
    result = services.discard_letters([a, b], by=operator, reason="duplicate feed")
    assert result["discarded"] == [a.pk]
    assert [s["dead_letter_id"] for s in result["skipped"]] == [b.pk]
    a.refresh_from_db()
    assert a.resolution == Resolution.DISCARDED and a.note == "duplicate feed"
