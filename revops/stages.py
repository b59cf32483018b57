"""Opportunity stages: map CRM stage names onto the configured stages and deal states."""
from __future__ import annotations

import re

import polars as pl

from revops.schema import Settings


def normalize(name: str) -> str:
    """Stage or header name with case, spaces and punctuation removed."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def stage_lookup(settings: Settings) -> pl.DataFrame:
    """One row per recognised spelling: stage_key -> stage_name, state, funnel_step, probability."""
    rows: dict[str, dict[str, object]] = {}
    for s in settings.stages:
        state = "won" if s.is_won else ("lost" if s.is_closed else "open")
        for spelling in [s.name, *s.aliases]:
            rows.setdefault(normalize(spelling), {
                "stage_key": normalize(spelling), "stage_name": s.name, "state": state,
                "funnel_step": s.funnel_step, "stage_probability": s.probability,
            })
    return pl.DataFrame(list(rows.values()), schema={
        "stage_key": pl.String, "stage_name": pl.String, "state": pl.String,
        "funnel_step": pl.Int64, "stage_probability": pl.Float64,
    })


def stage_key_expr(col: str = "stage") -> pl.Expr:
    """Polars expression normalising a stage column the way `normalize` does."""
    return pl.col(col).cast(pl.String).str.to_lowercase().str.replace_all(r"[^0-9a-z]", "")


def classify(opps: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Add stage_name, state (won/lost/open), funnel_step, stage_probability, stage_known.

    A recognised stage decides the state; an unknown one falls back to the stored
    is_won/is_closed flags (open when absent), so unplaced stages count as open.
    """
    # The few distinct stage names are normalised and looked up, then joined back to every deal: the
    # stage column alone, so the deals' other columns are shared, not copied (a million deals: 130 MB).
    placed = (opps.select(pl.col("stage").unique()).with_columns(stage_key_expr().alias("stage_key"))
              .join(stage_lookup(settings), on="stage_key", how="left").drop("stage_key"))
    found = opps.select("stage").join(placed, on="stage", how="left", maintain_order="left", nulls_equal=True)
    out = opps.hstack(found.drop("stage"))
    fallback = (
        pl.when(pl.col("is_won").fill_null(False)).then(pl.lit("won"))
        .when(pl.col("is_closed").fill_null(False)).then(pl.lit("lost"))
        .otherwise(pl.lit("open"))
    )
    return out.with_columns(
        pl.col("stage_name").is_not_null().alias("stage_known"),
        pl.coalesce("stage_name", "stage").alias("stage_name"),
        pl.coalesce("state", fallback).alias("state"),
        pl.col("funnel_step").fill_null(-1),
    )


def unknown_stages(stage_values: pl.Series, settings: Settings) -> list[str]:
    """Stage names present in the data that the settings do not place."""
    known = set(stage_lookup(settings)["stage_key"].to_list())
    seen = stage_values.drop_nulls().unique().sort().to_list()
    return [s for s in seen if normalize(s) not in known]


def state_flags(stage_values: pl.Series, settings: Settings) -> pl.DataFrame:
    """is_closed / is_won derived from the stage settings (unknown stages count as open)."""
    lookup = stage_lookup(settings).select("stage_key", "state")
    frame = pl.DataFrame({"stage": stage_values}).with_columns(stage_key_expr().alias("stage_key"))
    state = frame.join(lookup, on="stage_key", how="left", maintain_order="left")["state"].fill_null("open")
    return pl.DataFrame({"is_closed": state != "open", "is_won": state == "won"})
