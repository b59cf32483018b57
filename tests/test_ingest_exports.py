"""Exports written the way Salesforce, HubSpot, European tools and Excel write them load the same rows."""
from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from revops import store
from revops.ingest import load, preview
from revops.ingest import read
from revops.ingest.read import LINE
from revops.schema import Settings
from tests import fixtures_gen as gen


def _rows(data: bytes, name: str, settings: Settings | None = None) -> pl.DataFrame:
    pv = preview(data, name, "opportunities", settings=settings or Settings())
    assert pv.rows_rejected == 0, pv.rejects.to_dicts()
    return pv.frame.drop(LINE)


@pytest.fixture(scope="module")
def canonical() -> pl.DataFrame:
    return _rows(gen.canonical_csv(), "canonical.csv")


def test_canonical_file_holds_the_hand_written_deals(canonical):
    """The clean file loads exactly the deals written in fixtures_gen (so the comparisons below mean something)."""
    got = canonical.sort("opportunity_id").to_dicts()
    want = sorted(gen.DEALS, key=lambda d: str(d["opportunity_id"]))
    for g, w in zip(got, want):
        for col, value in w.items():
            assert g[col] == value, (col, g[col], value)
    assert len(got) == 6


@pytest.mark.parametrize("builder", [gen.salesforce_report_csv, gen.hubspot_csv, gen.utf16_tsv, gen.xlsx],
                         ids=["salesforce", "hubspot", "utf16", "xlsx"])
def test_export_loads_the_same_rows_as_the_canonical_file(builder, canonical):
    """Labels, $1,234.50, M/D/YYYY, 65%, BOM, CRLF, footers, 15-char ids: the same rows as the clean file."""
    name = "export.xlsx" if builder is gen.xlsx else "export.csv"
    got = _rows(builder(), name)
    assert_frame_equal(got.sort("opportunity_id"), canonical.sort("opportunity_id"))


def test_european_export_loads_the_same_rows(canonical):
    """Semicolons, 1.234,50 €, D/M/YYYY and Windows-1252 load the same rows as the clean file."""
    got = _rows(gen.european_csv(), "export.csv", Settings(currency="EUR"))
    assert_frame_equal(got.sort("opportunity_id"), canonical.sort("opportunity_id"))


def test_salesforce_footer_is_skipped_with_a_notice():
    """The report footer (Copyright … salesforce.com, Confidential …) is not loaded, and the preview says so."""
    pv = preview(gen.salesforce_report_csv(), "report.csv", "opportunities")
    assert pv.rows_read == 6
    assert any("footer" in n for n in pv.notices)


def test_loaded_tables_match_between_exports(tmp_path):
    """Loading the Salesforce export then the clean file changes nothing: same rows, by key."""
    db = tmp_path / "x.duckdb"
    first = load(db, preview(gen.salesforce_report_csv(), "sf.csv", "opportunities"))
    again = load(db, preview(gen.canonical_csv(), "clean.csv", "opportunities"))
    assert first.rows_inserted == 6
    assert (again.rows_inserted, again.rows_replaced) == (0, 0)
    with store.connect(db) as con:
        assert store.row_counts(con)["opportunities"] == 6


def test_formula_text_loads_as_plain_text_and_is_escaped_only_on_download():
    """=HYPERLINK(...) is stored as typed; a rejects download prefixes it with a quote."""
    pv = preview(gen.canonical_csv(), "clean.csv", "opportunities")
    names = pv.frame["opportunity_name"].to_list()
    assert '=HYPERLINK("http://x.example","click")' in names
    bad = gen.csv_bytes([["opportunity_id", "stage", "opportunity_name", "amount"],
                         ["A1", "Prospecting", '=HYPERLINK("http://x","y")', "lots"]])
    pv = preview(bad, "bad.csv", "opportunities")
    text = pv.rejects_csv().decode("utf-8-sig")
    assert "'=HYPERLINK" in text
    assert "error" in text.splitlines()[0]


def _held_as_categories(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the reader hold every column of any CSV as categories (normally only repeating ones of big files)."""
    monkeypatch.setattr(read, "_CATEGORICAL_FROM", 0)
    monkeypatch.setattr(read, "_JUDGED_FROM", 1)
    monkeypatch.setattr(read, "_REPEATS", 1)


_MESSY = gen.csv_bytes([
    ["Opportunity ID", "Stage", "Type", "Amount", "Close Date", "Probability (%)", "Segment", "Note"],
    ["M1", "Closed Won", "New Business", "1234.5", "3/15/2024", "100", "SMB", "first"],
    ["M2", "Negotiation", "Upsell", "oops", "3/16/2024", "65%", "", "b"],
    ["M3", "", "Renewal", "12", "3/17/2024", "10", "Mid", "c"],
    ["M4", "Mystery Stage", "", "13", "not a date", "", "Enterprise", ""],
    ["M1", " Closed Won ", "New Business", "$1,234.50", "3/15/2024", "100", "SMB ", "again"],
    ["M5", "Prospecting"],
    ["M6", "Prospecting", " Upsell", "7", "3/18/2024", " 5 ", "   ", ""],
])


@pytest.mark.parametrize("data, name, settings", [
    (gen.salesforce_report_csv(), "sf.csv", Settings()), (gen.hubspot_csv(), "hs.csv", Settings()),
    (gen.european_csv(), "eu.csv", Settings(currency="EUR")), (gen.utf16_tsv(), "u16.tsv", Settings()),
    (_MESSY, "messy.csv", Settings()),
], ids=["salesforce", "hubspot", "european", "utf16", "messy"])
def test_columns_held_as_categories_load_exactly_what_plain_text_loads(tmp_path, monkeypatch, data, name, settings):
    """Reading repeating columns as categories (big files) changes no value, reject, notice or stored row."""
    plain = preview(data, name, "opportunities", settings=settings)
    plain_result = load(tmp_path / "plain.duckdb", plain)
    _held_as_categories(monkeypatch)
    held = preview(data, name, "opportunities", settings=settings)
    assert pl.Categorical in held.frame.dtypes  # the categorical path was taken (labels stay categories)
    as_text = held.frame.with_columns(pl.col(pl.Categorical).cast(pl.String))
    assert_frame_equal(as_text, plain.frame)
    assert_frame_equal(held.rejects, plain.rejects)
    assert held.rejects_csv() == plain.rejects_csv()
    assert held.notices == plain.notices
    held_result = load(tmp_path / "held.duckdb", held)
    assert held_result.summary() == plain_result.summary()
    tables = []
    for db in ("plain.duckdb", "held.duckdb"):
        with store.connect(tmp_path / db) as con:
            tables.append((store.read_table(con, "opportunities"),
                           con.sql("SELECT * EXCLUDE (snapshot_date) FROM _opportunity_snapshots").pl(),
                           con.sql("SELECT * FROM _extras").pl()))
    for a, b in zip(*tables):
        assert_frame_equal(a, b)
