"""The metrics report: the JSON shape of DESIGN.md, never NaN, tables as rows, the period of the command line."""
from __future__ import annotations

import datetime as dt
import json
import sys
import types

import polars as pl
import pytest

from revops.errors import UserError
from revops.frames import frames_from_tables
from revops.metrics import scalar_metrics
from revops.metrics.report import json_value, metrics_report, render_text, resolve_period
from revops.period import Period

D = dt.date
PERIOD = Period.ending(D(2024, 6, 30))


def _frames():
    subs = pl.DataFrame({"subscription_id": ["1"], "account_id": ["a"], "start_date": [D(2023, 1, 1)],
                         "end_date": [None], "mrr": [100.0]})
    opps = pl.DataFrame({"opportunity_id": ["w", "n"], "stage": ["Closed Won", "Closed Won"],
                         "amount": [500.0, float("nan")], "created_at": [D(2024, 1, 1)] * 2,
                         "close_date": [D(2024, 2, 1)] * 2})
    leads = pl.DataFrame({"lead_id": ["1"], "created_at": [dt.datetime(2024, 3, 1)],
                          "pql_at": [dt.datetime(2024, 3, 2)]})
    return frames_from_tables({"subscriptions": subs, "opportunities": opps, "leads": leads})


def test_report_has_the_design_shape_with_every_scalar_metric():
    """as_of, window and one {value, unit, tier, reason} per scalar metric."""
    report = metrics_report(_frames(), PERIOD)
    assert report["as_of"] == "2024-06-30"
    assert report["window"] == {"start": "2023-07-02", "end": "2024-06-30"}
    assert set(report["metrics"]) == {m.id for m in scalar_metrics()}
    for entry in report["metrics"].values():
        assert set(entry) == {"value", "unit", "tier", "reason"}
        assert (entry["value"] is None) == (entry["reason"] is not None)
    assert report["metrics"]["arr"] == {"value": 1200.0, "unit": "money", "tier": "north_star", "reason": None}
    assert report["metrics"]["pql_count"]["value"] == 1 and isinstance(report["metrics"]["pql_count"]["value"], int)


def test_report_never_carries_nan():
    """A NaN amount makes the mean unknown: null with a reason, and strict JSON still serialises."""
    report = metrics_report(_frames(), PERIOD)
    assert report["metrics"]["avg_deal_size"]["value"] is None
    assert report["metrics"]["avg_deal_size"]["reason"]
    json.dumps(report, allow_nan=False)
    assert json_value(float("inf")) is None and json_value(D(2024, 1, 2)) == "2024-01-02"
    assert json_value([1.0, float("nan")]) == [1.0, None]


def test_report_tables_hold_stage_conversion_rows():
    """stage_conversion comes as a list of rows with stage, entered, converted, rate, median_days."""
    rows = metrics_report(_frames(), PERIOD)["tables"]["stage_conversion"]
    assert rows and set(rows[0]) == {"stage", "entered", "converted", "rate", "median_days"}
    assert rows[0]["entered"] == 2  # both won deals, created 1 Jan 2024, reached the first stage
    assert metrics_report(_frames(), PERIOD, include_tables=False).get("tables") is None


def test_report_includes_handoffs_only_when_the_module_provides_them(monkeypatch):
    """handoffs_table is read lazily: present → rows; module missing → no key."""
    fake = types.ModuleType("revops.handoffs")
    fake.handoffs_table = lambda frames, period: pl.DataFrame({"handoff": ["Lead → Opportunity"], "leak_rate": [0.25]})
    monkeypatch.setitem(sys.modules, "revops.handoffs", fake)
    assert metrics_report(_frames(), PERIOD)["tables"]["handoffs"] == [
        {"handoff": "Lead → Opportunity", "leak_rate": 0.25}]
    monkeypatch.setitem(sys.modules, "revops.handoffs", None)  # import fails
    assert "handoffs" not in metrics_report(_frames(), PERIOD)["tables"]


def test_text_report_groups_metrics_by_tier():
    """The readable table has one heading per tier, in order, and shows empty values with their reason."""
    text = render_text(metrics_report(_frames(), PERIOD))
    positions = [text.index(title) for title in ("North Star", "Operational", "Diagnostic", "Leading")]
    assert positions == sorted(positions)
    assert "$1.2K" in text and "(No target loaded for this quarter)" in text


def test_period_defaults_to_365_days_ending_at_the_latest_event():
    """No dates given: as-of = the latest event (the lead created 1 Mar 2024, after the closes of 1 Feb)."""
    p = resolve_period(_frames(), None, None, None)
    assert (p.as_of, p.start, p.end) == (D(2024, 3, 1), D(2023, 3, 3), D(2024, 3, 1))


def test_period_from_start_and_end():
    """--start/--end set the window; as-of defaults to its end; --start alone runs to as-of."""
    f = _frames()
    assert resolve_period(f, None, D(2024, 1, 1), D(2024, 3, 31)) == Period(D(2024, 3, 31), D(2024, 1, 1),
                                                                          D(2024, 3, 31))
    assert resolve_period(f, D(2024, 2, 15), D(2024, 1, 1), None) == Period(D(2024, 2, 15), D(2024, 1, 1),
                                                                          D(2024, 2, 15))


def test_period_with_start_after_end_is_a_clear_error():
    """--start after --end: one sentence naming both dates."""
    with pytest.raises(UserError, match="2024-05-01 is after its end 2024-04-01"):
        resolve_period(_frames(), None, D(2024, 5, 1), D(2024, 4, 1))


def _whole(path):
    """Frames of the file with every table read whole."""
    from revops.frames import open_frames
    from revops.schema import TABLES
    frames = open_frames(path, read_only=True)
    for name in TABLES:
        frames.table(name)
    return frames


@pytest.mark.parametrize("as_of", [None, D(2025, 3, 31)])
def test_report_reading_windows_from_the_file_equals_the_report_of_whole_tables(demo_file, as_of):
    """With rows_from_file (leads and usage windows read from the file) the JSON is byte for byte the same."""
    from revops.frames import file_reader, open_frames
    from revops.reads import rows_from_file
    whole = _whole(demo_file)
    period = resolve_period(whole, as_of, None, None)
    expected = json.dumps(metrics_report(whole, period), indent=2)
    lazy = open_frames(demo_file, read_only=True)
    with rows_from_file():
        got = json.dumps(metrics_report(lazy, period), indent=2)
    assert got == expected
    assert file_reader(lazy, "usage") and file_reader(lazy, "leads")  # never read whole: the windows came from the file


def test_table_between_from_the_file_keeps_the_rows_and_their_order(demo_file):
    """A window read from the file (and a later window inside it) holds the table's rows of those days, in table order."""
    from revops.frames import file_reader, open_frames
    from revops.reads import rows_from_file, table_between
    whole = _whole(demo_file)
    lazy = open_frames(demo_file, read_only=True)
    end = whole.usage["date"].max()
    windows = [("usage", "date", end - dt.timedelta(days=10), end),
               ("usage", "date", end - dt.timedelta(days=40), end - dt.timedelta(days=20)),  # inside the first read
               ("leads", "pql_at", end - dt.timedelta(days=200), end)]  # a column out of order: filtered
    with rows_from_file():
        for table, col, start, stop in windows:
            expected = whole.table(table).filter(pl.col(col).cast(pl.Date).is_between(start, stop))
            got = table_between(lazy, table, col, start, stop)
            assert expected.height > 0
            assert got.equals(expected)
    assert file_reader(lazy, "usage") and file_reader(lazy, "leads")


def test_cell_counts_of_unread_tables_equal_the_counts_of_read_ones(demo_file):
    """Data quality counted in the file (tables not read) equals data quality counted on the frames, cell for cell."""
    from revops.frames import open_frames
    from revops.metrics.diagnostic import cell_quality
    expected = cell_quality(_whole(demo_file))
    lazy = open_frames(demo_file, read_only=True)
    got = cell_quality(lazy)
    assert got.equals(expected)
    assert (got["valid"] < got["expected"]).any()  # the demo has defects, so validity is really compared
