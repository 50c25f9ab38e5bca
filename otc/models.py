"""FINRA OTC weekly transparency data: captures with lineage, normalized volume, analytics."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q


class Tier(models.TextChoices):
    """Market Spine's tier codes (FINRA's API calls OTC "OTCE"; see ``parse_tier``)."""

    T1 = "T1", "NMS Tier 1"
    T2 = "T2", "NMS Tier 2"
    OTC = "OTC", "OTC"


class Concentration(models.TextChoices):
    """HHI levels: < 1,500 competitive, 1,500–2,500 moderate, > 2,500 concentrated."""

    COMPETITIVE = "competitive", "Competitive"
    MODERATE = "moderate", "Moderate"
    CONCENTRATED = "concentrated", "Concentrated"


class Trend(models.TextChoices):
    """This week against the average of the earlier weeks in the rolling window."""

    UP = "up", "Up"
    DOWN = "down", "Down"
    STABLE = "stable", "Stable"


class CaptureState(models.TextChoices):
    """Where a capture stands; only ``current`` captures answer for their week.

    ``staged`` → ``current`` → ``superseded`` is the good path; a staged capture whose
    normalize or compute failed is ``failed``, one the quality gate graded F is
    ``rejected``. Neither ever becomes current unless a re-run succeeds.
    """

    STAGED = "staged", "Staged"
    CURRENT = "current", "Current"
    SUPERSEDED = "superseded", "Superseded"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected by the quality gate"


#: States of a capture that has not become current (yet): a re-run may promote it.
PENDING_STATES = (CaptureState.STAGED, CaptureState.FAILED, CaptureState.REJECTED)


def answering(as_of: datetime | None = None, *, prefix: str = "") -> Q:
    """Q for the captures answering at ``as_of`` (now when ``None``): at most one per
    (tier, week, ATS flag). ``prefix`` is the path to the capture, e.g. ``"capture__"``.
    """
    if as_of is None:
        return Q(**{f"{prefix}state": CaptureState.CURRENT})
    if as_of.tzinfo is None:
        raise ValueError("as_of must be an aware datetime (Market Spine stores UTC)")
    return (
        Q(**{f"{prefix}state__in": [CaptureState.CURRENT, CaptureState.SUPERSEDED]})
        & Q(**{f"{prefix}promoted_at__lte": as_of})
        & (
            Q(**{f"{prefix}superseded_at__isnull": True})
            | Q(**{f"{prefix}superseded_at__gt": as_of})
        )
    )


def current_sql(alias: str) -> str:
    """The SQL condition of :func:`answering` (now) on capture table alias ``alias``."""
    return f"{alias}.state = '{CaptureState.CURRENT}'"


class CaptureQuerySet(models.QuerySet):
    def current(self) -> CaptureQuerySet:
        """The captures answering now: one per (tier, week, ATS flag) at most."""
        return self.filter(answering())

    def known_at(self, as_of: datetime | None) -> CaptureQuerySet:
        """The captures that answered at ``as_of`` (became current by then and were
        not superseded yet); ``None`` is now."""
        return self.filter(answering(as_of))

    def complete(self) -> CaptureQuerySet:
        """Captures whose ingest committed (``checksum`` is set once every row is in)."""
        return self.exclude(checksum="")

    def newest_unsuperseded(self) -> Capture | None:
        """The newest complete capture that is not superseded: the current one, or a
        newer staged, failed or rejected one (what a re-run of its key works on)."""
        return self.complete().exclude(state=CaptureState.SUPERSEDED).order_by("-pk").first()

    def pending(self) -> CaptureQuerySet:
        """Captures that have not become current: staged, failed or rejected."""
        return self.filter(state__in=PENDING_STATES)

    def of_key(self, tier: str, week: date, ats: bool) -> CaptureQuerySet:
        return self.filter(tier=tier, week=week, ats=ats)


class ArchiveStatus(models.TextChoices):
    """Whether the archive holds a capture's original bytes under its checksum."""

    ARCHIVED = "archived", "Archived"
    UNREPRODUCIBLE = "unreproducible", "Not reproducible (migrated)"


class Grade(models.TextChoices):
    A = "A", "A"
    B = "B", "B"
    C = "C", "C"
    D = "D", "D"
    F = "F", "F"


#: Foreign keys of the tables written in bulk (hundreds of thousands of rows per
#: capture) carry no database constraint: PostgreSQL checks a foreign key with a
#: trigger per inserted row, which would double the load time. Integrity holds because
#: only the services write these rows, inside the transaction that creates or locks
#: their capture, and captures are never deleted outside the ORM (which cascades).
_BULK_FK: dict[str, Any] = {"db_index": False, "db_constraint": False}
#: Normalized rows are keyed by the line they came from, packed in one bigint:
#: capture id x 2**32 + line number, so a capture's rows are one key range in line
#: order and a row names its raw line in the archive.
LINE_KEY_BITS = 32
_PCT = {"max_digits": 9, "decimal_places": 4}  # 0.0000 – 100.0000 (%), HHI up to 10,000
_AVG = {"max_digits": 24, "decimal_places": 4}  # averages of share volumes and trades


class Capture(models.Model):
    """One ingest of FINRA data for a tier, reporting week and ATS flag, with lineage.

    ``checksum`` is the SHA-256 of the bytes as received; it is empty only while the
    capture's own ingest transaction is still streaming rows. ``state`` says whether
    it answers for its week (see :class:`CaptureState`); ``promoted_at`` is when it
    became current, ``superseded_at`` when a newer capture took over, and ``failure``
    why a failed capture failed.
    """

    tier = models.CharField(max_length=3, choices=Tier.choices)
    ats = models.BooleanField(
        default=False, help_text="True for ATS volume, False for non-ATS OTC volume."
    )
    week = models.DateField(help_text="Monday of the reporting week (FINRA weekStartDate).")
    source = models.TextField(help_text="Where the bytes came from: a file path or an API query.")
    checksum = models.CharField(max_length=64, blank=True, default="")
    row_count = models.PositiveIntegerField(default=0, help_text="Data rows received.")
    reject_count = models.PositiveIntegerField(
        default=0, help_text="Rejected rows: invalid at ingest, plus duplicates at normalize."
    )
    warnings = models.JSONField(default=list, blank=True)
    last_update_dates = models.JSONField(
        default=list, blank=True, help_text="Distinct FINRA lastUpdateDate values, ISO dates."
    )
    ingested_at = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=CaptureState.choices, default=CaptureState.STAGED
    )
    promoted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the capture became the week's current one."
    )
    failure = models.TextField(
        blank=True, default="", help_text="Why the capture failed or was rejected."
    )
    superseded_at = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_captures",
    )
    execution = models.ForeignKey(
        "executions.Execution",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="otc_captures",
    )
    normalized_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    quality_grade = models.CharField(max_length=1, choices=Grade.choices, blank=True, default="")
    archive_status = models.CharField(
        max_length=16,
        choices=ArchiveStatus.choices,
        default=ArchiveStatus.ARCHIVED,
        help_text="Unreproducible: a capture migrated from raw rows whose bytes did not "
        "hash to its checksum again; its raw lines are not in the archive.",
    )
    finra_served = models.BooleanField(
        null=True,
        blank=True,
        help_text="Whether FINRA's Query API still serves this week (null: never checked).",
    )
    finra_last_seen = models.DateField(
        null=True, blank=True, help_text="Last day a sync found the week served by FINRA."
    )

    objects = CaptureQuerySet.as_manager()

    class Meta:
        ordering = ["-week", "tier", "ats", "-ingested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tier", "week", "ats"],
                condition=Q(state=CaptureState.CURRENT),
                name="otc_capture_one_current",
            ),
            models.CheckConstraint(
                condition=Q(tier__in=Tier.values), name="otc_capture_tier_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        state__in=PENDING_STATES,
                        promoted_at__isnull=True,
                        superseded_at__isnull=True,
                    )
                    | Q(
                        state=CaptureState.CURRENT,
                        promoted_at__isnull=False,
                        superseded_at__isnull=True,
                    )
                    | Q(
                        state=CaptureState.SUPERSEDED,
                        promoted_at__isnull=False,
                        superseded_at__isnull=False,
                    )
                ),
                name="otc_capture_state_times",
            ),
        ]
        indexes = [
            models.Index(fields=["tier", "week", "ats", "ingested_at"], name="otc_capture_key"),
            models.Index(fields=["week", "tier"], name="otc_capture_week_tier"),
            models.Index(fields=["ingested_at"], name="otc_capture_ingested"),
        ]

    def __str__(self) -> str:
        kind = "ATS" if self.ats else "non-ATS"
        return f"{self.tier} {kind} week {self.week} (capture {self.pk})"

    @property
    def is_current(self) -> bool:
        return self.state == CaptureState.CURRENT


def line_key(capture_id: int, line_no: int) -> int:
    """The id of the raw (and normalized) row of ``line_no`` in capture ``capture_id``."""
    return (capture_id << LINE_KEY_BITS) + line_no


def capture_key_range(capture_id: int) -> tuple[int, int]:
    """The ids of one capture's rows: ``lowest <= id < bound``."""
    return capture_id << LINE_KEY_BITS, (capture_id + 1) << LINE_KEY_BITS


def line_key_field() -> models.BigIntegerField:
    """The primary key of a line-keyed table (its value is ``line_key``)."""
    return models.BigIntegerField(
        primary_key=True, editable=False, help_text="line_key(capture, line_no)"
    )


class LineKeyedQuerySet(models.QuerySet):
    def of_capture(self, capture_id: int) -> LineKeyedQuerySet:
        """One capture's rows, read as a range of the primary key (no other index)."""
        lowest, bound = capture_key_range(capture_id)
        return self.filter(pk__gte=lowest, pk__lt=bound)


class RejectKind(models.TextChoices):
    INVALID = "invalid", "Invalid row"
    DUPLICATE = "duplicate", "Duplicate symbol+MPID"


class Reject(models.Model):
    """A data line that was refused, with why; never silently dropped.

    ``invalid`` rows are refused by the parser at ingest; ``duplicate`` rows (a symbol
    and MPID already seen on an earlier line) are found by normalization.
    """

    capture = models.ForeignKey(
        Capture, on_delete=models.CASCADE, related_name="rejects", db_index=False
    )
    line_no = models.PositiveIntegerField()
    raw = models.TextField()
    reason = models.TextField()
    kind = models.CharField(max_length=16, choices=RejectKind.choices, default=RejectKind.INVALID)

    class Meta:
        ordering = ["capture", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["capture", "line_no"], name="otc_reject_line"),
        ]

    def __str__(self) -> str:
        return f"capture {self.capture_id} line {self.line_no}: {self.reason}"


class _WeekKeyed(models.Model):
    """Copies of the capture's key, so the API's usual filters need no join."""

    week = models.DateField()
    tier = models.CharField(max_length=3, choices=Tier.choices)
    ats = models.BooleanField(default=False)

    class Meta:
        abstract = True


class Issue(models.Model):
    """The symbol dimension: a symbol with an issue name as FINRA reported it.

    A symbol whose name changes gets a second row, so every normalized row keeps the
    name its own capture reported; the rows never change once written.
    """

    id = models.AutoField(primary_key=True)
    symbol = models.TextField()
    name = models.TextField(blank=True)

    class Meta:
        ordering = ["symbol", "id"]
        constraints = [models.UniqueConstraint(fields=["symbol", "name"], name="otc_issue_key")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.name}"


class Participant(models.Model):
    """The venue dimension: an MPID with a participant name as FINRA reported it (a
    renamed venue gets a second row). ``Venue`` keeps each MPID's latest name and the
    weeks it was seen, for the captures that passed the quality gate."""

    id = models.AutoField(primary_key=True)
    mpid = models.TextField()
    name = models.TextField(blank=True)

    class Meta:
        ordering = ["mpid", "id"]
        constraints = [models.UniqueConstraint(fields=["mpid", "name"], name="otc_participant_key")]

    def __str__(self) -> str:
        return f"{self.mpid} {self.name}"


class AvgTradeSize(models.Func):
    """Shares per trade, 4 places half up, NULL without trades: exact on both dialects
    (PostgreSQL divides in ``numeric``, so no bigint intermediate can overflow)."""

    output_field = models.DecimalField(**_AVG)

    def __init__(self) -> None:
        super().__init__(models.F("share_volume"), models.F("trade_count"))

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        (shares, p1), (trades, p2) = (compiler.compile(e) for e in self.get_source_expressions())
        if connection.vendor == "postgresql":
            scaled = f"div(2 * CAST({shares} AS NUMERIC) * 10000 + {trades}, 2 * {trades})"
        else:
            scaled = f"((2 * {shares} * 10000 + {trades}) / (2 * {trades}))"
        if p1 or p2:
            raise ValueError("AvgTradeSize takes the row's own columns only")
        return f"(CASE WHEN {trades} > 0 THEN ({scaled}) * 0.0001 END)", []

    def get_db_converters(self, connection: Any) -> list[Any]:
        # SQLite hands back a float, which Django quantizes for columns only.
        return [*super().get_db_converters(connection), _four_places]


def _four_places(value: Decimal | None, expression: Any, connection: Any) -> Decimal | None:
    return None if value is None else value.quantize(_FOUR_PLACES)


_FOUR_PLACES = Decimal("0.0001")


class VenueVolumeQuerySet(LineKeyedQuerySet):
    pass


class VenueVolumeManager(models.Manager.from_queryset(VenueVolumeQuerySet)):  # type: ignore[misc]
    """Every read sees the row as it was before the dimensions: symbol, issue and venue
    names, MPID, tier and ATS flag by join, the average trade size computed."""

    def get_queryset(self) -> models.QuerySet:
        return (
            super()
            .get_queryset()
            .annotate(
                symbol=models.F("issue__symbol"),
                issue_name=models.F("issue__name"),
                mpid=models.F("participant__mpid"),
                venue_name=models.F("participant__name"),
                tier=models.F("capture__tier"),
                ats=models.F("capture__ats"),
                avg_trade_size=AvgTradeSize(),
            )
        )


class VenueVolume(models.Model):
    """Normalized volume: one row per (capture, symbol, MPID), compact — what varies
    per row, the dimensions by integer id, and the line it came from (``line_key``).

    On PostgreSQL the table is range-partitioned by (week, capture), one partition per
    capture (``otc.services.partitions``); on SQLite it is one plain table.
    """

    id = line_key_field()
    capture = models.ForeignKey(
        Capture, on_delete=models.CASCADE, related_name="venue_volumes", **_BULK_FK
    )
    week = models.DateField()
    line_no = models.PositiveIntegerField(help_text="The raw line this row came from.")
    issue = models.ForeignKey(Issue, on_delete=models.DO_NOTHING, related_name="+", **_BULK_FK)
    participant = models.ForeignKey(
        Participant, on_delete=models.DO_NOTHING, related_name="+", **_BULK_FK
    )
    share_volume = models.BigIntegerField()
    trade_count = models.BigIntegerField()

    objects = VenueVolumeManager()

    class Meta:
        ordering = ["id"]  # capture, then line
        # No index: a capture's rows are one partition (PostgreSQL) read whole by the
        # analytics; the parser keeps the first line of each symbol+MPID.

    def __str__(self) -> str:
        return f"capture {self.capture_id} line {self.line_no}"


class Venue(models.Model):
    """A trading venue by MPID, with its latest name and the weeks it was first/last seen."""

    mpid = models.TextField(unique=True)
    name = models.TextField(blank=True)
    first_seen_week = models.DateField()
    last_seen_week = models.DateField()

    class Meta:
        ordering = ["mpid"]

    def __str__(self) -> str:
        return f"{self.mpid} {self.name}"


class SymbolWeekSummary(_WeekKeyed):
    """Per capture and symbol: totals, top venue and concentration (HHI)."""

    capture = models.ForeignKey(
        Capture, on_delete=models.CASCADE, related_name="symbol_summaries", **_BULK_FK
    )
    symbol = models.TextField()
    issue_name = models.TextField(blank=True)
    total_volume = models.BigIntegerField()
    total_trades = models.BigIntegerField()
    venue_count = models.PositiveIntegerField()
    avg_trade_size = models.DecimalField(**_AVG, null=True, blank=True)
    top_venue_mpid = models.TextField()
    top_venue_name = models.TextField(blank=True)
    top_venue_share = models.DecimalField(
        **_PCT, null=True, blank=True, help_text="Percent of the symbol's volume; empty at 0."
    )
    hhi = models.DecimalField(
        **_PCT, null=True, blank=True, help_text="Σ (venue share %)², 0–10,000; empty at 0."
    )
    concentration = models.CharField(
        max_length=16, choices=Concentration.choices, blank=True, default=""
    )

    class Meta:
        verbose_name_plural = "symbol week summaries"
        ordering = ["capture", "-total_volume", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["capture", "symbol"], name="otc_symbolsummary_key"),
        ]
        indexes = [
            models.Index(fields=["symbol", "week"], name="otc_sws_symbol_week"),
            models.Index(fields=["week", "tier"], name="otc_sws_week_tier"),
            # A week's symbols by volume (the API's default order) straight from the
            # index: without it every page sorts all of the week's symbols. Its last
            # column makes it cover the rolling windows' read of six weeks (symbol,
            # volume, trades per capture) from the index alone (docs/otc.md, "Indexes
            # of the analytics tables").
            models.Index(
                fields=["capture", "-total_volume", "symbol", "total_trades"],
                name="otc_sws_capture_volume",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.tier} {self.week}: {self.total_volume}"


class VenueMarketShare(_WeekKeyed):
    """Per capture and venue: volume, trades, symbols, share of the capture and rank."""

    capture = models.ForeignKey(
        Capture, on_delete=models.CASCADE, related_name="venue_shares", db_index=False
    )
    mpid = models.TextField()
    venue_name = models.TextField(blank=True)
    total_volume = models.BigIntegerField()
    total_trades = models.BigIntegerField()
    symbol_count = models.PositiveIntegerField()
    zero_volume_rows = models.PositiveIntegerField(
        default=0, help_text="Symbols the venue reported with zero shares."
    )
    market_share = models.DecimalField(**_PCT, null=True, blank=True, help_text="Percent.")
    rank = models.PositiveIntegerField(help_text="1 = most volume; ties share a rank.")

    class Meta:
        ordering = ["capture", "rank", "mpid"]
        constraints = [
            models.UniqueConstraint(fields=["capture", "mpid"], name="otc_venueshare_key"),
        ]
        indexes = [
            models.Index(fields=["mpid", "week"], name="otc_vms_mpid_week"),
            models.Index(fields=["week", "tier"], name="otc_vms_week_tier"),
        ]

    def __str__(self) -> str:
        return f"{self.mpid} {self.tier} {self.week}: {self.market_share}%"


class _Versioned(_WeekKeyed):
    """Rows that depend on other weeks: replaced by newer computations, never deleted."""

    computed_at = models.DateTimeField()
    replaced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class _Rolling(_Versioned):
    """Six-week window ending at the anchor capture's week (same tier and ATS flag).

    ``weeks_in_window`` counts the weeks in which the key had volume; the averages are
    over those weeks. ``trend`` compares this week's volume with the average of the
    earlier weeks in the window (±10%); it is empty when there is no earlier week.
    """

    window_start = models.DateField()
    weeks_in_window = models.PositiveSmallIntegerField()
    current_volume = models.BigIntegerField()
    window_volume = models.BigIntegerField()
    avg_volume = models.DecimalField(**_AVG)
    avg_trades = models.DecimalField(**_AVG)
    trend = models.CharField(max_length=8, choices=Trend.choices, null=True, blank=True)

    class Meta:
        abstract = True


class SymbolRolling(_Rolling):
    capture = models.ForeignKey(
        Capture, on_delete=models.CASCADE, related_name="symbol_rolling", **_BULK_FK
    )
    symbol = models.TextField()

    class Meta:
        verbose_name = "symbol 6-week rolling"
        verbose_name_plural = "symbol 6-week rolling"
        ordering = ["capture", "symbol"]
        # One current row per (capture, symbol) is kept by the service, which replaces
        # the rows under a lock on the capture; a partial unique index would be a third
        # index on a table written in bulk.
        indexes = [
            models.Index(fields=["capture", "symbol"], name="otc_sr_capture_symbol"),
            models.Index(fields=["symbol", "week"], name="otc_sr_symbol_week"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.tier} {self.week} 6w avg {self.avg_volume}"


class VenueRolling(_Rolling):
    capture = models.ForeignKey(
        Capture, on_delete=models.CASCADE, related_name="venue_rolling", db_index=False
    )
    mpid = models.TextField()

    class Meta:
        verbose_name = "venue 6-week rolling"
        verbose_name_plural = "venue 6-week rolling"
        ordering = ["capture", "mpid"]
        # One current row per (capture, mpid) is kept by the service, which replaces
        # the rows under a lock on the capture; a partial unique index would be a third
        # index on a table written in bulk.
        indexes = [
            models.Index(fields=["capture", "mpid"], name="otc_vr_capture_mpid"),
            models.Index(fields=["mpid", "week"], name="otc_vr_mpid_week"),
        ]

    def __str__(self) -> str:
        return f"{self.mpid} {self.tier} {self.week} 6w avg {self.avg_volume}"


class QualityReport(_Versioned):
    """The quality gate's verdict on a capture: metrics, grade A–F and warnings.

    Grade F blocks compute; its report is still kept so operators can see why.
    """

    capture = models.ForeignKey(
        Capture, on_delete=models.CASCADE, related_name="quality_reports", db_index=False
    )
    grade = models.CharField(max_length=1, choices=Grade.choices)
    metrics = models.JSONField(default=dict)
    warnings = models.JSONField(default=list, blank=True)
    failures = models.JSONField(default=list, blank=True)
    prior_capture = models.ForeignKey(
        Capture,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # no read goes from a prior capture to the reports naming it
    )

    class Meta:
        ordering = ["-week", "tier", "-computed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["capture"],
                condition=Q(replaced_at__isnull=True),
                name="otc_quality_current",
            ),
        ]
        # A few rows per capture: filters by week, tier or grade read them all as fast
        # as through an index (docs/otc.md, "Indexes of the analytics tables").
        indexes = [
            models.Index(fields=["capture", "computed_at"], name="otc_qr_capture"),
        ]

    def __str__(self) -> str:
        return f"{self.tier} {self.week} grade {self.grade}"

    @property
    def passed(self) -> bool:
        return self.grade != Grade.F
