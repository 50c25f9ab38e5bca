"""Every management command exits as the README says: 2 for bad input, 1 for a failure
of the work itself, with the reason on stderr and nothing recorded for bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError

from dlq.models import DeadLetter
from executions.models import Execution
from tests.ops.conftest import Result

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]
Run = Callable[..., Result]
PROJECT_APPS = ("spine", "executions", "otc", "dlq", "ops")

BAD_INPUT = [
    (["backfill"], "the following arguments are required"),
    (
        [
            "backfill",
            "--tier",
            "T1",
            "--from",
            "2025-10-06",
            "--to",
            "2025-10-06",
            "--dir",
            "{tmp}",
        ],
        "one of the arguments --ats --non-ats is required",
    ),
    (["cleanup", "--older-than", "soon"], "'soon' is not an age"),
    (["createtoken", "nobody"], "no user named 'nobody'"),
    (["demo", "--weeks", "0", "--no-superuser"], "--weeks and --rows must be at least 1"),
    (["demo", "--ats", "--non-ats"], "argument --non-ats: not allowed with argument --ats"),
    (["dispatch", "unknown.pipeline"], "unknown pipeline 'unknown.pipeline'"),
    (["dispatch", "otc.ingest_file", "-p", "bad"], "parameter 'bad' is not key=value"),
    (["dispatch", "diag.noop", "--wait", "--timeout", "-1"], "--timeout must be a positive"),
    (["dlq", "replay", "999"], "dead letter 999 does not exist"),
    (["dlq", "show", "x"], "'x' is not a dead letter id"),
    (["dlq", "resolve", "1"], "the following arguments are required: --note"),
    (["dlq", "list", "--limit", "0"], "--limit must be at least 1"),
    (["dlq", "groups", "--limit", "0"], "--limit must be at least 1"),
    (["dlq", "replay", "--group", "XYZ"], "'XYZ' is not a signature"),
    (["dlq", "replay", "--ids", "5", "6"], "no dead letters with ids 5, 6"),
    (["dlq", "discard", "--ids", "5"], "discarding with --ids or --group needs --reason"),
    (["dlq", "discard", "--group", "0" * 16, "--reason", "r"], "no open dead letters have"),
    (["doctor", "--bogus"], "unrecognized arguments: --bogus"),
    (["executions", "show", "not-an-id"], "'not-an-id' is not an execution id"),
    (["executions", "cancel", "00000000-0000-0000-0000-000000000000"], "no execution with id"),
    (
        ["otc", "ingest", "/no/such/file.psv", "--tier", "T1", "--week", "2025-10-06", "--ats"],
        "no such",
    ),
    (["otc", "ingest", "x.psv"], "the following arguments are required: --tier, --week"),
    (
        ["otc", "ingest", "x.psv", "--tier", "T1", "--week", "2025-10-06"],
        "one of the arguments --ats --non-ats is required",
    ),
    (["otc", "generate", "--out", "{tmp}", "--weeks", "0", "--ats"], "must be at least 1, got 0"),
    (["otc", "generate", "--out", "{tmp}"], "one of the arguments --ats --non-ats is required"),
    (["otc", "weeks", "--tier", "T9"], "unknown tier 'T9'"),
    (["otc", "fetch", "--tier", "T1", "--week", "someday"], "week: Date has wrong format"),
    (["otc", "sync", "--tier", "T9"], "unknown tier 'T9'"),
    (["otc", "sync", "--since", "someday"], "since: Date has wrong format"),
    (["otc", "sync", "--ats", "--non-ats"], "not allowed with argument --ats"),
    (["otc", "explode"], "invalid choice: 'explode'"),
    (["otc", "lines", "999999"], "no capture with id 999999"),
    (["otc", "lines", "1", "--start", "0"], "--start: must be from 1 to"),
    (["otc", "lines", "1", "--count", "many"], "--count: 'many' is not a whole number"),
    (["otc", "partitions", "detach", "--before", "someday"], "--before: "),
    (["otc", "partitions", "detach"], "the following arguments are required: --before"),
    (["reset_metrics_dir", "extra"], "unrecognized arguments: extra"),
    (["setup_schedules", "--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_exits_2_and_records_nothing(
    argv: list[str], message: str, run_command: Run, stub: Any, tmp_path: Path
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(CommandError) as excinfo:
        call_command(*args)
    assert excinfo.value.returncode == 2
    assert message in str(excinfo.value)
    result = run_command(*args)
    assert result.code == 2 and message in result.err
    assert Execution.objects.count() == 0 and DeadLetter.objects.count() == 0
    assert stub.submitted == []


def test_every_command_has_a_bad_input_case() -> None:
    ours = {name for name, app in get_commands().items() if app in PROJECT_APPS}
    assert ours == {argv[0] for argv, _ in BAD_INPUT}


@pytest.mark.django_db(transaction=True)
def test_a_refused_dead_letter_action_is_a_failure_not_bad_input(
    run_command: Run, local_backend: Any
) -> None:
    failed = run_command("dispatch", "diag.fail", "--wait", "--timeout", "60")
    assert failed.code == 1
    letter = DeadLetter.objects.get()
    blank = run_command("dlq", "resolve", str(letter.pk), "--note", " ")
    assert blank.code == 2 and "needs a note" in blank.err
    assert run_command("dlq", "discard", str(letter.pk)).code == 0
    again = run_command("dlq", "discard", str(letter.pk))
    assert again.code == 1 and "already discarded" in again.err
    replay = run_command("dlq", "replay", str(letter.pk))
    assert replay.code == 1 and "already discarded" in replay.err
