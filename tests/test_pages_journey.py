"""The customer-journey pages (Funnel, Handoffs, Pipeline review) and their numbers on the demo company."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from revops import store
from revops.frames import Frames, default_as_of, load_frames
from revops.funnel import stage_conversion
from revops.handoffs import handoffs_table, journey
from revops.period import Period
from revops.pipeline_review import default_review_dates, pipeline_waterfall

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 180


@pytest.fixture(scope="module")
def demo(demo_file) -> tuple[Frames, Period]:
    """The demo company's frames and its default period."""
    with store.connect(demo_file) as con:
        frames = load_frames(con)
    return frames, Period.ending(default_as_of(frames))


def open_page(page: str) -> AppTest:
    """Run the app and switch to one of its pages."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    return at


@pytest.mark.parametrize("page,title", [("funnel", "Funnel"), ("handoffs", "Handoffs: the leakage map"),
                                        ("pipeline_review", "Pipeline review")])
def test_page_renders_on_the_demo(demo_db, page, title):
    """Each journey page renders under AppTest without an exception, under its title."""
    at = open_page(page)
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == [title]


def test_funnel_page_switches_to_leads_and_breakdowns(demo_db):
    """The lead funnel and a breakdown by owner render too, with the bottleneck named."""
    at = open_page("funnel")
    at.selectbox(key="funnel_by").set_value("owner").run()
    assert not at.exception, at.exception
    at.button_group(key="funnel_kind").set_value("lead").run()
    assert not at.exception, at.exception
    assert any(m.label == "Bottleneck" for m in at.metric)


def test_handoffs_page_drills_into_each_handoff(demo_db):
    """Each part of the Sankey and every handoff's leaked records can be picked without error."""
    at = open_page("handoffs")
    for section in ("pre", "post"):
        at.button_group(key="handoffs_section").set_value(section).run()
        assert not at.exception, (section, at.exception)
    for key in ["lead_to_opportunity", "opportunity_to_close", "close_to_onboard", "onboard_to_value",
                "value_to_expand", "expand_to_renew"]:
        at.selectbox(key="handoffs_drill").set_value(key).run()
        assert not at.exception, (key, at.exception)


def test_pipeline_review_reversed_dates_give_a_sentence(demo_db):
    """Picking a start after the end shows a clear error, not a traceback."""
    at = open_page("pipeline_review")
    at.date_input(key="review_from").set_value(dt.date(2030, 1, 1)).run()
    assert not at.exception, at.exception
    assert any("before the end date" in e.value for e in at.error)


def test_stage_conversion_lists_every_open_stage(demo):
    """stage_conversion on the demo: every open stage in order, entered never growing down the funnel."""
    frames, period = demo
    t = stage_conversion(frames, period)
    assert t["stage"].to_list() == [s.name for s in frames.settings.open_stages()]
    assert t["entered"].to_list() == sorted(t["entered"].to_list(), reverse=True)
    assert t["entered"][0] > 0


def test_handoffs_table_has_six_rows_with_leak_rates_in_range(demo):
    """handoffs_table on the demo: six rows, every leak rate and SLA compliance between 0 and 1."""
    frames, period = demo
    t = handoffs_table(frames, period)
    assert t.height == 6
    assert t["leak_rate"].drop_nulls().len() == 6
    for col in ("leak_rate", "sla_compliance"):
        assert t[col].drop_nulls().is_between(0, 1).all(), col
    assert (t["entered"] == t["passed"] + t["leaked"] + t["in_progress"]).all()


def test_demo_sankey_conserves(demo):
    """The demo's Sankey flows conserve at every node."""
    from test_handoffs import assert_conserves
    frames, period = demo
    j = journey(frames, period)
    assert j.links.height > 0
    assert_conserves(j.nodes, j.links)


def test_demo_waterfall_sums_exactly(demo):
    """The demo's weekly waterfall: start + Σ components == end, in cents."""
    frames, period = demo
    w = pipeline_waterfall(frames, *default_review_dates(period.as_of))
    cents = dict(zip(w.steps["step"].to_list(), w.steps["cents"].to_list()))
    assert cents["start"] + sum(v for k, v in cents.items() if k not in ("start", "end")) == cents["end"]
