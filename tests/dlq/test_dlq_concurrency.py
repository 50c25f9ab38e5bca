"""Two people replaying the same dead letter at once create exactly one new execution.

Each thread has its own database connection (``transaction=True``: the rows are
committed, the row lock is real). The Dispatcher is slowed down while the first
replay holds the lock, so the second really arrives while the first is in flight.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, connections

from dlq import services
from dlq.errors import AlreadyResolved
from dlq.models import DeadLetter, Resolution
from executions import dispatcher
from executions.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are what this test proves; it needs PostgreSQL")


def _replay_in_threads(letter_id: int, count: int, **kwargs: Any) -> list[Any]:
    barrier = threading.Barrier(count)
    outcomes: list[Any] = [None] * count

    def worker(index: int) -> None:
        try:
            letter = DeadLetter.objects.get(pk=letter_id)  # each thread reads it open
            barrier.wait(timeout=10)
            outcomes[index] = services.retry(letter, by=None, **kwargs)
        except Exception as exc:  # collected and asserted below
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def test_parallel_replays_create_exactly_one_execution(
    stub_backend, monkeypatch: pytest.MonkeyPatch
):
    failed = dispatcher.dispatch("diag.fail", {}, trigger_source="cli")
    letter = services.park(failed, failure_kind="error")

    real_dispatch = dispatcher.dispatch

    def slow_dispatch(*args: Any, **kwargs: Any) -> Execution:
        time.sleep(0.3)  # hold the row lock long enough for the other replay to arrive
        return real_dispatch(*args, **kwargs)

    monkeypatch.setattr(dispatcher, "dispatch", slow_dispatch)

    outcomes = _replay_in_threads(letter.pk, 4)

    created = [o for o in outcomes if isinstance(o, Execution)]
    refused = [o for o in outcomes if isinstance(o, AlreadyResolved)]
    assert len(created) == 1, outcomes
    assert len(refused) == 3, outcomes
    assert Execution.objects.filter(parent=failed).count() == 1
    letter.refresh_from_db()
    assert letter.resolution == Resolution.REPLAYED
    assert letter.replay_execution_id == created[0].pk
    assert stub_backend.submitted.count(created[0].pk) == 1
    assert "already replayed" in str(refused[0])


def test_parallel_parks_of_one_execution_leave_one_letter(stub_backend):
    failed = dispatcher.dispatch("diag.fail", {}, trigger_source="cli")
    barrier = threading.Barrier(3)
    letters: list[Any] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            letters.append(services.park(Execution.objects.get(pk=failed.pk), failure_kind="error"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len({x.pk for x in letters}) == 1
    assert DeadLetter.objects.filter(execution=failed).count() == 1
