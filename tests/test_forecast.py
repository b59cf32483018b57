"""Forecast, sensitivity, scenarios and backtest on tiny hand-made tables (numbers worked out in the tests)."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops import backtest, scenarios, store
from revops import forecast as F
from revops.errors import UserError
from revops.frames import empty_frames, frames_from_tables
from revops.period import Period

D = dt.date
AS_OF = D(2024, 3, 31)
PERIOD = Period.ending(AS_OF)  # window 2023-04-01 .. 2024-03-31


def _deals() -> pl.DataFrame:
    return pl.DataFrame({
        "opportunity_id": ["W1", "W2", "L1", "L2", "O1", "O2", "O3"],
        "stage": ["Closed Won", "Closed Won", "Closed Lost", "Closed Lost", "Proposal", "Negotiation", "Prospecting"],
        "amount": [1000.0, 3000.0, 5000.0, 2000.0, 10000.0, 5000.0, 7000.0],
        "created_at": [D(2024, 1, 1), D(2024, 2, 1), D(2024, 1, 10), D(2024, 2, 15), D(2024, 3, 1), D(2024, 1, 5),
                       D(2024, 3, 10)],
        "close_date": [D(2024, 1, 31), D(2024, 3, 2), D(2024, 2, 10), D(2024, 3, 15), D(2024, 5, 15),
                       D(2024, 2, 20), D(2025, 6, 30)],
        "type": ["new_business", "expansion", None, None, "new_business", "renewal", None],
        "probability": [None, None, None, None, None, 0.8, None],
    })


def _subs() -> pl.DataFrame:
    return pl.DataFrame({"subscription_id": ["S1", "S2"], "account_id": ["A", "B"],
                         "start_date": [D(2023, 1, 1), D(2023, 6, 1)], "mrr": [1000.0, 1500.0]})


def _leads() -> pl.DataFrame:
    ts = dt.datetime
    return pl.DataFrame({
        "lead_id": ["a", "b", "c", "d"],
        "created_at": [ts(2024, 3, 1, 10), ts(2024, 3, 2, 10), ts(2024, 3, 3, 10), ts(2024, 3, 4, 10)],
        "first_response_at": [ts(2024, 3, 1, 10, 2), ts(2024, 3, 2, 10, 3), ts(2024, 3, 3, 11), None],
        "mql_at": [ts(2024, 3, 1, 11), ts(2024, 3, 2, 11), ts(2024, 3, 3, 12), ts(2024, 3, 4, 12)],
        "sql_at": [ts(2024, 3, 1, 12), None, None, None],
        "opportunity_id": ["O1", None, None, None],
    })


def _frames(**extra: pl.DataFrame):
    targets = pl.DataFrame({"period_start": [D(2024, 4, 1)], "period_end": [D(2024, 6, 30)],
                            "target_amount": [91000.0]})
    return frames_from_tables({"opportunities": _deals(), "subscriptions": _subs(), "targets": targets, **extra})


def _levers(inputs: F.ForecastInputs, **update: float) -> F.Levers:
    # Round numbers for the hand case: a lag of exactly 1.5 months, 4 deals a month, 2 % churn, 1 % expansion.
    base = {"sales_cycle_days": F.DAYS_PER_MONTH * 1.5, "pipeline_created_per_month": 4.0, "gross_churn_rate": 0.02,
            "expansion_rate": 0.01}
    return inputs.baseline.model_copy(update={**base, **update})


def test_forecast_arithmetic_hand_case():
    """Open pipeline by close month, new pipeline lagged by the cycle, ARR rolled forward, targets by month."""
    inputs = F.prepare(_frames(), PERIOD)
    fc = F.project(inputs, _levers(inputs))
    assert fc.height == 12 and fc["month"][0] == D(2024, 4, 1) and fc["month"][-1] == D(2025, 3, 1)
    # Open pipeline: O2 is past due (20 Feb) -> April, 5000 × its own 0.8 = 4000;
    # O1 closes 15 May at the Proposal default 0.5 -> 10000 × 0.5 = 5000; O3 closes after the horizon.
    assert fc["bookings_from_pipeline"].to_list() == [4000.0, 5000.0] + [0.0] * 10
    # New pipeline: 4 deals × win rate 0.5 × deal size 2000 = 4000 a month; lag 1.5 months books half of
    # each month's value one month later and half two months later: 0, 2000, then 4000 every month.
    assert fc["bookings_from_new_pipeline"].to_list() == [0.0, 2000.0] + [4000.0] * 10
    assert fc["bookings"].to_list()[:3] == [4000.0, 7000.0, 4000.0]
    assert fc["bookings"].sum() == pytest.approx(4000 + 7000 + 10 * 4000)  # 51 000
    # ARR: 12 × (1000 + 1500) = 30 000 at as_of; growth 1 − 0.02 + 0.01 = 0.99 a month.
    # New ARR = new-business pipeline (O1: 5000; O2 is a renewal) + new pipeline × new-business share
    # (won in the window: 1000 new business of 4000 -> 0.25).
    # Apr 30000 × 0.99 = 29700; May 29700 × 0.99 + 5000 + 2000 × 0.25 = 34903;
    # Jun 34903 × 0.99 + 4000 × 0.25 = 35553.97.
    assert fc["arr"].to_list()[:3] == pytest.approx([29700.0, 34903.0, 35553.97])
    # Q2 target 91 000 over 91 days, by day: April 30 000, May 31 000, June 30 000; no target later.
    assert fc["target"].to_list()[:3] == pytest.approx([30000.0, 31000.0, 30000.0])
    assert fc["target"][3] is None
    assert fc["cumulative"].to_list()[:3] == [4000.0, 11000.0, 15000.0]
    q = F.quarterly(fc).row(0, named=True)
    assert q["bookings"] == 15000.0 and q["target"] == pytest.approx(91000.0)
    assert q["gap_to_target"] == pytest.approx(15000 - 91000)


def test_baseline_levers_from_history():
    """Win rate, deal size and cycle come from the registry; creation, churn and expansion from history."""
    subs = pl.DataFrame({
        "subscription_id": ["S1", "S2", "S3", "S4"], "account_id": ["A", "C", "A", "B"],
        "start_date": [D(2023, 1, 1), D(2023, 1, 1), D(2023, 12, 15), D(2023, 6, 1)],
        "end_date": [None, D(2023, 10, 1), None, None], "mrr": [1000.0, 1000.0, 500.0, 1500.0],
    })
    levers = F.baseline_levers(_frames(subscriptions=subs), PERIOD)
    assert levers.win_rate == 0.5  # W1, W2 won; L1, L2 lost
    assert levers.avg_deal_size == 2000.0  # (1000 + 3000) / 2
    assert levers.sales_cycle_days == 30.0  # both won deals took 30 days
    # 7 deals created in the 365-day window -> 7 × 30.4375 / 365 a month
    assert levers.pipeline_created_per_month == pytest.approx(7 * 30.4375 / 365)
    # MRR on 2023-03-31 (the day before the window): A 1000 + C 1000 = 2000.
    # Churn: C leaves on 1 Oct (1000 at the 31 Oct month end) -> 1000 / (12 × 2000).
    assert levers.gross_churn_rate == pytest.approx(1000 / 24000)
    # Expansion: A adds 500 in December; expansion_rate metric = 12 × 500 / 24000 = 0.25 a year -> / 12.
    assert levers.expansion_rate == pytest.approx(0.25 / 12)
    assert levers.lead_response_sla is None and levers.mql_to_sql is None  # no leads loaded


def test_partial_first_month_counts_won_so_far_and_remaining_days():
    """Mid-month as_of: the month's wins so far are actuals, new pipeline counts only the days left."""
    deals = pl.concat([_deals(), pl.DataFrame({
        "opportunity_id": ["W3"], "stage": ["Closed Won"], "amount": [3000.0], "created_at": [D(2024, 3, 11)],
        "close_date": [D(2024, 4, 10)], "type": ["new_business"], "probability": [None]})])
    period = Period.ending(D(2024, 4, 15))
    inputs = F.prepare(_frames(opportunities=deals), period)
    assert inputs.open_fraction[0] == 0.5  # 15 of April's 30 days lie after the 15th
    fc = F.project(inputs, _levers(inputs, sales_cycle_days=0.0))
    april = fc.row(0, named=True)
    assert april["status"] == "partial" and april["bookings_won"] == 3000.0
    # No lag: April's new deals book in April: 4 × 0.5 days share × win rate × deal size.
    assert april["bookings_from_new_pipeline"] == pytest.approx(4 * 0.5 * inputs.baseline.win_rate
                                                                * inputs.baseline.avg_deal_size)


def test_months_already_over_keep_actuals():
    """With as_of in the quarter's second month, the first month shows its wins and actual ARR."""
    inputs = F.prepare(_frames(), Period.ending(D(2024, 2, 29)))
    fc = F.project(inputs, inputs.baseline)
    jan = fc.row(0, named=True)
    assert jan["month"] == D(2024, 1, 1) and jan["status"] == "actual"
    assert jan["bookings_won"] == 1000.0 and jan["bookings"] == 1000.0  # W1 closed 31 Jan
    assert jan["arr"] == 30000.0  # 12 × (1000 + 1500) at 31 Jan


@pytest.mark.parametrize("lever, factor, bookings_move, arr_move", [
    ("win_rate", 1.2, 1, 1),
    ("avg_deal_size", 1.2, 1, 1),
    ("sales_cycle_days", 1.2, -1, -1),
    ("pipeline_created_per_month", 1.2, 1, 1),
    ("gross_churn_rate", 1.2, 0, -1),
    ("expansion_rate", 1.2, 0, 1),
    ("lead_response_sla", 1.5, 1, 1),
    ("mql_to_sql", 1.5, 1, 1),
])
def test_each_lever_moves_the_forecast(lever, factor, bookings_move, arr_move):
    """Raising a lever moves total bookings and year-end ARR the expected way."""
    inputs = F.prepare(_frames(leads=_leads()), PERIOD)
    base = _levers(inputs)
    moved = F.scaled(base, lever, factor)
    assert getattr(moved, lever) != getattr(base, lever)
    before, after = F.project(inputs, base), F.project(inputs, moved)
    d_bookings = after["bookings"].sum() - before["bookings"].sum()
    d_arr = after["arr"][-1] - before["arr"][-1]
    assert (d_bookings > 1e-9) - (d_bookings < -1e-9) == bookings_move
    assert (d_arr > 1e-9) - (d_arr < -1e-9) == arr_move


def test_lead_levers_baseline_and_effect():
    """Lead levers from the registry; inbound share and conversion by SLA from the leads."""
    inputs = F.prepare(_frames(leads=_leads()), PERIOD)
    assert inputs.baseline.lead_response_sla == 0.5  # a (2 min) and b (3 min) within 5 minutes of 4
    assert inputs.baseline.mql_to_sql == 0.25  # 1 of 4 MQLs reached SQL
    # O1 is the only deal (of 7 created in the window) a lead converted into.
    assert inputs.lead_effect.inbound_share == pytest.approx(1 / 7)
    assert inputs.lead_effect.converted_within_sla == 0.5  # a converted, b not
    assert inputs.lead_effect.converted_outside_sla == 0.0  # c and d not


def test_inbound_multiplier_hand_case():
    """Inbound creation scales with MQL→SQL and with conversion at the lever's SLA compliance."""
    effect = F.LeadEffect(inbound_share=0.5, converted_within_sla=0.4, converted_outside_sla=0.1)
    base = F.Levers(win_rate=0.5, avg_deal_size=1, sales_cycle_days=1, pipeline_created_per_month=1,
                    gross_churn_rate=0, expansion_rate=0, lead_response_sla=0.5, mql_to_sql=0.2)
    levers = base.model_copy(update={"lead_response_sla": 1.0, "mql_to_sql": 0.3})
    # mql factor 0.3 / 0.2 = 1.5; reach(0.5) = 0.1 + 0.5 × 0.3 = 0.25, reach(1.0) = 0.4 -> 1.6;
    # 1 − 0.5 + 0.5 × 1.5 × 1.6 = 1.7
    assert F.inbound_multiplier(effect, base, levers) == pytest.approx(1.7)
    assert F.inbound_multiplier(effect, base, base) == pytest.approx(1.0)
    # Fast answers converting no better than slow ones give no lift.
    flat = F.LeadEffect(inbound_share=0.5, converted_within_sla=0.1, converted_outside_sla=0.3)
    assert F.inbound_multiplier(flat, base, base.model_copy(update={"lead_response_sla": 1.0})) == 1.0


def test_win_rate_lever_scales_open_deal_odds_capped_at_one():
    """Doubling the win rate doubles each open deal's probability, never above 1."""
    inputs = F.prepare(_frames(), PERIOD)
    fc = F.project(inputs, _levers(inputs, win_rate=1.0))  # historical 0.5 -> odds × 2
    # O2: 0.8 × 2 -> capped 1 -> 5000; O1: 0.5 × 2 = 1 -> 10000
    assert fc["bookings_from_pipeline"].to_list()[:2] == [5000.0, 10000.0]


def test_sensitivity_rows_and_swings():
    """±10 % per lever: the swing is the difference of the two runs, churn lowers ARR when raised."""
    inputs = F.prepare(_frames(), PERIOD)
    sens = F.sensitivity_of(inputs, _levers(inputs)).to_dicts()
    by = {r["lever"]: r for r in sens}
    assert set(by) == {"win_rate", "avg_deal_size", "sales_cycle_days", "pipeline_created_per_month",
                       "gross_churn_rate", "expansion_rate"}  # no leads: no lead levers
    # New pipeline books 2000 + 10 × 4000 = 42 000 over the year; ±10 % creation -> ±4200.
    created = by["pipeline_created_per_month"]
    assert created["bookings_high"] - created["bookings_base"] == pytest.approx(4200)
    assert created["bookings_swing"] == pytest.approx(8400)
    churn = by["gross_churn_rate"]
    assert churn["arr_high"] < churn["arr_base"] < churn["arr_low"] and churn["bookings_swing"] == 0
    assert sens[0]["arr_swing"] == max(r["arr_swing"] for r in sens)


def test_forecast_on_empty_data_is_zero_with_gaps():
    """No data: a forecast of zeros and every missing lever named, never a crash."""
    inputs = F.prepare(empty_frames(), PERIOD)
    fc = F.project(inputs, inputs.baseline)
    assert fc.height == 12 and fc["bookings"].sum() == 0 and fc["arr"].sum() == 0
    assert {"win_rate", "avg_deal_size", "sales_cycle_days", "gross_churn_rate", "expansion_rate"} <= set(
        inputs.gaps)
    assert F.sensitivity_of(inputs, inputs.baseline)["bookings_swing"].sum() == 0


def test_slider_specs_cover_the_historical_value():
    """Each slider's range holds its historical value; rates stop at 100 %."""
    levers = F.Levers(win_rate=0.3, avg_deal_size=12000, sales_cycle_days=45, pipeline_created_per_month=20,
                      gross_churn_rate=0.01, expansion_rate=0.02, lead_response_sla=0.4, mql_to_sql=None)
    specs = {s.name: s for s in F.slider_specs(levers)}
    assert "mql_to_sql" not in specs
    for spec in specs.values():
        assert spec.min_value <= spec.value <= spec.max_value and spec.step > 0
    assert specs["win_rate"].max_value == 1.0 and specs["avg_deal_size"].max_value == 36000
    assert specs["gross_churn_rate"].max_value == 0.05  # 3 × 1 % is under the 5 % floor
    assert F.levers_from_values(levers, {"win_rate": 0.35, "nonsense": 1.0}).win_rate == 0.35


def test_known_at_rewinds_deals_subscriptions_and_leads():
    """A past day: later deals gone, later outcomes undone (stage from history), later ends unknown."""
    ts = dt.datetime
    deals = pl.DataFrame({
        "opportunity_id": ["A", "B", "C"], "stage": ["Closed Won", "Closed Lost", "Proposal"],
        "amount": [4000.0, 1000.0, 500.0], "created_at": [D(2024, 1, 1), D(2024, 1, 5), D(2024, 3, 1)],
        "close_date": [D(2024, 3, 10), D(2024, 1, 20), D(2024, 4, 1)], "probability": [1.0, 0.0, 0.5],
    })
    history = pl.DataFrame({
        "opportunity_id": ["A", "A", "A"], "stage": ["Prospecting", "Proposal", "Closed Won"],
        "changed_at": [ts(2024, 1, 1), ts(2024, 1, 20), ts(2024, 3, 10)],
        "close_date": [D(2024, 3, 31), D(2024, 2, 28), D(2024, 3, 10)],
    })
    subs = pl.DataFrame({"subscription_id": ["s1", "s2"], "account_id": ["x", "y"],
                         "start_date": [D(2023, 1, 1), D(2024, 2, 15)], "end_date": [D(2024, 3, 1), None],
                         "mrr": [100.0, 200.0]})
    leads = pl.DataFrame({"lead_id": ["l1"], "created_at": [ts(2024, 1, 2)], "sql_at": [ts(2024, 2, 20)]})
    then = F.known_at(frames_from_tables({"opportunities": deals, "stage_history": history, "subscriptions": subs,
                                          "leads": leads}), D(2024, 2, 1))
    opps = {r["opportunity_id"]: r for r in then.opportunities.to_dicts()}
    assert set(opps) == {"A", "B"}  # C was created in March
    assert opps["B"]["state"] == "lost"  # closed 20 Jan: already known
    a = opps["A"]  # won on 10 Mar: open on 1 Feb, at the Proposal stage entered 20 Jan
    assert (a["state"], a["stage_name"], a["close_date"], a["probability"]) == ("open", "Proposal",
                                                                                  D(2024, 2, 28), None)
    assert then.stage_history.height == 2
    assert then.subscriptions["subscription_id"].to_list() == ["s1"] and then.subscriptions["end_date"][0] is None
    assert then.leads["sql_at"][0] is None


def test_known_at_uses_snapshots_when_there_is_no_history():
    """Without stage history, the latest snapshot on or before the day gives the stage then."""
    deals = pl.DataFrame({"opportunity_id": ["A"], "stage": ["Closed Won"], "amount": [900.0],
                          "created_at": [D(2024, 1, 1)], "close_date": [D(2024, 3, 10)]})
    snaps = pl.DataFrame({"snapshot_date": [D(2024, 1, 7), D(2024, 1, 14), D(2024, 3, 11)],
                          "opportunity_id": ["A", "A", "A"], "stage": ["Prospecting", "Negotiation", "Closed Won"],
                          "amount": [800.0, 850.0, 900.0], "close_date": [D(2024, 4, 1), D(2024, 3, 15),
                                                                          D(2024, 3, 10)]})
    then = F.known_at(frames_from_tables({"opportunities": deals}, snapshots=snaps), D(2024, 2, 1))
    a = then.opportunities.row(0, named=True)
    assert (a["state"], a["stage_name"], a["amount"], a["close_date"]) == ("open", "Negotiation", 850.0,
                                                                           D(2024, 3, 15))


def _backtest_frames():
    ts = dt.datetime
    deals = pl.DataFrame({
        "opportunity_id": ["H1", "H2", "D1", "D2", "D3", "D4"],
        "stage": ["Closed Won", "Closed Lost", "Closed Won", "Closed Lost", "Closed Won", "Closed Won"],
        "amount": [1000.0, 1000.0, 4000.0, 2000.0, 500.0, 3000.0],
        "created_at": [D(2023, 1, 1), D(2023, 2, 1), D(2023, 11, 1), D(2023, 12, 1), D(2024, 1, 10),
                       D(2024, 3, 5)],
        "close_date": [D(2023, 7, 20), D(2023, 6, 1), D(2024, 2, 10), D(2024, 3, 25), D(2024, 3, 1),
                       D(2024, 5, 10)],
        "probability": [1.0, 0.0, 1.0, 0.0, 1.0, 1.0],
    })
    history = pl.DataFrame({
        "opportunity_id": ["D1", "D1", "D1", "D2", "D2", "D4", "D4"],
        "stage": ["Prospecting", "Proposal", "Closed Won", "Negotiation", "Closed Lost", "Qualification",
                  "Closed Won"],
        "changed_at": [ts(2023, 11, 1), ts(2023, 12, 15), ts(2024, 2, 10), ts(2023, 12, 1), ts(2024, 3, 25),
                       ts(2024, 3, 5), ts(2024, 5, 10)],
        "close_date": [D(2024, 3, 31), D(2024, 2, 15), D(2024, 2, 10), D(2024, 3, 20), D(2024, 3, 25),
                       D(2024, 5, 31), D(2024, 5, 10)],
    })
    return frames_from_tables({"opportunities": deals, "stage_history": history})


def test_backtest_on_a_known_history():
    """Each quarter forecast from the day before it began, with only what was known then."""
    bt = backtest.backtest(_backtest_frames(), Period.ending(D(2024, 6, 30)), quarters=2)
    q1, q2 = bt.to_dicts()
    # Q1 from 31 Dec 2023: D1 at Proposal (0.5) × 4000 closing 15 Feb + D2 at Negotiation (0.75) × 2000
    # closing 20 Mar = 3500; new pipeline lags 200 days (the only won cycle) -> lands after Q1.
    # Actual Q1: D1 4000 + D3 500 (created after the quarter began) = 4500.
    assert (q1["quarter_start"], q1["forecast_bookings"], q1["actual_bookings"]) == (D(2024, 1, 1), 3500.0, 4500.0)
    assert q1["bookings_from_new_pipeline"] == 0.0
    assert q1["bookings_error"] == -1000.0 and q1["abs_error_pct"] == pytest.approx(1000 / 4500)
    # Q2 from 31 Mar 2024: D4 at Qualification (0.2) × 3000 = 600; median won cycle then 101 days
    # (H1 200, D1 101, D3 51) -> April's new deals book in July and later. Actual: D4 3000.
    assert (q2["forecast_bookings"], q2["actual_bookings"], q2["bookings_error"]) == (600.0, 3000.0, -2400.0)
    assert q2["abs_error_pct"] == pytest.approx(0.8)
    assert backtest.mean_abs_pct_error(bt) == pytest.approx((1000 / 4500 + 0.8) / 2)
    assert backtest.accuracy_sentence(bt) == "On the last 2 quarters the forecast was off by 51.1 % on average."


def test_backtest_without_history_says_so():
    """Quarters with no closed deal before them get no forecast and the sentence says there is too little."""
    bt = backtest.backtest(empty_frames(), Period.ending(D(2024, 6, 30)), quarters=3)
    assert bt.height == 3 and bt["forecast_bookings"].null_count() == 3
    assert backtest.mean_abs_pct_error(bt) is None
    assert backtest.accuracy_sentence(bt).startswith("There is not enough history")


def test_past_quarters():
    """The last n quarters that ended on or before as_of, oldest first."""
    assert backtest.past_quarters(D(2024, 6, 30), 2) == [(D(2024, 1, 1), D(2024, 3, 31)),
                                                          (D(2024, 4, 1), D(2024, 6, 30))]
    assert backtest.past_quarters(D(2024, 6, 29), 1) == [(D(2024, 1, 1), D(2024, 3, 31))]
    assert backtest.past_quarters(D(2024, 5, 15), 1, fiscal_start_month=2) == [(D(2024, 2, 1), D(2024, 4, 30))]


def test_scenarios_save_list_compare_delete(tmp_path):
    """Scenarios round-trip through the file, bump the data version, overwrite by name and delete."""
    db = tmp_path / "s.duckdb"
    levers = F.Levers(win_rate=0.3, avg_deal_size=1000, sales_cycle_days=30, pipeline_created_per_month=5,
                      gross_churn_rate=0.01, expansion_rate=0.005)
    with store.connect(db):
        pass
    v0 = store.data_version(db)
    assert scenarios.save_scenario(db, "  Hire   SDRs ", levers) == "Hire SDRs"
    assert store.data_version(db) == v0 + 1
    scenarios.save_scenario(db, "Hire SDRs", levers.model_copy(update={"win_rate": 0.4}))
    scenarios.save_scenario(db, "Cut churn", levers)
    listed = scenarios.list_scenarios(db)
    assert sorted(listed["name"].to_list()) == ["Cut churn", "Hire SDRs"]
    assert scenarios.load_scenarios(db)["Hire SDRs"].win_rate == 0.4
    assert scenarios.delete_scenario(db, "Cut churn") is True
    assert scenarios.delete_scenario(db, "Cut churn") is False
    assert list(scenarios.load_scenarios(db)) == ["Hire SDRs"]
    with pytest.raises(UserError, match="name"):
        scenarios.save_scenario(db, "   ", levers)


def test_compare_scenarios_side_by_side():
    """One summary row and twelve monthly rows per scenario."""
    inputs = F.prepare(_frames(), PERIOD)
    summary, lines = F.compare(inputs, {"base": _levers(inputs), "more": _levers(inputs, win_rate=0.6)})
    assert summary["scenario"].to_list() == ["base", "more"] and lines.height == 24
    assert summary["total_bookings"][0] == pytest.approx(51000.0)
    assert summary["total_bookings"][1] > summary["total_bookings"][0]


def test_past_due_deals_count_at_their_measured_realization():
    """Deals past due 90 days ago won 1000 of 2750 weighted: today's past-due deals count at that share."""
    ts = dt.datetime
    deals = pl.DataFrame({
        "opportunity_id": ["P1", "P2"], "stage": ["Closed Won", "Negotiation"], "amount": [1000.0, 3000.0],
        "created_at": [D(2023, 11, 1), D(2023, 10, 1)], "close_date": [D(2024, 2, 10), D(2023, 12, 20)],
    })
    history = pl.DataFrame({"opportunity_id": ["P1", "P1"], "stage": ["Proposal", "Closed Won"],
                            "changed_at": [ts(2023, 11, 1), ts(2024, 2, 10)],
                            "close_date": [D(2023, 12, 15), D(2024, 2, 10)]})
    inputs = F.prepare(frames_from_tables({"opportunities": deals, "stage_history": history}), PERIOD)
    # On 2024-01-01 (90 days before as_of) both were past due: P1 at Proposal 0.5 × 1000 = 500,
    # P2 at Negotiation 0.75 × 3000 = 2250 -> 2750 weighted; only P1 (1000) was won since.
    assert inputs.past_due.deals == 2 and inputs.past_due.factor == pytest.approx(1000 / 2750)
    # P2 is still past due: 3000 × 0.75 × 1000 / 2750 = 818.18 in the first month.
    fc = F.project(inputs, inputs.baseline)
    assert fc["bookings_from_pipeline"][0] == pytest.approx(3000 * 0.75 * 1000 / 2750)
    assert inputs.pipeline["past_due"].to_list() == [True]


def test_known_at_with_deals_out_of_creation_order_ties_and_unseen_deals():
    """Deals listed out of creation order; a sighting tie goes to the snapshot; a deal only seen later loses its stage."""
    ts = dt.datetime
    deals = pl.DataFrame({
        "opportunity_id": ["Z", "A", "B", "C", "D"],
        "stage": ["Proposal", "Closed Won", "Closed Lost", "Proposal", "Negotiation"],
        "amount": [100.0, 4000.0, 1000.0, 900.0, 700.0],
        "created_at": [D(2024, 3, 1), D(2024, 1, 1), D(2024, 1, 5), D(2024, 1, 10), D(2024, 1, 15)],
        "close_date": [D(2024, 4, 1), D(2024, 3, 10), D(2024, 1, 20), D(2024, 4, 30), D(2024, 5, 31)],
        "probability": [0.5, 1.0, 0.0, 0.5, 0.6],
    })
    history = pl.DataFrame({
        "opportunity_id": ["A", "A", "X", "C", "A"],
        "stage": ["Prospecting", "Proposal", "Proposal", "Proposal", "Closed Won"],
        "changed_at": [ts(2024, 1, 1, 9), ts(2024, 1, 20), ts(2024, 1, 2), ts(2024, 2, 15), None],
        "close_date": [D(2024, 3, 31), D(2024, 2, 28), D(2024, 3, 1), D(2024, 4, 30), D(2024, 3, 10)],
    })
    snaps = pl.DataFrame({"snapshot_date": [D(2024, 1, 20)], "opportunity_id": ["A"], "stage": ["Negotiation"],
                          "amount": [3500.0], "close_date": [D(2024, 2, 25)]})
    then = F.known_at(frames_from_tables({"opportunities": deals, "stage_history": history}, snapshots=snaps),
                      D(2024, 2, 1)).opportunities
    # Z was created in March; the others keep their table order. X is no deal; A's undated sighting never counts.
    assert then["opportunity_id"].to_list() == ["A", "B", "C", "D"]
    rows = {r["opportunity_id"]: r for r in then.to_dicts()}
    # A: Proposal (history) and Negotiation (snapshot) both at 20 Jan 00:00 -> the snapshot, listed after, wins.
    assert (rows["A"]["state"], rows["A"]["stage_name"], rows["A"]["amount"], rows["A"]["close_date"],
            rows["A"]["probability"]) == ("open", "Negotiation", 3500.0, D(2024, 2, 25), None)
    assert (rows["B"]["state"], rows["B"]["amount"]) == ("lost", 1000.0)  # closed 20 Jan: as it is
    # C is seen only on 15 Feb: open then, at no known stage, its own amount and close date, no probability.
    assert (rows["C"]["state"], rows["C"]["stage_name"], rows["C"]["amount"], rows["C"]["probability"]) == (
        "open", None, 900.0, None)
    # D was never seen and is still open: its row as it is.
    assert (rows["D"]["stage_name"], rows["D"]["probability"]) == ("Negotiation", 0.6)


def test_known_deals_are_the_forecast_columns_of_known_at():
    """known_deals rebuilds the deal columns a forecast reads exactly as known_at does, the others left out."""
    ts = dt.datetime
    deals = pl.DataFrame({
        "opportunity_id": ["A", "B", "C"], "stage": ["Closed Won", "Closed Lost", "Proposal"],
        "amount": [4000.0, 1000.0, 900.0], "type": ["new_business", None, "expansion"],
        "created_at": [D(2024, 1, 1), D(2024, 1, 5), D(2024, 3, 1)],
        "close_date": [D(2024, 3, 10), D(2024, 1, 20), D(2024, 4, 30)], "probability": [1.0, 0.0, 0.5],
    })
    history = pl.DataFrame({"opportunity_id": ["A", "A"], "stage": ["Prospecting", "Negotiation"],
                            "changed_at": [ts(2024, 1, 1, 9), ts(2024, 1, 20)], "amount": [3000.0, 3500.0]})
    frames = frames_from_tables({"opportunities": deals, "stage_history": history})
    lean = F.known_deals(frames, D(2024, 2, 1)).opportunities
    full = F.known_at(frames, D(2024, 2, 1)).opportunities
    # C was created later; A is back in Negotiation at 3,500 (open, no probability); B closed on 20 Jan.
    assert lean.columns == [c for c in F._FORECAST_DEAL_COLUMNS if c in full.columns]
    assert lean.equals(full.select(lean.columns))
    assert lean.select("opportunity_id", "state", "amount", "probability").rows() == [
        ("A", "open", 3500.0, None), ("B", "lost", 1000.0, 0.0)]


def test_known_at_empties_lead_times_after_the_day_only():
    """A lead time late on the day itself is known; one at midnight after it is not; links to later deals go."""
    ts = dt.datetime
    leads = pl.DataFrame({"lead_id": ["l1", "l2"], "created_at": [ts(2024, 1, 2), ts(2024, 1, 3)],
                          "sql_at": [ts(2024, 2, 1, 23, 59), ts(2024, 2, 2)], "opportunity_id": ["A", "Z"]})
    deals = pl.DataFrame({"opportunity_id": ["A", "Z"], "stage": ["Proposal", "Proposal"], "amount": [1.0, 1.0],
                          "created_at": [D(2024, 1, 5), D(2024, 2, 5)], "close_date": [D(2024, 5, 1), D(2024, 5, 1)]})
    then = F.known_at(frames_from_tables({"opportunities": deals, "leads": leads}), D(2024, 2, 1)).leads
    assert then["sql_at"].to_list() == [ts(2024, 2, 1, 23, 59), None]
    assert then["opportunity_id"].to_list() == ["A", None]  # Z was created on 5 Feb


def test_known_at_the_latest_day_shares_the_tables():
    """Nothing happened after the day: the deals, subscriptions and leads are the tables themselves."""
    frames = _frames(leads=_leads())
    now = F.known_at(frames, D(2025, 12, 31))
    assert now.opportunities is frames.opportunities
    assert now.subscriptions is frames.subscriptions and now.leads is frames.leads


def test_prepare_bookings_gives_the_same_bookings_without_arr():
    """The backtest's inputs: the same bookings as the full forecast at the baseline, no ARR nor lead levers."""
    frames = _frames(leads=_leads())
    full, lean = F.prepare(frames, PERIOD), F.prepare_bookings(frames, PERIOD)
    cols = ["bookings_won", "bookings_from_pipeline", "bookings_from_new_pipeline", "bookings"]
    assert F.project(lean, lean.baseline).select(cols).equals(F.project(full, full.baseline).select(cols))
    # Lead O1 links to one of the 7 deals created in the window: inbound share 1/7 in both.
    assert lean.lead_effect.inbound_share == full.lead_effect.inbound_share == pytest.approx(1 / 7)
    assert (lean.baseline.expansion_rate, lean.baseline.gross_churn_rate, lean.arr_start) == (0.0, 0.0, 0.0)
    assert lean.baseline.lead_response_sla is None and full.baseline.lead_response_sla is not None


def test_forecast_after_moving_the_win_rate_and_back():
    """Open-deal sums kept per odds: a win-rate move and its return give each its own numbers."""
    inputs = F.prepare(_frames(), PERIOD)
    first = F.project(inputs, _levers(inputs))
    # Win rate 0.5 -> 1.0 doubles the odds, capped at 1: O2 5000 × min(0.8 × 2, 1) = 5000 in April,
    # O1 10000 × min(0.5 × 2, 1) = 10000 in May.
    doubled = F.project(inputs, _levers(inputs, win_rate=1.0))
    assert doubled["bookings_from_pipeline"].to_list()[:2] == [5000.0, 10000.0]
    # Another lever moved: the open deals give the same 4000 and 5000 as at first.
    cheaper = F.project(inputs, _levers(inputs, avg_deal_size=1000.0))
    assert cheaper["bookings_from_pipeline"].to_list()[:2] == [4000.0, 5000.0]
    assert F.project(inputs, _levers(inputs)).equals(first)


def test_deal_frames_narrow_the_deals_and_keep_their_rows():
    """The forecast's deal selections read a few columns; the rows and their order are the table's."""
    frames = _frames()
    narrow = F.deal_frames(frames).opportunities
    assert set(narrow.columns) == {"state", "amount", "close_date", "created_at", "probability",
                                   "stage_probability", "opportunity_id", "type"}
    assert narrow["opportunity_id"].to_list() == frames.opportunities["opportunity_id"].to_list()
    assert F.deal_frames(frames).opportunities is narrow  # narrowed once per deals table


def test_saved_scenarios_are_read_again_when_the_file_changes(tmp_path):
    """A scenario written by another process shows up; the list is not read again while the file is unchanged."""
    db = tmp_path / "s.duckdb"
    levers = F.Levers(win_rate=0.3, avg_deal_size=1000, sales_cycle_days=30, pipeline_created_per_month=5,
                      gross_churn_rate=0.01, expansion_rate=0.005)
    scenarios.save_scenario(db, "Mine", levers)
    assert list(scenarios.load_scenarios(db)) == ["Mine"]
    with store.connect(db) as con:  # as another process would: straight into the file
        con.execute("INSERT INTO _scenarios VALUES ('Theirs', ?, TIMESTAMP '2030-01-01')", [levers.model_dump_json()])
    assert list(scenarios.load_scenarios(db)) == ["Mine", "Theirs"]
    loaded = scenarios.load_scenarios(db)
    loaded.pop("Mine")  # a caller's copy: changing it changes nothing kept
    assert list(scenarios.load_scenarios(db)) == ["Mine", "Theirs"]


@pytest.mark.parametrize(("ids", "link", "share"), [
    # One of two deals created in the window has a lead: 1/2.
    (["A", "B", "C"], "A", 0.5),
    # The lead links to no deal: a link all the same, 0 of 2 deals inbound.
    (["A", "B", "C"], "Q", 0.0),
    # The lead's deal id is also the id of a deal created after as_of: that link was not known then, so no
    # lead links to a deal and every deal counts as inbound (1).
    (["A", "B", "A"], "A", 1.0),
])
def test_inbound_share_as_known_then(ids, link, share):
    """The backtest's inbound share matches the full forecast's, links to deals created later left out."""
    deals = pl.DataFrame({"opportunity_id": ids, "stage": ["Proposal"] * 3, "amount": [1.0] * 3,
                          "created_at": [D(2024, 1, 10), D(2024, 2, 1), D(2024, 5, 1)],
                          "close_date": [D(2024, 6, 1)] * 3})
    leads = pl.DataFrame({"lead_id": ["l1"], "created_at": [dt.datetime(2024, 1, 5)], "opportunity_id": [link]})
    frames = frames_from_tables({"opportunities": deals, "leads": leads})
    lean, full = F.prepare_bookings(frames, PERIOD), F.prepare(frames, PERIOD)
    assert lean.lead_effect.inbound_share == full.lead_effect.inbound_share == share


def _groups_and_days(part: F._Part) -> list[tuple[int, dt.date]]:
    """A timeline part's keys read back: key = group × 2^32 + (days since 1970 + 2^31)."""
    return [(k // 2**32, D(1970, 1, 1) + dt.timedelta(days=k % 2**32 - 2**31)) for k in part.key.to_list()]


def test_timeline_groups_each_source_by_id_order_with_unnamed_and_stray_sightings():
    """Each source's sightings group by id (ids out of order, a deal's rows apart), then time; a sighting of no
    deal's id (none, or an unknown one) is a group of its own, first; the latest day is over both sources."""
    ts = dt.datetime
    deals = pl.DataFrame({"opportunity_id": ["C", "A", "B", "Q"], "stage": ["Proposal"] * 4})
    history = pl.DataFrame({  # sightings 0-5
        "opportunity_id": ["C", "C", "A", None, "X", "A"],
        "stage": ["Proposal"] * 6,
        "changed_at": [ts(2024, 1, 3, 10), ts(2024, 1, 2, 9), ts(2024, 1, 5), ts(2024, 1, 1), ts(2024, 1, 4), None],
    })
    snaps = pl.DataFrame({  # sightings 6-9
        "snapshot_date": [D(2024, 1, 5), D(2024, 1, 2), D(2023, 12, 31), D(2024, 1, 1)],
        "opportunity_id": ["A", "B", None, "AA"], "stage": ["Proposal"] * 4,
    })
    timeline = F._timeline(frames_from_tables({"opportunities": deals, "stage_history": history}, snapshots=snaps))
    hist, snap = timeline.parts
    # Deal ids in order A, B, C, Q. History: no deal's first, by time: 3 (1 Jan, no id), 4 (4 Jan, X); then A: 2
    # (5 is undated, left out); C: 1 (2 Jan) before 0 (3 Jan).
    assert hist.row.to_list() == [3, 4, 2, 1, 0]
    assert _groups_and_days(hist) == [(0, D(2024, 1, 1)), (1, D(2024, 1, 4)), (2, D(2024, 1, 5)),
                                      (3, D(2024, 1, 2)), (3, D(2024, 1, 3))]
    # Deals C, A, B, Q: history groups 3, 2, none, none.
    assert hist.group.to_list() == [3, 2, None, None]
    # Snapshots: no deal's first, by time: 8 (31 Dec, no id), 9 (1 Jan, AA); then A: 6; B: 7.
    assert snap.row.to_list() == [8, 9, 6, 7]
    assert [g for g, _ in _groups_and_days(snap)] == [0, 1, 2, 3]
    assert snap.group.to_list() == [None, 2, 3, None]
    # Latest days of C, A, B, Q over both: 3 Jan (history), 5 Jan (both), 2 Jan (snapshot), never.
    assert timeline.last_day.to_list() == [D(2024, 1, 3), D(2024, 1, 5), D(2024, 1, 2), None]


def test_timeline_of_a_history_stored_by_deal_then_time_keeps_its_order():
    """A history already by deal, then time (ties included) is grouped in table order, unsorted."""
    ts = dt.datetime
    deals = pl.DataFrame({"opportunity_id": ["A", "B"], "stage": ["Proposal"] * 2})
    history = pl.DataFrame({"opportunity_id": ["A", "A", "A", "B"], "stage": ["Proposal"] * 4,
                            "changed_at": [ts(2024, 1, 1), ts(2024, 1, 2), ts(2024, 1, 2), ts(2024, 1, 1)]})
    hist, = F._timeline(frames_from_tables({"opportunities": deals, "stage_history": history})).parts
    # Rows 0-2 are A's (the tie 1 before 2, as listed), 3 is B's.
    assert hist.row.to_list() == [0, 1, 2, 3]
    assert [g for g, _ in _groups_and_days(hist)] == [0, 0, 0, 1]
    assert hist.group.to_list() == [0, 1]


def test_known_at_takes_a_later_history_row_over_a_snapshot_of_the_same_day():
    """A stage change at 10:00 is later than that day's snapshot (00:00): the deal is at the changed stage."""
    ts = dt.datetime
    deals = pl.DataFrame({"opportunity_id": ["A"], "stage": ["Closed Won"], "amount": [100.0],
                          "created_at": [D(2024, 1, 1)], "close_date": [D(2024, 3, 1)]})
    history = pl.DataFrame({"opportunity_id": ["A", "A"], "stage": ["Prospecting", "Proposal"],
                            "changed_at": [ts(2024, 1, 1, 9), ts(2024, 1, 20, 10)], "amount": [50.0, 80.0]})
    snaps = pl.DataFrame({"snapshot_date": [D(2024, 1, 20)], "opportunity_id": ["A"], "stage": ["Negotiation"],
                          "amount": [70.0]})
    frames = frames_from_tables({"opportunities": deals, "stage_history": history}, snapshots=snaps)
    # On 20 Jan: the snapshot (00:00, Negotiation) then the change at 10:00 (Proposal, 80): Proposal.
    # On 19 Jan: the first change only (Prospecting, 50).
    late = F.known_at(frames, D(2024, 1, 20)).opportunities.row(0, named=True)
    early = F.known_at(frames, D(2024, 1, 19)).opportunities.row(0, named=True)
    assert (late["stage_name"], late["amount"]) == ("Proposal", 80.0)
    assert (early["stage_name"], early["amount"]) == ("Prospecting", 50.0)


@pytest.mark.parametrize(("ids", "distinct"), [
    (["A", "B", "C"], True),
    (["A", None, "B"], True),  # one deal without an id: no other shares it
    (["A", None, None], False),  # two without an id count as the same (as is_duplicated has it)
    (["B", "A", "B"], False),
])
def test_distinct_ids(ids, distinct):
    """Whether every deal has an id of its own, one missing id included."""
    frames = frames_from_tables({"opportunities": pl.DataFrame({"opportunity_id": ids, "stage": ["Proposal"] * 3})})
    assert F._distinct_ids(frames) is distinct
