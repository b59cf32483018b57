"""North Star tier: recurring revenue, its retention and growth, and what growth costs."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.frames import Frames
from revops.metrics.common import (
    active_accounts, arr_then_now, detail, fmt_day, ratio, result, spend_between, total,
)
from revops.metrics.registry import MetricResult, metric
from revops.period import Period, month_ends, quarter_bounds, years_before
from revops.revenue import arr_at, arr_by_account, movements, net_mrr_change

NO_SUBSCRIPTIONS = "No subscriptions loaded"


def _components(**values: float | int | None) -> pl.DataFrame:
    """A two-column drill-down (component, value) for metrics built from a few numbers."""
    numbers = [None if v is None else float(v) for v in values.values()]
    return pl.DataFrame({"component": list(values), "value": numbers},
                        schema={"component": pl.String, "value": pl.Float64})


@metric("arr", "north_star", "ARR", "money",
        "Annual recurring revenue at the end of the as-of date: 12 × the monthly recurring revenue of every "
        "subscription active that day (started on or before it, not yet ended).")
def arr(frames: Frames, period: Period) -> MetricResult:
    """ARR(as_of)."""
    subs = frames.subscriptions
    if subs.height == 0:
        return MetricResult.empty(NO_SUBSCRIPTIONS)
    rows = detail(lambda: arr_by_account(subs, period.as_of).sort("arr", descending=True))
    return result(arr_at(subs, period.as_of), NO_SUBSCRIPTIONS, rows)


@metric("nrr", "north_star", "Net revenue retention", "ratio",
        "Of the accounts that paid twelve months before the as-of date (ARR > 0 on the same calendar day a year "
        "earlier), their ARR today divided by their ARR then: expansion raises it, contraction and churn lower it. "
        "New customers since then are left out.")
def nrr(frames: Frames, period: Period) -> MetricResult:
    """Σ ARR(as_of) ÷ Σ ARR(12 months before) over the accounts paying 12 months before."""
    then = years_before(period.as_of)
    # Summed in this order (largest base first), as the drill-down shows them.
    base = arr_then_now(frames, then, period.as_of).sort("arr_then", descending=True)
    return ratio(total(base, "arr_now"), total(base, "arr_then"),
                 f"No account had ARR twelve months before as-of ({fmt_day(then)})", detail(lambda: base))


@metric("grr", "north_star", "Gross revenue retention", "ratio",
        "Of the accounts that paid twelve months before the as-of date, the share of their ARR then that they "
        "still pay today, counting each account at most at its ARR then (expansion cannot offset churn and "
        "contraction).")
def grr(frames: Frames, period: Period) -> MetricResult:
    """Σ min(ARR now, ARR then) ÷ Σ ARR then over the same base as NRR."""
    then = years_before(period.as_of)
    base = arr_then_now(frames, then, period.as_of).with_columns(
        arr_kept=pl.min_horizontal("arr_now", "arr_then")).sort("arr_then", descending=True)
    return ratio(total(base, "arr_kept"), total(base, "arr_then"),
                 f"No account had ARR twelve months before as-of ({fmt_day(then)})", detail(lambda: base))


@metric("net_new_arr", "north_star", "Net new ARR", "money",
        "ARR added in the window: 12 × the monthly recurring revenue of new, reactivated and expanded accounts "
        "minus contraction and churn, comparing each account's MRR at every month end in the window with the "
        "month end before.")
def net_new_arr(frames: Frames, period: Period) -> MetricResult:
    """12 × Σ signed movements over the month ends in the window."""
    if frames.subscriptions.height == 0:
        return MetricResult.empty(NO_SUBSCRIPTIONS)
    if not month_ends(period.start, period.end):
        return MetricResult.empty("The window contains no month end")
    moves = movements(frames.subscriptions, period.start, period.end)
    return result(12.0 * net_mrr_change(moves), "No movements", moves)


def _new_moves(frames: Frames, period: Period) -> pl.DataFrame:
    """`new` movements at the month ends in the window."""
    return movements(frames.subscriptions, period.start, period.end).filter(pl.col("movement") == "new")


@metric("cac_payback_months", "north_star", "CAC payback", "months",
        "Months of gross profit from new customers needed to earn back what sales and marketing spent: spend in "
        "the window ÷ (new MRR in the window × gross margin), where new MRR is the MRR of accounts that started "
        "paying for the first time at a month end in the window.", higher_is_better=False)
def cac_payback_months(frames: Frames, period: Period) -> MetricResult:
    """Window spend ÷ (new MRR × gross margin)."""
    spend = spend_between(frames, period.start, period.end)
    new = _new_moves(frames, period)
    if spend.height == 0:
        return MetricResult.empty("No spend in the window", new)
    gross_margin = frames.settings.gross_margin
    return ratio(total(spend, "amount"), total(new, "amount") * gross_margin, "No new MRR in the window", new)


def last_closed_quarters(as_of: dt.date, fiscal_start_month: int) -> tuple[tuple[dt.date, dt.date],
                                                                          tuple[dt.date, dt.date]]:
    """The last fiscal quarter that ended on or before as_of, and the quarter before it."""
    start, end = quarter_bounds(as_of, fiscal_start_month)
    if end != as_of:
        start, end = quarter_bounds(start - dt.timedelta(days=1), fiscal_start_month)
    before = quarter_bounds(start - dt.timedelta(days=1), fiscal_start_month)
    return (start, end), before


@metric("magic_number", "north_star", "Magic number", "ratio",
        "Sales efficiency: the ARR added in the last fiscal quarter that ended on or before the as-of date (ARR "
        "at its end minus ARR at the end of the quarter before) ÷ sales and marketing spend in that quarter "
        "before. Above 0.75 is usually read as efficient growth.")
def magic_number(frames: Frames, period: Period) -> MetricResult:
    """(ARR(last quarter end) − ARR(quarter before's end)) ÷ spend in the quarter before."""
    (_, q_end), (b_start, b_end) = last_closed_quarters(period.as_of, period.fiscal_start_month)
    subs = frames.subscriptions
    spend = total(spend_between(frames, b_start, b_end), "amount")
    arr_end, arr_before = arr_at(subs, q_end), arr_at(subs, b_end)
    detail = _components(**{f"ARR at {fmt_day(q_end)}": arr_end, f"ARR at {fmt_day(b_end)}": arr_before,
                            f"Spend {fmt_day(b_start)} to {fmt_day(b_end)}": spend})
    if subs.height == 0:
        return MetricResult.empty(NO_SUBSCRIPTIONS, detail)
    return ratio(arr_end - arr_before, spend, f"No spend in the quarter {fmt_day(b_start)} to {fmt_day(b_end)}",
                 detail)


@metric("ltv_to_cac", "north_star", "LTV : CAC", "ratio",
        "Lifetime value of a customer over what it costs to win one. LTV = ARPA (MRR per active account at the "
        "as-of date) × gross margin ÷ monthly logo churn, where monthly logo churn is the share of accounts "
        "paying twelve months before as-of that pay nothing at as-of, divided by 12. CAC = spend in the window "
        "÷ new customers in the window (accounts with a `new` movement at a month end in the window).")
def ltv_to_cac(frames: Frames, period: Period) -> MetricResult:
    """(ARPA × gross margin ÷ monthly logo churn) ÷ (window spend ÷ new customers)."""
    as_of, then = period.as_of, years_before(period.as_of)
    active = active_accounts(frames, as_of)
    base = arr_then_now(frames, then, as_of)
    churned = base.filter(pl.col("arr_now") <= 0).height
    spend = spend_between(frames, period.start, period.end)
    new_customers = _new_moves(frames, period)["account_id"].n_unique()
    arpa = total(active, "arr") / 12 / active.height if active.height else None
    monthly_churn = churned / base.height / 12 if base.height else None
    margin = frames.settings.gross_margin
    ltv = arpa * margin / monthly_churn if arpa is not None and monthly_churn else None
    cac = total(spend, "amount") / new_customers if spend.height and new_customers else None
    detail = _components(arpa=arpa, gross_margin=margin, accounts_paying_12_months_before=base.height,
                         of_which_churned=churned, monthly_logo_churn=monthly_churn, ltv=ltv,
                         window_spend=total(spend, "amount"), new_customers=new_customers, cac=cac)
    if active.height == 0:
        return MetricResult.empty("No active accounts at as-of", detail)
    if base.height == 0:
        return MetricResult.empty(f"No account had ARR twelve months before as-of ({fmt_day(then)})", detail)
    if churned == 0:
        return MetricResult.empty("No logo churn in the last twelve months, so lifetime value is unbounded", detail)
    if total(spend, "amount") <= 0:
        return MetricResult.empty("No spend in the window", detail)
    return ratio(ltv, cac, "No new customers in the window", detail)
