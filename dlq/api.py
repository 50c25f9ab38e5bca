"""The dead-letter API: list and inspect failures; replay, resolve or discard them (docs/dlq.md)."""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from dlq import selectors, services
from dlq.errors import (
    AlreadyResolved,
    DeadLetterError,
    DeadLetterNotFound,
    NoteRequired,
    NothingToReplay,
    ParamsRejected,
    ReplayRefused,
    RetriesExhausted,
)
from dlq.filters import DeadLetterFilter, DeadLetterGroupFilter
from dlq.models import DeadLetter
from dlq.serializers import (
    BulkDiscardResultSerializer,
    BulkDiscardSerializer,
    BulkReplaySerializer,
    DeadLetterDetailSerializer,
    DeadLetterGroupSerializer,
    DeadLetterSerializer,
    DiscardSerializer,
    EditReplaySerializer,
    GroupDiscardSerializer,
    GroupReplaySerializer,
    ReplaySerializer,
    ResolveSerializer,
)
from executions.api import EXECUTION_LOCATION
from executions.models import TriggerSource
from executions.serializers import ExecutionDetailSerializer
from spine.api.errors import Conflict, SpineAPIError, maps_exception
from spine.api.schema import PAGE_PARAMETERS, error_response
from spine.api.views import SpineGenericViewSet

NOT_FOUND = error_response("No dead letter with this id.")
NOTHING_TO_REPLAY = error_response(
    "Every named letter is already closed (`dead_letter_nothing_to_replay`)."
)
SIGNATURE_PATTERN = "[0-9a-f]{16}"
CONFLICT = error_response(
    "The letter is already closed (`dead_letter_already_resolved`), over its retry budget "
    "(`dead_letter_retries_exhausted`, pass force) or cannot be replayed "
    "(`dead_letter_replay_refused`)."
)


def _details(exc: DeadLetterError) -> dict[str, Any]:
    return {"dead_letter_id": exc.dead_letter_id} if exc.dead_letter_id is not None else {}


@maps_exception(AlreadyResolved)
@maps_exception(NothingToReplay)
@maps_exception(RetriesExhausted)
@maps_exception(ReplayRefused)
def _conflict(exc: Exception) -> exceptions.APIException:
    assert isinstance(exc, DeadLetterError)
    return Conflict(str(exc), code=exc.code, details=_details(exc))


@maps_exception(NoteRequired)
@maps_exception(DeadLetterError)
def _bad_request(exc: Exception) -> exceptions.APIException:
    assert isinstance(exc, DeadLetterError)
    return SpineAPIError(str(exc), code=exc.code, details=_details(exc))


@maps_exception(ParamsRejected)
def _params_rejected(exc: Exception) -> exceptions.APIException:
    assert isinstance(exc, ParamsRejected)
    return SpineAPIError(str(exc), code=exc.code, details={**_details(exc), "params": exc.errors})


@maps_exception(DeadLetterNotFound)
def _not_found(exc: Exception) -> exceptions.APIException:
    assert isinstance(exc, DeadLetterError)
    return SpineAPIError(str(exc), code="not_found", details=_details(exc), status_code=404)


@extend_schema_view(
    list=extend_schema(
        summary="List dead letters",
        description="Newest first by default; filter by pipeline, failure kind, state "
        "(open/resolved), resolution, age or search; order with `ordering=`.",
        responses={
            200: DeadLetterSerializer(many=True),
            400: error_response("A filter value or sort field is invalid (details name it)."),
            404: error_response("The page is past the end."),
        },
    ),
    retrieve=extend_schema(
        summary="Get one dead letter, with its params and traceback",
        responses={200: DeadLetterDetailSerializer, 404: NOT_FOUND},
    ),
)
class DeadLetterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, SpineGenericViewSet):
    """Failed executions parked for retry and replay."""

    serializer_class = DeadLetterSerializer
    filterset_class = DeadLetterFilter
    ordering_fields = ["created_at", "next_retry_at", "resolved_at", "attempts", "pipeline"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = r"\d+"
    action_permissions = {
        # Tracebacks and params are operational detail: never public, even with public read.
        "list": ("dlq.view_deadletter",),
        "retrieve": ("dlq.view_deadletter",),
        "replay": ("dlq.replay_deadletter",),
        "resolve": ("dlq.change_deadletter",),
        "discard": ("dlq.change_deadletter",),
        "groups": ("dlq.view_deadletter",),
        "bulk_replay": ("dlq.replay_deadletter",),
        "bulk_discard": ("dlq.change_deadletter",),
        "group_replay": ("dlq.replay_deadletter",),
        "group_discard": ("dlq.change_deadletter",),
        "edit_and_replay": ("dlq.replay_deadletter",),
    }

    def get_queryset(self) -> Any:
        return selectors.dead_letter_list()

    def get_serializer_class(self) -> type:
        if self.action == "list":
            return DeadLetterSerializer
        return DeadLetterDetailSerializer

    def _detail(self, letter: DeadLetter, **kwargs: Any) -> Response:
        letter = selectors.get_dead_letter(letter.pk)
        body = DeadLetterDetailSerializer(letter, context=self.get_serializer_context()).data
        return Response(body, **kwargs)

    @extend_schema(
        operation_id="dead_letters_replay",
        summary="Replay a dead letter as a new execution",
        description="Creates a NEW execution through the Dispatcher (trigger `retry`, "
        "parent = the failed execution) and resolves the letter as replayed. Answers 202 "
        "with the letter (now linking `replay_execution`) and the new execution's URL in "
        "`Location`.",
        request=ReplaySerializer,
        parameters=[EXECUTION_LOCATION],
        responses={202: DeadLetterDetailSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], filter_backends=[], serializer_class=ReplaySerializer)
    def replay(self, request: Request, pk: str | None = None) -> Response:
        letter = self.get_object()
        form = ReplaySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        execution = services.retry(
            letter,
            by=request.user,
            force=form.validated_data["force"],
            note=form.validated_data["note"],
        )
        location = reverse("execution-detail", kwargs={"pk": execution.pk}, request=request)
        return self._detail(letter, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(
        operation_id="dead_letters_resolve",
        summary="Resolve a dead letter (handled by a person)",
        request=ResolveSerializer,
        responses={200: DeadLetterDetailSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], filter_backends=[], serializer_class=ResolveSerializer)
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        letter = self.get_object()
        form = ResolveSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.resolve(letter, by=request.user, note=form.validated_data["note"])
        return self._detail(letter)

    @extend_schema(
        operation_id="dead_letters_discard",
        summary="Discard a dead letter (close it without a replay)",
        request=DiscardSerializer,
        responses={200: DeadLetterDetailSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], filter_backends=[], serializer_class=DiscardSerializer)
    def discard(self, request: Request, pk: str | None = None) -> Response:
        letter = self.get_object()
        form = DiscardSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.discard(letter, by=request.user, note=form.validated_data["note"])
        return self._detail(letter)

    @extend_schema(
        operation_id="dead_letters_edit_and_replay",
        summary="Replay a dead letter with edited params",
        description="Validates `params` against the pipeline's params schema (400 "
        "`dead_letter_params_invalid`, details under `params`; nothing written), keeps "
        "the original params and the change (who, when, the diff per key) on the letter, "
        "then replays it as `replay/` does. 202 with the letter and the new execution's "
        "URL in `Location`.",
        request=EditReplaySerializer,
        parameters=[EXECUTION_LOCATION],
        responses={202: DeadLetterDetailSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="edit-and-replay",
        filter_backends=[],
        serializer_class=EditReplaySerializer,
    )
    def edit_and_replay(self, request: Request, pk: str | None = None) -> Response:
        letter = self.get_object()
        form = EditReplaySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        execution = services.edit_and_replay(
            letter,
            dict(form.validated_data["params"]),
            by=request.user,
            force=form.validated_data["force"],
        )
        location = reverse("execution-detail", kwargs={"pk": execution.pk}, request=request)
        return self._detail(letter, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(
        operation_id="dead_letters_groups",
        summary="Open dead letters grouped by error signature",
        description="One row per signature (pipeline, failure kind, exception class and "
        "normalised message): how many open letters, first and last seen, an example. "
        "Biggest group first. Replay a group with `POST /api/v1/dlq/replay/` "
        '`{"signature": ...}`.',
        parameters=PAGE_PARAMETERS,
        responses={200: DeadLetterGroupSerializer(many=True)},
    )
    @action(
        detail=False,
        methods=["get"],
        filter_backends=[DjangoFilterBackend],
        filterset_class=DeadLetterGroupFilter,
        serializer_class=DeadLetterGroupSerializer,
        pagination_class=SpineGenericViewSet.pagination_class,
    )
    def groups(self, request: Request) -> Response:
        filtered = self.filter_queryset(DeadLetter.objects.all())
        page = self.paginate_queryset(selectors.dead_letter_groups(filtered))
        rows = list(page if page is not None else [])
        examples = selectors.group_examples(row["example_id"] for row in rows)
        context = {**self.get_serializer_context(), "examples": examples}
        return self.get_paginated_response(
            DeadLetterGroupSerializer(rows, many=True, context=context).data
        )

    def _batch_response(
        self, request: Request, letters: list[DeadLetter], **kwargs: Any
    ) -> Response:
        execution = services.submit_replay_batch(
            letters, by=request.user, trigger_source=TriggerSource.API, **kwargs
        )
        body = ExecutionDetailSerializer(execution, context=self.get_serializer_context()).data
        location = reverse("execution-detail", kwargs={"pk": execution.pk}, request=request)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(
        operation_id="dead_letters_bulk_replay",
        summary="Replay many dead letters at the rate cap",
        description="Dispatches one `dlq.replay_batch` execution that replays the letters "
        "`ids`, in that order, at most `SPINE_REPLAY_RATE` a minute; closed letters are "
        "left out. 202 with the batch execution and its URL in `Location`: its events "
        "and result say, letter by letter, what each replay became. An unknown id: 404, "
        "nothing dispatched.",
        request=BulkReplaySerializer,
        parameters=[EXECUTION_LOCATION],
        responses={
            202: ExecutionDetailSerializer,
            404: error_response("A named dead letter does not exist (nothing dispatched)."),
            409: NOTHING_TO_REPLAY,
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="replay",
        filter_backends=[],
        serializer_class=BulkReplaySerializer,
    )
    def bulk_replay(self, request: Request) -> Response:
        form = BulkReplaySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        letters = selectors.select_letters(ids=form.validated_data["ids"])
        return self._batch_response(request, letters, force=form.validated_data["force"])

    @extend_schema(
        operation_id="dead_letters_group_replay",
        summary="Replay a group's open dead letters at the rate cap",
        description="As `POST /api/v1/dlq/replay/` for the group's open letters, oldest "
        "first. 404 when no open letter has this signature.",
        request=GroupReplaySerializer,
        parameters=[EXECUTION_LOCATION],
        responses={
            202: ExecutionDetailSerializer,
            404: error_response("No open dead letter has this signature."),
            409: NOTHING_TO_REPLAY,
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path=rf"groups/(?P<signature>{SIGNATURE_PATTERN})/replay",
        filter_backends=[],
        serializer_class=GroupReplaySerializer,
    )
    def group_replay(self, request: Request, signature: str) -> Response:
        form = GroupReplaySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        letters = selectors.select_letters(signature=signature)
        return self._batch_response(
            request, letters, force=form.validated_data["force"], signature=signature
        )

    @extend_schema(
        operation_id="dead_letters_bulk_discard",
        summary="Discard many dead letters with a reason",
        description="Closes the open letters `ids` without replaying them; the `reason` "
        "is required and kept on each. Letters already closed are listed under "
        "`skipped`. An unknown id: 404, nothing written.",
        request=BulkDiscardSerializer,
        responses={
            200: BulkDiscardResultSerializer,
            404: error_response("A named dead letter does not exist (nothing written)."),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="discard",
        filter_backends=[],
        serializer_class=BulkDiscardSerializer,
    )
    def bulk_discard(self, request: Request) -> Response:
        form = BulkDiscardSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        letters = selectors.select_letters(ids=form.validated_data["ids"])
        result = services.discard_letters(
            letters, by=request.user, reason=form.validated_data["reason"]
        )
        return Response(BulkDiscardResultSerializer(result).data)

    @extend_schema(
        operation_id="dead_letters_group_discard",
        summary="Discard a group's open dead letters with a reason",
        request=GroupDiscardSerializer,
        responses={
            200: BulkDiscardResultSerializer,
            404: error_response("No open dead letter has this signature."),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path=rf"groups/(?P<signature>{SIGNATURE_PATTERN})/discard",
        filter_backends=[],
        serializer_class=GroupDiscardSerializer,
    )
    def group_discard(self, request: Request, signature: str) -> Response:
        form = GroupDiscardSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        letters = selectors.select_letters(signature=signature)
        result = services.discard_letters(
            letters, by=request.user, reason=form.validated_data["reason"]
        )
        return Response(BulkDiscardResultSerializer(result).data)
