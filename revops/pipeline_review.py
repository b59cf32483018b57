"""The weekly pipeline review: waterfall between two dates, slipped/stalled/past-due deals, roll-up, owners."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import polars as pl

from revops.errors import UserError
from revops.format import format_date
from revops.frames import Frames
from revops.funnel import history_span, rows_of_codes
from revops.memo import derived
from revops.metrics.common import closed_columns, deal_columns, open_at, target_between
from revops.metrics.registry import details_wanted
from revops.period import Period, quarter_bounds
from revops.stages import stage_key_expr, stage_lookup

Scope = Literal["quarter", "all"]
REVIEW_DAYS = 7
TOP_DEALS = 10
_DT = pl.Datetime("us")

# The waterfall's bars in order: key, label, how Plotly draws it.
BUCKETS: tuple[tuple[str, str], ...] = (
    ("created", "Created"),
    ("pulled_in", "Pulled in"),
    ("amount_change", "Amount changes"),
    ("slipped", "Slipped out"),
    ("won", "Won"),
    ("lost", "Lost"),
    ("removed", "Removed"),
)
# Removed only happens between snapshots; the chart shows it only when a deal actually went missing.
OPTIONAL_BUCKETS = frozenset({"removed"})
FORECAST_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("closed", "Closed won"),
    ("commit", "Commit"),
    ("best_case", "Best case"),
    ("pipeline", "Pipeline"),
    ("omitted", "Omitted"),
)

# How the page explains the numbers (shown under "How it is counted").
HOW_COUNTED = """\
The waterfall's pipeline is the amount of deals open at a date with a close date in the fiscal
quarter containing the later date (or every open deal, scope "all"). Each deal's change between
the two dates lands in exactly one bucket, so start + Σ buckets = end to the cent:
- in the pipeline at both dates: **amount changes** (amount then → now, often 0);
- only at the later date: **created** (the deal did not exist yet at the earlier date) or
  **pulled in** (it existed but was outside the pipeline: close date moved into the quarter,
  mostly earlier from a later quarter, or a closed deal reopened), counted at its amount now;
- only at the earlier date, counted at its amount then: **won**, **lost**, **slipped out**
  (still open, but its close date was pushed past the quarter, or moved out of it otherwise,
  or cleared), or **removed** (gone from the later snapshot: deleted or merged in the CRM);
- in neither: no effect (e.g. created and won within the week outside the quarter).

The state at a date comes from the latest opportunity snapshot on or before it when both dates
have one (and they differ), else it is rebuilt from stage history.
"""


def default_review_dates(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The weekly review's default dates: the 7 days ending at as_of (from as_of − 7 to as_of)."""
    return as_of - dt.timedelta(days=REVIEW_DAYS), as_of


def _cents(col: str) -> pl.Expr:
    """Money as whole cents, so that sums are exact (unknown amounts count 0)."""
    return (pl.col(col).cast(pl.Float64).fill_null(0.0) * 100).round(0).cast(pl.Int64)


# ---------------------------------------------------------------------------------------
# Deal states at a date


_STATE_SCHEMA = {"opportunity_id": pl.String, "state": pl.String, "stage_name": pl.String, "funnel_step": pl.Int64,
                 "amount": pl.Float64, "close_date": pl.Date}


def _classified(frame: pl.DataFrame, frames: Frames) -> pl.DataFrame:
    """A frame with a `stage` column, given state (won/lost/open), stage_name and funnel_step from the settings."""
    lookup = stage_lookup(frames.settings).select("stage_key", "stage_name", "state", "funnel_step")
    # The few distinct stage names are normalised and looked up, then joined back (not every row's text).
    placed = (frame.select(pl.col("stage").unique()).with_columns(stage_key_expr().alias("stage_key"))
              .join(lookup, on="stage_key", how="left").drop("stage_key"))
    return frame.join(placed, on="stage", how="left", maintain_order="left", nulls_equal=True)


def history_events(frames: Frames) -> pl.DataFrame:
    """Stage history as states in time, amount / close date carried forward, plus a closing row per closed deal
    whose history never shows its close (at its close date).

    Columns opportunity_id, changed_at, state, stage_name, funnel_step, amount, close_date.
    """
    hist = _classified(frames.stage_history, frames).select(
        "opportunity_id", pl.col("changed_at").cast(_DT), pl.col("state").fill_null("open"), "stage_name",
        "funnel_step", pl.col("amount").cast(pl.Float64), pl.col("close_date").cast(pl.Date))
    closed_in_history = hist.filter(pl.col("state") != "open").select("opportunity_id").unique()
    closes = (
        frames.opportunities.filter((pl.col("state") != "open") & pl.col("close_date").is_not_null())
        .join(closed_in_history, on="opportunity_id", how="anti")
        .select("opportunity_id", changed_at=pl.col("close_date").cast(_DT), state="state", stage_name="stage_name",
                funnel_step=pl.col("funnel_step").cast(pl.Int64), amount=pl.col("amount").cast(pl.Float64),
                close_date=pl.col("close_date").cast(pl.Date))
    )
    return (
        pl.concat([hist, closes])
        .sort("opportunity_id", "changed_at")
        # A history row without amount or close date keeps the last one known.
        .with_columns(pl.col("amount", "close_date").forward_fill().over("opportunity_id"))
    )


def state_from_history(frames: Frames, day: dt.date, events: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every deal that existed at the end of `day`, as it stood then, rebuilt from stage history.

    A deal exists from its created_at (else its first history row; a deal with neither always
    exists). Its state is its last history row on or before the day; before its first row it was
    open at the first row's amount and close date; a deal with no history is open from creation
    to its close date at its current amount and close date. Missing amounts and close dates fall
    back to the deal's current ones. `events` may give history_events(frames) when the caller has it.
    """
    events = history_events(frames) if events is None else events
    cutoff = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    last = events.filter(pl.col("changed_at") < cutoff).group_by("opportunity_id").agg(
        pl.col("state", "stage_name", "funnel_step", "amount", "close_date").last().name.prefix("at_"))
    first = events.group_by("opportunity_id").agg(
        first_seen=pl.col("changed_at").first(),
        first_open=pl.col("state").first() == "open",
        **{f"first_{c}": pl.col(c).first() for c in ("stage_name", "funnel_step", "amount", "close_date")})
    opps = (
        frames.opportunities.select("opportunity_id", "created_at", "amount", "close_date", "stage_name", "state",
                                    "funnel_step")
        .join(last, on="opportunity_id", how="left")
        .join(first, on="opportunity_id", how="left")
    )
    created = pl.coalesce(pl.col("created_at").cast(pl.Date), pl.col("first_seen").cast(pl.Date))
    known = pl.col("at_state").is_not_null()
    early_open = pl.col("first_open").fill_null(False)
    return (
        opps.filter(created.is_null() | (created <= day))
        .select(
            "opportunity_id",
            state=pl.when(known).then(pl.col("at_state")).otherwise(pl.lit("open")),
            stage_name=pl.when(known).then(pl.col("at_stage_name")).when(early_open).then(pl.col("first_stage_name")),
            funnel_step=pl.when(known).then(pl.col("at_funnel_step")).when(early_open)
            .then(pl.col("first_funnel_step")),
            amount=pl.coalesce(pl.when(known).then(pl.col("at_amount")).otherwise(pl.col("first_amount")),
                               pl.col("amount").cast(pl.Float64)),
            close_date=pl.coalesce(pl.when(known).then(pl.col("at_close_date")).otherwise(pl.col("first_close_date")),
                                   pl.col("close_date").cast(pl.Date)),
        )
        .cast(_STATE_SCHEMA)  # type: ignore[arg-type]
    )


def snapshot_dates(frames: Frames) -> list[dt.date]:
    """The dates of the stored opportunity snapshots, oldest first."""
    if frames.snapshots is None or frames.snapshots.height == 0:
        return []
    return frames.snapshots["snapshot_date"].cast(pl.Date).unique().sort().to_list()


def state_from_snapshot(frames: Frames, snapshot_date: dt.date) -> pl.DataFrame:
    """Every deal of the snapshot taken on `snapshot_date`, as it stood then."""
    snaps = frames.snapshots
    assert snaps is not None
    rows = snaps.filter(pl.col("snapshot_date").cast(pl.Date) == snapshot_date).unique("opportunity_id", keep="last")
    classified = _classified(rows.select("opportunity_id", "stage", "amount", "close_date", "is_closed", "is_won"),
                             frames)
    # The stored flags are always filled in and say what the CRM said that day; the stage name only places it.
    state = (pl.when(pl.col("is_won").fill_null(False)).then(pl.lit("won"))
             .when(pl.col("is_closed").fill_null(False)).then(pl.lit("lost")).otherwise(pl.lit("open")))
    return classified.select("opportunity_id", state=state, stage_name=pl.coalesce("stage_name", "stage"),
                             funnel_step="funnel_step", amount=pl.col("amount").cast(pl.Float64),
                             close_date=pl.col("close_date").cast(pl.Date)
                             ).cast(_STATE_SCHEMA)  # type: ignore[arg-type]


def _latest_on_or_before(dates: list[dt.date], day: dt.date) -> dt.date | None:
    earlier = [d for d in dates if d <= day]
    return earlier[-1] if earlier else None


# ---------------------------------------------------------------------------------------
# The waterfall


@dataclass(frozen=True)
class Waterfall:
    """The pipeline between two dates: the bars, every deal's bucket, and where the states came from."""

    steps: pl.DataFrame  # step, label, measure, deals, amount, cents
    deals: pl.DataFrame  # one row per deal that moved the pipeline, with its bucket and change
    start: dt.date
    end: dt.date
    scope_start: dt.date | None
    scope_end: dt.date | None
    source: str
    note: str
    advanced_deals: int
    advanced_amount: float

    def total(self, step: str) -> float:
        """The amount of one bar ("start", "created", …, "end"); 0 for a bar not shown."""
        row = self.steps.filter(pl.col("step") == step)
        return float(row["amount"].item()) if row.height else 0.0

    @property
    def won_amount(self) -> float:
        """Pipeline amount of the deals won between the two dates, as a positive number."""
        return -self.total("won")

    @property
    def net_change(self) -> float:
        """End minus start pipeline (computed in cents, exact)."""
        cents = dict(zip(self.steps["step"].to_list(), self.steps["cents"].to_list()))
        return (cents["end"] - cents["start"]) / 100


def pipeline_waterfall(frames: Frames, start: dt.date, end: dt.date, scope: Scope = "quarter") -> Waterfall:
    """Start pipeline, + created, + pulled in, ± amount changes, − slipped, − won, − lost (− removed), = end.

    The pipeline is the deals open at a date whose close date lies in the fiscal quarter
    containing `end` (scope "quarter") or every open deal (scope "all").
    """
    if start >= end:
        raise UserError("Pick a start date before the end date to compare the pipeline between them.")
    dates = snapshot_dates(frames)
    snap_a, snap_b = _latest_on_or_before(dates, start), _latest_on_or_before(dates, end)
    if snap_a is not None and snap_b is not None and snap_a < snap_b:
        at_a, at_b = state_from_snapshot(frames, snap_a), state_from_snapshot(frames, snap_b)
        source = "snapshots"
        note = (f"Compared the opportunity snapshots of {format_date(snap_a)} and {format_date(snap_b)} "
                "(the latest on or before each date).")
    else:
        events = history_events(frames)  # sorted once for both dates
        at_a, at_b = state_from_history(frames, start, events), state_from_history(frames, end, events)
        source = "stage history"
        note = ("Rebuilt from stage history (each change carries the stage, amount and close date of its day); "
                "no two different snapshots cover these dates.")
    if scope == "quarter":
        q_start, q_end = quarter_bounds(end, frames.settings.fiscal_year_start_month)
        in_scope = pl.col("close_date").is_between(q_start, q_end)
    else:
        q_start = q_end = None
        in_scope = pl.lit(True)

    def side(df: pl.DataFrame, s: str) -> pl.DataFrame:
        """One date's states with suffixed columns and whether each deal is in the pipeline then."""
        return df.select(
            "opportunity_id", pl.lit(True).alias(f"exists_{s}"), pl.col("state").alias(f"state_{s}"),
            pl.col("stage_name").alias(f"stage_{s}"), pl.col("funnel_step").alias(f"step_{s}"),
            pl.col("amount").alias(f"amount_{s}"), pl.col("close_date").alias(f"close_{s}"),
            _cents("amount").alias(f"cents_{s}"),
            ((pl.col("state") == "open") & in_scope).fill_null(False).alias(f"in_{s}"))

    both = side(at_a, "a").join(side(at_b, "b"), on="opportunity_id", how="full", coalesce=True).with_columns(
        pl.col("exists_a", "exists_b", "in_a", "in_b").fill_null(False))
    # For snapshots a deal missing from the earlier one is new only if it was created after it.
    created_after_a = pl.col("created_at").is_null() | (pl.col("created_at").cast(pl.Date) > (snap_a or start))
    # The names of the compared deals only: filtering a million deals by the few compared (a semi join) is
    # several times faster than hashing the million for the left join.
    named = frames.opportunities.select("opportunity_id", "opportunity_name", "owner", "account_id", "created_at")
    named = named.join(both.select("opportunity_id"), on="opportunity_id", how="semi")
    both = both.join(named, on="opportunity_id", how="left")
    in_a, in_b = pl.col("in_a"), pl.col("in_b")
    bucket = (
        pl.when(in_a & in_b).then(pl.lit("amount_change"))
        .when(~in_a & in_b & (~pl.col("exists_a") & created_after_a)).then(pl.lit("created"))
        .when(~in_a & in_b).then(pl.lit("pulled_in"))
        .when(in_a & ~pl.col("exists_b")).then(pl.lit("removed"))
        .when(in_a & (pl.col("state_b") == "won")).then(pl.lit("won"))
        .when(in_a & (pl.col("state_b") == "lost")).then(pl.lit("lost"))
        .when(in_a).then(pl.lit("slipped"))
    )
    change = (pl.when(in_b).then(pl.col("cents_b")).otherwise(0)
              - pl.when(in_a).then(pl.col("cents_a")).otherwise(0))
    moved = both.with_columns(bucket=bucket, change_cents=change).filter(pl.col("bucket").is_not_null())
    start_cents = int(both.filter(in_a)["cents_a"].sum())
    end_cents = int(both.filter(in_b)["cents_b"].sum())
    per_bucket = moved.group_by("bucket").agg(deals=pl.len().cast(pl.Int64), cents=pl.col("change_cents").sum())
    sums = {r["bucket"]: (r["deals"], int(r["cents"])) for r in per_bucket.iter_rows(named=True)}
    rows = [("start", "Start pipeline", "absolute", both.filter(in_a).height, start_cents)]
    for key, label in BUCKETS:
        deals, cents = sums.get(key, (0, 0))
        if key in OPTIONAL_BUCKETS and deals == 0:
            continue
        rows.append((key, label, "relative", deals, cents))
    rows.append(("end", "End pipeline", "total", both.filter(in_b).height, end_cents))
    steps = pl.DataFrame(rows, schema={"step": pl.String, "label": pl.String, "measure": pl.String,
                                       "deals": pl.Int64, "cents": pl.Int64}, orient="row").with_columns(
        amount=pl.col("cents") / 100)
    advanced = moved.filter((pl.col("bucket") == "amount_change") & (pl.col("step_b") > pl.col("step_a")))
    labels = dict(BUCKETS)
    order = {key: i for i, (key, _) in enumerate(BUCKETS)}
    # Ties (equal changes in a bucket) in id order, so the table reads the same on every run.
    deals_out = moved.sort(pl.col("bucket").replace_strict(order, return_dtype=pl.Int64), "change_cents",
                           "opportunity_id").select(
        "opportunity_id", "opportunity_name", "owner", "account_id",
        bucket=pl.col("bucket").replace_strict(labels, return_dtype=pl.String),
        stage_start="stage_a", stage_end="stage_b", amount_start="amount_a", amount_end="amount_b",
        close_date_start="close_a", close_date_end="close_b", change=pl.col("change_cents") / 100)
    return Waterfall(steps.select("step", "label", "measure", "deals", "amount", "cents"), deals_out, start, end,
                     q_start, q_end, source, note, advanced.height, float(advanced["amount_b"].fill_null(0).sum()))


# ---------------------------------------------------------------------------------------
# Slipped, stalled, past due


def _coded_history(history: pl.DataFrame, codes: pl.DataFrame) -> pl.DataFrame:
    """The stage-history rows of the coded deals (code, at, close_date), in table order.

    Stage history is coded once per run of a deal's rows (funnel.rows_of_codes) rather than each of its millions
    of rows hashed by text id: sorting and comparing them by integer code is several times faster.
    """
    return rows_of_codes(history, codes, ["changed_at", "close_date"]).select(
        "code", at=pl.col("changed_at").cast(_DT), close_date=pl.col("close_date").cast(pl.Date))


def _codes(deals: pl.DataFrame) -> pl.DataFrame:
    """The distinct deals of a frame numbered (code, opportunity_id)."""
    return deals["opportunity_id"].drop_nulls().unique().to_frame().with_row_index("code")


def _open_deals(frames: Frames, as_of: dt.date) -> pl.DataFrame:
    """open_at(frames, as_of), once per frames and day: every list of the page starts from it."""
    return derived(frames, "review_open_deals", lambda: open_at(frames, as_of), key=(as_of, details_wanted()),
                   limit=2)


def _open_history(frames: Frames, as_of: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The deals open at as_of numbered (code, opportunity_id) and their stage-history rows (see _coded_history);
    once per frames and day, read by both the slipped and the stalled deals."""
    def make() -> tuple[pl.DataFrame, pl.DataFrame]:
        codes = _codes(_open_deals(frames, as_of))
        return codes, _coded_history(frames.stage_history, codes)
    return derived(frames, "review_open_history", make, key=as_of, limit=2)


def close_date_pushes(frames: Frames, as_of: dt.date, deals: pl.DataFrame | None = None) -> pl.DataFrame:
    """How often each deal's expected close date was pushed later, from stage history and snapshots up to as_of.

    Columns opportunity_id, pushes, first_close_date, days_pushed (Σ of the pushes), last_pushed_at.
    `deals` (a frame with opportunity_id) limits the answer to those deals: only their sightings are read.
    A deal's sightings at the same instant keep their order: stage history first, then snapshots.
    """
    codes = _codes(frames.opportunities if deals is None else deals)
    return _pushes(frames, as_of, codes, _coded_history(frames.stage_history, codes))


def _pushes(frames: Frames, as_of: dt.date, codes: pl.DataFrame, history: pl.DataFrame) -> pl.DataFrame:
    """close_date_pushes of the coded deals, given their stage-history rows (from _coded_history)."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    seen = [history]
    if frames.snapshots is not None:
        seen.append(frames.snapshots.select("opportunity_id", at=pl.col("snapshot_date").cast(_DT),
                                            close_date=pl.col("close_date").cast(pl.Date))
                    .join(codes, on="opportunity_id", how="inner", maintain_order="left")
                    .select("code", "at", "close_date"))
    sightings = pl.concat(seen).filter(pl.col("close_date").is_not_null() & (pl.col("at") < cutoff))
    ordered = sightings.with_columns(key=_deal_time_key(sightings, codes.height)).sort(
        "key", maintain_order=True).drop("key")
    same_deal = pl.col("code") == pl.col("code").shift(1)
    pushes = (
        ordered.with_columns(previous=pl.when(same_deal).then(pl.col("close_date").shift(1)))
        .with_columns(pl.col("code").set_sorted(),
                      pushed=(pl.col("close_date") > pl.col("previous")).fill_null(False))
        .group_by("code")
        .agg(pushes=pl.col("pushed").sum().cast(pl.Int64),
             first_close_date=pl.col("close_date").first(),
             days_pushed=(pl.col("close_date") - pl.col("previous")).dt.total_days().filter(pl.col("pushed")).sum(),
             last_pushed_at=pl.col("at").filter(pl.col("pushed")).max())
    )
    return codes.join(pushes, on="code", how="inner").drop("code")


def _slipped(frames: Frames, as_of: dt.date) -> pl.DataFrame:
    """The deals open at as_of whose close date was pushed, with their close_date_pushes columns (unsorted)."""
    # Only the open deals' sightings are read; kept per frames and day (the list and the owners ask).
    pushes = derived(frames, "open_deal_pushes", lambda: _pushes(frames, as_of, *_open_history(frames, as_of)),
                     key=as_of, limit=2).filter(pl.col("pushes") > 0)
    return _open_deals(frames, as_of).join(pushes, on="opportunity_id", how="inner")


def _deal_time_key(sightings: pl.DataFrame, n_codes: int) -> pl.Expr:
    """One unsigned integer that orders sightings by (code, at) as the two columns do.

    Sorting by one integer is several times faster than by two columns. The code takes the high bits
    and the microseconds since the earliest sighting the rest, when they fit (years of sightings of a
    hundred thousand deals do), else the instant's rank among the sightings (slower, fits always).
    """
    code_bits = max(n_codes, 1).bit_length()  # codes are 0 … n_codes − 1
    code = pl.col("code").cast(pl.UInt64) * pl.lit(2 ** (64 - code_bits), pl.UInt64)
    first, last = sightings["at"].min(), sightings["at"].max()
    if isinstance(first, dt.datetime) and isinstance(last, dt.datetime) and code_bits < 64 and (
            (last - first) // dt.timedelta(microseconds=1) < 2 ** (64 - code_bits)):
        return code + (pl.col("at") - pl.lit(first, _DT)).dt.total_microseconds().cast(pl.UInt64)
    return pl.col("code").cast(pl.UInt64) * pl.lit(2**32, pl.UInt64) + pl.col("at").rank("dense").cast(pl.UInt64)


def slipped_deals(frames: Frames, as_of: dt.date, since: dt.date | None = None) -> pl.DataFrame:
    """Deals open at as_of whose close date was pushed at least once, most pushed first.

    `pushed_recently` marks a push after `since` (the review's start date).
    """
    out = _slipped(frames, as_of)
    recent = (pl.col("last_pushed_at").cast(pl.Date) > since) if since else pl.lit(None, pl.Boolean)
    return deal_columns(out.with_columns(pushed_recently=recent), "first_close_date", "pushes", "days_pushed",
                        "last_pushed_at", "pushed_recently").sort(["pushes", "amount"], descending=True,
                                                                  nulls_last=True)


def _latest_change(history: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Each coded deal's latest stage-history row on or before as_of (code, changed), from _coded_history rows."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    return history.filter(pl.col("at") < cutoff).group_by("code").agg(changed=pl.col("at").max().cast(pl.Date))


def last_stage_change(frames: Frames, as_of: dt.date, deals: pl.DataFrame | None = None,
                      history: pl.DataFrame | None = None) -> pl.DataFrame:
    """When each deal last changed stage on or before as_of: its latest history row, else its creation.

    Columns opportunity_id, last_change (date). `deals` (a frame with opportunity_id) limits the answer
    to those deals, so only their history rows are read; `history` may give those rows when the caller
    has them already (every stage-history row of those deals).
    """
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    if deals is not None:
        codes = _codes(deals)
        latest = _latest_change(_coded_history(frames.stage_history if history is None else history, codes), as_of)
        return (frames.opportunities.select("opportunity_id", "created_at")
                .join(codes, on="opportunity_id", how="inner", maintain_order="left")
                .join(latest, on="code", how="left", maintain_order="left")
                .select("opportunity_id", last_change=pl.coalesce("changed", pl.col("created_at").cast(pl.Date))))
    history = frames.stage_history
    latest_row = history["changed_at"].cast(_DT).max()
    if latest_row is not None and latest_row < cutoff:  # type: ignore[operator]
        # Every row is on or before as_of (the usual case): each deal's last row, kept per history frame.
        latest = history_span(frames).select("opportunity_id", changed=pl.col("last_seen").cast(pl.Date))
    else:
        latest = (history.filter(pl.col("changed_at").cast(_DT) < cutoff)
                  .group_by("opportunity_id").agg(changed=pl.col("changed_at").max().cast(pl.Date)))
    return frames.opportunities.select("opportunity_id", "created_at").join(
        latest, on="opportunity_id", how="left").select(
        "opportunity_id", last_change=pl.coalesce("changed", pl.col("created_at").cast(pl.Date)))


def _open_last_change(frames: Frames, as_of: dt.date) -> pl.DataFrame:
    """last_stage_change of the deals open at as_of (one row per deal: ids are the opportunities' key); once per
    frames and day (the list and the owners ask)."""
    def make() -> pl.DataFrame:
        codes, history = _open_history(frames, as_of)
        return (_open_deals(frames, as_of).select("opportunity_id", "created_at")
                .join(codes, on="opportunity_id", how="inner", maintain_order="left")
                .join(_latest_change(history, as_of), on="code", how="left", maintain_order="left")
                .select("opportunity_id", last_change=pl.coalesce("changed", pl.col("created_at").cast(pl.Date))))
    return derived(frames, "review_open_last_change", make, key=as_of, limit=2)


def _stalled(frames: Frames, as_of: dt.date, days: int | None) -> pl.DataFrame:
    """The deals open at as_of without a stage change in `days` days, with last_change and days_since_change."""
    limit = frames.settings.stall_days if days is None else days
    return (_open_deals(frames, as_of).join(_open_last_change(frames, as_of), on="opportunity_id", how="left")
            .with_columns(days_since_change=(pl.lit(as_of) - pl.col("last_change")).dt.total_days())
            .filter(pl.col("days_since_change") >= limit))


def stalled_deals(frames: Frames, as_of: dt.date, days: int | None = None) -> pl.DataFrame:
    """Deals open at as_of without a stage change in the `days` days to as_of (default settings.stall_days).

    A deal stalls when its last change is `days` or more days before as_of; longest stalled first.
    """
    return deal_columns(_stalled(frames, as_of, days), "last_change", "days_since_change").sort(
        "days_since_change", descending=True)


def past_due_deals(frames: Frames, as_of: dt.date) -> pl.DataFrame:
    """Deals open at as_of whose expected close date is already behind it, most overdue first."""
    out = _open_deals(frames, as_of).filter(pl.col("close_date") < as_of).with_columns(
        days_overdue=(pl.lit(as_of) - pl.col("close_date")).dt.total_days())
    return deal_columns(out, "forecast_category", "days_overdue").sort("days_overdue", descending=True)


def top_deals(frames: Frames, as_of: dt.date, n: int = TOP_DEALS) -> pl.DataFrame:
    """The n largest deals open at as_of (unknown amounts last)."""
    out = _open_deals(frames, as_of).sort("amount", descending=True, nulls_last=True).head(n)
    return deal_columns(out, "forecast_category", "probability")


# ---------------------------------------------------------------------------------------
# Forecast roll-up against target


def forecast_category_expr() -> pl.Expr:
    """The forecast category normalised (Best Case → best_case); empty or unknown values count as pipeline."""
    raw = pl.col("forecast_category").cast(pl.String).str.to_lowercase().str.replace_all(r"[^a-z]", "")
    names = {"commit": "commit", "bestcase": "best_case", "pipeline": "pipeline", "omitted": "omitted",
             "closed": "commit"}  # an open deal marked closed is as good as committed
    return raw.replace_strict(names, default="pipeline", return_dtype=pl.String)


@dataclass(frozen=True)
class Rollup:
    """The quarter's forecast categories added up against its target."""

    table: pl.DataFrame  # category, label, deals, amount, cumulative, attainment
    quarter_start: dt.date
    quarter_end: dt.date
    target: float | None
    closed: float
    open_amount: float
    coverage: float | None
    reason: str | None


# What the roll-up and the owner table add up of the closed deals.
_CLOSED_COLUMNS = ["owner", "state", "amount", "close_date"]


def forecast_rollup(frames: Frames, as_of: dt.date) -> Rollup:
    """Closed won in the quarter to as_of, then open deals closing in [as_of, quarter end] by forecast category.

    Cumulative adds closed → commit → best case → pipeline (omitted stays out); attainment is
    cumulative ÷ the quarter's target; coverage is open amount (omitted excluded) ÷ the target still to win.
    """
    q_start, q_end = quarter_bounds(as_of, frames.settings.fiscal_year_start_month)
    won = closed_columns(frames, q_start, as_of, _CLOSED_COLUMNS).filter(pl.col("state") == "won").select(
        category=pl.lit("closed"), amount=pl.col("amount").cast(pl.Float64))
    open_ = _open_deals(frames, as_of).filter(pl.col("close_date").is_between(as_of, q_end)).select(
        category=forecast_category_expr(), amount=pl.col("amount").cast(pl.Float64))
    grouped = pl.concat([won, open_]).group_by("category").agg(
        deals=pl.len().cast(pl.Int64), amount=pl.col("amount").sum())
    target, _ = target_between(frames, q_start, q_end)
    cats = pl.DataFrame({"category": [c for c, _ in FORECAST_CATEGORIES],
                         "label": [label for _, label in FORECAST_CATEGORIES]})
    table = (
        cats.join(grouped, on="category", how="left", maintain_order="left")
        .with_columns(pl.col("deals").fill_null(0), pl.col("amount").fill_null(0.0))
        .with_columns(cumulative=pl.when(pl.col("category") != "omitted")
                      .then(pl.col("amount").cum_sum()))
        .with_columns(attainment=pl.col("cumulative") / target if target else pl.lit(None, pl.Float64))
    )
    closed = float(table.filter(pl.col("category") == "closed")["amount"].sum())
    open_amount = float(table.filter(~pl.col("category").is_in(["closed", "omitted"]))["amount"].sum())
    coverage: float | None = None
    if target is None:
        reason = f"No target covers the quarter {format_date(q_start)} – {format_date(q_end)}; load one on the Data page."
    elif target - closed <= 0:
        reason = "The quarter's target is already met: there is nothing left to cover."
    else:
        coverage, reason = open_amount / (target - closed), None
    return Rollup(table, q_start, q_end, target, closed, open_amount, coverage, reason)


# ---------------------------------------------------------------------------------------
# Owners


def owner_table(frames: Frames, period: Period, stall_days: int | None = None) -> pl.DataFrame:
    """Per owner: open deals and pipeline at as_of, won deals and amount and win rate in the window, slipped, stalled.

    Win rate = won ÷ (won + lost) deals closed in the window, empty without closed deals.
    """
    as_of = period.as_of
    owner = pl.col("owner").replace("", None).fill_null("(no owner)")
    open_ = _open_deals(frames, as_of).with_columns(owner=owner)
    closed = closed_columns(frames, period.start, period.end, _CLOSED_COLUMNS).with_columns(owner=owner)
    slipped = _slipped(frames, as_of).with_columns(owner=owner)
    stalled = _stalled(frames, as_of, stall_days).with_columns(owner=owner)
    parts = [
        open_.group_by("owner").agg(open_deals=pl.len(), open_pipeline=pl.col("amount").sum()),
        closed.group_by("owner").agg(won_deals=(pl.col("state") == "won").sum(),
                                     lost_deals=(pl.col("state") == "lost").sum(),
                                     won_amount=pl.col("amount").filter(pl.col("state") == "won").sum()),
        slipped.group_by("owner").agg(slipped=pl.len()),
        stalled.group_by("owner").agg(stalled=pl.len()),
    ]
    owners = pl.concat([p.select("owner") for p in parts]).unique()
    out = owners
    for p in parts:
        out = out.join(p, on="owner", how="left")
    counts = ["open_deals", "won_deals", "lost_deals", "slipped", "stalled"]
    return (
        out.with_columns(pl.col(counts).fill_null(0).cast(pl.Int64),
                         pl.col("open_pipeline", "won_amount").fill_null(0.0).cast(pl.Float64))
        .with_columns(win_rate=pl.when(pl.col("won_deals") + pl.col("lost_deals") > 0)
                      .then(pl.col("won_deals") / (pl.col("won_deals") + pl.col("lost_deals"))))
        .select("owner", "open_deals", "open_pipeline", "won_deals", "won_amount", "lost_deals", "win_rate",
                "slipped", "stalled")
        .sort(["open_pipeline", "owner"], descending=[True, False])
    )


__all__ = ["BUCKETS", "FORECAST_CATEGORIES", "Rollup", "Waterfall", "close_date_pushes", "default_review_dates",
           "forecast_category_expr", "forecast_rollup", "history_events", "last_stage_change", "owner_table",
           "past_due_deals", "pipeline_waterfall", "slipped_deals", "snapshot_dates", "stalled_deals",
           "state_from_history", "state_from_snapshot", "top_deals"]
