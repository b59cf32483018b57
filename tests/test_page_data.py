"""AppTest of the Data page: upload, preview, a mapping change, load, undo, rejects, settings."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from revops import store
from revops.ingest.settings_edit import NEW_STAGE
from tests.fixtures_gen import csv_bytes

APP = Path(__file__).resolve().parents[1] / "app.py"


@pytest.fixture
def db(tmp_path, monkeypatch):
    """An empty workspace (no demo company), so the page's numbers are the uploaded file's."""
    path = tmp_path / "page.duckdb"
    with store.connect(path):
        pass
    monkeypatch.setenv("REVOPS_DB", str(path))
    return path


def _open() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, name: str, data: bytes) -> None:
    at.file_uploader[0].set_value((name, data, "text/csv"))
    at.run()
    assert not at.exception, at.exception


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _shown(text: str) -> str:
    """Text as the page shows it: markdown escapes (deal\\_stage) are invisible."""
    return text.replace("\\", "")


def _selectbox(at: AppTest, label: str):
    return next(s for s in at.selectbox if _shown(s.label) == label)


def _opportunities(db: Path) -> int:
    with store.connect(db) as con:
        return store.row_counts(con)["opportunities"]


def test_page_opens_on_an_empty_workspace(db):
    """Upload widget, empty log, dictionary and settings render without error."""
    at = _open()
    assert at.title[0].value == "Data"
    assert len(at.file_uploader) == 1
    assert any("No uploads yet" in i.value for i in at.info)
    assert any(b.label == "Save stages" for b in at.button)


def test_upload_preview_change_mapping_load_and_undo(db, real_dir):
    """Maven's pipeline: preview 8,800 rows, map product to the deal name, load, then undo."""
    at = _open()
    data = (real_dir / "maven-crm" / "sales_pipeline.csv").read_bytes()
    _upload(at, "sales_pipeline.csv", data)
    assert _metric(at, "Rows read") == "8,800"
    assert _metric(at, "Rows rejected") == "0"
    assert _selectbox(at, "deal_stage").value == "stage"
    assert _selectbox(at, "product").value == ""
    assert any("Kept aside" in c.value and "product" in c.value for c in at.caption)

    _selectbox(at, "product").set_value("opportunity_name")
    at.run()
    assert not at.exception, at.exception
    assert _selectbox(at, "product").value == "opportunity_name"
    assert not any("Kept aside" in c.value for c in at.caption)

    load = next(b for b in at.button if b.key == "data_load")
    assert load.label == "Load 8,800 rows into opportunities"
    load.click()
    at.run()
    assert not at.exception, at.exception
    assert any("Upload 1: loaded 8800 rows" in s.value for s in at.success)
    assert _opportunities(db) == 8800
    with store.connect(db) as con:
        names = store.read_table(con, "opportunities")["opportunity_name"]
    assert names.null_count() == 0 and "GTX Plus Basic" in names.to_list()

    next(b for b in at.button if b.key == "data_undo_1").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Undid upload 1" in s.value for s in at.success)
    assert _opportunities(db) == 0


def test_mixed_file_shows_rejects_and_offers_the_download(db):
    """Rows with bad values are listed with line, column and reason, and can be downloaded."""
    at = _open()
    data = csv_bytes([["Opportunity ID", "Stage", "Amount"], ["A1", "Prospecting", "10"],
                      ["A2", "Prospecting", "lots"]])
    _upload(at, "mixed.csv", data)
    assert _metric(at, "Rows rejected") == "1"
    rejects = next(d.value for d in at.dataframe if list(d.value.columns) == ["line", "column", "reason"])
    assert list(rejects["line"]) == [3] and list(rejects["column"]) == ["Amount"]
    assert "data_rejects_download" in [b.key for b in at.get("download_button")]


def test_unreadable_file_shows_one_sentence(db):
    """A binary file named .csv: an error sentence, no exception, nothing loaded."""
    at = _open()
    _upload(at, "garbage.csv", bytes(range(256)) * 40)
    assert any("binary" in e.value for e in at.error)
    assert _opportunities(db) == 0


def test_wrong_table_disables_load_and_says_why(db, real_dir):
    """The subscriptions file picked as opportunities: the problem is shown and Load is disabled."""
    at = _open()
    _selectbox(at, "Table").set_value("opportunities")
    at.run()
    _upload(at, "subs.csv", (real_dir / "mrr-playbook" / "subscription_periods.csv").read_bytes())
    assert any("no column for opportunity_id, stage" in _shown(e.value) for e in at.error)
    assert next(b for b in at.button if b.key == "data_load").disabled


def test_unknown_stage_can_be_placed(db):
    """A stage the settings do not know is listed; placing it as a new stage saves the settings."""
    at = _open()
    _upload(at, "d.csv", csv_bytes([["Opportunity ID", "Stage"], ["M1", "Mystery stage"]]))
    next(b for b in at.button if b.key == "data_load").click()
    at.run()
    assert any("Mystery stage" in w.value for w in at.warning)
    next(s for s in at.selectbox if s.key == "data_place_0").set_value(NEW_STAGE)
    next(b for b in at.button if b.key == "data_place").click()
    at.run()
    assert not at.exception, at.exception
    with store.connect(db) as con:
        settings = store.get_settings(con)
    assert "Mystery stage" in [s.name for s in settings.stages]
    assert not any("Mystery stage" in w.value for w in at.warning)
