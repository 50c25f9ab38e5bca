"""The dead-letter API: list and inspect failures; replay, resolve or discard them.

Views stay thin: reads come from :mod:`dlq.selectors`, every action goes through
:mod:`dlq.services` (the same functions the admin and the ``dlq`` command call), so
the API follows the same rules: a replay is a new execution created by the
Dispatcher, one replay per letter, the retry budget unless ``force``. A refusal is a
409 naming the reason.
"""

from __future__ import annotations

from typing import Any

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
    ReplayRefused,
    RetriesExhausted,
)
from dlq.filters import DeadLetterFilter
from dlq.models import DeadLetter
from dlq.serializers import (
    DeadLetterDetailSerializer,
    DeadLetterSerializer,
    DiscardSerializer,
    ReplaySerializer,
    ResolveSerializer,
)
from spine.api.errors import Conflict, SpineAPIError, maps_exception
from spine.api.schema import error_response
from spine.api.views import SpineGenericViewSet

NOT_FOUND = error_response("No dead letter with this id.")
CONFLICT = error_response(
    "The letter is already closed (`dead_letter_already_resolved`), over its retry budget "
    "(`dead_letter_retries_exhausted`, pass force) or cannot be replayed "
    "(`dead_letter_replay_refused`)."
)


def _details(exc: DeadLetterError) -> dict[str, Any]:
    return {"dead_letter_id": exc.dead_letter_id} if exc.dead_letter_id is not None else {}


@maps_exception(AlreadyResolved)
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
