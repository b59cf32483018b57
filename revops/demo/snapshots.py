"""Weekly opportunity snapshots rebuilt from stage history, as if the CRM had been exported every week."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.schema import Settings, column_names
from revops.stages import state_flags

SNAPSHOT_WEEKS = 12
RECENTLY_CLOSED_DAYS = 30
DEAL_COLUMNS = ("opportunity_id", "account_id", "opportunity_name", "owner", "source", "segment",
                "lost_reason", "type", "created_at")


def snapshot_dates(today: dt.date, weeks: int = SNAPSHOT_WEEKS) -> list[dt.date]:
    """The weekly snapshot dates, oldest first, the last one today."""
    return [today - dt.timedelta(days=7 * k) for k in range(weeks)][::-1]


def snapshots_frame(opportunities: pl.DataFrame, history: pl.DataFrame, dates: list[dt.date],
                    settings: Settings | None = None) -> pl.DataFrame:
    """Open and recently closed deals as they stood at the end of each date (columns of _opportunity_snapshots)."""
    settings = settings or Settings()
    first, last = min(dates), max(dates)
    recent = dt.timedelta(days=RECENTLY_CLOSED_DAYS)
    deals = opportunities.filter(
        (pl.col("created_at") <= last) & (~pl.col("is_closed") | (pl.col("close_date") > first - recent)))
    snaps = pl.DataFrame({"snapshot_date": dates}, schema={"snapshot_date": pl.Date}).with_columns(
        (pl.col("snapshot_date").cast(pl.Datetime("us")) + pl.duration(days=1)).alias("cutoff"))
    pairs = (deals.select(*DEAL_COLUMNS, pl.col("stage").alias("current_stage"), "probability")
             .join(snaps, how="cross")
             .filter(pl.col("created_at") <= pl.col("snapshot_date"))
             .sort("cutoff"))
    steps = (history.join(deals.select("opportunity_id"), on="opportunity_id", how="semi")
             .select("opportunity_id", "changed_at", "stage", "amount", "close_date", "forecast_category")
             .sort("changed_at"))
    # The deal's state at the end of the day: its last stage-history row strictly before midnight.
    state = pairs.join_asof(steps, left_on="cutoff", right_on="changed_at", by="opportunity_id",
                            strategy="backward", allow_exact_matches=False,
                            check_sortedness=False).filter(pl.col("stage").is_not_null())
    flags = state_flags(state["stage"], settings)
    state = state.with_columns(flags["is_closed"], flags["is_won"])
    state = state.filter(~pl.col("is_closed") | (pl.col("close_date") > pl.col("snapshot_date") - recent))
    return state.select(
        "snapshot_date", pl.lit(0, dtype=pl.Int64).alias("upload_id"),
        *[pl.col(c) for c in column_names("opportunities") if c not in ("lost_reason", "probability")],
        pl.when(pl.col("is_closed") & ~pl.col("is_won")).then("lost_reason").alias("lost_reason"),
        pl.when(pl.col("stage") == pl.col("current_stage")).then("probability").alias("probability"),
    ).select("snapshot_date", "upload_id", *column_names("opportunities")).sort("snapshot_date", "opportunity_id")
