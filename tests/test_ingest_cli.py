"""python -m revops ingest / uploads / undo: output, exit codes, one-sentence errors."""
from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from revops import store
from revops.cli import main
from tests.conftest import ROOT
from tests.fixtures_gen import csv_bytes

MIXED = csv_bytes([["Opportunity ID", "Stage", "Amount"], ["A1", "Prospecting", "10"],
                   ["A2", "Prospecting", "lots"], ["A3", "", "5"]])


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "cli.duckdb")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _count(db: str) -> int:
    with store.connect(db) as con:
        return store.row_counts(con)["opportunities"]


def test_ingest_prints_the_upload_id_and_counts(capsys, db, real_dir):
    """Maven's pipeline: exit 0, 'Upload 1: loaded 8800 rows … 0 rejected'."""
    code, out, err = _run(capsys, "ingest", "opportunities", str(real_dir / "maven-crm" / "sales_pipeline.csv"),
                          "--db", db)
    assert code == 0, err
    assert "Upload 1: loaded 8800 rows into opportunities" in out and "0 rejected" in out


def test_mixed_file_loads_good_rows_and_summarises_the_reasons(capsys, db, tmp_path):
    """Exit 0 with rejected reasons summarised; --rejects writes the rows with an error column."""
    src = tmp_path / "mixed.csv"
    src.write_bytes(MIXED)
    rejects = tmp_path / "rejects.csv"
    code, out, _ = _run(capsys, "ingest", "opportunities", str(src), "--db", db, "--rejects", str(rejects))
    assert code == 0
    assert "loaded 1 rows" in out and "2 rejected" in out
    assert "Amount: not an amount" in out and "(lines 3)" in out
    assert "Stage: required value is empty" in out
    back = pl.read_csv(rejects, infer_schema=False)
    assert back.columns == ["Opportunity ID", "Stage", "Amount", "error"]
    assert back["Opportunity ID"].to_list() == ["A2", "A3"]


def test_strict_loads_nothing_and_exits_non_zero(capsys, db, tmp_path):
    """--strict with a rejected row: exit 1, one sentence, no rows loaded."""
    src = tmp_path / "mixed.csv"
    src.write_bytes(MIXED)
    code, out, err = _run(capsys, "ingest", "opportunities", str(src), "--db", db, "--strict")
    assert code == 1
    assert err.startswith("error: Strict mode") and err.count("\n") == 1
    assert _count(db) == 0


def test_nothing_loadable_exits_non_zero_with_one_sentence(capsys, db, real_dir):
    """The subscriptions file as opportunities: exit 1 and a sentence naming the missing columns."""
    code, out, err = _run(capsys, "ingest", "opportunities",
                          str(real_dir / "mrr-playbook" / "subscription_periods.csv"), "--db", db)
    assert code == 1
    assert "no column for opportunity_id, stage" in err and "Traceback" not in err


def test_map_option_maps_a_column_by_hand(capsys, db, tmp_path):
    """--map Deal=opportunity_id --map Phase=stage loads a file no alias knows."""
    src = tmp_path / "odd.csv"
    src.write_bytes(csv_bytes([["Deal", "Phase"], ["Z1", "Prospecting"]]))
    code, out, err = _run(capsys, "ingest", "opportunities", str(src), "--db", db, "--map", "Deal=opportunity_id",
                          "--map", "Phase=stage")
    assert code == 0, err
    assert _count(db) == 1


def test_map_of_an_unknown_column_is_a_clear_error(capsys, db, tmp_path):
    """--map Nope=stage names the columns the file does have."""
    src = tmp_path / "odd.csv"
    src.write_bytes(csv_bytes([["Deal", "Phase"], ["Z1", "Prospecting"]]))
    code, _, err = _run(capsys, "ingest", "opportunities", str(src), "--db", db, "--map", "Nope=stage")
    assert code == 1 and "no column “Nope”" in err


def test_as_of_dates_the_snapshot(capsys, db, tmp_path):
    """--as-of 2024-03-31 dates the opportunity snapshot."""
    src = tmp_path / "d.csv"
    src.write_bytes(csv_bytes([["Opportunity ID", "Stage"], ["S1", "Prospecting"]]))
    assert _run(capsys, "ingest", "opportunities", str(src), "--db", db, "--as-of", "2024-03-31")[0] == 0
    with store.connect(db) as con:
        assert con.sql("SELECT DISTINCT snapshot_date FROM _opportunity_snapshots").fetchall()[0][0].isoformat() \
            == "2024-03-31"


def test_uploads_json_and_undo(capsys, db, tmp_path):
    """uploads --json lists the upload; undo restores; undoing again is a clear error."""
    src = tmp_path / "d.csv"
    src.write_bytes(csv_bytes([["Opportunity ID", "Stage"], ["S1", "Prospecting"], ["S2", "Prospecting"]]))
    _run(capsys, "ingest", "opportunities", str(src), "--db", db)
    code, out, _ = _run(capsys, "uploads", "--db", db, "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 1
    assert {"upload_id", "table", "file", "rows_loaded", "rows_rejected", "at"} <= set(rows[0])
    assert (rows[0]["upload_id"], rows[0]["table"], rows[0]["file"], rows[0]["rows_loaded"]) == (
        1, "opportunities", "d.csv", 2)
    code, out, _ = _run(capsys, "undo", "1", "--db", db)
    assert code == 0 and "removed 2 rows" in out
    assert _count(db) == 0
    code, _, err = _run(capsys, "undo", "1", "--db", db)
    assert code == 1 and "already undone" in err
    code, out, _ = _run(capsys, "uploads", "--db", db)
    assert "undone" in out


def test_same_file_twice_reports_nothing_changed(capsys, db, tmp_path):
    """The second ingest of the same file exits 0 and says nothing changed."""
    src = tmp_path / "d.csv"
    src.write_bytes(csv_bytes([["Opportunity ID", "Stage"], ["S1", "Prospecting"]]))
    _run(capsys, "ingest", "opportunities", str(src), "--db", db)
    code, out, _ = _run(capsys, "ingest", "opportunities", str(src), "--db", db)
    assert code == 0 and "Nothing changed" in out and "upload 1" in out


def test_real_process_exit_code_and_no_traceback(tmp_path):
    """A missing file through the real entry point: exit 1, 'error: …' on stderr, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "revops", "ingest", "opportunities", str(tmp_path / "nope.csv"),
                           "--db", str(tmp_path / "x.duckdb")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_duckdb_memory_is_capped_only_while_an_upload_just_appends(capsys, db, tmp_path, monkeypatch):
    """A first load (nothing stored to compare with) runs under the small cap; a re-upload keeps DuckDB's default."""
    from revops.ingest import cli as ingest_cli
    limits = []
    real_load = ingest_cli.load

    def spy(con, pv, **kw):
        limits.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return real_load(con, pv, **kw)

    monkeypatch.setattr(ingest_cli, "load", spy)
    path = tmp_path / "deals.csv"
    path.write_bytes(MIXED)
    for _ in range(2):
        assert _run(capsys, "ingest", "opportunities", str(path), "--db", db)[0] == 0
    assert limits[0] == "122.0 MiB"  # 128 MB, as DuckDB reports it
    assert limits[1] != limits[0]
