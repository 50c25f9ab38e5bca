"""The inbox: relative paths only, nothing followed out of it, regular files only."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from otc import inbox as inbox_mod
from otc.inbox import InboxPathError, UploadTooLarge, check_relative, open_inbox_file
from otc.models import Capture
from otc.services import ingest_file
from tests.otc.etl_support import file_bytes, row

pytestmark = [pytest.mark.embedded]

#: A generous bound that turns a hang (a FIFO read that blocks) into a failure.
HANG_DEADLINE = 120
SECRET = b"SPINE-INBOX-SECRET-d41d8"


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("outside")
    (directory / "secret.psv").write_bytes(SECRET + b"\n")
    return directory


def finishes(call: Callable[[], Any]) -> Any:
    """Run ``call`` in a thread; its result or exception, failing if it never returns."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_DEADLINE)
    assert not thread.is_alive(), "the call blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# --- check_relative ------------------------------------------------------------------------


def test_relative_paths_are_normalised(inbox: Path) -> None:
    assert check_relative("week.psv") == "week.psv"
    assert check_relative("./a//b/./week.psv") == "a/b/week.psv"
    assert check_relative(".") == "."


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/etc/passwd", "an absolute path is not allowed"),
        ("/proc/self/environ", "an absolute path is not allowed"),
        ("~/x", "an absolute path is not allowed"),
        ("\\\\server\\share", "an absolute path is not allowed"),
        ("C:/x", "an absolute path is not allowed"),
        ("..", "'..' is not allowed"),
        ("a/../b", "'..' is not allowed"),
        ("a\\..\\..\\b", "'..' is not allowed"),
        ("a\x00b", "NUL byte"),
        ("  ", "the path is empty"),
    ],
)
def test_paths_that_could_leave_the_inbox_are_refused(
    inbox: Path, value: str, message: str
) -> None:
    with pytest.raises(InboxPathError, match=message):
        check_relative(value)


def test_symlinks_may_stay_inside_but_never_lead_out(inbox: Path, outside: Path) -> None:
    (inbox / "real.psv").write_bytes(b"x")
    (inbox / "alias.psv").symlink_to(inbox / "real.psv")
    (inbox / "sub").mkdir()
    (inbox / "sub" / "up.psv").symlink_to("../real.psv")
    assert check_relative("alias.psv") == "alias.psv"
    assert check_relative("sub/up.psv") == "sub/up.psv"
    (inbox / "out.psv").symlink_to(outside / "secret.psv")
    (inbox / "away").symlink_to(outside, target_is_directory=True)
    (inbox / "dangling.psv").symlink_to(outside / "not-yet.psv")
    for name in ("out.psv", "away/secret.psv", "away/new.psv", "dangling.psv"):
        with pytest.raises(InboxPathError, match="leads outside the inbox"):
            check_relative(name)


def test_an_absolute_path_inside_the_inbox_is_refused_too(inbox: Path) -> None:
    (inbox / "week.psv").write_bytes(b"x")
    with pytest.raises(InboxPathError, match="absolute"):
        check_relative(str(inbox / "week.psv"))


# --- opening at run time ---------------------------------------------------------------------


def test_open_reads_a_regular_file(inbox: Path) -> None:
    (inbox / "d").mkdir()
    (inbox / "d" / "week.psv").write_bytes(b"hello\n")
    with open_inbox_file("d/week.psv") as handle:
        assert handle.read() == b"hello\n"


def test_open_refuses_a_directory_and_a_missing_file(inbox: Path) -> None:
    (inbox / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="d is a directory, not a file"):
        open_inbox_file("d").__enter__()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        open_inbox_file(".").__enter__()
    with pytest.raises(FileNotFoundError, match="no such file in the inbox: nope/x.psv"):
        open_inbox_file("nope/x.psv").__enter__()


def test_open_refuses_a_fifo_without_blocking(inbox: Path) -> None:
    os.mkfifo(inbox / "pipe.psv")

    def read() -> bytes:
        with open_inbox_file("pipe.psv") as handle:
            return handle.read()

    with pytest.raises(OSError, match=r"pipe.psv is not a regular file \(a FIFO\)"):
        finishes(read)


def test_a_symlink_swapped_in_after_resolution_is_not_followed(
    inbox: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the run-time open closes: the path is resolved while it is a plain file,
    then the file (or a directory on the way) becomes a symlink out before the open."""
    (inbox / "d").mkdir()
    resolved = {"week.psv": inbox / "week.psv", "d/week.psv": inbox / "d" / "week.psv"}
    monkeypatch.setattr(inbox_mod, "_resolved", lambda relative: resolved[relative])
    (inbox / "week.psv").symlink_to(outside / "secret.psv")
    with pytest.raises(InboxPathError, match="changed to a symlink; not followed"):
        open_inbox_file("week.psv").__enter__()
    (inbox / "d").rmdir()
    (inbox / "d").symlink_to(outside, target_is_directory=True)
    (outside / "week.psv").write_bytes(SECRET)
    with pytest.raises(InboxPathError, match="changed while it was being opened"):
        open_inbox_file("d/week.psv").__enter__()


def test_a_shell_ingest_of_a_directory_or_fifo_says_what_it_is(tmp_path: Path) -> None:
    """Not "no such file": the path exists, it is just not a file."""
    with pytest.raises(IsADirectoryError, match=f"{tmp_path} is a directory, not a file"):
        ingest_file(tmp_path, tier="OTC", week="2025-12-15", ats=False)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OSError, match="is not a regular file"):
        finishes(lambda: ingest_file(tmp_path / "pipe", tier="OTC", week="2025-12-15", ats=False))
    with pytest.raises(OSError, match=r"/dev/null is not a regular file \(a device\)"):
        ingest_file("/dev/null", tier="OTC", week="2025-12-15", ats=False)
    with pytest.raises(FileNotFoundError, match="no such file: "):
        ingest_file(tmp_path / "nope.psv", tier="OTC", week="2025-12-15", ats=False)


# --- writing into the inbox -------------------------------------------------------------------


def test_store_stream_writes_a_unique_complete_file(inbox: Path) -> None:
    first = inbox_mod.store_stream([b"ab", b"cd"], "../../etc/pass wd")
    second = inbox_mod.store_stream([b"ab", b"cd"], "../../etc/pass wd")
    assert first != second
    assert first.startswith("uploads/") and first.endswith("-pass_wd")
    assert (inbox / first).read_bytes() == b"abcd"
    assert sorted(p.name for p in (inbox / "uploads").iterdir()) == sorted(
        [first.split("/")[1], second.split("/")[1]]
    )


def test_store_stream_past_the_limit_leaves_nothing(inbox: Path) -> None:
    with pytest.raises(UploadTooLarge, match="larger than 3 bytes"):
        inbox_mod.store_stream([b"ab", b"cd"], "x.psv", max_bytes=3)
    assert list((inbox / "uploads").iterdir()) == []


# --- pipelines ---------------------------------------------------------------------------------


@pytest.fixture
def local_backend(settings: Any) -> None:
    settings.EXECUTION_BACKEND = "local"


def run(pipeline: str, **params: Any) -> Execution:
    execution = dispatch(pipeline, params, trigger_source="cli")
    execution.refresh_from_db()
    return execution


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("local_backend")
def test_a_directory_or_fifo_in_the_inbox_fails_the_run_clearly(inbox: Path) -> None:
    (inbox / "week.psv").mkdir()
    os.mkfifo(inbox / "pipe.psv")
    params = {"tier": "OTC", "week": "2025-12-15", "ats": True}
    as_dir = finishes(lambda: run("otc.ingest_file", path="week.psv", **params))
    as_fifo = finishes(lambda: run("otc.full_etl", path="pipe.psv", **params))
    assert as_dir.status == ExecutionStatus.FAILED
    assert as_dir.error == "IsADirectoryError: week.psv is a directory, not a file"
    assert as_fifo.status == ExecutionStatus.FAILED
    assert as_fifo.error == "OSError: pipe.psv is not a regular file (a FIFO)"
    assert not Capture.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("local_backend")
def test_backfill_children_name_inbox_paths_and_skip_links_out(inbox: Path, outside: Path) -> None:
    (inbox / "weeks").mkdir()
    (inbox / "weeks" / "finra_otc_ats_20251103.psv").write_bytes(
        file_bytes([row("AAAA", "OTCN", 10, 1)])
    )
    (inbox / "weeks" / "finra_otc_ats_20251110.psv").symlink_to(outside / "secret.psv")
    parent = run(
        "otc.backfill",
        tier="OTC",
        start="2025-11-03",
        end="2025-11-10",
        directory="weeks",
        ats=True,
    )
    assert parent.status == ExecutionStatus.SUCCEEDED, parent.error
    assert parent.result["missing_weeks"] == ["2025-11-10"]
    child = Execution.objects.get(parent=parent)
    assert child.params["path"] == "weeks/finra_otc_ats_20251103.psv"
    assert child.status == ExecutionStatus.SUCCEEDED, child.error
    missing = run(
        "otc.backfill", tier="OTC", start="2025-11-03", end="2025-11-03", directory="no", ats=True
    )
    assert missing.error == "FileNotFoundError: no such directory in the inbox: no"
