"""Every metric at once, in the JSON shape of DESIGN.md, and the `python -m revops metrics` command."""
from __future__ import annotations

import argparse
import contextvars
import datetime as dt
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from revops import store
from revops.errors import UserError
from revops.format import display_unit, format_value
from revops.frames import (Filters, Frames, StaleData, apply_filters, default_as_of, distinct_values,
                           open_frames)
from revops.metrics.common import is_number
from revops.metrics.registry import BY_ID, REGISTRY, TIERS, compute, scalar_metrics
from revops.period import DEFAULT_WINDOW_DAYS, Period
from revops.reads import rows_from_file


# A report reads its tables one by one; when uploads keep landing between reads, give up after this many.
STALE_RETRIES = 5


def json_value(value: Any) -> Any:
    """A cell as JSON allows it: dates as ISO text, NaN and inf as null (also inside list cells)."""
    if isinstance(value, float):
        return value if is_number(value) else None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


def json_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """A table as a list of JSON-safe rows."""
    return [{k: json_value(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def _handoffs_rows(frames: Frames, period: Period) -> list[dict[str, Any]] | None:
    """The handoffs table when revops.handoffs provides it (it is built separately)."""
    try:
        from revops.handoffs import handoffs_table  # type: ignore[attr-defined]
    except ImportError:
        return None
    return json_rows(handoffs_table(frames, period))


def metrics_report(frames: Frames, period: Period, include_tables: bool = True) -> dict[str, Any]:
    """{"as_of", "window", "metrics": {id: {value, unit, tier, reason}}} plus the table metrics as lists of rows."""
    out: dict[str, Any] = {
        "as_of": period.as_of.isoformat(),
        "window": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "metrics": {},
    }
    if not include_tables:
        _scalars(out, frames, period)
        return out
    # The tables (the stage funnel, then the handoffs) are computed beside the scalar metrics, on the
    # second core: Polars and DuckDB work outside the interpreter lock. The funnel shares no intermediate
    # result with the scalars; the handoffs' shared ones (closed deals, movements, ARR by account) are
    # kept per frames and mostly computed by the scalars by the time the funnel is done. Data quality,
    # which shares nothing, goes first on that side too (the scalar loop then finds its value kept).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="revops-tables") as pool:
        context = contextvars.copy_context()  # the caller's settings (rows_from_file) hold there too
        pending = pool.submit(context.run, _tables, frames, period)
        _scalars(out, frames, period)
        tables = pending.result()
    out["tables"] = tables
    # Also at the top level ("stage_conversion", "handoffs"), where a reader of the JSON looks first;
    # "metrics" stays scalar-only so every entry there has the same shape.
    out.update(tables)
    return out


# Scalar metrics that share no intermediate result with the others, computed on the tables' side.
BESIDE = ("data_quality",)


def _tables(frames: Frames, period: Period) -> dict[str, Any]:
    """The table metrics and the handoffs, as lists of JSON rows (after the BESIDE metrics' values)."""
    for metric_id in BESIDE:
        compute(metric_id, frames, period, details=False)
    tables: dict[str, Any] = {}
    for m in REGISTRY:
        if m.kind == "table":
            table = m.compute(frames, period).table
            tables[m.id] = json_rows(table) if table is not None else []
    handoffs = _handoffs_rows(frames, period)
    if handoffs is not None:
        tables["handoffs"] = handoffs
    return tables


def _scalars(out: dict[str, Any], frames: Frames, period: Period) -> None:
    """Every scalar metric's entry of the report, in tier order, into out["metrics"]."""
    for m in sorted(scalar_metrics(), key=lambda m: list(TIERS).index(m.tier)):  # stable: declaration order in a tier
        r = compute(m.id, frames, period, details=False)  # the report shows values, not the rows behind them
        value = r.value if is_number(r.value) else None
        reason = r.reason if value is None else None
        if value is not None and m.unit == "count" and float(value).is_integer():
            value = int(value)
        out["metrics"][m.id] = {"value": value, "unit": m.unit, "tier": m.tier,
                                "reason": reason or ("No value" if value is None else None)}


def resolve_period(frames: Frames, as_of: dt.date | None, start: dt.date | None, end: dt.date | None) -> Period:
    """The period of the command line: as-of (else the window's end, else the data's latest event) and window.

    The window defaults to the 365 days ending at as-of; --start alone runs to as-of and --end
    alone covers the 365 days ending there.
    """
    fiscal = frames.settings.fiscal_year_start_month
    as_of = as_of or end or default_as_of(frames)
    if start is None and end is None:
        return Period.ending(as_of, DEFAULT_WINDOW_DAYS, fiscal)
    end = end or as_of
    start = start or end - dt.timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    if start > end:
        raise UserError(f"The window start {start.isoformat()} is after its end {end.isoformat()}: "
                        "give --start on or before --end.")
    return Period(as_of, start, end, fiscal)


def render_text(report: dict[str, Any], currency: str = "USD") -> str:
    """The report as a readable table grouped by tier."""
    lines = [f"As of {report['as_of']}, window {report['window']['start']} to {report['window']['end']}"]
    width = max((len(m.label) for m in REGISTRY), default=10)
    for tier, title in TIERS.items():
        rows = [(mid, r) for mid, r in report["metrics"].items() if r["tier"] == tier]
        if not rows:
            continue
        lines += ["", title, "-" * len(title)]
        for mid, r in rows:
            label = BY_ID[mid].label
            shown = format_value(r["value"], display_unit(r["unit"], mid), currency)
            note = f"  ({r['reason']})" if r["value"] is None else ""
            lines.append(f"  {label:<{width}}  {shown:>12}{note}")
    with pl.Config(tbl_formatting="ASCII_MARKDOWN", tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
                   tbl_cols=8, tbl_rows=20, float_precision=3, fmt_str_lengths=32, tbl_width_chars=160):
        for name, rows in report.get("tables", {}).items():
            lines += ["", name.replace("_", " ").capitalize()]
            lines += ["  " + line for line in str(pl.DataFrame(rows)).splitlines()] if rows else ["  (no rows)"]
    return "\n".join(lines)


def cli_metrics(args: argparse.Namespace) -> int:
    """python -m revops metrics [--db] [--as-of] [--start --end] [--segment S] [--json]."""
    path = store.resolve_db(args.db)
    if not path.exists():
        raise UserError(f"There is no database at {path}: load data first (python -m revops demo or ingest).")
    for attempt in range(STALE_RETRIES):
        try:
            return _report(args, path)
        except StaleData:  # an upload landed between two table reads: start over on the new data
            if attempt == STALE_RETRIES - 1:
                raise
    return 1


def _report(args: argparse.Namespace, path: Path) -> int:
    """One metrics report of the file, all of it from one data version."""
    # Each table is read when a metric first needs it; whatever no metric reads is never read. The
    # tables the report will need whole are read ahead, in the order it uses them, beside the computing;
    # of leads, usage and stage history it needs some rows only, read from the file alone (rows_from_file).
    everything = open_frames(path, read_only=True)
    everything.prefetch(["opportunities", "subscriptions", "spend", "targets", "lifecycle"])
    period = resolve_period(everything, args.as_of, args.start, args.end)
    frames = everything
    if args.segment:
        if args.segment not in distinct_values(everything)["segment"]:
            print(f"warning: no data has the segment {args.segment!r}; every metric will be empty.", file=sys.stderr)
        frames = apply_filters(everything, Filters(segment=(args.segment,)))
    with rows_from_file():
        report = metrics_report(frames, period, include_tables=True)
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(render_text(report, frames.settings.currency))
    return 0


__all__ = ["cli_metrics", "json_rows", "json_value", "metrics_report", "render_text", "resolve_period"]
