"""Every query parameter is validated at the API's edge: page numbers and sizes,
timestamps, booleans, dates and sort fields. A value the server cannot use is a 400
naming the parameter, a page past the end (however far) a 404, never a 500; and
what the API answers matches its schema (dead letters' ``resolution``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from dlq import services as dlq_services
from executions.dispatcher import dispatch
from executions.pipelines import register_diagnostic_pipelines
from tests.api.conftest import assert_error, make_user, token_client
from tests.api.otc_data import REAL_WEEK, OtcData, loaded

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

HUGE = "9223372036854775807"


@pytest.fixture(scope="module")
def otc(django_db_setup: None, django_db_blocker: Any, real_otc_file: Path) -> Iterator[OtcData]:
    yield from loaded(django_db_blocker, real_otc_file)


def _otc_lists(otc: OtcData) -> list[str]:
    """Every paginated OTC list, both the precompiled week pages (one tier) and the
    queryset path."""
    return [
        "/api/v1/otc/weeks/",
        "/api/v1/otc/symbols/?tier=OTC&ats=true",
        "/api/v1/otc/symbols/",
        "/api/v1/otc/venues/?tier=OTC&ats=true",
        "/api/v1/otc/venues/",
        "/api/v1/otc/quality/",
        "/api/v1/otc/captures/",
        f"/api/v1/otc/captures/{otc.real_capture}/rejects/",
        "/api/v1/otc/symbols/AABB/weekly/",
        "/api/v1/otc/venues/OTCN/",
    ]


def _with(path: str, query: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{query}"


def test_a_page_past_the_end_is_a_404_on_every_otc_list(otc: OtcData, reader_client) -> None:
    for path in _otc_lists(otc):
        for page in (HUGE, "99999", "1" + "0" * 40):
            response = reader_client.get(_with(path, f"page={page}"))
            error = assert_error(response, 404, "not_found")
            assert "past the end" in error["message"], (path, error)
        assert reader_client.get(path).status_code == 200, path


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "", " 1", "１"])
def test_a_page_that_is_not_a_page_number_is_a_400(otc: OtcData, reader_client, page) -> None:
    for path in _otc_lists(otc):
        response = reader_client.get(_with(path, f"page={page}"))
        error = assert_error(response, 400, "validation_error")
        assert list(error["details"]) == ["page"], (path, error)


@pytest.mark.parametrize("size", ["0", "-5", "501", HUGE, "x", ""])
def test_a_page_size_out_of_bounds_is_a_400(otc: OtcData, reader_client, size) -> None:
    for path in [*_otc_lists(otc), "/api/v1/executions/", "/api/v1/pipelines/"]:
        response = reader_client.get(_with(path, f"page_size={size}"))
        error = assert_error(response, 400, "validation_error")
        assert "from 1 to 500" in error["details"]["page_size"][0], (path, error)


@pytest.fixture
def letters(settings: Any) -> APIClient:
    """An open and a discarded dead letter, and a client allowed to read them (and
    executions)."""
    settings.EXECUTION_BACKEND = "stub"
    register_diagnostic_pipelines()
    for index in range(2):
        failed = dispatch("diag.fail", {"message": f"m{index}"}, trigger_source="cli")
        letter = dlq_services.park(failed, failure_kind="error")
        if index:
            dlq_services.discard(letter, by=None)
    return token_client(make_user("dlq-reader", "dlq.view_deadletter", "executions.view_execution"))


@pytest.mark.parametrize(
    "value",
    [
        "2020-01-01T00:00:00-20:03",  # PostgreSQL refuses offsets Python accepts
        "2020-01-01T00:00:00+23:59",
    ],
)
def test_dead_letter_time_filters_take_any_iso_offset(letters: APIClient, value: str) -> None:
    for name in ("created_after", "created_before"):
        response = letters.get("/api/v1/dlq/", {name: value})
        assert response.status_code == 200, (name, response.content[:300])


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:00:00-05:00",  # after year 9999 in UTC
        "2020-13-01",
        "yesterday",
        "",
    ],
)
def test_time_filters_refuse_what_is_not_a_representable_instant(
    letters: APIClient, value: str
) -> None:
    for path, name in [
        ("/api/v1/dlq/", "created_after"),
        ("/api/v1/dlq/", "created_before"),
        ("/api/v1/executions/", "created_after"),
        ("/api/v1/otc/captures/", "as_of"),
    ]:
        error = assert_error(letters.get(path, {name: value}), 400, "validation_error")
        assert list(error["details"]) == [name], (path, error)


def test_otc_as_of_refuses_what_is_not_a_representable_instant(otc: OtcData, reader_client) -> None:
    for path in ("/api/v1/otc/weeks/", "/api/v1/otc/symbols/", "/api/v1/otc/venues/"):
        for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "soon"):
            error = assert_error(reader_client.get(path, {"as_of": value}), 400, "validation_error")
            assert "as_of" in error["details"], (path, value, error)


@pytest.mark.parametrize(
    "path,query,name",
    [
        ("/api/v1/otc/captures/", "ats=maybe", "ats"),
        ("/api/v1/otc/captures/", "current=yes", "current"),
        ("/api/v1/otc/captures/", "week=", "week"),
        ("/api/v1/otc/captures/", "tier=", "tier"),
        ("/api/v1/otc/captures/", "ordering=week,", "ordering"),
        ("/api/v1/executions/", "parent=", "parent"),
        ("/api/v1/executions/", "status=", "status"),
        ("/api/v1/executions/", "ordering= status", "ordering"),
        ("/api/v1/dlq/", "state=", "state"),
        ("/api/v1/dlq/", "resolution=", "resolution"),
    ],
)
def test_filters_refuse_values_they_would_have_ignored(
    otc: OtcData, letters: APIClient, path: str, query: str, name: str
) -> None:
    error = assert_error(letters.get(f"{path}?{query}"), 400, "validation_error")
    assert list(error["details"]) == [name], error


def test_free_text_filters_may_be_empty(letters: APIClient) -> None:
    assert letters.get("/api/v1/dlq/?search=&pipeline=").status_code == 200


def test_open_dead_letters_have_a_null_resolution_as_the_schema_says(letters: APIClient) -> None:
    schema = json.loads(letters.get("/api/schema/?format=json").content)
    resolution = schema["components"]["schemas"]["DeadLetter"]["properties"]["resolution"]
    rows = json.loads(letters.get("/api/v1/dlq/?ordering=created_at").content)["results"]
    assert [row["state"] for row in rows] == ["open", "resolved"]
    assert rows[0]["resolution"] is None and rows[1]["resolution"] == "discarded"
    assert resolution.get("nullable") is True or {"type": "null"} in resolution.get("oneOf", [])
    detail = json.loads(letters.get(f"/api/v1/dlq/{rows[0]['id']}/").content)
    assert detail["resolution"] is None


def test_the_real_week_still_answers_its_first_page(otc: OtcData, reader_client) -> None:
    body = json.loads(
        reader_client.get(
            "/api/v1/otc/symbols/",
            {"tier": "OTC", "ats": "true", "week": REAL_WEEK, "page": 1, "page_size": 500},
        ).content
    )
    assert body["count"] == 3111 and len(body["results"]) == 500


# Request bodies: JSON as typed, the size bounded, every path JSON ---------------------


@pytest.fixture
def submitter(settings: Any, test_pipeline: Any) -> APIClient:
    settings.EXECUTION_BACKEND = "stub"
    return token_client(
        make_user("submitter", "executions.add_execution", "executions.cancel_execution")
    )


@pytest.mark.parametrize(
    "body,field",
    [
        ({"pipeline": 5}, "pipeline"),
        ({"pipeline": "api_test.echo", "params": {"week": "2025-12-15"}, "lane": 1}, "lane"),
    ],
)
def test_submission_fields_take_json_as_typed(submitter: APIClient, body: dict, field: str) -> None:
    error = assert_error(
        submitter.post("/api/v1/executions/", body, format="json"), 400, "validation_error"
    )
    assert field in error["details"], error


def test_submission_params_take_json_as_typed(submitter: APIClient) -> None:
    from executions.models import Execution

    response = submitter.post(
        "/api/v1/executions/",
        {"pipeline": "api_test.echo", "params": {"week": 20251215, "tier": 1}},
        format="json",
    )
    error = assert_error(response, 400, "invalid_params")
    assert error["details"]["params"] == {
        "week": ["Must be a string."],
        "tier": ["Must be a string."],
    }
    assert not Execution.objects.exists()
    ok = submitter.post(
        "/api/v1/executions/",
        {"pipeline": "api_test.echo", "params": {"week": "2025-12-15"}},
        format="json",
    )
    assert ok.status_code == 202, ok.content


def test_action_bodies_take_json_as_typed(submitter: APIClient, letters: APIClient) -> None:
    from dlq.models import DeadLetter

    execution = json.loads(
        submitter.post(
            "/api/v1/executions/",
            {"pipeline": "api_test.echo", "params": {"week": "2025-12-15"}},
            format="json",
        ).content
    )
    cancel = submitter.post(
        f"/api/v1/executions/{execution['id']}/cancel/", {"reason": 0}, format="json"
    )
    assert "reason" in assert_error(cancel, 400, "validation_error")["details"]
    replayer = token_client(make_user("replayer", "dlq.replay_deadletter", "dlq.change_deadletter"))
    letter = DeadLetter.objects.filter(resolved_at__isnull=True).first()
    for path, body, field in [
        ("replay", {"force": "true"}, "force"),
        ("replay", {"note": 7}, "note"),
        ("resolve", {"note": ["x"]}, "note"),
    ]:
        response = replayer.post(f"/api/v1/dlq/{letter.pk}/{path}/", body, format="json")
        assert field in assert_error(response, 400, "validation_error")["details"], (path, body)
    assert DeadLetter.objects.get(pk=letter.pk).is_open


def test_a_body_over_the_limit_is_a_413(submitter: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = submitter.post("/api/v1/executions/", {"pipeline": "x" * 2000}, format="json")
    error = assert_error(response, 413, "request_too_large")
    assert error["details"] == {"max_bytes": 1000}


def test_any_unmatched_api_path_is_a_json_404(reader_client: APIClient) -> None:
    for path in ("/api/v1/dlq/%0A%C2%AA/", "/api/v1/nothing\n/", "/api/v1/otc/captures/x/"):
        assert_error(reader_client.get(path), 404, "not_found")


def test_the_submission_schema_has_one_shape_per_pipeline(
    reader_client: APIClient, test_pipeline: Any
) -> None:
    from executions.registry import registry

    schema = json.loads(reader_client.get("/api/schema/?format=json").content)
    body = schema["paths"]["/api/v1/executions/"]["post"]["requestBody"]
    assert body["required"] is True
    submit = schema["components"]["schemas"]["ExecutionSubmitRequest"]
    assert set(submit["discriminator"]["mapping"]) == set(registry.names())
    echo = schema["components"]["schemas"][
        submit["discriminator"]["mapping"]["api_test.echo"].split("/")[-1]
    ]
    assert sorted(echo["required"]) == ["params", "pipeline"]


def test_the_not_blank_pattern_is_what_drf_trims() -> None:
    """The schema's text pattern refuses exactly the strings DRF finds blank once
    stripped (``str.isspace``), so schema-valid text is never refused as blank."""
    import re

    from spine.api.fields import _SPACE, NOT_BLANK

    space = re.compile(f"[{_SPACE}]")
    assert [c for c in range(0x110000) if bool(space.fullmatch(chr(c))) != chr(c).isspace()] == []
    for text, valid in [("a", True), (" a ", True), ("\x1c\t", False), ("", False), ("a\0", False)]:
        assert bool(re.match(NOT_BLANK, text)) is valid, text
