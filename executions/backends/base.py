"""The one interface every execution backend implements (invariant 4)."""

from __future__ import annotations

import abc

from executions.models import Execution


class ExecutionBackend(abc.ABC):
    """Takes queued executions to wherever they run.

    ``submit`` receives an execution the Dispatcher has just marked queued (its
    ``run_after``, when set and in the future, says not to start it before then);
    raising means the backend did not accept it, and the Dispatcher returns it to
    pending with the reason. ``cancel`` withdraws a queued execution if the backend
    can; the runner also refuses cancelled executions, so it is best effort.
    """

    name: str = ""
    #: True when ``submit`` runs the execution before returning.
    runs_inline: bool = False
    #: True when an accepted hand-off lives only in this process (a timer), so one not
    #: started soon after it was due is lost; a broker instead may still redeliver
    #: it until its redelivery window has passed.
    hand_offs_die_with_process: bool = False

    @abc.abstractmethod
    def submit(self, execution: Execution) -> None:
        """Accept a queued execution for running, or raise."""

    @abc.abstractmethod
    def cancel(self, execution: Execution) -> None:
        """Withdraw a cancelled execution where the backend can."""
