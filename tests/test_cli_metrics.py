"""python -m revops metrics on a small DuckDB file: JSON shape, values, segment filter, readable table, errors."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from revops import store
from revops.metrics import scalar_metrics

ROOT = Path(__file__).resolve().parents[1]
D = dt.date


@pytest.fixture()
def db(tmp_path) -> Path:
    """A DuckDB file with two accounts in two segments, their subscriptions and three deals."""
    path = tmp_path / "cli.duckdb"
    with store.connect(path) as con:
        store.replace_tables(con, {
            "accounts": pl.DataFrame({"account_id": ["a", "b"], "segment": ["SMB", "Enterprise"]}),
            "subscriptions": pl.DataFrame({"subscription_id": ["1", "2"], "account_id": ["a", "b"],
                                           "start_date": [D(2023, 1, 1), D(2023, 6, 1)], "end_date": [None, None],
                                           "mrr": [100.0, 400.0]}),
            "opportunities": pl.DataFrame({
                "opportunity_id": ["w", "l", "o"], "stage": ["Closed Won", "Closed Lost", "Proposal"],
                "account_id": ["a", "b", "b"], "segment": ["SMB", "Enterprise", "Enterprise"],
                "amount": [1000.0, 3000.0, 5000.0], "created_at": [D(2024, 1, 5), D(2024, 1, 10), D(2024, 2, 1)],
                "close_date": [D(2024, 3, 1), D(2024, 3, 10), D(2024, 6, 30)],
                "is_closed": [True, True, False], "is_won": [True, False, False]}),
        })
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "revops", "metrics", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_json_output_has_the_design_shape(db):
    """--json prints as_of, window and every scalar metric as {value, unit, tier, reason}."""
    out = run("--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    # latest event: the lost deal's close on 10 Mar 2024; window the 365 days ending there
    assert report["as_of"] == "2024-03-10"
    assert report["window"] == {"start": "2023-03-12", "end": "2024-03-10"}
    assert set(report["metrics"]) == {m.id for m in scalar_metrics()}
    assert report["metrics"]["arr"] == {"value": 6000.0, "unit": "money", "tier": "north_star", "reason": None}
    assert report["metrics"]["win_rate"]["value"] == 0.5  # w won, l lost
    assert isinstance(report["tables"]["stage_conversion"], list)


def test_as_of_and_segment_filter(db):
    """--segment SMB keeps account a and deal w; --as-of moves ARR's day."""
    out = run("--db", str(db), "--json", "--segment", "SMB", "--as-of", "2023-03-01")
    report = json.loads(out.stdout)
    assert report["as_of"] == "2023-03-01"
    assert report["metrics"]["arr"]["value"] == 1200.0  # only a, 12 × 100


def test_window_from_start_and_end(db):
    """--start/--end set the window; as-of follows the end."""
    report = json.loads(run("--db", str(db), "--json", "--start", "2024-03-05", "--end", "2024-03-31").stdout)
    assert report["window"] == {"start": "2024-03-05", "end": "2024-03-31"} and report["as_of"] == "2024-03-31"
    assert report["metrics"]["win_rate"]["value"] == 0.0  # only l closed in the window: a real 0 %


def test_readable_table_groups_by_tier(db):
    """Without --json: a table with one heading per tier."""
    out = run("--db", str(db))
    assert out.returncode == 0, out.stderr
    assert "North Star" in out.stdout and "Leading" in out.stdout and "$6K" in out.stdout


def test_start_after_end_fails_with_one_sentence(db):
    """--start after --end: non-zero exit and a one-line reason, no traceback."""
    out = run("--db", str(db), "--start", "2024-05-01", "--end", "2024-04-01")
    assert out.returncode != 0
    assert "is after its end" in out.stderr and "Traceback" not in out.stderr


def test_missing_database_fails_with_one_sentence(tmp_path):
    """A --db path that does not exist: a clear error, and no file is created."""
    missing = tmp_path / "nope.duckdb"
    out = run("--db", str(missing), "--json")
    assert out.returncode != 0 and "There is no database" in out.stderr
    assert not missing.exists()
