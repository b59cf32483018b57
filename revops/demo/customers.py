"""Demo customers after the sale: subscriptions (MRR with churn, expansion, contraction, win-backs),
the customer-success lifecycle and weekly product usage."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revops.demo.accounts import Accounts, id_expr, label
from revops.demo.clock import Clock
from revops.demo.deals import LOST, WON, Deals

PLANS = ("Starter", "Growth", "Enterprise")
ADD_ONS = ("Analytics add-on", "Additional seats", "Premium support", "Automation add-on")
PRODUCTS = ("Platform", *ADD_ONS)
YEARLY_CHURN = 0.16  # logo churn hazard at each anniversary, besides lost renewals
LOST_RENEWAL_CHURN = 0.5  # a lost renewal deal ends the account; otherwise the contract rolls over as is
CONTRACTION_P, UPGRADE_P = 0.10, 0.07
WINBACK_P = 0.25
FEATURES = ("dashboards", "reports", "integrations", "workflows", "alerts", "api", "mobile")
FEATURE_ADOPTION = np.array([1.0, 0.85, 0.6, 0.5, 0.4, 0.3, 0.25])
FEATURE_USER_SHARE = np.array([0.8, 0.55, 0.15, 0.35, 0.3, 0.05, 0.25])
EVENTS_PER_USER = np.array([14.0, 6.0, 40.0, 9.0, 5.0, 120.0, 4.0])
SEAT_RATIO = np.array([0.35, 0.10, 0.025])
USAGE_WEEKS = 30  # at scale 1M about 11M usage rows (the scale goal asks for at least 10M)
DECLINING_P = 0.12


@dataclass(frozen=True)
class Customers:
    """Per-account facts after the sale (index = account number)."""

    won_at: np.ndarray  # first win, NaN = never a customer
    churn_at: np.ndarray  # NaN = not churned (by today)
    back_at: np.ndarray  # win-back after churn, NaN = none
    declining: np.ndarray  # product usage falling over the last weeks

    @property
    def active(self) -> np.ndarray:
        """Customers today: signed, and never churned or won back since."""
        return ~np.isnan(self.won_at) & (np.isnan(self.churn_at) | ~np.isnan(self.back_at))


def customer_facts(rng: np.random.Generator, deals: Deals, accounts: Accounts, clock: Clock) -> Customers:
    """When each account signed, whether and when it churned, whether its usage is now declining."""
    d = deals.draws
    close = deals.close_time
    won_at = np.full(accounts.n, np.inf)
    np.minimum.at(won_at, d.account, np.where(deals.state == WON, close, np.inf))
    lost_renewal = np.full(accounts.n, np.inf)
    leaves = (deals.state == LOST) & (deals.type == 2) & (rng.random(d.n) < LOST_RENEWAL_CHURN)
    np.minimum.at(lost_renewal, d.account, np.where(leaves, close, np.inf))
    # Besides lost renewals, a customer may leave at an anniversary (a geometric number of years in).
    years = rng.geometric(YEARLY_CHURN, accounts.n)
    anniversary_churn = won_at + 365.0 * years + rng.uniform(-20.0, 20.0, accounts.n)
    churn = np.minimum(lost_renewal, anniversary_churn)
    # An account still signing deals has not left: churn only after its last win.
    last_win = np.full(accounts.n, -np.inf)
    np.maximum.at(last_win, d.account, np.where(deals.state == WON, close, -np.inf))
    churn = np.where(np.isfinite(won_at) & (churn > last_win) & (churn < clock.horizon), churn, np.nan)
    # Win-backs: a few churned accounts return months later.
    back = churn + rng.uniform(60.0, 300.0, accounts.n)
    back = np.where((rng.random(accounts.n) < WINBACK_P) & (back < clock.horizon), back, np.nan)
    active = np.isfinite(won_at) & (np.isnan(churn) | ~np.isnan(back))
    declining = active & (rng.random(accounts.n) < DECLINING_P)
    return Customers(np.where(np.isfinite(won_at), won_at, np.nan), churn, back, declining)


def subscription_rows(rng: np.random.Generator, deals: Deals, accounts: Accounts, cust: Customers,
                      clock: Clock) -> pl.DataFrame:
    """Subscriptions in day offsets: a plan per won new deal, an add-on per won expansion, churn, changes, win-backs."""
    d = deals.draws
    won = np.flatnonzero((deals.state == WON) & (deals.type < 2))
    account = d.account[won]
    start = np.floor(deals.close_time[won])
    mrr = np.round(deals.amount[won] / 12.0, 2)
    product = np.where(deals.type[won] == 0, 0, 1 + rng.integers(0, len(ADD_ONS), won.size))
    plan = np.where(deals.type[won] == 0, accounts.segment[account], -1)
    churn_day = np.floor(cust.churn_at[account])
    # A subscription running when the account churned ends that day; one signed later is a win-back.
    end = np.where(start < churn_day, churn_day, np.nan)

    # Plan changes: some platform plans are downgraded or upgraded mid-life (old row ends, new row starts).
    life_end = np.where(np.isnan(end), clock.horizon - 1, end)
    room = life_end - start - 120.0
    u = rng.random(won.size)
    change = (product == 0) & (room > 0) & (u < CONTRACTION_P + UPGRADE_P)
    factor = np.where(u < CONTRACTION_P, rng.uniform(0.6, 0.9, won.size), rng.uniform(1.15, 1.6, won.size))
    on = start + 90.0 + np.floor(rng.random(won.size) * np.maximum(room, 1.0))
    idx = np.flatnonzero(change)
    rows = {
        "account": np.concatenate([account, account[idx]]),
        "start": np.concatenate([start, on[idx]]),
        "end": np.concatenate([np.where(change, on, end), end[idx]]),
        "mrr": np.concatenate([mrr, np.round(mrr[idx] * factor[idx], 2)]),
        "product": np.concatenate([product, product[idx]]),
        "plan": np.concatenate([plan, plan[idx]]),
    }
    # Win-backs come back on a smaller platform plan.
    who = np.flatnonzero(~np.isnan(cust.back_at))
    first_mrr = np.zeros(accounts.n)
    np.maximum.at(first_mrr, account, np.where(product == 0, mrr, 0.0))
    back = {
        "account": who, "start": np.floor(cust.back_at[who]), "end": np.full(who.size, np.nan),
        "mrr": np.round(np.maximum(first_mrr[who], 50.0) * rng.uniform(0.5, 1.0, who.size), 2),
        "product": np.zeros(who.size, dtype=np.int64), "plan": accounts.segment[who],
    }
    rows = {k: np.concatenate([v, back[k]]) for k, v in rows.items()}
    frame = pl.DataFrame({**rows, "end": pl.Series(rows["end"]).fill_nan(None)})
    return frame.sort("start", "account", "product", "mrr", maintain_order=True)


def subscriptions_frame(rows: pl.DataFrame, clock: Clock) -> pl.DataFrame:
    """The subscriptions table (end_date exclusive, empty while active)."""
    return rows.select(
        id_expr("SUB-", pl.int_range(0, pl.len(), dtype=pl.Int64), 7).alias("subscription_id"),
        id_expr("ACC-", pl.col("account"), 6).alias("account_id"),
        clock.date_expr("start").alias("start_date"),
        clock.date_expr("end").alias("end_date"),
        pl.col("mrr"),
        label("product", PRODUCTS).alias("product"),
        pl.when(pl.col("plan") >= 0).then(label("plan", PLANS)).otherwise(pl.lit("Add-on")).alias("plan"),
    )


def lifecycle_frame(rng: np.random.Generator, accounts: Accounts, cust: Customers, clock: Clock) -> pl.DataFrame:
    """One row per customer: kickoff and first value (some past their SLAs), renewal and outreach, health."""
    who = np.flatnonzero(~np.isnan(cust.won_at))
    n = who.size
    seg = accounts.segment[who]
    won = cust.won_at[who]
    kickoff_hours = rng.lognormal(np.log(np.array([24.0, 32.0, 52.0])[seg]), 0.7)
    kickoff = np.where(rng.random(n) < 0.05, np.nan, won + kickoff_hours / 24.0)
    value_days = rng.gamma(3.0, np.array([6.0, 8.5, 13.0])[seg])
    first_value = np.where(rng.random(n) < 0.06, np.nan, np.where(np.isnan(kickoff), won + 2.0, kickoff) + value_days)
    gone = ~cust.active[who]
    today = clock.horizon - 1
    # Active customers renew at the next anniversary of their (latest) contract; churned ones ended at churn.
    contract_day = np.floor(np.where(np.isnan(cust.back_at[who]), won, cust.back_at[who]))
    next_renewal = contract_day + 365.0 * np.floor((today - contract_day) / 365.0 + 1.0)
    renewal = np.where(gone, np.floor(cust.churn_at[who]), next_renewal)
    # Outreach should start 90 days out; about half of the upcoming renewals have it, some late.
    lead_days = np.where(rng.random(n) < 0.62, rng.uniform(20.0, 110.0, n), np.nan)
    outreach = renewal - lead_days + rng.uniform(0.35, 0.7, n)
    declining = cust.declining[who]
    health = rng.normal(76.0, 11.0, n) - 28.0 * declining - 35.0 * gone
    csat = np.where(rng.random(n) < 0.8, np.clip(np.round(rng.normal(8.2, 1.2, n) - 1.5 * declining), 1, 10) * 10.0,
                    np.nan)
    horizon = clock.horizon
    frame = pl.DataFrame({
        "account": who.astype(np.int64),
        "won": won,
        "kickoff": pl.Series(np.where(kickoff < horizon, kickoff, np.nan)).fill_nan(None),
        "value": pl.Series(np.where(first_value < horizon, first_value, np.nan)).fill_nan(None),
        "renewal": renewal,
        "outreach": pl.Series(np.where(outreach < horizon, outreach, np.nan)).fill_nan(None),
        "health": np.round(np.clip(health, 0.0, 100.0), 0),
        "csat": pl.Series(csat).fill_nan(None),
    })
    return frame.select(
        id_expr("ACC-", pl.col("account"), 6).alias("account_id"),
        clock.ts_expr("won").alias("won_at"),
        clock.ts_expr("kickoff").alias("kickoff_at"),
        clock.ts_expr("value").alias("first_value_at"),
        clock.date_expr("renewal").alias("renewal_date"),
        clock.ts_expr("outreach").alias("renewal_outreach_at"),
        pl.col("health").alias("health_score"),
        "csat",
    )


def usage_frame(rng: np.random.Generator, subscriptions: pl.DataFrame, accounts: Accounts, cust: Customers,
                clock: Clock) -> pl.DataFrame:
    """Weekly usage per active account and adopted feature over the last USAGE_WEEKS weeks (subscription_rows in)."""
    today = clock.today
    monday = today.toordinal() - today.weekday()
    week_days = np.array([monday - 7 * k for k in range(USAGE_WEEKS)][::-1]) - clock.start.toordinal()
    weeks = pl.DataFrame({"week": np.arange(USAGE_WEEKS, dtype=np.int64), "week_day": week_days.astype(np.float64)})
    subs = subscriptions.select("account", "start", "end")
    active = (subs.join(weeks, how="cross")
              .filter((pl.col("start") <= pl.col("week_day"))
                      & (pl.col("end").is_null() | (pl.col("week_day") < pl.col("end"))))
              .select("account", "week", "week_day").unique().sort("account", "week"))
    acc = active["account"].to_numpy()
    week = active["week"].to_numpy()
    pairs = acc.size
    adopted = rng.random((accounts.n, len(FEATURES))) < FEATURE_ADOPTION
    seats = np.maximum(2.0, accounts.employees * SEAT_RATIO[accounts.segment])
    # Declining accounts lose users over the last ten weeks, down to about a third.
    weeks_left = (USAGE_WEEKS - 1 - week).astype(np.float64)
    fade = np.where(cust.declining[acc], np.clip(0.35 + 0.065 * weeks_left, 0.35, 1.0), 1.0)
    # Customers who left were fading for a couple of months before they went.
    weeks_to_churn = (cust.churn_at[acc] - active["week_day"].to_numpy()) / 7.0
    before_churn = np.nan_to_num(weeks_to_churn, nan=-1.0) >= 0
    fade = np.minimum(fade, np.where(before_churn, np.clip(0.3 + 0.08 * weeks_to_churn, 0.3, 1.0), 1.0))
    trend = (1.0 + 0.004 * week) * fade
    row_acc = np.repeat(acc, len(FEATURES))
    row_week = np.repeat(np.arange(pairs), len(FEATURES))
    feature = np.tile(np.arange(len(FEATURES)), pairs)
    keep = adopted[row_acc, feature] & (rng.random(row_acc.size) < 0.9 * np.sqrt(trend[row_week]))
    row_acc, row_week, feature = row_acc[keep], row_week[keep], feature[keep]
    users = np.maximum(1.0, np.round(seats[row_acc] * FEATURE_USER_SHARE[feature] * trend[row_week]
                                     * rng.lognormal(0.0, 0.15, row_acc.size)))
    events = rng.poisson(users * EVENTS_PER_USER[feature])
    frame = pl.DataFrame({
        "account": row_acc, "week_day": active["week_day"].to_numpy()[row_week],
        "feature": feature.astype(np.int64), "active_users": users.astype(np.int64), "events": events.astype(np.int64),
    })
    # In date order, as product analytics exports are: a few weeks of usage are then one slice of the table.
    return frame.sort("week_day", "account", "feature").select(
        id_expr("ACC-", pl.col("account"), 6).alias("account_id"),
        clock.date_expr("week_day").alias("date"),
        label("feature", FEATURES).alias("feature"),
        "active_users", "events",
    )
