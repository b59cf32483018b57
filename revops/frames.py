"""The canonical tables as Polars frames, with the stage settings applied and filters pushed in."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import duckdb
import polars as pl

from revops import store
from revops.schema import TABLES, Settings
from revops.stages import classify


@dataclass(frozen=True)
class Filters:
    """Sidebar filters; an empty tuple means no filter on that dimension."""

    segment: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    owner: tuple[str, ...] = ()
    source: tuple[str, ...] = ()

    def active(self) -> bool:
        """Whether any filter is set."""
        return any((self.segment, self.region, self.owner, self.source))


@dataclass(frozen=True)
class Frames:
    """Every canonical table as a frame; opportunities carry stage_name/state/funnel_step."""

    accounts: pl.DataFrame
    leads: pl.DataFrame
    opportunities: pl.DataFrame
    stage_history: pl.DataFrame
    subscriptions: pl.DataFrame
    lifecycle: pl.DataFrame
    usage: pl.DataFrame
    spend: pl.DataFrame
    touches: pl.DataFrame
    targets: pl.DataFrame
    settings: Settings = field(default_factory=Settings)
    snapshots: pl.DataFrame | None = None

    def table(self, name: str) -> pl.DataFrame:
        """A table by its canonical name."""
        return getattr(self, name)


def empty_frames(settings: Settings | None = None) -> Frames:
    """Frames with every table empty but typed, for tests and fresh files."""
    con = duckdb.connect()
    store.ensure_schema(con)
    return frames_from_tables({t: store.read_table(con, t) for t in TABLES}, settings or Settings())


def frames_from_tables(tables: dict[str, pl.DataFrame], settings: Settings | None = None,
                       snapshots: pl.DataFrame | None = None) -> Frames:
    """Frames from plain tables (missing tables empty, missing columns null), stages classified."""
    settings = settings or Settings()
    con = duckdb.connect()
    store.ensure_schema(con)
    out: dict[str, pl.DataFrame] = {}
    for name in TABLES:
        base = store.read_table(con, name)
        given = tables.get(name)
        if given is None:
            out[name] = base
            continue
        cols = [pl.col(c).cast(base.schema[c]) if c in given.columns else pl.lit(None, base.schema[c]).alias(c)
                for c in base.columns]
        extra = [c for c in given.columns if c not in base.columns]
        out[name] = given.select(cols + [pl.col(c) for c in extra])
    out["opportunities"] = classify(out["opportunities"], settings)
    return Frames(**out, settings=settings, snapshots=snapshots)


def load_frames(con: duckdb.DuckDBPyConnection) -> Frames:
    """Read every canonical table of the file (one read each) and classify the stages."""
    settings = store.get_settings(con)
    tables = {t: store.read_table(con, t) for t in TABLES}
    tables["opportunities"] = classify(tables["opportunities"], settings)
    snaps = con.sql("SELECT snapshot_date, opportunity_id, stage, CAST(amount AS DOUBLE) AS amount, close_date, "
                    "is_closed, is_won, forecast_category, owner FROM _opportunity_snapshots").pl()
    return Frames(**tables, settings=settings, snapshots=snaps)


def _in(col: str, values: tuple[str, ...]) -> pl.Expr:
    return pl.col(col).is_in(list(values))


def apply_filters(frames: Frames, filters: Filters) -> Frames:
    """Restrict every table to the filtered segment/region/owner/source.

    Account-level tables (subscriptions, lifecycle, usage) follow their account's segment,
    region and owner; the source filter applies to leads, deals and touches only.
    """
    if not filters.active():
        return frames
    acc = frames.accounts
    if filters.segment:
        acc = acc.filter(_in("segment", filters.segment))
    if filters.region:
        acc = acc.filter(_in("region", filters.region))
    if filters.owner:
        acc = acc.filter(_in("owner", filters.owner))
    account_filter = bool(filters.segment or filters.region or filters.owner)
    account_ids = acc["account_id"]

    def by_account(df: pl.DataFrame) -> pl.DataFrame:
        return df.filter(pl.col("account_id").is_in(account_ids.implode())) if account_filter else df

    def people(df: pl.DataFrame) -> pl.DataFrame:
        # Deals and leads carry their own segment/owner; region (and a missing segment) comes from the account.
        if filters.segment:
            seg = pl.coalesce("segment", pl.col("account_id").replace_strict(
                acc_seg["account_id"], acc_seg["segment"], default=None, return_dtype=pl.String))
            df = df.filter(seg.is_in(list(filters.segment)))
        if filters.region:
            df = df.filter(pl.col("account_id").is_in(acc_region.implode()))
        if filters.owner:
            df = df.filter(_in("owner", filters.owner))
        if filters.source:
            df = df.filter(_in("source", filters.source))
        return df

    acc_seg = frames.accounts.select("account_id", "segment").unique("account_id")
    acc_region = frames.accounts.filter(_in("region", filters.region))["account_id"] if filters.region else None
    opps = people(frames.opportunities)
    opp_ids = opps["opportunity_id"].implode()
    leads = people(frames.leads)
    targets = frames.targets
    if filters.segment:
        targets = targets.filter(_in("segment", filters.segment) | pl.col("segment").is_null())
    if filters.owner:
        targets = targets.filter(_in("owner", filters.owner) | pl.col("owner").is_null())
    # A target row for the filtered segment/owner beats the company-wide one.
    if filters.segment or filters.owner:
        specific = targets.filter(pl.col("segment").is_not_null() | pl.col("owner").is_not_null())
        targets = specific if specific.height else targets
    touches = frames.touches
    if filters.source:
        touches = touches.filter(_in("channel", filters.source))
    snaps = frames.snapshots
    if snaps is not None:
        snaps = snaps.filter(pl.col("opportunity_id").is_in(opp_ids))
    return replace(
        frames,
        accounts=acc if account_filter else frames.accounts,
        leads=leads,
        opportunities=opps,
        stage_history=frames.stage_history.filter(pl.col("opportunity_id").is_in(opp_ids)),
        subscriptions=by_account(frames.subscriptions),
        lifecycle=by_account(frames.lifecycle),
        usage=by_account(frames.usage),
        targets=targets,
        touches=touches,
        snapshots=snaps,
    )


def latest_event_date(frames: Frames) -> dt.date | None:
    """The latest creation, stage change, close of a closed deal, usage day or subscription start."""
    opps = frames.opportunities
    candidates = [
        frames.leads["created_at"].max(),
        opps["created_at"].max(),
        opps.filter(pl.col("state") != "open")["close_date"].max(),
        frames.stage_history["changed_at"].max(),
        frames.usage["date"].max(),
        frames.subscriptions["start_date"].max(),
    ]
    days = [c.date() if isinstance(c, dt.datetime) else c for c in candidates if c is not None]
    return max(days) if days else None


def default_as_of(frames: Frames, today: dt.date | None = None) -> dt.date:
    """Latest event date in the data, never later than today (today when there is no data)."""
    today = today or dt.date.today()
    latest = latest_event_date(frames)
    return min(latest, today) if latest else today


def distinct_values(frames: Frames) -> dict[str, list[str]]:
    """Choices for the sidebar filters."""
    def uniq(*series: pl.Series) -> list[str]:
        vals: set[str] = set()
        for s in series:
            vals.update(v for v in s.drop_nulls().unique().to_list() if v != "")
        return sorted(vals)
    return {
        "segment": uniq(frames.accounts["segment"], frames.opportunities["segment"], frames.leads["segment"]),
        "region": uniq(frames.accounts["region"]),
        "owner": uniq(frames.opportunities["owner"], frames.accounts["owner"], frames.leads["owner"]),
        "source": uniq(frames.opportunities["source"], frames.leads["source"]),
    }


__all__ = ["Filters", "Frames", "apply_filters", "default_as_of", "distinct_values", "empty_frames",
           "frames_from_tables", "latest_event_date", "load_frames"]

