"""Why a dead-letter operation was refused, in words an operator can act on.

Every refusal is a :class:`DeadLetterError` with a stable ``code`` (for the API's
error body and for tests) and a message that says what happened and what to do.
The admin, the ``dlq`` command and the API all show the same message.
"""

from __future__ import annotations


class DeadLetterError(Exception):
    """A dead-letter operation was refused; ``str(exc)`` says why."""

    code = "dead_letter_error"

    def __init__(self, message: str, *, dead_letter_id: int | None = None) -> None:
        self.message = message
        self.dead_letter_id = dead_letter_id
        super().__init__(message)


class DeadLetterNotFound(DeadLetterError):
    code = "dead_letter_not_found"


class AlreadyResolved(DeadLetterError):
    code = "dead_letter_already_resolved"


class RetriesExhausted(DeadLetterError):
    code = "dead_letter_retries_exhausted"


class ReplayRefused(DeadLetterError):
    """The Dispatcher would not accept the replay (pipeline gone, params invalid)."""

    code = "dead_letter_replay_refused"


class NoteRequired(DeadLetterError):
    code = "dead_letter_note_required"


class BadSelection(DeadLetterError):
    """A bulk operation named letters that do not exist, a malformed signature, or none."""

    code = "dead_letter_bad_selection"


class ParamsRejected(DeadLetterError):
    """Edited params do not validate against the pipeline's params serializer."""

    code = "dead_letter_params_invalid"

    def __init__(
        self, message: str, *, errors: dict[str, object], dead_letter_id: int | None = None
    ) -> None:
        super().__init__(message, dead_letter_id=dead_letter_id)
        self.errors = errors


class NothingToReplay(DeadLetterError):
    """Every letter of a bulk replay is already closed."""

    code = "dead_letter_nothing_to_replay"
