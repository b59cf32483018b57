"""Lead metrics at many periods in one pass (registry.series): a trend line's dozen points over millions of leads.

Lead metrics count leads (or take a median) by creation in a window. The creation times of the leads that
count are sorted once per frames; a window's count is then two binary searches, and its median a slice.
The metric functions (diagnostic.py, leading.py) stay the definition: tests/test_metric_series.py and
tests/test_series_deals.py check every value against them.
"""
from __future__ import annotations

import polars as pl

from revops.frames import Frames
from revops.memo import derived
from revops.metrics.common import deals, fractional_minutes, ratio_value
from revops.metrics.diagnostic import reached_mql, reached_sql
from revops.metrics.registry import series
from revops.metrics.series_deals import (
    sorted_days,
    window_bounds,
    window_counts,
    window_medians,
    windows_of,
)
from revops.period import Period


def _created(frames: Frames, name: str, keep: pl.Expr | None = None) -> pl.Series:
    """Creation times of the leads (those where `keep` holds), sorted without nulls; once per leads frame and name."""
    leads = frames.leads
    created = pl.col("created_at").cast(pl.Datetime("us"))
    # Only the one column is filtered: a lead has a dozen, some of them text.
    return derived(leads, "series_created", lambda: sorted_days(
        leads.select(created if keep is None else created.filter(keep)).to_series()), key=name)


def _counts_ratio(frames: Frames, periods: list[Period], numerator: pl.Series,
                  denominator: pl.Series) -> list[float | None]:
    """Leads of `numerator` ÷ leads of `denominator` created in each window (None where the latter is 0)."""
    windows = windows_of(periods)
    return [ratio_value(n, d) for n, d in zip(window_counts(numerator, windows), window_counts(denominator, windows))]


def _won_customer_leads(frames: Frames) -> pl.Series:
    """Creation times of the leads whose opportunity has been won, sorted without nulls (lead_to_customer's leads).

    Millions of text ids are matched by their 64-bit hash (an integer join, several times faster than one of
    text), then each pair is checked by the ids themselves, so the set is exactly the metric's.
    """
    leads, opps = frames.leads, frames.opportunities

    def make() -> pl.Series:
        # deals() holds the same rows as the opportunities, with state an Enum (quick to compare).
        won = opps["opportunity_id"].filter(deals(frames)["state"] == "won").drop_nulls().to_frame("won_id")
        linked = (leads.select("created_at", "opportunity_id").filter(pl.col("opportunity_id").is_not_null())
                  .with_row_index("row"))
        sure = (linked.with_columns(hash=pl.col("opportunity_id").hash())
                .join(won.with_columns(hash=pl.col("won_id").hash()), on="hash", how="inner", maintain_order="left")
                .filter(pl.col("won_id") == pl.col("opportunity_id")))
        # An id on two won deals meets its leads twice (next to each other): each lead counts once.
        if (sure["row"].diff() == 0).any():
            sure = sure.unique("row", keep="first", maintain_order=True)
        return sorted_days(sure["created_at"].cast(pl.Datetime("us")))
    return derived(frames, "series_won_customer_leads", make)


@series("lead_to_customer")
def lead_to_customer_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Leads created in each window whose opportunity is won ÷ leads created in the window."""
    return _counts_ratio(frames, periods, _won_customer_leads(frames), _created(frames, "all"))


@series("mql_to_sql")
def mql_to_sql_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Leads created in each window that reached SQL ÷ those that reached MQL (SQL implies MQL)."""
    sql, mql = _created(frames, "sql", reached_sql()), _created(frames, "mql", reached_mql())
    return _counts_ratio(frames, periods, sql, mql)


def _answered(frames: Frames) -> pl.DataFrame:
    """The answered leads sorted by creation (stable): created, minutes (fractional minutes to the first response,
    as the lead-response metrics compute them); once per leads frame."""
    leads = frames.leads

    def make() -> pl.DataFrame:
        rows = leads.select(created=pl.col("created_at").cast(pl.Datetime("us")),
                            minutes=fractional_minutes("created_at", "first_response_at")).drop_nulls()
        return rows if rows["created"].is_sorted() else rows.sort("created", maintain_order=True)
    return derived(leads, "series_answered", make)


@series("lead_response_sla")
def lead_response_sla_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Leads created in each window answered within the SLA ÷ leads created in the window."""
    sla = frames.settings.slas.lead_response_minutes
    answered = _answered(frames)
    within = derived(answered, "series_within_sla", lambda: answered["created"].filter(answered["minutes"] <= sla),
                     key=sla, limit=2)
    return _counts_ratio(frames, periods, within, _created(frames, "all"))


@series("lead_response_minutes")
def lead_response_minutes_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Median response minutes of the answered leads created in each window: a slice of them sorted by creation."""
    answered = _answered(frames)
    return window_medians(answered["minutes"], window_bounds(answered["created"], windows_of(periods)))


@series("pql_count")
def pql_count_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Leads whose PQL date lies in each window."""
    leads = frames.leads
    if leads.height == 0:
        return [None] * len(periods)
    pql = derived(leads, "series_pql", lambda: sorted_days(leads["pql_at"].cast(pl.Datetime("us"))))
    return [float(n) for n in window_counts(pql, windows_of(periods))]


__all__: list[str] = []
