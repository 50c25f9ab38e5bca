"""Operator commands: dispatch, executions, backfill, otc ingest, doctor; exit codes.

Commands that run pipelines use real commits (``transaction=True``): the Dispatcher
hands an execution over only after its transaction commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import get_commands
from django.core.management.base import BaseCommand

from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from otc.inbox import UPLOADS, inbox_dir
from otc.models import Capture
from otc.sample.generator import generate_weeks
from tests.ops.conftest import Result
from tests.support.otc_weeks import FIRST_WEEK

pytestmark = pytest.mark.embedded
committed = pytest.mark.django_db(transaction=True)
Run = Callable[..., Result]


@pytest.mark.parametrize(
    "argv",
    [
        ["dispatch"],
        ["executions"],
        ["executions", "list"],
        ["backfill"],
        ["doctor"],
        ["cleanup"],
        ["setup_schedules"],
        ["demo"],
        ["otc", "ingest"],
    ],
)
def test_every_command_explains_itself(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert argv[0] in get_commands()
    from django.core.management import load_command_class

    command: BaseCommand = load_command_class(get_commands()[argv[0]], argv[0])
    parser = command.create_parser("manage.py", argv[0])
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([*argv[1:], "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage:" in text and len(text) > 200, text


# --- dispatch -------------------------------------------------------------------------------


@committed
def test_dispatch_runs_and_prints_the_id(run_command: Run, local_backend: Any) -> None:
    result = run_command("dispatch", "diag.sleep", "-p", "seconds=0.01")
    assert result.code == 0, result.err
    execution = Execution.objects.get()
    assert result.out.startswith(str(execution.pk))
    assert execution.trigger_source == "cli" and execution.params["seconds"] == 0.01


@committed
def test_dispatch_wait_succeeds_and_fails_with_exit_codes(
    run_command: Run, local_backend: Any
) -> None:
    ok = run_command("dispatch", "diag.noop", "--wait")
    assert ok.code == 0 and "succeeded" in ok.out
    failed = run_command("dispatch", "diag.fail", "-p", "message=broken on purpose", "--wait")
    assert failed.code == 1
    assert "failed" in failed.err and "broken on purpose" in failed.err
    as_json = run_command("dispatch", "diag.fail", "--wait", "--json")
    assert as_json.code == 1 and as_json.json()["status"] == "failed"
    assert "Traceback" in as_json.json()["traceback"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dispatch", "no.such"], "unknown pipeline 'no.such'; registered pipelines:"),
        (["dispatch", "diag.sleep", "-p", "seconds=soon"], "seconds: A valid number is required"),
        (["dispatch", "diag.sleep", "-p", "naps=2"], "naps: unknown parameter"),
        (["dispatch", "diag.sleep", "-p", "seconds"], "is not key=value"),
        (["dispatch", "diag.sleep", "-p", "a=1", "-p", "a=2"], "given twice"),
        (["dispatch"], "give a pipeline name"),
    ],
)
def test_dispatch_bad_input_exits_2_and_records_nothing(
    run_command: Run, argv: list[str], message: str
) -> None:
    result = run_command(*argv)
    assert result.code == 2
    assert message in result.err
    assert Execution.objects.count() == 0


@pytest.mark.django_db
def test_dispatch_json_and_list(run_command: Run, stub: Any) -> None:
    result = run_command("dispatch", "diag.noop", "--lane", "maintenance", "--json")
    data = result.json()
    assert data["lane"] == "maintenance" and data["pipeline"] == "diag.noop"
    listing = run_command("dispatch", "--list", "--json")
    names = {p["name"] for p in listing.json()}
    assert {"diag.sleep", "otc.full_etl", "ops.sweep"} <= names
    text = run_command("dispatch", "--list").out
    assert "diag.sleep" in text and "seconds: float" in text


# --- executions --------------------------------------------------------------------------------


@committed
def test_executions_list_show_cancel(run_command: Run, stub: Any, settings: Any) -> None:
    queued = dispatch("diag.sleep", {"seconds": 1}, trigger_source="api")
    settings.EXECUTION_BACKEND = "local"
    done = dispatch("diag.noop", {}, trigger_source="cli")
    settings.EXECUTION_BACKEND = "stub"

    listing = run_command("executions", "list", "--json")
    assert [row["id"] for row in listing.json()] == [str(done.pk), str(queued.pk)]
    only = run_command("executions", "list", "--status", "queued", "--json").json()
    assert [row["id"] for row in only] == [str(queued.pk)]
    table = run_command("executions", "list", "--pipeline", "diag.noop").out
    assert str(done.pk) in table and str(queued.pk) not in table
    assert "no executions match" in run_command("executions", "list", "--lane", "backfill").out

    shown = run_command("executions", "show", str(done.pk)[:8])
    assert shown.code == 0 and "succeeded" in shown.out and "events:" in shown.out
    detail = run_command("executions", "show", str(done.pk), "--json").json()
    assert [e["type"] for e in detail["events"]][:2] == ["created", "queued"]
    assert detail["result"] == {"ok": True}

    cancelled = run_command("executions", "cancel", str(queued.pk), "--reason", "test")
    assert cancelled.code == 0 and "cancelled" in cancelled.out
    queued.refresh_from_db()
    assert queued.status == ExecutionStatus.CANCELLED
    again = run_command("executions", "cancel", str(queued.pk))
    assert again.code == 1 and "only pending, queued or running" in again.err


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["executions", "show", "zzz"], "is not an execution id"),
        (["executions", "show", "00000000-0000-0000-0000-000000000000"], "no execution with id"),
        (["executions", "show", "abcdef12"], "no execution id starts with"),
        (["executions", "list", "--since", "yesterday"], "--since"),
        (["executions", "list", "--limit", "0"], "--limit must be at least 1"),
        (["executions", "cancel", "123"], "is not an execution id"),
    ],
)
def test_executions_bad_input(run_command: Run, argv: list[str], message: str) -> None:
    result = run_command(*argv)
    assert result.code == 2 and message in result.err


@committed
def test_executions_sweep_hands_pending_work_over(
    run_command: Run, stub: Any, settings: Any
) -> None:
    settings.SPINE_SWEEP_AFTER_SECONDS = 0
    stub.fail_with = ConnectionError("broker down")
    pending = dispatch("diag.noop", {}, trigger_source="api")
    assert pending.status == ExecutionStatus.PENDING
    stub.fail_with = None
    result = run_command("executions", "sweep", "--json")
    assert result.json() == {"swept": 1}
    pending.refresh_from_db()
    assert pending.status == ExecutionStatus.QUEUED
    assert run_command("executions", "reap").out.strip() == "reaped 0 execution(s)"


# --- otc ingest and backfill --------------------------------------------------------------------


@pytest.fixture
def week_files(tmp_path: Path) -> Path:
    generate_weeks(tmp_path, tier="T1", start_week=FIRST_WEEK, weeks=2, rows=300, seed=3, ats=True)
    return tmp_path


@committed
def test_otc_ingest_runs_the_full_etl(
    run_command: Run, local_backend: Any, week_files: Path
) -> None:
    path = week_files / f"finra_t1_ats_{FIRST_WEEK:%Y%m%d}.psv"
    result = run_command(
        "otc", "ingest", str(path), "--tier", "T1", "--week", "2025-10-08", "--ats"
    )
    assert result.code == 0, result.err
    assert result.out.startswith("otc.full_etl T1 ATS week 2025-10-06: ")
    assert "ingest: created" in result.out and "compute: grade" in result.out
    assert "300 rows, 0 rejects" in result.out
    execution = Execution.objects.get(pipeline="otc.full_etl")
    assert execution.trigger_source == "cli" and execution.params["week"] == "2025-10-06"
    assert execution.params["ats"] is True
    assert Capture.objects.get().computed_at is not None and Capture.objects.get().ats
    again = run_command(
        "otc", "ingest", str(path), "--tier", "T1", "--week", "2025-10-06", "--ats", "--json"
    )
    assert again.code == 0 and again.json()["result"]["status"] == "unchanged"


@committed
def test_otc_ingest_summary_counts_normalize_duplicates(
    run_command: Run, local_backend: Any, week_files: Path, tmp_path: Path
) -> None:
    source = (week_files / f"finra_t1_ats_{FIRST_WEEK:%Y%m%d}.psv").read_text().splitlines()
    doubled = tmp_path / "doubled.psv"
    doubled.write_text("\n".join([*source, source[-1]]) + "\n")
    result = run_command(
        "otc", "ingest", str(doubled), "--tier", "T1", "--week", "2025-10-06", "--non-ats"
    )
    assert result.code == 0, result.err
    capture = Capture.objects.get()
    assert capture.reject_count == 1 and capture.ats is False
    assert "301 rows, 1 rejects" in result.out
    execution = Execution.objects.get(pipeline="otc.full_etl")
    assert execution.result["rejects"] == 1
    assert execution.result["steps"]["ingest"]["rejects"] == 0
    assert execution.result["steps"]["normalize"]["duplicates"] == 1


@committed
def test_otc_ingest_failure_exits_1(run_command: Run, local_backend: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.psv"
    bad.write_text("symbol,volume\nAAPL,1\n")
    result = run_command(
        "otc", "ingest", str(bad), "--tier", "T1", "--week", "2025-10-06", "--ats", "--wait"
    )
    assert result.code == 1
    assert "otc.full_etl" in result.err and "failed" in result.err
    assert Capture.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/file.psv", "--tier", "T1", "--week", "2025-10-06", "--ats"], "no such file"),
        (["{file}", "--tier", "T9", "--week", "2025-10-06", "--ats"], "tier: unknown tier 'T9'"),
        (["{file}", "--tier", "T1", "--week", "next week", "--ats"], "week: Date has wrong"),
        (
            ["{file}", "--tier", "T1", "--week", "2025-10-06"],
            "one of the arguments --ats --non-ats is required",
        ),
        (
            ["{file}", "--tier", "T1", "--week", "2025-10-06", "--ats", "--non-ats"],
            "argument --non-ats: not allowed with argument --ats",
        ),
    ],
)
def test_otc_ingest_bad_input(
    run_command: Run, week_files: Path, args: list[str], message: str
) -> None:
    path = str(week_files / f"finra_t1_ats_{FIRST_WEEK:%Y%m%d}.psv")
    result = run_command("otc", "ingest", *[a.replace("{file}", path) for a in args])
    assert result.code == 2 and message in result.err
    assert Execution.objects.count() == 0 and Capture.objects.count() == 0
    uploads = inbox_dir() / UPLOADS
    assert not uploads.exists() or not any(uploads.iterdir())


@committed
def test_backfill_dispatches_one_child_per_week(
    run_command: Run, local_backend: Any, week_files: Path
) -> None:
    result = run_command(
        "backfill",
        "--tier",
        "T1",
        "--from",
        "2025-10-06",
        "--to",
        "2025-10-26",
        "--dir",
        str(week_files),
        "--ats",
        "--wait",
        "--json",
    )
    assert result.code == 0, result.err
    data = result.json()
    assert data["pipeline"] == "otc.backfill" and data["status"] == "succeeded"
    assert [c["status"] for c in data["children"]] == ["succeeded", "succeeded"]
    assert data["result"]["missing_weeks"] == ["2025-10-20"]
    children = Execution.objects.filter(pipeline="otc.full_etl")
    assert {c.lane for c in children} == {"backfill"}
    assert {str(c.parent_id) for c in children} == {data["id"]}
    assert {c.params["ats"] for c in children} == {True}
    assert set(Capture.objects.values_list("ats", flat=True)) == {True}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-10-20", "--to", "2025-10-06"], "is before start week"),
        (["--from", "someday", "--to", "2025-10-06"], "start: Date has wrong format"),
        (["--tier", "X", "--from", "2025-10-06", "--to", "2025-10-06"], "unknown tier"),
        (
            ["--from", "2025-10-06", "--to", "2025-10-06", "--no-summary"],
            "one of the arguments --ats --non-ats is required",
        ),
        (
            ["--from", "2025-10-06", "--to", "2025-10-06", "--non-ats"],
            "argument --non-ats: not allowed with argument --ats",
        ),
    ],
)
def test_backfill_bad_input(
    run_command: Run, week_files: Path, args: list[str], message: str
) -> None:
    base = ["--dir", str(week_files)] + ([] if "--tier" in args else ["--tier", "T1"])
    summary = [] if "--no-summary" in args else ["--ats"]
    result = run_command("backfill", *base, *summary, *[a for a in args if a != "--no-summary"])
    assert result.code == 2 and message in result.err
    missing_dir = run_command(
        "backfill",
        "--tier",
        "T1",
        "--from",
        "2025-10-06",
        "--to",
        "2025-10-06",
        "--dir",
        "/nope",
        "--ats",
    )
    assert missing_dir.code == 2 and "no such directory" in missing_dir.err
    assert Execution.objects.count() == 0


# --- doctor ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_doctor_on_the_embedded_default(run_command: Run, local_backend: Any) -> None:
    from ops.schedules import ensure_schedules

    ensure_schedules()
    result = run_command("doctor", "--json")
    assert result.code == 0, result.out
    checks = {c["name"]: c["status"] for c in result.json()["checks"]}
    assert checks["database"] == "ok" and checks["migrations"] == "ok"
    assert checks["workers: default"] == "skipped"
    assert checks["pipelines"] == "ok"
    table = run_command("doctor").out
    assert "database" in table and "all good" in table


class FakeControl:
    """Celery's remote control, answering as a given set of workers would."""

    def __init__(self, workers: dict[str, list[str]]) -> None:
        self.workers = workers

    def ping(self, timeout: float) -> list[dict[str, Any]]:
        return [{name: {"ok": "pong"}} for name in self.workers]

    def inspect(self, timeout: float) -> Any:
        workers = self.workers

        class Inspect:
            def active_queues(self) -> dict[str, list[dict[str, str]]]:
                return {w: [{"name": q} for q in queues] for w, queues in workers.items()}

        return Inspect()


@pytest.mark.django_db
def test_doctor_checks_workers_per_lane_and_beat(
    run_command: Run, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops import doctor
    from ops.schedules import ensure_schedules
    from spine import health
    from spine.celery import app

    settings.EXECUTION_BACKEND = "celery"
    monkeypatch.setattr(health, "check_redis", lambda: health.CheckOutcome("ok", "PONG"))
    monkeypatch.setattr(app, "control", FakeControl({"w1@host": ["default", "maintenance"]}))
    result = run_command("doctor", "--json")
    assert result.code == 1
    report = result.json()
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["workers: default"]["status"] == "ok"
    assert checks["workers: backfill"]["status"] == "fail"
    assert "no worker answered a ping on lane 'backfill'" in checks["workers: backfill"]["detail"]
    assert checks["beat schedule"]["status"] == "fail"  # not installed yet
    assert set(report["failed"]) == {"workers: backfill", "beat schedule"}

    ensure_schedules()
    monkeypatch.setattr(
        app, "control", FakeControl({"w1@host": ["default", "backfill", "maintenance"]})
    )
    result = run_command("doctor")
    assert result.code == 0, result.out
    assert "beat has not run the sweeper yet" in result.out  # a warning, not a failure
    assert doctor.check_beat().status == "warn"


@pytest.mark.django_db
def test_doctor_fails_when_the_broker_is_down(
    run_command: Run, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spine import health

    def down() -> health.CheckOutcome:
        raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")

    settings.EXECUTION_BACKEND = "celery"
    monkeypatch.setattr(health, "check_redis", down)
    result = run_command("doctor")
    assert result.code == 1
    assert "ConnectionError: Error 111" in result.out
    assert "the broker (Redis) is unreachable" in result.out


@pytest.mark.django_db
def test_doctor_warns_of_queued_executions_that_wait_past_the_lost_message_threshold(
    stub: Any, settings: Any
) -> None:
    from datetime import timedelta

    from ops import doctor
    from spine.time import utc_now

    settings.SPINE_SWEEP_LOST_AFTER_SECONDS = 180
    assert doctor.check_backlog().status == "ok"
    execution = dispatch("diag.noop", trigger_source="api")
    Execution.objects.filter(pk=execution.pk).update(queued_at=utc_now() - timedelta(seconds=200))
    check = doctor.check_backlog()
    assert check.status == "warn"
    assert check.data["stale_queued"] == 1 and check.data["stale_after_seconds"] == 180
    assert "1 queued and waiting for a worker over 180s" in check.detail


def test_doctor_disk_check_for_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from ops import doctor

    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/spine-doctor.sqlite3"}
    usage = shutil.disk_usage("/tmp")
    for free, status in ((10 * 1024**2, "fail"), (500 * 1024**2, "warn"), (50 * 1024**3, "ok")):
        monkeypatch.setattr(
            doctor.shutil, "disk_usage", lambda path, f=free: usage._replace(free=f)
        )
        assert doctor.check_disk(sqlite).status == status
    postgres = {"ENGINE": "django.db.backends.postgresql", "NAME": "spine"}
    assert doctor.check_disk(postgres).status == "skipped"


def test_parse_helpers() -> None:
    from datetime import timedelta

    from spine import cli

    assert cli.parse_params(["a=1", "b=x", "c=[1, 2]", "d=2025-12-15", "e=true", "f="]) == {
        "a": 1,
        "b": "x",
        "c": [1, 2],
        "d": "2025-12-15",
        "e": True,
        "f": "",
    }
    assert cli.parse_age("90d") == timedelta(days=90)
    assert cli.parse_age("12h") == timedelta(hours=12)
    assert cli.parse_age("2w") == timedelta(weeks=2)
    assert cli.parse_age("30") == timedelta(days=30)
    for bad in ("soon", "-1d", "d"):
        with pytest.raises(Exception, match="age"):
            cli.parse_age(bad)
    assert json.loads(cli.dumps({"b": 1, "a": 2})) == {"a": 2, "b": 1}
