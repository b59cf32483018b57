"""How numbers, changes, dates and filters read on screen: one place for every display format."""
from __future__ import annotations

import re

import datetime as dt
import math
from dataclasses import dataclass

from revops.frames import Filters
from revops.period import Period

EMPTY = "—"
CURRENCY_SYMBOLS: dict[str, str] = {
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩",
    "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "BRL": "R$", "MXN": "MX$", "ILS": "₪", "PLN": "zł ",
}
# Ratios a revenue leader quotes as multiples ("3.2× coverage"), not as percentages.
MULTIPLE_METRICS: frozenset[str] = frozenset({"pipeline_coverage", "magic_number", "ltv_to_cac"})
# Ratios that are themselves a change ("usage up 12 %"): shown with their sign.
GROWTH_METRICS: frozenset[str] = frozenset({"pipeline_creation_trend", "usage_trend"})
_SCALES: tuple[tuple[float, str], ...] = ((1e9, "B"), (1e6, "M"), (1e3, "K"))


def currency_symbol(currency: str) -> str:
    """The symbol printed before amounts of an ISO currency code ("EUR" -> "€"; unknown -> "SEK ")."""
    code = (currency or "").strip().upper()
    return CURRENCY_SYMBOLS.get(code, f"{code} " if code else "")


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def abbreviate(value: float) -> str:
    """A magnitude in at most three significant digits with K/M/B (1_250_000 -> "1.25M"); no sign."""
    size = abs(value)
    for i, (scale, suffix) in enumerate(_SCALES):
        if size >= scale * 0.9995:
            scaled = size / scale
            text = _trim(f"{scaled:.{2 if scaled < 10 else 1 if scaled < 100 else 0}f}")
            # 999.96K rounds to "1000K": say "1M" instead.
            if float(text) >= 1000 and i > 0:
                return _trim(f"{float(text) / 1000:.2f}") + _SCALES[i - 1][1]
            return text + suffix
    return f"{size:,.0f}" if size >= 10 or size == 0 else _trim(f"{size:.2f}")


def _sign(value: float, signed: bool) -> str:
    if value < 0:
        return "-"
    return "+" if signed else ""


def _money(value: float, currency: str, signed: bool = False) -> str:
    return f"{_sign(value, signed)}{currency_symbol(currency)}{abbreviate(value)}"


def _number(value: float, decimals: int, signed: bool = False) -> str:
    return f"{_sign(value, signed)}{abs(value):,.{decimals}f}"


def _duration(value: float, unit: str, signed: bool = False) -> str:
    # Short durations keep a decimal (3.5 days); long ones read better whole (142 days).
    decimals = 1 if abs(value) < (100 if unit == "months" else 10) else 0
    number = _number(value, decimals, signed)
    singular = round(abs(value), decimals) == 1
    return f"{number} {unit[:-1] if singular else unit}"


def _minutes(value: float, signed: bool = False) -> str:
    size = abs(value)
    if size < 60:
        return f"{_number(value, 1 if size < 10 else 0, signed)} min"
    if size < 48 * 60:
        return f"{_number(value / 60, 1, signed)} h"
    return _duration(value / (24 * 60), "days", signed)


def is_empty(value: float | None) -> bool:
    """Whether a metric value is missing (None or NaN): shown as a dash, never as 0."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def display_unit(unit: str, metric_id: str = "") -> str:
    """The unit a value is shown in: the registry's unit, except multiples and growth rates among ratios."""
    if unit == "ratio" and metric_id in MULTIPLE_METRICS:
        return "multiple"
    if unit == "ratio" and metric_id in GROWTH_METRICS:
        return "growth"
    return unit


def format_value(value: float | None, unit: str, currency: str = "USD", *, signed: bool = False) -> str:
    """A metric value for a card: "$1.25M", "87.5%", "3.2×", "42 days", "18 min", "1,234"; empty is "—"."""
    if is_empty(value):
        return EMPTY
    v = float(value)
    if unit == "money":
        return _money(v, currency, signed)
    if unit == "money/day":
        return f"{_money(v, currency, signed)}/day"
    if unit in ("ratio", "growth"):
        return f"{_number(v * 100, 1, signed or unit == 'growth')}%"
    if unit == "multiple":
        return f"{_number(v, 1 if abs(v) >= 10 else 2, signed)}×"
    if unit in ("days", "months", "hours"):
        return _duration(v, unit, signed)
    if unit == "minutes":
        return _minutes(v, signed)
    if unit == "count":
        return _number(v, 0, signed)
    return _number(v, 1, signed)  # score and anything unnamed


@dataclass(frozen=True)
class Delta:
    """The change of a metric against the previous period: text for the card and its direction."""

    text: str
    direction: int  # +1 up, -1 down, 0 unchanged at display precision


def delta(current: float | None, previous: float | None, unit: str, currency: str = "USD") -> Delta | None:
    """Current minus previous as a signed card delta ("+$120K (+12%)", "-3.1 pts"); None when either is empty."""
    if is_empty(current) or is_empty(previous):
        return None
    change = float(current) - float(previous)
    if unit in ("ratio", "growth"):
        # A change of a rate is read in percentage points, not as a percent of a percent.
        text = f"{_number(change * 100, 1, True)} pts"
    else:
        text = format_value(change, unit, currency, signed=True)
        if unit in ("money", "count") and float(previous) > 0:
            text += f" ({format_value(change / float(previous), 'ratio', signed=True)})"
    head = text.split(" (")[0]
    if not any(c in "123456789" for c in head):
        # Rounds to zero at display precision: a grey "0", not a green "+0.0".
        return Delta(head.lstrip("+-"), 0)
    return Delta(text, 1 if change > 0 else -1)


def format_date(day: dt.date) -> str:
    """A date as a leader reads it: "31 Mar 2025"."""
    return f"{day.day} {day:%b %Y}"


def describe_period(period: Period) -> str:
    """One line for a page caption: as-of date, window and what the change compares with."""
    window = f"{format_date(period.start)} – {format_date(period.end)}"
    days = f"{period.days} day" + ("" if period.days == 1 else "s")
    return (f"As of **{format_date(period.as_of)}** · window {window} ({days}) · "
            f"changes compare with the {days} before")


def markdown_text(text: str) -> str:
    """User text made inert for st.markdown/st.caption: no links, images or emphasis from uploaded names."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", text)


def describe_filters(filters: Filters) -> str:
    """The active filters in words ("Segment: Enterprise · Owner: Ana, Bo"), or "All data"; safe for markdown."""
    parts = [f"{dim.capitalize()}: {markdown_text(', '.join(values))}"
             for dim in ("segment", "region", "owner", "source")
             if (values := getattr(filters, dim))]
    return " · ".join(parts) if parts else "All data"


_MONEY_WORDS = frozenset({"amount", "arr", "mrr", "acv", "spend", "revenue", "bookings", "target"})
_RATIO_WORDS = frozenset({"rate", "share", "ratio", "pct", "adoption", "quality", "probability", "weight", "coverage"})
_UPPER_WORDS = frozenset({"arr", "mrr", "acv", "id", "sla", "cac", "ltv", "nrr", "grr", "mql", "sql", "pql", "p90"})


def column_unit(name: str) -> str | None:
    """The unit a numeric column of a drill-down table is read in, from its name: "money", "ratio" or None."""
    words = name.lower().split("_")
    if _MONEY_WORDS.intersection(words):
        return "money"
    if words[-1] in _RATIO_WORDS:
        return "ratio"
    return None


def column_label(name: str) -> str:
    """A column header a leader reads: "arr_then" -> "ARR then", "opportunity_id" -> "Opportunity ID"."""
    words = [w.upper() if w in _UPPER_WORDS else w for w in name.split("_") if w]
    text = " ".join(words) or name
    return text[0].upper() + text[1:]


def axis_format(unit: str, currency: str = "USD") -> dict[str, str]:
    """Plotly y-axis tick settings that match format_value for a unit."""
    if unit in ("money", "money/day"):
        return {"tickprefix": currency_symbol(currency), "tickformat": "~s"}
    if unit in ("ratio", "growth"):
        return {"tickformat": ".0%"}
    if unit == "multiple":
        return {"ticksuffix": "×", "tickformat": ".1f"}
    if unit in ("days", "months", "minutes", "hours"):
        return {"ticksuffix": f" {unit}" if unit != "minutes" else " min", "tickformat": ",.0f"}
    return {"tickformat": ",.0f" if unit == "count" else ",.1f"}
