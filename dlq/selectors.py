"""Reads of the dead-letter queue, shared by the admin, the API and the ``dlq`` command."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from django.db.models import CharField, Count, Max, Min, Q, QuerySet
from django.db.models.functions import Cast

from dlq.errors import BadSelection, DeadLetterNotFound
from dlq.models import DeadLetter
from dlq.signature import is_signature
from executions.models import Execution, ExecutionEvent
from spine.text import quote

State = Literal["open", "resolved"]
REPLAY_BATCH_PIPELINE = "dlq.replay_batch"
PROGRESS_EVENT = "replay_progress"
#: The most letters one bulk operation may name.
MAX_BULK = 10_000
MAX_ID = 2**63 - 1
_HEXISH = re.compile(r"^[0-9a-fA-F-]{6,36}$")


def dead_letter_list(
    *,
    pipeline: str | None = None,
    failure_kind: str | None = None,
    state: State | None = None,
    resolution: str | None = None,
    created_before: datetime | None = None,
    created_after: datetime | None = None,
    search: str | None = None,
    signature: str | None = None,
    error_class: str | None = None,
) -> QuerySet[DeadLetter]:
    """Dead letters matching every given filter, newest first.

    ``state`` is ``"open"`` (waiting) or ``"resolved"`` (closed in any way);
    ``resolution`` narrows closed letters to replayed, resolved or discarded.
    """
    qs = DeadLetter.objects.select_related("execution", "replay_execution", "resolved_by")
    if pipeline:
        qs = qs.filter(pipeline=pipeline)
    if failure_kind:
        qs = qs.filter(failure_kind=failure_kind)
    if state == "open":
        qs = qs.open()
    elif state == "resolved":
        qs = qs.closed()
    if resolution:
        qs = qs.filter(resolution=resolution)
    if created_before is not None:
        qs = qs.filter(created_at__lt=created_before)
    if created_after is not None:
        qs = qs.filter(created_at__gte=created_after)
    if search:
        qs = search_dead_letters(qs, search)
    if signature:
        qs = qs.filter(signature=signature)
    if error_class:
        qs = qs.filter(error_class=error_class)
    return qs.order_by("-created_at", "-id")


def search_filter(term: str) -> Q:
    """Match a letter by its id, its (failed or replay) execution id, or its error text.

    Execution ids match whole or by a fragment of at least six hex digits, with or
    without hyphens, since operators paste them from logs in either form.
    """
    term = term.strip()
    condition = Q(error__icontains=term) | Q(pipeline__icontains=term)
    if term.isdigit():
        condition |= Q(pk=int(term))
    try:
        exact = uuid.UUID(term)
    except ValueError:
        exact = None
    if exact is not None:
        condition |= Q(execution_id=exact) | Q(replay_execution_id=exact)
    elif _HEXISH.match(term):
        fragment = term.lower()
        condition |= Q(execution_text__contains=fragment) | Q(
            execution_text__contains=fragment.replace("-", "")
        )
    return condition


def with_execution_text(qs: QuerySet[DeadLetter]) -> QuerySet[DeadLetter]:
    """Annotate the execution id as text, for fragment search."""
    return qs.annotate(execution_text=Cast("execution_id", output_field=CharField()))


def search_dead_letters(qs: QuerySet[DeadLetter], term: str) -> QuerySet[DeadLetter]:
    """Apply :func:`search_filter` to an existing queryset (the admin's search box)."""
    if not term.strip():
        return qs
    return with_execution_text(qs).filter(search_filter(term))


def get_dead_letter(dead_letter_id: int | str) -> DeadLetter:
    """One dead letter by id, or :class:`DeadLetterNotFound` naming the id."""
    try:
        pk = int(dead_letter_id)
    except (TypeError, ValueError):
        raise DeadLetterNotFound(
            f"{quote(dead_letter_id)} is not a dead letter id (ids are whole numbers)."
        ) from None
    try:
        return DeadLetter.objects.select_related(
            "execution", "replay_execution", "resolved_by", "previous"
        ).get(pk=pk)
    except DeadLetter.DoesNotExist:
        raise DeadLetterNotFound(f"dead letter {pk} does not exist.", dead_letter_id=pk) from None


def dead_letter_for_execution(execution_id: uuid.UUID | str) -> DeadLetter | None:
    """The most recent dead letter parked for an execution, if any."""
    return DeadLetter.objects.filter(execution_id=execution_id).order_by("-created_at").first()


def open_dead_letters(*, pipeline: str | None = None) -> QuerySet[DeadLetter]:
    """Open letters, oldest first (the order a bulk replay works through them)."""
    qs = DeadLetter.objects.open().select_related("execution")
    if pipeline:
        qs = qs.filter(pipeline=pipeline)
    return qs.order_by("created_at", "id")


def due_for_retry(now: datetime) -> QuerySet[DeadLetter]:
    """Open letters whose automatic retry time has come, earliest due first."""
    return (
        DeadLetter.objects.open()
        .filter(next_retry_at__isnull=False, next_retry_at__lte=now)
        .order_by("next_retry_at", "id")
    )


def resolved_before(cutoff: datetime) -> QuerySet[DeadLetter]:
    """Closed letters resolved before ``cutoff`` (what retention purges)."""
    return DeadLetter.objects.closed().filter(resolved_at__lt=cutoff)


def dead_letter_lineage(dead_letter: DeadLetter) -> list[DeadLetter]:
    """Every letter in this one's retry lineage, first failure first.

    Walks ``previous`` back to the first failure, then forward through the letters
    parked for each replay, so an operator sees all attempts of one job together.
    """
    first = dead_letter
    seen = {first.pk}
    while first.previous_id is not None and first.previous_id not in seen:
        first = DeadLetter.objects.select_related("execution", "replay_execution").get(
            pk=first.previous_id
        )
        seen.add(first.pk)
    chain = [first]
    visited = {first.pk}
    current = first
    while True:
        nxt = (
            DeadLetter.objects.select_related("execution", "replay_execution")
            .filter(previous=current)
            .exclude(pk__in=visited)
            .order_by("created_at", "id")
            .first()
        )
        if nxt is None:
            break
        chain.append(nxt)
        visited.add(nxt.pk)
        current = nxt
    return chain


def execution_timeline(execution_id: uuid.UUID | str) -> QuerySet[ExecutionEvent]:
    """The failed execution's event history, oldest first."""
    return ExecutionEvent.objects.filter(execution_id=execution_id).order_by("timestamp", "id")


def execution_children(execution_id: uuid.UUID | str) -> QuerySet[Execution]:
    """Executions started from this one (replays and sub-pipelines), oldest first."""
    return Execution.objects.filter(parent_id=execution_id).order_by("created_at")


def open_counts() -> dict[tuple[str, str], int]:
    """Open letters per (pipeline, failure kind), for the metrics gauge."""
    rows: Iterable[dict[str, object]] = (
        DeadLetter.objects.open()
        .order_by()
        .values("pipeline", "failure_kind")
        .annotate(n=Count("id"))
    )
    return {(str(r["pipeline"]), str(r["failure_kind"])): int(r["n"]) for r in rows}  # type: ignore[call-overload]


# --- groups and bulk selections ---------------------------------------------------------


def dead_letter_groups(
    base: QuerySet[DeadLetter] | None = None,
    *,
    pipeline: str | None = None,
    failure_kind: str | None = None,
    error_class: str | None = None,
) -> QuerySet[DeadLetter]:
    """Open letters grouped by signature, biggest group first.

    Each row (a dict) has ``signature``, ``pipeline``, ``failure_kind``,
    ``error_class``, ``count``, ``first_seen``, ``last_seen`` and ``example_id`` (the
    newest letter of the group); :func:`group_examples` fetches those letters.
    ``base`` narrows the letters first (an API filter), open ones only either way.
    """
    qs = (base if base is not None else DeadLetter.objects.all()).filter(resolved_at__isnull=True)
    if pipeline:
        qs = qs.filter(pipeline=pipeline)
    if failure_kind:
        qs = qs.filter(failure_kind=failure_kind)
    if error_class:
        qs = qs.filter(error_class=error_class)
    return (
        qs.order_by()
        .values("signature", "pipeline", "failure_kind", "error_class")
        .annotate(
            count=Count("id"),
            first_seen=Min("created_at"),
            last_seen=Max("created_at"),
            example_id=Max("id"),
        )
        .order_by("-count", "-last_seen", "signature")
    )


def group_examples(example_ids: Iterable[int]) -> dict[int, DeadLetter]:
    """The example letters of a page of groups, by id (one query)."""
    return {x.pk: x for x in DeadLetter.objects.filter(pk__in=list(example_ids))}


def group_summary(signature: str) -> dict[str, object] | None:
    """One group's row (see :func:`dead_letter_groups`), or None if it has no open letter."""
    rows = list(dead_letter_groups().filter(signature=signature)[:1])
    return rows[0] if rows else None  # type: ignore[return-value]


def open_signatures(limit: int = 30) -> list[tuple[str, str, int]]:
    """The biggest open groups as (signature, label, count), for the list filter."""
    rows = dead_letter_groups()[:limit]
    return [
        (
            str(r["signature"]),
            f"{r['pipeline']} · {r['error_class'] or r['failure_kind']}",
            int(r["count"]),  # type: ignore[call-overload]
        )
        for r in rows
    ]


def error_classes() -> list[str]:
    """Every exception class seen on a dead letter, for the list filter."""
    return list(
        DeadLetter.objects.exclude(error_class="")
        .order_by("error_class")
        .values_list("error_class", flat=True)
        .distinct()
    )


def select_letters(
    *, ids: Iterable[int | str] | None = None, signature: str | None = None
) -> list[DeadLetter]:
    """The letters a bulk operation names: by id (in the order given) or by signature
    (the group's open letters, oldest first). :class:`BadSelection` for a malformed id or
    signature, or both or neither given; :class:`DeadLetterNotFound` for unknown ids or a
    signature with no open letter."""
    if (ids is None) == (signature is None):
        raise BadSelection("name the dead letters by ids or by a signature (exactly one).")
    if signature is not None:
        if not is_signature(signature):
            raise BadSelection(
                f"{quote(signature)} is not a signature (16 lower-case hex digits, "
                "as shown in the groups list)."
            )
        letters = list(open_dead_letters().filter(signature=signature))
        if not letters:
            raise DeadLetterNotFound(f"no open dead letters have signature {signature}.")
        return letters
    wanted: list[int] = []
    for raw in ids or []:
        try:
            pk = int(raw)
        except (TypeError, ValueError):
            raise BadSelection(
                f"{quote(raw)} is not a dead letter id (ids are whole numbers)."
            ) from None
        if not 1 <= pk <= MAX_ID:
            raise DeadLetterNotFound(f"no dead letter with id {pk}; nothing was done.")
        if pk not in wanted:
            wanted.append(pk)
    if not wanted:
        raise BadSelection("no dead letter ids given.")
    if len(wanted) > MAX_BULK:
        raise BadSelection(f"at most {MAX_BULK} dead letters at once ({len(wanted)} given).")
    found = {x.pk: x for x in DeadLetter.objects.select_related("execution").filter(pk__in=wanted)}
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        noun = "dead letter with id" if len(missing) == 1 else "dead letters with ids"
        raise DeadLetterNotFound(f"no {noun} {shown}; nothing was done.")
    return [found[pk] for pk in wanted]


def replay_batches(limit: int = 20) -> QuerySet[Execution]:
    """The newest bulk replays (``dlq.replay_batch`` executions)."""
    return Execution.objects.filter(pipeline=REPLAY_BATCH_PIPELINE).order_by("-created_at")[:limit]


def replay_batch_progress(execution: Execution) -> dict[str, object]:
    """How far a bulk replay got: ``done`` of ``total``, and per letter what happened.

    Read from the batch's progress events while it runs, from its result once it ended.
    """
    params = execution.params or {}
    total = len(params.get("ids") or [])
    if isinstance(execution.result, dict) and "letters" in execution.result:
        letters = list(execution.result["letters"])
    else:
        letters = [
            dict(e.data)
            for e in ExecutionEvent.objects.filter(
                execution_id=execution.pk, type=PROGRESS_EVENT
            ).order_by("timestamp", "id")
        ]
    replayed = sum(1 for x in letters if x.get("outcome") == "replayed")
    return {
        "execution": execution,
        "total": total,
        "done": len(letters),
        "replayed": replayed,
        "refused": len(letters) - replayed,
        "letters": letters,
        "signature": params.get("signature") or "",
        "running": not execution.is_terminal,
    }
