"""The executions API: list, submit, inspect, follow events, cancel; and the registry."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiTypes,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from executions import dispatcher, selectors
from executions.dispatcher import dispatch
from executions.filters import ExecutionFilter
from executions.models import Execution, TriggerSource
from executions.registry import UnknownPipeline, registry
from executions.serializers import (
    ExecutionCancelSerializer,
    ExecutionDetailSerializer,
    ExecutionEventSerializer,
    ExecutionSerializer,
    ExecutionSubmitSerializer,
    PipelineSerializer,
    SubmitShapes,
)
from executions.services import IllegalTransition
from spine.api.errors import Conflict
from spine.api.schema import PAGE_PARAMETERS, error_response
from spine.api.views import SpineGenericViewSet
from spine.context import get_request_id

UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
NOT_FOUND = error_response("No execution with this id.")
VIEW = "executions.view_execution"


#: The ``Location`` header of a 202 that answers with a new execution.
EXECUTION_LOCATION = OpenApiParameter(
    "Location",
    OpenApiTypes.URI,
    OpenApiParameter.HEADER,
    response=[202],
    description="URL of the new execution.",
)


@extend_schema_view(
    list=extend_schema(
        summary="List executions",
        description="Newest first by default; filter, order (`ordering=`) and paginate.",
        responses={
            200: ExecutionSerializer(many=True),
            400: error_response("A filter value or sort field is invalid (details name it)."),
            404: error_response("The page is past the end."),
        },
    ),
    retrieve=extend_schema(
        summary="Get one execution",
        responses={200: ExecutionDetailSerializer, 404: NOT_FOUND},
    ),
)
class ExecutionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, SpineGenericViewSet
):
    """Tracked executions: the ledger API clients submit to and watch."""

    serializer_class = ExecutionSerializer
    filterset_class = ExecutionFilter
    ordering_fields = ["created_at", "started_at", "finished_at", "status", "pipeline", "lane"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = UUID_PATTERN
    # Params, results and errors can say more than an analyst should see: every read
    # needs view_execution too, public read or not.
    action_permissions = {
        "list": (VIEW,),
        "retrieve": (VIEW,),
        "events": (VIEW,),
        "create": ("executions.add_execution",),
        "cancel": ("executions.cancel_execution",),
    }

    def get_queryset(self) -> Any:
        return selectors.execution_list()

    def get_serializer_class(self) -> type:
        if self.action == "retrieve":
            return ExecutionDetailSerializer
        return ExecutionSerializer

    @extend_schema(
        summary="Submit an execution",
        description=(
            "Validates the pipeline and its params against the registry, records the "
            "execution and queues it (after the commit). Answers 202 with the execution "
            "and its URL in `Location`; poll it or its events to follow the run."
        ),
        request=SubmitShapes(),
        parameters=[EXECUTION_LOCATION],
        responses={
            202: ExecutionDetailSerializer,
            400: error_response(
                "Invalid body, unknown pipeline (`unknown_pipeline`) or bad params "
                "(`invalid_params`, details under `params`)."
            ),
            403: error_response(
                "Not allowed to start executions, or this pipeline needs a permission of "
                "its own (its `launch_permission`, e.g. replaying dead letters)."
            ),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        submit = ExecutionSubmitSerializer(data=request.data)
        submit.is_valid(raise_exception=True)
        data = submit.validated_data
        params = data["params"]
        if data["pipeline"] in registry:
            wanted = registry.get(data["pipeline"])
            if not wanted.may_launch(request.user):
                raise PermissionDenied(
                    f"starting {wanted.name} needs the {wanted.launch_permission} permission"
                )
            if wanted.actor_param is not None:
                wanted.validate(params)  # what was sent is checked before the name is set
                params = wanted.launched_by(request.user, params)
        execution = dispatch(
            data["pipeline"],
            params,
            trigger_source=TriggerSource.API,
            request_id=get_request_id(),
            lane=data.get("lane"),
        )
        body = ExecutionDetailSerializer(execution, context=self.get_serializer_context()).data
        location = reverse("execution-detail", kwargs={"pk": execution.pk}, request=request)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(
        summary="An execution's event history",
        description="Every transition and note, oldest first.",
        responses={200: ExecutionEventSerializer(many=True), 404: NOT_FOUND},
        parameters=PAGE_PARAMETERS,
    )
    @action(
        detail=True, methods=["get"], filter_backends=[], serializer_class=ExecutionEventSerializer
    )
    def events(self, request: Request, pk: str | None = None) -> Response:
        execution = self.get_object()
        page = self.paginate_queryset(selectors.execution_events(execution))
        serializer = ExecutionEventSerializer(page, many=True)
        return self.get_paginated_response(serializer.data)

    @extend_schema(
        operation_id="executions_cancel",
        summary="Cancel an execution",
        description=(
            "Cancels a pending, queued or running execution. An execution that already "
            "ended cannot be cancelled: 409 with code `not_cancellable`."
        ),
        request=ExecutionCancelSerializer,
        responses={
            200: ExecutionDetailSerializer,
            404: NOT_FOUND,
            409: error_response("The execution already ended."),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        filter_backends=[],
        serializer_class=ExecutionCancelSerializer,
    )
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        execution = self.get_object()
        form = ExecutionCancelSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if execution.is_terminal:
            raise _not_cancellable(execution)
        try:
            execution = dispatcher.cancel(
                execution, by=request.user.get_username(), reason=form.validated_data["reason"]
            )
        except IllegalTransition as exc:  # it ended between the read and the cancel
            execution.refresh_from_db()
            raise _not_cancellable(execution) from exc
        context = self.get_serializer_context()
        return Response(ExecutionDetailSerializer(execution, context=context).data)


def _not_cancellable(execution: Execution) -> Conflict:
    return Conflict(
        f"Execution {execution.pk} is {execution.status} and can no longer be cancelled; "
        "only pending, queued or running executions can.",
        code="not_cancellable",
        details={"status": execution.status},
    )


@extend_schema_view(
    list=extend_schema(summary="List registered pipelines"),
    retrieve=extend_schema(
        summary="Get one pipeline",
        responses={200: PipelineSerializer, 404: error_response("No pipeline of this name.")},
    ),
)
class PipelineViewSet(mixins.ListModelMixin, SpineGenericViewSet):
    """The registry: what can run, with which params, on which lane, for how long."""

    serializer_class = PipelineSerializer
    filter_backends: list = []
    action_permissions = {"list": (VIEW,), "retrieve": (VIEW,)}
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"

    def get_queryset(self) -> Any:
        return selectors.pipeline_list()

    def retrieve(self, request: Request, name: str | None = None) -> Response:
        try:
            pipeline = selectors.pipeline_get(name or "")
        except UnknownPipeline as exc:
            raise NotFound(str(exc)) from None
        return Response(PipelineSerializer(pipeline).data)
