"""What a person at a shell sees: the summary on stdout, readable log lines on stderr at
WARNING (``-v 2`` for INFO), each error once, and the documented exit codes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from spine.logging import (
    CommandFormatter,
    command_level,
    escape_controls,
    use_command_logging,
    verbosity_from_argv,
)

pytestmark = pytest.mark.embedded

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# What the Docker stack sets for every service: commands must still print for people.
SERVER_LOGGING = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated SQLite database of its own, on the local backend, as an operator has it."""
    directory = tmp_path_factory.mktemp("shell")
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{directory / 'shell.sqlite3'}",
        "SPINE_DIAGNOSTIC_PIPELINES": "true",
        **SERVER_LOGGING,
    }
    manage(env, "migrate", "--no-input", check=True)
    return env


def manage(
    env: dict[str, str], *args: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "manage.py"), *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=check,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dlq", "replay", "999"], "dead letter 999 does not exist."),
        (
            ["createtoken", "nobody"],
            "no user named 'nobody'; create it first (createsuperuser) or pass --create-user",
        ),
        (
            ["executions", "show", "00000000-0000-0000-0000-000000000000"],
            "no execution with id 00000000-0000-0000-0000-000000000000",
        ),
        (["dispatch", "diag.sleep", "-p", "seconds"], "parameter 'seconds' is not key=value"),
    ],
)
def test_bad_input_from_a_shell_exits_2_with_one_line(
    shell_env: dict[str, str], args: list[str], message: str
) -> None:
    result = manage(shell_env, *args)
    assert result.returncode == 2
    assert result.stderr == f"CommandError: {message}\n"
    assert result.stdout == ""


def test_a_failed_run_prints_its_error_once_and_no_json(
    shell_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.psv"
    bad.write_text("symbol,volume\nAAPL,1\n")
    args = ["otc", "ingest", str(bad), "--tier", "T1", "--week", "2025-10-06", "--non-ats"]
    args.append("--wait")
    result = manage(shell_env, *args)
    assert result.returncode == 1
    error = "expected '|' delimiter, found ','-delimited header"
    assert result.stderr.count(error) == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("CommandError: otc.full_etl ") and error in lines[-1]
    assert all(not line.startswith("{") for line in lines), result.stderr
    # The one log line left says where the failure went, readably.
    assert [line.split(":")[0] for line in lines[:-1]] == ["WARNING dlq.services"]
    assert "parked as dead letter" in lines[0]
    assert result.stdout.startswith("otc.full_etl T1 non-ATS week 2025-10-06: ")


def test_info_lines_with_verbosity_2_and_summary_on_stdout(shell_env: dict[str, str]) -> None:
    quiet = manage(shell_env, "dispatch", "diag.noop", "--wait")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert "diag.noop" in quiet.stdout and "succeeded" in quiet.stdout
    chatty = manage(shell_env, "dispatch", "diag.noop", "--wait", "-v", "2")
    assert chatty.returncode == 0
    assert "INFO executions.runner: execution started: diag.noop" in chatty.stderr
    by_env = manage(
        {**shell_env, "SPINE_COMMAND_LOG_LEVEL": "info"}, "dispatch", "diag.noop", "--wait"
    )
    assert "INFO executions.runner: execution started: diag.noop" in by_env.stderr
    as_json = manage(
        {**shell_env, "SPINE_COMMAND_LOG_LEVEL": "INFO", "SPINE_COMMAND_LOG_FORMAT": "json"},
        "dispatch",
        "diag.noop",
    )
    records = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert {r["message"] for r in records} >= {"execution started: diag.noop"}


def test_a_child_failure_is_still_logged() -> None:
    """Only the outcome of what the command dispatched is left to the command."""
    from spine import logging as spine_logging

    record = logging.LogRecord("executions.runner", logging.WARNING, "", 0, "x", (), None)
    record.status, record.pipeline = "failed", "otc.full_etl"
    with spine_logging.reported_by_command("otc.backfill"):
        assert spine_logging.CommandReportFilter().filter(record)
    with spine_logging.reported_by_command("otc.full_etl"):
        assert not spine_logging.CommandReportFilter().filter(record)
    assert spine_logging.CommandReportFilter().filter(record)


def test_verbosity_and_levels() -> None:
    assert verbosity_from_argv(["doctor"]) == 1
    assert verbosity_from_argv(["doctor", "-v", "2"]) == 2
    assert verbosity_from_argv(["doctor", "-v3"]) == 3
    assert verbosity_from_argv(["doctor", "--verbosity=0"]) == 0
    assert verbosity_from_argv(["doctor", "--", "-v", "3"]) == 1
    assert verbosity_from_argv(["doctor", "-v"]) == 1
    assert command_level("WARNING", 1) == "WARNING"
    assert command_level("WARNING", 0) == "WARNING"
    assert command_level("WARNING", 2) == "INFO"
    assert command_level("ERROR", 3) == "DEBUG"
    assert command_level("DEBUG", 2) == "DEBUG"


def test_runserver_keeps_server_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    from spine import logging as spine_logging

    monkeypatch.setattr(spine_logging, "_command_verbosity", None)
    use_command_logging(["manage.py", "runserver", "-v", "2"])
    assert spine_logging.command_verbosity() is None
    use_command_logging(["manage.py", "doctor", "-v", "2"])
    assert spine_logging.command_verbosity() == 2


def test_command_lines_are_single_lines() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "otc.services", logging.WARNING, "", 0, "row %s:\x1b[31m", ("12",), exc_info
    )
    record.execution_id = "abc"
    line = CommandFormatter().format(record)
    assert line == (
        "WARNING otc.services: row 12:\\x1b[31m [execution abc] (ValueError: bad\\nvalue)"
    )
    assert "Traceback" in CommandFormatter(tracebacks=True).format(record)
    assert escape_controls("tab\there") == "tab\\there"


def test_an_unreachable_database_is_one_line_and_exit_1() -> None:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgres://spine@127.0.0.1:1/spine"}
    result = manage(env, "executions", "list")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: database error: ") and "port 1" in lines[0]
