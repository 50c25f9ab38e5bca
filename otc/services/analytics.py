"""Per-capture analytics: symbol weekly summaries (with HHI) and venue market share."""

from __future__ import annotations

from otc.models import (
    Capture,
    Concentration,
    Participant,
    SymbolWeekSummary,
    Venue,
    VenueMarketShare,
)
from otc.services.partitions import PARENT, capture_rows_sql
from otc.services.sql import execute, int_sum, round_div, round_div_scaled, unscale

__all__ = [
    "HHI_CONCENTRATED_ABOVE",
    "HHI_MODERATE_FROM",
    "compute_symbol_summaries",
    "compute_venue_shares",
    "upsert_venues",
]

#: HHI bands: below 1,500 competitive; 1,500–2,500 moderate; above 2,500 concentrated.
HHI_MODERATE_FROM = 1_500
HHI_CONCENTRATED_ABOVE = 2_500


def _key_params(capture: Capture) -> dict[str, object]:
    return {"capture": capture.pk, "week": capture.week, "tier": capture.tier, "ats": capture.ats}


def _rows() -> str:
    """The capture's normalized rows as stored (dimension ids), for ``%(capture)s`` and
    ``%(week)s``; the week prunes PostgreSQL's partitions at plan time."""
    return (
        f"(SELECT issue_id, participant_id, share_volume, trade_count FROM {PARENT}"
        " WHERE week = %(week)s AND capture_id = %(capture)s)"
    )


def compute_symbol_summaries(capture: Capture) -> int:
    """(Re)write the capture's ``SymbolWeekSummary`` rows; return how many.

    Needs the capture's venue shares (for the top venue's name). The windows only
    partition by symbol (no ordering inside), which keeps the million-row sort cheap:
    the top venue is the lowest MPID among those with the symbol's largest volume.
    """
    SymbolWeekSummary.objects.filter(capture_id=capture.pk).delete()
    share_e4 = round_div_scaled("share_volume", "sym_total", times=100)
    hhi_e4 = round_div_scaled("hhi_e8", "100000000")
    return execute(
        f"""
        INSERT INTO {SymbolWeekSummary._meta.db_table}
               (capture_id, week, tier, ats, symbol, issue_name, total_volume, total_trades,
                venue_count, avg_trade_size, top_venue_mpid, top_venue_name, top_venue_share,
                hhi, concentration)
        SELECT %(capture)s, %(week)s, %(tier)s, %(ats)s, agg.symbol, agg.issue_name,
               agg.total, agg.trades, agg.venues, {round_div("agg.total", "agg.trades")},
               agg.top_mpid, COALESCE(vms.venue_name, ''), {unscale("agg.top_share_e4")},
               {unscale(hhi_e4)},
               CASE WHEN hhi_e8 IS NULL THEN ''
                    WHEN {hhi_e4} < {HHI_MODERATE_FROM * 10_000}
                         THEN '{Concentration.COMPETITIVE}'
                    WHEN {hhi_e4} <= {HHI_CONCENTRATED_ABOVE * 10_000}
                         THEN '{Concentration.MODERATE}'
                    ELSE '{Concentration.CONCENTRATED}' END
          FROM (SELECT symbol,
                       MAX(issue_name) AS issue_name,
                       MAX(sym_total) AS total,
                       {int_sum("trade_count")} AS trades,
                       COUNT(*) AS venues,
                       MIN(CASE WHEN share_volume = sym_top THEN mpid END) AS top_mpid,
                       MAX(CASE WHEN share_volume = sym_top THEN share_e4 END) AS top_share_e4,
                       {int_sum("share_e4 * share_e4")} AS hhi_e8
                  FROM (SELECT symbol, issue_name, mpid, share_volume, trade_count,
                               sym_total, sym_top,
                               CASE WHEN sym_total > 0 THEN {share_e4} END AS share_e4
                          FROM (SELECT symbol, issue_name, mpid, share_volume, trade_count,
                                       CAST(SUM(share_volume) OVER by_symbol AS BIGINT)
                                           AS sym_total,
                                       MAX(share_volume) OVER by_symbol AS sym_top
                                  FROM {capture_rows_sql()}
                                WINDOW by_symbol AS (PARTITION BY symbol)) totals) shares
                 GROUP BY symbol) agg
          LEFT JOIN {VenueMarketShare._meta.db_table} vms
            ON vms.capture_id = %(capture)s AND vms.mpid = agg.top_mpid
         ORDER BY agg.symbol
        """,
        _key_params(capture),
    )


def compute_venue_shares(capture: Capture) -> int:
    """(Re)write the capture's ``VenueMarketShare`` rows; return how many.

    The rows are grouped by participant id first (hashed, integers), then the few
    dozen participants by MPID (a venue renamed within the week has two ids)."""
    VenueMarketShare.objects.filter(capture_id=capture.pk).delete()
    return execute(
        f"""
        INSERT INTO {VenueMarketShare._meta.db_table}
               (capture_id, week, tier, ats, mpid, venue_name, total_volume, total_trades,
                symbol_count, zero_volume_rows, market_share, rank)
        SELECT %(capture)s, %(week)s, %(tier)s, %(ats)s, mpid, venue_name, volume, trades,
               symbols, zero_rows, {round_div("volume", "grand", times=100)},
               RANK() OVER (ORDER BY volume DESC)
          FROM (SELECT mpid, venue_name, volume, trades, symbols, zero_rows,
                       CAST(SUM(volume) OVER () AS BIGINT) AS grand
                  FROM (SELECT p.mpid,
                               MAX(p.name) AS venue_name,
                               {int_sum("pp.volume")} AS volume,
                               {int_sum("pp.trades")} AS trades,
                               {int_sum("pp.symbols")} AS symbols,
                               {int_sum("pp.zero_rows")} AS zero_rows
                          FROM (SELECT participant_id,
                                       {int_sum("share_volume")} AS volume,
                                       {int_sum("trade_count")} AS trades,
                                       COUNT(*) AS symbols,
                                       SUM(CASE WHEN share_volume = 0 THEN 1 ELSE 0 END)
                                           AS zero_rows
                                  FROM {_rows()} r
                                 GROUP BY participant_id) pp
                          JOIN {Participant._meta.db_table} p ON p.id = pp.participant_id
                         GROUP BY p.mpid) per_venue) totals
        """,
        _key_params(capture),
    )


def upsert_venues(capture: Capture) -> None:
    """Insert the capture's new MPIDs into ``Venue``; for known ones widen first/last
    seen and take the name of the latest week seen, so re-ingesting an older week
    never renames a venue back. Reads the capture's venue shares (a few dozen rows)."""
    venue, shares = Venue._meta.db_table, VenueMarketShare._meta.db_table
    execute(
        f"""
        INSERT INTO {venue} (mpid, name, first_seen_week, last_seen_week)
        SELECT mpid, venue_name, %(week)s, %(week)s
          FROM {shares}
         WHERE capture_id = %(capture)s
        ON CONFLICT (mpid) DO UPDATE SET
            name = CASE WHEN excluded.last_seen_week >= {venue}.last_seen_week
                        THEN excluded.name ELSE {venue}.name END,
            first_seen_week = CASE WHEN excluded.first_seen_week < {venue}.first_seen_week
                                   THEN excluded.first_seen_week
                                   ELSE {venue}.first_seen_week END,
            last_seen_week = CASE WHEN excluded.last_seen_week > {venue}.last_seen_week
                                  THEN excluded.last_seen_week ELSE {venue}.last_seen_week END
        """,
        {"capture": capture.pk, "week": capture.week},
    )
