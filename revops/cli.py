"""python -m revops …: the command line, also the contract the tests and automation use."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-03-31") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="python -m revops", description="RevOps cockpit command line")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="build the deterministic demo company into the DuckDB file")
    d.add_argument("--db")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--scale", type=int, default=5000, help="number of opportunities")

    i = sub.add_parser("ingest", help="load a CSV/XLSX export into a canonical table")
    i.add_argument("table")
    i.add_argument("file")
    i.add_argument("--db")
    i.add_argument("--map", action="append", default=[], metavar="SOURCE=column")
    i.add_argument("--as-of", type=_date)
    i.add_argument("--strict", action="store_true")
    i.add_argument("--rejects", metavar="OUT.csv")

    u = sub.add_parser("uploads", help="the upload log")
    u.add_argument("--db")
    u.add_argument("--json", action="store_true")

    un = sub.add_parser("undo", help="undo an upload, restoring exactly the rows it replaced")
    un.add_argument("upload_id", type=int)
    un.add_argument("--db")

    m = sub.add_parser("metrics", help="every metric of METRICS.md")
    m.add_argument("--db")
    m.add_argument("--as-of", type=_date)
    m.add_argument("--start", type=_date)
    m.add_argument("--end", type=_date)
    m.add_argument("--segment")
    m.add_argument("--json", action="store_true")

    b = sub.add_parser("bench", help="benchmark at scale: medians and ratios")
    b.add_argument("--scale", type=int, default=1_000_000)
    b.add_argument("--repeat", type=int, default=3)
    b.add_argument("--workdir", default="bench/out")
    b.add_argument("--only", action="append", default=[])
    return p


# revops/__main__.py has Polars' allocator give freed pages back at once (a one-shot ingest peaks far
# lower). A report instead frees and allocates in many small steps, each then paying page faults anew:
# at a million deals about 2.5 s of 17 s CPU, for a peak only 3 % lower. Its freed pages stay a second.
_RETURN_AT_ONCE = "dirty_decay_ms:0,muzzy_decay_ms:0"
_KEEP_A_SECOND = "dirty_decay_ms:1000,muzzy_decay_ms:0"


def _keep_freed_pages_briefly() -> None:
    """Before Polars loads: the report's allocator setting, unless the user chose one (see above)."""
    if "polars" not in sys.modules and os.environ.get("_RJEM_MALLOC_CONF", _RETURN_AT_ONCE) == _RETURN_AT_ONCE:
        os.environ["_RJEM_MALLOC_CONF"] = _KEEP_A_SECOND


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; errors become one clear line on stderr and a non-zero exit."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from revops.demo import cli_demo
            return cli_demo(args)
        if args.command in ("ingest", "uploads", "undo"):
            from revops.ingest import cli as ingest_cli
            return getattr(ingest_cli, f"cli_{args.command}")(args)
        if args.command == "metrics":
            _keep_freed_pages_briefly()
            from revops.metrics.report import cli_metrics
            return cli_metrics(args)
        if args.command == "bench":
            from bench.run import cli_bench
            return cli_bench(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI's users get one sentence, never a traceback
        from revops.errors import user_message
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 1
    return 2
