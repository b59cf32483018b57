"""AppTest of the Plan pages (Forecast, Operating model) on a small demo company."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from revops.demo import build_demo
from revops.operating_model import MODELS

APP = Path(__file__).resolve().parents[1] / "app.py"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """A small demo company built once for the module."""
    path = tmp_path_factory.mktemp("plan") / "demo.duckdb"
    build_demo(path, seed=7, scale=1500)
    return path


@pytest.fixture
def db(demo_db, tmp_path, monkeypatch):
    """A copy of the demo file per test, so saved scenarios and assessments do not leak between tests."""
    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, path)
    monkeypatch.setenv("REVOPS_DB", str(path))
    return path


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def _metric(at: AppTest, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def test_forecast_page_has_sliders_and_moving_one_changes_the_forecast(db):
    """Every lever has a slider at its historical value; moving win rate changes the numbers shown."""
    at = _open("pages/forecast.py")
    keys = {s.key for s in at.slider}
    assert {"fc_win_rate", "fc_avg_deal_size", "fc_sales_cycle_days", "fc_pipeline_created_per_month",
            "fc_gross_churn_rate", "fc_expansion_rate"} <= keys
    before = _metric(at, "Bookings, next four quarters")
    win = at.slider(key="fc_win_rate")
    win.set_value(min(1.0, round(win.value + 0.1, 3))).run()
    assert not at.exception, at.exception
    after = _metric(at, "Bookings, next four quarters")
    assert after != before
    assert any("vs baseline" in (m.delta or "") for m in at.metric)
    assert any("off by" in md.value or "not enough history" in md.value for md in at.markdown)


def test_forecast_page_saves_and_loads_a_scenario(db):
    """A saved scenario appears in the selector, and picking the baseline puts the sliders back."""
    at = _open("pages/forecast.py")
    baseline = at.slider(key="fc_win_rate").value
    at.slider(key="fc_win_rate").set_value(min(1.0, round(baseline + 0.05, 3))).run()
    at.text_input(key="fc_new_name").input("Better close rate").run()
    at.button(key="fc_save").click().run()
    assert not at.exception, at.exception
    assert "Better close rate" in at.selectbox(key="fc_scenario").options
    at.selectbox(key="fc_scenario").set_value("Historical baseline").run()
    assert at.slider(key="fc_win_rate").value == pytest.approx(baseline)
    at.selectbox(key="fc_scenario").set_value("Better close rate").run()
    assert at.slider(key="fc_win_rate").value == pytest.approx(min(1.0, round(baseline + 0.05, 3)))


def test_operating_model_page_recommends_one_of_the_four(db):
    """The page names one of the four models and shows the scores and the 90-day plan."""
    at = _open("pages/operating_model.py")
    headers = [h.value for h in at.subheader]
    recommended = [h for h in headers if h.startswith("Recommended: ")]
    assert recommended and recommended[0].removeprefix("Recommended: ") in {m.label for m in MODELS.values()}
    assert any("revenue council" in md.value for md in at.markdown)
    at.selectbox(key="om_stage").set_value("public").run()
    at.number_input(key="om_units").set_value(6).run()
    assert not at.exception, at.exception
    assert "Recommended: Center of excellence" in [h.value for h in at.subheader]
    at.button(key="om_save").click().run()
    assert any("Saved assessment #1" in s.value for s in at.success)


def test_forecast_levers_restart_from_the_new_history_when_a_filter_changes(db):
    """A segment filter gives a new history: the sliders move to it rather than keep the old values."""
    at = _open("pages/forecast.py")
    before = at.slider(key="fc_win_rate").value
    segment = at.multiselect(key="segment")
    segment.set_value([segment.options[0]]).run()
    assert not at.exception, at.exception
    after = at.slider(key="fc_win_rate").value
    assert after != before
    assert f"History: {after * 100:.1f}%" in [c.value for c in at.caption]
