"""Widgets shared by the metric pages: card grid, empty-with-reason, trend chart, drill-down table."""
from __future__ import annotations

import functools
from collections.abc import Sequence

import polars as pl
import streamlit as st

from revops import charts
from revops.export import to_csv_bytes
from revops.format import (EMPTY, axis_format, column_label, column_unit, currency_symbol, delta, display_unit,
                           format_value, is_empty)
from revops.metrics.registry import Metric, MetricResult

CARDS_PER_ROW = 4


def delta_color(metric: Metric) -> str:
    """Green for the good direction: "normal" when higher is better, "inverse" when lower is."""
    return "normal" if metric.higher_is_better else "inverse"


def spark_values(trend: pl.DataFrame | None) -> list[float] | None:
    """The trend's values for a sparkline (gaps as NaN), or None when fewer than three are known."""
    if trend is None or trend.height == 0 or "value" not in trend.columns:
        return None
    values = trend["value"].cast(pl.Float64)
    # Two points make a stub of a line that reads as a glitch, not a trend.
    if values.drop_nulls().drop_nans().len() < 3:
        return None
    return values.fill_null(float("nan")).to_list()


def empty_with_reason(reason: str | None) -> None:
    """Why a number is missing, in words under the dash (never a silent 0)."""
    st.caption(f":material/info: {reason or 'No value for this selection.'}")


def metric_card(metric: Metric, current: MetricResult, previous: MetricResult | None, *,
                currency: str, trend: pl.DataFrame | None = None) -> None:
    """One bordered card: value by unit, change against the previous period, definition on hover, sparkline."""
    unit = display_unit(metric.unit, metric.id)
    change = delta(current.value, previous.value if previous else None, unit, currency)
    with st.container(border=True, height="stretch"):
        kwargs: dict = {}
        if change is not None:
            kwargs = {"delta": change.text, "delta_color": delta_color(metric) if change.direction else "off"}
            if not change.direction:
                kwargs["delta_arrow"] = "off"
        spark = spark_values(trend)
        if spark is not None and not is_empty(current.value):
            kwargs["chart_data"] = spark
            kwargs["chart_type"] = "area"
            kwargs.setdefault("delta_color", "blue")
        st.metric(metric.label, format_value(current.value, unit, currency), help=metric.definition, **kwargs)
        if is_empty(current.value):
            empty_with_reason(current.reason)
        elif change is None:
            why = f": {previous.reason}" if previous and previous.reason else ""
            st.caption(f"No value for the previous period{why}".rstrip(".") + ".")


def card_grid(cards: Sequence[tuple[Metric, MetricResult, MetricResult | None, pl.DataFrame | None]], *,
              currency: str, per_row: int = CARDS_PER_ROW) -> None:
    """Cards in rows of `per_row` columns (the last row keeps the same card width)."""
    for start in range(0, len(cards), per_row):
        columns = st.columns(per_row)
        for column, (metric, current, previous, trend) in zip(columns, cards[start:start + per_row]):
            with column:
                metric_card(metric, current, previous, currency=currency, trend=trend)


def trend_chart(metric: Metric, trend: pl.DataFrame | None, *, currency: str, key: str) -> None:
    """The metric over the last points (one per period end), or why there is no line."""
    if trend is None or trend.height == 0 or trend["value"].drop_nulls().len() == 0:
        st.caption(f"No trend for {metric.label}: no value at any of the earlier period ends.")
        return
    unit = display_unit(metric.unit, metric.id)
    title = f"{metric.label} at each of the last {trend.height} month ends"
    fig = charts.metric_trend(trend, title=title, axis=axis_format(unit, currency))
    st.plotly_chart(fig, key=key, config={"displayModeBar": False})


def download_csv(frame: pl.DataFrame, *, file_name: str, key: str, label: str = "Download CSV") -> None:
    """A download button whose CSV is built on click, with spreadsheet formulas escaped."""
    st.download_button(label, data=functools.partial(to_csv_bytes, frame), file_name=file_name,
                       mime="text/csv", key=key, on_click="ignore", icon=":material/download:")


def column_config(frame: pl.DataFrame, currency: str) -> dict:
    """Readable headers and number formats for a drill-down table (the CSV keeps the raw names and values)."""
    config: dict = {}
    for name, dtype in frame.schema.items():
        label = column_label(name)
        if dtype.is_numeric():
            unit = column_unit(name)
            if unit == "money":
                fmt = f"{currency_symbol(currency)}%,.0f"
            elif unit == "ratio":
                fmt = "percent"
            else:
                fmt = "%,d" if dtype.is_integer() else "%,.1f"
            config[name] = st.column_config.NumberColumn(label, format=fmt)
        elif dtype == pl.Datetime:
            config[name] = st.column_config.DatetimeColumn(label, format="D MMM YYYY, HH:mm")
        elif dtype == pl.Date:
            config[name] = st.column_config.DateColumn(label, format="D MMM YYYY")
        else:
            config[name] = st.column_config.Column(label)
    return config


# A table widget sends every row it is given to the browser on every run: past a few thousand rows
# (a million-deal pipeline has hundreds of thousands of open deals) that costs seconds and nobody
# scrolls that far. The first rows are shown; the CSV download always has all of them.
MAX_SHOWN_ROWS = 5_000


def shown(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows a table widget shows: all of them up to MAX_SHOWN_ROWS, else the first MAX_SHOWN_ROWS."""
    return frame.head(MAX_SHOWN_ROWS) if frame.height > MAX_SHOWN_ROWS else frame


def count_note(frame: pl.DataFrame, unit: str = "row", units: str | None = None) -> str:
    """How many rows a table has, and that only the first are shown when it is cut (the CSV has all)."""
    plural = units or f"{unit}s"
    total = f"{frame.height:,} {unit if frame.height == 1 else plural}"
    if frame.height > MAX_SHOWN_ROWS:
        return f"{total}; the first {MAX_SHOWN_ROWS:,} are shown, the CSV has all of them"
    return total


def data_table(frame: pl.DataFrame | None, *, file_name: str, key: str, empty: str, currency: str = "USD") -> None:
    """A frame as an interactive table with its CSV download, or a sentence when it has no rows."""
    if frame is None or frame.height == 0:
        st.caption(f":material/info: {empty}")
        return
    st.dataframe(shown(frame), hide_index=True, key=f"{key}_table", height=min(38 + 35 * frame.height, 420),
                 column_config=column_config(frame, currency), placeholder=EMPTY)
    with st.container(horizontal=True, vertical_alignment="center"):
        download_csv(frame, file_name=file_name, key=f"{key}_csv")
        st.caption(count_note(frame))


def breakdown(metric: Metric, result: MetricResult, *, file_name: str, key: str, currency: str) -> None:
    """A table metric (or a metric's per-item breakdown) under its label and definition."""
    st.markdown(f"**{metric.label}**", help=metric.definition)
    frame = result.table if result.table is not None else result.detail
    reason = result.reason or "No rows for this selection."
    data_table(frame, file_name=file_name, key=key, empty=reason, currency=currency)
