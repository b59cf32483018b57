"""Time for the demo company: day offsets from the history start, seasonality, conversions to Polars."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

HISTORY_DAYS = 3 * 365
EPOCH = dt.date(1970, 1, 1)

# Relative deal/lead creation by calendar month: strong Q1 and autumn, summer and December dips.
MONTH_WEIGHT = np.array([1.10, 1.05, 1.15, 1.00, 1.00, 0.90, 0.72, 0.70, 1.05, 1.12, 1.00, 0.80])
# Business days carry the work; weekends see a trickle (product sign-ups, eager reps).
WEEKDAY_WEIGHT = np.array([1.0, 1.05, 1.05, 1.0, 0.9, 0.12, 0.08])
ANNUAL_GROWTH = 0.30


def rng_for(seed: int, part: int) -> np.random.Generator:
    """An independent generator per table family, so that one part's draws never shift another's."""
    return np.random.default_rng(np.random.SeedSequence([seed, part]))


@dataclass(frozen=True)
class Clock:
    """The demo's calendar: times are float days since `start` (00:00), history ends with `today`."""

    today: dt.date

    @property
    def start(self) -> dt.date:
        """First day of the history."""
        return self.today - dt.timedelta(days=HISTORY_DAYS)

    @property
    def horizon(self) -> float:
        """The end of today in day offsets: nothing happens at or after it."""
        return float((self.today - self.start).days + 1)

    @property
    def base_days(self) -> int:
        """Days from 1970-01-01 to `start`, to turn offsets into Polars dates."""
        return (self.start - EPOCH).days

    def day_of(self, day: dt.date) -> int:
        """Offset of a calendar day."""
        return (day - self.start).days

    def calendar(self, days: np.ndarray) -> np.ndarray:
        """numpy datetime64[D] of whole-day offsets."""
        return np.datetime64(self.start, "D") + np.floor(days).astype("timedelta64[D]")

    def month_weights(self, days: np.ndarray) -> np.ndarray:
        """Seasonality weight of each day offset."""
        months = self.calendar(days).astype("datetime64[M]").astype(np.int64) % 12
        return MONTH_WEIGHT[months]

    def day_weights(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Offsets first..last (inclusive) and their creation weights: growth x season x weekday."""
        days = np.arange(first, last + 1, dtype=np.float64)
        weekday = (self.calendar(days).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        growth = np.exp(ANNUAL_GROWTH * days / 365.0)
        weights = growth * self.month_weights(days) * WEEKDAY_WEIGHT[weekday]
        return days, weights / weights.sum()

    def sample_times(self, rng: np.random.Generator, n: int, first: int, last: int) -> np.ndarray:
        """n event times between day offsets first and last, with business-hours clock times."""
        days, weights = self.day_weights(first, last)
        picked = rng.choice(days, size=n, p=weights)
        hours = np.clip(rng.normal(12.5, 2.6, n), 7.0, 20.5)
        return picked + hours / 24.0

    def quarter_end(self, days: np.ndarray) -> np.ndarray:
        """Offset of the last day of the calendar quarter containing each day offset."""
        months = self.calendar(days).astype("datetime64[M]")
        month_no = months.astype(np.int64) % 12
        next_quarter = months + (3 - month_no % 3).astype("timedelta64[M]")
        last = next_quarter.astype("datetime64[D]") - np.timedelta64(1, "D")
        return (last - np.datetime64(self.start, "D")).astype(np.int64).astype(np.float64)

    def date_expr(self, col: str) -> pl.Expr:
        """Polars date of a day-offset column (nulls stay null)."""
        return (pl.col(col).floor().cast(pl.Int32) + self.base_days).cast(pl.Date)

    def ts_expr(self, col: str) -> pl.Expr:
        """Polars timestamp (whole seconds) of a day-offset column (nulls stay null)."""
        base_us = self.base_days * 86_400_000_000
        seconds = (pl.col(col) * 86_400.0).round().cast(pl.Int64)
        return (seconds * 1_000_000 + base_us).cast(pl.Datetime("us"))


def nan_to_null(values: np.ndarray) -> pl.Series:
    """A float series whose NaNs are nulls (an event that did not happen)."""
    return pl.Series(values, dtype=pl.Float64).fill_nan(None)
