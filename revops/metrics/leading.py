"""Leading tier: signals that move before revenue does (pipeline creation, usage, engagement, renewals at risk)."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.frames import Frames
from revops.metrics.common import (
    active_codes, active_usage, day, days_before, days_to, deal_columns, detail, fmt_day, ratio, result, total,
    used, users_between, users_by_account,
)
from revops.reads import column_n_unique, table_between, table_height
from revops.rows import rows_between
from revops.metrics.registry import MetricResult, metric
from revops.period import Period

TREND_DAYS = 28
USAGE_DROP = 0.30
HEALTH_FLOOR = 50.0


@metric("pipeline_created", "leading", "Pipeline created", "money",
        "Total amount of the deals created in the window (deals without an amount are left out).")
def pipeline_created(frames: Frames, period: Period) -> MetricResult:
    """Σ amount of deals created in the window."""
    if frames.opportunities.height == 0:
        return MetricResult.empty("No opportunities loaded")
    deals = rows_between(frames.opportunities, "created_at", period.start, period.end)
    return result(total(deals, "amount"), "No opportunities loaded",
                  detail(lambda: deal_columns(deals).sort("created_at")))


@metric("pipeline_creation_trend", "leading", "Pipeline creation trend", "ratio",
        "Whether pipeline creation is speeding up: the amount of deals created in the 28 days to the as-of "
        "date compared with the 28-day average of the 84 days before them (their amount ÷ 3); +10 % means "
        "10 % more pipeline created than the recent norm.")
def pipeline_creation_trend(frames: Frames, period: Period) -> MetricResult:
    """Amount created in the 28 days to as_of ÷ (amount created in the 84 days before ÷ 3) − 1."""
    recent_start, recent_end = days_to(period.as_of, TREND_DAYS)
    base_start, base_end = days_before(period.as_of, 3 * TREND_DAYS, TREND_DAYS)
    deals = rows_between(frames.opportunities, "created_at", base_start, recent_end).with_columns(
        recent=day("created_at") >= recent_start)
    recent = total(deals.filter(pl.col("recent")), "amount")
    baseline = total(deals.filter(~pl.col("recent")), "amount") / 3
    rows = detail(lambda: deal_columns(deals, "recent").sort("created_at"))
    change = ratio(recent, baseline, f"No pipeline created from {fmt_day(base_start)} to {fmt_day(base_end)}",
                   rows)
    return change if change.value is None else MetricResult(change.value - 1, None, rows)


@metric("usage_trend", "leading", "Usage trend", "ratio",
        "Change in product usage: active users summed over the 28 days to the as-of date ÷ the same sum over "
        "the 28 days before − 1.")
def usage_trend(frames: Frames, period: Period) -> MetricResult:
    """Σ active_users over the 28 days to as_of ÷ the 28 days before − 1."""
    now_start, now_end = days_to(period.as_of, TREND_DAYS)
    before_start, before_end = days_before(period.as_of, TREND_DAYS, TREND_DAYS)
    rows = detail(lambda: users_by_account(frames, now_start, now_end).rename({"users": "users_last_28_days"}).join(
        users_by_account(frames, before_start, before_end).rename({"users": "users_28_days_before"}),
        on="account_id", how="full", coalesce=True).fill_null(0.0).sort("account_id"))
    change = ratio(users_between(frames, now_start, now_end), users_between(frames, before_start, before_end),
                   f"No active users from {fmt_day(before_start)} to {fmt_day(before_end)}", rows)
    return change if change.value is None else MetricResult(change.value - 1, None, rows)


def engagement(frames: Frames, as_of: dt.date) -> pl.DataFrame:
    """Engagement of every account active at as_of, 0-100, with its four parts (each 0-1, worth 25 points).

    recency   = 1 − days since the last day with use (up to as_of) ÷ 28, floored at 0
    frequency = weeks with use among the 4 weeks to as_of ÷ 4 (works for daily and weekly usage rows)
    breadth   = features used in the 28 days to as_of ÷ features in the usage data (no feature = one feature)
    trend     = ½ × activity in the 28 days to as_of ÷ activity in the 28 days before, capped at 1
                (flat = ½; activity = active users, else events; none before and some now = 1)
    """
    now_start, _ = days_to(as_of, TREND_DAYS)
    before_start, _ = days_before(as_of, TREND_DAYS, TREND_DAYS)
    # n_unique counts a missing feature as one more feature, as the breadth definition says.
    n_features = max(column_n_unique(frames, "usage", "feature"), 1)
    recent = active_usage(frames, as_of, before_start, as_of).with_columns(
        activity=pl.coalesce("active_users", "events").fill_null(0).cast(pl.Float64),
        days_ago=(pl.lit(as_of) - pl.col("date")).dt.total_days(),
        current=pl.col("date") >= now_start,
    )
    # Plain per-group sums and counts on pre-filtered rows keep Polars on its fast group-by path.
    current_use = recent.filter(pl.col("current") & used())
    per_account = (
        # Recency is above 0 only for a last use in the 28 days to as_of (1 − 28 ÷ 28 = 0), so the last day
        # of use is looked for there; an account without use there scores 0, as an older last use would.
        current_use.group_by("code").agg(last_days_ago=(pl.lit(as_of) - pl.col("date").max()).dt.total_days(),
                                         weeks=(pl.col("days_ago") // 7).n_unique(),
                                         features=pl.col("feature").n_unique())
        .join(recent.filter(pl.col("current")).group_by("code").agg(activity_now=pl.col("activity").sum()),
              on="code", how="full", coalesce=True)
        .join(recent.filter(~pl.col("current")).group_by("code").agg(activity_before=pl.col("activity").sum()),
              on="code", how="full", coalesce=True)
    )
    return (
        active_codes(frames, as_of)
        .join(per_account, on="code", how="left")
        .with_columns(**engagement_parts(n_features))
        .with_columns(score=ENGAGEMENT_SCORE)
        .select("account_id", "arr", "score", "recency", "frequency", "breadth", "trend")
        .sort("score")
    )


def engagement_parts(n_features: int) -> dict[str, pl.Expr]:
    """recency, frequency, breadth and trend (each 0-1, see engagement) from an account's usage tallies:
    last_days_ago, weeks, features, activity_now, activity_before (null: no use)."""
    now = pl.col("activity_now").cast(pl.Float64).fill_null(0.0)
    before = pl.col("activity_before").cast(pl.Float64).fill_null(0.0)
    return {
        "recency": (1 - pl.col("last_days_ago") / TREND_DAYS).clip(0, 1).fill_null(0.0),
        "frequency": (pl.col("weeks").fill_null(0) / 4).clip(0, 1),
        "breadth": (pl.col("features").fill_null(0) / n_features).clip(0, 1),
        "trend": pl.when(before > 0).then((0.5 * now / before).clip(0, 1))
        .when(now > 0).then(pl.lit(1.0)).otherwise(pl.lit(0.0)),
    }


# An account's engagement, 0-100: 25 points for each part.
ENGAGEMENT_SCORE = 25 * (pl.col("recency") + pl.col("frequency") + pl.col("breadth") + pl.col("trend"))


@metric("engagement_score", "leading", "Engagement score", "score",
        "Average engagement of the accounts active at the as-of date, each scored 0–100 as 25 points each for: "
        "recency (1 − days since last use ÷ 28, not below 0), frequency (weeks with use among the last 4 ÷ 4), "
        "breadth (features used in the last 28 days ÷ all features in the usage data) and trend (½ × activity "
        "of the last 28 days ÷ the 28 days before, capped at 1, so flat usage gives ½; activity = active users, "
        "else events). An account without usage scores 0.")
def engagement_score(frames: Frames, period: Period) -> MetricResult:
    """Mean engagement score (0-100) over accounts active at as_of."""
    if table_height(frames, "usage") == 0:
        return MetricResult.empty("No usage loaded")
    scores = engagement(frames, period.as_of)
    if scores.height == 0:
        return MetricResult.empty("No active accounts at as-of", scores)
    return result(scores["score"].mean(), "No active accounts at as-of", scores)  # type: ignore[arg-type]


def _users_by_code(frames: Frames, as_of: dt.date, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Σ active_users per account active at as_of over usage rows dated in [start, end] (columns code, users)."""
    return active_usage(frames, as_of, start, end).group_by("code").agg(
        users=pl.col("active_users").cast(pl.Float64).sum())


@metric("at_risk_arr", "leading", "ARR at risk", "money",
        "ARR of the accounts active at the as-of date that show a risk signal: a health score below 50, usage "
        "down more than 30 % (active users over the 28 days to as-of against the 28 days before), or a renewal "
        "due within the renewal-outreach SLA (90 days unless changed) with no outreach yet.",
        higher_is_better=False)
def at_risk_arr(frames: Frames, period: Period) -> MetricResult:
    """Σ ARR of active accounts with health < 50, usage down > 30 %, or an unapproached renewal within 90 days."""
    if frames.subscriptions.height == 0:
        return MetricResult.empty("No subscriptions loaded")
    as_of = period.as_of
    horizon = as_of + dt.timedelta(days=frames.settings.slas.renewal_outreach_days)
    now = _users_by_code(frames, as_of, *days_to(as_of, TREND_DAYS)).rename({"users": "users_now"})
    before = _users_by_code(frames, as_of, *days_before(as_of, TREND_DAYS, TREND_DAYS)).rename(
        {"users": "users_before"})
    life = frames.lifecycle.unique("account_id", keep="first").select(
        "account_id", "health_score", "renewal_date", "renewal_outreach_at")
    flagged = (
        active_codes(frames, as_of)
        .join(life, on="account_id", how="left")
        .join(now, on="code", how="left")
        .join(before, on="code", how="left")
        .drop("code")
        .with_columns(
            low_health=(pl.col("health_score") < HEALTH_FLOOR).fill_null(False),
            usage_down=((pl.col("users_before") > 0)
                        & (pl.col("users_now").fill_null(0.0) < (1 - USAGE_DROP) * pl.col("users_before")))
            .fill_null(False),
            renewal_unattended=((pl.col("renewal_date") > as_of) & (pl.col("renewal_date") <= horizon)
                                & (pl.col("renewal_outreach_at").is_null() | (day("renewal_outreach_at") > as_of)))
            .fill_null(False),
        )
        .filter(pl.col("low_health") | pl.col("usage_down") | pl.col("renewal_unattended"))
        .sort("arr", descending=True)
    )
    return result(total(flagged, "arr"), "No subscriptions loaded", flagged)


@metric("pql_count", "leading", "Product-qualified leads", "count",
        "Number of leads that became product-qualified (PQL) in the window.")
def pql_count(frames: Frames, period: Period) -> MetricResult:
    """Leads with pql_at in the window."""
    if table_height(frames, "leads") == 0:
        return MetricResult.empty("No leads loaded")
    leads = table_between(frames, "leads", "pql_at", period.start, period.end)
    rows = detail(lambda: leads.select("lead_id", "created_at", "pql_at", "source", "owner", "account_id")
                  .sort("pql_at"))
    return result(leads.height, "No leads loaded", rows)


@metric("renewal_outreach_coverage", "leading", "Renewal outreach coverage", "ratio",
        "Of the customers whose renewal falls in the 90 days after the as-of date (the renewal-outreach SLA; "
        "as-of excluded), the share whose renewal conversation had started on or before as-of.")
def renewal_outreach_coverage(frames: Frames, period: Period) -> MetricResult:
    """Renewals due in (as_of, as_of + 90 days] with outreach on or before as_of ÷ all such renewals."""
    as_of = period.as_of
    horizon = as_of + dt.timedelta(days=frames.settings.slas.renewal_outreach_days)
    due = frames.lifecycle.filter((pl.col("renewal_date") > as_of) & (pl.col("renewal_date") <= horizon)).with_columns(
        outreach_started=(day("renewal_outreach_at") <= as_of).fill_null(False))
    rows = detail(lambda: due.select("account_id", "renewal_date", "renewal_outreach_at", "outreach_started")
                  .sort("renewal_date"))
    started = int(due["outreach_started"].sum()) if due.height else 0
    return ratio(started, due.height, f"No renewal due from {fmt_day(as_of + dt.timedelta(days=1))} to "
                 f"{fmt_day(horizon)}", rows)
