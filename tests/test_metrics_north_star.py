"""North Star tier on tiny hand-made tables, each expected value worked out in the test."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops.frames import Frames, frames_from_tables
from revops.metrics import compute
from revops.metrics.north_star import last_closed_quarters
from revops.period import Period
from revops.schema import Settings

D = dt.date


def subs(*rows: tuple[str, dt.date, dt.date | None, float]) -> pl.DataFrame:
    """Subscriptions from (account, start, end, mrr) rows."""
    return pl.DataFrame(
        {"subscription_id": [f"s{i}" for i in range(len(rows))], "account_id": [r[0] for r in rows],
         "start_date": [r[1] for r in rows], "end_date": [r[2] for r in rows], "mrr": [r[3] for r in rows]},
        schema={"subscription_id": pl.String, "account_id": pl.String, "start_date": pl.Date,
                "end_date": pl.Date, "mrr": pl.Float64},
    )


def spend(*rows: tuple[dt.date, float]) -> pl.DataFrame:
    """Spend from (month, amount) rows."""
    return pl.DataFrame({"month": [r[0] for r in rows], "amount": [r[1] for r in rows]},
                        schema={"month": pl.Date, "amount": pl.Float64})


def frames(**tables: pl.DataFrame) -> Frames:
    return frames_from_tables(tables)


def value(metric_id: str, f: Frames, period: Period) -> float | None:
    return compute(metric_id, f, period).value


# ---------------------------------------------------------------------------------------
# arr


def test_arr_counts_subscriptions_active_at_the_end_of_as_of():
    """ARR = 12 × MRR active on as_of; a subscription ending on as_of is no longer active."""
    f = frames(subscriptions=subs(("a1", D(2023, 1, 1), None, 100.0),
                                  ("a2", D(2023, 1, 1), D(2024, 6, 30), 70.0),   # end_date == as_of: gone
                                  ("a3", D(2024, 6, 30), None, 20.0),           # starts on as_of: counted
                                  ("a3", D(2023, 5, 1), None, 30.0)))
    r = compute("arr", f, Period.ending(D(2024, 6, 30)))
    assert r.value == 1800.0  # 12 × (100 + 20 + 30)
    assert r.detail is not None and set(r.detail["account_id"]) == {"a1", "a3"}


def test_arr_without_subscriptions_is_empty():
    """No subscriptions loaded: no ARR rather than a 0 that looks like a fact."""
    r = compute("arr", frames(), Period.ending(D(2024, 6, 30)))
    assert r.value is None and r.reason == "No subscriptions loaded"


def test_arr_with_nothing_active_is_zero():
    """Subscriptions that all ended give a real ARR of 0."""
    f = frames(subscriptions=subs(("a", D(2022, 1, 1), D(2023, 1, 1), 100.0)))
    assert value("arr", f, Period.ending(D(2024, 6, 30))) == 0.0


# ---------------------------------------------------------------------------------------
# nrr and grr (leap day: 12 months before 2024-02-29 is 2023-02-28)


def _retention() -> Frames:
    return frames(subscriptions=subs(
        ("a", D(2023, 2, 28), None, 100.0),              # in the base (starts on the day): then 100 …
        ("a", D(2023, 6, 1), None, 50.0),                # … now 150 (expanded)
        ("b", D(2023, 1, 1), D(2023, 12, 1), 200.0),     # base: then 200, now 0 (churned)
        ("e", D(2022, 6, 1), D(2023, 3, 1), 30.0),       # active on 28 Feb 2023 (not on 1 Mar): base, now 0
        ("c", D(2023, 3, 1), None, 80.0),                # not paying then: outside the base
        ("d", D(2023, 1, 1), D(2023, 2, 28), 60.0),      # ended on the base day: outside the base
    ))


def test_nrr_on_a_leap_day_uses_28_february_a_year_earlier():
    """NRR = Σ ARR now ÷ Σ ARR then over accounts paying on 2023-02-28."""
    r = compute("nrr", _retention(), Period.ending(D(2024, 2, 29)))
    # base a, b, e: then 12 × (100 + 200 + 30) = 3960; now 12 × (150 + 0 + 0) = 1800
    assert r.value == pytest.approx(1800 / 3960)
    assert r.detail is not None and sorted(r.detail["account_id"]) == ["a", "b", "e"]


def test_grr_caps_each_account_at_its_arr_then():
    """GRR = Σ min(now, then) ÷ Σ then: a's expansion does not offset b's and e's churn."""
    # min(150, 100) + min(0, 200) + min(0, 30) = 100; ÷ (100 + 200 + 30) = 330
    assert value("grr", _retention(), Period.ending(D(2024, 2, 29))) == pytest.approx(100 / 330)


@pytest.mark.parametrize("metric_id", ["nrr", "grr"])
def test_retention_without_a_base_is_empty(metric_id):
    """No account paid twelve months earlier: empty, with the base date in the reason."""
    f = frames(subscriptions=subs(("c", D(2023, 3, 1), None, 80.0)))
    r = compute(metric_id, f, Period.ending(D(2024, 2, 29)))
    assert r.value is None and "2023-02-28" in (r.reason or "")


# ---------------------------------------------------------------------------------------
# net_new_arr and cac_payback_months (the five movements of test_revenue)


def _moves() -> pl.DataFrame:
    return subs(
        ("A", D(2024, 2, 1), None, 100.0),                # new 100 at Feb 29
        ("B", D(2023, 12, 1), D(2024, 4, 15), 50.0),
        ("B", D(2024, 3, 1), None, 30.0),                 # expansion 30 (Mar), contraction 50 (Apr)
        ("C", D(2023, 11, 1), D(2024, 1, 1), 40.0),
        ("C", D(2024, 3, 10), None, 60.0),                # reactivation 60 (Mar)
        ("D", D(2023, 10, 1), D(2024, 3, 31), 70.0),      # churn 70 (Mar)
        ("E", D(2024, 4, 1), None, 20.0),                 # new 20 (Apr)
    )


FEB_TO_APR = Period(D(2024, 4, 30), D(2024, 2, 1), D(2024, 4, 30))


def test_net_new_arr_is_twelve_times_the_signed_movements():
    """12 × (100 + 20 new + 60 reactivation + 30 expansion − 50 contraction − 70 churn) = 12 × 90."""
    r = compute("net_new_arr", frames(subscriptions=_moves()), FEB_TO_APR)
    assert r.value == 1080.0
    assert r.detail is not None and r.detail.height == 6


def test_net_new_arr_needs_a_month_end_in_the_window():
    """A window inside one month has no month end to compare: empty."""
    r = compute("net_new_arr", frames(subscriptions=_moves()), Period(D(2024, 4, 20), D(2024, 4, 10), D(2024, 4, 20)))
    assert r.value is None and r.reason == "The window contains no month end"


def test_net_new_arr_without_subscriptions_is_empty():
    """No subscriptions: empty with the reason."""
    assert compute("net_new_arr", frames(), FEB_TO_APR).reason == "No subscriptions loaded"


def test_cac_payback_divides_window_spend_by_new_mrr_times_margin():
    """Spend whose month starts in the window ÷ (new MRR × gross margin)."""
    s = spend((D(2024, 1, 1), 1000.0),     # January: before the window
              (D(2024, 2, 1), 320.0), (D(2024, 3, 15), 320.0), (D(2024, 4, 1), 320.0),  # 15 March = March
              (D(2024, 5, 1), 999.0))      # after the window
    f = frames(subscriptions=_moves(), spend=s)
    # spend 960; new MRR = A 100 + E 20 = 120; × 0.8 = 96; 960 ÷ 96 = 10 months
    assert value("cac_payback_months", f, FEB_TO_APR) == pytest.approx(10.0)


def test_spend_counts_only_when_its_month_starts_in_the_window():
    """A window starting 10 Feb leaves February's spend out (1 Feb is before it)."""
    f = frames(subscriptions=_moves(), spend=spend((D(2024, 2, 1), 480.0), (D(2024, 3, 1), 192.0)))
    # new MRR in the window (month ends Feb 29 … Apr 30) = 120; spend = March only = 192; 192 ÷ 96 = 2
    assert value("cac_payback_months", f, Period(D(2024, 4, 30), D(2024, 2, 10), D(2024, 4, 30))) == pytest.approx(2.0)


def test_cac_payback_without_new_mrr_is_empty():
    """Spend but no new customers: no payback, never a division by zero."""
    f = frames(subscriptions=subs(("x", D(2020, 1, 1), None, 10.0)), spend=spend((D(2024, 3, 1), 100.0)))
    r = compute("cac_payback_months", f, FEB_TO_APR)
    assert r.value is None and r.reason == "No new MRR in the window"


def test_cac_payback_without_spend_is_empty():
    """New MRR but no spend loaded: empty, not a payback of 0 months."""
    r = compute("cac_payback_months", frames(subscriptions=_moves()), FEB_TO_APR)
    assert r.value is None and r.reason == "No spend in the window"


# ---------------------------------------------------------------------------------------
# magic_number (fiscal quarters)


def test_magic_number_uses_the_last_closed_quarter_and_the_spend_of_the_one_before():
    """As of 15 May 2024: (ARR 31 Mar − ARR 31 Dec) ÷ spend Oct–Dec 2023."""
    f = frames(subscriptions=subs(("x", D(2023, 1, 1), None, 100.0), ("y", D(2024, 2, 1), None, 50.0)),
               spend=spend((D(2023, 9, 1), 500.0), (D(2023, 10, 1), 100.0), (D(2023, 11, 1), 100.0),
                           (D(2023, 12, 1), 100.0), (D(2024, 1, 1), 999.0)))
    # ARR 2024-03-31 = 12 × 150 = 1800; ARR 2023-12-31 = 1200; (1800 − 1200) ÷ 300 = 2.0
    assert value("magic_number", f, Period.ending(D(2024, 5, 15))) == pytest.approx(2.0)


def test_last_closed_quarter_follows_the_fiscal_year_and_counts_a_quarter_ending_on_as_of():
    """Fiscal year from February: as of 15 May the last closed quarter is Feb–Apr; as of its end it is that one."""
    assert last_closed_quarters(D(2024, 5, 15), 2) == ((D(2024, 2, 1), D(2024, 4, 30)),
                                                       (D(2023, 11, 1), D(2024, 1, 31)))
    assert last_closed_quarters(D(2024, 3, 31), 1) == ((D(2024, 1, 1), D(2024, 3, 31)),
                                                       (D(2023, 10, 1), D(2023, 12, 31)))


def test_magic_number_without_spend_in_the_quarter_before_is_empty():
    """No spend in the quarter before: empty with the quarter in the reason."""
    f = frames(subscriptions=subs(("x", D(2023, 1, 1), None, 100.0)), spend=spend((D(2024, 1, 1), 100.0)))
    r = compute("magic_number", f, Period.ending(D(2024, 5, 15)))
    assert r.value is None and r.reason == "No spend in the quarter 2023-10-01 to 2023-12-31"


# ---------------------------------------------------------------------------------------
# ltv_to_cac


def _unit_economics(*extra: tuple[str, dt.date, dt.date | None, float]) -> Frames:
    return frames(
        subscriptions=subs(
            ("p", D(2022, 1, 1), None, 100.0),                 # base, still paying
            ("q", D(2022, 1, 1), D(2024, 1, 1), 200.0),        # base, churned
            ("r", D(2022, 6, 1), None, 300.0),                 # base, still paying
            ("s", D(2023, 9, 1), None, 150.0),                 # new at 2023-09-30
            ("t", D(2024, 3, 1), None, 250.0),                 # new at 2024-03-31
            *extra),
        spend=spend((D(2023, 7, 1), 5000.0),                   # 1 Jul is before the window (starts 2 Jul)
                    (D(2023, 8, 1), 600.0), (D(2024, 2, 1), 400.0)),
    )


def test_ltv_to_cac_from_arpa_margin_logo_churn_and_cac():
    """LTV = ARPA × margin ÷ (12-month logo churn ÷ 12); CAC = window spend ÷ new customers."""
    period = Period.ending(D(2024, 6, 30))  # window 2023-07-02 … 2024-06-30; base day 2023-06-30
    r = compute("ltv_to_cac", _unit_economics(), period)
    # ARPA = (100 + 300 + 150 + 250) ÷ 4 = 200; churn = 1 of 3 → monthly 1/36
    # LTV = 200 × 0.8 × 36 = 5760; CAC = (600 + 400) ÷ 2 = 500; 5760 ÷ 500 = 11.52
    assert r.value == pytest.approx(11.52)
    assert r.detail is not None
    components = dict(r.detail.rows())
    assert components["ltv"] == pytest.approx(5760.0) and components["cac"] == pytest.approx(500.0)


def test_ltv_to_cac_follows_the_gross_margin_setting():
    """A 50 % margin: LTV = 200 × 0.5 × 36 = 3600; ÷ 500 = 7.2."""
    base = _unit_economics()
    f = frames_from_tables({"subscriptions": base.subscriptions, "spend": base.spend}, Settings(gross_margin=0.5))
    assert value("ltv_to_cac", f, Period.ending(D(2024, 6, 30))) == pytest.approx(7.2)


def test_ltv_to_cac_without_logo_churn_is_empty():
    """No account churned: lifetime value is unbounded, so no ratio."""
    f = frames(subscriptions=subs(("p", D(2022, 1, 1), None, 100.0), ("s", D(2023, 9, 1), None, 150.0)),
               spend=spend((D(2023, 8, 1), 600.0)))
    r = compute("ltv_to_cac", f, Period.ending(D(2024, 6, 30)))
    assert r.value is None and "unbounded" in (r.reason or "")


def test_ltv_to_cac_without_new_customers_is_empty():
    """Spend but no new customer in the window: CAC has no denominator."""
    f = frames(subscriptions=subs(("p", D(2022, 1, 1), None, 100.0), ("q", D(2022, 1, 1), D(2024, 1, 1), 200.0)),
               spend=spend((D(2023, 8, 1), 600.0)))
    r = compute("ltv_to_cac", f, Period.ending(D(2024, 6, 30)))
    assert r.value is None and r.reason == "No new customers in the window"
