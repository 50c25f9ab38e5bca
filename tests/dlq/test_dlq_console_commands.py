"""``manage.py dlq groups``, ``list --group``, ``replay --group/--ids`` (a rate-capped
batch) and ``discard --ids/--group --reason``; bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from dlq.models import DeadLetter, Resolution
from executions.models import Execution, ExecutionStatus

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture(autouse=True)
def _fast_rate(settings: Any) -> None:
    settings.SPINE_REPLAY_RATE = 6000


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("dlq", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_groups_table_and_json(run_failure):
    _, a = run_failure("diag.fail", {"message": "row 1 bad"})
    _, b = run_failure("diag.fail", {"message": "row 2 bad"})
    run_failure("diag.fail", {"message": "other"})

    table, _ = run("groups")
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["SIGNATURE", "COUNT", "PIPELINE", "KIND"]
    assert lines[1].split()[:3] == [a.signature, "2", "diag.fail"]
    assert "RuntimeError: row 2 bad" in lines[1]
    rows = json.loads(run("groups", "--json")[0])
    assert rows[0]["signature"] == a.signature and rows[0]["count"] == 2
    assert rows[0]["example_id"] == b.pk and rows[0]["error_class"] == "RuntimeError"
    assert json.loads(run("groups", "--pipeline", "x", "--json")[0]) == []

    listed = json.loads(run("list", "--group", a.signature, "--json")[0])
    assert {r["id"] for r in listed} == {a.pk, b.pk}
    assert listed[0]["signature"] == a.signature
    assert json.loads(run("list", "--error-class", "KeyError", "--json")[0]) == []


def test_replay_group_dispatches_a_paced_batch(run_failure, django_capture_on_commit_callbacks):
    _, a = run_failure("diag.fail", {"message": "row 1 bad"})
    _, b = run_failure("diag.fail", {"message": "row 2 bad"})
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("replay", "--group", a.signature)
    assert "replay batch" in out and "2 dead letters at most 6000 a minute" in out
    batch = Execution.objects.get(pipeline="dlq.replay_batch")
    assert batch.params["ids"] == [a.pk, b.pk] and batch.trigger_source == "cli"
    assert batch.status == ExecutionStatus.SUCCEEDED
    for letter in (a, b):
        letter.refresh_from_db()
        assert letter.resolution == Resolution.REPLAYED


def test_replay_ids_in_the_order_given(run_failure, django_capture_on_commit_callbacks):
    _, a = run_failure()
    _, b = run_failure()
    with django_capture_on_commit_callbacks(execute=True):
        run("replay", "--ids", str(b.pk), str(a.pk))
    batch = Execution.objects.get(pipeline="dlq.replay_batch")
    assert batch.params["ids"] == [b.pk, a.pk]
    assert [x["dead_letter_id"] for x in batch.result["letters"]] == [b.pk, a.pk]


def test_discard_in_bulk_needs_a_reason(run_failure):
    _, a = run_failure("diag.fail", {"message": "row 1 bad"})
    _, b = run_failure("diag.fail", {"message": "row 2 bad"})
    with pytest.raises(CommandError, match="needs --reason") as excinfo:
        run("discard", "--group", a.signature)
    assert excinfo.value.returncode == 2
    assert DeadLetter.objects.open().count() == 2
    out, _ = run("discard", "--group", a.signature, "--reason", "duplicate feed")
    assert "2 discarded, 0 skipped" in out
    a.refresh_from_db()
    assert a.resolution == Resolution.DISCARDED and a.note == "duplicate feed"
    _, c = run_failure()
    out, err = run("discard", "--ids", str(c.pk), str(a.pk), "--reason", "again")
    assert "1 discarded, 1 skipped" in out and "already discarded" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("replay", "--group", "XYZ"), "'XYZ' is not a signature"),
        (("replay", "--group", "0" * 16), "no open dead letters have signature"),
        (("replay", "--ids", "999999"), "no dead letter with id 999999"),
        (("replay", "--ids", "999998", "999999"), "no dead letters with ids 999998, 999999"),
        (("replay", "--ids", "x"), "'x' is not a dead letter id"),
        (("replay", "--ids", "1", "--group", "0" * 16), "exactly one of them"),
        (("discard", "--ids", "999999", "--reason", "r"), "no dead letter with id 999999"),
        (("discard",), "exactly one"),
        (("groups", "--limit", "0"), "--limit must be at least 1"),
        (("list", "--group", "nope"), "'nope' is not a signature"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(run_failure, args: tuple[str, ...], message: str):
    run_failure()
    before = Execution.objects.count()
    with pytest.raises(CommandError, match=message) as excinfo:
        run(*args)
    assert excinfo.value.returncode == 2
    assert Execution.objects.count() == before and DeadLetter.objects.open().count() == 1


def test_replay_of_closed_letters_only_is_a_refusal(run_failure):
    _, a = run_failure()
    run("discard", str(a.pk))
    with pytest.raises(CommandError, match="already closed") as excinfo:
        run("replay", "--ids", str(a.pk))
    assert excinfo.value.returncode == 1
