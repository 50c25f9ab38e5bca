"""The OTC analytics API (read-only): weeks held, symbols, venues, quality, lineage."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import F, Q, QuerySet
from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from otc import selectors
from otc.api_lines import CaptureLinesSerializer, LinesQuery, render_lines
from otc.filters import CaptureFilter
from otc.models import Capture, SymbolWeekSummary, VenueMarketShare
from otc.pagination import OneQueryPagination, PageSource
from otc.selectors import ranges
from otc.selectors.lines import capture_lines
from otc.serializers import (
    CaptureDetailSerializer,
    CaptureSerializer,
    InventoryQuery,
    QualityQuery,
    QualityReportSerializer,
    RangeQuery,
    RejectSerializer,
    RollingSerializer,
    SeriesRangeQuery,
    SymbolListQuery,
    SymbolSummarySerializer,
    SymbolVenueShareRowSerializer,
    SymbolVenuesSerializer,
    VenueMarketShareRowSerializer,
    VenueShareSerializer,
    WeekHeldSerializer,
    WeekQuery,
)
from spine.api.csv import CSVListMixin
from spine.api.errors import SpineAPIError
from spine.api.filters import StrictOrderingFilter
from spine.api.schema import PAGE_PARAMETERS, error_response
from spine.api.views import SpineGenericViewSet, SpineReadOnlyViewSet
from spine.text import quote, shorten

#: The columns list rows are rendered from: rows come as dicts, since building model
#: instances costs more than the rest of rendering them.
SYMBOL_ROW = [*(f for f in SymbolSummarySerializer.Meta.fields if f != "capture"), "capture_id"]
VENUE_ROW = [*(f for f in VenueShareSerializer._declared_fields if f != "capture"), "capture_id"]
#: Longest symbol or MPID looked up; anything longer cannot be one.
_MAX_KEY = 32
BAD_QUERY = error_response("A query parameter is invalid (details name it).")
LIST_ERRORS = {
    400: error_response("A query parameter or sort field is invalid (details name it)."),
    404: error_response("The page is past the end, or no week is held yet."),
}
PAGE_PARAMS = PAGE_PARAMETERS


class SortFilter(StrictOrderingFilter):
    """Strict ordering read from ``?sort=`` (the venue list's documented parameter)."""

    ordering_param = "sort"


def _query(request: Request, form_class: type[serializers.Serializer]) -> dict[str, Any]:
    """The validated query string; a bad value is a 400 naming the parameter."""
    form = form_class(data=request.query_params.dict())
    form.is_valid(raise_exception=True)
    return dict(form.validated_data)


def _key(value: str | None, kind: str) -> str:
    """A symbol or MPID from the path, normalized as stored; one that cannot exist is 404."""
    key = (value or "").strip().upper()
    if not key or len(key) > _MAX_KEY or "\x00" in key:
        raise _not_found(f"No {kind} {quote(value)}.", {kind: shorten(value or "")})
    return key


def _not_found(message: str, details: dict[str, Any]) -> SpineAPIError:
    return SpineAPIError(message, code="not_found", details=details, status_code=404)


def _key_params(params: dict[str, Any]) -> dict[str, Any]:
    return {"tier": params.get("tier"), "ats": params.get("ats"), "as_of": params.get("as_of")}


def _week(params: dict[str, Any], *, symbol: str | None = None) -> date:
    """The requested week, or the latest one held (for the symbol, if given)."""
    week = params.get("week")
    if week is not None:
        return week
    week = selectors.latest_week(symbol=symbol, **_key_params(params))
    if week is None:
        if symbol is not None:
            raise _unknown_symbol(symbol)
        raise _not_found("No week is held for these parameters.", _plain(params))
    return week


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {name: str(value) for name, value in params.items() if value is not None}


def _unknown_symbol(symbol: str) -> SpineAPIError:
    return _not_found(f"No data for symbol {symbol}.", {"symbol": symbol})


def _known_symbol(symbol: str, params: dict[str, Any]) -> None:
    """404 unless the symbol has data at ``as_of`` (any tier, week or ATS flag)."""
    if not selectors.symbol_summaries(symbol=symbol, as_of=params.get("as_of")).exists():
        raise _unknown_symbol(symbol)


def _known_venue(mpid: str) -> None:
    if not selectors.venues(mpid=mpid).exists():
        raise _not_found(f"No venue {mpid}.", {"mpid": mpid})


def _one_tier(rows: list[Any], symbol: str, week: date) -> None:
    """A single-week answer needs one tier; a symbol held in two must be asked by tier."""
    tiers = sorted({row["tier"] if isinstance(row, dict) else row.tier for row in rows})
    if len(tiers) > 1:
        raise exceptions.ValidationError(
            {"tier": [f"{symbol} has data in {', '.join(tiers)} for week {week}: pass tier."]}
        )


def _stable(queryset: QuerySet, *tiebreak: str) -> QuerySet:
    """The requested order plus unique tie-breakers, so pages never overlap."""
    return queryset.order_by(*_with_tiebreak(list(queryset.query.order_by), tiebreak))


def _with_tiebreak(ordering: list[Any], tiebreak: tuple[str, ...]) -> list[Any]:
    named = {str(term).lstrip("-") for term in ordering}
    return [*ordering, *(name for name in tiebreak if name not in named)]


class WeekListMixin:
    """A week's list from a precompiled page selector when the request allows (one
    tier, now, nothing but ordering and paging): the same rows, in the same order,
    as the queryset path, without building and compiling a queryset per request."""

    query_class: type[serializers.Serializer]
    tiebreak: tuple[str, ...]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        source = self.week_page_source(request)
        if source is None:
            return super().list(request, *args, **kwargs)  # type: ignore[misc]
        page = self.paginate_queryset(source)  # type: ignore[attr-defined]
        serializer = self.get_serializer(page, many=True)  # type: ignore[attr-defined]
        return self.get_paginated_response(serializer.data)  # type: ignore[attr-defined]

    def week_page_source(self, request: Request) -> PageSource | None:
        params = _query(request, self.query_class)
        if (
            params.get("tier") is None
            or params.get("as_of") is not None
            or params.get("search", "").strip()
        ):
            return None
        week = _week(params)
        backend = self.filter_backends[0]()  # type: ignore[attr-defined]
        order = _with_tiebreak(
            list(backend.get_ordering(request, self.queryset, self)),  # type: ignore[attr-defined]
            self.tiebreak,
        )
        key = {"tier": params["tier"], "week": week, "ats": params["ats"]}
        page, count = self.page_selectors()
        return PageSource(
            lambda offset, limit: page(order=order, offset=offset, limit=limit, **key),
            lambda: count(**key),
        )

    def page_selectors(self) -> tuple[Any, Any]:
        raise NotImplementedError


@extend_schema_view(
    list=extend_schema(
        summary="Weeks held",
        description="Every (week, tier, ATS flag) with a current capture at `as_of`, newest "
        "week first, with the capture answering for it and its quality grade then.",
        parameters=[InventoryQuery],
        responses={200: WeekHeldSerializer(many=True), **LIST_ERRORS},
    )
)
class OtcWeekViewSet(CSVListMixin, mixins.ListModelMixin, SpineGenericViewSet):
    """The weeks Market Spine holds, per tier."""

    pagination_class = OneQueryPagination
    serializer_class = WeekHeldSerializer
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Capture]:
        params = _query(self.request, InventoryQuery)
        return selectors.weeks_held(**_key_params(params)).order_by("-week", "tier", "ats")


@extend_schema_view(
    list=extend_schema(
        summary="Symbol summaries for a week",
        description="Per symbol: total volume and trades, venue count, average trade size, "
        "top venue and its share (%), HHI (0–10,000) and its level. Most volume first; "
        "order with `ordering=` over the listed fields.",
        parameters=[SymbolListQuery],
        responses={200: SymbolSummarySerializer(many=True), **LIST_ERRORS},
    )
)
class OtcSymbolViewSet(CSVListMixin, WeekListMixin, mixins.ListModelMixin, SpineGenericViewSet):
    """Symbols: a week's summaries, and one symbol's weeks, venues and rolling window."""

    csv_actions = ("list", "weekly", "venue_shares")

    query_class = SymbolListQuery
    tiebreak = ("tier", "symbol")

    pagination_class = OneQueryPagination
    queryset = SymbolWeekSummary.objects.none()  # the model, for the schema's path types
    serializer_class = SymbolSummarySerializer
    filter_backends = [StrictOrderingFilter]
    ordering_fields = [
        "symbol",
        "total_volume",
        "total_trades",
        "venue_count",
        "avg_trade_size",
        "top_venue_share",
        "hhi",
    ]
    ordering = ["-total_volume", "symbol"]
    lookup_field = "symbol"
    lookup_value_regex = r"[^/]+"

    def get_queryset(self) -> QuerySet[SymbolWeekSummary]:
        params = _query(self.request, SymbolListQuery)
        queryset = selectors.week_symbol_summaries(
            week=_week(params), **_key_params(params)
        ).values(*SYMBOL_ROW)
        search = params.get("search", "").strip()
        if search:
            queryset = queryset.filter(
                Q(symbol__startswith=search.upper()) | Q(issue_name__icontains=search)
            )
        return queryset

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return _stable(super().filter_queryset(queryset), *self.tiebreak)

    def page_selectors(self) -> tuple[Any, Any]:
        return selectors.week_symbol_page, selectors.week_symbol_count

    @extend_schema(
        summary="One symbol over a range of weeks",
        description="The symbol's weekly summaries from `from` to `to` (inclusive), oldest "
        "first. A known symbol with no data in the range answers an empty list.",
        parameters=[RangeQuery, *PAGE_PARAMS],
        responses={
            200: SymbolSummarySerializer(many=True),
            400: BAD_QUERY,
            404: error_response("Unknown symbol, or the page is past the end."),
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def weekly(self, request: Request, symbol: str | None = None) -> HttpResponseBase:
        key = _key(symbol, "symbol")
        params = _query(request, RangeQuery)
        queryset = (
            selectors.symbol_summaries(
                symbol=key,
                week_from=params.get("week_from"),
                week_to=params.get("week_to"),
                **_key_params(params),
            )
            .values(*SYMBOL_ROW)
            .order_by("week", "tier")
        )
        return self.list_response(
            queryset, SymbolSummarySerializer, if_empty=lambda: _known_symbol(key, params)
        )

    @extend_schema(
        summary="A symbol's venue shares over a range of weeks",
        description="Per week and venue, in one call: the venue's shares and trades of the "
        "symbol, its share (%) of the symbol's volume and its rank, weeks oldest first. "
        "`ats=true` / `false` is one summary; `ats=all` gives the ATS and the non-ATS "
        "series side by side and a third labelled `combined (ATS + non-ATS)`. "
        "`start` and `end` are required, at most five years apart.",
        parameters=[SeriesRangeQuery, *PAGE_PARAMS],
        responses={
            200: SymbolVenueShareRowSerializer(many=True),
            400: BAD_QUERY,
            404: error_response("Unknown symbol, or the page is past the end."),
        },
    )
    @action(detail=True, methods=["get"], url_path="venue-shares", filter_backends=[])
    def venue_shares(self, request: Request, symbol: str | None = None) -> HttpResponseBase:
        key = _key(symbol, "symbol")
        params = _query(request, SeriesRangeQuery)
        rows = ranges.symbol_venue_share_range(
            symbol=key,
            start=params["start"],
            end=params["end"],
            tier=params.get("tier"),
            ats=params["ats"],
            as_of=params.get("as_of"),
        )
        return self.list_response(
            rows, SymbolVenueShareRowSerializer, if_empty=lambda: _known_symbol(key, params)
        )

    @extend_schema(
        summary="A symbol's venue breakdown for a week",
        description="Each venue's volume, trades and share (%) of the symbol's week, most "
        "volume first; the shares sum to 100 up to 4-place rounding.",
        parameters=[WeekQuery],
        responses={
            200: SymbolVenuesSerializer,
            400: error_response(
                "A query parameter is invalid, or the symbol is in several "
                "tiers that week and `tier` was not given."
            ),
            404: error_response("Unknown symbol, or no data for it that week."),
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def venues(self, request: Request, symbol: str | None = None) -> Response:
        key = _key(symbol, "symbol")
        params = _query(request, WeekQuery)
        week = _week(params, symbol=key)
        rows = selectors.symbol_venues(symbol=key, week=week, **_key_params(params))
        if not rows:
            raise self._no_week(key, week, params)
        _one_tier(rows, key, week)
        first = rows[0]
        body = {
            **{name: first[name] for name in ("symbol", "issue_name", "week", "tier", "ats")},
            "capture": first["capture_id"],
            "total_volume": sum(row["share_volume"] for row in rows),
            "total_trades": sum(row["trade_count"] for row in rows),
            "venue_count": len(rows),
            "venues": rows,
        }
        return Response(SymbolVenuesSerializer(body).data)

    @extend_schema(
        summary="A symbol's six-week rolling window",
        description="Averages over the six weeks ending at `week` (over the weeks with "
        "volume) and the week's trend against the earlier weeks (±10%).",
        parameters=[WeekQuery],
        responses={
            200: RollingSerializer,
            400: error_response(
                "A query parameter is invalid, or the symbol is in several "
                "tiers that week and `tier` was not given."
            ),
            404: error_response("Unknown symbol, or no rolling window for it that week."),
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def rolling(self, request: Request, symbol: str | None = None) -> Response:
        key = _key(symbol, "symbol")
        params = _query(request, WeekQuery)
        week = _week(params, symbol=key)
        rows = list(
            selectors.symbol_rolling(symbol=key, week=week, **_key_params(params)).order_by("tier")[
                :2
            ]
        )
        if not rows:
            raise self._no_week(key, week, params)
        _one_tier(rows, key, week)
        return Response(RollingSerializer(rows[0]).data)

    def _no_week(self, symbol: str, week: date, params: dict[str, Any]) -> SpineAPIError:
        if not selectors.symbol_summaries(symbol=symbol, as_of=params.get("as_of")).exists():
            return _unknown_symbol(symbol)
        return _not_found(
            f"No data for {symbol} in week {week} with these parameters.",
            {"symbol": symbol, **_plain({**params, "week": week})},
        )


@extend_schema_view(
    list=extend_schema(
        summary="Venues for a week",
        description="Per venue and tier: volume, trades, symbol count, market share (%) of "
        "the tier's week, rank and six-week trend. Ranked first by default; `sort=` by "
        "volume, share, symbol_count or rank (prefix '-' for descending; any other field "
        "is a 400 naming the allowed ones).",
        parameters=[WeekQuery],
        responses={200: VenueShareSerializer(many=True), **LIST_ERRORS},
    ),
    retrieve=extend_schema(
        operation_id="otc_venues_history",
        filters=False,
        summary="One venue's history",
        description="The venue's weeks from `from` to `to` (inclusive), oldest first, one "
        "row per week and tier. A known venue with no data in the range answers an empty "
        "list.",
        parameters=[RangeQuery, *PAGE_PARAMS],
        responses={
            200: VenueShareSerializer(many=True),
            400: BAD_QUERY,
            404: error_response("Unknown venue, or the page is past the end."),
        },
    ),
)
class OtcVenueViewSet(CSVListMixin, WeekListMixin, mixins.ListModelMixin, SpineGenericViewSet):
    """Venues (MPIDs): a week's market shares, and one venue's history."""

    csv_actions = ("list", "retrieve", "market_share")

    query_class = WeekQuery
    tiebreak = ("tier", "mpid")

    pagination_class = OneQueryPagination
    queryset = VenueMarketShare.objects.none()  # the model, for the schema's path types
    serializer_class = VenueShareSerializer
    filter_backends = [SortFilter]
    # Sort names are the issue's contract; they are annotated onto the rows below.
    ordering_fields = ["volume", "share", "symbol_count", "rank", "mpid"]
    ordering = ["rank", "mpid"]
    lookup_field = "mpid"
    lookup_value_regex = r"[^/]+"

    def get_queryset(self) -> QuerySet[VenueMarketShare]:
        params = _query(self.request, WeekQuery)
        return (
            selectors.venue_shares_with_rolling(week=_week(params), **_key_params(params))
            .annotate(volume=F("total_volume"), share=F("market_share"))
            .values(*VENUE_ROW)
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return _stable(super().filter_queryset(queryset), *self.tiebreak)

    def page_selectors(self) -> tuple[Any, Any]:
        return selectors.week_venue_page, selectors.week_venue_count

    @extend_schema(
        summary="A venue's market share over a range of weeks",
        description="Per week and tier, in one call: the venue's volume, trades, symbols, "
        "every venue's volume (tier_volume), its market share (%) and rank, weeks oldest "
        "first. `ats=true` / `false` is one summary; `ats=all` gives the ATS and the "
        "non-ATS series side by side and a third labelled `combined (ATS + non-ATS)`. "
        "`start` and `end` are required, at most five years apart.",
        parameters=[SeriesRangeQuery, *PAGE_PARAMS],
        responses={
            200: VenueMarketShareRowSerializer(many=True),
            400: BAD_QUERY,
            404: error_response("Unknown venue, or the page is past the end."),
        },
    )
    @action(detail=True, methods=["get"], url_path="market-share", filter_backends=[])
    def market_share(self, request: Request, mpid: str | None = None) -> HttpResponseBase:
        key = _key(mpid, "mpid")
        params = _query(request, SeriesRangeQuery)
        rows = ranges.venue_market_share_range(
            mpid=key,
            start=params["start"],
            end=params["end"],
            tier=params.get("tier"),
            ats=params["ats"],
            as_of=params.get("as_of"),
        )
        return self.list_response(
            rows, VenueMarketShareRowSerializer, if_empty=lambda: _known_venue(key)
        )

    def retrieve(self, request: Request, mpid: str | None = None) -> HttpResponseBase:
        key = _key(mpid, "mpid")
        params = _query(request, RangeQuery)
        queryset = (
            selectors.venue_shares_with_rolling(
                mpid=key,
                week_from=params.get("week_from"),
                week_to=params.get("week_to"),
                **_key_params(params),
            )
            .values(*VENUE_ROW)
            .order_by("week", "tier")
        )
        return self.list_response(
            queryset, VenueShareSerializer, if_empty=lambda: _known_venue(key)
        )


@extend_schema_view(
    list=extend_schema(
        summary="Quality reports",
        description="The quality gate's report (grade A–F, metrics, warnings, failures) of "
        "each capture current at `as_of`, newest week first; `week` and `tier` narrow it "
        "to one report.",
        parameters=[QualityQuery],
        responses={200: QualityReportSerializer(many=True), **LIST_ERRORS},
    )
)
class OtcQualityViewSet(CSVListMixin, mixins.ListModelMixin, SpineGenericViewSet):
    """Data quality per capture, as graded when it was computed."""

    pagination_class = OneQueryPagination
    serializer_class = QualityReportSerializer
    filter_backends: list = []

    def get_queryset(self) -> QuerySet:
        params = _query(self.request, QualityQuery)
        return selectors.quality_reports(
            week=params.get("week"), grade=params.get("grade"), **_key_params(params)
        ).order_by("-week", "tier", "ats")


@extend_schema_view(
    list=extend_schema(
        summary="List captures (lineage)",
        description="Every capture ingested, newest first: source, checksum, rows, rejects, "
        "its state (staged, current, superseded, failed or rejected, with why) and what "
        "superseded it. Filter by tier, week, ATS flag, current, state, as_of.",
        responses={200: CaptureSerializer(many=True), **LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get one capture",
        responses={200: CaptureDetailSerializer, 404: error_response("No capture with this id.")},
    ),
)
class OtcCaptureViewSet(CSVListMixin, SpineReadOnlyViewSet):
    """Captures: each ingest of FINRA data with its lineage."""

    csv_actions = ("list", "rejects")

    pagination_class = OneQueryPagination
    serializer_class = CaptureSerializer
    filterset_class = CaptureFilter
    ordering_fields = ["ingested_at", "week", "tier", "id"]
    ordering = ["-ingested_at", "-id"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Capture]:
        queryset = selectors.captures()
        if self.action == "retrieve":
            queryset = selectors.with_latest_report(queryset).prefetch_related(
                "superseded_captures"
            )
        return queryset

    def get_serializer_class(self) -> type:
        return CaptureDetailSerializer if self.action == "retrieve" else CaptureSerializer

    @extend_schema(
        summary="A capture's rejected rows",
        description="Every refused data line as received, with its reason, in file order.",
        parameters=PAGE_PARAMS,
        responses={200: RejectSerializer(many=True), 404: error_response("No capture.")},
    )
    @action(detail=True, methods=["get"], filter_backends=[], serializer_class=RejectSerializer)
    def rejects(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        capture = self.get_object()
        return self.list_response(selectors.rejects(capture.pk), RejectSerializer)

    @extend_schema(
        summary="A capture's raw lines",
        description="Lines of the file as received, from the raw archive (the whole "
        "object is verified against the capture's checksum first). Line numbers are the "
        "file's: the header is line 1. `text` is the line without its line ending (LF or "
        "CR LF), decoded as UTF-8 (undecodable bytes become U+FFFD). A `start` past the "
        "end gives no lines.",
        parameters=[LinesQuery],
        responses={
            200: CaptureLinesSerializer,
            400: error_response("`start` or `count` is out of range (details name it)."),
            404: error_response("No capture with this id."),
            409: error_response("The archive holds no bytes for this capture."),
            500: error_response("The capture's archive object failed verification."),
            503: error_response("The archive's storage could not be reached."),
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def lines(self, request: Request, pk: str | None = None) -> Response:
        params = _query(request, LinesQuery)
        capture = self.get_object()
        page = capture_lines(capture, params["start"], params["count"])
        return Response(CaptureLinesSerializer(render_lines(page)).data)


__all__ = [
    "OtcCaptureViewSet",
    "OtcQualityViewSet",
    "OtcSymbolViewSet",
    "OtcVenueViewSet",
    "OtcWeekViewSet",
]
