"""The pipeline review on hand-made tables: waterfall buckets, exact sums, slipped/stalled/past due, roll-up, owners."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from revops.errors import UserError
from revops.frames import frames_from_tables
from revops.period import Period
from revops.pipeline_review import (
    _deal_time_key,
    close_date_pushes,
    default_review_dates,
    forecast_rollup,
    owner_table,
    past_due_deals,
    pipeline_waterfall,
    slipped_deals,
    stalled_deals,
    top_deals,
)
from revops.schema import Settings, StageSetting

D = dt.date
T = dt.datetime
SETTINGS = Settings(stages=[
    StageSetting(name="Discovery", funnel_step=0),
    StageSetting(name="Demo", funnel_step=1),
    StageSetting(name="Proposal", funnel_step=2),
    StageSetting(name="Won", is_closed=True, is_won=True, funnel_step=3),
    StageSetting(name="Lost", is_closed=True, funnel_step=4),
])
A, B = D(2024, 5, 1), D(2024, 5, 8)  # the review compares end of 1 May with end of 8 May; quarter Apr-Jun


def waterfall_frames():
    """One deal per bucket (history rows carry stage, amount, close date).

    P1 Discovery 100 -> Demo 150 on 3 May (amount change, advanced); P2 created 5 May at 200;
    P3 close 15 Aug -> 20 Jun on 4 May (pulled in, 300); P4 close 10 Jun -> 20 Jul on 6 May (slipped, 400);
    P5 won 7 May (500); P6 lost 2 May, no history (600); P7 closes in Q3 throughout (no effect);
    P8 created 2 May and won 4 May, no history (no effect); P9 unchanged 50.55, no history.
    """
    opps = pl.DataFrame({
        "opportunity_id": [f"P{i}" for i in range(1, 10)],
        "stage": ["Demo", "Discovery", "Discovery", "Demo", "Won", "Lost", "Discovery", "Won", "Demo"],
        "owner": ["ann", "ann", "bob", "bob", "ann", "bob", "ann", "bob", "ann"],
        "amount": [150.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 50.55],
        "created_at": [D(2024, 4, 1), D(2024, 5, 5), D(2024, 3, 1), D(2024, 3, 1), D(2024, 3, 1), D(2024, 3, 1),
                       D(2024, 4, 1), D(2024, 5, 2), D(2024, 1, 1)],
        "close_date": [D(2024, 6, 15), D(2024, 6, 1), D(2024, 6, 20), D(2024, 7, 20), D(2024, 5, 7), D(2024, 5, 2),
                       D(2024, 9, 1), D(2024, 5, 4), D(2024, 6, 1)],
    })
    hist = pl.DataFrame({
        "opportunity_id": ["P1", "P1", "P2", "P3", "P3", "P4", "P4", "P5", "P5", "P7"],
        "stage": ["Discovery", "Demo", "Discovery", "Discovery", "Discovery", "Demo", "Demo", "Proposal", "Won",
                  "Discovery"],
        "changed_at": [T(2024, 4, 1), T(2024, 5, 3), T(2024, 5, 5), T(2024, 3, 1), T(2024, 5, 4), T(2024, 3, 1),
                       T(2024, 5, 6), T(2024, 3, 1), T(2024, 5, 7), T(2024, 4, 1)],
        "amount": [100.0, 150.0, 200.0, 300.0, 300.0, 400.0, 400.0, 500.0, 500.0, 700.0],
        "close_date": [D(2024, 6, 15), D(2024, 6, 15), D(2024, 6, 1), D(2024, 8, 15), D(2024, 6, 20), D(2024, 6, 10),
                       D(2024, 7, 20), D(2024, 6, 30), D(2024, 5, 7), D(2024, 9, 1)],
    })
    return frames_from_tables({"opportunities": opps, "stage_history": hist}, SETTINGS)


def amounts(w) -> dict[str, float]:
    """step -> amount of a waterfall."""
    return dict(zip(w.steps["step"].to_list(), w.steps["amount"].to_list()))


def test_each_bucket_by_hand():
    """Every bucket holds the hand-worked amount of its one deal."""
    w = pipeline_waterfall(waterfall_frames(), A, B)
    assert w.source == "stage history"
    got = amounts(w)
    # start = P1 100 + P4 400 + P5 500 + P6 600 + P9 50.55 = 1650.55
    assert got["start"] == pytest.approx(1650.55)
    assert got["created"] == pytest.approx(200)      # P2
    assert got["pulled_in"] == pytest.approx(300)    # P3
    assert got["amount_change"] == pytest.approx(50)  # P1 150 - 100, P9 0
    assert got["slipped"] == pytest.approx(-400)     # P4
    assert got["won"] == pytest.approx(-500)         # P5
    assert got["lost"] == pytest.approx(-600)        # P6
    # end = P1 150 + P2 200 + P3 300 + P9 50.55 = 700.55
    assert got["end"] == pytest.approx(700.55)
    assert "removed" not in got  # no snapshots, nothing can go missing


def test_waterfall_sums_exactly_in_cents():
    """start + Σ components == end, exactly, in cents."""
    w = pipeline_waterfall(waterfall_frames(), A, B)
    cents = dict(zip(w.steps["step"].to_list(), w.steps["cents"].to_list()))
    assert cents["start"] + sum(v for k, v in cents.items() if k not in ("start", "end")) == cents["end"]
    assert cents["end"] == 70055
    assert w.net_change == pytest.approx(700.55 - 1650.55) and w.total("won") == -500


def test_waterfall_lists_each_moving_deal_once():
    """The deal list has one row per deal that moved the pipeline, with its bucket; P7 and P8 are absent."""
    w = pipeline_waterfall(waterfall_frames(), A, B)
    buckets = dict(zip(w.deals["opportunity_id"].to_list(), w.deals["bucket"].to_list()))
    assert buckets == {"P1": "Amount changes", "P2": "Created", "P3": "Pulled in", "P4": "Slipped out",
                       "P5": "Won", "P6": "Lost", "P9": "Amount changes"}
    # P1 moved Discovery -> Demo while in the pipeline: advanced, worth 150 now.
    assert (w.advanced_deals, w.advanced_amount) == (1, 150.0)


def test_waterfall_from_snapshots_with_a_removed_deal():
    """Two snapshots on or before the dates are compared; a deal missing from the later one is removed."""
    def snap(day, ids, amounts_, won=()):
        return pl.DataFrame({"snapshot_date": [day] * len(ids), "opportunity_id": ids,
                             "stage": ["Won" if i in won else "Demo" for i in ids], "amount": amounts_,
                             "close_date": [D(2024, 6, 1)] * len(ids), "is_closed": [i in won for i in ids],
                             "is_won": [i in won for i in ids]})
    # 30 Apr: S1 100, S2 50, S5 90; 7 May: S1 120, S3 70 (created 3 May), S4 80 (created 1 Mar), S5 won.
    snaps = pl.concat([snap(D(2024, 4, 30), ["S1", "S2", "S5"], [100.0, 50.0, 90.0]),
                       snap(D(2024, 5, 7), ["S1", "S3", "S4", "S5"], [120.0, 70.0, 80.0, 90.0], won=("S5",))])
    opps = pl.DataFrame({"opportunity_id": ["S1", "S3", "S4", "S5"], "stage": ["Demo", "Demo", "Demo", "Won"],
                         "created_at": [D(2024, 3, 1), D(2024, 5, 3), D(2024, 3, 1), D(2024, 3, 1)]})
    frames = frames_from_tables({"opportunities": opps}, SETTINGS, snapshots=snaps)
    w = pipeline_waterfall(frames, A, B)
    assert w.source == "snapshots"
    # start 100 + 50 + 90 = 240; +20 (S1), -50 removed (S2), +70 created (S3), +80 pulled in (S4), -90 won (S5)
    assert amounts(w) == pytest.approx({"start": 240, "created": 70, "pulled_in": 80, "amount_change": 20,
                                        "slipped": 0, "won": -90, "lost": 0, "removed": -50, "end": 270})


def test_waterfall_rejects_reversed_dates():
    """A start date on or after the end date is a clear user error."""
    with pytest.raises(UserError, match="before the end date"):
        pipeline_waterfall(waterfall_frames(), B, A)


def test_default_review_dates_are_the_last_seven_days():
    """The default review compares as_of − 7 days with as_of."""
    assert default_review_dates(D(2024, 5, 8)) == (D(2024, 5, 1), D(2024, 5, 8))


_STAGES = ["Discovery", "Demo", "Proposal", "Won", "Lost"]
_row = st.tuples(st.integers(0, 60), st.sampled_from(_STAGES), st.integers(0, 100_000), st.integers(0, 200))


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deals=st.lists(st.tuples(st.integers(0, 60), st.lists(_row, max_size=4), st.booleans(),
                                st.integers(0, 100_000), st.sampled_from(_STAGES)), max_size=12),
       a=st.integers(0, 59), span=st.integers(1, 30), scope=st.sampled_from(["quarter", "all"]))
def test_waterfall_components_always_sum_to_the_end(deals, a, span, scope):
    """Property: for any histories, start + Σ components == end to the cent and each deal sits in one bucket."""
    base = D(2024, 3, 1)
    opp_rows, hist_rows = [], []
    for i, (created, rows, has_created, amount, stage) in enumerate(deals):
        opp_rows.append({"opportunity_id": f"X{i}", "stage": stage, "amount": amount / 100,
                         "created_at": base + dt.timedelta(days=created) if has_created else None,
                         "close_date": base + dt.timedelta(days=created + 30)})
        for day, st_, cents, close in rows:
            hist_rows.append({"opportunity_id": f"X{i}", "stage": st_,
                              "changed_at": dt.datetime.combine(base + dt.timedelta(days=day), dt.time(9)),
                              "amount": cents / 100, "close_date": base + dt.timedelta(days=close)})
    opps = pl.DataFrame(opp_rows, schema={"opportunity_id": pl.String, "stage": pl.String, "amount": pl.Float64,
                                          "created_at": pl.Date, "close_date": pl.Date})
    hist = pl.DataFrame(hist_rows, schema={"opportunity_id": pl.String, "stage": pl.String,
                                           "changed_at": pl.Datetime("us"), "amount": pl.Float64,
                                           "close_date": pl.Date})
    frames = frames_from_tables({"opportunities": opps, "stage_history": hist.unique(
        ["opportunity_id", "changed_at"], keep="first")}, SETTINGS)
    start = base + dt.timedelta(days=a)
    w = pipeline_waterfall(frames, start, start + dt.timedelta(days=span), scope)
    cents = dict(zip(w.steps["step"].to_list(), w.steps["cents"].to_list()))
    assert cents["start"] + sum(v for k, v in cents.items() if k not in ("start", "end")) == cents["end"]
    assert w.deals["opportunity_id"].is_unique().all()
    assert w.deals.height == sum(w.steps.filter(~pl.col("step").is_in(["start", "end"]))["deals"])


def activity_frames():
    """Deals for slipped / stalled / past due, looked at on 31 May 2024.

    Q1 close 1 Jun -> 15 Jun -> 10 Jun -> 1 Jul: pushed twice (14 + 21 days), last change 20 May.
    Q2 last stage change 1 May (30 days before as_of); Q3 last change 2 May (29 days); Q4 no history,
    created 1 Apr, close 30 May (1 day overdue); Q5 won (never stalled or past due).
    """
    opps = pl.DataFrame({
        "opportunity_id": ["Q1", "Q2", "Q3", "Q4", "Q5"],
        "stage": ["Demo", "Demo", "Demo", "Discovery", "Won"],
        "owner": ["ann", "ann", "bob", "bob", "bob"],
        "amount": [100.0, 200.0, 300.0, None, 500.0],
        "created_at": [D(2024, 4, 1)] * 5,
        "close_date": [D(2024, 7, 1), D(2024, 5, 31), D(2024, 6, 30), D(2024, 5, 30), D(2024, 5, 15)],
    })
    hist = pl.DataFrame({
        "opportunity_id": ["Q1", "Q1", "Q1", "Q1", "Q2", "Q3"],
        "stage": ["Discovery", "Discovery", "Demo", "Demo", "Demo", "Demo"],
        "changed_at": [T(2024, 4, 1), T(2024, 4, 10), T(2024, 4, 20), T(2024, 5, 20), T(2024, 5, 1),
                       T(2024, 5, 2, 15)],
        "close_date": [D(2024, 6, 1), D(2024, 6, 15), D(2024, 6, 10), D(2024, 7, 1), None, None],
    })
    return frames_from_tables({"opportunities": opps, "stage_history": hist}, SETTINGS)


AS_OF = D(2024, 5, 31)


def test_slipped_deals_count_close_date_pushes():
    """Slipped: Q1's close date rose twice (1 → 15 Jun, 10 Jun → 1 Jul) for 14 + 21 = 35 days."""
    s = slipped_deals(activity_frames(), AS_OF, since=D(2024, 5, 24))
    assert s["opportunity_id"].to_list() == ["Q1"]
    r = s.row(0, named=True)
    assert (r["pushes"], r["days_pushed"], r["first_close_date"]) == (2, 35, D(2024, 6, 1))
    assert r["pushed_recently"] is False  # last push 20 May, before 24 May


def test_close_date_pushes_merge_history_and_snapshots_in_time_order():
    """A: history 1 Apr (close 1 Jun), 10 Apr (1 Jul: +30); snapshots 15 Apr (15 Jun), 20 Apr (20 Jul: +35),
    10 Jun (after as-of, ignored) -> 2 pushes, 65 days, last 20 Apr. B, its history between A's rows: 5 Apr
    (1 May), snapshot 6 Apr (10 May: +9) -> 1 push, 9 days. C: one sighting, never pushed."""
    opps = pl.DataFrame({"opportunity_id": ["A", "B", "C"], "stage": ["Demo"] * 3})
    hist = pl.DataFrame({
        "opportunity_id": ["A", "B", "A", "C"], "stage": ["Demo"] * 4,
        "changed_at": [T(2024, 4, 1, 9), T(2024, 4, 5, 9), T(2024, 4, 10, 9), T(2024, 4, 2, 9)],
        "close_date": [D(2024, 6, 1), D(2024, 5, 1), D(2024, 7, 1), D(2024, 6, 1)]})
    snaps = pl.DataFrame({
        "snapshot_date": [D(2024, 4, 6), D(2024, 4, 15), D(2024, 4, 20), D(2024, 6, 10)],
        "opportunity_id": ["B", "A", "A", "A"], "stage": ["Demo"] * 4, "amount": [1.0] * 4,
        "close_date": [D(2024, 5, 10), D(2024, 6, 15), D(2024, 7, 20), D(2024, 9, 1)],
        "is_closed": [False] * 4, "is_won": [False] * 4})
    frames = frames_from_tables({"opportunities": opps, "stage_history": hist}, SETTINGS, snapshots=snaps)
    got = {r["opportunity_id"]: (r["pushes"], r["days_pushed"], r["first_close_date"], r["last_pushed_at"])
           for r in close_date_pushes(frames, AS_OF).iter_rows(named=True)}
    assert got == {"A": (2, 65, D(2024, 6, 1), T(2024, 4, 20)), "B": (1, 9, D(2024, 5, 1), T(2024, 4, 6)),
                   "C": (0, 0, D(2024, 6, 1), None)}


def test_stalled_deals_use_the_last_stage_change():
    """Stalled after 30 days without a stage change: Q2 (30 days) and Q4 (created 60 days ago), not Q3 (29)."""
    s = stalled_deals(activity_frames(), AS_OF, days=30)
    assert dict(zip(s["opportunity_id"].to_list(), s["days_since_change"].to_list())) == {"Q4": 60, "Q2": 30}


def test_lists_of_one_frames_at_two_dates_each_read_their_own_day():
    """On 10 May Q1 was pushed once (1 → 15 Jun, 14 days) and Q4, Q5 (created 1 Apr) had gone 39 days without a
    change; asking 31 May next on the same tables gives that day's answers (shared steps are kept per day)."""
    frames = activity_frames()
    early = D(2024, 5, 10)
    s = slipped_deals(frames, early)
    assert s["opportunity_id"].to_list() == ["Q1"] and (s["pushes"].item(), s["days_pushed"].item()) == (1, 14)
    st_early = stalled_deals(frames, early, days=30)
    assert dict(zip(st_early["opportunity_id"].to_list(), st_early["days_since_change"].to_list())) == {
        "Q4": 39, "Q5": 39}
    assert slipped_deals(frames, AS_OF)["pushes"].to_list() == [2]
    st = stalled_deals(frames, AS_OF, days=30)
    assert dict(zip(st["opportunity_id"].to_list(), st["days_since_change"].to_list())) == {"Q4": 60, "Q2": 30}


def test_one_sort_key_orders_sightings_by_deal_then_instant():
    """The single key sorts as (code, at) with ties kept in row order, whether the microseconds fit beside
    the code (3 deals) or the instant's rank stands in (2^40 deals leave 2^23 µs, 8 s, for days apart)."""
    sightings = pl.DataFrame({
        "code": pl.Series([2, 0, 1, 0, 2, 0, 1], dtype=pl.UInt32),
        "at": [T(2024, 4, 3), T(2024, 4, 2), T(2024, 4, 1), T(2024, 4, 1), T(2024, 4, 1), T(2024, 4, 2), T(2024, 4, 1)],
        "row": list(range(7))})
    expected = [3, 1, 5, 2, 6, 4, 0]  # code 0: 1 Apr (row 3), 2 Apr (rows 1, 5); code 1: rows 2, 6; code 2: 4, 0
    assert sightings.sort("code", "at", maintain_order=True)["row"].to_list() == expected
    for n_codes in (3, 2**40):
        key = _deal_time_key(sightings, n_codes)
        assert sightings.with_columns(key=key).sort("key", maintain_order=True)["row"].to_list() == expected


def test_past_due_deals_are_open_with_close_date_before_as_of():
    """Past due: Q4 (30 May, 1 day); Q2 closes on as_of itself and is not late; won Q5 is not open."""
    s = past_due_deals(activity_frames(), AS_OF)
    assert s["opportunity_id"].to_list() == ["Q4"] and s["days_overdue"].to_list() == [1]


def test_top_deals_largest_first_unknown_amounts_last():
    """Top deals: open deals by amount, the one without amount last."""
    assert top_deals(activity_frames(), AS_OF, n=4)["opportunity_id"].to_list() == ["Q3", "Q2", "Q1", "Q4"]


def rollup_frames(target: float | None):
    """Quarter Apr-Jun 2024 seen on 15 May: won 200 in it, open deals by category, a target row."""
    opps = pl.DataFrame({
        "opportunity_id": ["W1", "W0", "C1", "B1", "N1", "O1", "PD", "NQ"],
        "stage": ["Won", "Won", "Demo", "Demo", "Demo", "Demo", "Demo", "Demo"],
        "amount": [200.0, 1000.0, 300.0, 100.0, 150.0, 50.0, 999.0, 888.0],
        "created_at": [D(2024, 1, 1)] * 8,
        # W0 won in the previous quarter; PD past due (before as_of); NQ closes next quarter.
        "close_date": [D(2024, 5, 1), D(2024, 3, 30), D(2024, 6, 1), D(2024, 5, 20), D(2024, 6, 30), D(2024, 6, 1),
                       D(2024, 5, 10), D(2024, 7, 1)],
        "forecast_category": [None, None, "Commit", "Best Case", None, "Omitted", "Commit", "Commit"],
    })
    tables = {"opportunities": opps}
    if target is not None:
        tables["targets"] = pl.DataFrame({"period_start": [D(2024, 4, 1)], "period_end": [D(2024, 6, 30)],
                                          "target_amount": [target]})
    return frames_from_tables(tables, SETTINGS)


def test_forecast_rollup_against_target():
    """Roll-up: closed 200, commit 300, best case 100, pipeline 150 (empty category), omitted 50 kept out."""
    r = forecast_rollup(rollup_frames(1000.0), D(2024, 5, 15))
    t = r.table
    assert t["category"].to_list() == ["closed", "commit", "best_case", "pipeline", "omitted"]
    assert t["amount"].to_list() == [200, 300, 100, 150, 50]
    # cumulative 200, 500, 600, 750; attainment ÷ 1000
    assert t["cumulative"].to_list() == [200, 500, 600, 750, None]
    assert t["attainment"].to_list()[:4] == pytest.approx([0.2, 0.5, 0.6, 0.75])
    # coverage = (300 + 100 + 150) / (1000 - 200) = 550 / 800
    assert r.coverage == pytest.approx(0.6875) and r.reason is None


def test_forecast_rollup_without_target_or_with_target_met():
    """No target, or a target already met, gives no coverage and says why."""
    none = forecast_rollup(rollup_frames(None), D(2024, 5, 15))
    assert none.coverage is None and "No target" in none.reason
    assert none.table["attainment"].null_count() == 5
    met = forecast_rollup(rollup_frames(150.0), D(2024, 5, 15))
    assert met.coverage is None and "already met" in met.reason


def test_owner_table():
    """Owners: open pipeline, won, win rate (empty without closed deals), slipped, stalled."""
    frames = activity_frames()
    t = owner_table(frames, Period(AS_OF, D(2024, 5, 1), AS_OF), stall_days=30)
    rows = {r["owner"]: r for r in t.iter_rows(named=True)}
    # ann: Q1 100 + Q2 200 open, nothing closed, Q1 slipped, Q2 stalled.
    assert (rows["ann"]["open_deals"], rows["ann"]["open_pipeline"], rows["ann"]["win_rate"]) == (2, 300.0, None)
    assert (rows["ann"]["slipped"], rows["ann"]["stalled"]) == (1, 1)
    # bob: Q3 300 + Q4 (no amount) open, Q5 won 500 on 15 May: win rate 1 / 1; Q4 stalled.
    assert (rows["bob"]["open_deals"], rows["bob"]["open_pipeline"]) == (2, 300.0)
    assert (rows["bob"]["won_amount"], rows["bob"]["win_rate"], rows["bob"]["stalled"]) == (500.0, 1.0, 1)
