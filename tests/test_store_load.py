"""Loading into the DuckDB file: upsert by key, one transaction, idempotence, undo, snapshots, rejects."""
from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from revops import store, uploads
from revops.errors import UserError
from revops.ingest import load, preview, undo, upload_log
from revops.schema import Settings
from tests.fixtures_gen import csv_bytes

HEAD = ["opportunity_id", "stage", "amount", "close_date", "region_note"]


def _file(*rows: list[object]) -> bytes:
    return csv_bytes([HEAD, *[list(r) for r in rows]])


def _load(db, data: bytes, name: str = "deals.csv", **kw):
    return load(db, preview(data, name, "opportunities"), **kw)


def _state(db) -> tuple[pl.DataFrame, int, int]:
    """The opportunities table (sorted), the upload count and the data version."""
    with store.connect(db) as con:
        opps = store.read_table(con, "opportunities").sort("opportunity_id")
        n = uploads.list_uploads(con).height
    return opps, n, store.data_version(db)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "t.duckdb"


A = _file(["D1", "Prospecting", "100", "2024-01-10", "north"],
          ["D2", "Closed Won", "200", "2024-01-11", "south"],
          ["D3", "Closed Lost", "300", "2024-01-12", ""])
B = _file(["D2", "Closed Won", "250", "2024-01-11", "south"],   # changed amount
          ["D3", "Closed Lost", "300", "2024-01-12", ""],       # unchanged
          ["D4", "Negotiation", "400", "2024-02-01", "west"])   # new


def test_upsert_by_key_latest_upload_wins(db):
    """B updates D2, leaves D3 alone, adds D4: 4 deals, D2 at 250."""
    _load(db, A)
    r = _load(db, B)
    assert (r.rows_inserted, r.rows_replaced, r.rows_unchanged) == (1, 1, 1)
    opps, n, _ = _state(db)
    assert opps["opportunity_id"].to_list() == ["D1", "D2", "D3", "D4"]
    assert opps.filter(pl.col("opportunity_id") == "D2")["amount"].item() == 250.0
    assert n == 2


def test_same_file_twice_changes_nothing(db):
    """Re-uploading the same file: no new upload, same version, reported as already loaded."""
    first = _load(db, A)
    before = _state(db)
    again = _load(db, A)
    assert again.unchanged and again.upload_id is None and again.duplicate_of == first.upload_id
    assert "already loaded" in again.summary()
    after = _state(db)
    assert_frame_equal(before[0], after[0])
    assert before[1:] == after[1:]


def test_undo_restores_exactly_the_rows_replaced(db):
    """Undo B: D2 back at 200, D4 gone, D1/D3 untouched; undo A: empty."""
    _load(db, A)
    after_a = _state(db)[0]
    b = _load(db, B)
    done = undo(db, b.upload_id)
    assert (done.rows_restored, done.rows_removed) == (1, 1)
    assert_frame_equal(_state(db)[0], after_a)
    undo(db, 1)
    assert _state(db)[0].height == 0
    log = upload_log(db)
    assert log["undone_at"].null_count() == 0


def test_undo_refused_while_a_later_upload_overlaps(db):
    """Undoing A while B (which changed A's D2) is live names B; after undoing B it works."""
    _load(db, A)
    b = _load(db, B, name="newer.csv")
    with pytest.raises(UserError, match=rf"upload {b.upload_id} \(newer.csv\).*Undo upload {b.upload_id} first"):
        undo(db, 1)
    undo(db, b.upload_id)
    undo(db, 1)
    assert _state(db)[0].height == 0


def test_undo_of_an_earlier_upload_that_nothing_overlapped(db):
    """A then C (other keys only): A can be undone directly and C's rows stay."""
    _load(db, A)
    _load(db, _file(["D9", "Prospecting", "9", "2024-03-01", ""]))
    undo(db, 1)
    assert _state(db)[0]["opportunity_id"].to_list() == ["D9"]


def test_undo_twice_and_unknown_upload_are_clear_errors(db):
    """Undoing an undone or a missing upload says so."""
    _load(db, A)
    undo(db, 1)
    with pytest.raises(UserError, match="already undone"):
        undo(db, 1)
    with pytest.raises(UserError, match="no upload 7"):
        undo(db, 7)


def test_snapshots_dated_by_as_of_and_restored_by_undo(db):
    """Each opportunities upload is a snapshot at its as-of; a same-day re-upload replaces it until undone."""
    day = dt.date(2024, 3, 31)
    _load(db, A, as_of=day)
    b = _load(db, B, as_of=day)
    _load(db, A, as_of=dt.date(2024, 4, 7))
    with store.connect(db) as con:
        snaps = con.sql("SELECT snapshot_date, upload_id, opportunity_id, CAST(amount AS DOUBLE) AS amount "
                        "FROM _opportunity_snapshots ORDER BY snapshot_date, opportunity_id").pl()
    # 31 Mar: D1 from A, D2-D4 from B (B replaced A's D2 and D3 that day); 7 Apr: A's three deals again
    assert snaps.filter(pl.col("snapshot_date") == day).select("opportunity_id", "upload_id").rows() == [
        ("D1", 1), ("D2", 2), ("D3", 2), ("D4", 2)]
    assert snaps.filter(pl.col("snapshot_date") == dt.date(2024, 4, 7)).height == 3
    undo(db, 3)
    undo(db, b.upload_id)
    with store.connect(db) as con:
        rows = con.sql("SELECT opportunity_id, upload_id, CAST(amount AS DOUBLE) FROM _opportunity_snapshots "
                       "ORDER BY opportunity_id").fetchall()
    assert rows == [("D1", 1, 100.0), ("D2", 1, 200.0), ("D3", 1, 300.0)]


def test_unmatched_columns_are_kept_aside_and_undone(db):
    """region_note has no canonical home: kept in _extras as JSON per row, removed by undo."""
    r = _load(db, A)
    with store.connect(db) as con:
        extras = uploads.extras(con, r.upload_id)
    assert extras["row_key"].to_list() == ["D1", "D2", "D3"]
    assert json.loads(extras["data"][0]) == {"region_note": "north"}
    assert extras["row_number"].to_list() == [2, 3, 4]
    undo(db, r.upload_id)
    with store.connect(db) as con:
        assert uploads.extras(con, r.upload_id).height == 0


def test_mixed_file_loads_good_rows_and_lists_the_others(db):
    """Bad amount, bad date, missing stage: three rejects with line/column/reason; the good row loads."""
    data = _file(["G1", "Prospecting", "10", "2024-01-01", ""],
                 ["G2", "Prospecting", "ten", "2024-01-01", ""],
                 ["G3", "", "10", "2024-01-01", ""],
                 ["G4", "Prospecting", "10", "2024-13-45", ""])
    pv = preview(data, "mixed.csv", "opportunities")
    assert pv.rows_ok == 1 and pv.rows_rejected == 3
    got = pv.rejects.select("line", "column", "reason").rows()
    assert got == [(3, "amount", "“ten” is not an amount like 1,234.50"),
                   (4, "stage", "stage is empty, and stage is required"),
                   (5, "close_date", "“2024-13-45” is not a date like YYYY-MM-DD")]
    out = pl.read_csv(pv.rejects_csv(), infer_schema=False)
    assert out.columns == HEAD + ["error"]
    assert out["opportunity_id"].to_list() == ["G2", "G3", "G4"]
    assert out["error"][0] == "amount: “ten” is not an amount like 1,234.50"
    r = load(db, pv)
    assert (r.rows_loaded, r.rows_rejected) == (1, 3)
    assert _state(db)[0]["opportunity_id"].to_list() == ["G1"]


def test_duplicate_keys_keep_the_last_occurrence(db):
    """D1 twice: the later line wins; the earlier is rejected as a duplicate of it."""
    data = _file(["D1", "Prospecting", "1", "", ""], ["D2", "Prospecting", "2", "", ""],
                 ["D1", "Negotiation", "3", "", ""])
    pv = preview(data, "dup.csv", "opportunities")
    assert pv.rejects.select("line", "reason").rows() == [(2, "duplicate key of line 4")]
    assert pv.frame.sort("opportunity_id")["stage"].to_list() == ["Negotiation", "Prospecting"]


@pytest.mark.parametrize("ids, dup_line, winner", [
    (["D1", "D1", "D2"], 2, 3),   # in ascending key order: the duplicates sit side by side
    (["D3", "D2", "D2"], 3, 4),   # in descending order
    (["D1", "D1"], 2, 3),         # nothing but the duplicate
])
def test_duplicate_keys_are_found_in_a_file_sorted_by_key(ids, dup_line, winner):
    """A file in key order (checked without hashing) still has its duplicate keys rejected, naming the winner."""
    pv = preview(_file(*[[i, "Prospecting", "1", "", ""] for i in ids]), "sorted.csv", "opportunities")
    assert pv.rejects.select("line", "reason").rows() == [(dup_line, f"duplicate key of line {winner}")]
    assert sorted(pv.frame["opportunity_id"].to_list()) == sorted(set(ids))


def test_strict_mode_loads_nothing_when_a_row_is_rejected(db):
    """--strict: one bad row means no row loads and the error says why."""
    _load(db, A)
    before = _state(db)
    pv = preview(_file(["S1", "Prospecting", "1", "", ""], ["S2", "Prospecting", "x", "", ""]), "s.csv",
                 "opportunities")
    with pytest.raises(UserError, match="Strict mode: 1 of 2 rows"):
        load(db, pv, strict=True)
    after = _state(db)
    assert_frame_equal(before[0], after[0])
    assert before[1:] == after[1:]


def test_a_failure_inside_the_load_rolls_everything_back(db, monkeypatch):
    """A crash after the rows were written but before commit leaves the earlier data and log as they were."""
    _load(db, A)
    before = _state(db)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(uploads, "_write_snapshot", boom)
    with pytest.raises(RuntimeError):
        _load(db, B)
    after = _state(db)
    assert_frame_equal(before[0], after[0])
    assert before[1:] == after[1:]
    with store.connect(db) as con:
        assert con.sql("SELECT count(*) FROM _undo_opportunities").fetchall() == [(0,)]


BAD_FILES = {
    "empty": b"",
    "header only": b"opportunity_id,stage\n",
    "binary": bytes(range(256)) * 50,
    "wrong table": b"subscription_id,customer_id,start_date,monthly_amount\n1,1,2024-01-01,50\n",
    "all unparseable": b"opportunity_id,stage,amount\nX1,Prospecting,lots\nX2,Prospecting,many\n",
    "all ragged": b"opportunity_id,stage,amount\nX1,Prospecting,1,extra\nX2\n",
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_say_why_and_change_nothing(db, name):
    """Each bad file fails with one sentence and the data loaded earlier is untouched."""
    _load(db, A)
    before = _state(db)
    with pytest.raises(UserError) as err:
        load(db, preview(BAD_FILES[name], f"{name}.csv", "opportunities"))
    message = str(err.value)
    assert message.endswith(".") and "Traceback" not in message and "\n" not in message
    after = _state(db)
    assert_frame_equal(before[0], after[0])
    assert before[1:] == after[1:]


def test_wrong_table_names_the_missing_columns_and_the_likely_table():
    """Loading a subscriptions file as opportunities names stage and says it looks like subscriptions."""
    pv = preview(BAD_FILES["wrong table"], "subs.csv", "opportunities")
    assert "opportunity_id, stage" in (pv.problem or "")
    assert "subscriptions" in (pv.problem or "")


def test_deal_flags_are_derived_from_stages_unless_the_file_has_them(db):
    """No IsWon/IsClosed: from the stage settings (unknown stages open); given flags are kept."""
    pv = preview(_file(["F1", "Closed Won", "", "", ""], ["F2", "Lost", "", "", ""],
                       ["F3", "Mystery stage", "", "", ""]), "f.csv", "opportunities")
    flags = pv.frame.sort("opportunity_id").select("is_closed", "is_won").rows()
    assert flags == [(True, True), (True, False), (False, False)]
    assert any("Mystery stage" in n for n in pv.notices)
    given = csv_bytes([["Id", "StageName", "IsClosed", "IsWon"], ["F4", "Mystery stage", "true", "true"],
                       ["F5", "Negotiation", "", ""]])
    flags = preview(given, "g.csv", "opportunities").frame.sort("opportunity_id").select("is_closed", "is_won")
    assert flags.rows() == [(True, True), (False, False)]


def test_currency_column_other_than_the_workspace_rejects_rows():
    """Amount Currency EUR in a USD workspace: that row is rejected naming the currency."""
    data = csv_bytes([["Opportunity ID", "Stage", "Amount", "Amount Currency"],
                      ["C1", "Prospecting", "10", "USD"], ["C2", "Prospecting", "20", "EUR"]])
    pv = preview(data, "c.csv", "opportunities")
    assert pv.frame["opportunity_id"].to_list() == ["C1"]
    assert pv.rejects.select("line", "reason").rows() == [
        (3, "the amount is in EUR, not the workspace currency USD (no exchange rates are loaded)")]


def test_saved_mapping_is_reused_for_the_same_headers(db):
    """A mapping saved with one file applies to the next file with exactly the same headers."""
    data = csv_bytes([["Deal", "Phase", "Value"], ["M1", "Prospecting", "5"]])
    pv = preview(data, "m.csv", "opportunities", {"Deal": "opportunity_id", "Phase": "stage"})
    load(db, pv, save_mapping=True)
    again = preview(csv_bytes([["Deal", "Phase", "Value"], ["M2", "Negotiation", "6"]]), "m2.csv", db=db)
    assert again.table == "opportunities"
    assert again.mapping == {"Deal": "opportunity_id", "Phase": "stage", "Value": "amount"}
    assert any("saved" in n for n in again.notices)


def test_subscriptions_arr_stands_in_for_mrr(db):
    """ARR 1,200 with no MRR column loads as mrr 100."""
    pv = preview(csv_bytes([["Subscription ID", "Customer ID", "Start Date", "ARR"],
                            ["S1", "A1", "2024-01-01", "1,200"]]), "s.csv", "subscriptions")
    assert pv.frame["mrr"].to_list() == [100.0]


def test_spend_month_is_stored_as_the_first_of_the_month():
    """Any day of the month → the first."""
    pv = preview(csv_bytes([["Month", "Amount", "Channel"], ["2024-03-17", "500", "ads"]]), "s.csv", "spend")
    assert pv.frame["month"].to_list() == [dt.date(2024, 3, 1)]


def test_csat_on_a_five_point_scale_is_rescaled():
    """CSAT 4 and 5 on a 1-5 scale are 80 and 100."""
    pv = preview(csv_bytes([["Account ID", "CSAT"], ["A1", "4"], ["A2", "5"]]), "l.csv", "lifecycle")
    assert pv.frame.sort("account_id")["csat"].to_list() == [80.0, 100.0]
    assert any("1-5 scale" in n for n in pv.notices)


def test_upload_log_records_file_hash_counts_and_user(db):
    """The log row: table, file name, sha256, rows read/loaded/rejected, user, time, as-of."""
    import hashlib
    data = _file(["L1", "Prospecting", "1", "", ""], ["L2", "Prospecting", "x", "", ""])
    load(db, preview(data, "log.csv", "opportunities"), user="kim", as_of=dt.date(2024, 5, 1))
    row = upload_log(db).row(0, named=True)
    assert row["table_name"] == "opportunities" and row["file_name"] == "log.csv"
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert (row["rows_read"], row["rows_loaded"], row["rows_rejected"]) == (2, 1, 1)
    assert row["user_name"] == "kim" and row["as_of"] == dt.date(2024, 5, 1)
    assert row["uploaded_at"] is not None


def test_first_real_upload_replaces_the_demo_company(db):
    """Into a file holding the demo, the first upload empties every table first: no made-up rows mix in."""
    with store.connect(db) as con:
        store.replace_tables(con, {"opportunities": pl.DataFrame({"opportunity_id": ["DEMO1"], "stage": ["Won"]}),
                                   "accounts": pl.DataFrame({"account_id": ["DEMO-A"]})}, meta={"demo": "1"})
    r = _load(db, A)
    assert r.removed_demo and "demo company was removed" in r.summary()
    with store.connect(db) as con:
        assert not store.is_demo(con)
        assert store.row_counts(con)["accounts"] == 0
    assert _state(db)[0]["opportunity_id"].to_list() == ["D1", "D2", "D3"]


def test_ragged_rows_in_a_mixed_file_are_rejected_with_their_line(db):
    """A row with an extra field and one with a missing field are rejected; the others load."""
    data = b"opportunity_id,stage,amount\nR1,Prospecting,1\nR2,Prospecting,2,oops\nR3,Prospecting\nR4,Won,4\n"
    pv = preview(data, "ragged.csv", "opportunities")
    assert pv.frame["opportunity_id"].to_list() == ["R1", "R4"]
    assert pv.rejects.select("line", "problem").rows() == [(3, "wrong number of fields"),
                                                           (4, "wrong number of fields")]
    assert "more fields" in pv.rejects["reason"][0] and "fewer fields" in pv.rejects["reason"][1]
    assert load(db, pv).rows_loaded == 2


def test_a_five_megabyte_deal_name_loads(db):
    """A 5 MB cell loads whole and changes nothing else."""
    big = "y" * (5 * 1024 * 1024)
    r = _load(db, csv_bytes([["opportunity_id", "stage", "opportunity_name"], ["BIG", "Prospecting", big]]))
    assert r.rows_loaded == 1
    with store.connect(db) as con:
        assert con.sql("SELECT length(opportunity_name) FROM opportunities").fetchall() == [(len(big),)]


def test_a_touch_must_name_a_lead_account_or_deal():
    """touches: a row with none of lead_id, account_id, opportunity_id is rejected."""
    pv = preview(csv_bytes([["Touched At", "Channel", "Lead ID", "Account ID"],
                            ["2024-01-02 10:00", "webinar", "L1", ""], ["2024-01-03 11:00", "ads", "", ""]]),
                 "t.csv", "touches")
    assert pv.frame["lead_id"].to_list() == ["L1"]
    assert pv.rejects.select("line", "problem").rows() == [(3, "nobody touched")]


def test_rejects_file_keeps_the_original_text_of_a_european_file():
    """Windows-1252, semicolons, a multi-line cell before the bad row: the rejects file shows the row as written."""
    text = ("Opportunity ID;Opportunity Name;Stage;Amount\r\n"
            "E1;\"Café\nzwei Zeilen\";Prospecting;1.234,50 €\r\n"
            "E2;Müller GmbH;Prospecting;viel\r\n"
            "E3;Ågren;Negotiation;12,00 €\r\n")
    pv = preview(text.encode("cp1252"), "eu.csv", "opportunities", settings=Settings(currency="EUR"))
    assert pv.frame.sort("opportunity_id")["amount"].to_list() == [1234.5, 12.0]
    assert pv.rejects.select("line", "column").rows() == [(4, "Amount")]  # E1 spans lines 2-3
    out = pl.read_csv(pv.rejects_csv(), separator=",", infer_schema=False)
    assert out.rows() == [("E2", "Müller GmbH", "Prospecting", "viel", "Amount: “viel” is not an amount like 1,234.50")]


def test_a_big_upload_read_side_by_side_lands_whole_and_in_file_order(db, monkeypatch):
    """An upload split into parallel streams keeps every row, in file order, in the table and its snapshot."""
    monkeypatch.setattr(uploads, "_BIG", 1000)  # split from 1,000 rows so a small file takes the parallel path
    n = 2501  # odd: the two halves differ in size
    rows = [[f"P{i:05d}", "Prospecting", str(i), "2024-01-10", ""] for i in range(n)]
    r = _load(db, _file(*rows))
    assert r.rows_inserted == n
    with store.connect(db) as con:
        table = con.sql("SELECT opportunity_id, CAST(amount AS DOUBLE) FROM opportunities").fetchall()
        snap = con.sql("SELECT opportunity_id FROM _opportunity_snapshots").fetchall()
    assert table == [(f"P{i:05d}", float(i)) for i in range(n)]  # scan order is insertion order
    assert snap == [(f"P{i:05d}",) for i in range(n)]
