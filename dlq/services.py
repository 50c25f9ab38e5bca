"""Writes to the dead-letter queue: park, retry/replay, resolve, discard, purge.

Every path that changes a dead letter goes through here; the rules are in docs/dlq.md.
"""

from __future__ import annotations

import logging
import random
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction

from dlq import metrics
from dlq.errors import (
    AlreadyResolved,
    BadSelection,
    DeadLetterError,
    NoteRequired,
    NothingToReplay,
    ParamsRejected,
    ReplayRefused,
    RetriesExhausted,
)
from dlq.models import DeadLetter, FailureKind, Resolution
from dlq.pacing import Pacer, paced_seconds
from dlq.selectors import REPLAY_BATCH_PIPELINE, due_for_retry, resolved_before
from dlq.signature import error_class, error_signature
from executions import dispatcher
from executions.fencing import fence
from executions.models import Execution, TriggerSource
from executions.registry import InvalidParams, RetryPolicy, UnknownPipeline, registry
from executions.services import record_event
from spine.context import get_request_id
from spine.text import bounded
from spine.time import format_iso, utc_now

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    User = AbstractBaseUser

__all__ = [
    "DeadLetterError",
    "RetryDueResult",
    "discard",
    "discard_letters",
    "edit_and_replay",
    "park",
    "purge_resolved",
    "resolve",
    "retry",
    "retry_due",
    "run_replay_batch",
    "submit_replay_batch",
]

logger = logging.getLogger(__name__)
_rng = random.Random()


# --- parking -----------------------------------------------------------------------


def park(
    execution: Execution,
    *,
    failure_kind: str,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> DeadLetter:
    """Park a failed execution; return its dead letter (the existing one if parked already).

    Called by the runner's failure seam (``SPINE_FAILURE_HANDLER``) for errors, time-outs,
    lock conflicts and lost workers. The snapshot (params, error, traceback) is copied
    so the letter stays readable whatever later happens to the execution; error and
    traceback are bounded (:func:`spine.text.bounded`). If the pipeline's retry budget
    is not spent, ``next_retry_at`` schedules the automatic retry; otherwise the
    letter waits for a person.
    """
    try:
        kind = FailureKind(failure_kind)
    except ValueError:
        raise DeadLetterError(
            f"unknown failure kind {failure_kind!r}; expected one of "
            f"{', '.join(FailureKind.values)}."
        ) from None
    now = now or utc_now()

    existing = _letter_for(execution)
    if existing is not None:
        return existing

    previous = _previous_letter(execution)
    attempts = max(execution.attempt, previous.attempts + 1 if previous else 1)
    policy = _policy_for(execution.pipeline)
    # The reaper already spends the same budget on requeues of a lost worker's run;
    # count those so a worker-lost failure is not retried twice over.
    spent = attempts - 1 + int(getattr(execution, "redeliveries", 0) or 0)
    next_retry_at = None
    if spent < policy.max_retries:
        next_retry_at = now + timedelta(seconds=policy.delay_for(spent + 1, rng or _rng))

    error, traceback = bounded(execution.error or ""), bounded(execution.traceback or "")
    try:
        with transaction.atomic():
            letter = DeadLetter.objects.create(
                execution=execution,
                pipeline=execution.pipeline,
                params=execution.params or {},
                error=error,
                traceback=traceback,
                failure_kind=kind,
                error_class=error_class(error, traceback),
                signature=error_signature(
                    execution.pipeline, error, traceback, failure_kind=kind.value
                ),
                attempts=attempts,
                max_retries=policy.max_retries,
                next_retry_at=next_retry_at,
                created_at=now,
                previous=previous,
            )
            _record(
                execution,
                "dead_lettered",
                {
                    "dead_letter_id": letter.pk,
                    "failure_kind": kind.value,
                    "attempts": attempts,
                    "max_retries": policy.max_retries,
                    "next_retry_at": format_iso(next_retry_at) if next_retry_at else None,
                },
            )
    except IntegrityError:
        # A concurrent park for the same execution won the one-open-letter constraint.
        existing = _letter_for(execution)
        if existing is None:
            raise
        return existing

    transaction.on_commit(
        lambda: metrics.PARKED.labels(pipeline=letter.pipeline, failure_kind=kind.value).inc()
    )
    logger.warning(
        "execution %s parked as dead letter %s (%s, attempt %s, %s automatic retries allowed, %s)",
        execution.pk,
        letter.pk,
        kind.value,
        attempts,
        policy.max_retries,
        f"retry due {format_iso(next_retry_at)}" if next_retry_at else "waits for a person",
        extra={"execution_id": str(execution.pk), "dead_letter_id": letter.pk},
    )
    return letter


def _letter_for(execution: Execution) -> DeadLetter | None:
    return DeadLetter.objects.filter(execution=execution).order_by("-created_at", "-id").first()


def _previous_letter(execution: Execution) -> DeadLetter | None:
    """The letter whose replay produced this execution, if it is one.

    The direct link is the letter's ``replay_execution``; an execution retried some
    other way (for example re-run from the executions admin) is linked through its
    parent's letter instead.
    """
    direct = DeadLetter.objects.filter(replay_execution=execution).order_by("-created_at").first()
    if direct is not None:
        return direct
    if execution.trigger_source == TriggerSource.RETRY and execution.parent_id:
        return (
            DeadLetter.objects.filter(execution_id=execution.parent_id)
            .order_by("-created_at")
            .first()
        )
    return None


def _policy_for(pipeline_name: str) -> RetryPolicy:
    """The pipeline's retry policy; none (no automatic retries) if it is gone."""
    try:
        return registry.get(pipeline_name).retry
    except UnknownPipeline:
        return RetryPolicy(max_retries=0)


# --- replay ------------------------------------------------------------------------


def retry(
    dead_letter: DeadLetter,
    *,
    by: User | None,
    force: bool = False,
    note: str = "",
) -> Execution:
    """Replay a dead letter as a NEW execution and resolve the letter as replayed.

    The new execution is created by the Dispatcher with ``trigger_source=retry`` and
    ``parent`` = the failed execution (so its attempt is one more). Refused with
    :class:`AlreadyResolved` when the letter is closed, and with
    :class:`RetriesExhausted` when its lineage is over the retry budget unless
    ``force`` (a person's deliberate decision). Safe to call concurrently: one caller
    replays, the others are told it is already replayed.
    """
    return _replay(dead_letter, by=by, force=force, note=note, automatic=False, now=None)


def edit_and_replay(
    dead_letter: DeadLetter,
    params: dict[str, Any],
    *,
    by: User | None,
    force: bool = False,
    note: str = "",
) -> Execution:
    """Replay a dead letter with edited params, keeping the original and the change.

    ``params`` are validated against the pipeline's params serializer first
    (:class:`ParamsRejected`, nothing written). The letter keeps the params it was
    parked with in ``original_params`` and gains a ``params_changes`` entry (who, when,
    the diff per key); the replay then runs as :func:`retry` does, with the new params.
    """
    canonical = validate_params(dead_letter, params)
    return _replay(
        dead_letter,
        by=by,
        force=force,
        note=note or "replayed with edited params",
        automatic=False,
        now=None,
        params=canonical,
    )


def validate_params(dead_letter: DeadLetter, params: Any) -> dict[str, Any]:
    """The canonical form of ``params`` for the letter's pipeline, or :class:`ParamsRejected`."""
    if not isinstance(params, dict):
        raise ParamsRejected(
            "params must be a JSON object.", errors={}, dead_letter_id=dead_letter.pk
        )
    try:
        return registry.get(dead_letter.pipeline).validate(params)
    except UnknownPipeline as exc:
        raise ReplayRefused(
            f"cannot replay dead letter {dead_letter.pk}: {exc}.", dead_letter_id=dead_letter.pk
        ) from exc
    except InvalidParams as exc:
        raise ParamsRejected(str(exc), errors=exc.errors, dead_letter_id=dead_letter.pk) from exc


def params_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per changed key, ``{"old": .., "new": ..}`` (``None`` for a key added or removed)."""
    return {
        key: {"old": old.get(key), "new": new.get(key)}
        for key in sorted(set(old) | set(new))
        if key not in old or key not in new or old[key] != new[key]
    }


def _replay(
    dead_letter: DeadLetter,
    *,
    by: User | None,
    force: bool,
    note: str,
    automatic: bool,
    now: datetime | None,
    params: dict[str, Any] | None = None,
) -> Execution:
    now = now or utc_now()
    with transaction.atomic():
        # The row lock is the whole concurrency story: a second replay waits here and
        # then finds the letter resolved.
        locked = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
        if not locked.is_open:
            raise AlreadyResolved(_closed_reason(locked), dead_letter_id=locked.pk)
        if automatic:
            if locked.retries_exhausted or locked.next_retry_at is None:
                raise RetriesExhausted(
                    f"dead letter {locked.pk} has no automatic retry left "
                    f"({locked.retries_used} of {locked.max_retries} used); "
                    "it waits for a person.",
                    dead_letter_id=locked.pk,
                )
            if locked.next_retry_at > now:
                raise DeadLetterError(
                    f"dead letter {locked.pk} is not due until {format_iso(locked.next_retry_at)}.",
                    dead_letter_id=locked.pk,
                )
        elif locked.over_max_retries and not force:
            raise RetriesExhausted(
                f"dead letter {locked.pk} is over its retry budget: attempt "
                f"{locked.attempts} failed and {locked.pipeline} allows "
                f"{locked.max_retries} automatic retr{'y' if locked.max_retries == 1 else 'ies'} "
                "plus one manual replay. Read the traceback, then force the replay "
                "(--force / force=true / the admin's force box) if another run should help.",
                dead_letter_id=locked.pk,
            )
        failed = Execution.objects.get(pk=locked.execution_id)
        edited: list[str] = []
        if params is not None:
            diff = params_diff(locked.params or {}, params)
            if locked.original_params is None:
                locked.original_params = locked.params
            locked.params = params
            locked.params_changes = [
                *(locked.params_changes or []),
                {"by": _actor(by, automatic=False), "at": format_iso(now), "diff": diff},
            ]
            edited = ["params", "original_params", "params_changes"]
        new_execution = _dispatch_replay(locked, failed)

        locked.replay_execution = new_execution
        locked.resolution = Resolution.REPLAYED
        locked.resolved_at = now
        locked.last_retry_at = now
        locked.next_retry_at = None
        locked.resolved_by = by
        locked.note = note or _default_replay_note(locked, automatic=automatic, forced=force)
        locked.save(
            update_fields=[
                "replay_execution",
                "resolution",
                "resolved_at",
                "last_retry_at",
                "next_retry_at",
                "resolved_by",
                "note",
                *edited,
            ]
        )
        replayed_data: dict[str, Any] = {
            "dead_letter_id": locked.pk,
            "replay_execution_id": str(new_execution.pk),
            "by": _actor(by, automatic=automatic),
            "forced": bool(force and locked.over_max_retries),
        }
        if edited:
            replayed_data["params_diff"] = locked.params_changes[-1]["diff"]
        _record(failed, "dead_letter_replayed", replayed_data)
        trigger = "automatic" if automatic else "manual"
        pipeline, kind = locked.pipeline, locked.failure_kind
        transaction.on_commit(
            lambda: metrics.REPLAYED.labels(
                pipeline=pipeline, failure_kind=kind, trigger=trigger
            ).inc()
        )
        fence()
    _refresh(dead_letter, locked)
    logger.info(
        "dead letter %s replayed as execution %s (%s)",
        locked.pk,
        new_execution.pk,
        _actor(by, automatic=automatic),
        extra={"execution_id": str(failed.pk), "dead_letter_id": locked.pk},
    )
    return new_execution


def _dispatch_replay(letter: DeadLetter, failed: Execution) -> Execution:
    """Hand the replay to the Dispatcher (the only creator of executions)."""
    try:
        return dispatcher.dispatch(
            letter.pipeline,
            letter.params,
            trigger_source=TriggerSource.RETRY,
            parent=failed,
            request_id=get_request_id() or failed.request_id or None,
            lane=failed.lane,
        )
    except UnknownPipeline as exc:
        raise ReplayRefused(
            f"cannot replay dead letter {letter.pk}: {exc}. Resolve or discard it instead.",
            dead_letter_id=letter.pk,
        ) from exc
    except InvalidParams as exc:
        raise ReplayRefused(
            f"cannot replay dead letter {letter.pk}: the stored params no longer validate "
            f"({exc}). Dispatch a corrected run and resolve this letter with a note.",
            dead_letter_id=letter.pk,
        ) from exc


def _default_replay_note(letter: DeadLetter, *, automatic: bool, forced: bool) -> str:
    if automatic:
        return f"automatic retry {letter.retries_used + 1} of {letter.max_retries}"
    if forced and letter.over_max_retries:
        return "replayed (forced past the retry budget)"
    return "replayed"


# --- automatic retries ---------------------------------------------------------------


@dataclass
class RetryDueResult:
    """What one pass of :func:`retry_due` did."""

    replayed: list[tuple[int, str]] = field(default_factory=list)  # (letter id, new execution)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (letter id, reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "replayed": [{"dead_letter_id": i, "execution_id": e} for i, e in self.replayed],
            "skipped": [{"dead_letter_id": i, "reason": r} for i, r in self.skipped],
        }


def retry_due(now: datetime | None = None, *, limit: int = 100) -> RetryDueResult:
    """Replay every open letter whose automatic retry time has come.

    Run periodically (the ``ops.dlq_retry`` pipeline). Each letter is replayed in its own
    transaction under its row lock, so overlapping runs, or a person replaying at the
    same moment, never replay one letter twice; a letter that lost such a race is
    reported as skipped.
    """
    now = now or utc_now()
    result = RetryDueResult()
    for letter in list(due_for_retry(now)[:limit]):
        try:
            execution = _replay(letter, by=None, force=False, note="", automatic=True, now=now)
        except DeadLetterError as exc:
            result.skipped.append((letter.pk, str(exc)))
            continue
        result.replayed.append((letter.pk, str(execution.pk)))
    if result.replayed or result.skipped:
        logger.info(
            "automatic dead-letter retries: %d replayed, %d skipped",
            len(result.replayed),
            len(result.skipped),
        )
    return result


# --- closing without a replay ----------------------------------------------------------


def resolve(dead_letter: DeadLetter, *, by: User | None, note: str) -> DeadLetter:
    """Close a letter as handled by a person (fixed upstream, rerun by hand, ...).

    A note is required: it is the only record of what the person did about it.
    """
    if not (note or "").strip():
        raise NoteRequired(
            f"resolving dead letter {dead_letter.pk} needs a note saying how it was handled.",
            dead_letter_id=dead_letter.pk,
        )
    return _close(dead_letter, Resolution.RESOLVED, by=by, note=note.strip())


def discard(dead_letter: DeadLetter, *, by: User | None, note: str = "") -> DeadLetter:
    """Close a letter deliberately without replaying it (the run is not wanted)."""
    return _close(dead_letter, Resolution.DISCARDED, by=by, note=(note or "").strip())


def _close(
    dead_letter: DeadLetter, resolution: Resolution, *, by: User | None, note: str
) -> DeadLetter:
    now = utc_now()
    with transaction.atomic():
        locked = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
        if not locked.is_open:
            raise AlreadyResolved(_closed_reason(locked), dead_letter_id=locked.pk)
        locked.resolution = resolution
        locked.resolved_at = now
        locked.resolved_by = by
        locked.next_retry_at = None
        locked.note = note
        locked.save(
            update_fields=["resolution", "resolved_at", "resolved_by", "next_retry_at", "note"]
        )
        _record(
            Execution.objects.get(pk=locked.execution_id),
            f"dead_letter_{resolution.value}",
            {"dead_letter_id": locked.pk, "by": _actor(by, automatic=False), "note": note},
        )
        pipeline, kind = locked.pipeline, locked.failure_kind
        transaction.on_commit(
            lambda: metrics.RESOLVED.labels(
                pipeline=pipeline, failure_kind=kind, resolution=resolution.value
            ).inc()
        )
    _refresh(dead_letter, locked)
    logger.info(
        "dead letter %s %s by %s",
        locked.pk,
        resolution.value,
        _actor(by, automatic=False),
        extra={"execution_id": str(locked.execution_id), "dead_letter_id": locked.pk},
    )
    return dead_letter


# --- bulk: rate-capped replay and discard with a reason ------------------------------------

#: A replay batch may run this long (the ``dlq.replay_batch`` pipeline's time limit).
BATCH_TIMEOUT_SECONDS = 6 * 3600
_BATCH_MARGIN_SECONDS = 300


def submit_replay_batch(
    letters: list[DeadLetter],
    *,
    by: User | None,
    trigger_source: str,
    force: bool = False,
    signature: str = "",
) -> Execution:
    """Dispatch a ``dlq.replay_batch`` execution replaying ``letters`` in order.

    The batch replays at most ``SPINE_REPLAY_RATE`` letters a minute (one batch at a
    time: they share a lock). Closed letters are left out; :class:`NothingToReplay`
    when none is open, :class:`BadSelection` when the batch could not finish within
    its time limit at the current rate. Nothing is written on either refusal.
    """
    ids = [x.pk for x in letters if x.is_open]
    if not ids:
        raise NothingToReplay("every selected dead letter is already closed; nothing to replay.")
    rate = replay_rate()
    needed = paced_seconds(len(ids), rate)
    if needed > BATCH_TIMEOUT_SECONDS - _BATCH_MARGIN_SECONDS:
        fits = int((BATCH_TIMEOUT_SECONDS - _BATCH_MARGIN_SECONDS) * rate / 60) + 1
        raise BadSelection(
            f"at SPINE_REPLAY_RATE={rate} a minute, {len(ids)} replays take "
            f"{needed / 3600:.1f} h, more than a batch may run "
            f"({BATCH_TIMEOUT_SECONDS // 3600} h); select at most {fits}."
        )
    execution = dispatcher.dispatch(
        REPLAY_BATCH_PIPELINE,
        {
            "ids": ids,
            "force": force,
            "signature": signature,
            "requested_by": _actor(by, automatic=False) if by is not None else "",
        },
        trigger_source=trigger_source,
        request_id=get_request_id() or None,
    )
    logger.info(
        "replay batch %s dispatched: %d dead letters at %d a minute (%s)",
        execution.pk,
        len(ids),
        rate,
        _actor(by, automatic=False),
        extra={"execution_id": str(execution.pk)},
    )
    return execution


def replay_rate() -> int:
    """``SPINE_REPLAY_RATE``: bulk replays a minute (validated at start-up)."""
    return int(settings.SPINE_REPLAY_RATE)


@dataclass
class BatchResult:
    """What one replay batch did, letter by letter, in order."""

    total: int
    rate_per_minute: int
    letters: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        replayed = sum(1 for x in self.letters if x["outcome"] == "replayed")
        return {
            "total": self.total,
            "done": len(self.letters),
            "replayed": replayed,
            "refused": len(self.letters) - replayed,
            "rate_per_minute": self.rate_per_minute,
            "letters": self.letters,
        }


def run_replay_batch(
    ids: list[int],
    *,
    by: User | None,
    force: bool = False,
    pacer: Pacer | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    batch_id: str = "",
) -> BatchResult:
    """Replay the letters ``ids`` in order, paced by ``pacer`` (``SPINE_REPLAY_RATE``).

    A letter that is gone, closed meanwhile or refused is recorded with its reason and
    the batch goes on; ``progress`` is called after every letter with what happened and
    how many are done.
    """
    pacer = pacer or Pacer(replay_rate())
    result = BatchResult(total=len(ids), rate_per_minute=pacer.rate_per_minute)
    note = f"replayed in batch {batch_id}" if batch_id else "replayed in a batch"
    for pk in ids:
        pacer.wait()
        entry: dict[str, Any] = {"dead_letter_id": pk}
        letter = DeadLetter.objects.filter(pk=pk).first()
        if letter is None:
            entry.update(outcome="refused", reason=f"dead letter {pk} no longer exists.")
        else:
            try:
                execution = retry(letter, by=by, force=force, note=note)
            except DeadLetterError as exc:
                entry.update(outcome="refused", reason=str(exc))
            else:
                entry.update(outcome="replayed", execution_id=str(execution.pk))
        result.letters.append(entry)
        if progress is not None:
            progress({**entry, "done": len(result.letters), "total": result.total})
    return result


def discard_letters(
    letters: list[DeadLetter], *, by: User | None, reason: str
) -> dict[str, list[Any]]:
    """Discard many letters with one reason (required); closed ones are skipped.

    Returns ``{"discarded": [ids], "skipped": [{"dead_letter_id", "reason"}]}``.
    """
    reason = (reason or "").strip()
    if not reason:
        raise NoteRequired("discarding dead letters in bulk needs a reason.")
    out: dict[str, list[Any]] = {"discarded": [], "skipped": []}
    for letter in letters:
        try:
            discard(letter, by=by, note=reason)
        except AlreadyResolved as exc:
            out["skipped"].append({"dead_letter_id": letter.pk, "reason": str(exc)})
            continue
        out["discarded"].append(letter.pk)
    return out


# --- retention -----------------------------------------------------------------------------


def purge_resolved(
    older_than: timedelta | None = None, *, now: datetime | None = None
) -> dict[str, int]:
    """Delete closed letters resolved more than ``older_than`` ago; return counts.

    ``older_than`` defaults to ``SPINE_DLQ_RETENTION_DAYS``. Open letters are never
    purged, however old: they still wait for someone. Counts per resolution are
    logged so the retention run leaves a trace of what it removed.
    """
    if older_than is None:
        older_than = timedelta(days=settings.SPINE_DLQ_RETENTION_DAYS)
    if older_than < timedelta(0):
        raise DeadLetterError("the retention age cannot be negative.")
    cutoff = (now or utc_now()) - older_than
    with transaction.atomic():
        doomed = resolved_before(cutoff)
        counts = Tally(doomed.values_list("resolution", flat=True))
        deleted, _ = doomed.delete()
        fence()
    by_resolution = {key: counts.get(key, 0) for key in Resolution.values}
    total = sum(by_resolution.values())
    if deleted:
        transaction.on_commit(lambda: metrics.PURGED.inc(total))
    logger.info(
        "purged %d resolved dead letters older than %s (replayed=%d resolved=%d discarded=%d)",
        total,
        format_iso(cutoff),
        by_resolution["replayed"],
        by_resolution["resolved"],
        by_resolution["discarded"],
    )
    return {"total": total, **by_resolution}


# --- helpers ---------------------------------------------------------------------------------


def _closed_reason(letter: DeadLetter) -> str:
    when = format_iso(letter.resolved_at) if letter.resolved_at else "earlier"
    who = f" by {letter.resolved_by}" if letter.resolved_by_id else ""
    if letter.resolution == Resolution.REPLAYED:
        target = f" as execution {letter.replay_execution_id}" if letter.replay_execution_id else ""
        return f"dead letter {letter.pk} was already replayed{target} at {when}{who}."
    state = letter.get_resolution_display().lower()
    return f"dead letter {letter.pk} is already {state} ({when}{who})."


def _actor(by: User | None, *, automatic: bool) -> str:
    if by is not None:
        return str(by.get_username())
    return "automatic retry" if automatic else "system"


def _refresh(target: DeadLetter, source: DeadLetter) -> None:
    """Copy the locked row's new state onto the caller's instance."""
    for name in (
        "resolution",
        "resolved_at",
        "resolved_by_id",
        "replay_execution_id",
        "last_retry_at",
        "next_retry_at",
        "note",
        "params",
        "original_params",
        "params_changes",
    ):
        setattr(target, name, getattr(source, name))
    for cached in ("resolved_by", "replay_execution"):
        target._state.fields_cache.pop(cached, None)


def _record(execution: Execution, event_type: str, data: dict[str, Any]) -> None:
    """Append an event to the execution's history through the executions services."""
    record_event(execution, event_type, data)
