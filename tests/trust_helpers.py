"""Helpers of the trust tests (crash safety, concurrency): big generated uploads, real CLI processes, counts."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import psutil

from revops import store

ROOT = Path(__file__).resolve().parents[1]


def opportunities_csv(path: Path, rows: int, prefix: str) -> Path:
    """An opportunities export of `rows` new deals whose ids all start with `prefix` (Polars ranges, no loops)."""
    stages = ["Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
    owners = ["Ana", "Bo", "Cy", "Di"]
    segments = ["SMB", "Mid-Market", "Enterprise"]
    i = pl.col("i")
    frame = pl.select(i=pl.int_range(0, rows)).select(
        opportunity_id=pl.lit(prefix) + i.cast(pl.String).str.zfill(7),
        opportunity_name=pl.lit(f"{prefix} deal ") + i.cast(pl.String),
        stage=(i % len(stages)).replace_strict(dict(enumerate(stages)), return_dtype=pl.String),
        amount=(i % 997 * 100 + 1000).cast(pl.Float64),
        created_at=pl.lit(dt.date(2024, 1, 1)) + pl.duration(days=i % 365),
        close_date=pl.lit(dt.date(2024, 6, 1)) + pl.duration(days=i % 365),
        owner=(i % len(owners)).replace_strict(dict(enumerate(owners)), return_dtype=pl.String),
        segment=(i % len(segments)).replace_strict(dict(enumerate(segments)), return_dtype=pl.String),
    )
    frame.write_csv(path)
    return path


def env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this project importable, no inherited database."""
    out = {k: v for k, v in os.environ.items() if k != "REVOPS_DB"}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    out.update(extra)
    return out


def revops_cmd(*args: str) -> list[str]:
    """python -m revops … with this interpreter."""
    return [sys.executable, "-m", "revops", *args]


def run_revops(*args: str, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run one CLI command to completion."""
    return subprocess.run(revops_cmd(*args), cwd=ROOT, env=env(**extra_env), capture_output=True, text=True,
                          timeout=timeout)


def start_revops(*args: str, **extra_env: str) -> subprocess.Popen[str]:
    """Start one CLI command in the background."""
    return subprocess.Popen(revops_cmd(*args), cwd=ROOT, env=env(**extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def holds_file(pid: int, path: Path) -> bool:
    """Whether the process has the file open (for DuckDB: it got past the lock and is working in the file)."""
    try:
        return any(Path(f.path) == path.resolve() for f in psutil.Process(pid).open_files())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False


def wait_until_holding(proc: subprocess.Popen[str], path: Path, timeout: float = 120) -> bool:
    """Poll until the process opened the file; False when it exited (or the time ran out) first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if holds_file(proc.pid, path):
            return True
        time.sleep(0.01)
    return False


def state(db: Path) -> dict[str, int]:
    """What an upload changes, read in one transaction: deals, uploads logged, snapshot rows, data version."""
    with store.connect(db, read_only=True) as con:  # waits its turn while another process holds the file
        row = con.execute(
            "SELECT (SELECT count(*) FROM opportunities), (SELECT count(*) FROM _uploads), "
            "(SELECT count(*) FROM _opportunity_snapshots), "
            "(SELECT CAST(value AS BIGINT) FROM _meta WHERE key = 'data_version')").fetchall()[0]
    return {"deals": row[0], "uploads": row[1], "snapshots": row[2], "version": row[3]}


def ingest_process(table: str, file: Path, db: Path, *extra: str, **extra_env: str) -> subprocess.Popen[str]:
    """Start `python -m revops ingest TABLE FILE --db DB` in the background."""
    return start_revops("ingest", table, str(file), "--db", str(db), *extra, **extra_env)


def ingest(table: str, file: Path, db: Path, *extra: str, timeout: float = 300,
           **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run the ingest to completion."""
    proc = ingest_process(table, file, db, *extra, **extra_env)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
