"""The four metric-tier pages: one card per scalar metric, filters from the URL, empty values with reasons."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from revops import store
from revops.format import EMPTY, display_unit, format_date, format_value
from revops.frames import default_as_of, distinct_values, empty_frames, load_frames
from revops.metrics import by_tier
from revops.period import Period

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 180
TIERS = ["north_star", "operational", "diagnostic", "leading"]


@pytest.fixture(scope="module")
def choices(demo_file) -> dict[str, list[str]]:
    """The sidebar's filter options on the demo company."""
    with store.connect(demo_file) as con:
        return distinct_values(load_frames(con))


@pytest.fixture(scope="module")
def earlier(demo_file) -> dt.date:
    """A month end about five months before the demo's latest event (the demo is dated from today)."""
    with store.connect(demo_file) as con:
        latest = default_as_of(load_frames(con))
    return dt.date(latest.year, latest.month, 1) - dt.timedelta(days=120)


def open_page(tier: str, params: dict[str, str] | None = None) -> AppTest:
    """Run the app with the given URL query parameters and switch to a tier's page."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params or {})
    # Our pages keep the url path of their file name, so the page can be chosen before the first run.
    return at.switch_page(f"pages/{tier}.py").run()


def scalar_labels(tier: str) -> list[str]:
    return [m.label for m in by_tier(tier) if m.kind == "scalar"]


def values(at: AppTest) -> list[str]:
    return [m.value for m in at.metric]


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


@pytest.mark.parametrize("tier", TIERS)
def test_one_card_per_scalar_metric(demo_db, tier):
    """Each tier page shows exactly its scalar metrics as cards, in registry order, each with a definition."""
    at = open_page(tier)
    assert not at.exception, at.exception
    assert [m.label for m in at.metric] == scalar_labels(tier)
    assert all(m.proto.help for m in at.metric)
    # A metric function that raised would say so on its card instead of crashing the page.
    assert not [c for c in captions(at) if "Could not be computed" in c]


@pytest.mark.parametrize("tier", TIERS)
def test_demo_cards_have_values(demo_db, tier):
    """On the demo company most cards show a number rather than the dash."""
    shown = values(open_page(tier))
    assert sum(v != EMPTY for v in shown) >= len(shown) / 2, shown


def _filter_cases(choices: dict[str, list[str]], earlier: dt.date) -> list[tuple[str, dict[str, str]]]:
    return [
        ("segment", {"segment": choices["segment"][0]}),
        ("owner", {"owner": choices["owner"][0]}),
        ("window", {"window": "Last 90 days"}),
        ("as_of", {"as_of": earlier.isoformat()}),
    ]


@pytest.mark.parametrize("tier", TIERS)
def test_filters_from_the_url_change_numbers(demo_db, choices, earlier, tier):
    """Segment, owner, window and as-of given in the URL are selected and change at least one number."""
    baseline = values(open_page(tier))
    for name, params in _filter_cases(choices, earlier):
        at = open_page(tier, params)
        assert not at.exception, (name, at.exception)
        assert [m.label for m in at.metric] == scalar_labels(tier)
        assert values(at) != baseline, f"{tier}: the {name} filter changed no number"


def test_url_parameters_select_the_widgets(demo_db, choices, earlier):
    """Query parameters land in the sidebar widgets, so a shared link reproduces the view."""
    segment = choices["segment"][0]
    at = open_page("north_star", {"segment": segment, "window": "Last 90 days", "as_of": earlier.isoformat()})
    assert at.multiselect(key="segment").value == [segment]
    assert at.selectbox(key="window").value == "90d"
    assert at.date_input(key="as_of").value == earlier
    assert f"As of **{format_date(earlier)}**" in captions(at)[0] and f"Segment: {segment}" in captions(at)[0]


def test_filter_survives_in_the_url_across_pages(demo_db, choices):
    """A filter picked in the sidebar still applies on the next page (the browser writes it to the URL)."""
    owner = choices["owner"][0]
    at = open_page("operational")
    at.multiselect(key="owner").set_value([owner]).run()
    at.switch_page("pages/leading.py").run()
    assert not at.exception, at.exception
    assert at.multiselect(key="owner").value == [owner]
    assert f"Owner: {owner}" in captions(at)[0]


def test_drill_down_shows_rows_and_a_download(demo_db):
    """Choosing a metric under "Show the rows behind" shows its rows with a CSV download."""
    at = open_page("operational")
    at.selectbox(key="operational_drill").set_value("win_rate").run()
    assert not at.exception, at.exception
    assert len(at.dataframe) >= 1 and at.dataframe[-1].value.shape[0] > 0
    assert any(b.proto.label == "Download CSV" for b in at.get("download_button"))


def test_table_metrics_render_as_tables(demo_db):
    """Stage conversion and the per-feature / per-table breakdowns appear as tables on the Diagnostic page."""
    at = open_page("diagnostic")
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown]
    for label in ("Stage conversion", "Feature adoption", "Data quality"):
        assert any(label.lower() in s.lower() for s in shown), label
    assert len(at.dataframe) >= 3


@pytest.fixture
def empty_db(tmp_path, monkeypatch) -> Path:
    """A database file with the tables but no rows (the user's own, not the demo)."""
    path = tmp_path / "empty.duckdb"
    with store.connect(path):
        pass
    monkeypatch.setenv("REVOPS_DB", str(path))
    return path


@pytest.mark.parametrize("tier", TIERS)
def test_empty_database_shows_dashes_with_reasons(empty_db, tier):
    """With no rows every card shows what the registry computes, and an empty value is a dash with its reason."""
    at = open_page(tier)
    assert not at.exception, at.exception
    # The page looks from today (no event in the data) over the default 365 days.
    period = Period.ending(dt.date.today(), 365)
    frames = empty_frames()
    shown = dict(zip([m.label for m in at.metric], values(at)))
    texts = captions(at)
    dashes = 0
    for m in (m for m in by_tier(tier) if m.kind == "scalar"):
        expected = m.compute(frames, period)
        assert shown[m.label] == format_value(expected.value, display_unit(m.unit, m.id)), m.id
        if expected.value is None:
            dashes += 1
            assert expected.reason and any(expected.reason in t for t in texts), (m.id, expected.reason)
    assert dashes >= 1
