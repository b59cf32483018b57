"""Leading tier on tiny hand-made tables, each expected value worked out in the test."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops.frames import Frames, empty_frames, frames_from_tables
from revops.metrics import compute
from revops.period import Period
from tests.tables import subs, usage

D, T = dt.date, dt.datetime
AS_OF = D(2024, 6, 30)
PERIOD = Period(AS_OF, D(2024, 1, 1), AS_OF)
# The 28 days to as-of are 3–30 June; the 28 before them 6 May – 2 June; the 84 before them 11 Mar – 2 June.


def value(metric_id: str, f: Frames, period: Period = PERIOD) -> float | None:
    return compute(metric_id, f, period).value


def deals(*rows: tuple[dt.date, float | None]) -> Frames:
    """Opportunities from (created_at, amount) rows."""
    return frames_from_tables({"opportunities": pl.DataFrame(
        {"opportunity_id": [f"o{i}" for i in range(len(rows))], "stage": ["Prospecting"] * len(rows),
         "created_at": [r[0] for r in rows], "amount": [r[1] for r in rows]},
        schema={"opportunity_id": pl.String, "stage": pl.String, "created_at": pl.Date, "amount": pl.Float64})})


NOTHING = empty_frames()


# ---------------------------------------------------------------------------------------
# pipeline creation


def test_pipeline_created_sums_deals_created_in_the_window():
    """1000 (1 Jan, first day) + 500 (30 Jun, last day); 31 Dec is outside; unknown amounts are left out."""
    f = deals((D(2024, 1, 1), 1000.0), (D(2024, 6, 30), 500.0), (D(2023, 12, 31), 9999.0), (D(2024, 3, 1), None))
    assert value("pipeline_created", f) == 1500.0


def test_pipeline_created_without_deals_is_empty():
    """No opportunities loaded: empty."""
    assert compute("pipeline_created", NOTHING, PERIOD).reason == "No opportunities loaded"


def test_pipeline_creation_trend_compares_28_days_with_the_84_before_over_3():
    """Recent 300 + 300 = 600; before 600 + 300 = 900, ÷ 3 = 300; 600 ÷ 300 − 1 = +100 %."""
    f = deals((D(2024, 6, 3), 300.0), (D(2024, 6, 30), 300.0),        # the 28 days
              (D(2024, 3, 11), 600.0), (D(2024, 6, 2), 300.0),        # the 84 days before
              (D(2024, 3, 10), 9999.0))                               # one day too early
    assert value("pipeline_creation_trend", f) == pytest.approx(1.0)


def test_pipeline_creation_trend_without_a_baseline_is_empty():
    """Nothing created in the 84 days before: empty, naming them."""
    r = compute("pipeline_creation_trend", deals((D(2024, 6, 10), 300.0)), PERIOD)
    assert r.value is None and r.reason == "No pipeline created from 2024-03-11 to 2024-06-02"


# ---------------------------------------------------------------------------------------
# usage trend


def test_usage_trend_compares_active_users_of_the_last_28_days_with_the_28_before():
    """Now 10 + 5 + 15 = 30; before 20 + 20 = 40 (5 May is outside); 30 ÷ 40 − 1 = −25 %."""
    u = usage(("a", D(2024, 6, 3), "x", 10, None), ("a", D(2024, 6, 30), "x", 5, None),
              ("b", D(2024, 6, 15), "x", 15, None),
              ("a", D(2024, 5, 6), "x", 20, None), ("b", D(2024, 6, 2), "x", 20, None),
              ("a", D(2024, 5, 5), "x", 999, None))
    assert value("usage_trend", frames_from_tables({"usage": u})) == pytest.approx(-0.25)


def test_usage_trend_without_users_before_is_empty():
    """No active users in the earlier 28 days: empty."""
    u = usage(("a", D(2024, 6, 3), "x", 10, None))
    r = compute("usage_trend", frames_from_tables({"usage": u}), PERIOD)
    assert r.value is None and r.reason == "No active users from 2024-05-06 to 2024-06-02"


# ---------------------------------------------------------------------------------------
# engagement score


def _engagement() -> Frames:
    u = usage(
        ("a", D(2024, 6, 30), "reports", 4, None),   # today: week 0
        ("a", D(2024, 6, 20), "api", 2, None),       # 10 days ago: week 1
        ("a", D(2024, 5, 20), "reports", 6, None),   # the 28 days before
        ("b", D(2024, 6, 16), "reports", None, 10),  # 14 days ago: week 2; no users, so events count
        ("z", D(2024, 6, 30), "reports", 100, None),  # z is not paying: not scored
    )
    return frames_from_tables({"subscriptions": subs(("a", 10.0), ("b", 10.0), ("c", 10.0), ("z", 10.0, D(2024, 1, 1))),
                               "usage": u})


def test_engagement_scores_recency_frequency_breadth_and_trend():
    """a: recency 1, frequency 2/4, breadth 2/2, trend ½ × 6/6 → 25 × 3 = 75.
    b: recency 1 − 14/28 = ½, frequency ¼, breadth ½, trend 1 (none before) → 25 × 2.25 = 56.25.
    c: no usage → 0. Mean over a, b, c = (75 + 56.25 + 0) ÷ 3 = 43.75."""
    r = compute("engagement_score", _engagement(), PERIOD)
    assert r.value == pytest.approx(43.75)
    assert r.detail is not None
    assert dict(zip(r.detail["account_id"], r.detail["score"])) == pytest.approx({"a": 75.0, "b": 56.25, "c": 0.0})


def test_engagement_without_usage_is_empty():
    """No usage loaded: empty rather than every account at 0."""
    f = frames_from_tables({"subscriptions": subs(("a", 10.0))})
    assert compute("engagement_score", f, PERIOD).reason == "No usage loaded"


def test_engagement_without_active_accounts_is_empty():
    """Usage but nobody paying: empty."""
    f = frames_from_tables({"usage": usage(("a", D(2024, 6, 30), "reports", 4, None))})
    assert compute("engagement_score", f, PERIOD).reason == "No active accounts at as-of"


def test_engagement_definition_states_the_formula():
    """The app shows the formula: the definition names its four parts and their scale."""
    from revops.metrics import BY_ID
    text = BY_ID["engagement_score"].definition
    assert all(word in text for word in ("recency", "frequency", "breadth", "trend", "0–100", "25 points"))


# ---------------------------------------------------------------------------------------
# ARR at risk


def test_at_risk_arr_sums_accounts_with_any_risk_signal():
    """h health 40 (1200), u users −40 % (2400), r renewal on day 90 without outreach (3600) = 7200.
    Not at risk: v −20 %, s approached, t renewal on day 91, x renewal on as-of itself, n not paying."""
    f = frames_from_tables({
        "subscriptions": subs(("h", 100.0), ("u", 200.0), ("v", 50.0), ("r", 300.0), ("s", 400.0), ("t", 500.0),
                              ("x", 20.0), ("n", 999.0, D(2024, 1, 1))),
        "lifecycle": pl.DataFrame({
            "account_id": ["h", "v", "r", "s", "t", "x", "n"],
            "health_score": [40.0, 80.0, None, None, None, None, 10.0],
            "renewal_date": [None, None, D(2024, 9, 28), D(2024, 7, 15), D(2024, 9, 29), D(2024, 6, 30), None],
            "renewal_outreach_at": [None, None, None, T(2024, 6, 1), None, None, None],
        }),
        "usage": usage(("u", D(2024, 6, 10), None, 6, None), ("u", D(2024, 5, 10), None, 10, None),
                       ("v", D(2024, 6, 10), None, 8, None), ("v", D(2024, 5, 10), None, 10, None)),
    })
    r = compute("at_risk_arr", f, PERIOD)
    assert r.value == 7200.0
    assert r.detail is not None and sorted(r.detail["account_id"]) == ["h", "r", "u"]


def test_at_risk_arr_without_subscriptions_is_empty():
    """No subscriptions: empty."""
    assert compute("at_risk_arr", NOTHING, PERIOD).reason == "No subscriptions loaded"


# ---------------------------------------------------------------------------------------
# PQLs and renewal outreach


def test_pql_count_counts_leads_qualified_by_product_in_the_window():
    """pql_at 10 Apr and 5 Jan are in the window, 31 Dec is not: 2 (whenever the lead was created)."""
    leads = pl.DataFrame({"lead_id": ["1", "2", "3", "4"], "created_at": [T(2024, 1, 1), T(2023, 12, 1),
                                                                          T(2023, 12, 1), T(2024, 1, 1)],
                          "pql_at": [T(2024, 4, 10), T(2024, 1, 5), T(2023, 12, 31), None]})
    assert value("pql_count", frames_from_tables({"leads": leads})) == 2


def test_pql_count_with_leads_but_no_pql_is_zero():
    """Leads loaded, none product-qualified: a real 0."""
    leads = pl.DataFrame({"lead_id": ["1"], "created_at": [T(2024, 1, 1)]})
    assert value("pql_count", frames_from_tables({"leads": leads})) == 0


def test_pql_count_without_leads_is_empty():
    """No leads loaded: empty."""
    assert compute("pql_count", NOTHING, PERIOD).reason == "No leads loaded"


def test_renewal_outreach_coverage_counts_renewals_due_in_the_next_90_days():
    """Due 1 Jul – 28 Sep: 10 Jul (outreach on as-of: counts), 1 Aug (outreach after as-of), 28 Sep (none):
    1 ÷ 3. Renewals on as-of itself or on day 91 are not due."""
    life = pl.DataFrame({
        "account_id": ["a", "b", "c", "d", "e"],
        "renewal_date": [D(2024, 7, 10), D(2024, 8, 1), D(2024, 9, 28), D(2024, 6, 30), D(2024, 9, 29)],
        "renewal_outreach_at": [T(2024, 6, 30, 23), T(2024, 7, 1), None, T(2024, 5, 1), T(2024, 5, 1)],
    })
    assert value("renewal_outreach_coverage", frames_from_tables({"lifecycle": life})) == pytest.approx(1 / 3)


def test_renewal_outreach_coverage_without_renewals_due_is_empty():
    """No renewal due in the next 90 days: empty, naming the days."""
    r = compute("renewal_outreach_coverage", NOTHING, PERIOD)
    assert r.value is None and r.reason == "No renewal due from 2024-07-01 to 2024-09-28"
