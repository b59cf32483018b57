"""What-if forecast of bookings and ARR for the next four quarters, by month, from history and levers.

The horizon is the four fiscal quarters starting with the one that contains the day after
as_of (the quarter in progress, or the next one when as_of is a quarter's last day), month
by month. Each month's bookings (closed-won amount, the unit of the targets table) add up:

1. won: deals already won in the month, up to as_of (actuals of the quarter in progress);
2. from pipeline: every deal open at as_of counts amount × probability (its own, else its
   stage's default, else the historical win rate) in the month of its expected close; a
   past-due or undated deal counts in the first month still open, a past-due one at its
   probability × how past-due deals have really turned out (`past_due_realization`). The
   win-rate lever scales these probabilities by lever ÷ historical win rate (never above 1);
3. from new pipeline: deals created after as_of at `pipeline_created_per_month`, each worth
   win_rate × avg_deal_size, closing `sales_cycle_days` later (a lag of 1.5 months books
   half of a month's deals one month later and half two months later). The lead levers
   scale the inbound part of that creation (see `inbound_multiplier`).

ARR at each month end after as_of is ARR(as_of) rolled forward with the monthly rates,
ARR × (1 − gross_churn_rate + expansion_rate), plus the new-business bookings of the month:
a new-business (or untyped) booking is annual contract value, so its amount adds to ARR in
the month it closes. Expansion and renewal bookings count as bookings but not again as ARR,
because the base's expansion and churn rates already carry them.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from revops.format import currency_symbol
from revops.frames import Frames
from revops.funnel import id_runs
from revops.memo import derived
from revops.metrics import compute
from revops.metrics.common import (
    VALUE_COLUMNS,
    day,
    fractional_minutes,
    in_window,
    open_at,
    target_between,
    won_between,
)
from revops.period import Period, add_months, month_end, quarter_bounds
from revops.revenue import arr_at, movements, mrr_by_account
from revops.rows import rows_between
from revops.stages import classify

DAYS_PER_MONTH = 365.25 / 12
HORIZON_MONTHS = 12
TRAILING_DAYS = 365
# Deal types whose bookings are not new ARR (the base's expansion and churn rates carry them).
NOT_NEW_ARR_TYPES = ("expansion", "renewal")


# ---------------------------------------------------------------------------------------
# Levers


class Levers(BaseModel):
    """The what-if inputs; each starts at its historical value."""

    model_config = ConfigDict(frozen=True)

    win_rate: float = Field(ge=0, le=1, description="Won ÷ (won + lost), counted.")
    avg_deal_size: float = Field(ge=0, description="Mean amount of a won deal.")
    sales_cycle_days: float = Field(ge=0, description="Median days from creation to close of a won deal.")
    pipeline_created_per_month: float = Field(ge=0, description="Deals created per month.")
    gross_churn_rate: float = Field(ge=0, le=1, description="Monthly churn + contraction ÷ MRR.")
    expansion_rate: float = Field(ge=0, description="Monthly expansion ÷ MRR.")
    lead_response_sla: float | None = Field(None, ge=0, le=1, description="Share of leads answered within the SLA.")
    mql_to_sql: float | None = Field(None, ge=0, le=1, description="Leads reaching SQL ÷ leads reaching MQL.")


@dataclass(frozen=True)
class LeverInfo:
    """How a lever reads on screen: label, unit, whether more is better, its upper bound, its slider's reach."""

    label: str
    unit: str
    help: str
    higher_is_better: bool = True
    upper: float | None = None
    # Whether the slider spans up to the upper bound; small rates (monthly churn) get three times history instead.
    full_range: bool = True


LEVERS: dict[str, LeverInfo] = {
    "win_rate": LeverInfo("Win rate", "ratio", "Won ÷ (won + lost) deals closed in the window; also scales the "
                          "odds of every open deal.", upper=1.0),
    "avg_deal_size": LeverInfo("Average deal size", "money", "Mean amount of a won deal (new pipeline)."),
    "sales_cycle_days": LeverInfo("Sales cycle", "days", "Median days from creation to close of a won deal: how "
                                  "long new pipeline takes to book.", higher_is_better=False),
    "pipeline_created_per_month": LeverInfo("Deals created per month", "count",
                                            "New opportunities opened per month."),
    "gross_churn_rate": LeverInfo("Gross churn (monthly)", "ratio", "Churned + contracted MRR ÷ MRR, per month, "
                                  "over the trailing 12 months.", higher_is_better=False, upper=1.0,
                                  full_range=False),
    "expansion_rate": LeverInfo("Expansion (monthly)", "ratio", "Expansion MRR ÷ MRR, per month (the "
                                "expansion_rate metric ÷ 12)."),
    "lead_response_sla": LeverInfo("Lead response within SLA", "ratio", "Share of leads answered within the "
                                   "response SLA; lifts inbound pipeline by the conversion gap measured in your "
                                   "leads.", upper=1.0),
    "mql_to_sql": LeverInfo("MQL → SQL", "ratio", "Leads reaching SQL ÷ leads reaching MQL; inbound pipeline "
                            "scales with it.", upper=1.0),
}


def lever_names(levers: Levers) -> list[str]:
    """The levers that have a value (the lead levers only when the data has leads)."""
    return [name for name in LEVERS if getattr(levers, name) is not None]


def scaled(levers: Levers, name: str, factor: float) -> Levers:
    """The levers with one multiplied by `factor`, kept within its bounds."""
    value = getattr(levers, name)
    if value is None:
        return levers
    upper = LEVERS[name].upper
    new = max(0.0, value * factor)
    return levers.model_copy(update={name: min(new, upper) if upper is not None else new})


@dataclass(frozen=True)
class SliderSpec:
    """A lever's slider: range and step around its historical value, and the display format."""

    name: str
    label: str
    unit: str
    help: str
    value: float
    min_value: float
    max_value: float
    step: float
    fmt: str  # Streamlit slider format: a preset name or a printf pattern


def _nice_step(span: float) -> float:
    """A round step giving about 100–200 positions over the span (1, 2 or 5 × a power of ten)."""
    if span <= 0:
        return 1.0
    raw = span / 200
    power = 10 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def _slider_format(unit: str, currency: str) -> str:
    if unit == "ratio":
        return "percent"
    if unit == "money":
        return f"{currency_symbol(currency)}%,d"
    return "%d days" if unit == "days" else "%.1f"


def slider_specs(baseline: Levers, currency: str = "USD") -> list[SliderSpec]:
    """One slider per lever with a value: from 0 to three times the historical value (rates to 100 %)."""
    out = []
    for name in lever_names(baseline):
        info = LEVERS[name]
        value = float(getattr(baseline, name))
        if info.upper is not None and info.full_range:
            top = info.upper
        else:
            # Room to explore: three times history, and a floor so a zero history still has a range.
            floor = {"money": 1000.0, "days": 30.0, "count": 10.0, "ratio": 0.05}[info.unit]
            top = max(3 * value, floor)
            top = min(top, info.upper) if info.upper is not None else top
        step = 0.001 if info.unit == "ratio" and top >= 0.2 else _nice_step(top)
        step = max(step, 1.0) if info.unit == "days" else step
        out.append(SliderSpec(name, info.label, info.unit, info.help, value, 0.0, float(top), step,
                              _slider_format(info.unit, currency)))
    return out


def levers_from_values(baseline: Levers, values: dict[str, float | None]) -> Levers:
    """The baseline with the given lever values put in (unknown names and None ignored)."""
    update = {k: float(v) for k, v in values.items() if k in LEVERS and v is not None
              and getattr(baseline, k) is not None}
    return Levers.model_validate({**baseline.model_dump(), **update})


# ---------------------------------------------------------------------------------------
# What was known on a past day (so a forecast from a past as_of uses no later fact)



def _after(col: str, when: dt.date) -> pl.Expr:
    return pl.col(col).is_not_null() & (day(col) > when)


def _later_than(value: object, when: dt.date) -> bool:
    """Whether a date or timestamp falls on a day after `when` (None: no)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    return isinstance(value, dt.date) and value > when


def _null_after(df: pl.DataFrame, cols: list[str], when: dt.date) -> pl.DataFrame:
    """Empty the timestamps that lie after `when` (events not yet happened); a column without any is kept as is."""
    # A column's latest day says whether any of it lies after: one pass with no per-row day computed.
    later = [c for c in cols if _later_than(df[c].max(), when)]
    if not later:
        return df
    return df.with_columns(pl.when(_after(c, when)).then(None).otherwise(pl.col(c)).alias(c) for c in later)


# Stage and forecast category stay Categorical, as in the tables (frames.compact): a rebuilt deal keeps their type.
_OBSERVATION_SCHEMA = {"opportunity_id": pl.String, "obs_stage": pl.Categorical, "seen_at": pl.Datetime("us"),
                       "obs_amount": pl.Float64, "obs_close_date": pl.Date, "obs_forecast_category": pl.Categorical}


def _observations(frames: Frames, columns: list[str], rows: pl.Series | None = None) -> pl.DataFrame:
    """Dated sightings of deals' stages: stage history rows, then opportunity snapshot rows.

    `columns` picks from _OBSERVATION_SCHEMA; `rows` picks sightings by their number in that order,
    and the result follows `rows` (None: every sighting).
    """
    sources = [(frames.stage_history, "changed_at")]
    if frames.snapshots is not None:
        sources.append((frames.snapshots, "snapshot_date"))
    parts, positions, offset = [], [], 0
    for df, when in sources:
        names = {"opportunity_id": "opportunity_id", "stage": "obs_stage", when: "seen_at", "amount": "obs_amount",
                 "close_date": "obs_close_date", "forecast_category": "obs_forecast_category"}
        names = {src: dst for src, dst in names.items() if dst in columns}
        height = df.height
        if rows is not None:
            mine = (rows >= offset) & (rows < offset + height)
            positions.append(mine.arg_true())
            df = df.select(pl.col(c).gather(rows.filter(mine) - offset) for c in names if c in df.columns)
        offset += height
        parts.append(df.select(
            (pl.col(src) if src in df.columns else pl.lit(None)).cast(_OBSERVATION_SCHEMA[dst]).alias(dst)
            for src, dst in names.items()))
    out = pl.concat(parts)
    return out if rows is None else out.select(pl.all().gather(pl.concat(positions).arg_sort()))


def _ranks(ids: pl.Series) -> tuple[pl.Series, pl.Series]:
    """The distinct ids sorted (nulls left out), and each id's rank among them (null for a null id)."""
    order = ids.arg_sort(nulls_last=True)
    ordered = ids.gather(order)
    first = (ordered != ordered.shift(1)).fill_null(True) & ordered.is_not_null()
    rank = pl.select(pl.when(ordered.is_not_null()).then(first.cast(pl.UInt32).cum_sum() - 1)).to_series()
    # The ranks are put back in the ids' order by the inverse of the sort (integers: cheap to sort).
    return ordered.filter(first), rank.gather(order.arg_sort()).alias("code")


def _deal_ranks(frames: Frames) -> tuple[pl.Series, pl.Series]:
    """_ranks of the deals' ids: their distinct ids sorted, and each deal's code; once per deals table."""
    opps = frames.opportunities
    return derived(opps, "id_ranks", lambda: _ranks(opps["opportunity_id"]))


def _codes_of(ids: pl.Series, keys: pl.Series) -> pl.Series:
    """Each id's rank among `keys` (sorted distinct ids): null when null or not among them."""
    if ids.equals(keys):  # every deal sighted, each once, in id order (a history stored by deal): no search
        return pl.int_range(keys.len(), dtype=pl.UInt32, eager=True)
    if keys.is_empty():
        return pl.Series([None] * ids.len(), dtype=pl.UInt32)
    at = keys.search_sorted(ids, side="left").clip(0, keys.len() - 1).cast(pl.UInt32)
    return pl.select(pl.when(keys.gather(at) == ids).then(at)).to_series()


def _source_codes(frames: Frames, keys: pl.Series) -> list[pl.Series]:
    """Each source's sightings' codes (stage history's, then the snapshots'): their ids' ranks among `keys`
    (the deals' distinct ids sorted), null when null or no deal's.

    Codes order as the ids they stand for, but integers sort and compare far faster than text, and millions
    of them take a fraction of the memory.
    """
    # Stage history is mostly stored by deal: its ids are looked up once per run of a deal's rows, not per row.
    runs, row_run = id_runs(frames.stage_history)
    codes = [_codes_of(runs["opportunity_id"], keys).gather(row_run)]
    if frames.snapshots is not None:
        codes.append(_codes_of(frames.snapshots["opportunity_id"], keys))
    return codes


class _Part(NamedTuple):
    """One source's dated sightings grouped by deal (see _timeline)."""

    key: pl.Series  # each sighting's group and day in one number (see _day_key): by group, then time, sorted
    row: pl.Series  # each sighting's number (see _observations), in the order of key (ties in table order)
    group: pl.Series  # each deal's group, in table order (null: not seen in this source)
    last_day: pl.Series  # each deal's latest sighting day in this source, in table order (null: not seen)
    first_day: dt.date | None  # the source's earliest sighting day (None: no dated sighting)


class _Timeline(NamedTuple):
    """Deals' sightings grouped by deal, a part per source (see _timeline)."""

    parts: list[_Part]  # stage history's, then the snapshots'
    last_day: pl.Series  # each deal's latest sighting day, in table order (null: never seen)


def _in_order(codes: pl.Series, seen_at: pl.Series) -> bool:
    """Whether sightings already run by code, then time, with no null code (a source stored by deal)."""
    if codes.null_count():
        return False
    code, at = pl.col("code"), pl.col("at")
    ordered = (code > code.shift(1)) | ((code == code.shift(1)) & (at >= at.shift(1)))
    return bool(pl.DataFrame({"code": codes, "at": seen_at}).select(ordered.fill_null(True).all()).item())


_GROUP_UNIT = 2**32  # a group's keys lie in [grp × 2^32, (grp + 1) × 2^32): room for every day


def _day_key(group: pl.Expr, day_number: pl.Expr | int) -> pl.Expr:
    """A group and a day (days since 1970, possibly negative) in one number that sorts by group, then day."""
    return group.cast(pl.UInt64) * pl.lit(_GROUP_UNIT, dtype=pl.UInt64) + (
        pl.lit(day_number) if isinstance(day_number, int) else day_number).cast(pl.Int64).add(2**31).cast(pl.UInt64)


def _part(codes: pl.Series, seen_at: pl.Series, offset: int, deal_codes: pl.Series, deal_keys: int) -> _Part:
    """One source's sightings (codes, times; numbered from `offset`) grouped by code, then time; deals placed
    in their group by their codes (of `deal_keys` distinct ids)."""
    dated = None if seen_at.null_count() == 0 else seen_at.is_not_null().arg_true()
    if dated is None:
        rows = pl.int_range(offset, offset + codes.len(), dtype=pl.UInt32, eager=True)
    else:  # a sighting without a time is never 'by then'
        codes, seen_at, rows = codes.gather(dated), seen_at.gather(dated), dated + offset
    if not _in_order(codes, seen_at):
        # The order alone is sorted (ties in table order; null codes first), then each column put in it.
        order = pl.DataFrame({"code": codes, "at": seen_at}).select(
            pl.arg_sort_by("code", "at", maintain_order=True)).to_series()
        codes, seen_at, rows = codes.gather(order), seen_at.gather(order), rows.gather(order)
    # Within a deal a sighting's day orders as its time did: the day is all a cut-off compares.
    days = seen_at.cast(pl.Date)
    del seen_at
    ends = ~(codes.shift(-1) == codes).fill_null(False)  # a sighting of no deal's id is a group of its own
    key = pl.DataFrame({"grp": ends.shift(1, fill_value=False).cast(pl.UInt32).cum_sum(), "day": days}).select(
        _day_key(pl.col("grp"), pl.col("day").to_physical()).alias("key")).to_series()
    group_codes, group_days = codes.filter(ends), days.filter(ends)
    del codes
    # The groups of sightings of no deal's id come first; the others' codes are sorted.
    unnamed = group_codes.null_count()
    group_codes = group_codes.slice(unnamed)
    if group_codes.is_empty():
        group = pl.repeat(None, deal_codes.len(), dtype=pl.UInt32, eager=True).alias("grp")
    elif group_codes.len() == deal_keys:  # sorted distinct codes, every one of them: each deal's code is its group
        group = (deal_codes + unnamed).alias("grp")
    else:
        # A binary search places each deal in its group, if it has one.
        at = group_codes.search_sorted(deal_codes, side="left").clip(0, group_codes.len() - 1).cast(pl.UInt32)
        group = pl.select(pl.when(group_codes.gather(at) == deal_codes).then(at + unnamed)).to_series().alias("grp")
    first = days.min()
    return _Part(key, rows.cast(pl.UInt32).alias("row"), group, group_days.gather(group),
                 first if isinstance(first, dt.date) else None)


def _timeline(frames: Frames) -> _Timeline:
    """Every dated sighting grouped by deal, then time (ties in table order), a part per source, and each deal's
    latest sighting day; once per frames.

    The timeline keeps a sighting's number (see _observations) and its group and day in one sorted key, not
    its values: at a million deals the full sightings would hold half a gigabyte per frames, and a day needs
    the values of the few deals it rebuilds, found by a binary search each. Deals are placed in their group
    here, once, so that a day joins and sorts no text. Each source is grouped on its own: a stage history
    stored by deal, then time, is in order as it is (millions of rows not sorted), and a deal's latest
    sighting on a day is the later of its latest in each source (see _sightings_then).
    """
    def make() -> _Timeline:
        keys, deal_codes = _deal_ranks(frames)
        seen_at = _observations(frames, ["seen_at"])["seen_at"]
        parts, offset = [], 0
        for codes in _source_codes(frames, keys):
            parts.append(_part(codes, seen_at.slice(offset, codes.len()), offset, deal_codes, keys.len()))
            offset += codes.len()
        last_day = pl.DataFrame([p.last_day.alias(f"d{i}") for i, p in enumerate(parts)]).select(
            pl.max_horizontal(pl.all()).alias("last_day")).to_series()
        return _Timeline(parts, last_day)
    return derived(frames, "deal_sightings", make)


# What a deal rebuilt on a past day takes from its sighting then, and what it forgets.
_FROM_SIGHTING = ["obs_stage", "obs_amount", "obs_close_date", "obs_forecast_category"]
_FORGOTTEN = ("is_closed", "is_won", "probability", "lost_reason")


def _picked_rows(part: _Part, when: dt.date, groups: pl.Series) -> pl.Series:
    """The number of each of `groups`' latest sighting of the part on or before `when` (null: none)."""
    n = part.key.len()
    if n == 0 or groups.is_empty():
        return pl.repeat(None, groups.len(), dtype=pl.UInt32, eager=True).alias("row")
    # The keys sort by group, then day: a group's latest sighting by then is the last key up to (group, when),
    # if that key is still the group's. A binary search per deal, not a pass over every sighting per day.
    cut = pl.select(_day_key(pl.lit(groups.fill_null(0)), (when - dt.date(1970, 1, 1)).days)).to_series()
    last = part.key.search_sorted(cut, side="right").cast(pl.Int64) - 1
    at = last.clip(0, n - 1).cast(pl.UInt32)
    found = pl.DataFrame({"grp": groups, "last": last, "key": part.key.gather(at), "row": part.row.gather(at)})
    return found.select(pl.when((pl.col("last") >= 0) & (pl.col("key") // _GROUP_UNIT == pl.col("grp")))
                        .then("row").alias("row"))["row"]


def _values_at(frames: Frames, columns: list[str], rows: pl.Series) -> pl.DataFrame:
    """The sightings' values (see _observations) at `rows`, a row of nulls where a row number is null."""
    has = rows.is_not_null()
    values = _observations(frames, columns, rows.filter(has))
    aligned = pl.select(pl.when(has).then(has.cast(pl.UInt32).cum_sum() - 1)).to_series()
    return values.select(pl.all().gather(aligned))


def _sightings_then(frames: Frames, timeline: _Timeline, when: dt.date, deals: pl.Series) -> pl.DataFrame:
    """The values of the latest sighting on or before `when` of each of `deals` (rows of the deals table), null
    for a deal without one.

    The latest of all is the latest of each source's latest by time; at the same time the later-numbered
    (as the timeline of all sightings sorted by time, ties in table order, would give).
    """
    if deals.is_empty():
        return pl.DataFrame(schema={c: _OBSERVATION_SCHEMA[c] for c in _FROM_SIGHTING})
    best: pl.Series | None = None
    for part in timeline.parts:
        if part.first_day is None or part.first_day > when:
            continue  # nothing of this source seen by then (snapshots taken only lately): no deal looked up
        rows = _picked_rows(part, when, part.group.gather(deals))
        if best is not None:
            at_best = _values_at(frames, ["seen_at"], best)["seen_at"]
            at = _values_at(frames, ["seen_at"], rows)["seen_at"]
            later = rows.is_not_null() & (best.is_null() | (at > at_best) | ((at == at_best) & (rows > best)))
            rows = pl.select(pl.when(later).then(rows).otherwise(best)).to_series()
        best = rows
    if best is None:
        best = pl.repeat(None, deals.len(), dtype=pl.UInt32, eager=True).alias("row")
    return _values_at(frames, _FROM_SIGHTING, best)


def _opportunities_at(frames: Frames, when: dt.date, columns: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Deals as they stood at the end of `when` (only `columns` of them, in that order, when given).

    Deals created later are dropped. A deal closed by then keeps its row. A deal closed
    later, or whose stage changed later, is open then, at the stage of its latest stage-history
    or snapshot sighting on or before that day (unknown when there is none), with that
    sighting's amount and expected close date (else today's: the best estimate there is),
    and without its later probability and forecast category.
    """
    opps = frames.opportunities
    timeline = _timeline(frames)
    closed_then = pl.col("state").is_in(["won", "lost"]) & pl.col("close_date").is_not_null() & (
        pl.col("close_date") <= when)
    seen_later = (pl.col("_last_day") > when).fill_null(False)
    created = pl.col("created_at").is_null() | (day("created_at") <= when)
    # Deals created later are dropped below: none of them is rebuilt.
    marks = opps.select("state", "close_date", "created_at").with_columns(_last_day=timeline.last_day).select(
        (created & ~closed_then & ((pl.col("state") != "open") | seen_later)).alias("redo"), created.alias("created"))
    kept = marks["created"]
    count = int(kept.sum())
    # Only the columns asked for are cut and rebuilt (a selection of columns copies none).
    table = opps if columns is None else opps.select([c for c in columns if c in opps.columns])
    # Deals listed in creation order: those created by then are the first rows, and a slice copies no column.
    same_rows = count == kept.len() or bool(kept.head(count).all())
    base = table if count == kept.len() else table.head(count) if same_rows else table.filter(kept)
    redo = marks["redo"].arg_true()  # rows of the table
    if redo.is_empty():
        return base
    at = redo if same_rows else marks.filter(kept)["redo"].arg_true()  # the same deals' rows in base
    # Only the deals to rebuild are looked up and classified; the others keep their row as it is.
    sub = opps.select("stage", "amount", "close_date", "forecast_category").gather(redo).hstack(
        _sightings_then(frames, timeline, when, redo))
    rebuilt = classify(sub.select(
        pl.col("obs_stage").alias("stage"),
        pl.coalesce("obs_amount", "amount").alias("amount"),
        pl.coalesce("obs_close_date", "close_date").alias("close_date"),
        pl.col("obs_forecast_category").alias("forecast_category"),
        *[pl.lit(None, dtype=opps.schema[c]).alias(c) for c in _FORGOTTEN],
    ), frames.settings)
    columns = []
    for c in [c for c in rebuilt.columns if c in base.columns]:
        # Written into a copy of the column at the rebuilt rows: every other column stays shared.
        column = base[c].clone()
        column.scatter(at, rebuilt[c].cast(base.schema[c]))
        columns.append(column)
    return base.with_columns(columns)


def known_at(frames: Frames, when: dt.date) -> Frames:
    """The tables as they stood at the end of `when`: later rows dropped, later outcomes undone.

    Subscriptions started later are dropped and a later end is unknown then (open); leads,
    usage, spend and touches keep what happened by then; targets are plans, kept whole. The
    same day asked twice (a forecast and its backtest) gives the same frames.
    """
    # Two days only (a forecast's as-of and the day its past-due deals are measured), and in the app for
    # one computation only (transient, see memo.scope): each holds a rebuilt deals table (a million rows
    # at scale) that no later page asks for again.
    return derived(frames, "known_at", lambda: _known_at(frames, when), key=when, limit=2, transient=True)


# The deals' columns a forecast reads besides the metrics (which narrow their own, see metrics.common.deals).
_FORECAST_DEAL_COLUMNS = (*VALUE_COLUMNS, "opportunity_id", "type")


def known_deals(frames: Frames, when: dt.date) -> Frames:
    """deal_frames(known_at(frames, when)): the tables as they stood at the end of `when`, the deals narrowed to
    the columns a forecast reads.

    Only those columns of the deals are rebuilt (the deals table of known_at is then never made): a day
    costs a third of the memory and of the copying at a million deals. Kept like known_at (two days,
    for one computation in the app).
    """
    def make() -> Frames:
        return known_at(frames, when).derive(
            opportunities=lambda: _opportunities_at(frames, when, _FORECAST_DEAL_COLUMNS))
    return derived(frames, "known_deals", make, key=when, limit=2, transient=True)


def deal_frames(frames: Frames) -> Frames:
    """The frames with the deals narrowed to the columns a forecast reads (the same narrowed table each time).

    Selections of deals (open at a day, won in a window) then copy those few columns, not every
    column of every deal (names, owners, accounts: most of the cost at a million deals).
    """
    opps = frames.opportunities
    # Kept on the deals table, not on the frames: derived frames refer to their parent, and a value that
    # refers back to its owner would keep both alive until a garbage collection (hundreds of MB at scale).
    narrow = derived(opps, "forecast_deal_columns",
                     lambda: opps.select([c for c in _FORECAST_DEAL_COLUMNS if c in opps.columns]))
    return frames.derive(opportunities=narrow)


def _leads_by(frames: Frames, when: dt.date) -> pl.DataFrame:
    """Leads created by the end of `when` (the table itself when that is every lead)."""
    # Leads in creation order are cut, not copied (rows_between); untouched columns stay shared.
    cut = rows_between(frames.leads, "created_at", dt.date.min, when)
    return frames.leads if cut.height == frames.leads.height else cut


def _deal_links_at(frames: Frames, links: pl.Series, when: dt.date) -> pl.Series:
    """Leads' deal ids as known at the end of `when`: a link to a deal created later is emptied."""
    later_deals = frames.opportunities.select("opportunity_id", "created_at").filter(
        _after("created_at", when))["opportunity_id"]
    if later_deals.is_empty():
        return links
    return pl.select(pl.when(links.is_in(later_deals.implode())).then(None).otherwise(links)).to_series().alias(
        links.name)


def _known_at(frames: Frames, when: dt.date) -> Frames:
    # Each table is rebuilt only if something reads it (a baseline needs deals, leads and subscriptions).
    # A table with nothing after the day is returned itself, not a copy: what other computations derived
    # from it (revenue movements, lead windows) is shared, as at the latest day of the data.
    def subs() -> pl.DataFrame:
        table = frames.subscriptions
        if not _later_than(table["start_date"].max(), when) and not _later_than(table["end_date"].max(), when):
            return table
        return table.filter(pl.col("start_date") <= when).with_columns(
            pl.when(pl.col("end_date") > when).then(None).otherwise(pl.col("end_date")).alias("end_date"))

    def leads() -> pl.DataFrame:
        known = _null_after(_leads_by(frames, when),
                            ["first_response_at", "mql_at", "sql_at", "pql_at", "converted_at"], when)
        ids = known["opportunity_id"]
        links = _deal_links_at(frames, ids, when)
        return known if links is ids else known.with_columns(links)

    def lifecycle() -> pl.DataFrame:
        return _null_after(frames.lifecycle.filter(pl.col("won_at").is_null() | (day("won_at") <= when)),
                           ["kickoff_at", "first_value_at", "renewal_outreach_at"], when)

    def snapshots() -> pl.DataFrame | None:
        snaps = frames.snapshots
        return snaps.filter(pl.col("snapshot_date") <= when) if snaps is not None else None

    return frames.derive(
        opportunities=lambda: _opportunities_at(frames, when),
        stage_history=lambda: frames.stage_history.filter(day("changed_at") <= when),
        snapshots=snapshots,  # type: ignore[arg-type]
        subscriptions=subs,
        leads=leads,
        lifecycle=lifecycle,
        usage=lambda: frames.usage.filter(pl.col("date") <= when),
        spend=lambda: frames.spend.filter(pl.col("month").cast(pl.Date).dt.month_start() <= when),
        touches=lambda: frames.touches.filter(day("touched_at") <= when),
    )


# ---------------------------------------------------------------------------------------
# Baseline from history


def _value(metric_id: str, frames: Frames, period: Period) -> tuple[float | None, str | None]:
    # A lever is a number only: its drill-down rows would be sorted and thrown away (seconds at scale).
    result = compute(metric_id, frames, period, details=False)
    return result.value, result.reason


def _gross_churn_monthly(frames: Frames, trailing: Period) -> tuple[float | None, str | None]:
    """Σ churn + contraction MRR at the month ends of the trailing year ÷ (12 × MRR the day before it).

    The same base and scale as the expansion_rate metric, so the two rates are comparable.
    """
    before = trailing.start - dt.timedelta(days=1)
    base = float(mrr_by_account(frames.subscriptions, before)["mrr"].sum())
    if base <= 0:
        return None, f"No recurring revenue on {before.isoformat()} to measure churn against."
    moves = movements(frames.subscriptions, trailing.start, trailing.end)
    lost = float(moves.filter(pl.col("movement").is_in(["churn", "contraction"]))["amount"].sum())
    return lost / (12 * base), None


def _created_per_month(frames: Frames, period: Period) -> float:
    """Deals created in the window per average month of 365.25 / 12 days."""
    created = int(frames.opportunities.select(in_window("created_at", period).sum()).item())
    return created * DAYS_PER_MONTH / period.days


def _baseline(frames: Frames, period: Period, bookings_only: bool = False) -> tuple[Levers, dict[str, str]]:
    """Historical levers (0 where history is missing) and, for those, the reason.

    bookings_only: the levers the baseline forecast's bookings depend on; the ARR rates are left at 0
    and the lead levers empty (at their own baseline they move nothing, see inbound_multiplier).
    """
    trailing = Period.ending(period.as_of, TRAILING_DAYS, period.fiscal_start_month)
    gaps: dict[str, str] = {}
    values: dict[str, float | None] = {}
    # The deal levers read the deals' value columns only: from the narrowed deals the forecast reads too, so
    # that the closed deals are picked out of one table per day, not two.
    deals = deal_frames(frames)
    for name in ("win_rate", "avg_deal_size", "sales_cycle_days"):
        values[name], reason = _value(name, deals, period)
        if values[name] is None:
            gaps[name] = reason or "No history."
    if bookings_only:
        known = {k: (v if v is not None else 0.0) for k, v in values.items()}
        return Levers(**known, pipeline_created_per_month=_created_per_month(deals, period),
                      gross_churn_rate=0.0, expansion_rate=0.0), gaps
    expansion, reason = _value("expansion_rate", frames, trailing)
    values["expansion_rate"] = expansion / 12 if expansion is not None else None
    if expansion is None:
        gaps["expansion_rate"] = reason or "No history."
    values["gross_churn_rate"], reason = _gross_churn_monthly(frames, trailing)
    if values["gross_churn_rate"] is None:
        gaps["gross_churn_rate"] = reason or "No history."
    values["pipeline_created_per_month"] = _created_per_month(deals, period)
    for name in ("lead_response_sla", "mql_to_sql"):
        values[name], _ = _value(name, frames, period)
    required = {k: (v if v is not None else 0.0) for k, v in values.items()
                if k not in ("lead_response_sla", "mql_to_sql")}
    return Levers(**required, lead_response_sla=values["lead_response_sla"],
                  mql_to_sql=values["mql_to_sql"]), gaps


def baseline_levers(frames: Frames, period: Period) -> Levers:
    """Each lever at its historical value as of period.as_of (0 where there is no history)."""
    return _baseline(known_at(frames, period.as_of), period)[0]


# ---------------------------------------------------------------------------------------
# How the lead levers reach pipeline creation


@dataclass(frozen=True)
class LeadEffect:
    """What the lead levers act on: the inbound share of deals and lead conversion by response."""

    inbound_share: float
    converted_within_sla: float | None
    converted_outside_sla: float | None


def _lead_effect(frames: Frames, period: Period, share: float) -> LeadEffect:
    """The inbound share (see _inbound_share) with lead → opportunity conversion by SLA met or not, of the
    leads created in the window."""
    leads = frames.leads
    window = leads.filter(in_window("created_at", period)).with_columns(
        within=pl.col("first_response_at").is_not_null()
        & (fractional_minutes("created_at", "first_response_at") <= frames.settings.slas.lead_response_minutes),
        converted=pl.col("opportunity_id").is_not_null() | pl.col("converted_at").is_not_null(),
    )
    rates = window.group_by("within").agg(rate=pl.col("converted").mean())
    by = dict(zip(rates["within"].to_list(), rates["rate"].to_list(), strict=True))
    return LeadEffect(share, by.get(True), by.get(False))


def _distinct_ids(frames: Frames) -> bool:
    """Whether every deal has an id of its own (once per deals table)."""
    ids = frames.opportunities["opportunity_id"]
    nulls = ids.null_count()
    # Counted from the deals' distinct ids sorted (the timeline's too): no hash of every id (is_duplicated).
    return nulls <= 1 and _deal_ranks(frames)[0].len() == ids.len() - nulls


def _inbound_share_at(frames: Frames, known: Frames, period: Period) -> float:
    """_inbound_share of the frames as known at period.as_of (`known`), from the leads' deal ids alone."""
    if _distinct_ids(frames):
        # A deal created in the window is then no deal created later: emptying the links to those changes
        # none of its matches, and one match shows some link is left. A pass over the leads saved per day.
        # Deals keep their id and creation as known then: the window's deals are the same rows of the table.
        keys, deal_codes = _deal_ranks(frames)
        created = deal_codes.filter(frames.opportunities.select(in_window("created_at", period)).to_series())
        linked = _lead_links(frames).filter(
            pl.col("created_at").cast(pl.Date).is_between(dt.date.min, period.as_of, closed="both"))["code"]
        # Which deals a lead by then links to, as a mark per deal: integers looked up, not text hashed.
        marked = pl.repeat(False, keys.len(), dtype=pl.Boolean, eager=True).scatter(linked.drop_nulls(), True)
        hits = int(marked.gather(created).sum())
        if hits:
            return float(hits / created.len())
    links = _leads_by(frames, period.as_of)["opportunity_id"]
    return _inbound_share(known, period, _deal_links_at(frames, links, period.as_of))


def _lead_links(frames: Frames) -> pl.DataFrame:
    """The leads with a deal id: their creation time and the code of the deal they link to (see _deal_ranks;
    null when it is no deal's id); once per frames."""
    def make() -> pl.DataFrame:
        leads = frames.leads.select("created_at", "opportunity_id").filter(pl.col("opportunity_id").is_not_null())
        return leads.select("created_at", code=_codes_of(leads["opportunity_id"], _deal_ranks(frames)[0]))
    return derived(frames, "lead_links", make)


def _inbound_share(frames: Frames, period: Period, links: pl.Series) -> float:
    """Deals created in the window that a lead (its deal id among `links`) converted into ÷ deals created
    in the window; 1 when no lead links to a deal."""
    created = frames.opportunities.select("opportunity_id", "created_at").filter(
        in_window("created_at", period))["opportunity_id"]
    linked = links.drop_nulls()
    if linked.is_empty():
        return 1.0
    return float(created.is_in(linked).sum() / created.len()) if created.len() else 0.0


def inbound_multiplier(effect: LeadEffect, baseline: Levers, levers: Levers) -> float:
    """Factor on pipeline creation from the lead levers.

    Inbound creation scales with mql_to_sql ÷ its historical value, and with the share of
    leads that become deals at the lever's response compliance x: reach(x) = c_out +
    x × max(c_in − c_out, 0), where c_in and c_out are the lead → opportunity conversion of
    leads answered within the SLA and of the others, measured in the window (no lift when
    either group is empty or fast answers convert no better). Outbound deals are untouched:
    factor = 1 − s + s × mql factor × SLA factor, s the inbound share.
    """
    mql = 1.0
    if levers.mql_to_sql is not None and baseline.mql_to_sql:
        mql = levers.mql_to_sql / baseline.mql_to_sql
    sla = 1.0
    c_in, c_out = effect.converted_within_sla, effect.converted_outside_sla
    if (levers.lead_response_sla is not None and baseline.lead_response_sla is not None
            and c_in is not None and c_out is not None):
        lift = max(c_in - c_out, 0.0)
        then = c_out + baseline.lead_response_sla * lift
        if then > 0:
            sla = (c_out + levers.lead_response_sla * lift) / then
    s = effect.inbound_share
    return 1 - s + s * mql * sla


# ---------------------------------------------------------------------------------------
# The forecast


@dataclass(frozen=True)
class ForecastInputs:
    """Everything the forecast needs from the data, computed once; `project` applies levers to it."""

    as_of: dt.date
    months: list[dt.date]  # first day of each horizon month
    open_fraction: list[float]  # share of each month's days after as_of (0 for months already over)
    won: list[float]  # bookings already won in each month, up to as_of
    pipeline: pl.DataFrame  # open deals: month_idx, amount, probability, adds_arr
    arr_actual: list[float | None]  # ARR at month ends on or before as_of
    arr_start: float  # ARR(as_of)
    targets: list[float | None]
    new_business_share: float  # share of won amount that is new ARR (new business or untyped)
    lead_effect: LeadEffect
    past_due: PastDue
    baseline: Levers
    gaps: dict[str, str] = field(default_factory=dict)

    @property
    def first_open(self) -> int:
        """Index of the first month with days after as_of."""
        return next(i for i, f in enumerate(self.open_fraction) if f > 0)


def horizon(as_of: dt.date, fiscal_start_month: int = 1) -> list[dt.date]:
    """First days of the 12 months of the four fiscal quarters from the one holding the day after as_of."""
    start = quarter_bounds(as_of + dt.timedelta(days=1), fiscal_start_month)[0]
    return [add_months(start, i) for i in range(HORIZON_MONTHS)]


def _open_fraction(month: dt.date, as_of: dt.date) -> float:
    """Share of the month's days that lie after as_of."""
    last = month_end(month)
    if as_of >= last:
        return 0.0
    if as_of < month:
        return 1.0
    return (last - as_of).days / last.day


def _month_index(col: str, first: dt.date) -> pl.Expr:
    """Months between the column's month and the horizon's first month."""
    return (pl.col(col).dt.year() * 12 + pl.col(col).dt.month()) - (first.year * 12 + first.month)


def _adds_arr() -> pl.Expr:
    return ~pl.col("type").fill_null("").is_in(NOT_NEW_ARR_TYPES)


def _probability(fallback: float) -> pl.Expr:
    """A deal's chance to win: its own probability, else its stage's default, else the historical win rate."""
    return pl.coalesce("probability", "stage_probability", pl.lit(fallback)).clip(0, 1).cast(pl.Float64)


@dataclass(frozen=True)
class PastDue:
    """How past-due deals have really turned out: won value ÷ weighted value, measured PAST_DUE_LOOKBACK days ago."""

    factor: float
    deals: int
    measured_on: dt.date
    note: str


PAST_DUE_LOOKBACK = 90


def past_due_realization(frames: Frames, as_of: dt.date, fallback: float) -> PastDue:
    """The share of their weighted value that deals already past due 90 days before as_of went on to win by as_of.

    A deal past its expected close date is not as likely to close as its stage says; this
    measures by how much, on the company's own deals (1 when none was past due then).
    """
    ref = as_of - dt.timedelta(days=PAST_DUE_LOOKBACK)
    then = known_deals(frames, ref)
    due = open_at(then, ref).filter(pl.col("amount").is_not_null() & (pl.col("close_date") <= ref))
    expected = float(due.select((pl.col("amount") * _probability(fallback)).sum()).item()) if due.height else 0.0
    if expected <= 0:
        return PastDue(1.0, 0, ref, f"No deal was past due on {ref.isoformat()}: past-due deals count at their "
                                    "full probability.")
    now = known_deals(frames, as_of).opportunities.select("opportunity_id", "state").filter(
        pl.col("state") == "won")
    won = float(due.filter(pl.col("opportunity_id").is_in(now["opportunity_id"].implode()))["amount"].sum())
    factor = won / expected
    return PastDue(factor, due.height, ref,
                   f"Of the {due.height} deals already past their close date on {ref.isoformat()}, "
                   f"{factor * 100:.0f} % of the weighted value was won by {as_of.isoformat()}: past-due deals "
                   f"count at {factor * 100:.0f} % of their probability.")


def _pipeline(frames: Frames, as_of: dt.date, months: list[dt.date], first_open: int,
              fallback_probability: float, past_due_factor: float) -> pl.DataFrame:
    """Open deals at as_of with the horizon month they are expected to close in and their probability.

    Past-due deals (expected close on or before as_of) and undated ones count in the first open
    month; past-due ones at their probability × the measured past-due realization.
    """
    deals = open_at(deal_frames(frames), as_of).filter(pl.col("amount").is_not_null())
    idx = _month_index("close_date", months[0])
    past_due = pl.col("close_date").is_not_null() & (pl.col("close_date") <= as_of)
    due_later = pl.col("close_date").is_not_null() & (pl.col("close_date") > as_of) & (idx >= first_open)
    return deals.select(
        pl.when(due_later).then(idx).otherwise(first_open).cast(pl.Int64).alias("month_idx"),
        pl.col("amount").cast(pl.Float64),
        pl.when(past_due).then(_probability(fallback_probability) * past_due_factor)
        .otherwise(_probability(fallback_probability)).clip(0, 1).alias("probability"),
        past_due.alias("past_due"),
        _adds_arr().alias("adds_arr"),
        "opportunity_id",
    ).filter(pl.col("month_idx") < len(months))


def prepare(frames: Frames, period: Period) -> ForecastInputs:
    """Read from the data what the forecast needs, as known at period.as_of."""
    return _prepare(frames, period, bookings_only=False)


def prepare_bookings(frames: Frames, period: Period) -> ForecastInputs:
    """What the baseline forecast's bookings need, as known at period.as_of (a backtest's quarter).

    Only the bookings columns of project(inputs, inputs.baseline) are meant: ARR is not measured
    (its rates 0, no ARR), nor the lead levers (none; at the baseline they move nothing), nor the
    lead conversion by response (only the inbound share).
    """
    return _prepare(frames, period, bookings_only=True)


def _prepare(frames: Frames, period: Period, bookings_only: bool) -> ForecastInputs:
    as_of = period.as_of
    # Every read of the deals below is of the columns deal_frames keeps (the deal levers included).
    known = known_deals(frames, as_of)
    baseline, gaps = _baseline(known, period, bookings_only)
    past_due = past_due_realization(frames, as_of, baseline.win_rate)
    months = horizon(as_of, period.fiscal_start_month)
    fraction = [_open_fraction(m, as_of) for m in months]
    first_open = next(i for i, f in enumerate(fraction) if f > 0)
    won_rows = won_between(known, months[0], as_of).filter(pl.col("amount").is_not_null())
    won_by = won_rows.group_by(_month_index("close_date", months[0]).alias("i")).agg(pl.col("amount").sum())
    won_map = dict(zip(won_by["i"].to_list(), won_by["amount"].to_list(), strict=True))
    window_won = won_between(known, period.start, period.end).filter(pl.col("amount").is_not_null())
    total_won = float(window_won["amount"].sum())
    nb_share = float(window_won.filter(_adds_arr())["amount"].sum()) / total_won if total_won > 0 else 1.0
    months_n = len(months)
    # The inbound share from the leads' deal links alone, as the backtest's days have it (their deals coded once).
    share = _inbound_share_at(frames, known, period)
    if bookings_only:
        # The leads' other columns are not rebuilt.
        lead_effect = LeadEffect(share, None, None)
        arr_actual: list[float | None] = [None] * months_n
        arr_start = 0.0
    else:
        lead_effect = _lead_effect(known, period, share)
        subs = known.subscriptions
        arr_actual = [arr_at(subs, month_end(m)) if month_end(m) <= as_of else None for m in months]
        arr_start = arr_at(subs, as_of)
    return ForecastInputs(
        as_of=as_of,
        months=months,
        open_fraction=fraction,
        won=[float(won_map.get(i, 0.0)) for i in range(len(months))],
        pipeline=_pipeline(known, as_of, months, first_open, baseline.win_rate, past_due.factor),
        past_due=past_due,
        arr_actual=arr_actual,
        arr_start=arr_start,
        targets=[target_between(known, m, month_end(m))[0] for m in months],
        new_business_share=nb_share,
        lead_effect=lead_effect,
        baseline=baseline,
        gaps=gaps,
    )


def _lag_weights(cycle_days: float) -> tuple[int, float]:
    """Whole months of lag and the share of a month's new deals that book one month later still."""
    lag = cycle_days / DAYS_PER_MONTH
    whole = math.floor(lag)
    return whole, lag - whole


def _pipeline_by_month(inputs: ForecastInputs, odds: float) -> tuple[list[float], list[float]]:
    """Expected bookings from the open deals in each horizon month, and the part of it that is new ARR, with
    every deal's probability × odds (capped at 1).

    Kept per inputs and odds: the levers other than the win rate (most of a sensitivity's forecasts, a
    move of another slider) leave it as it is, and it is the one part of a forecast that reads every deal.
    """
    def make() -> tuple[list[float], list[float]]:
        pipe = (inputs.pipeline.with_columns(expected=pl.col("amount") * (pl.col("probability") * odds).clip(0, 1))
                .group_by("month_idx")
                .agg(pl.col("expected").sum(), arr=pl.col("expected").filter(pl.col("adds_arr")).sum()))
        pipe_map = {r["month_idx"]: (r["expected"], r["arr"]) for r in pipe.iter_rows(named=True)}
        n = len(inputs.months)
        return ([float(pipe_map.get(i, (0.0, 0.0))[0]) for i in range(n)],
                [float(pipe_map.get(i, (0.0, 0.0))[1]) for i in range(n)])
    return derived(inputs, "pipeline_by_month", make, key=odds)


def project(inputs: ForecastInputs, levers: Levers) -> pl.DataFrame:
    """The monthly forecast under `levers` (columns month, quarter_start, status, bookings_won, bookings_from_pipeline,
    bookings_from_new_pipeline, bookings, new_arr, arr, target, cumulative, cumulative_target)."""
    # A page asks for the same levers' forecast several times a run (cards, sensitivity, scenarios): once each.
    return derived(inputs, "projection", lambda: _project(inputs, levers), key=levers)


def _project(inputs: ForecastInputs, levers: Levers) -> pl.DataFrame:
    n = len(inputs.months)
    base = inputs.baseline

    # from pipeline: the win-rate lever scales every open deal's odds in proportion, capped at 1
    odds = levers.win_rate / base.win_rate if base.win_rate > 0 else 1.0
    from_pipeline, pipeline_arr = _pipeline_by_month(inputs, odds)

    # from new pipeline: each month's new deals book one sales cycle later
    per_deal = levers.win_rate * levers.avg_deal_size
    created = levers.pipeline_created_per_month * inbound_multiplier(inputs.lead_effect, base, levers)
    whole, later_share = _lag_weights(levers.sales_cycle_days)
    from_new = [0.0] * n
    for i in range(n):
        value = created * inputs.open_fraction[i] * per_deal
        for lag, share in ((whole, 1 - later_share), (whole + 1, later_share)):
            if i + lag < n:
                from_new[i + lag] += value * share

    # ARR: the base rolled forward with the monthly rates, plus new-business bookings as annual value
    growth = max(0.0, 1 - levers.gross_churn_rate + levers.expansion_rate)
    arr: list[float] = []
    new_arr: list[float] = []
    previous = inputs.arr_start
    for i in range(n):
        added = pipeline_arr[i] + from_new[i] * inputs.new_business_share
        actual = inputs.arr_actual[i]
        if actual is not None:
            arr.append(actual)
            new_arr.append(0.0)
            continue
        previous = previous * growth ** inputs.open_fraction[i] + added
        arr.append(previous)
        new_arr.append(added)

    status = ["actual" if f == 0 else ("partial" if f < 1 else "forecast") for f in inputs.open_fraction]
    quarter_starts = [inputs.months[3 * (i // 3)] for i in range(n)]
    return pl.DataFrame({
        "month": inputs.months,
        "quarter_start": quarter_starts,
        "status": status,
        "bookings_won": inputs.won,
        "bookings_from_pipeline": from_pipeline,
        "bookings_from_new_pipeline": from_new,
        "new_arr": new_arr,
        "arr": arr,
        "target": inputs.targets,
    }, schema_overrides={"target": pl.Float64}).with_columns(
        bookings=pl.col("bookings_won") + pl.col("bookings_from_pipeline") + pl.col("bookings_from_new_pipeline"),
    ).with_columns(
        cumulative=pl.col("bookings").cum_sum(),
        cumulative_target=pl.col("target").cum_sum(),
    ).select("month", "quarter_start", "status", "bookings_won", "bookings_from_pipeline", "bookings_from_new_pipeline",
             "bookings", "new_arr", "arr", "target", "cumulative", "cumulative_target")


def forecast(frames: Frames, period: Period, levers: Levers) -> pl.DataFrame:
    """The monthly bookings and ARR forecast of the four quarters from period.as_of under `levers`."""
    return project(prepare(frames, period), levers)


# ---------------------------------------------------------------------------------------
# Summaries


def quarterly(fc: pl.DataFrame) -> pl.DataFrame:
    """The forecast by quarter: bookings, target, ARR at the quarter's end."""
    return fc.group_by("quarter_start", maintain_order=True).agg(
        pl.col("bookings_won", "bookings_from_pipeline", "bookings_from_new_pipeline", "bookings").sum(),
        pl.when(pl.col("target").is_not_null().any()).then(pl.col("target").sum()).alias("target"),
        pl.col("arr").last(),
    ).with_columns(gap_to_target=pl.col("bookings") - pl.col("target"))


@dataclass(frozen=True)
class Headline:
    """The numbers on top of the page: the first quarter against target, year-end ARR against the baseline."""

    quarter_start: dt.date
    quarter_end: dt.date
    quarter_bookings: float
    quarter_target: float | None
    total_bookings: float
    baseline_total_bookings: float
    year_end_arr: float
    baseline_year_end_arr: float
    arr_date: dt.date  # the last horizon month's end, the date of year_end_arr


def headline(fc: pl.DataFrame, baseline_fc: pl.DataFrame) -> Headline:
    """First-quarter bookings vs target and year-end ARR vs the baseline forecast."""
    first = quarterly(fc).row(0, named=True)
    start = first["quarter_start"]
    return Headline(
        quarter_start=start,
        quarter_end=add_months(start, 3) - dt.timedelta(days=1),
        quarter_bookings=float(first["bookings"]),
        quarter_target=first["target"],
        total_bookings=float(fc["bookings"].sum()),
        baseline_total_bookings=float(baseline_fc["bookings"].sum()),
        year_end_arr=float(fc["arr"][-1]),
        baseline_year_end_arr=float(baseline_fc["arr"][-1]),
        arr_date=month_end(fc["month"][-1]),
    )


def sensitivity_of(inputs: ForecastInputs, levers: Levers, pct: float = 0.10) -> pl.DataFrame:
    """How ±pct on each lever moves total bookings and year-end ARR (one row per lever, largest swing first)."""
    base_fc = project(inputs, levers)
    base_bookings, base_arr = float(base_fc["bookings"].sum()), float(base_fc["arr"][-1])
    rows = []
    for name in lever_names(levers):
        low, high = scaled(levers, name, 1 - pct), scaled(levers, name, 1 + pct)
        low_fc, high_fc = project(inputs, low), project(inputs, high)
        rows.append({
            "lever": name, "label": LEVERS[name].label, "unit": LEVERS[name].unit,
            "value": getattr(levers, name), "low": getattr(low, name), "high": getattr(high, name),
            "bookings_base": base_bookings,
            "bookings_low": float(low_fc["bookings"].sum()), "bookings_high": float(high_fc["bookings"].sum()),
            "arr_base": base_arr, "arr_low": float(low_fc["arr"][-1]), "arr_high": float(high_fc["arr"][-1]),
        })
    schema = {"lever": pl.String, "label": pl.String, "unit": pl.String, "value": pl.Float64, "low": pl.Float64,
              "high": pl.Float64, "bookings_base": pl.Float64, "bookings_low": pl.Float64,
              "bookings_high": pl.Float64, "arr_base": pl.Float64, "arr_low": pl.Float64, "arr_high": pl.Float64}
    return pl.DataFrame(rows, schema=schema).with_columns(
        bookings_swing=(pl.col("bookings_high") - pl.col("bookings_low")).abs(),
        arr_swing=(pl.col("arr_high") - pl.col("arr_low")).abs(),
    ).sort("arr_swing", "bookings_swing", descending=True)


def sensitivity(frames: Frames, period: Period, levers: Levers, pct: float = 0.10) -> pl.DataFrame:
    """How ±pct on each lever moves total bookings and ARR at month 12 (the tornado)."""
    return sensitivity_of(prepare(frames, period), levers, pct)


def compare(inputs: ForecastInputs, scenarios: dict[str, Levers]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scenarios side by side: a summary (one row per scenario with its levers) and the monthly lines."""
    lines, summary = [], []
    for name, levers in scenarios.items():
        fc = project(inputs, levers)
        lines.append(fc.select("month", "bookings", "cumulative", "arr").with_columns(scenario=pl.lit(name)))
        first_q = quarterly(fc).row(0, named=True)
        summary.append({"scenario": name, "first_quarter_bookings": float(first_q["bookings"]),
                        "total_bookings": float(fc["bookings"].sum()), "year_end_arr": float(fc["arr"][-1]),
                        **{k: getattr(levers, k) for k in LEVERS}})
    schema = {"scenario": pl.String, "first_quarter_bookings": pl.Float64, "total_bookings": pl.Float64,
              "year_end_arr": pl.Float64, **{k: pl.Float64 for k in LEVERS}}
    long = pl.concat(lines) if lines else pl.DataFrame(schema={"month": pl.Date, "bookings": pl.Float64,
                                                               "cumulative": pl.Float64, "arr": pl.Float64,
                                                               "scenario": pl.String})
    return pl.DataFrame(summary, schema=schema), long


__all__ = ["DAYS_PER_MONTH", "LEVERS", "ForecastInputs", "Headline", "LeadEffect", "LeverInfo", "Levers",
           "SliderSpec", "baseline_levers", "compare", "deal_frames", "forecast", "headline", "horizon",
           "inbound_multiplier", "known_at", "known_deals", "lever_names", "levers_from_values", "prepare", "prepare_bookings",
           "project", "quarterly", "scaled", "sensitivity", "sensitivity_of", "slider_specs"]
