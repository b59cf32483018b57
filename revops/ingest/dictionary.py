"""What the Data page explains: the data dictionary, the metric definitions, the data-quality tables."""
from __future__ import annotations

import polars as pl

from revops.frames import Frames
from revops.metrics import BY_ID, REGISTRY, TIERS
from revops.period import Period
from revops.schema import DUCKDB_TYPES, MODELS, TABLES, columns

KIND_LABELS: dict[str, str] = {
    "id": "id (text key)", "text": "text", "date": "date", "ts": "date and time", "money": "amount",
    "int": "whole number", "float": "number", "bool": "yes/no",
}


def data_dictionary() -> pl.DataFrame:
    """Every canonical column: table, column, kind, required, key, meaning (from the schema models)."""
    rows = []
    for table in TABLES:
        key = MODELS[table].key
        for spec in columns(table):
            rows.append({"table": table, "column": spec.name, "kind": KIND_LABELS[spec.kind],
                         "duckdb_type": DUCKDB_TYPES[spec.kind], "required": spec.required,
                         "key": spec.name in key, "meaning": spec.doc})
    return pl.DataFrame(rows)


def table_descriptions() -> pl.DataFrame:
    """One row per canonical table: name, what a row is, its key."""
    return pl.DataFrame([{"table": t, "description": MODELS[t].description, "key": ", ".join(MODELS[t].key)}
                         for t in TABLES])


def metric_dictionary() -> pl.DataFrame:
    """Every registered metric: id, tier, label, unit, definition."""
    return pl.DataFrame([{"id": m.id, "tier": TIERS[m.tier], "label": m.label, "unit": m.unit,
                          "definition": m.definition} for m in REGISTRY],
                        schema={"id": pl.String, "tier": pl.String, "label": pl.String, "unit": pl.String,
                                "definition": pl.String})


def quality_by_table(frames: Frames, period: Period) -> pl.DataFrame:
    """The data_quality metric's per-table table (rows, expected, filled, valid cells and shares)."""
    table = BY_ID["data_quality"].compute(frames, period).table
    return table if table is not None else pl.DataFrame()


def quality_by_column(frames: Frames, period: Period) -> pl.DataFrame:
    """The data_quality metric's per-column detail, lowest quality first."""
    detail = BY_ID["data_quality"].compute(frames, period).detail
    if detail is None or detail.height == 0:
        return pl.DataFrame()
    return detail.sort("quality", nulls_last=True)
