"""Diagnostic tier: where the funnel and the handoffs lose speed or quality, and how trustworthy the data is."""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from revops.frames import Frames, TableReader, file_reader
from revops.funnel import STAGE_CONVERSION_SCHEMA
from revops.funnel import stage_conversion as funnel_stage_conversion
from revops.metrics.common import (
    active_codes, active_usage, days_to, detail, fractional_minutes, in_window, lifecycle_won,
    median, ratio, result, usage_features, used,
)
from revops.reads import table_between, table_height
from revops.memo import derived
from revops.metrics.registry import MetricResult, details_wanted, metric
from revops.period import Period
from revops.schema import TABLES, column_names

NO_LEADS = "No leads created in the window"


def _leads_in_window(frames: Frames, period: Period) -> pl.DataFrame:
    """Leads created in the window."""
    return table_between(frames, "leads", "created_at", period.start, period.end)


def reached_sql() -> pl.Expr:
    """A lead reached SQL when it has an SQL date or went further (converted to an opportunity)."""
    return pl.any_horizontal(pl.col("sql_at").is_not_null(), pl.col("converted_at").is_not_null(),
                             pl.col("opportunity_id").is_not_null())


def reached_mql() -> pl.Expr:
    """A lead reached MQL when it has an MQL date or reached SQL (reaching is cumulative)."""
    return pl.col("mql_at").is_not_null() | reached_sql()


def _lead_columns(df: pl.DataFrame, *extra: str) -> pl.DataFrame:
    cols = ["lead_id", "created_at", "source", "owner", "segment", "account_id", *extra]
    return df.select([c for c in dict.fromkeys(cols) if c in df.columns])


@metric("lead_response_minutes", "diagnostic", "Lead response time", "minutes",
        "Median minutes from a lead's capture to the first human sales touch, over the leads created in the "
        "window that got a response (seconds count).", higher_is_better=False)
def lead_response_minutes(frames: Frames, period: Period) -> MetricResult:
    """Median first_response_at − created_at in minutes, answered leads created in the window."""
    leads = _leads_in_window(frames, period).filter(pl.col("first_response_at").is_not_null()).with_columns(
        response_minutes=fractional_minutes("created_at", "first_response_at"))
    return result(median(leads, "response_minutes"), "No lead created in the window has a response",
                  detail(lambda: _lead_columns(leads, "first_response_at", "response_minutes").sort("created_at")))


@metric("lead_response_sla", "diagnostic", "Lead response within SLA", "ratio",
        "Share of the leads created in the window that got a first response within the lead-response SLA "
        "(5 minutes unless changed in the settings); a lead never answered counts as a breach.")
def lead_response_sla(frames: Frames, period: Period) -> MetricResult:
    """Leads answered within the SLA ÷ leads created in the window."""
    sla = frames.settings.slas.lead_response_minutes
    leads = _leads_in_window(frames, period).with_columns(
        response_minutes=fractional_minutes("created_at", "first_response_at")
    ).with_columns(within_sla=(pl.col("response_minutes") <= sla).fill_null(False))
    met = int(leads["within_sla"].sum()) if leads.height else 0
    return ratio(met, leads.height, NO_LEADS,
                 detail(lambda: _lead_columns(leads, "first_response_at", "response_minutes", "within_sla")
                        .sort("created_at")))


@metric("mql_to_sql", "diagnostic", "MQL to SQL", "ratio",
        "Of the leads created in the window that reached marketing-qualified (MQL), the share that reached "
        "sales-qualified (SQL). Reaching is cumulative: a lead that became SQL or converted to an opportunity "
        "also reached MQL.")
def mql_to_sql(frames: Frames, period: Period) -> MetricResult:
    """Leads created in the window: reached SQL ÷ reached MQL."""
    leads = _leads_in_window(frames, period).with_columns(reached_mql=reached_mql(), reached_sql=reached_sql())
    mql = leads.filter(pl.col("reached_mql"))
    rows = detail(lambda: _lead_columns(mql, "mql_at", "sql_at", "converted_at", "reached_sql").sort("created_at"))
    return ratio(int(mql["reached_sql"].sum()) if mql.height else 0, mql.height,
                 "No lead created in the window reached MQL", rows)


@metric("lead_to_customer", "diagnostic", "Lead to customer", "ratio",
        "Share of the leads created in the window whose opportunity has been won.")
def lead_to_customer(frames: Frames, period: Period) -> MetricResult:
    """Leads created in the window whose opportunity is won ÷ leads created in the window."""
    opps = frames.opportunities
    won = derived(opps, "won_ids", lambda: opps.filter(pl.col("state") == "won").select("opportunity_id").unique())
    leads = _leads_in_window(frames, period).with_columns(
        became_customer=pl.col("opportunity_id").is_in(won["opportunity_id"].implode()).fill_null(False))
    became = int(leads["became_customer"].sum()) if leads.height else 0
    return ratio(became, leads.height, NO_LEADS,
                 detail(lambda: _lead_columns(leads, "opportunity_id", "became_customer").sort("created_at")))


@metric("stage_conversion", "diagnostic", "Stage conversion", "table",
        "For the deals created in the window, per stage in funnel order: how many reached the stage, how many "
        "reached the next one, the conversion rate, and the median days spent in the stage (from stage "
        "history). Reaching is cumulative: a deal that reached a later stage (by its stage history, else its "
        "current stage) reached every earlier one.", kind="table")
def stage_conversion(frames: Frames, period: Period) -> MetricResult:
    """Entered, converted, rate and median days per stage (deals created in the window)."""
    table = funnel_stage_conversion(frames, period).select(list(STAGE_CONVERSION_SCHEMA))
    if table.height == 0 or int(table["entered"].max() or 0) == 0:
        return MetricResult(None, "No deals created in the window", None, table)
    return MetricResult(None, None, None, table)


@metric("kickoff_sla", "diagnostic", "Kickoff within SLA", "ratio",
        "Share of the customers signed in the window whose kickoff was held within the kickoff SLA (48 hours "
        "after signature unless changed in the settings); no kickoff yet counts as a breach. When the "
        "signature time is missing, the close date of the account's first won deal stands in.")
def kickoff_sla(frames: Frames, period: Period) -> MetricResult:
    """Accounts won in the window with kickoff_at − won_at ≤ SLA ÷ accounts won in the window."""
    sla_hours = frames.settings.slas.kickoff_hours
    rows = lifecycle_won(frames).filter(in_window("won_at", period)).with_columns(
        kickoff_hours=fractional_minutes("won_at", "kickoff_at") / 60
    ).with_columns(within_sla=(pl.col("kickoff_hours") <= sla_hours).fill_null(False))
    shown = detail(lambda: rows.select("account_id", "won_at", "kickoff_at", "kickoff_hours", "within_sla")
                   .sort("won_at"))
    met = int(rows["within_sla"].sum()) if rows.height else 0
    return ratio(met, rows.height, "No customer was signed in the window", shown)


FEATURE_DAYS = 30


@metric("feature_adoption", "diagnostic", "Feature adoption", "ratio",
        "Average, over every feature in the usage data, of the share of active accounts (ARR > 0 at the as-of "
        "date) that used the feature (events or active users above 0) in the 30 days to as-of. The table "
        "gives the share per feature.", breakdown=True)
def feature_adoption(frames: Frames, period: Period) -> MetricResult:
    """Mean over features of (active accounts using it in the 30 days to as_of ÷ active accounts)."""
    if not details_wanted():
        # Imported here: the usage series build on this module. Without rows to show, the table comes from
        # the day tallies the card's trend reads too (the same table, see tests).
        from revops.metrics.series_usage import adoption_at
        tallied = adoption_at(frames, period.as_of)
        if tallied is not None:
            table, n_active = tallied
            if n_active == 0:
                return MetricResult(None, "No active accounts at as-of", None, table)
            return result(table["adoption"].mean(), "No usage by feature loaded", None, table)  # type: ignore[arg-type]
    features = usage_features(frames)
    active = active_codes(frames, period.as_of)
    start, end = days_to(period.as_of, FEATURE_DAYS)
    recent_use = active_usage(frames, period.as_of, start, end).filter(used() & pl.col("feature").is_not_null())
    # Who used what, once per account and feature (codes follow account_id): both tallies count these pairs.
    pairs = recent_use.select("code", "feature").unique().sort("code", "feature")
    adopters = pairs.group_by("feature").agg(accounts_using=pl.len())
    per_account = detail(lambda: (
        active.join(pairs.group_by("code", maintain_order=True).agg(
            n_features_used=pl.len(), features_used=pl.col("feature").cast(pl.String).str.join(", ")),
            on="code", how="left")
        .drop("code")
        .with_columns(pl.col("n_features_used").fill_null(0))
        .sort("n_features_used", "arr")
    ))
    table = (
        features.join(adopters, on="feature", how="left")
        .with_columns(pl.col("accounts_using").fill_null(0), active_accounts=pl.lit(active.height))
        .with_columns(adoption=pl.when(pl.col("active_accounts") > 0)
                      .then(pl.col("accounts_using") / pl.col("active_accounts")))
        .sort("adoption", descending=True, nulls_last=True)
    )
    if features.height == 0:
        return MetricResult(None, "No usage by feature loaded", per_account, table)
    if active.height == 0:
        return MetricResult(None, "No active accounts at as-of", per_account, table)
    return result(table["adoption"].mean(), "No usage by feature loaded", per_account, table)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Data quality: which cells are expected, and what makes a filled cell valid

# Cells whose emptiness means "has not happened" or "not applicable": expected only once filled,
# so they are checked for validity but a gap is not a defect.
EVENT_COLUMNS: dict[str, frozenset[str]] = {
    "leads": frozenset({"first_response_at", "mql_at", "sql_at", "pql_at", "converted_at", "opportunity_id"}),
    "opportunities": frozenset({"probability", "is_closed", "is_won"}),
    "subscriptions": frozenset({"end_date"}),
    "lifecycle": frozenset({"kickoff_at", "first_value_at", "renewal_outreach_at"}),
    "touches": frozenset({"lead_id", "account_id", "opportunity_id"}),
    "targets": frozenset({"segment", "owner"}),
}
# Cells expected only on some rows.
EXPECTED_WHEN: dict[tuple[str, str], pl.Expr] = {
    ("opportunities", "lost_reason"): pl.col("state") == "lost",
}


@dataclass(frozen=True)
class Rule:
    """What makes a filled cell valid: a test of the frame's row and, when the file's columns can answer
    alone, the same test in SQL (a table not read yet is then counted where it lives)."""

    expr: pl.Expr
    sql: str | None = None


def _non_negative(col: str) -> Rule:
    # NaN counts as not negative in both (Polars and DuckDB order NaN above every number).
    return Rule(pl.col(col) >= 0, f'"{col}" >= 0')


def _within(col: str, low: float, high: float) -> Rule:
    return Rule(pl.col(col).is_between(low, high), f'"{col}" BETWEEN {low!r} AND {high!r}')


def _not_before(col: str, other: str) -> Rule:
    return Rule(pl.col(other).is_null() | (pl.col(col).cast(pl.Datetime("us")) >= pl.col(other).cast(pl.Datetime("us"))),
                f'"{other}" IS NULL OR CAST("{col}" AS TIMESTAMP) >= CAST("{other}" AS TIMESTAMP)')


def _after(col: str, other: str, *, or_same: bool = False) -> Rule:
    if or_same:
        return Rule(pl.col(col) >= pl.col(other), f'"{col}" >= "{other}"')
    return Rule(pl.col(col) > pl.col(other), f'"{col}" > "{other}"')


# A filled cell is valid unless its rule says otherwise.
RULES: dict[tuple[str, str], Rule] = {
    ("accounts", "employees"): _non_negative("employees"),
    ("leads", "first_response_at"): _not_before("first_response_at", "created_at"),
    ("opportunities", "stage"): Rule(pl.col("stage_known")),  # the settings place it: the frame knows
    ("opportunities", "amount"): _non_negative("amount"),
    ("opportunities", "probability"): _within("probability", 0, 1),
    ("opportunities", "close_date"): _not_before("close_date", "created_at"),
    ("stage_history", "amount"): _non_negative("amount"),
    ("subscriptions", "mrr"): _non_negative("mrr"),
    ("subscriptions", "end_date"): _after("end_date", "start_date"),
    ("lifecycle", "health_score"): _within("health_score", 0, 100),
    ("lifecycle", "csat"): _within("csat", 0, 100),
    ("usage", "active_users"): _non_negative("active_users"),
    ("usage", "events"): _non_negative("events"),
    ("spend", "amount"): _non_negative("amount"),
    ("targets", "target_amount"): _non_negative("target_amount"),
    ("targets", "period_end"): _after("period_end", "period_start", or_same=True),
}
VALID_WHEN: dict[tuple[str, str], pl.Expr] = {key: rule.expr for key, rule in RULES.items()}


def cell_quality(frames: Frames) -> pl.DataFrame:
    """Per loaded table and column: expected, filled and valid cells (table, column, expected, filled, valid).

    Kept per frames: it depends on no period (a trend of data quality is the same count twelve times).
    """
    return derived(frames, "cell_quality", lambda: _cell_quality(frames))


def _cell_quality(frames: Frames) -> pl.DataFrame:
    parts: list[pl.DataFrame] = []
    for name in TABLES:
        cells = _table_cells(frames, name)
        if cells is None:
            continue
        names = column_names(name)
        parts.append(pl.DataFrame({
            "table": [name] * len(names), "column": names,
            "expected": [e for e, _, _ in cells], "filled": [f for _, f, _ in cells], "valid": [v for _, _, v in cells],
        }, schema={"table": pl.String, "column": pl.String, "expected": pl.Int64, "filled": pl.Int64,
                   "valid": pl.Int64}))
    if not parts:
        return pl.DataFrame(schema={"table": pl.String, "column": pl.String, "expected": pl.Int64,
                                    "filled": pl.Int64, "valid": pl.Int64})
    return pl.concat(parts)


def _flags(name: str, cols: list[str]) -> list[pl.Expr]:
    """Per column of the table: whether each cell is expected, expected and filled, expected and valid."""
    flags: list[pl.Expr] = []
    for col in cols:
        filled = pl.col(col).is_not_null()
        if col in EVENT_COLUMNS.get(name, frozenset()):
            expected = filled
        else:
            expected = EXPECTED_WHEN.get((name, col), pl.lit(True))
        valid = filled & VALID_WHEN.get((name, col), pl.lit(True)).fill_null(True)
        flags += [expected.alias(f"{col}\x00expected"), (expected & filled).alias(f"{col}\x00filled"),
                  (expected & valid).alias(f"{col}\x00valid")]
    return flags


def _counted(df: pl.DataFrame, name: str, cols: list[str]) -> list[tuple[int, int, int]]:
    """(expected, filled, valid) of each column: one row of flags per table row, then one sum per flag."""
    sums = df.select(_flags(name, cols)).sum().row(0)  # literal flags broadcast to every row
    return [(int(sums[3 * i]), int(sums[3 * i + 1]), int(sums[3 * i + 2])) for i in range(len(cols))]


def _table_cells(frames: Frames, name: str) -> list[tuple[int, int, int]] | None:
    """(expected, filled, valid) of every column of the table, None when it has no rows.

    A table not read yet whose rules SQL can test is counted where the data lives (see _file_cells).
    """
    counted = _file_cells(frames).get(name)
    if counted is not None:
        return counted or None
    df = frames.table(name)
    return _counted(df, name, column_names(name)) if df.height else None


def _file_cells(frames: Frames) -> dict[str, list[tuple[int, int, int]]]:
    """_table_cells of the tables not read yet whose rules all have SQL, counted in one query; once per frames.

    A cell is expected on every row (an event column: where filled), filled where not null and valid
    where filled and its rule holds (a rule that cannot tell counts as holding): all SQL counts.
    """
    return derived(frames, "file_cells", lambda: _count_in_file(frames))


def _count_in_file(frames: Frames) -> dict[str, list[tuple[int, int, int]]]:
    groups: dict[int, tuple[TableReader, list[str]]] = {}
    for name in TABLES:
        reader = file_reader(frames, name)
        sql_ok = not any(t == name for t, _ in EXPECTED_WHEN) and all(
            rule.sql for (t, _), rule in RULES.items() if t == name)
        if reader is not None and sql_ok:
            groups.setdefault(id(reader), (reader, []))[1].append(name)
    out: dict[str, list[tuple[int, int, int]]] = {}
    for reader, names in groups.values():
        parts = []
        for name in names:
            counts = [f'count(*) AS "{name}"']
            for col in column_names(name):
                counts.append(f'count("{col}") AS "{name}.{col}"')
                rule = RULES.get((name, col))
                if rule is not None:
                    counts.append(f'count(*) FILTER (WHERE "{col}" IS NOT NULL AND coalesce({rule.sql}, true)) '
                                  f'AS "{name}.{col}.valid"')
            parts.append(f'(SELECT {", ".join(counts)} FROM "{name}")')
        row = reader.query(f"SELECT * FROM {' CROSS JOIN '.join(parts)}").row(0, named=True)
        for name in names:
            rows, events, cells = int(row[name]), EVENT_COLUMNS.get(name, frozenset()), []
            for col in column_names(name):
                filled = int(row[f"{name}.{col}"])
                valid = int(row[f"{name}.{col}.valid"]) if (name, col) in RULES else filled
                cells.append((filled if col in events else rows, filled, valid))
            out[name] = cells if rows else []
    return out


@metric("data_quality", "diagnostic", "Data quality", "ratio",
        "Share of the expected cells of the loaded tables that are filled and valid. Every column of a loaded "
        "table is expected on every row, except dates of things that have not happened yet (a response, a "
        "kickoff, a subscription's end) and optional keys, which are checked only when filled, and a lost "
        "reason, expected on lost deals only. Valid means, for example, amounts not negative, probabilities "
        "between 0 and 1, scores between 0 and 100, a close or response not before the creation, an end after "
        "the start and a stage the settings place. The table gives the share per table.", breakdown=True)
def data_quality(frames: Frames, period: Period) -> MetricResult:
    """Filled and valid cells ÷ expected cells over the non-empty tables."""
    cells = cell_quality(frames)
    rows = {name: table_height(frames, name) for name in TABLES}
    table = (
        cells.group_by("table", maintain_order=True)
        .agg(pl.col("expected", "filled", "valid").sum())
        .with_columns(rows=pl.col("table").replace_strict(rows, return_dtype=pl.Int64))
        .with_columns(filled_share=pl.col("filled") / pl.col("expected"), quality=pl.col("valid") / pl.col("expected"))
        .select("table", "rows", "expected", "filled", "valid", "filled_share", "quality")
    )
    detail = cells.with_columns(quality=pl.when(pl.col("expected") > 0).then(pl.col("valid") / pl.col("expected")))
    return ratio(int(cells["valid"].sum()), int(cells["expected"].sum()), "No data loaded", detail, table)
