"""``manage.py dlq``: list, show, replay, resolve, discard, retry-due; and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from dlq.models import DeadLetter, Resolution
from executions.models import Execution, TriggerSource

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("dlq", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_list_prints_a_table_and_json(run_failure, flaky_pipeline):
    failed, letter = run_failure()
    _, flaky_letter = run_failure("dlq_test.flaky", {"tier": "T2"})

    table, _ = run("list")
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["ID", "PIPELINE", "KIND", "ATTEMPT", "RETRIES"]
    assert len(lines) == 3
    assert any(str(failed.pk) in line and "RuntimeError: boom" in line for line in lines)

    out, _ = run("list", "--pipeline", "dlq_test.flaky", "--json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [flaky_letter.pk]
    assert rows[0]["state"] == "open" and rows[0]["max_retries"] == 2
    assert rows[0]["params"] == {"tier": "T2"}

    out, _ = run("list", "--kind", "timeout")
    assert out.strip() == "No dead letters match."
    out, _ = run("list", "--state", "all", "--search", str(failed.pk)[:8], "--json")
    assert [r["id"] for r in json.loads(out)] == [letter.pk]
    out, _ = run("list", "--older-than-hours", "1", "--json")
    assert json.loads(out) == []


def test_show_prints_the_traceback(run_failure):
    _, letter = run_failure("diag.fail", {"message": "socket closed"})
    out, _ = run("show", str(letter.pk))
    assert "Traceback (most recent call last)" in out
    assert "RuntimeError: socket closed" in out
    data = json.loads(run("show", str(letter.pk), "--json")[0])
    assert data["id"] == letter.pk and "socket closed" in data["traceback"]


def test_replay_one_then_refuse_it_again(run_failure, django_capture_on_commit_callbacks):
    failed, letter = run_failure()
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("replay", str(letter.pk))
    letter.refresh_from_db()
    assert f"dead letter {letter.pk} replayed as execution {letter.replay_execution_id}" in out
    replay = Execution.objects.get(pk=letter.replay_execution_id)
    assert replay.parent_id == failed.pk and replay.trigger_source == TriggerSource.RETRY
    assert letter.note == "replayed with the dlq command"

    with pytest.raises(CommandError, match="already replayed") as excinfo:
        run("replay", str(letter.pk))
    assert excinfo.value.returncode == 1


def test_replay_all_open_by_pipeline(
    run_failure, flaky_pipeline, django_capture_on_commit_callbacks
):
    _, a = run_failure("dlq_test.flaky", {"tier": "T1"})
    _, b = run_failure("dlq_test.flaky", {"tier": "T2"})
    _, other = run_failure()
    from tests.dlq.dlq_support import FLAKY_STATE

    FLAKY_STATE["fail"] = False
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("replay", "--all-open", "--pipeline", "dlq_test.flaky")
    assert "2 replayed, 0 refused" in out
    assert set(
        DeadLetter.objects.filter(pk__in=[a.pk, b.pk]).values_list("resolution", flat=True)
    ) == {Resolution.REPLAYED}
    other.refresh_from_db()
    assert other.is_open


def test_replay_all_open_reports_refusals_and_exits_non_zero(
    run_failure, django_capture_on_commit_callbacks
):
    _, first = run_failure()
    with django_capture_on_commit_callbacks(execute=True):
        run("replay", str(first.pk))
    over = DeadLetter.objects.get(previous=first)
    with pytest.raises(CommandError, match="0 replayed, 1 refused"):
        run("replay", "--all-open")
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("replay", "--all-open", "--force")
    assert "1 replayed, 0 refused" in out
    over.refresh_from_db()
    assert over.resolution == Resolution.REPLAYED


def test_replay_with_no_open_letters():
    out, _ = run("replay", "--all-open")
    assert "No open dead letters to replay." in out


def test_resolve_and_discard(run_failure):
    _, a = run_failure()
    _, b = run_failure()
    out, _ = run("resolve", str(a.pk), "--note", "fixed the vendor file")
    assert f"dead letter {a.pk} resolved" in out
    a.refresh_from_db()
    assert a.resolution == Resolution.RESOLVED and a.note == "fixed the vendor file"
    run("discard", str(b.pk))
    b.refresh_from_db()
    assert b.resolution == Resolution.DISCARDED
    with pytest.raises(CommandError, match="already discarded"):
        run("discard", str(b.pk))


def test_retry_due_command(run_failure, flaky_pipeline):
    run_failure("dlq_test.flaky", {})  # due in 5-10 s: not yet
    out, _ = run("retry-due")
    assert "0 replayed, 0 skipped" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("replay",), "give a dead letter id or --all-open"),
        (("replay", "1", "--all-open"), "give a dead letter id or --all-open"),
        (("replay", "1", "--pipeline", "x"), "--pipeline only narrows --all-open"),
        (("replay", "abc"), "'abc' is not a dead letter id"),
        (("replay", "424242"), "dead letter 424242 does not exist"),
        (("resolve", "1"), "the following arguments are required: --note"),
        (("resolve", "424242", "--note", "x"), "dead letter 424242 does not exist"),
        (("discard", "abc"), "is not a dead letter id"),
        (("list", "--kind", "meltdown"), "invalid choice: 'meltdown'"),
        (("list", "--limit", "0"), "--limit must be at least 1"),
        (("show", "424242"), "does not exist"),
        (("explode",), "invalid choice: 'explode'"),
        ((), "the following arguments are required: SUBCOMMAND"),
    ],
)
def test_bad_input_is_a_clear_error(args: tuple[str, ...], message: str):
    with pytest.raises(CommandError, match=message) as excinfo:
        run(*args)
    assert excinfo.value.returncode == 2


def test_resolve_with_a_blank_note_is_refused(run_failure):
    _, letter = run_failure()
    with pytest.raises(CommandError, match="needs a note"):
        run("resolve", str(letter.pk), "--note", "  ")


def test_exit_codes_from_a_shell(settings: Any, tmp_path: Path):
    """Bad input exits non-zero with the reason on stderr; --help exits zero."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "LOG_FORMAT": "console",
    }
    manage = [sys.executable, str(PROJECT_ROOT / "manage.py")]
    helped = subprocess.run(
        [*manage, "dlq", "replay", "--help"], env=env, capture_output=True, text=True, check=False
    )
    assert helped.returncode == 0
    assert "--all-open" in helped.stdout and "--force" in helped.stdout
    bad = subprocess.run(
        [*manage, "dlq", "replay"], env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "CommandError: give a dead letter id or --all-open (exactly one of them)."
    )
