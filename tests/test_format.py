"""Display formats: values by unit, changes against the previous period, captions."""
from __future__ import annotations

import datetime as dt

import pytest

from revops.format import (EMPTY, Delta, abbreviate, axis_format, column_label, column_unit, currency_symbol, delta,
                           describe_filters, describe_period, display_unit, format_value)
from revops.frames import Filters
from revops.period import Period


@pytest.mark.parametrize("value, text", [
    (1_250_000, "1.25M"),   # 1.25 × 10^6
    (830_000, "830K"),      # 830 × 10^3
    (12_500, "12.5K"),
    (999_960, "1M"),        # 999.96K rounds to 1000K: shown as the next scale
    (2_000_000_000, "2B"),
    (412.4, "412"),
    (5.5, "5.5"),
    (0, "0"),
])
def test_abbreviate(value, text):
    """Large magnitudes read in three significant digits with K/M/B."""
    assert abbreviate(value) == text


def test_money_uses_the_workspace_currency():
    """Money carries the symbol of the settings' currency, sign first when negative."""
    assert format_value(1_250_000, "money", "USD") == "$1.25M"
    assert format_value(830_000, "money", "EUR") == "€830K"
    assert format_value(-120_000, "money", "GBP") == "-£120K"
    assert format_value(1500, "money", "SEK") == "SEK 1.5K"


def test_unknown_currency_code_is_printed():
    """An unlisted currency code is printed in front of the number rather than guessed."""
    assert currency_symbol("chf") == "CHF "


@pytest.mark.parametrize("value, unit, text", [
    (0.8734, "ratio", "87.3%"),
    (3.214, "multiple", "3.21×"),
    (42.3, "days", "42 days"),
    (3.5, "days", "3.5 days"),
    (1.0, "days", "1.0 day"),
    (14.24, "months", "14.2 months"),
    (18, "minutes", "18 min"),
    (300, "minutes", "5.0 h"),        # 300 / 60
    (4320, "minutes", "3.0 days"),    # 4320 / 1440
    (1234, "count", "1,234"),
    (67.44, "score", "67.4"),
    (85.2, "money/day", "$85/day"),
])
def test_units(value, unit, text):
    """Each unit has one display format."""
    assert format_value(value, unit) == text


@pytest.mark.parametrize("value", [None, float("nan")])
def test_empty_value_is_a_dash(value):
    """A missing value shows as the dash, never as 0."""
    assert format_value(value, "money") == EMPTY


def test_coverage_reads_as_a_multiple():
    """Coverage-like ratios are quoted as multiples; other ratios stay percentages."""
    assert display_unit("ratio", "pipeline_coverage") == "multiple"
    assert display_unit("ratio", "win_rate") == "ratio"


def test_money_delta_shows_amount_and_percent():
    """A money change shows the amount and the relative change: 1.2M − 1.0M = +200K, +20%."""
    assert delta(1_200_000, 1_000_000, "money") == Delta("+$200K (+20.0%)", 1)


def test_ratio_delta_is_in_points():
    """A rate change is in percentage points: 50% − 52% = −2.0 pts."""
    assert delta(0.50, 0.52, "ratio") == Delta("-2.0 pts", -1)


def test_delta_rounding_to_zero_is_unchanged():
    """A change invisible at display precision has no direction (no green +0.0)."""
    assert delta(0.5, 0.50001, "ratio") == Delta("0.0 pts", 0)


def test_delta_with_empty_side_is_none():
    """No change is claimed when either period has no value."""
    assert delta(None, 3, "count") is None
    assert delta(3, None, "count") is None


def test_delta_without_previous_base_skips_percent():
    """From a zero previous value only the amount is shown (no division by zero): 5 − 0 = +5."""
    assert delta(5, 0, "count") == Delta("+5", 1)


def test_describe_period():
    """The caption names as-of, the window and its length."""
    period = Period.ending(dt.date(2025, 3, 31), 365)
    text = describe_period(period)
    assert "31 Mar 2025" in text and "1 Apr 2024 – 31 Mar 2025" in text and "365 days" in text


def test_describe_filters():
    """Active filters are listed by dimension; none means all data."""
    assert describe_filters(Filters()) == "All data"
    assert describe_filters(Filters(segment=("Enterprise",), owner=("Ana", "Bo"))) == \
        "Segment: Enterprise · Owner: Ana, Bo"


def test_axis_format_matches_units():
    """Chart axes use the same units as the cards."""
    assert axis_format("money", "EUR") == {"tickprefix": "€", "tickformat": "~s"}
    assert axis_format("ratio") == {"tickformat": ".0%"}


def test_growth_rates_carry_their_sign():
    """A ratio that is itself a change reads signed: 0.123 -> +12.3%, -0.05 -> -5.0%."""
    assert display_unit("ratio", "usage_trend") == "growth"
    assert format_value(0.123, "growth") == "+12.3%"
    assert format_value(-0.05, "growth") == "-5.0%"


@pytest.mark.parametrize("name, unit", [
    ("amount", "money"), ("arr_then", "money"), ("prev_mrr", "money"), ("weighted_amount", "money"),
    ("rate", "ratio"), ("cumulative_rate", "ratio"), ("filled_share", "ratio"), ("adoption", "ratio"),
    ("median_days", None), ("entered", None), ("response_minutes", None), ("value", None),
])
def test_column_unit(name, unit):
    """Drill-down columns named for money or a share are formatted as such; others stay plain numbers."""
    assert column_unit(name) == unit


def test_column_label():
    """Headers read as words with acronyms upper-case."""
    assert column_label("arr_then") == "ARR then"
    assert column_label("opportunity_id") == "Opportunity ID"
    assert column_label("median_days") == "Median days"


def test_uploaded_names_in_filter_captions_cannot_become_links_or_images():
    """A filter value like ![x](http://…) is shown as text, not rendered as an external image."""
    from revops.format import describe_filters
    from revops.frames import Filters
    text = describe_filters(Filters(owner=("![x](http://e.com/p.png)",)))
    assert "![x](" not in text and "\\!\\[x\\]\\(" in text
