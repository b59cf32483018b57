"""The benchmark at scale: build (or reuse) a scaled demo company, measure every goal several times, print medians.

    python -m revops bench [--scale 1000000] [--repeat 3] [--workdir bench/out] [--only metrics --only pages ...]
    python bench/run.py    (same arguments)

Parts (--only picks some; default all): demo, metrics, pages, memory, ingest (or a page file such as
pages/funnel.py). The demo company is built once per scale and reused (its build time is the one
recorded then); `--only demo` builds and times it again. Every measurement runs
in fresh child processes, `repeat` times, interleaved with its yardstick where it has one, and is
reported as the median (the machine is shared and noisy). Results also go to WORKDIR/results.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PARTS = ("demo", "metrics", "pages", "memory", "ingest")

# The goals of the issue "Scale and speed: a million deals".
DEMO_MINUTES = 5.0
METRICS_RATIO = 1.5
FIRST_RENDER_S = 2.0
RERUN_S = 0.3
INGEST_RATIO = 2.0
INGEST_MEMORY_RATIO = 3.0
APP_RSS_MB = 2048.0
MIN_ROWS = {"opportunities": 1.0, "stage_history": 5.0, "leads": 2.0, "usage": 10.0}  # × scale

# The CSV a CRM would export: the usual deal columns (about 100 bytes a row).
CSV_COLUMNS = ("opportunity_id, stage, account_id, owner, source, segment, type, amount, created_at, close_date, "
               "forecast_category, probability")


def pages() -> list[str]:
    """Every page file the router registers (app.PAGES), without importing Streamlit's app script."""
    text = (ROOT / "app.py").read_text()
    import re
    return re.findall(r'st\.Page\("([^"]+)"', text)


# ---------------------------------------------------------------------------------------
# Running things


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Wall time and peak RSS of a command, from a fresh wrapper process."""
    done = subprocess.run([PY, "-m", "bench.measure", "--", *cmd], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise RuntimeError(f"measuring {' '.join(cmd)} failed: {done.stderr[-500:]}")
    result = json.loads(done.stdout)
    if result["returncode"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result['returncode']}: {result['stderr'][-800:]}")
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# The scaled company


def demo_db(workdir: Path, scale: int) -> Path:
    return workdir / f"scale_{scale}.duckdb"


def ensure_demo(workdir: Path, scale: int, rebuild: bool) -> dict:
    """Build the scaled demo company once (timed), or reuse it; its row counts and build figures."""
    db = demo_db(workdir, scale)
    info_path = db.with_suffix(".json")
    if db.exists() and info_path.exists() and not rebuild:
        info = json.loads(info_path.read_text())
        info["reused"] = True
        return info
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    say(f"building the demo company at scale {scale:,} …")
    run = measure([PY, "-m", "revops", "demo", "--scale", str(scale), "--db", str(db)])
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
              for t in ("opportunities", "stage_history", "leads", "usage", "subscriptions", "touches",
                        "accounts", "_opportunity_snapshots")}
    as_of = con.execute("SELECT max(date) FROM usage").fetchone()[0]
    con.close()
    info = {"scale": scale, "seconds": run["seconds"], "max_rss_mb": run["max_rss_mb"], "rows": counts,
            "built_on": dt.date.today().isoformat(), "latest_usage": str(as_of), "reused": False}
    info_path.write_text(json.dumps(info, indent=2))
    return info


# ---------------------------------------------------------------------------------------
# metrics --json against the hand-written SQL


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# The table metrics `metrics --json` prints at its top level, and the field naming each row.
TABLES = {"stage_conversion": "stage", "handoffs": "key"}


def same_cell(a: object, b: object) -> bool:
    """Numbers agree within close(); text, flags and empties must be equal."""
    def number(v: object) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if number(a) and number(b):
        return close(a, b)  # type: ignore[arg-type]
    return a == b


def compare_table(name: str, ours: list[dict] | None, theirs: list[dict] | None) -> tuple[int, int, list[dict]]:
    """Every cell of a table of the report against the SQL's: (cells compared, cells that differ, mismatches).

    Rows pair up in order; a row only one side has counts all its cells as differing, and a table
    missing on one side is compared as empty.
    """
    ours, theirs = ours or [], theirs or []
    cells = bad = 0
    mismatches: list[dict] = []
    for i in range(max(len(ours), len(theirs))):
        mine, other = (ours[i] if i < len(ours) else None), (theirs[i] if i < len(theirs) else None)
        fields = list(dict.fromkeys([*(mine or {}), *(other or {})]))
        label = f"{name}[{(mine or other or {}).get(TABLES.get(name, ''), i)}]"
        if mine is None or other is None:
            cells, bad = cells + len(fields), bad + len(fields)
            mismatches.append({"metric": label, "revops": "missing" if mine is None else "row",
                               "sql": "missing" if other is None else "row"})
            continue
        for field in fields:
            cells += 1
            a, b = mine.get(field, "missing"), other.get(field, "missing")
            if not same_cell(a, b):
                bad += 1
                mismatches.append({"metric": f"{label}.{field}", "revops": a, "sql": b})
    return cells, bad, mismatches


def bench_metrics(db: Path, repeat: int) -> dict:
    """Interleaved runs of `python -m revops metrics --json` and bench/baseline.py; medians and mismatches."""
    ours, theirs = [], []
    report = base = None
    for i in range(repeat):
        say(f"metrics run {i + 1}/{repeat} …")
        r = measure([PY, "-m", "revops", "metrics", "--json", "--db", str(db)])
        ours.append(r)
        report = json.loads(r["stdout"])
        b = measure([PY, str(ROOT / "bench" / "baseline.py"), str(db)])
        theirs.append(b)
        base = json.loads(b["stdout"])
    assert report is not None and base is not None
    mismatches = []
    for mid, entry in report["metrics"].items():
        expected = base["metrics"].get(mid, "missing")
        if expected == "missing" or not close(entry["value"], expected):
            mismatches.append({"metric": mid, "revops": entry["value"], "sql": expected})
    for mid in base["metrics"]:
        if mid not in report["metrics"]:
            mismatches.append({"metric": mid, "revops": "missing", "sql": base["metrics"][mid]})
    scalar_mismatches = len(mismatches)
    if report["as_of"] != base["as_of"]:
        mismatches.append({"metric": "as_of", "revops": report["as_of"], "sql": base["as_of"]})
    cells = bad_cells = 0
    for name in TABLES:
        n, bad, found = compare_table(name, report.get(name), base.get(name))
        cells, bad_cells = cells + n, bad_cells + bad
        mismatches += found
    seconds = median([r["seconds"] for r in ours])
    sql_seconds = median([r["seconds"] for r in theirs])
    return {"seconds": seconds, "sql_seconds": sql_seconds, "ratio": seconds / sql_seconds,
            "runs": [r["seconds"] for r in ours], "sql_runs": [r["seconds"] for r in theirs],
            "max_rss_mb": max(r["max_rss_mb"] for r in ours), "metrics_compared": len(report["metrics"]),
            "metrics_mismatched": scalar_mismatches, "cells_compared": cells, "cells_mismatched": bad_cells,
            "mismatches": mismatches}


# ---------------------------------------------------------------------------------------
# Pages


def bench_pages(db: Path, repeat: int, only_pages: list[str] | None = None) -> dict:
    """Each page in its own fresh process per repetition: first render and reruns, medians."""
    runs: dict[str, list[dict]] = {}
    loads: list[float] = []
    for i in range(repeat):
        for page in only_pages or pages():
            say(f"page {page} run {i + 1}/{repeat} …")
            r = measure([PY, "-m", "bench.pages", str(db), page])
            out = json.loads(r["stdout"])
            loads.append(out["data_load"])
            runs.setdefault(page, []).append(out["pages"][0])
    table = {}
    for page, rs in runs.items():
        row = {"errors": sorted({e for r in rs for e in r["errors"]})}
        for key in ("first_render", "rerun_segment_filter", "rerun_region_filter", "rerun_slider"):
            values = [r[key] for r in rs if key in r]
            if values:
                row[key] = median(values)
                row[key + "_runs"] = values
        table[page] = row
    return {"data_load": median(loads), "pages": table}


def bench_memory(db: Path, repeat: int) -> dict:
    """Every page, first render and a filter change, in one app process: its peak RSS (median of runs)."""
    peaks = []
    for i in range(repeat):
        say(f"app memory run {i + 1}/{repeat} …")
        r = measure([PY, "-m", "bench.pages", str(db), "--memory", *pages()])
        peaks.append(json.loads(r["stdout"])["max_rss_mb"])
    return {"max_rss_mb": median(peaks), "runs": peaks, "method": "AppTest, all pages in one process"}


# ---------------------------------------------------------------------------------------
# Ingest


def ensure_csv(workdir: Path, db: Path, scale: int) -> Path:
    """A CRM-style opportunities export of the scaled company (written once)."""
    path = workdir / f"opportunities_{scale}.csv"
    if not path.exists():
        import duckdb
        con = duckdb.connect(str(db), read_only=True)
        con.execute(f"COPY (SELECT {CSV_COLUMNS} FROM opportunities ORDER BY opportunity_id) TO '{path}' (HEADER)")
        con.close()
    return path


DUCKDB_LOAD = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute(\"CREATE TABLE t AS SELECT * FROM read_csv('\" + sys.argv[2] + \"')\")"


def bench_ingest(workdir: Path, db: Path, scale: int, repeat: int) -> dict:
    """`python -m revops ingest opportunities FILE` into a fresh file against DuckDB's own read_csv, interleaved."""
    csv = ensure_csv(workdir, db, scale)
    target = workdir / "ingest_target.duckdb"
    ours, theirs = [], []
    for i in range(repeat):
        say(f"ingest run {i + 1}/{repeat} …")
        for path in (target, target.with_name(target.name + ".wal")):
            path.unlink(missing_ok=True)
        ours.append(measure([PY, "-m", "revops", "ingest", "opportunities", str(csv), "--db", str(target)]))
        for path in (target, target.with_name(target.name + ".wal")):
            path.unlink(missing_ok=True)
        theirs.append(measure([PY, "-c", DUCKDB_LOAD, str(target), str(csv)]))
    for path in (target, target.with_name(target.name + ".wal")):
        path.unlink(missing_ok=True)
    size_mb = csv.stat().st_size / 2**20
    seconds, duck = median([r["seconds"] for r in ours]), median([r["seconds"] for r in theirs])
    peak = median([r["max_rss_mb"] for r in ours])
    return {"file_mb": size_mb, "rows": scale, "seconds": seconds, "duckdb_seconds": duck, "ratio": seconds / duck,
            "max_rss_mb": peak, "memory_ratio": peak / size_mb, "duckdb_max_rss_mb": median(
                [r["max_rss_mb"] for r in theirs]), "runs": [r["seconds"] for r in ours],
            "duckdb_runs": [r["seconds"] for r in theirs], "path": "python -m revops ingest (the CLI, fresh process)"}


# ---------------------------------------------------------------------------------------
# The table


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def agreement(m: dict) -> str:
    """How many scalar metrics and table cells agree with the SQL ("32 of 32 metrics and 163 of 163 table cells")."""
    n = m["metrics_compared"]
    if "cells_compared" not in m:  # figures saved before the tables were compared
        return f"{n - len(m['mismatches'])} of {n} metrics agree (tables not compared)"
    cells = m["cells_compared"]
    return (f"{n - m['metrics_mismatched']} of {n} metrics and {cells - m['cells_mismatched']} of {cells} "
            "table cells agree")


def goal_rows(results: dict, scale: int) -> list[tuple[str, str, str, str]]:
    """(goal, measured, limit, verdict) for every goal measured."""
    rows = []
    if "demo" in results:
        d = results["demo"]
        minutes = d["seconds"] / 60
        rows.append((f"demo --scale {scale:,}: build time", f"{minutes:.1f} min (peak {d['max_rss_mb']:,.0f} MB)",
                     f"≤ {DEMO_MINUTES:.0f} min", verdict(minutes <= DEMO_MINUTES)))
        for table, factor in MIN_ROWS.items():
            n = d["rows"][table]
            rows.append((f"demo: {table} rows", f"{n:,}", f"≥ {int(factor * scale):,}",
                         verdict(n >= factor * scale)))
    if "metrics" in results:
        m = results["metrics"]
        rows.append(("metrics --json ÷ hand-written DuckDB SQL",
                     f"{m['seconds']:.2f} s ÷ {m['sql_seconds']:.2f} s = {m['ratio']:.2f}×",
                     f"≤ {METRICS_RATIO}×", verdict(m["ratio"] <= METRICS_RATIO)))
        rows.append(("metrics: same numbers as the SQL", agreement(m), "all", verdict(not m["mismatches"])))
    if "pages" in results:
        for page, p in results["pages"]["pages"].items():
            name = Path(page).stem
            if "first_render" in p:
                rows.append((f"page {name}: first render", f"{p['first_render']:.2f} s", f"≤ {FIRST_RENDER_S:.0f} s",
                             verdict(p["first_render"] <= FIRST_RENDER_S and not p["errors"])))
            reruns = {k: p[k] for k in ("rerun_segment_filter", "rerun_region_filter", "rerun_slider") if k in p}
            if reruns:
                worst = max(reruns, key=reruns.get)
                shown = ", ".join(f"{k.removeprefix('rerun_').replace('_', ' ')} {v:.2f} s" for k, v in reruns.items())
                rows.append((f"page {name}: rerun after a change", shown, f"≤ {RERUN_S:.1f} s",
                             verdict(reruns[worst] <= RERUN_S)))
            if p["errors"]:
                rows.append((f"page {name}: errors", "; ".join(p["errors"])[:120], "none", "NOT MET"))
    if "memory" in results:
        mem = results["memory"]
        rows.append(("app process peak RSS (every page + a filter)", f"{mem['max_rss_mb']:,.0f} MB",
                     f"< {APP_RSS_MB:,.0f} MB", verdict(mem["max_rss_mb"] < APP_RSS_MB)))
    if "ingest" in results:
        g = results["ingest"]
        rows.append((f"ingest {g['rows']:,}-row CSV ({g['file_mb']:.0f} MB) ÷ DuckDB read_csv",
                     f"{g['seconds']:.2f} s ÷ {g['duckdb_seconds']:.2f} s = {g['ratio']:.2f}×", f"≤ {INGEST_RATIO}×",
                     verdict(g["ratio"] <= INGEST_RATIO)))
        rows.append(("ingest peak RSS ÷ file size", f"{g['max_rss_mb']:,.0f} MB ÷ {g['file_mb']:.0f} MB = "
                     f"{g['memory_ratio']:.2f}×", f"< {INGEST_MEMORY_RATIO}×",
                     verdict(g["memory_ratio"] < INGEST_MEMORY_RATIO)))
    return rows


def render_table(rows: list[tuple[str, str, str, str]]) -> str:
    """A Markdown table (it reads as plain text too)."""
    head = ("Goal", "Measured (median)", "Limit", "Result")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


# ---------------------------------------------------------------------------------------
# Entry points


def run(scale: int, repeat: int, workdir: Path, only: list[str]) -> dict:
    """Measure the chosen parts; the results dict (also written to WORKDIR/results.json)."""
    unknown = [p for p in only if p not in PARTS and not p.startswith("pages/")]
    if unknown:
        raise ValueError(f"unknown bench part {unknown[0]!r}; choose from {', '.join(PARTS)} (or a page file)")
    workdir.mkdir(parents=True, exist_ok=True)
    chosen_pages = [p for p in only if p.startswith("pages/")]
    parts = [p for p in only if p in PARTS] or (["pages"] if chosen_pages else list(PARTS))
    started = time.perf_counter()
    results: dict = {"scale": scale, "repeat": repeat, "date": dt.datetime.now().isoformat(timespec="seconds"),
                     "cpus": os.cpu_count()}
    # The company is built once and reused; `--only demo` builds (and times) it again.
    info = ensure_demo(workdir, scale, rebuild="demo" in only)
    if "demo" in parts:
        results["demo"] = info
    db = demo_db(workdir, scale)
    if "metrics" in parts:
        results["metrics"] = bench_metrics(db, repeat)
    if "pages" in parts:
        results["pages"] = bench_pages(db, repeat, chosen_pages or None)
    if "memory" in parts:
        results["memory"] = bench_memory(db, repeat)
    if "ingest" in parts:
        results["ingest"] = bench_ingest(workdir, db, scale, repeat)
    results["bench_seconds"] = time.perf_counter() - started
    results["table"] = render_table(goal_rows(results, scale))
    out = workdir / "results.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    merged = {**previous, **results}  # a partial run keeps the other parts' last figures
    merged["table"] = render_table(goal_rows(merged, merged.get("scale", scale)))
    out.write_text(json.dumps(merged, indent=2, default=str))
    return results


def cli_bench(args: argparse.Namespace) -> int:
    """python -m revops bench: run, then print the goals table (medians and ratios)."""
    results = run(args.scale, args.repeat, Path(args.workdir), list(args.only))
    print(results["table"])
    if "metrics" in results and results["metrics"]["mismatches"]:
        print("\nNumbers that differ from the SQL baseline:")
        for m in results["metrics"]["mismatches"]:
            print(f"  {m['metric']}: revops {m['revops']!r}, SQL {m['sql']!r}")
    print(f"\n{args.repeat} run(s) each, medians; {os.cpu_count()} CPUs; details in {Path(args.workdir) / 'results.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from revops.cli import build_parser
    return cli_bench(build_parser().parse_args(["bench", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":
    sys.exit(main())
