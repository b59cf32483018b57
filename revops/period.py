"""The time frame a view looks at: as_of, the window, the fiscal quarter, calendar helpers."""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

DEFAULT_WINDOW_DAYS = 365


def years_before(day: dt.date, years: int = 1) -> dt.date:
    """The same calendar day `years` earlier; 29 Feb falls back to 28 Feb."""
    year = day.year - years
    last = calendar.monthrange(year, day.month)[1]
    return dt.date(year, day.month, min(day.day, last))


def month_end(day: dt.date) -> dt.date:
    """Last day of the month of `day`."""
    return dt.date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def add_months(day: dt.date, months: int) -> dt.date:
    """First day of the month `months` after the month of `day`."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_ends(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every month end d with start <= d <= end."""
    out, cursor = [], month_end(start)
    while cursor <= end:
        out.append(cursor)
        cursor = month_end(add_months(cursor, 1))
    return out


def quarter_bounds(day: dt.date, fiscal_start_month: int = 1) -> tuple[dt.date, dt.date]:
    """First and last day of the fiscal quarter containing `day`."""
    offset = (day.month - fiscal_start_month) % 3
    start = add_months(dt.date(day.year, day.month, 1), -offset)
    return start, add_months(start, 3) - dt.timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """as_of and the inclusive window [start, end] that the metrics look at."""

    as_of: dt.date
    start: dt.date
    end: dt.date
    fiscal_start_month: int = 1

    @classmethod
    def ending(cls, as_of: dt.date, days: int = DEFAULT_WINDOW_DAYS, fiscal_start_month: int = 1) -> "Period":
        """The `days` days ending at as_of, as_of included."""
        return cls(as_of, as_of - dt.timedelta(days=days - 1), as_of, fiscal_start_month)

    @property
    def days(self) -> int:
        """Length of the window in days."""
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        """The period of the same length just before this one."""
        end = self.start - dt.timedelta(days=1)
        shift = self.as_of - self.end
        return Period(end + shift, end - dt.timedelta(days=self.days - 1), end, self.fiscal_start_month)

    def quarter(self) -> tuple[dt.date, dt.date]:
        """The fiscal quarter containing as_of."""
        return quarter_bounds(self.as_of, self.fiscal_start_month)

    def shifted_to(self, as_of: dt.date) -> "Period":
        """A period of the same length whose window ends at the new as_of."""
        return Period.ending(as_of, self.days, self.fiscal_start_month)
