"""Error bodies that echo a request's values echo at most a short, printable part of them."""

from __future__ import annotations

import json

import pytest

from executions.models import Execution
from tests.api.conftest import assert_error, make_user, token_client

pytestmark = pytest.mark.django_db

MB = 1 << 20
LIST = "/api/v1/executions/"


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    return token_client(make_user("operator", "executions.add_execution"))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tier": "T" * MB + "\x00", "week": "2025-12-15"}, "tier"),
        ({"tier": "T1", "week": "2025-12-15", "x" * MB: 1}, None),
    ],
)
def test_invalid_params_echo_a_short_printable_excerpt(client, params, field) -> None:  # type: ignore[no-untyped-def]
    response = client.post(LIST, {"pipeline": "otc.compute", "params": params}, format="json")
    error = assert_error(response, 400, "invalid_params")
    body = json.dumps(response.json(), ensure_ascii=False)
    assert len(body) < 4000, body[:500]
    assert "\\u0000" not in body
    if field:
        assert list(error["details"]["params"]) == [field]
    else:
        (key,) = error["details"]["params"]
        assert key.startswith("xxxx") and key.endswith("(1,048,576 characters)")
    assert not Execution.objects.exists()


def test_an_unknown_lane_or_pipeline_is_echoed_briefly(client) -> None:  # type: ignore[no-untyped-def]
    for body in (
        {
            "pipeline": "otc.compute",
            "params": {"tier": "T1", "week": "2025-12-15"},
            "lane": "l" * MB,
        },
        {"pipeline": "p" * MB},
    ):
        response = client.post(LIST, body, format="json")
        assert response.status_code == 400
        assert len(response.content) < 4000, response.content[:500]
    assert not Execution.objects.exists()
