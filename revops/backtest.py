"""How far to trust the forecast: past quarters forecast from what was known at their start, against what happened."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.forecast import known_deals, prepare_bookings, project
from revops.frames import Frames
from revops.metrics.common import won_between
from revops.period import Period, quarter_bounds

DEFAULT_QUARTERS = 4

_SCHEMA = {
    "quarter_start": pl.Date, "quarter_end": pl.Date, "forecast_bookings": pl.Float64,
    "bookings_from_pipeline": pl.Float64, "bookings_from_new_pipeline": pl.Float64, "actual_bookings": pl.Float64,
    "bookings_error": pl.Float64, "abs_error_pct": pl.Float64,
    "note": pl.String,
}


def past_quarters(as_of: dt.date, n: int, fiscal_start_month: int = 1) -> list[tuple[dt.date, dt.date]]:
    """The last n fiscal quarters that ended on or before as_of, oldest first."""
    start, end = quarter_bounds(as_of, fiscal_start_month)
    if end > as_of:
        start, end = quarter_bounds(start - dt.timedelta(days=1), fiscal_start_month)
    out = []
    for _ in range(n):
        out.append((start, end))
        start, end = quarter_bounds(start - dt.timedelta(days=1), fiscal_start_month)
    return out[::-1]


def backtest(frames: Frames, period: Period, quarters: int = DEFAULT_QUARTERS) -> pl.DataFrame:
    """For each of the last `quarters` whole quarters: the baseline forecast made the day before it began
    (from the data as known then, window of the same length) against the bookings actually won in it.

    bookings_error = forecast − actual; abs_error_pct = |error| ÷ actual (empty when nothing was won).
    A quarter with no closed deal in the window before it has no win rate to forecast from:
    its forecast is empty and the note says so.
    """
    truth = known_deals(frames, period.as_of)
    spans = past_quarters(period.as_of, quarters, period.fiscal_start_month)
    actuals = [float(won_between(truth, start, end)["amount"].sum()) for start, end in spans]
    del truth  # the forecasts below rebuild other days: one rebuilt deals table fewer held at once
    rows = []
    for (start, end), actual in zip(spans, actuals, strict=True):
        inputs = prepare_bookings(frames, period.shifted_to(start - dt.timedelta(days=1)))
        row = {"quarter_start": start, "quarter_end": end, "actual_bookings": actual}
        if "win_rate" in inputs.gaps:
            rows.append({**row, "note": "No deal had closed in the window before this quarter began."})
            continue
        fc = project(inputs, inputs.baseline).filter(pl.col("quarter_start") == start)
        forecast = float(fc["bookings"].sum())
        error = forecast - actual
        rows.append({**row, "forecast_bookings": forecast,
                     "bookings_from_pipeline": float(fc["bookings_from_pipeline"].sum()),
                     "bookings_from_new_pipeline": float(fc["bookings_from_new_pipeline"].sum()),
                     "bookings_error": error, "abs_error_pct": abs(error) / actual if actual > 0 else None,
                     "note": None if actual > 0 else "Nothing was won in this quarter: no percentage error."})
    return pl.DataFrame(rows, schema=_SCHEMA)


def mean_abs_pct_error(bt: pl.DataFrame) -> float | None:
    """Mean of the quarters' absolute % errors (None when no quarter has one)."""
    errors = bt["abs_error_pct"].drop_nulls()
    return float(errors.mean()) if errors.len() else None  # type: ignore[arg-type]


def accuracy_sentence(bt: pl.DataFrame) -> str:
    """One sentence on how far the forecast can be trusted."""
    mape = mean_abs_pct_error(bt)
    n = bt["abs_error_pct"].drop_nulls().len()
    if mape is None:
        return ("There is not enough history to test the forecast yet: no past quarter had both closed deals "
                "before it and bookings in it.")
    quarters = "quarter" if n == 1 else f"{n} quarters"
    return f"On the last {quarters} the forecast was off by {mape * 100:.1f} % on average."


__all__ = ["DEFAULT_QUARTERS", "accuracy_sentence", "backtest", "mean_abs_pct_error", "past_quarters"]
