"""Funnel conversion: the lead funnel and the opportunity stage funnel, by cohort, segment, source or owner."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from revops.frames import Frames
from revops.memo import derived
from revops.reads import reads_from_file, rows_with_keys
from revops.rows import rows_between, runs_of
from revops.period import Period
from revops.schema import Settings
from revops.stages import stage_key_expr, stage_lookup

By = Literal["cohort", "segment", "source", "owner"]
# The breakdowns a user can pick, with their labels.
BY_OPTIONS: dict[str, str] = {"cohort": "Cohort (month created)", "segment": "Segment",
                              "source": "Source", "owner": "Owner"}
LEAD_STAGES: tuple[str, ...] = ("Lead", "MQL", "SQL", "Opportunity", "Won")
# Fewer deals than this make a conversion rate too noisy to call a stage the bottleneck.
MIN_STAGE_VOLUME = 20
NONE_LABEL = "(none)"
_DT = pl.Datetime("us")

STAGE_CONVERSION_SCHEMA = {"stage": pl.String, "entered": pl.Int64, "converted": pl.Int64,
                           "rate": pl.Float64, "median_days": pl.Float64}
FUNNEL_SCHEMA = {"step": pl.Int64, "stage": pl.String, "entered": pl.Int64, "converted": pl.Int64,
                 "rate": pl.Float64, "cumulative_rate": pl.Float64, "median_days": pl.Float64,
                 "p90_days": pl.Float64, "timed": pl.Int64}

# How the page explains the numbers (shown under "How it is counted").
HOW_COUNTED = """\
- The cohort is the deals (leads) created in the window; a deal without created_at is dated by
  its first stage-history row.
- "Reached" is cumulative: a deal that reached a later stage reached every earlier one. Its
  furthest stage comes from stage history, else its current stage; a won deal reached every
  open stage and the won stage. A lost deal reached the furthest open stage its history shows;
  without history only the first stage, because nothing says how far it got and crediting it
  with more would flatter the late stages.
- Entered = deals that reached the stage; converted = those that reached the next one; a deal
  still open in a stage has not converted (yet). Cumulative rate = entered ÷ the cohort.
- Days in stage, from stage history: every visit lasts from entering the stage to entering
  whatever comes next (the close date ends the last visit of a closed deal without a closing
  history row). A deal that re-enters a stage counts once as entered and its visits are summed.
  A deal still in the stage has no time yet and is left out, as is a deal that skipped the
  stage (it has no time there, and a 0 would drag the median down). Median and 90th
  percentile use linear interpolation.
"""


# ---------------------------------------------------------------------------------------
# The chain of stages


def stage_chain(settings: Settings) -> list[str]:
    """The stages a deal passes through in order: open stages by funnel step, then the first won stage."""
    ordered = sorted(settings.stages, key=lambda s: s.funnel_step)
    won = [s.name for s in ordered if s.is_won][:1] or ["Won"]
    return [s.name for s in ordered if not s.is_closed] + won


def _chain_index(settings: Settings) -> pl.DataFrame:
    """stage_name -> position in the chain (lost stages are not in it)."""
    chain = stage_chain(settings)
    return pl.DataFrame({"stage_name": chain, "idx": list(range(len(chain)))},
                        schema={"stage_name": pl.String, "idx": pl.Int64})


def _history_positions(frames: Frames) -> pl.DataFrame:
    """Stage history with the chain position of each row (null for lost and unplaced stages) and its state.

    Derived once per stage-history frame and stage settings; the few distinct stage names are
    normalised and placed, not every row.
    """
    settings = frames.settings
    history = frames.stage_history
    return derived(history, "history_positions", lambda: _place_history(history, settings),
                   key=settings.model_dump_json(include={"stages"}))


def _place_history(history: pl.DataFrame, settings: Settings, key: str = "opportunity_id") -> pl.DataFrame:
    lookup = stage_lookup(settings).select("stage_key", "stage_name", "state")
    won_idx = len(stage_chain(settings)) - 1
    index = _chain_index(settings)
    placed = (
        history.select(pl.col("stage").unique()).with_columns(stage_key_expr().alias("stage_key"))
        .join(lookup, on="stage_key", how="left")
        .join(index, on="stage_name", how="left")
        # Every won stage is the chain's one won step.
        .select("stage", "state",
                idx=pl.when(pl.col("state") == "won").then(pl.lit(won_idx, pl.Int64)).otherwise(pl.col("idx")))
    )
    return history.join(placed, on="stage", how="left", maintain_order="left", nulls_equal=True).select(
        key, "state", changed_at=pl.col("changed_at").cast(_DT), idx="idx")


def history_span(frames: Frames) -> pl.DataFrame:
    """Each deal's first and last stage-history row (opportunity_id, first_seen, last_seen); once per history frame."""
    history = frames.stage_history
    return derived(history, "history_span", lambda: history.group_by("opportunity_id").agg(
        first_seen=pl.col("changed_at").cast(_DT).min(), last_seen=pl.col("changed_at").cast(_DT).max()))


def _deal_codes(frames: Frames, period: Period) -> pl.DataFrame:
    """The distinct deals created in the window (code, opportunity_id): `code` is an integer key, the row number.

    The funnel's work on stage history (hundreds of thousands of deals, millions of rows) groups,
    sorts and joins by deal; integers do that several times faster than the text ids.
    """
    return derived(frames, "deal_codes", lambda: _distinct_ids(_cohort_rows(frames, period)["opportunity_id"]),
                   key=(period.start, period.end), limit=2)


def _distinct_ids(ids: pl.Series) -> pl.DataFrame:
    """The distinct ids in first-seen order, numbered (code, opportunity_id)."""
    # Ids in strictly increasing order (the store keeps deals by id) are distinct without hashing them.
    if ids.len() <= 1 or (ids.null_count() == 0 and bool((ids.slice(1) > ids.slice(0, ids.len() - 1)).all())):
        return ids.to_frame().with_row_index("code")
    return ids.to_frame().unique(keep="first", maintain_order=True).with_row_index("code")


def _sorted_codes(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with `code` flagged sorted when it is (history kept by deal, as usual): grouping by it then runs
    along the rows instead of hashing them."""
    return frame.with_columns(pl.col("code").set_sorted()) if frame["code"].is_sorted() else frame


def cohort_deals(frames: Frames, period: Period) -> pl.DataFrame:
    """The opportunities created in the window, in table order: every column, `created` (the day the cohort
    counts) and `code` (see _deal_codes)."""
    rows = _cohort_rows(frames, period)
    codes = _deal_codes(frames, period)
    if codes.height == rows.height:  # ids are distinct (the store's key): codes are the row numbers
        return rows.with_columns(code=pl.int_range(rows.height, dtype=pl.UInt32))
    return rows.join(codes, on="opportunity_id", how="left", maintain_order="left")


def _coded_history(frames: Frames, period: Period) -> pl.DataFrame:
    """The stage-history rows of the deals created in the window, in table order (code, stage, changed_at).

    Once per frames and window; a one-shot report reads just these rows from the file (revops.reads).
    """
    def make() -> pl.DataFrame:
        codes = _deal_codes(frames, period)
        if reads_from_file(frames, "stage_history"):
            return rows_with_keys(frames, "stage_history", codes, "opportunity_id", ["stage", "changed_at"])
        return rows_of_codes(frames.stage_history, codes)
    return derived(frames, "cohort_history", make, key=(period.start, period.end), limit=2)


def id_runs(history: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """Stage history cut into runs of consecutive rows of one deal: each run's opportunity_id, and each row's run
    number; once per history frame.

    A deal's rows usually sit together, so there are about as many runs as deals, several times fewer than rows.
    """
    def make() -> tuple[pl.DataFrame, pl.Series]:
        heads, row_run = runs_of(history["opportunity_id"])  # a null id is a run of its own (and matches no deal)
        return heads.to_frame("opportunity_id"), row_run
    return derived(history, "id_runs", make)


def rows_of_codes(history: pl.DataFrame, codes: pl.DataFrame,
                  columns: Sequence[str] = ("stage", "changed_at")) -> pl.DataFrame:
    """The `columns` of the stage-history rows of the deals in `codes` (code, opportunity_id), with each row's
    code, in table order: rows_with_keys of a history frame in memory.

    The text ids are joined once per run of a deal's rows, not once per row; each row then takes its run's code.
    """
    runs, row_run = id_runs(history)
    rows = history.select(*columns)
    ids = runs["opportunity_id"]
    if codes.height and derived(history, "runs_in_id_order", lambda: ids.null_count() == 0 and ids.is_sorted()):
        # History kept by deal id (as usual): only the runs between the smallest and largest id asked for can
        # match, a block of rows found by binary search (a window's deals: a fraction of the history).
        lo = ids.search_sorted(codes["opportunity_id"].min(), side="left")
        hi = ids.search_sorted(codes["opportunity_id"].max(), side="right")
        first, stop = row_run.search_sorted(lo, side="left"), row_run.search_sorted(hi, side="left")
        runs, row_run, rows = runs.slice(lo, hi - lo), row_run.slice(first, stop - first) - lo, rows.slice(first, stop - first)
    run_code = runs.join(codes, on="opportunity_id", how="left", maintain_order="left")["code"]
    return rows.with_columns(code=run_code.gather(row_run)).filter(pl.col("code").is_not_null())


def cohort_last_change(frames: Frames, period: Period, as_of: dt.date) -> pl.DataFrame:
    """When each deal created in the window last changed stage on or before as_of (columns code, last_change).

    Its latest stage-history row on or before as_of, else its creation: pipeline_review.last_stage_change
    for the cohort, by code (see cohort_deals).
    """
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    latest = (_sorted_codes(_coded_history(frames, period).filter(pl.col("changed_at").cast(_DT) < cutoff))
              .group_by("code").agg(changed=pl.col("changed_at").max().cast(pl.Date)))
    return cohort_deals(frames, period).select("code", "created_at").join(latest, on="code", how="left").select(
        "code", last_change=pl.coalesce("changed", pl.col("created_at").cast(pl.Date)))


def _cohort_positions(frames: Frames, period: Period) -> pl.DataFrame:
    """_history_positions of the deals created in the window only (what the funnel of that window reads), with code."""
    return derived(frames, "cohort_positions", lambda: _place_history(_coded_history(frames, period),
                                                                     frames.settings, key="code"),
                   key=(period.start, period.end), limit=2)


def stage_entries(frames: Frames) -> pl.DataFrame:
    """When each deal first entered each stage of the chain (columns opportunity_id, idx, entered_at).

    From stage history; a won deal without a history row for the won stage entered it on its close date.
    """
    won_idx = len(stage_chain(frames.settings)) - 1
    history = _history_positions(frames).filter(pl.col("idx").is_not_null()).select(
        "opportunity_id", "idx", entered_at="changed_at")
    closes = frames.opportunities.filter((pl.col("state") == "won") & pl.col("close_date").is_not_null()).select(
        "opportunity_id", idx=pl.lit(won_idx, pl.Int64), entered_at=pl.col("close_date").cast(_DT))
    # History wins over the close date when both say when the deal was won.
    closes = closes.join(history.filter(pl.col("idx") == won_idx), on="opportunity_id", how="anti")
    return (
        pl.concat([history, closes])
        .group_by("opportunity_id", "idx")
        .agg(pl.col("entered_at").min())
        .sort("opportunity_id", "idx")
    )


# ---------------------------------------------------------------------------------------
# Cohorts and breakdowns


def _breakdown(df: pl.DataFrame, frames: Frames, by: By | None, created: str) -> pl.DataFrame:
    """Add the `group` column: the month created, or the segment / source / owner ("(none)" when empty)."""
    if by is None:
        return df.with_columns(group=pl.lit("All"))
    if by == "cohort":
        return df.with_columns(group=pl.col(created).dt.strftime("%Y-%m"))
    if by == "segment":
        # A deal or lead without its own segment takes its account's, as the sidebar filter does; the
        # accounts are looked up only when some record lacks one (at scale, a join of every record's text id).
        own = pl.col("segment").replace("", None)
        if not df.select(own.is_null().any()).item():
            return df.with_columns(group=own.fill_null(NONE_LABEL))
        acc = frames.accounts.select("account_id", account_segment="segment").unique("account_id")
        df = df.join(acc, on="account_id", how="left")
        value = pl.coalesce(own, "account_segment")
        return df.with_columns(group=value.fill_null(NONE_LABEL)).drop("account_segment")
    if by in ("source", "owner"):
        return df.with_columns(group=pl.col(by).replace("", None).fill_null(NONE_LABEL))
    raise ValueError(f"unknown breakdown {by!r}; choose one of {', '.join(BY_OPTIONS)}")


def deal_cohort(frames: Frames, period: Period, by: By | None = None) -> pl.DataFrame:
    """Deals created in the window (columns opportunity_id, group, created, state, stage_name).

    Kept per frames, window and breakdown: the funnel, its timings and the handoffs all start from it.
    """
    return derived(frames, "deal_cohort", lambda: _deal_cohort(frames, period, by),
                   key=(period.start, period.end, by), limit=16)


def _deal_cohort(frames: Frames, period: Period, by: By | None) -> pl.DataFrame:
    return _breakdown(_cohort_rows(frames, period), frames, by, "created").select(
        "opportunity_id", "group", "created", "state", "stage_name")


def _cohort_rows(frames: Frames, period: Period) -> pl.DataFrame:
    """The opportunities created in the window, every column and `created`, in table order; once per frames and window."""
    return derived(frames, "cohort_rows", lambda: _created_between(frames, period), key=(period.start, period.end),
                   limit=2)


def _created_between(frames: Frames, period: Period) -> pl.DataFrame:
    opps = frames.opportunities
    created = pl.col("created_at").cast(pl.Date)
    undated = opps.filter(pl.col("created_at").is_null()).select("opportunity_id")
    if undated.height:
        # A deal without created_at is dated by its first stage-history row (looked up for those deals only).
        first_seen = (frames.stage_history.join(undated, on="opportunity_id", how="semi")
                      .group_by("opportunity_id").agg(first_seen=pl.col("changed_at").cast(_DT).min()))
        opps = opps.join(first_seen, on="opportunity_id", how="left", maintain_order="left")
        created = pl.coalesce(created, pl.col("first_seen").cast(pl.Date))
        return opps.with_columns(created=created).filter(pl.col("created").is_between(period.start, period.end))
    return rows_between(opps, "created_at", period.start, period.end).with_columns(created=created)


def deal_reach(frames: Frames, period: Period, by: By | None = None) -> pl.DataFrame:
    """Deals created in the window and the furthest chain position each reached (opportunity_id, group, reached).

    History, else the current stage; won deals reach the won step; lost deals without history reach step 0.
    """
    return _coded_reach(frames, period, by).select("opportunity_id", "group", "reached")


def _coded_reach(frames: Frames, period: Period, by: By | None = None) -> pl.DataFrame:
    """deal_reach with each deal's code (see _deal_codes): opportunity_id, code, group, reached.

    The furthest position is worked out once per window (_reached); a breakdown only adds its group.
    """
    deals = cohort_deals(frames, period).with_columns(reached=_reached(frames, period))
    return _breakdown(deals, frames, by, "created").select("opportunity_id", "code", "group", "reached")


def _reached(frames: Frames, period: Period) -> pl.Series:
    """The furthest chain position each deal of cohort_deals reached, in its order; once per frames and window."""
    def make() -> pl.Series:
        index = _chain_index(frames.settings)
        won_idx = index.height - 1
        # The stage's chain position looked up for the few distinct stage names, not joined to every deal.
        position = pl.col("stage_name").replace_strict(index["stage_name"], index["idx"], default=None,
                                                       return_dtype=pl.Int64)
        current = (
            pl.when(pl.col("state") == "won").then(pl.lit(won_idx, pl.Int64))
            .when(pl.col("state") == "open").then(position.fill_null(0))
            .otherwise(pl.lit(0, pl.Int64))
        )
        positions = _sorted_codes(_cohort_positions(frames, period).select("code", "idx"))
        history_max = positions.group_by("code").agg(history_max=pl.col("idx").max())
        return (
            cohort_deals(frames, period).select("code", "state", "stage_name").with_columns(current=current)
            .join(history_max, on="code", how="left", maintain_order="left")
            .select(reached=pl.max_horizontal("current", pl.col("history_max").fill_null(0)).cast(pl.Int64))
            .to_series()
        )
    return derived(frames, "cohort_reach", make, key=(period.start, period.end), limit=2)


def days_in_stage(frames: Frames) -> pl.DataFrame:
    """Total days each deal spent in each open stage it has left (columns opportunity_id, idx, days).

    Visits are summed; a stage the deal is still in is left out (its clock is running). Computed once
    per frames (it depends on no period).
    """
    return derived(frames, "days_in_stage", lambda: _days_in_stage(frames))


def _cohort_days(frames: Frames, period: Period) -> pl.DataFrame:
    """days_in_stage of the deals created in the window only, by code: a deal's days depend on its own rows alone."""
    def make() -> pl.DataFrame:
        return _days_in_stage(frames, _cohort_positions(frames, period), cohort_deals(frames, period), key="code")
    return derived(frames, "cohort_days", make, key=(period.start, period.end), limit=2)


def _days_in_stage(frames: Frames, history: pl.DataFrame | None = None,
                   opps: pl.DataFrame | None = None, key: str = "opportunity_id") -> pl.DataFrame:
    won_idx = len(stage_chain(frames.settings)) - 1
    history = _history_positions(frames) if history is None else history
    opps = frames.opportunities if opps is None else opps
    closed = ["won", "lost"]
    # A closed deal whose history never shows the closing stage left its last stage on its close date.
    closed_rows = history[key].filter(history["state"].is_in(closed)).unique().to_frame()
    closes = (
        opps.select(key, "state", "close_date")
        .filter(pl.col("state").is_in(closed) & pl.col("close_date").is_not_null())
        .join(closed_rows, on=key, how="anti")
        .select(key, "state", changed_at=pl.col("close_date").cast(_DT), idx=pl.lit(None, pl.Int64))
    )
    rows = pl.concat([history.select(key, "state", "changed_at", "idx"), closes])
    if not (closes.height == 0 and _in_time_order(rows, key)):
        rows = rows.sort(key, "changed_at")
    # Each visit ends when the deal's next row begins (rows sorted by deal, then time).
    left_at = pl.when(pl.col(key).shift(-1) == pl.col(key)).then(pl.col("changed_at").shift(-1))
    visits = rows.select(
        key, "idx", days=(left_at - pl.col("changed_at")).dt.total_seconds(fractional=True) / 86_400,
        ended=left_at.is_not_null(),
    ).filter(pl.col("idx").is_not_null() & (pl.col("idx") < won_idx))
    if visits.schema[key].is_integer():
        by = _stage_sums(visits, key, won_idx)  # deal codes (a million (deal, stage) groups)
    else:
        by = visits.group_by(key, "idx").agg(pl.col("days").sum(), pl.col("ended").all())
    return by.filter(pl.col("ended") & (pl.col("days") >= 0)).select(key, "idx", "days")


def _in_time_order(rows: pl.DataFrame, key: str) -> bool:
    """Whether the rows are sorted by an integer key, then strictly by changed_at (history kept by deal and time,
    as usual): sorting them would change nothing, whichever way a sort orders equal times."""
    if rows.height < 2 or not rows.schema[key].is_integer() or rows["changed_at"].null_count():
        return rows.height < 2
    if not rows[key].is_sorted():
        return False
    later = (pl.col(key) != pl.col(key).shift(-1)) | (pl.col("changed_at") < pl.col("changed_at").shift(-1))
    return bool(rows.select(later.fill_null(True).all()).item())


def _stage_sums(visits: pl.DataFrame, key: str, stages: int) -> pl.DataFrame:
    """visits.group_by(key, "idx").agg(pl.col("days").sum(), pl.col("ended").all()), the same sums to the last bit.

    visits: rows sorted by an integer key, idx in [0, stages). Hashing a million (deal, stage) groups is the
    costliest step of the funnel. Here the rows are laid out stage by stage (each keeping its order, so a
    deal's visits to a stage sit together, in order), and each group's days are added visit by visit the
    way Polars sums a group: in row order, Kahan-compensated, nulls skipped. Only the groups with more
    visits than the step go round again: as many rounds as the most visits of one deal to one stage.
    """
    rows = pl.concat([visits.filter(pl.col("idx") == i) for i in range(stages)]) if stages > 0 else visits.clear()
    days, ended = rows["days"], rows["ended"]
    start = (pl.col(key) != pl.col(key).shift(1)) | (pl.col("idx") != pl.col("idx").shift(1))
    first = rows.select(start.fill_null(True)).to_series().arg_true()
    size = first.shift(-1).fill_null(rows.height) - first
    # First visit: 0 + x with no compensation, exactly as Kahan's first step gives.
    total = days.gather(first).fill_null(0.0).alias("days")
    comp = pl.zeros(first.len(), pl.Float64, eager=True)
    all_ended = ended.gather(first)
    active = (size > 1).arg_true()
    step = 1
    while active.len():
        at = first.gather(active) + step
        kahan = pl.DataFrame({"x": days.gather(at), "s": total.gather(active), "c": comp.gather(active)}).with_columns(
            y=pl.col("x") - pl.col("c")).with_columns(t=pl.col("s") + pl.col("y")).select(
            s=pl.when(pl.col("x").is_null()).then(pl.col("s")).otherwise(pl.col("t")),
            c=pl.when(pl.col("x").is_null()).then(pl.col("c")).otherwise((pl.col("t") - pl.col("s")) - pl.col("y")))
        total.scatter(active, kahan["s"])
        comp.scatter(active, kahan["c"])
        all_ended.scatter(active, all_ended.gather(active) & ended.gather(at))
        step += 1
        active = active.filter(size.gather(active) > step)
    return pl.DataFrame({key: rows[key].gather(first), "idx": rows["idx"].gather(first), "days": total,
                         "ended": all_ended})


# ---------------------------------------------------------------------------------------
# The shared tally


def _tally(reach: pl.DataFrame, times: pl.DataFrame, steps: list[str], by: By | None) -> pl.DataFrame:
    """Per group and step: entered, converted, rate, cumulative rate, median and p90 days in stage.

    reach: id, group, reached (furthest step); times: id, idx, days, and each record's group when the caller
    has it already (else joined from reach).
    """
    last = len(steps) - 1
    chain = pl.DataFrame({"step": list(range(len(steps))), "stage": steps},
                         schema={"step": pl.Int64, "stage": pl.String})
    groups = reach.select("group").unique() if by is not None else pl.DataFrame({"group": ["All"]})
    grid = groups.join(chain, how="cross")
    # Entered a step = reached it or further: tallied from how many records reached each step, not per record.
    reached = reach.group_by("group", "reached").agg(n=pl.len().cast(pl.Int64))
    counts = (
        reached.join(chain.select("step"), how="cross")
        .group_by("group", "step")
        .agg(entered=pl.col("n").filter(pl.col("reached") >= pl.col("step")).sum(),
             converted=pl.col("n").filter(pl.col("reached") > pl.col("step")).sum())
    )
    if "group" not in times.columns:
        times = times.join(reach.select("id", "group"), on="id", how="inner")
    timing = (
        times.group_by("group", pl.col("idx").alias("step"))
        .agg(median_days=pl.col("days").median(),
             p90_days=pl.col("days").quantile(0.9, interpolation="linear"),
             timed=pl.len().cast(pl.Int64))
    )
    out = (
        grid.join(counts, on=["group", "step"], how="left")
        .join(timing, on=["group", "step"], how="left")
        .with_columns(pl.col("entered", "converted", "timed").fill_null(0))
        .sort("group", "step")
        .with_columns(
            # The won step is the end of the funnel: nothing to convert to.
            converted=pl.when(pl.col("step") < last).then(pl.col("converted")),
            cohort=pl.col("entered").first().over("group"),
        )
        .with_columns(
            rate=pl.when((pl.col("entered") > 0) & (pl.col("step") < last))
            .then(pl.col("converted") / pl.col("entered")),
            cumulative_rate=pl.when(pl.col("cohort") > 0).then(pl.col("entered") / pl.col("cohort")),
        )
    )
    cols = [*([pl.col("group").alias(by)] if by else []), *FUNNEL_SCHEMA]
    return out.select(cols).cast(FUNNEL_SCHEMA)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# The two funnels


def opportunity_funnel(frames: Frames, period: Period, by: By | None = None) -> pl.DataFrame:
    """The stage funnel of deals created in the window: every open stage in order, then the won stage.

    Columns [by], step, stage, entered, converted, rate, cumulative_rate, median_days, p90_days,
    timed (deals whose time in the stage is known).
    """
    reach = _coded_reach(frames, period, by).select(id="code", group="group", reached="reached")
    times = _cohort_days(frames, period).rename({"code": "id"})
    if reach.height == _deal_codes(frames, period).height:
        # One row per deal and code (the usual case): a deal's group is picked by its code, not joined.
        group = reach.select("id", "group").sort("id")["group"]
        times = times.with_columns(group=group.gather(times["id"]))
    return _tally(reach, times, stage_chain(frames.settings), by)


def stage_conversion(frames: Frames, period: Period, by: By | None = None) -> pl.DataFrame:
    """Per open stage in order, deals created in the window: entered, converted to the next, rate, median days in stage.

    The `stage_conversion` metric's table; also carries cumulative_rate, p90_days and timed.
    """
    table = opportunity_funnel(frames, period, by)
    last = len(stage_chain(frames.settings)) - 1
    return table.filter(pl.col("step") < last).select(
        *([by] if by else []), *STAGE_CONVERSION_SCHEMA, "cumulative_rate", "p90_days", "timed")


def lead_cohort(frames: Frames, period: Period, by: By | None = None) -> pl.DataFrame:
    """Leads created in the window with the furthest lead stage they reached and when they entered each.

    Columns id, group, reached (0 lead … 4 won) and t0 … t4 (entered Lead, MQL, SQL, Opportunity, Won).
    """
    opps = frames.opportunities.select("opportunity_id", opp_state="state", opp_created=pl.col("created_at"),
                                       opp_close=pl.col("close_date"))
    leads = (
        rows_between(frames.leads, "created_at", period.start, period.end)
        .join(opps, on="opportunity_id", how="left")
        .with_columns(created=pl.col("created_at").cast(pl.Date))
    )
    won = pl.col("opp_state") == "won"
    converted = pl.col("converted_at").is_not_null() | pl.col("opportunity_id").is_not_null()
    # Cumulative: the furthest stage with any evidence decides.
    reached = (
        pl.when(won).then(4).when(converted).then(3).when(pl.col("sql_at").is_not_null()).then(2)
        .when(pl.col("mql_at").is_not_null()).then(1).otherwise(0).cast(pl.Int64)
    )
    return _breakdown(leads, frames, by, "created").select(
        id="lead_id", group="group", reached=reached,
        t0=pl.col("created_at").cast(_DT), t1=pl.col("mql_at").cast(_DT), t2=pl.col("sql_at").cast(_DT),
        t3=pl.coalesce(pl.col("converted_at").cast(_DT), pl.col("opp_created").cast(_DT)),
        t4=pl.when(won).then(pl.col("opp_close").cast(_DT)),
    )


def lead_funnel(frames: Frames, period: Period, by: By | None = None) -> pl.DataFrame:
    """Leads created in the window: Lead → MQL → SQL → Opportunity → Won, cumulative, with days in stage.

    Days in a stage run from entering it to entering the next stage the lead reached (a
    skipped stage has no time); negative spans are data errors and are left out.
    """
    leads = lead_cohort(frames, period, by)
    last = len(LEAD_STAGES) - 1
    times = pl.concat([
        leads.select("id", idx=pl.lit(i, pl.Int64),
                     days=(pl.coalesce(*[f"t{j}" for j in range(i + 1, last + 1)]) - pl.col(f"t{i}"))
                     .dt.total_seconds(fractional=True) / 86_400)
        for i in range(last)
    ]).filter(pl.col("days").is_not_null() & (pl.col("days") >= 0))
    return _tally(leads.select("id", "group", "reached"), times, list(LEAD_STAGES), by)


FunnelKind = Literal["opportunity", "lead"]
FUNNEL_KINDS: dict[str, str] = {"opportunity": "Opportunity stages", "lead": "Lead funnel"}


def funnel_table(frames: Frames, period: Period, kind: FunnelKind = "opportunity", by: By | None = None
                 ) -> pl.DataFrame:
    """The opportunity stage funnel or the lead funnel (see opportunity_funnel / lead_funnel)."""
    return lead_funnel(frames, period, by) if kind == "lead" else opportunity_funnel(frames, period, by)


def heatmap_cells(table: pl.DataFrame, measure: Literal["rate", "cumulative_rate"]) -> pl.DataFrame:
    """The funnel cells that carry the measure: conversion has no value at the last step, so it is left out."""
    if measure == "rate":
        return table.filter(pl.col("step") < pl.col("step").max())
    return table


# ---------------------------------------------------------------------------------------
# The bottleneck


@dataclass(frozen=True)
class Bottleneck:
    """The stage that loses the most: its name, rate and volume, and a sentence saying why."""

    stage: str | None
    rate: float | None
    entered: int
    message: str


def find_bottleneck(table: pl.DataFrame, min_entered: int = MIN_STAGE_VOLUME, unit: str = "deals") -> Bottleneck:
    """The stage with the lowest conversion among those that at least `min_entered` records entered.

    Expects an unsplit funnel table (no `by`); stages below the volume floor are skipped
    because a rate over a handful of records says more about luck than about the process.
    """
    candidates = table.filter(pl.col("rate").is_not_null() & (pl.col("entered") >= min_entered)).sort("rate", "step")
    if candidates.height == 0:
        return Bottleneck(None, None, 0, f"No stage was entered by at least {min_entered} {unit} in the window, "
                                         "too few to name a bottleneck.")
    worst = candidates.row(0, named=True)
    text = (f"**{worst['stage']}** is the bottleneck: {worst['rate']:.0%} of the {worst['entered']:,} {unit} "
            f"that entered it moved on, the lowest of the {candidates.height} stages with at least "
            f"{min_entered} {unit}")
    if candidates.height > 1:
        runner = candidates.row(1, named=True)
        text += f" (next lowest: {runner['stage']} at {runner['rate']:.0%})"
    return Bottleneck(worst["stage"], worst["rate"], worst["entered"], text + ".")


__all__ = ["BY_OPTIONS", "Bottleneck", "FUNNEL_SCHEMA", "cohort_deals", "cohort_last_change", "history_span", "id_runs", "rows_of_codes", "LEAD_STAGES", "MIN_STAGE_VOLUME", "STAGE_CONVERSION_SCHEMA",
           "FUNNEL_KINDS", "days_in_stage", "deal_cohort", "funnel_table", "heatmap_cells", "deal_reach", "find_bottleneck", "lead_cohort", "lead_funnel",
           "opportunity_funnel", "stage_chain", "stage_conversion", "stage_entries"]
