"""A week over FINRA's API meets the same row bounds as a file: over-long fields,
unstorable volumes and control characters are rejects; the rest of the week is kept."""

from __future__ import annotations

import pytest

from executions.models import ExecutionStatus
from otc.finra import FinraClientConfig
from otc.models import Capture, Reject, VenueVolume
from tests.otc import finra_server as fake
from tests.otc.fetch_support import ROWS, fetch, publish, symbol_totals, venue_rows

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def test_api_rows_out_of_bounds_are_rejects_with_their_reasons(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    rows = venue_rows()
    totals = symbol_totals(rows)
    rows[3] = {**rows[3], "issueName": "Bad\x00Name"}
    rows[10] = {**rows[10], "issueSymbolIdentifier": "S" * (1 << 20)}
    rows[20] = {**rows[20], "totalWeeklyShareQuantity": 2**63}
    publish(finra, rows, totals)

    execution = fetch()

    assert execution.status == ExecutionStatus.SUCCEEDED, execution.error
    capture = Capture.objects.get()
    assert (capture.row_count, capture.reject_count) == (ROWS, 3)
    # The fake serves rows sorted by symbol and MPID, so only the reasons are compared.
    reasons = sorted(Reject.objects.values_list("reason", flat=True))
    assert reasons[0].startswith("control character '\\x00' in issueName at character ")
    assert reasons[1:] == [
        "issueSymbolIdentifier is 1048576 characters; at most 20",
        "totalWeeklyShareQuantity out of range: 9223372036854775808",
    ]
    assert all(len(raw) < 1100 for raw in Reject.objects.values_list("raw", flat=True))
    assert VenueVolume.objects.count() == ROWS - 3
