"""``POST /api/v1/otc/files/``: upload a FINRA weekly file and run it (multipart)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from executions.api import EXECUTION_LOCATION
from executions.models import TriggerSource
from executions.serializers import ExecutionDetailSerializer
from otc.inbox import UploadTooLarge
from otc.params import ATS_REQUIRED, TierField, WeekField
from otc.services.intake import INTAKE_PIPELINES, submit_file
from otc.uploads import upload_too_large
from spine.api.errors import SpineAPIError
from spine.api.schema import error_response
from spine.api.views import SpineGenericViewSet
from spine.context import get_request_id

#: Room for the multipart envelope around the file when the declared length is checked.
_ENVELOPE_BYTES = 1 << 20


class RequiredBooleanField(serializers.BooleanField):
    """A boolean a form must send: an absent or empty field is an error, not false."""

    default_empty_html = serializers.empty

    def to_internal_value(self, data: Any) -> bool:
        if data == "":
            self.fail("required")
        return super().to_internal_value(data)


class FileUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=False, help_text="The FINRA weekly download file (pipe-delimited)."
    )
    tier = TierField(help_text="T1, T2 or OTC (OTCE accepted).")
    week = WeekField(help_text="Any date in the reporting week; stored as its Monday.")
    ats = RequiredBooleanField(
        help_text="Required: true if the file is FINRA's ATS summary, false if it is the "
        "non-ATS (OTC) summary. Nothing in a file's columns says which.",
        error_messages={"required": ATS_REQUIRED, "null": ATS_REQUIRED},
    )
    pipeline = serializers.ChoiceField(
        choices=INTAKE_PIPELINES,
        default="otc.full_etl",
        help_text="otc.full_etl (default: ingest, normalize, compute) or otc.ingest_file.",
    )


class PayloadTooLarge(SpineAPIError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def _too_large() -> PayloadTooLarge:
    limit = settings.SPINE_UPLOAD_MAX_BYTES
    return PayloadTooLarge(
        f"The file is larger than the upload limit of {limit:,} bytes (SPINE_UPLOAD_MAX_BYTES).",
        details={"max_bytes": limit},
    )


class OtcFileViewSet(mixins.CreateModelMixin, SpineGenericViewSet):
    """Upload a FINRA file: it lands in the inbox and its run is queued."""

    serializer_class = FileUploadSerializer
    parser_classes = [MultiPartParser, FormParser]
    filter_backends: list = []
    pagination_class = None
    action_permissions = {"create": ("executions.add_execution",)}

    @extend_schema(
        operation_id="otc_files_upload",
        summary="Upload a FINRA weekly file",
        description=(
            "Multipart form: `file`, `tier`, `week`, `ats` (required) and optionally "
            "`pipeline`. The file is stored in the inbox under a unique name and the "
            "pipeline dispatched for it; answers 202 with the execution, as "
            "`POST /api/v1/executions/` does. Files over `SPINE_UPLOAD_MAX_BYTES` are "
            "refused with 413 and nothing is kept."
        ),
        request={"multipart/form-data": FileUploadSerializer},
        parameters=[EXECUTION_LOCATION],
        responses={
            202: ExecutionDetailSerializer,
            400: error_response(
                "A form field is missing or invalid (details name it), or the params were "
                "refused (`invalid_params`)."
            ),
            413: error_response("The file is larger than SPINE_UPLOAD_MAX_BYTES."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.SPINE_UPLOAD_MAX_BYTES + _ENVELOPE_BYTES:
            raise _too_large()
        form = FileUploadSerializer(data=request.data)
        if upload_too_large(request):
            raise _too_large()
        form.is_valid(raise_exception=True)
        data = form.validated_data
        upload = data["file"]
        try:
            execution = submit_file(
                upload.chunks(),
                upload.name or "upload.psv",
                tier=data["tier"],
                week=data["week"].isoformat(),
                ats=data["ats"],
                pipeline=data["pipeline"],
                trigger_source=TriggerSource.API,
                request_id=get_request_id(),
            )
        except UploadTooLarge:
            raise _too_large() from None
        body = ExecutionDetailSerializer(execution, context=self.get_serializer_context()).data
        location = reverse("execution-detail", kwargs={"pk": execution.pk}, request=request)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})
