"""The opportunity stage funnel: which stages each deal reached, conversion from stage to stage, time in stage."""
from __future__ import annotations

import polars as pl

from revops.frames import Frames
from revops.period import Period
from revops.schema import Settings
from revops.stages import stage_key_expr, stage_lookup

STAGE_CONVERSION_SCHEMA = {"stage": pl.String, "entered": pl.Int64, "converted": pl.Int64,
                           "rate": pl.Float64, "median_days": pl.Float64}


def stage_chain(settings: Settings) -> list[str]:
    """The stages a deal passes through in order: open stages by funnel step, then the first won stage."""
    ordered = sorted(settings.stages, key=lambda s: s.funnel_step)
    won = [s.name for s in ordered if s.is_won][:1]
    return [s.name for s in ordered if not s.is_closed] + won


def _chain_index(settings: Settings) -> pl.DataFrame:
    """stage_name -> position in the chain (lost stages are not in it)."""
    chain = stage_chain(settings)
    return pl.DataFrame({"stage_name": chain, "idx": list(range(len(chain)))},
                        schema={"stage_name": pl.String, "idx": pl.Int64})


def stage_entries(frames: Frames) -> pl.DataFrame:
    """When each deal first entered each stage of the chain (columns opportunity_id, idx, entered_at).

    From stage history; a won deal without a history row for the won stage entered it on its close date.
    """
    settings = frames.settings
    index = _chain_index(settings)
    lookup = stage_lookup(settings).select("stage_key", "stage_name")
    history = (
        frames.stage_history.with_columns(stage_key_expr().alias("stage_key"))
        .join(lookup, on="stage_key", how="inner")
        .join(index, on="stage_name", how="inner")
        .select("opportunity_id", "idx", entered_at=pl.col("changed_at").cast(pl.Datetime("us")))
    )
    won_idx = len(stage_chain(settings)) - 1
    closes = frames.opportunities.filter((pl.col("state") == "won") & pl.col("close_date").is_not_null()).select(
        "opportunity_id", idx=pl.lit(won_idx, pl.Int64), entered_at=pl.col("close_date").cast(pl.Datetime("us")))
    # History wins over the close date when both say when the deal was won.
    closes = closes.join(history.filter(pl.col("idx") == won_idx), on="opportunity_id", how="anti")
    return (
        pl.concat([history, closes])
        .group_by("opportunity_id", "idx")
        .agg(pl.col("entered_at").min())
        .sort("opportunity_id", "idx")
    )


def deal_reach(frames: Frames, period: Period) -> pl.DataFrame:
    """Deals created in the window with the furthest chain position they reached (columns opportunity_id, reached).

    "Reached" is cumulative: stage history, else the current stage; a won deal reached every
    stage; a lost deal reached at least the first stage (it entered the funnel when created).
    """
    settings = frames.settings
    index = _chain_index(settings)
    won_idx = index.height - 1
    cohort = frames.opportunities.filter(
        pl.col("created_at").cast(pl.Date).is_between(period.start, period.end)
    ).join(index, on="stage_name", how="left")
    current = (
        pl.when(pl.col("state") == "won").then(pl.lit(won_idx))
        .when(pl.col("state") == "open").then(pl.col("idx").fill_null(0))
        .otherwise(pl.lit(0))
    )
    history_max = stage_entries(frames).group_by("opportunity_id").agg(history_max=pl.col("idx").max())
    return (
        cohort.select("opportunity_id", current=current)
        .join(history_max, on="opportunity_id", how="left")
        .select("opportunity_id", reached=pl.max_horizontal("current", pl.col("history_max").fill_null(0)))
    )


def stage_conversion(frames: Frames, period: Period) -> pl.DataFrame:
    """Per stage in order, deals created in the window: entered, converted to the next, rate, median days in stage.

    median_days is measured from stage history: from entering the stage to first entering any
    later one (fractional days), over the deals with both dates.
    """
    chain = stage_chain(frames.settings)
    reach = deal_reach(frames, period)
    entries = (
        stage_entries(frames)
        .join(reach.select("opportunity_id"), on="opportunity_id", how="semi")
        .sort("opportunity_id", "idx")
        .with_columns(left_at=pl.col("entered_at").cum_min(reverse=True).shift(-1).over("opportunity_id"))
        .with_columns(days=(pl.col("left_at") - pl.col("entered_at")).dt.total_seconds(fractional=True) / 86_400)
        .group_by("idx")
        .agg(median_days=pl.col("days").median())
    )
    reached = reach["reached"]
    counted = pl.DataFrame(
        {"idx": list(range(len(chain) - 1)), "stage": chain[:-1],
         "entered": [int((reached >= i).sum()) for i in range(len(chain) - 1)],
         "converted": [int((reached > i).sum()) for i in range(len(chain) - 1)]},
        schema={"idx": pl.Int64, "stage": pl.String, "entered": pl.Int64, "converted": pl.Int64},
    )
    return (
        counted.join(entries, on="idx", how="left")
        .with_columns(rate=pl.when(pl.col("entered") > 0).then(pl.col("converted") / pl.col("entered")))
        .sort("idx")
        .select(list(STAGE_CONVERSION_SCHEMA))
        .cast(STAGE_CONVERSION_SCHEMA)  # type: ignore[arg-type]
    )


__all__ = ["STAGE_CONVERSION_SCHEMA", "deal_reach", "stage_chain", "stage_conversion", "stage_entries"]
