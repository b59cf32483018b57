"""Trend lines of the usage-based metrics in one pass: engagement, ARR at risk, feature adoption and usage trend at many
as-of dates.

Each of these metrics looks at the usage of at most the SPAN days to its as-of date. The usage rows of all
the as-of dates' spans are tallied once per account and day; each as-of then groups the days of its span by
account (a few hundred thousand rows instead of millions) and scores its active accounts with the metric's
own expressions. The tallies are sums of integers, ORs and minimums (the same in any order) and each total
adds the same values in the same order, so every value is the metric's own, to the last bit. The usage
trend's windows are slices of the usage table, summed as integers.
"""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.frames import Frames
from revops.memo import derived
from revops.metrics.common import (
    account_codes, day, days_before, days_to, finite_value, usage_between, usage_codes, usage_features, used,
)
from revops.metrics.diagnostic import FEATURE_DAYS
from revops.metrics.leading import ENGAGEMENT_SCORE, HEALTH_FLOOR, TREND_DAYS, USAGE_DROP, engagement_parts
from revops.metrics.registry import compute, series
from revops.period import Period
from revops.reads import column_n_unique, reads_from_file, table_height
from revops.revenue import active_on
from revops.rows import rows_between

# Days of usage any of these metrics reads, as-of included: engagement and risk 28 + 28, adoption 30.
SPAN = max(2 * TREND_DAYS, FEATURE_DAYS)
# Features are tallied as bits of one integer (a missing feature is one more): beyond that, one period at a time.
MAX_FEATURES = 63


def _one_by_one(metric_id: str, frames: Frames, periods: list[Period]) -> list[float | None]:
    """The metric computed at each period on its own (usage read from the file, or too many features for bits)."""
    return [compute(metric_id, frames, p, details=False).value for p in periods]


def _fits(frames: Frames) -> bool:
    """Whether the one-pass tallies apply: usage read whole and its features (null counted) fit in the bits."""
    return not reads_from_file(frames, "usage") and column_n_unique(frames, "usage", "feature") <= MAX_FEATURES


def _feature_bits(frames: Frames) -> pl.DataFrame:
    """Each feature of the usage data with its bit (columns feature, bit): a missing feature 1, the others 2, 4, ...
    in sorted order."""
    # From the distinct features the metrics keep per usage table (one scan of millions of rows less).
    named = usage_features(frames)
    missing = column_n_unique(frames, "usage", "feature") > named.height
    features = pl.concat([pl.DataFrame({"feature": [None]}, schema=named.schema), named]) if missing else named
    return features.with_columns(bit=pl.Series([1 << i for i in range(features.height)], dtype=pl.UInt64))


def _row_bits(rows: pl.DataFrame, bits: pl.DataFrame) -> pl.Series:
    """Each usage row's feature bit (see _feature_bits), in row order."""
    named = bits.filter(pl.col("feature").is_not_null())
    null_bit = int(bits.filter(pl.col("feature").is_null())["bit"].sum())
    feature = rows["feature"]
    if named.height == 0:
        found = pl.repeat(0, rows.height, dtype=pl.UInt64, eager=True)
    elif feature.dtype == pl.Categorical and named["feature"].dtype == pl.Categorical:
        # Categories share one global numbering: a bit per category number, read by position (no hashing).
        numbers = named["feature"].to_physical()
        by_number = pl.repeat(0, int(numbers.max()) + 1, dtype=pl.UInt64, eager=True)  # type: ignore[arg-type]
        found = by_number.scatter(numbers, named["bit"]).gather(feature.to_physical())
    else:
        found = feature.replace_strict(named["feature"], named["bit"], default=0, return_dtype=pl.UInt64)
    return pl.select(pl.when(feature.is_null()).then(pl.lit(null_bit, pl.UInt64)).otherwise(found)).to_series()


def _daily(frames: Frames, low: dt.date, high: dt.date) -> pl.DataFrame:
    """Usage rows dated in [low, high] of accounts with a subscription, one row per account code and day.

    Columns code, date, activity (Σ active users, else events), users (Σ active users), mask (the bits of
    the features with use that day, see _feature_bits; 0: no use), features (mask without the missing
    feature).
    """
    bits = _feature_bits(frames)
    null_bit = 1 if bits["feature"].null_count() else 0
    # Coded once per frames: the metrics' own rows (active_usage) are keyed by the same codes.
    rows = rows_between(frames.usage.with_columns(code=usage_codes(frames)), "date", low, high)
    ids, dates = rows["account_id"], rows["date"]
    # Usage comes in runs of one account's day (a row per feature): each run is tallied by running sums
    # taken at its last row, with no hashing of millions of rows; the runs are then keyed by code and day.
    head = ((ids != ids.shift(1)) | (dates != dates.shift(1))).fill_null(True)
    last = head.shift(-1, fill_value=True)
    use = rows.select(used()).to_series()
    bit = _row_bits(rows, bits) * use.cast(pl.UInt64)
    # The used rows' bits summed per run are their OR when no feature repeats in a run (the sum then has
    # as many bits set as it adds rows), and while the running sum cannot overflow.
    exact = bits.height == 0 or rows.height * int(bits["bit"].max()) < 2**63  # type: ignore[arg-type]
    totals = pl.DataFrame({
        "activity": rows.select(pl.coalesce("active_users", "events").fill_null(0)).to_series(),
        "users": rows["active_users"].fill_null(0), "mask": bit if exact else bit * 0,
        "counted": (bit > 0).cast(pl.UInt32),
    }).select(pl.all().cum_sum()).filter(last)
    # Σ of each run: the running total at its last row less the one at the previous run's last row.
    sums = totals.select(pl.all() - pl.all().shift(1, fill_value=0))
    runs = rows.select("code", "date").filter(head).hstack(
        sums.select("activity", "users", "mask"))
    if not exact or not (sums["mask"].bitwise_count_ones() == sums["counted"]).all():
        runs = runs.with_columns(mask=_run_masks(rows, bits, use, last))
    runs = runs.filter(pl.col("code").is_not_null())
    key = pl.col("date").cast(pl.Int32).cast(pl.Int64) * 2**32 + pl.col("code")
    if not (runs.select(key).to_series().diff() > 0).all():
        # Not one run per account and day (usage not in date and account order): the runs of an account's
        # day are added up; (day, code) as one integer, as grouping by one key is faster than by two.
        day = pl.col("key") // 2**32
        runs = (runs.lazy().with_columns(key=key).group_by("key")
                .agg(pl.col("activity").sum(), pl.col("users").sum(), pl.col("mask").bitwise_or())
                .select(code=(pl.col("key") - day * 2**32).cast(pl.UInt32), date=day.cast(pl.Int32).cast(pl.Date),
                        activity="activity", users="users", mask="mask")
                # Millions of small groups: the streaming engine groups them several times faster, and every
                # tally is a sum of integers or an OR, the same in any order.
                .collect(engine="streaming"))
    return runs.with_columns(features=pl.col("mask") & ~pl.lit(null_bit, pl.UInt64))


def _run_masks(rows: pl.DataFrame, bits: pl.DataFrame, use: pl.Series, last: pl.Series) -> pl.Series:
    """The bits of the features with use in each run of rows (last: a run's last row), a feature at a time:
    its bit is set on a run where any of its rows shows use."""
    mask = pl.repeat(0, int(last.sum()), dtype=pl.UInt64, eager=True)
    for feature, bit in bits.iter_rows():
        is_feature = rows["feature"].is_null() if feature is None else (rows["feature"] == feature).fill_null(False)
        counts = (use & is_feature).cast(pl.UInt32).cum_sum().filter(last)
        mask = mask | ((counts - counts.shift(1, fill_value=0)) > 0).cast(pl.UInt64) * bit
    return mask


def _tallies(frames: Frames, points: list[dt.date]) -> list[pl.DataFrame]:
    """For each as-of of points, per account code with usage in the SPAN days to it, the tallies of that usage.

    Columns code, last_days_ago, weeks, features (engagement: as leading.engagement's per-account columns),
    activity_now, activity_before, users_now, users_before (the TREND_DAYS to as-of and the TREND_DAYS
    before), adopted (the bits of the named features used in the FEATURE_DAYS to as-of). Kept per frames
    and as-of dates: a page's usage metrics all read the same ones.
    """
    def make() -> list[pl.DataFrame]:
        days = _daily(frames, points[0] - dt.timedelta(days=SPAN - 1), points[-1])
        now = pl.col("days_ago") < TREND_DAYS
        use_now = now & (pl.col("mask") > 0)
        none = pl.lit(0, pl.UInt64)

        def at(as_of: dt.date) -> pl.LazyFrame:
            # A day's week counts from the as-of (days ago // 7); each tally is a plain sum, min or OR of a
            # column, which keeps the group-by on its fast path.
            return (
                # In date order (as usage mostly is) a span is a slice of the day tallies, found by binary search.
                rows_between(days, "date", as_of - dt.timedelta(days=SPAN - 1), as_of).lazy()
                .with_columns(days_ago=(pl.lit(as_of) - pl.col("date")).dt.total_days())
                .select(
                    "code",
                    used_days_ago=pl.when(use_now).then(pl.col("days_ago")),
                    week=pl.when(use_now).then(pl.lit(2, pl.UInt64).pow(pl.col("days_ago") // 7)).otherwise(none),
                    mask_now=pl.when(now).then(pl.col("mask")).otherwise(none),
                    activity_now=pl.when(now).then(pl.col("activity")).otherwise(0),
                    activity_before=pl.when(now).then(0).otherwise(pl.col("activity")),
                    users_now=pl.when(now).then(pl.col("users")).otherwise(0),
                    users_before=pl.when(now).then(0).otherwise(pl.col("users")),
                    adopted=pl.when(pl.col("days_ago") < FEATURE_DAYS).then(pl.col("features")).otherwise(none))
                .group_by("code")
                .agg(last_days_ago=pl.col("used_days_ago").min(), weeks=pl.col("week").bitwise_or(),
                     features=pl.col("mask_now").bitwise_or(), activity_now=pl.col("activity_now").sum(),
                     activity_before=pl.col("activity_before").sum(), users_now=pl.col("users_now").sum(),
                     users_before=pl.col("users_before").sum(), adopted=pl.col("adopted").bitwise_or())
                .with_columns(pl.col("weeks", "features").bitwise_count_ones())
            )
        return pl.collect_all([at(as_of) for as_of in points], engine="streaming")
    return derived(frames, "usage_tallies", make, key=tuple(points), limit=1)


def _at_points(frames: Frames,
               periods: list[Period]) -> tuple[list[dt.date], list[pl.DataFrame], list[pl.DataFrame]]:
    """The distinct as-of dates of the periods, oldest first, the tallies at each and the active accounts at
    each (see _active)."""
    points = sorted({p.as_of for p in periods})
    return points, _tallies(frames, points), _active(frames, points)


def _active(frames: Frames, points: list[dt.date]) -> list[pl.DataFrame]:
    """active_codes at each as-of of points without the text ids (columns code, arr); kept per as-of dates,
    the three series read them.

    The same sums as revenue.mrr_by_account: the same subscriptions in the same (table) order, grouped by
    the account's code instead of its text id, which is several times faster.
    """
    return derived(frames, "active_codes", lambda: _actives(frames, points), key=tuple(points), limit=1)


def _actives(frames: Frames, points: list[dt.date]) -> list[pl.DataFrame]:
    """_active, computed."""
    subs = frames.subscriptions
    coded = derived(subs, "coded_subscriptions", lambda: subs.join(
        account_codes(frames), on="account_id", how="left", maintain_order="left").select(
        "code", "start_date", "end_date", pl.col("mrr").cast(pl.Float64)))
    # Eager: the lazy engine's sums of a group's floats may add them in another order.
    return [coded.filter(active_on(as_of)).group_by("code").agg(pl.col("mrr").sum())
            .select("code", arr=12.0 * pl.col("mrr")).filter(pl.col("arr") > 0) for as_of in points]


def _by_period(periods: list[Period], points: list[dt.date], values: list[float | None]) -> list[float | None]:
    """Each period's value, from the values at the distinct as-of dates (these metrics read as_of only)."""
    at = dict(zip(points, values))
    return [at[p.as_of] for p in periods]


@series("engagement_score")
def engagement_score_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """engagement_score at each period: the mean over accounts active at as_of of leading.engagement's score."""
    if table_height(frames, "usage") == 0:
        return [None] * len(periods)
    if not _fits(frames):
        return _one_by_one("engagement_score", frames, periods)
    n_features = max(column_n_unique(frames, "usage", "feature"), 1)
    points, tallies, actives = _at_points(frames, periods)
    values: list[float | None] = []
    for i, as_of in enumerate(points):
        per_account = tallies[i]
        # leading.engagement's own scoring expressions, so that each score is the same float.
        scores = (
            actives[i]
            .join(per_account.select("code", "last_days_ago", "weeks", "features", "activity_now", "activity_before"),
                  on="code", how="left")
            .with_columns(**engagement_parts(n_features))
            .select(score=ENGAGEMENT_SCORE)
            .sort("score")
        )
        values.append(finite_value(scores["score"].mean()) if scores.height else None)
    return _by_period(periods, points, values)


@series("at_risk_arr")
def at_risk_arr_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """at_risk_arr at each period: Σ ARR of the accounts active at as_of with a risk signal."""
    if frames.subscriptions.height == 0:
        return [None] * len(periods)
    if not _fits(frames):
        return _one_by_one("at_risk_arr", frames, periods)
    points, tallies, actives = _at_points(frames, periods)
    # The account's first lifecycle row, as at_risk_arr joins it, keyed once by account code.
    life = (frames.lifecycle.unique("account_id", keep="first")
            .select("account_id", "health_score", "renewal_date", "renewal_outreach_at")
            .join(account_codes(frames), on="account_id", how="inner").drop("account_id"))
    outreach_days = frames.settings.slas.renewal_outreach_days
    values: list[float | None] = []
    for i, as_of in enumerate(points):
        horizon = as_of + dt.timedelta(days=outreach_days)
        users = tallies[i].select("code", users_now=pl.col("users_now").cast(pl.Float64),
                                  users_before=pl.col("users_before").cast(pl.Float64))
        # leading.at_risk_arr's signals, expression for expression (an account without usage rows: both null).
        flagged = (
            actives[i]
            .join(life, on="code", how="left")
            .join(users, on="code", how="left")
            .filter(
                (pl.col("health_score") < HEALTH_FLOOR).fill_null(False)
                | ((pl.col("users_before") > 0)
                   & (pl.col("users_now").fill_null(0.0) < (1 - USAGE_DROP) * pl.col("users_before"))).fill_null(False)
                | ((pl.col("renewal_date") > as_of) & (pl.col("renewal_date") <= horizon)
                   & (pl.col("renewal_outreach_at").is_null() | (day("renewal_outreach_at") > as_of))).fill_null(False)
            )
            .select("arr")
            .sort("arr", descending=True)
        )
        values.append(float(flagged["arr"].cast(pl.Float64).sum()) if flagged.height else 0.0)
    return _by_period(periods, points, values)


@series("feature_adoption")
def feature_adoption_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """feature_adoption at each period: the mean over features of the share of active accounts that used it."""
    features = usage_features(frames)
    if features.height == 0:
        return [None] * len(periods)
    if not _fits(frames):
        return _one_by_one("feature_adoption", frames, periods)
    points, tallies, actives = _at_points(frames, periods)
    values: list[float | None] = []
    for i, as_of in enumerate(points):
        if actives[i].height == 0:
            values.append(None)
            continue
        # diagnostic.feature_adoption's table, so that the mean adds the same shares in the same order.
        table = _adoption_table(frames, actives[i], tallies[i].select("code", "adopted"))
        values.append(finite_value(table["adoption"].mean()))
    return _by_period(periods, points, values)


def _adoption_table(frames: Frames, active: pl.DataFrame, adopted: pl.DataFrame) -> pl.DataFrame:
    """diagnostic.feature_adoption's table (feature, accounts_using, active_accounts, adoption) from the active
    accounts (column code) and the bits of the named features each account used (columns code, adopted)."""
    features = usage_features(frames)
    bits = features.join(_feature_bits(frames), on="feature", how="left")
    used_bits = active.select("code").join(adopted, on="code", how="inner")["adopted"]
    using = [int(((used_bits & b) != 0).sum()) for b in bits["bit"]]
    return (
        features.with_columns(accounts_using=pl.Series(using, dtype=pl.UInt32),
                              active_accounts=pl.lit(active.height))
        .with_columns(adoption=pl.when(pl.col("active_accounts") > 0)
                      .then(pl.col("accounts_using") / pl.col("active_accounts")))
        .sort("adoption", descending=True, nulls_last=True)
    )


def adoption_at(frames: Frames, as_of: dt.date) -> tuple[pl.DataFrame, int] | None:
    """diagnostic.feature_adoption's table at as_of and the number of active accounts, from the usage's day
    tallies of the FEATURE_DAYS to as_of (None where those do not apply: no feature, or see _fits)."""
    if usage_features(frames).height == 0 or not _fits(frames):
        return None
    active = _actives(frames, [as_of])[0]
    days = _daily(frames, as_of - dt.timedelta(days=FEATURE_DAYS - 1), as_of)
    adopted = days.group_by("code").agg(adopted=pl.col("features").bitwise_or())
    return _adoption_table(frames, active, adopted), active.height


@series("usage_trend")
def usage_trend_series(frames: Frames, periods: list[Period]) -> list[float | None]:
    """usage_trend at each period: Σ active users over the TREND_DAYS to as-of ÷ the TREND_DAYS before − 1."""
    if reads_from_file(frames, "usage"):
        return _one_by_one("usage_trend", frames, periods)

    def users(start: dt.date, end: dt.date) -> float:
        # The window's rows summed as integers (the metric sums them as floats: the same number below 2⁵³),
        # without a copy of a million of them as floats.
        rows = usage_between(frames, start, end)
        return float(rows["active_users"].sum()) if rows.height else 0.0
    values: list[float | None] = []
    for p in periods:
        now, before = users(*days_to(p.as_of, TREND_DAYS)), users(*days_before(p.as_of, TREND_DAYS, TREND_DAYS))
        values.append(now / before - 1 if before != 0 else None)
    return values
