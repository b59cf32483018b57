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
from revops.metrics.common import fractional_minutes
from revops.metrics.diagnostic import reached_mql, reached_sql
from revops.metrics.registry import series
from revops.metrics.series_deals import _finite, _ratio, sorted_days, window_bounds, window_counts, windows_of
from revops.period import Period


def _created(frames: Frames, name: str, keep: pl.Expr | None = None) -> pl.Series:
    """Creation times of the leads (those where `keep` holds), sorted without nulls; once per leads frame and name."""
    leads = frames.leads
    return derived(leads, "series_created", lambda: sorted_days(
        (leads if keep is None else leads.filter(keep))["created_at"].cast(pl.Datetime("us"))), key=name)


def _counts_ratio(frames: Frames, periods: list[Period], numerator: pl.Series,
                  denominator: pl.Series) -> list[float | None]:
    """Leads of `numerator` ÷ leads of `denominator` created in each window (None where the latter is 0)."""
    windows = windows_of(periods)
    return [_ratio(n, d) for n, d in zip(window_counts(numerator, windows), window_counts(denominator, windows))]


def _won_customer_leads(frames: Frames) -> pl.Series:
    """Creation times of the leads whose opportunity has been won, sorted without nulls (lead_to_customer's leads).

    Millions of text ids are first matched by their 64-bit hash (integers compare several times faster);
    the few leads whose hash matches are then checked by their id, so the set is exactly the metric's.
    """
    leads, opps = frames.leads, frames.opportunities

    def make() -> pl.Series:
        won = opps.filter(pl.col("state") == "won").select("opportunity_id").unique()
        linked = leads.select("created_at", "opportunity_id").filter(pl.col("opportunity_id").is_not_null())
        maybe = linked.filter(pl.col("opportunity_id").hash().is_in(won["opportunity_id"].hash().implode()))
        sure = maybe.filter(pl.col("opportunity_id").is_in(won["opportunity_id"].implode()))
        return sorted_days(sure["created_at"].cast(pl.Datetime("us")))
    return derived(frames, "series_won_customer_leads", make)


@series("lead_to_customer")
def lead_to_customer_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Leads created in each window whose opportunity is won ÷ leads created in the window."""
    return _counts_ratio(frames, periods, _won_customer_leads(frames), _created(frames, "all"))


@series("mql_to_sql")
def mql_to_sql_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Leads created in each window that reached SQL ÷ those that reached MQL (SQL implies MQL)."""
    return _counts_ratio(frames, periods, _created(frames, "sql", reached_sql()), _created(frames, "mql", reached_mql()))


@series("lead_response_sla")
def lead_response_sla_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Leads created in each window answered within the SLA ÷ leads created in the window."""
    sla = frames.settings.slas.lead_response_minutes
    within = _created(frames, f"within {sla!r}", fractional_minutes("created_at", "first_response_at") <= sla)
    return _counts_ratio(frames, periods, within, _created(frames, "all"))


@series("lead_response_minutes")
def lead_response_minutes_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Median response minutes of the answered leads created in each window: a slice of them sorted by creation."""
    leads = frames.leads

    def make() -> pl.DataFrame:
        answered = leads.filter(pl.col("first_response_at").is_not_null() & pl.col("created_at").is_not_null())
        rows = answered.select(created=pl.col("created_at").cast(pl.Datetime("us")),
                               minutes=fractional_minutes("created_at", "first_response_at"))
        return rows if rows["created"].is_sorted() else rows.sort("created", maintain_order=True)
    answered = derived(leads, "series_answered", make)
    out: list[float | None] = []
    for lo, hi in window_bounds(answered["created"], windows_of(periods)):
        minutes = answered["minutes"].slice(lo, hi - lo).drop_nulls()
        out.append(_finite(minutes.median()) if len(minutes) else None)  # type: ignore[arg-type]
    return out


@series("pql_count")
def pql_count_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """Leads whose PQL date lies in each window."""
    leads = frames.leads
    if leads.height == 0:
        return [None] * len(periods)
    pql = derived(leads, "series_pql", lambda: sorted_days(leads["pql_at"].cast(pl.Datetime("us"))))
    return [float(n) for n in window_counts(pql, windows_of(periods))]


__all__: list[str] = []
