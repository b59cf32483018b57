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
# Forecast and operating model (revops/forecast.py, revops/backtest.py, revops/operating_model.py)


def forecast_vs_target(fc: pl.DataFrame, baseline: pl.DataFrame | None = None, title: str | None = None,
                       axis: dict[str, str] | None = None) -> go.Figure:
    """Monthly bookings stacked by source (won, open pipeline, new pipeline) against the target and the baseline."""
    months = fc["month"].to_list()
    fig = go.Figure()
    parts = (("bookings_won", "Won so far", PALETTE["good"]),
             ("bookings_from_pipeline", "Open pipeline", PALETTE["primary"]),
             ("bookings_from_new_pipeline", "New pipeline", "#8FA8FF"))
    for col, name, color in parts:
        fig.add_bar(x=months, y=fc[col].to_list(), name=name, marker_color=color)
    if fc["target"].is_not_null().any():
        fig.add_scatter(x=months, y=fc["target"].to_list(), name="Target", mode="lines+markers",
                        line=dict(color=PALETTE["bad"], width=2, dash="dot"), connectgaps=False)
    if baseline is not None:
        fig.add_scatter(x=months, y=baseline["bookings"].to_list(), name="Baseline", mode="lines",
                        line=dict(color=PALETTE["neutral"], width=2, dash="dash"))
    fig.update_layout(barmode="stack", legend=dict(orientation="h", y=-0.15))
    fig.update_yaxes(rangemode="tozero", **(axis or {}))
    fig.update_xaxes(tickformat="%b %Y")
    return _layout(fig, title, height=360)


def arr_forecast(fc: pl.DataFrame, baseline: pl.DataFrame | None = None, title: str | None = None,
                 axis: dict[str, str] | None = None) -> go.Figure:
    """ARR at each month end under the levers, against the baseline."""
    fig = go.Figure()
    fig.add_scatter(x=fc["month"].to_list(), y=fc["arr"].to_list(), name="Scenario", mode="lines+markers",
                    line=dict(color=PALETTE["primary"], width=2))
    if baseline is not None:
        fig.add_scatter(x=baseline["month"].to_list(), y=baseline["arr"].to_list(), name="Baseline",
                        mode="lines", line=dict(color=PALETTE["neutral"], width=2, dash="dash"))
    fig.update_layout(legend=dict(orientation="h", y=-0.15))
    fig.update_yaxes(**(axis or {}))
    fig.update_xaxes(tickformat="%b %Y")
    return _layout(fig, title, height=300)


def tornado(sens: pl.DataFrame, output: str = "arr", title: str | None = None,
            axis: dict[str, str] | None = None) -> go.Figure:
    """Sensitivity tornado: for each lever, the change of `output` (arr or bookings) at −x % and +x %,
    the lever with the largest swing on top."""
    rows = sens.with_columns(
        down=pl.col(f"{output}_low") - pl.col(f"{output}_base"),
        up=pl.col(f"{output}_high") - pl.col(f"{output}_base"),
        swing=(pl.col(f"{output}_high") - pl.col(f"{output}_low")).abs(),
    ).sort("swing")
    labels = rows["label"].to_list()
    fig = go.Figure()
    # Colour says which way the lever moved; the bar's side says which way the number moved.
    fig.add_bar(y=labels, x=rows["down"].to_list(), orientation="h", name="Lever lowered",
                marker_color=PALETTE["neutral"])
    fig.add_bar(y=labels, x=rows["up"].to_list(), orientation="h", name="Lever raised",
                marker_color=PALETTE["primary"])
    fig.update_layout(barmode="overlay", legend=dict(orientation="h", y=-0.15), hovermode="y unified")
    fig.update_xaxes(zeroline=True, zerolinecolor="#444", **(axis or {}))
    return _layout(fig, title, height=max(220, 48 * len(labels) + 80))


def scenario_lines(long: pl.DataFrame, y: str = "cumulative", title: str | None = None,
                   axis: dict[str, str] | None = None) -> go.Figure:
    """One line per scenario (long frame: scenario, month, y)."""
    fig = go.Figure()
    for name in long["scenario"].unique(maintain_order=True).to_list():
        part = long.filter(pl.col("scenario") == name)
        fig.add_scatter(x=part["month"].to_list(), y=part[y].to_list(), name=name, mode="lines+markers")
    fig.update_layout(legend=dict(orientation="h", y=-0.15))
    fig.update_yaxes(**(axis or {}))
    fig.update_xaxes(tickformat="%b %Y")
    return _layout(fig, title, height=320)


def backtest_bars(bt: pl.DataFrame, title: str | None = None, axis: dict[str, str] | None = None) -> go.Figure:
    """Forecast against actual bookings per past quarter."""
    quarters = [d.strftime("%b %Y") for d in bt["quarter_start"].to_list()]
    fig = go.Figure()
    fig.add_bar(x=quarters, y=bt["forecast_bookings"].to_list(), name="Forecast at quarter start",
                marker_color=PALETTE["primary"])
    fig.add_bar(x=quarters, y=bt["actual_bookings"].to_list(), name="Actual", marker_color=PALETTE["good"])
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.15))
    fig.update_yaxes(rangemode="tozero", **(axis or {}))
    return _layout(fig, title, height=300)


def score_bars(scores: pl.DataFrame, title: str | None = None) -> go.Figure:
    """Operating-model scores (label, score, recommended), the recommended one highlighted."""
    colors = [PALETTE["primary"] if r else PALETTE["neutral"] for r in scores["recommended"].to_list()]
    fig = go.Figure(go.Bar(x=scores["score"].to_list(), y=scores["label"].to_list(), orientation="h",
                           marker_color=colors, text=scores["score"].to_list(), textposition="outside"))
    fig.update_layout(showlegend=False, hovermode="y")
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(zeroline=True, zerolinecolor="#444", title="points")
    return _layout(fig, title, height=240)


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
        arrangement="snap", textfont=dict(color="#1F2937", size=12),
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
    """A waterfall of steps (label, measure absolute/relative/total, amount, cents, deals); rises green, falls red."""
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
    # Zoom the axis on the levels the bars move between, or a week's changes vanish next to the totals.
    levels = [float(v) for v in steps["cents"].cum_sum().to_list()[:-1]] + [float(steps["cents"][-1])]
    low, high = min(levels) / 100, max(levels) / 100
    floor = max(0.0, low - 0.5 * (high - low)) if high > low else 0.0
    fig.update_layout(showlegend=False, hovermode="closest")
    fig.update_yaxes(range=[floor, high + 0.12 * (high - floor or high or 1)], **axis_format("money", currency))
    return _layout(fig, title, height=380)


def heatmap(frame: pl.DataFrame, x: str, y: str, z: str, title: str | None = None, zformat: str = ".0%",
            x_order: list[str] | None = None) -> go.Figure:
    """A heatmap of a long frame (one row per x, y cell); empty cells stay blank."""
    xs = x_order or frame[x].unique(maintain_order=True).to_list()
    ys = sorted(frame[y].unique().to_list())
    cells = {(r[x], r[y]): r[z] for r in frame.select(x, y, z).iter_rows(named=True)}
    matrix = [[cells.get((cx, cy)) for cx in xs] for cy in ys]
    fig = go.Figure(go.Heatmap(
        z=matrix, x=xs, y=ys, colorscale="Blues", texttemplate=f"%{{z:{zformat}}}",
        hovertemplate=f"%{{y}} · %{{x}}<br>%{{z:{zformat}}}<extra></extra>", colorbar=dict(tickformat=zformat),
        hoverongaps=False,
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    fig.update_layout(hovermode="closest")
    return _layout(fig, title, height=max(260, 26 * len(ys) + 110))
