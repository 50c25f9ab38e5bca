"""``manage.py dlq``: inspect and act on dead letters from a shell.

Subcommands call the same :mod:`dlq.services` and :mod:`dlq.selectors` as the admin
and the API, so a replay from here follows the same rules (a new execution through
the Dispatcher, one replay per letter, the retry budget unless ``--force``).
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError

from dlq import selectors, services
from dlq.errors import (
    BadSelection,
    DeadLetterError,
    DeadLetterNotFound,
    NoteRequired,
    ParamsRejected,
)
from dlq.models import DeadLetter, FailureKind, Resolution
from dlq.signature import is_signature
from executions.cli import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    SpineCommand,
    SpineCommandParser,
    bad_input,
)
from executions.models import TriggerSource
from spine.time import format_iso, utc_now

CLI_NOTE = "replayed with the dlq command"


def letter_dict(letter: DeadLetter) -> dict[str, Any]:
    """A JSON-safe summary of one letter (``--json`` output)."""
    return {
        "id": letter.pk,
        "pipeline": letter.pipeline,
        "failure_kind": letter.failure_kind,
        "error_class": letter.error_class,
        "signature": letter.signature,
        "state": "open" if letter.is_open else "resolved",
        "resolution": letter.resolution or None,
        "attempts": letter.attempts,
        "max_retries": letter.max_retries,
        "execution_id": str(letter.execution_id),
        "replay_execution_id": str(letter.replay_execution_id)
        if letter.replay_execution_id
        else None,
        "params": letter.params,
        "error": letter.error,
        "created_at": format_iso(letter.created_at),
        "next_retry_at": format_iso(letter.next_retry_at) if letter.next_retry_at else None,
        "last_retry_at": format_iso(letter.last_retry_at) if letter.last_retry_at else None,
        "resolved_at": format_iso(letter.resolved_at) if letter.resolved_at else None,
        "note": letter.note,
        "original_params": letter.original_params,
        "params_changes": letter.params_changes,
    }


def group_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe group row (``groups --json``)."""
    return {
        "signature": row["signature"],
        "pipeline": row["pipeline"],
        "failure_kind": row["failure_kind"],
        "error_class": row["error_class"],
        "count": row["count"],
        "first_seen": format_iso(row["first_seen"]),
        "last_seen": format_iso(row["last_seen"]),
        "example_id": row["example_id"],
    }


def table(rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns, the first row the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


class Command(SpineCommand):
    help = (
        "Inspect and act on dead letters (failed executions): groups, list, show, replay, "
        "resolve, discard, retry-due. Replays create a NEW execution through the "
        "Dispatcher; --group/--ids replay at most SPINE_REPLAY_RATE a minute. "
        "Exit codes: 0 done, 1 refused (already resolved, over its retry budget), "
        "2 bad input (unknown letter, bad options)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(
            dest="subcommand",
            metavar="SUBCOMMAND",
            required=True,
            parser_class=SpineCommandParser,
        )

        groups = sub.add_parser(
            "groups", help="Open dead letters grouped by error signature, biggest first."
        )
        groups.add_argument("--pipeline", help="Only this pipeline.")
        groups.add_argument("--kind", choices=FailureKind.values, help="Only this failure kind.")
        groups.add_argument("--error-class", help="Only this exception class.")
        groups.add_argument(
            "--limit", type=int, default=50, help="At most this many groups (default 50)."
        )
        groups.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

        ls = sub.add_parser("list", help="List dead letters (open ones by default).")
        ls.add_argument("--pipeline", help="Only this pipeline.")
        ls.add_argument("--kind", choices=FailureKind.values, help="Only this failure kind.")
        ls.add_argument(
            "--state",
            choices=("open", "resolved", "all"),
            default="open",
            help="open (default), resolved (closed in any way) or all.",
        )
        ls.add_argument(
            "--resolution", choices=Resolution.values, help="Only closed letters closed this way."
        )
        ls.add_argument(
            "--older-than-hours",
            type=float,
            metavar="H",
            help="Only letters parked more than H hours ago.",
        )
        ls.add_argument(
            "--search", help="A letter id, an execution id (or fragment), or error text."
        )
        ls.add_argument("--group", metavar="SIG", help="Only letters with this signature.")
        ls.add_argument("--error-class", help="Only this exception class.")
        ls.add_argument(
            "--limit", type=int, default=50, help="At most this many rows (default 50)."
        )
        ls.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

        show = sub.add_parser("show", help="Show one dead letter with its error and traceback.")
        show.add_argument("id", help="The dead letter id.")
        show.add_argument("--json", action="store_true", help="Print JSON.")

        replay = sub.add_parser(
            "replay",
            help="Replay one dead letter, a group or a list of them, as new executions.",
            description="Replay dead letters: each becomes a NEW execution (trigger retry, "
            "parent = the failed execution) and the letter is resolved as replayed. "
            "--group and --ids dispatch one dlq.replay_batch execution that replays at "
            "most SPINE_REPLAY_RATE letters a minute.",
        )
        replay.add_argument("id", nargs="?", help="The dead letter id.")
        replay.add_argument(
            "--group", metavar="SIG", help="Replay a group's open letters (rate-capped batch)."
        )
        replay.add_argument(
            "--ids", nargs="+", metavar="ID", help="Replay these letters (rate-capped batch)."
        )
        replay.add_argument(
            "--all-open", action="store_true", help="Replay every open dead letter (oldest first)."
        )
        replay.add_argument("--pipeline", help="With --all-open: only this pipeline.")
        replay.add_argument(
            "--force",
            action="store_true",
            help="Replay even letters whose lineage is over its retry budget.",
        )

        resolve = sub.add_parser("resolve", help="Close a dead letter as handled, with a note.")
        resolve.add_argument("id", help="The dead letter id.")
        resolve.add_argument("--note", required=True, help="How the failure was handled.")

        discard = sub.add_parser(
            "discard", help="Close dead letters without replaying them (one, --ids or --group)."
        )
        discard.add_argument("id", nargs="?", help="The dead letter id.")
        discard.add_argument("--ids", nargs="+", metavar="ID", help="Discard these letters.")
        discard.add_argument("--group", metavar="SIG", help="Discard a group's open letters.")
        discard.add_argument(
            "--reason",
            "--note",
            dest="reason",
            default="",
            help="Why the runs are not wanted (required with --ids or --group).",
        )

        sub.add_parser(
            "retry-due",
            help="Run the automatic retry pass now (what the scheduled ops.dlq_retry does).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        handler = {
            "groups": self.list_groups,
            "list": self.list_letters,
            "show": self.show_letter,
            "replay": self.replay,
            "resolve": self.resolve,
            "discard": self.discard,
            "retry-due": self.retry_due,
        }[options["subcommand"]]
        try:
            handler(options)
        except DeadLetterError as exc:
            bad = isinstance(exc, DeadLetterNotFound | NoteRequired | BadSelection | ParamsRejected)
            code = EXIT_BAD_INPUT if bad else EXIT_FAILED
            raise CommandError(str(exc), returncode=code) from exc

    # -- reads ----------------------------------------------------------------------------

    def list_groups(self, options: dict[str, Any]) -> None:
        if options["limit"] < 1:
            raise bad_input("--limit must be at least 1.")
        rows = list(
            selectors.dead_letter_groups(
                pipeline=options["pipeline"],
                failure_kind=options["kind"],
                error_class=options["error_class"],
            )[: options["limit"]]
        )
        if options["json"]:
            self.stdout.write(json.dumps([group_dict(r) for r in rows], indent=2))
            return
        if not rows:
            self.stdout.write("No open dead letters.")
            return
        examples = selectors.group_examples(r["example_id"] for r in rows)
        header = ("SIGNATURE", "COUNT", "PIPELINE", "KIND", "FIRST SEEN", "LAST SEEN", "ERROR")
        body = [
            (
                str(r["signature"]),
                str(r["count"]),
                str(r["pipeline"]),
                str(r["failure_kind"]),
                format_iso(r["first_seen"])[:19],
                format_iso(r["last_seen"])[:19],
                _first_line(examples[r["example_id"]].error if r["example_id"] in examples else ""),
            )
            for r in rows
        ]
        for line in table([header, *body]):
            self.stdout.write(line)

    def list_letters(self, options: dict[str, Any]) -> None:
        if options["limit"] < 1:
            raise bad_input("--limit must be at least 1.")
        hours = options["older_than_hours"]
        if hours is not None and hours < 0:
            raise bad_input("--older-than-hours cannot be negative.")
        state = None if options["state"] == "all" else options["state"]
        if options["group"] is not None and not is_signature(options["group"]):
            raise bad_input(
                f"--group {options['group']!r} is not a signature (16 lower-case hex digits)."
            )
        letters = list(
            selectors.dead_letter_list(
                pipeline=options["pipeline"],
                failure_kind=options["kind"],
                state=state,
                resolution=options["resolution"],
                created_before=utc_now() - timedelta(hours=hours) if hours is not None else None,
                search=options["search"],
                signature=options["group"],
                error_class=options["error_class"],
            )[: options["limit"]]
        )
        if options["json"]:
            self.stdout.write(json.dumps([letter_dict(x) for x in letters], indent=2))
            return
        if not letters:
            self.stdout.write("No dead letters match.")
            return
        rows = [
            (
                str(x.pk),
                x.pipeline,
                x.failure_kind,
                str(x.attempts),
                str(x.max_retries),
                x.state_label,
                format_iso(x.created_at)[:19],
                format_iso(x.next_retry_at)[:19] if x.next_retry_at else "-",
                str(x.execution_id),
                (x.error.strip().splitlines() or [""])[0][:60],
            )
            for x in letters
        ]
        header = ("ID", "PIPELINE", "KIND", "ATTEMPT", "RETRIES", "STATE", "PARKED", "NEXT RETRY")
        header = (*header, "EXECUTION", "ERROR")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )

    def show_letter(self, options: dict[str, Any]) -> None:
        letter = selectors.get_dead_letter(options["id"])
        if options["json"]:
            self.stdout.write(
                json.dumps({**letter_dict(letter), "traceback": letter.traceback}, indent=2)
            )
            return
        data = letter_dict(letter)
        for key in (
            "id", "pipeline", "failure_kind", "state", "resolution", "attempts", "max_retries",
            "execution_id", "replay_execution_id", "created_at", "next_retry_at",
            "last_retry_at", "resolved_at", "note",
        ):  # fmt: skip
            self.stdout.write(f"{key:20} {data[key] if data[key] is not None else '-'}")
        self.stdout.write("params:\n" + json.dumps(letter.params, indent=2, sort_keys=True))
        self.stdout.write("error:\n" + (letter.error or "-"))
        self.stdout.write("traceback:\n" + (letter.traceback or "-"))

    # -- writes ---------------------------------------------------------------------------

    def replay(self, options: dict[str, Any]) -> None:
        chosen = [
            bool(options["id"]),
            options["all_open"],
            options["group"] is not None,
            options["ids"] is not None,
        ]
        if sum(chosen) != 1:
            if options["group"] is None and options["ids"] is None:
                raise bad_input("give a dead letter id or --all-open (exactly one of them).")
            raise bad_input(
                "give a dead letter id, --all-open, --group SIG or --ids ID... "
                "(exactly one of them)."
            )
        if options["pipeline"] and not options["all_open"]:
            raise bad_input("--pipeline only narrows --all-open.")
        if options["group"] is not None or options["ids"] is not None:
            self.replay_batch(options)
            return
        if options["id"]:
            letter = selectors.get_dead_letter(options["id"])
            execution = services.retry(letter, by=None, force=options["force"], note=CLI_NOTE)
            self.stdout.write(
                self.style.SUCCESS(f"dead letter {letter.pk} replayed as execution {execution.pk}")
            )
            return
        letters = list(selectors.open_dead_letters(pipeline=options["pipeline"]))
        if not letters:
            self.stdout.write("No open dead letters to replay.")
            return
        refused = 0
        for letter in letters:
            try:
                execution = services.retry(letter, by=None, force=options["force"], note=CLI_NOTE)
            except DeadLetterError as exc:
                refused += 1
                self.stderr.write(f"refused: {exc}")
                continue
            self.stdout.write(f"dead letter {letter.pk} replayed as execution {execution.pk}")
        summary = f"{len(letters) - refused} replayed, {refused} refused"
        if refused:
            raise CommandError(summary, returncode=EXIT_FAILED)
        self.stdout.write(self.style.SUCCESS(summary))

    def resolve(self, options: dict[str, Any]) -> None:
        letter = selectors.get_dead_letter(options["id"])
        services.resolve(letter, by=None, note=options["note"])
        self.stdout.write(self.style.SUCCESS(f"dead letter {letter.pk} resolved"))

    def replay_batch(self, options: dict[str, Any]) -> None:
        letters = selectors.select_letters(ids=options["ids"], signature=options["group"])
        execution = services.submit_replay_batch(
            letters,
            by=None,
            trigger_source=TriggerSource.CLI,
            force=options["force"],
            signature=options["group"] or "",
        )
        count = len(execution.params["ids"])
        self.stdout.write(
            self.style.SUCCESS(
                f"replay batch {execution.pk} dispatched: {count} dead letter"
                f"{'' if count == 1 else 's'} at most {services.replay_rate()} a minute "
                f"(follow it with: manage.py executions show {execution.pk})"
            )
        )

    def discard(self, options: dict[str, Any]) -> None:
        bulk = options["ids"] is not None or options["group"] is not None
        if bool(options["id"]) + (options["ids"] is not None) + (options["group"] is not None) != 1:
            raise bad_input("give a dead letter id, --ids ID... or --group SIG (exactly one).")
        if bulk:
            if not options["reason"].strip():
                raise bad_input("discarding with --ids or --group needs --reason TEXT.")
            letters = selectors.select_letters(ids=options["ids"], signature=options["group"])
            result = services.discard_letters(letters, by=None, reason=options["reason"])
            for skipped in result["skipped"]:
                self.stderr.write(f"skipped: {skipped['reason']}")
            summary = f"{len(result['discarded'])} discarded, {len(result['skipped'])} skipped"
            self.stdout.write(self.style.SUCCESS(summary))
            return
        letter = selectors.get_dead_letter(options["id"])
        services.discard(letter, by=None, note=options["reason"])
        self.stdout.write(self.style.SUCCESS(f"dead letter {letter.pk} discarded"))

    def retry_due(self, options: dict[str, Any]) -> None:
        result = services.retry_due()
        for letter_id, execution_id in result.replayed:
            self.stdout.write(f"dead letter {letter_id} replayed as execution {execution_id}")
        for letter_id, reason in result.skipped:
            self.stdout.write(f"dead letter {letter_id} skipped: {reason}")
        self.stdout.write(
            self.style.SUCCESS(f"{len(result.replayed)} replayed, {len(result.skipped)} skipped")
        )


def _first_line(text: str, width: int = 60) -> str:
    return ((text or "").strip().splitlines() or [""])[0][:width]
