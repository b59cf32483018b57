"""One metric tier as a page: caption, purpose, card grid, breakdown tables, drill-down."""
from __future__ import annotations

import polars as pl
import streamlit as st

from revops.errors import user_message
from revops.format import describe_filters, describe_period
from revops.frames import Frames
from revops.metrics import trend as metric_trend
from revops.metrics.registry import BY_ID, SERIES, TIERS, Metric, MetricResult, by_tier, compute
from revops.period import Period
from ui import components, sidebar, state

TREND_POINTS = 12
PURPOSE: dict[str, str] = {
    "north_star": "Is the company building durable, efficient recurring revenue? Size, retention and the "
                  "efficiency of growth: the numbers the board asks about.",
    "operational": "Is this quarter's number on track? Pipeline, conversion and deal economics the sales "
                   "team runs on every week.",
    "diagnostic": "Where does the revenue engine leak? Speed and conversion at each step from lead to live "
                  "customer, and how far the data can be trusted.",
    "leading": "What will the next quarters look like? Early signals in pipeline creation, product usage "
               "and renewal risk, before they show up in revenue.",
}


def _failed(exc: Exception) -> MetricResult:
    # One broken metric must not take the whole page down; the card says what went wrong.
    return MetricResult.empty(f"Could not be computed. {user_message(exc)}")


def table_metric(frames: Frames, metric_id: str, period: Period) -> MetricResult:
    """A table metric (stage conversion, data quality) over the period, with its rows: shown as a table,
    never as a card, so the breakdown and the drill-down both read this one result."""
    try:
        return compute(metric_id, frames, period)
    except Exception as exc:  # noqa: BLE001  (shown in place of the table, see _failed)
        return _failed(exc)


def card_values(frames: Frames, metric_id: str, period: Period,
                points: int) -> tuple[MetricResult, MetricResult, pl.DataFrame | None]:
    """A card's numbers: the metric over the period (value and breakdown table, no rows), over the previous
    period of the same length, and at the last `points` period ends (as_of, value; None when it cannot be
    computed).

    They are worked out together: a metric with a series does them in one pass (its own function runs
    only for a breakdown table or to say why a value is empty). The rows behind a number are computed
    only for the metric the drill-down shows (metric_rows): building and keeping them for every card costs
    seconds and gigabytes at a million deals.
    """
    metric = BY_ID[metric_id]
    by_series = metric_id in SERIES and not metric.breakdown
    try:
        current = None if by_series else compute(metric_id, frames, period, details=False)
    except Exception as exc:  # noqa: BLE001  (shown on the card, see _failed)
        return _failed(exc), _failed(exc), None
    try:
        trend, values = metric_trend.trend_with(metric_id, frames, period, points,
                                                [period.previous(), *([period] if by_series else [])])
    except Exception:  # noqa: BLE001  (the card still shows the value; the chart says there is no trend)
        trend, values = None, []
    # An empty value comes with the metric's reason (the card says why there is no number or no change).
    if current is None:
        current = _value(frames, metric_id, period, values[1] if len(values) > 1 else None)
    return current, _value(frames, metric_id, period.previous(), values[0] if values else None), trend


def _value(frames: Frames, metric_id: str, period: Period, value: float | None) -> MetricResult:
    """The metric's value over the period when known, else the metric itself (with the reason it is empty)."""
    if value is not None:
        return MetricResult(value)
    try:
        return compute(metric_id, frames, period, details=False)
    except Exception as exc:  # noqa: BLE001  (shown on the card, see _failed)
        return _failed(exc)


def metric_rows(frames: Frames, metric_id: str, period: Period) -> MetricResult:
    """The metric over the period with the rows behind it (MetricResult.detail)."""
    try:
        return compute(metric_id, frames, period)
    except Exception as exc:  # noqa: BLE001  (the drill-down says what went wrong)
        return _failed(exc)


def _file_name(metric: Metric, period: Period, suffix: str = "") -> str:
    return f"{metric.id}{suffix}_{period.as_of.isoformat()}.csv"


def _breakdown(tier: str, metric: Metric, result: MetricResult, period: Period, currency: str) -> None:
    components.breakdown(metric, result, file_name=_file_name(metric, period, "_breakdown"),
                         key=f"{tier}_{metric.id}_breakdown", currency=currency)


def render(tier: str) -> None:
    """Draw the page of one tier ("north_star", "operational", "diagnostic" or "leading")."""
    filters, period = sidebar.current()
    metrics = by_tier(tier)
    currency = state.all_frames().settings.currency
    st.title(f"{TIERS[tier]} metrics", anchor=False)
    st.caption(f"{describe_period(period)} · {describe_filters(filters)}")
    st.markdown(PURPOSE[tier])
    if not metrics:
        st.info("No metric of this tier is registered yet.")
        return

    scalars = [m for m in metrics if m.kind == "scalar"]
    wide = [m for m in metrics if m.kind == "table"]
    with st.spinner("Computing the metrics…"):
        cards = {m.id: state.cached(card_values, filters, m.id, period, TREND_POINTS) for m in scalars}
        tables = {m.id: state.cached(table_metric, filters, m.id, period) for m in wide}

    components.card_grid([(m, *cards[m.id]) for m in scalars], currency=currency)

    # Table metrics get the full width; per-item breakdowns of scalar metrics sit side by side.
    narrow = [m for m in scalars if cards[m.id][0].table is not None]
    if wide or narrow:
        st.subheader("Breakdowns", anchor=False)
    for m in wide:
        _breakdown(tier, m, tables[m.id], period, currency)
    for start in range(0, len(narrow), 2):
        for column, m in zip(st.columns(2), narrow[start:start + 2]):
            with column:
                _breakdown(tier, m, cards[m.id][0], period, currency)

    # Every number has rows behind it; a table metric only when it carries rows beyond its table.
    drillable = scalars + [m for m in wide if tables[m.id].detail is not None]
    if not drillable:
        return
    st.subheader("Behind the numbers", anchor=False)
    chosen = st.selectbox("Show the rows behind …", [m.id for m in drillable], key=f"{tier}_drill",
                          format_func=lambda mid: next(m.label for m in drillable if m.id == mid))
    metric = next(m for m in drillable if m.id == chosen)
    current = tables[metric.id] if metric.kind == "table" else state.cached(metric_rows, filters, metric.id, period)
    st.caption(metric.definition)
    if metric.kind == "scalar":
        components.trend_chart(metric, cards[metric.id][2], currency=currency, key=f"{tier}_{metric.id}_trend")
    components.data_table(current.detail, file_name=_file_name(metric, period), key=f"{tier}_{metric.id}_detail",
                          empty=f"No rows behind this number. {current.reason or ''}".strip(), currency=currency)
