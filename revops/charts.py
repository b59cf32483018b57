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



# ---------------------------------------------------------------------------------------
# Customer journey: funnel, Sankey, waterfall, heatmap (revops/funnel.py, handoffs.py, pipeline_review.py)

_NODE_COLORS: dict[str, str] = {
    "stage": PALETTE["primary"], "leak": PALETTE["leak"], "progress": "#B0BEC5", "exit": "#CFD8DC",
    "bridge_in": "#90A4AE", "bridge_out": "#90A4AE", "end": PALETTE["good"],
}


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


def funnel_chart(frame: pl.DataFrame, stage: str = "stage", value: str = "entered", share: str = "cumulative_rate",
                 title: str | None = None, unit: str = "deals") -> go.Figure:
    """A funnel of records per stage, each bar labelled with its count and its share of the first stage."""
    shares = [s if s is not None else float("nan") for s in frame[share].to_list()]
    fig = go.Figure(go.Funnel(
        y=frame[stage].to_list(), x=frame[value].to_list(), customdata=shares,
        texttemplate="%{value:,} · %{customdata:.0%}", textposition="inside",
        hovertemplate=f"%{{y}}<br>%{{x:,}} {unit}<br>%{{customdata:.1%}} of the cohort<extra></extra>",
        marker=dict(color=PALETTE["primary"]), connector=dict(fillcolor="rgba(46, 91, 255, 0.08)"),
    ))
    fig.update_layout(hovermode="closest")
    return _layout(fig, title, height=max(260, 56 * frame.height + 60))


def sankey(nodes: pl.DataFrame, links: pl.DataFrame, title: str | None = None) -> go.Figure:
    """A Sankey of nodes (id, label, kind, value) and links (source, target, value, label); leaks in red."""
    kinds = nodes["kind"].to_list()
    colors = [_NODE_COLORS.get(k, PALETTE["neutral"]) for k in kinds]
    link_colors = [_rgba(colors[t], 0.35) for t in links["target"].to_list()]
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node=dict(label=[f"{lab} ({v:,})" for lab, v in zip(nodes["label"].to_list(), nodes["value"].to_list())],
                  color=colors, pad=18, thickness=16, line=dict(width=0),
                  hovertemplate="%{label}<extra></extra>"),
        link=dict(source=links["source"].to_list(), target=links["target"].to_list(), value=links["value"].to_list(),
                  customdata=links["label"].to_list(), color=link_colors,
                  hovertemplate="%{source.label} → %{target.label}<br>%{value:,} %{customdata}<extra></extra>"),
    ))
    fig.update_layout(hovermode="closest", font=dict(size=12))
    return _layout(fig, title, height=520)


def waterfall(steps: pl.DataFrame, title: str | None = None, currency: str = "USD") -> go.Figure:
    """A waterfall of steps (label, measure absolute/relative/total, amount, deals): rises green, falls orange."""
    from revops.format import axis_format, format_value  # here, so this appended block leaves the header alone

    amounts = steps["amount"].to_list()
    measures = steps["measure"].to_list()
    text = [format_value(a, "money", currency, signed=m == "relative") for a, m in zip(amounts, measures)]
    fig = go.Figure(go.Waterfall(
        x=steps["label"].to_list(), y=amounts, measure=measures, text=text, textposition="outside",
        customdata=steps["deals"].to_list(),
        hovertemplate="%{x}<br>%{text}<br>%{customdata:,} deals<extra></extra>",
        increasing=dict(marker=dict(color=PALETTE["good"])), decreasing=dict(marker=dict(color=PALETTE["bad"])),
        totals=dict(marker=dict(color=PALETTE["primary"])), connector=dict(line=dict(color="#B0BEC5", width=1)),
    ))
    fig.update_layout(showlegend=False, hovermode="closest")
    fig.update_yaxes(**axis_format("money", currency))
    return _layout(fig, title, height=380)


def heatmap(frame: pl.DataFrame, x: str, y: str, z: str, title: str | None = None, zformat: str = ".0%",
            x_order: list[str] | None = None) -> go.Figure:
    """A heatmap of a long frame (one row per x, y cell); empty cells stay blank."""
    xs = x_order or frame[x].unique(maintain_order=True).to_list()
    ys = sorted(frame[y].unique().to_list())
    cells = {(r[x], r[y]): r[z] for r in frame.select(x, y, z).iter_rows(named=True)}
    matrix = [[cells.get((cx, cy)) for cx in xs] for cy in ys]
    fig = go.Figure(go.Heatmap(
        z=matrix, x=xs, y=ys, colorscale="Blues", zmin=0, texttemplate=f"%{{z:{zformat}}}",
        hovertemplate=f"%{{y}} · %{{x}}<br>%{{z:{zformat}}}<extra></extra>", colorbar=dict(tickformat=zformat),
        hoverongaps=False,
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    fig.update_layout(hovermode="closest")
    return _layout(fig, title, height=max(260, 26 * len(ys) + 110))
