"""Concurrent users: readers never see half an upload, writers take turns, a busy database says so clearly."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from revops import store
from tests.trust_helpers import (
    ROOT, env, ingest, ingest_process, opportunities_csv, run_revops, state, wait_until_holding,
)

pytestmark = pytest.mark.slow
BASE_ROWS = 1_000
BIG_ROWS = 200_000


@pytest.fixture()
def base(tmp_path) -> Path:
    """A database holding one earlier upload of 1,000 deals."""
    db = tmp_path / "shared.duckdb"
    done = ingest("opportunities", opportunities_csv(tmp_path / "base.csv", BASE_ROWS, "OLD-"), db)
    assert done.returncode == 0, done.stderr
    return db


def _insert_upload(db: Path, frame: pl.DataFrame) -> None:
    """What every upload does inside its one transaction: the rows and the uploads log."""
    with store.connect(db) as con, store.transaction(con):
        uid = con.execute("SELECT coalesce(max(upload_id), 0) + 1 FROM _uploads").fetchall()[0][0]
        con.register("_in", frame.to_arrow())
        con.execute("INSERT INTO opportunities BY NAME SELECT * FROM _in")
        con.unregister("_in")
        con.execute("INSERT INTO _uploads (upload_id, table_name, rows_loaded) VALUES (?, 'opportunities', ?)",
                    [uid, frame.height])


def _read_loop(db: Path, stop: threading.Event, seen: list[tuple[int, int]], errors: list[BaseException]) -> None:
    """One session reading deals and uploads together, as fast as it can, until told to stop."""
    try:
        while not stop.is_set():
            with store.connect(db) as con:
                # A scan of every deal (count(*) may be answered from metadata) and the log, in one statement...
                seen.append(tuple(con.execute(
                    "SELECT count(opportunity_id), (SELECT count(*) FROM _uploads) FROM opportunities").fetchall()[0]))
                # ...and in two statements of one transaction, as a page reads its tables one by one.
                con.execute("BEGIN TRANSACTION")
                deals = con.execute("SELECT count(opportunity_id) FROM opportunities").fetchall()[0][0]
                uploads = con.execute("SELECT count(*) FROM _uploads").fetchall()[0][0]
                con.execute("COMMIT")
            seen.append((deals, uploads))
    except BaseException as exc:  # collected and asserted by the test thread
        errors.append(exc)


def test_reader_threads_see_old_or_new_never_half(base, tmp_path):
    """Four sessions of one process read while a fifth loads 200,000 deals: no error, no half state."""
    big = pl.read_csv(opportunities_csv(tmp_path / "big.csv", BIG_ROWS, "BIG-"), try_parse_dates=True)
    before = (BASE_ROWS, 1)
    after = (BASE_ROWS + BIG_ROWS, 2)
    stop, seen, errors = threading.Event(), [], []
    readers = [threading.Thread(target=_read_loop, args=(base, stop, seen, errors)) for _ in range(4)]
    for r in readers:
        r.start()
    time.sleep(0.3)
    _insert_upload(base, big)
    time.sleep(0.3)
    stop.set()
    for r in readers:
        r.join(timeout=60)
    assert not errors, errors[:3]
    assert set(seen) == {before, after}, set(seen) - {before, after}


def test_two_uploads_in_one_process_take_turns(base, tmp_path):
    """Two sessions uploading at the same moment both succeed (no commit conflict), nothing lost."""
    frames = [pl.read_csv(opportunities_csv(tmp_path / f"{p}.csv", 50_000, p), try_parse_dates=True)
              for p in ("A-", "B-")]
    errors: list[BaseException] = []

    def upload(frame: pl.DataFrame) -> None:
        try:
            _insert_upload(base, frame)
        except BaseException as exc:  # collected and asserted by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    # 1,000 earlier + 50,000 + 50,000 deals; the earlier upload + these two in the log.
    assert (state(base)["deals"], state(base)["uploads"]) == (101_000, 3)


_READER = """
import json, sys, time
from revops import store
db, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
while time.monotonic() < end:
    with store.connect(db) as con:
        print(json.dumps(con.execute("SELECT (SELECT count(*) FROM opportunities), (SELECT count(*) FROM _uploads)").fetchall()[0]), flush=True)
"""


def test_reader_processes_while_a_cli_upload_runs(base, tmp_path):
    """Three reader processes poll the file while the CLI loads 200,000 deals: they wait their turn, never fail."""
    big = opportunities_csv(tmp_path / "big.csv", BIG_ROWS, "BIG-")
    readers = [subprocess.Popen([sys.executable, "-c", _READER, str(base), "12"], cwd=ROOT, env=env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    time.sleep(1.5)  # the readers are up and holding the file in turns
    done = ingest("opportunities", big, base)
    outputs = [r.communicate(timeout=120) for r in readers]
    assert done.returncode == 0, done.stderr
    assert all(r.returncode == 0 for r in readers), [err[-500:] for _, err in outputs]
    seen = {tuple(json.loads(line)) for out, _ in outputs for line in out.splitlines()}
    assert seen == {(BASE_ROWS, 1), (BASE_ROWS + BIG_ROWS, 2)}


def test_metrics_cli_in_a_loop_while_an_upload_runs(base, tmp_path):
    """`python -m revops metrics --json` run over and over during an upload always answers, old or new numbers."""
    big = opportunities_csv(tmp_path / "big.csv", BIG_ROWS, "BIG-")
    old = run_revops("metrics", "--db", str(base), "--json")
    assert old.returncode == 0, old.stderr
    script = ("import json, subprocess, sys, time\n"
              "end = time.monotonic() + float(sys.argv[2])\n"
              "while time.monotonic() < end:\n"
              "    r = subprocess.run([sys.executable, '-m', 'revops', 'metrics', '--db', sys.argv[1], '--json'],"
              " capture_output=True, text=True)\n"
              "    assert r.returncode == 0, r.stderr[-500:]\n"
              "    print(json.dumps(json.loads(r.stdout)), flush=True)\n")
    loops = [subprocess.Popen([sys.executable, "-c", script, str(base), "10"], cwd=ROOT, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(2)
    done = ingest("opportunities", big, base)
    outputs = [p.communicate(timeout=180) for p in loops]
    assert done.returncode == 0, done.stderr
    assert all(p.returncode == 0 for p in loops), [err[-800:] for _, err in outputs]
    new = run_revops("metrics", "--db", str(base), "--json")
    before, after = json.loads(old.stdout), json.loads(new.stdout)
    assert before != after
    answers = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    assert answers and all(a in (before, after) for a in answers)  # every answer is the old or the new report


def test_second_cli_upload_waits_for_the_first_then_loads(base, tmp_path):
    """Two `ingest` processes at one file: the second waits for the lock and then loads; nothing is lost."""
    big = opportunities_csv(tmp_path / "big.csv", BIG_ROWS, "BIG-")
    small = opportunities_csv(tmp_path / "small.csv", 500, "SMALL-")
    first = ingest_process("opportunities", big, base)
    assert wait_until_holding(first, base)
    second = ingest("opportunities", small, base, REVOPS_LOCK_WAIT_SECONDS="120")
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert (state(base)["deals"], state(base)["uploads"]) == (BASE_ROWS + BIG_ROWS + 500, 3)


_HOLDER = """
import sys, time
from revops import store
with store.connect(sys.argv[1]) as con:
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_busy_database_stops_with_a_clear_message_and_loads_nothing(base, tmp_path):
    """When the lock stays taken past the wait, `ingest` exits non-zero saying the database is busy; a rerun loads."""
    small = opportunities_csv(tmp_path / "small.csv", 500, "SMALL-")
    before = state(base)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(base), "6"], cwd=ROOT, env=env(),
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    refused = ingest("opportunities", small, base, REVOPS_LOCK_WAIT_SECONDS="1")
    holder.communicate(timeout=60)
    assert refused.returncode != 0
    assert "busy" in refused.stderr.lower() and "Traceback" not in refused.stderr
    assert state(base) == before
    again = ingest("opportunities", small, base)
    assert again.returncode == 0, again.stderr
    assert state(base)["deals"] == before["deals"] + 500


def test_commit_waits_for_reads_already_running_in_other_sessions(tmp_path):
    """A session's commit waits until another session's open read finishes, so that read sees only old data."""
    db = tmp_path / "gate.duckdb"
    with store.connect(db):
        pass
    order: list[str] = []
    reading = threading.Event()

    def read() -> None:
        with store.connect(db) as con:
            reading.set()
            time.sleep(0.5)
            order.append(f"read {con.execute('SELECT count(*) FROM _mappings').fetchall()[0][0]}")

    reader = threading.Thread(target=read)
    reader.start()
    reading.wait()
    with store.connect(db) as con, store.transaction(con):
        con.execute("INSERT INTO _mappings VALUES ('sig', 'opportunities', '{}', now())")
    order.append("committed")
    reader.join()
    assert order == ["read 0", "committed"]


def test_commit_gives_up_cleanly_when_a_read_never_ends(tmp_path, monkeypatch):
    """A read held open past the wait makes the commit stop as busy, writing nothing."""
    db = tmp_path / "gate.duckdb"
    with store.connect(db):
        pass
    monkeypatch.setenv("REVOPS_LOCK_WAIT_SECONDS", "0.3")
    reading, done = threading.Event(), threading.Event()

    def read() -> None:
        with store.connect(db):
            reading.set()
            done.wait(10)

    reader = threading.Thread(target=read)
    reader.start()
    reading.wait()
    try:
        with pytest.raises(store.StoreBusy, match="busy"):
            with store.connect(db) as con, store.transaction(con):
                con.execute("INSERT INTO _mappings VALUES ('sig', 'opportunities', '{}', now())")
    finally:
        done.set()
        reader.join()
    with store.connect(db) as con:
        assert con.execute("SELECT count(*) FROM _mappings").fetchall()[0][0] == 0


def test_overlapping_uploads_in_one_process_never_duplicate_keys(tmp_path):
    """Two sessions loading files with the same 20,000 deals at once end with 20,000 deals: one upserts the other."""
    from revops.ingest import ingest_file

    db = tmp_path / "race.duckdb"
    files = [opportunities_csv(tmp_path / f"{n}.csv", 20_000, "SAME-") for n in ("a", "b")]
    # The second file changes every amount, so whichever loads second replaces the first one's rows.
    pl.read_csv(files[1]).with_columns(pl.col("amount") + 1).write_csv(files[1])
    errors: list[BaseException] = []

    def upload(path: Path) -> None:
        try:
            ingest_file(db, path, "opportunities", user=path.stem)
        except BaseException as exc:  # collected and asserted by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    with store.connect(db) as con:
        deals, keys = con.execute("SELECT count(*), count(DISTINCT opportunity_id) FROM opportunities").fetchall()[0]
    assert (deals, keys) == (20_000, 20_000)


# --- the app while another process holds the file ----------------------------------------------------------------

APP = ROOT / "app.py"


def test_app_says_busy_when_an_upload_holds_the_file(base, monkeypatch):
    """Opening the app while another process holds the file past the wait shows "busy" in a sentence."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("REVOPS_DB", str(base))
    monkeypatch.setenv("REVOPS_LOCK_WAIT_SECONDS", "0.5")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(base), "20"], cwd=ROOT, env=env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        at = AppTest.from_file(str(APP), default_timeout=60).run()
    finally:
        holder.kill()
        holder.communicate()
    assert not at.exception, at.exception
    assert any("busy" in e.value for e in [*at.error, *at.warning])


def test_busy_file_in_the_middle_of_a_page_is_a_sentence(base, monkeypatch):
    """When the file turns busy after the page started reading, the page says so instead of a traceback."""
    from streamlit.testing.v1 import AppTest

    from ui import state as ui_state

    monkeypatch.setenv("REVOPS_DB", str(base))

    def busy(*_args, **_kwargs):
        raise store.StoreBusy("The database is busy: another upload is still running. Try again in a moment.")

    monkeypatch.setattr(ui_state, "all_frames", busy)  # the sidebar's first read of the tables
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, at.exception
    assert any("busy" in w.value for w in at.warning)


def test_sessions_opening_a_new_file_at_once_all_succeed(tmp_path):
    """Eight sessions opening a file that does not exist yet each get a connection and one set of tables."""
    db = tmp_path / "new.duckdb"
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_it() -> None:
        try:
            start.wait()
            with store.connect(db) as con:
                con.execute("SELECT count(*) FROM opportunities").fetchall()
        except BaseException as exc:  # collected and asserted by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert store.data_version(db) == 0
