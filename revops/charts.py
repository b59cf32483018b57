"""Plotly figure builders (trend, funnel, sankey, waterfall, heatmap, tornado); data in, figure out.

Builders take already-computed Polars frames and only draw: no metric arithmetic here.
"""
from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

PALETTE = {
    "primary": "#2E5BFF",
    "good": "#1B9E77",
    "bad": "#D95F02",
    "neutral": "#7F8C8D",
    "leak": "#E74C3C",
}


def _layout(fig: go.Figure, title: str | None = None, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      template="plotly_white", hovermode="x unified")
    return fig


def trend_line(frame: pl.DataFrame, x: str, y: str, title: str | None = None, unit: str = "") -> go.Figure:
    """A line of a metric over time (x dates, y values; empty values leave gaps)."""
    fig = go.Figure(go.Scatter(x=frame[x].to_list(), y=frame[y].to_list(), mode="lines+markers",
                               line=dict(color=PALETTE["primary"]), connectgaps=False, name=title or y))
    fig.update_yaxes(title=unit or None)
    return _layout(fig, title, height=220)


def metric_trend(frame: pl.DataFrame, title: str | None = None, axis: dict[str, str] | None = None,
                 x: str = "as_of", y: str = "value") -> go.Figure:
    """A metric's trend (one point per period end) with the y axis formatted in the metric's unit."""
    fig = go.Figure(go.Scatter(x=frame[x].to_list(), y=frame[y].to_list(), mode="lines+markers",
                               line=dict(color=PALETTE["primary"], width=2), marker=dict(size=6),
                               connectgaps=False, name=title or y, fill="tozeroy",
                               fillcolor="rgba(46, 91, 255, 0.08)"))
    fig.update_yaxes(rangemode="tozero", **(axis or {}))
    fig.update_xaxes(tickformat="%b %Y")
    fig.update_layout(showlegend=False)
    return _layout(fig, title, height=280)

