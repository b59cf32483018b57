"""The app shell: first run builds the demo, the banner says so, every registered page renders."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from revops import store

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 180
DEMO_BANNER = "demo data"


def registered_pages() -> list[str]:
    """The page files app.py registers with st.Page, read from its source (importing it would run it)."""
    tree = ast.parse((ROOT / "app.py").read_text())
    return [node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Page"
            and node.args and isinstance(node.args[0], ast.Constant)]


def banners(at: AppTest) -> list[str]:
    return [i.value for i in at.info if DEMO_BANNER in i.value]


def test_app_lists_every_page_file():
    """Every file in pages/ is registered in the router, and every registered file exists."""
    pages = registered_pages()
    assert sorted(pages) == sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))


def test_first_run_builds_the_demo_and_shows_the_banner(tmp_path, monkeypatch):
    """With no database file, the first visit builds the demo company and says it is demo data."""
    from ui import state
    path = tmp_path / "fresh" / "revops.duckdb"
    monkeypatch.setenv("REVOPS_DB", str(path))
    monkeypatch.setattr(state, "DEMO_SCALE", 300)  # the banner does not depend on size; keep the test quick
    assert not path.exists()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert path.exists()
    with store.connect(path) as con:
        assert store.is_demo(con)
        assert store.row_counts(con)["opportunities"] > 0
    assert len(banners(at)) == 1


def test_own_data_shows_no_demo_banner(tmp_path, monkeypatch):
    """A file that is not the demo (here an empty one) gets no demo banner and no demo build."""
    path = tmp_path / "own.duckdb"
    with store.connect(path):
        pass
    monkeypatch.setenv("REVOPS_DB", str(path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert banners(at) == []
    with store.connect(path) as con:
        assert store.row_counts(con)["opportunities"] == 0


@pytest.mark.parametrize("page", registered_pages())
def test_every_page_renders(demo_db, page):
    """Each page of the router renders on the demo company without an exception, through app.py."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    # No banner means the page ran without app.py (no auth gate): Streamlit's legacy pages/ folder mode.
    assert len(banners(at)) == 1, \
        f"{page} ran without the router: call ui.state.require_router() (or sidebar.current()) first"


def test_sidebar_reads_the_url(demo_db):
    """A shared link's window and filters arrive in the sidebar widgets."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["window"] = "Last 90 days"  # a bound selectbox keeps its label in the URL
    at.query_params["region"] = region = _first(demo_db, "region")
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="window").value == "90d"
    assert at.multiselect(key="region").value == [region]


def _first(db: Path, dim: str) -> str:
    from revops.frames import distinct_values, load_frames
    with store.connect(db) as con:
        return distinct_values(load_frames(con))[dim][0]


def test_data_version_is_seen_right_after_each_commit(tmp_path, monkeypatch):
    """The app's remembered data version follows every commit, even several in a row."""
    from ui import state
    path = tmp_path / "v.duckdb"
    monkeypatch.setenv("REVOPS_DB", str(path))
    assert state.version() == -1  # no file yet
    with store.connect(path) as con:
        start = state.version()
        for step in range(1, 4):
            with store.transaction(con):
                pass
            assert state.version() == start + step


def test_unreadable_database_is_one_sentence(tmp_path, monkeypatch):
    """A file that is not a DuckDB database gives a sentence naming the file, not a traceback."""
    path = tmp_path / "broken.duckdb"
    path.write_text("not a database")
    monkeypatch.setenv("REVOPS_DB", str(path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] and str(path) in at.error[0].value
    assert "could not be opened" in at.error[0].value
