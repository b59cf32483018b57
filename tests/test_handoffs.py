"""The six handoffs of the leakage map on tables built for each, worked out by hand; the Sankey conserves flows."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops.frames import empty_frames, frames_from_tables
from revops.handoffs import (
    all_handoffs,
    close_to_onboard,
    expand_to_renew,
    handoffs_table,
    lead_to_opportunity,
    leaked_records,
    onboard_to_value,
    opportunity_to_close,
    sankey_flows,
    value_to_expand,
)
from revops.period import Period

D = dt.date
T = dt.datetime
# Window Jan-Jun 2024 seen from 30 Jun; default SLAs (5 min, 48 h, 30 days, 90 days) and stall limit (30 days).
PERIOD = Period(D(2024, 6, 30), D(2024, 1, 1), D(2024, 6, 30))


def h1_tables() -> dict[str, pl.DataFrame]:
    """MQLs: M1 converted, answered in 3 min; M2 unanswered, qualified 20 Jun (in progress);
    M3 answered in 10 min, cold since 1 Mar; M4 disqualified, answered in 2 min; M6 reached SQL
    only, its opportunity O9 created 10 days later, answered in 4 min. M5 never qualified; M7 before the window.
    Deals closed in the window: W1 won 1000, W2 won 3000, L1 lost.
    """
    c = [T(2024, 1, 1), T(2024, 6, 1), T(2024, 2, 1), T(2024, 4, 1), T(2024, 1, 1), T(2024, 1, 20), T(2023, 12, 1)]
    leads = pl.DataFrame({
        "lead_id": ["M1", "M2", "M3", "M4", "M5", "M6", "M7"],
        "created_at": c,
        "first_response_at": [c[0] + dt.timedelta(minutes=3), None, c[2] + dt.timedelta(minutes=10),
                              c[3] + dt.timedelta(minutes=2), None, c[5] + dt.timedelta(minutes=4), None],
        "mql_at": [T(2024, 1, 2), T(2024, 6, 20), T(2024, 3, 1), T(2024, 5, 1), None, None, T(2023, 12, 2)],
        "sql_at": [None, None, None, None, None, T(2024, 2, 1), None],
        "converted_at": [T(2024, 1, 10), None, None, None, None, None, None],
        "opportunity_id": ["O1", None, None, None, None, "O9", None],
        "status": ["converted", "working", "working", "Disqualified", "open", "converted", "open"],
    })
    opps = pl.DataFrame({
        "opportunity_id": ["O1", "O9", "W1", "W2", "L1"],
        "stage": ["Prospecting", "Prospecting", "Closed Won", "Closed Won", "Closed Lost"],
        "amount": [None, None, 1000.0, 3000.0, 700.0],
        "created_at": [D(2024, 1, 10), D(2024, 2, 11), D(2023, 11, 1), D(2023, 11, 1), D(2023, 11, 1)],
        "close_date": [D(2024, 9, 1), D(2024, 9, 1), D(2024, 2, 1), D(2024, 3, 1), D(2024, 4, 1)],
    })
    return {"leads": leads, "opportunities": opps}


def test_handoff_1_lead_to_opportunity():
    """Lead → Opportunity: 5 MQLs, 2 passed, 2 leaked (cold, disqualified), 1 in progress; SLA 3/5."""
    h = lead_to_opportunity(frames_from_tables(h1_tables()), PERIOD)
    assert (h.entered, h.passed, h.leaked, h.in_progress) == (5, 2, 2, 1)
    assert h.leak_rate == pytest.approx(2 / 4)  # decided: 2 passed + 2 leaked
    assert h.sla_compliance == pytest.approx(3 / 5)  # M1, M4, M6 within 5 minutes
    # M1 2 Jan -> 10 Jan = 192 h; M6 SQL 1 Feb -> O9 created 11 Feb = 240 h; median 216 h.
    assert h.median_hours == pytest.approx(216)
    # win rate 2/3 × average won (1000 + 3000) / 2 = 1333.33 per MQL; 2 leaked.
    assert h.money_at_stake == pytest.approx(2 * 2 / 3 * 2000)
    assert h.team == "Sales" and (h.from_team, h.to_team) == ("Marketing", "Sales")
    leaks = h.leaks()
    # M3 and M4 leaked; M2 is in progress but was never answered (an SLA breach).
    assert sorted(leaks["lead_id"].to_list()) == ["M2", "M3", "M4"]
    assert "never answered" in leaks.filter(pl.col("lead_id") == "M2")["issue"].item()


def h2_tables() -> dict[str, pl.DataFrame]:
    """Deals created in the window: D1 won in 30 days, D6 won in 40; D2 lost (500); D3 open, last change
    1 May (stalled, 200); D4 open, moved 15 Jun; D5 open, created 10 Jun, no history. D7 before the window."""
    opps = pl.DataFrame({
        "opportunity_id": ["D1", "D2", "D3", "D4", "D5", "D6", "D7"],
        "stage": ["Closed Won", "Closed Lost", "Qualification", "Proposal", "Prospecting", "Closed Won", "Proposal"],
        "amount": [100.0, 500.0, 200.0, 300.0, 400.0, 600.0, 700.0],
        "lost_reason": [None, "price", None, None, None, None, None],
        "created_at": [D(2024, 1, 1), D(2024, 1, 5), D(2024, 3, 1), D(2024, 4, 1), D(2024, 6, 10), D(2024, 2, 1),
                       D(2023, 6, 1)],
        "close_date": [D(2024, 1, 31), D(2024, 2, 1), D(2024, 8, 1), D(2024, 8, 1), D(2024, 8, 1), D(2024, 3, 12),
                       D(2024, 8, 1)],
    })
    hist = pl.DataFrame({"opportunity_id": ["D3", "D4"], "stage": ["Qualification", "Proposal"],
                         "changed_at": [T(2024, 5, 1), T(2024, 6, 15)]})
    return {"opportunities": opps, "stage_history": hist}


def test_handoff_2_opportunity_to_close():
    """Opportunity → Close: 6 deals, 2 won, 2 leaked (lost D2, stalled D3), 2 in progress; money 700."""
    h = opportunity_to_close(frames_from_tables(h2_tables()), PERIOD)
    assert (h.entered, h.passed, h.leaked, h.in_progress) == (6, 2, 2, 2)
    assert h.leak_rate == pytest.approx(0.5)
    # open deals D3 (60 days idle), D4 (15), D5 (20): 2 of 3 moved within 30 days
    assert h.sla_compliance == pytest.approx(2 / 3)
    # D1 30 days = 720 h, D6 40 days = 960 h -> median 840 h
    assert h.median_hours == pytest.approx(840)
    assert h.money_at_stake == pytest.approx(500 + 200)
    leaks = h.leaks()
    assert leaks["opportunity_id"].to_list() == ["D2", "D3"]  # money first
    assert leaks["issue"].to_list() == ["lost: price", "stalled: no stage change for 60 days"]


def h3_tables() -> dict[str, pl.DataFrame]:
    """Customers signed in the window: C1 kicked off in 24 h, C2 in 96 h; C3 (won_at empty, first won deal
    closed 1 Mar, 5000, no subscription) never kicked off; C4 signed on as_of (SLA still running);
    C5 no kickoff recorded but reached first value. C6 signed in 2023."""
    life = pl.DataFrame({
        "account_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
        "won_at": [T(2024, 1, 1, 9), T(2024, 2, 1), None, T(2024, 6, 30, 10), T(2024, 3, 1), T(2023, 3, 1)],
        "kickoff_at": [T(2024, 1, 2, 9), T(2024, 2, 5), None, None, None, None],
        "first_value_at": [None, None, None, None, T(2024, 4, 1), None],
    })
    opps = pl.DataFrame({"opportunity_id": ["X3"], "account_id": ["C3"], "stage": ["Closed Won"],
                         "amount": [5000.0], "close_date": [D(2024, 3, 1)], "created_at": [D(2024, 1, 1)]})
    return {"lifecycle": life, "opportunities": opps}


def test_handoff_3_close_to_onboard():
    """Close → Onboard: 5 signed, 3 kicked off, 1 leaked (C3), 1 in progress (C4); SLA 1/5; money 5000."""
    h = close_to_onboard(frames_from_tables(h3_tables()), PERIOD)
    assert (h.entered, h.passed, h.leaked, h.in_progress) == (5, 3, 1, 1)
    assert h.leak_rate == pytest.approx(1 / 4)
    assert h.sla_compliance == pytest.approx(1 / 5)  # only C1 within 48 h; C5's kickoff is not recorded
    assert h.median_hours == pytest.approx((24 + 96) / 2)
    # C3 has no subscription: its value is its won deal's amount.
    assert h.money_at_stake == pytest.approx(5000)
    assert h.team == "Customer success"
    leaks = h.leaks()
    assert set(leaks["account_id"].to_list()) == {"C2", "C3", "C4", "C5"}  # C3 leaked, the others breached
    assert leaks.filter(pl.col("account_id") == "C3")["issue"].item() == "no kickoff"


def h4_tables() -> dict[str, pl.DataFrame]:
    """Kicked-off customers: V1 value in 19 days, V2 in 60; V3 none after 30 days (ARR 600);
    V4 signed 20 Jun (still within 30 days); V5 never kicked off (not in this handoff)."""
    life = pl.DataFrame({
        "account_id": ["V1", "V2", "V3", "V4", "V5"],
        "won_at": [T(2024, 1, 1), T(2024, 2, 1), T(2024, 3, 1), T(2024, 6, 20), T(2024, 3, 1)],
        "kickoff_at": [T(2024, 1, 2), T(2024, 2, 2), T(2024, 3, 2), T(2024, 6, 21), None],
        "first_value_at": [T(2024, 1, 20), T(2024, 4, 1), None, None, None],
    })
    subs = pl.DataFrame({"subscription_id": ["s3"], "account_id": ["V3"], "start_date": [D(2024, 3, 1)],
                         "mrr": [50.0]})
    return {"lifecycle": life, "subscriptions": subs}


def test_handoff_4_onboard_to_value():
    """Onboard → Value: 4 kicked off, 2 reached value, 1 leaked (V3), 1 in progress (V4); SLA 1/4."""
    h = onboard_to_value(frames_from_tables(h4_tables()), PERIOD)
    assert (h.entered, h.passed, h.leaked, h.in_progress) == (4, 2, 1, 1)
    assert h.leak_rate == pytest.approx(1 / 3)
    assert h.sla_compliance == pytest.approx(1 / 4)  # V1 (19 days); V2 took 60
    # kickoff -> value: V1 2 Jan -> 20 Jan = 432 h, V2 2 Feb -> 1 Apr = 59 days = 1416 h; median 924 h.
    assert h.median_hours == pytest.approx(924)
    assert h.money_at_stake == pytest.approx(12 * 50)


def h5_tables() -> dict[str, pl.DataFrame]:
    """First value Jan-Jun 2023 (12 months before the window): X1 expands at the end of May 2023;
    X2 never; X3 wins an expansion deal 1 Sep 2023; X5 expands only in May 2024 (after 12 months).
    X4 reached value in Dec 2022 (outside the cohort)."""
    life = pl.DataFrame({
        "account_id": ["X1", "X2", "X3", "X4", "X5"],
        "first_value_at": [T(2023, 1, 15), T(2023, 2, 15), T(2023, 3, 15), T(2022, 12, 1), T(2023, 4, 1)],
    })
    subs = pl.DataFrame({
        "subscription_id": ["a", "b", "c", "d", "e", "f"],
        "account_id": ["X1", "X1", "X2", "X3", "X5", "X5"],
        "start_date": [D(2022, 12, 1), D(2023, 5, 10), D(2022, 12, 1), D(2022, 12, 1), D(2023, 1, 1),
                       D(2024, 5, 10)],
        "mrr": [100.0, 50.0, 100.0, 80.0, 100.0, 20.0],
    })
    opps = pl.DataFrame({"opportunity_id": ["E3"], "account_id": ["X3"], "stage": ["Closed Won"],
                         "type": ["expansion"], "amount": [900.0], "close_date": [D(2023, 9, 1)]})
    return {"lifecycle": life, "subscriptions": subs, "opportunities": opps}


def test_handoff_5_value_to_expand():
    """Value → Expand: 4 customers, X1 and X3 expanded within 12 months, X2 and X5 leaked; no SLA."""
    h = value_to_expand(frames_from_tables(h5_tables()), PERIOD)
    assert (h.entered, h.passed, h.leaked, h.in_progress) == (4, 2, 2, 0)
    assert h.leak_rate == pytest.approx(0.5)
    assert h.sla_compliance is None and "No SLA" in h.sla_reason
    # X1 15 Jan -> 31 May 2023 = 136 days (3264 h); X3 15 Mar -> 1 Sep = 170 days (4080 h); median 3672 h.
    assert h.median_hours == pytest.approx(3672)
    # ARR at as_of: X2 12 × 100 = 1200, X5 12 × 120 = 1440
    assert h.money_at_stake == pytest.approx(2640)
    assert sorted(h.leaks()["account_id"].to_list()) == ["X2", "X5"]


def h6_tables() -> dict[str, pl.DataFrame]:
    """Renewals due in the window: R1 31 Mar (outreach 121 days before, renewed), R6 29 Feb (120 days,
    renewed), R2 30 Apr (outreach 46 days before, churned: billed to 29 Apr at 200), R3 31 May (no outreach,
    churned: billed to 31 May at 300). R4 renews on as_of (not due yet), R5 in 2023.
    R7 already renewed: its next date is 15 Mar 2025, so 15 Mar 2024 was due (billing since 2023, still billing).
    R8's next date 1 Feb 2025 infers 1 Feb 2024, but it only started billing in June 2024: no renewal then.
    """
    life = pl.DataFrame({
        "account_id": ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8"],
        "renewal_date": [D(2024, 3, 31), D(2024, 4, 30), D(2024, 5, 31), D(2024, 6, 30), D(2023, 12, 31),
                         D(2024, 2, 29), D(2025, 3, 15), D(2025, 2, 1)],
        "renewal_outreach_at": [T(2023, 12, 1), T(2024, 3, 15), None, None, None, T(2023, 11, 1), T(2024, 12, 1),
                                None],
    })
    subs = pl.DataFrame({
        "subscription_id": ["r1", "r2", "r3", "r6", "r7", "r8"],
        "account_id": ["R1", "R2", "R3", "R6", "R7", "R8"],
        "start_date": [D(2023, 1, 1)] * 5 + [D(2024, 6, 1)],
        "end_date": [None, D(2024, 4, 30), D(2024, 6, 1), None, None, None],
        "mrr": [100.0, 200.0, 300.0, 400.0, 500.0, 600.0],
    })
    return {"lifecycle": life, "subscriptions": subs}


def test_handoff_6_expand_to_renew():
    """Expand → Renew: 5 renewals due (R7 inferred), 3 renewed, 2 churned (ARR 2400 + 3600); outreach SLA 2/4."""
    h = expand_to_renew(frames_from_tables(h6_tables()), PERIOD)
    assert (h.entered, h.passed, h.leaked, h.in_progress) == (5, 3, 2, 0)
    assert h.leak_rate == pytest.approx(2 / 5)
    # SLA over the 4 stated dates: R1 121 and R6 120 days ahead; R2 46; R3 none. R7's outreach is for 2025.
    assert h.sla_compliance == pytest.approx(2 / 4)
    assert h.median_hours == pytest.approx(120 * 24)  # median of 121, 46, 120 days
    assert h.money_at_stake == pytest.approx(12 * 200 + 12 * 300)
    leaks = h.leaks()
    assert leaks["account_id"].to_list() == ["R3", "R2"]
    assert leaks["issue"].to_list() == ["churned at renewal; no renewal outreach",
                                        "churned at renewal; outreach only 46 days before"]
    r7 = h.records.filter(pl.col("account_id") == "R7").row(0, named=True)
    assert (r7["renewal_date"], r7["stated"], r7["outcome"], r7["sla_met"]) == (D(2024, 3, 15), False, "passed", None)


def test_renewals_without_subscriptions_are_undecided():
    """Without subscriptions renewals cannot be judged: all in progress, no leak rate, no money, with reasons."""
    tables = h6_tables()
    del tables["subscriptions"]
    h = expand_to_renew(frames_from_tables(tables), PERIOD)
    # Without billing data the inferred anniversaries (R7, R8) cannot be checked either: only the 4 stated dates.
    assert (h.entered, h.passed, h.leaked, h.in_progress) == (4, 0, 0, 4)
    assert h.leak_rate is None and "passed or leaked yet" in h.leak_reason
    assert h.money_at_stake is None and "No subscriptions" in h.money_reason


def test_empty_data_guards_every_ratio():
    """No data: six rows, every count 0, and leak rate and SLA compliance empty with a reason (never 0)."""
    t = handoffs_table(empty_frames(), PERIOD)
    assert t.height == 6
    assert t["entered"].to_list() == [0] * 6
    assert t["leak_rate"].null_count() == 6 and t["leak_reason"].null_count() == 0
    assert t["sla_compliance"].null_count() == 6 and t["sla_reason"].null_count() == 0
    assert t["money_at_stake"][0] is None and t["money_reason"][0] is not None  # no closed deals to value an MQL


def test_leaked_records_by_key():
    """leaked_records picks one handoff by key and rejects an unknown key."""
    frames = frames_from_tables(h2_tables())
    assert leaked_records(frames, PERIOD, "opportunity_to_close")["opportunity_id"].to_list() == ["D2", "D3"]
    with pytest.raises(ValueError, match="unknown handoff"):
        leaked_records(frames, PERIOD, "nope")


def combined_frames():
    """Every handoff's table in one company (ids never collide)."""
    parts = [h1_tables(), h2_tables(), h3_tables(), h4_tables(), h5_tables(), h6_tables()]
    names = {n for p in parts for n in p}
    return frames_from_tables({n: pl.concat([p[n] for p in parts if n in p], how="diagonal_relaxed")
                               for n in names})


def assert_conserves(nodes: pl.DataFrame, links: pl.DataFrame) -> None:
    """Every node with inflow and outflow passes on exactly what it receives; sources feed exactly the sinks."""
    inflow = links.group_by(pl.col("target").alias("id")).agg(inflow=pl.col("value").sum())
    outflow = links.group_by(pl.col("source").alias("id")).agg(outflow=pl.col("value").sum())
    flows = nodes.join(inflow, on="id", how="left").join(outflow, on="id", how="left").fill_null(0)
    through = flows.filter((pl.col("inflow") > 0) & (pl.col("outflow") > 0))
    assert (through["inflow"] == through["outflow"]).all(), through
    sources = flows.filter(pl.col("inflow") == 0)["outflow"].sum()
    sinks = flows.filter(pl.col("outflow") == 0)["inflow"].sum()
    assert sources == sinks
    # Every stage after the leads is passed through (nothing dead-ends at a stage except the last).
    assert flows.filter((pl.col("kind") == "stage") & (pl.col("inflow") > 0))["outflow"].min() > 0


def test_sankey_flows_conserve():
    """Sankey on a company with every handoff: flows conserve and each handoff's leak is a branch of its size."""
    frames = combined_frames()
    hs = all_handoffs(frames, PERIOD)
    nodes, links = sankey_flows(frames, PERIOD, hs)
    assert_conserves(nodes, links)
    value = dict(zip(nodes["label"].to_list(), nodes["value"].to_list()))
    assert value["Leaked: lost or stalled"] == hs[1].leaked
    assert value["Leaked: churned"] == hs[5].leaked == 2
    # Leads created in the window: M1-M6 (6); MQLs among them: 5.
    assert value["Leads"] == 6 and value["MQLs"] == 5


def test_sankey_sections_conserve():
    """Each part of the journey (lead to close, close to renewal) conserves too and ends at its last handoff."""
    from revops.handoffs import SANKEY_SECTIONS
    frames = combined_frames()
    hs = all_handoffs(frames, PERIOD)
    for _, first, last in SANKEY_SECTIONS.values():
        nodes, links = sankey_flows(frames, PERIOD, hs, first, last)
        assert_conserves(nodes, links)
    nodes, _ = sankey_flows(frames, PERIOD, hs, 3, 6)
    value = dict(zip(nodes["label"].to_list(), nodes["value"].to_list()))
    # Close to renewal starts at the signed customers (C1-C5 and V1-V5) and ends at the 3 renewed.
    assert value["Won customers"] == hs[2].entered == 10 and value["Renewed"] == 3 and "Leads" not in value


def test_sankey_of_empty_data_is_empty():
    """No data: no links and no nodes (nothing to draw), without error."""
    nodes, links = sankey_flows(empty_frames(), PERIOD)
    assert nodes.height == 0 and links.height == 0


def test_journey_names_the_costliest_leak():
    """The headline names the handoff with the most money at stake; the total adds all six."""
    from revops.handoffs import journey
    j = journey(combined_frames(), PERIOD)
    # money at stake: renewals 6000 is the largest (MQLs 2771.43, deals 700, kickoff 5000, value 600, expand 2640)
    assert "Expand → Renew" in j.headline
    assert j.money_at_stake == pytest.approx(sum(h.money_at_stake for h in j.handoffs))
    assert j.table.height == 6 and j.by_key("close_to_onboard").number == 3


def test_account_value_is_arr_else_won_amount():
    """account_value: ARR at as_of when billing, else the won deals' amount; each account once."""
    from revops.handoffs import account_value
    subs = pl.DataFrame({"account_id": ["A1", "A2", "A3"], "start_date": [D(2024, 1, 1), D(2024, 1, 1), D(2023, 1, 1)],
                         "end_date": [None, None, D(2023, 12, 31)], "mrr": [100.0, 50.0, 70.0]})
    opps = pl.DataFrame({"opportunity_id": ["O1", "O2", "O3", "O4", "O5"], "account_id": ["A1", "A3", "A3", "A4", None],
                         "stage": ["Closed Won"] * 5, "amount": [999.0, 300.0, 200.0, 40.0, 10.0],
                         "close_date": [D(2024, 1, 1)] * 5, "created_at": [D(2023, 12, 1)] * 5})
    v = account_value(frames_from_tables({"subscriptions": subs, "opportunities": opps}), D(2024, 6, 30))
    # A1 ARR 12 × 100 = 1200 (its won 999 ignored); A2 ARR 600, no deal; A3 churned (no ARR): won 300 + 200;
    # A4 no subscription: won 40; O5 has no account and values nothing.
    assert dict(zip(v["account_id"].to_list(), v["value"].to_list())) == {
        "A1": 1200.0, "A2": 600.0, "A3": 500.0, "A4": 40.0}


def test_renewal_mrr_is_the_same_sum_on_both_days():
    """MRR before and after a renewal adds the same active subscriptions in the same order: equal to the last digit."""
    life = pl.DataFrame({"account_id": ["A"], "renewal_date": [D(2024, 3, 23)], "renewal_outreach_at": [None]},
                        schema_overrides={"renewal_outreach_at": pl.Datetime("us")})
    # Three subscriptions run through 22-24 Mar 2024 and one ended before: 3448.19 + 295.83 + 781.67 = 4525.69 on
    # both days. As floats, some orders of adding them give 4525.6900000000005: both days must use the same one.
    subs = pl.DataFrame({"subscription_id": ["s0", "s1", "s2", "s3"], "account_id": ["A"] * 4,
                         "start_date": [D(2022, 1, 1), D(2023, 11, 27), D(2023, 7, 26), D(2023, 8, 21)],
                         "end_date": [D(2023, 11, 27), None, None, None],
                         "mrr": [2298.33, 3448.19, 295.83, 781.67]})
    r = expand_to_renew(frames_from_tables({"lifecycle": life, "subscriptions": subs}), PERIOD).records.row(
        0, named=True)
    assert r["mrr_before"] == pytest.approx(4525.69) and r["mrr_after"] == r["mrr_before"]
    assert r["outcome"] == "passed"


def test_first_texts_joins_the_first_true_condition_of_each_list():
    """_first_texts: the first holding condition's text of each list, joined by "; "; null when neither has one."""
    from revops.handoffs import _first_texts
    df = pl.DataFrame({"a": [True, False, False, True, None], "b": [False, True, False, False, False],
                       "x": [False, False, False, True, True], "y": [True, True, False, True, None]})
    got = df.select(t=_first_texts([(pl.col("a"), "A"), (pl.col("b"), "B")],
                                   [(pl.col("x"), None), (pl.col("y"), "Y")]))["t"].to_list()
    # row 0: A, then y -> "A; Y"; row 1: B, y -> "B; Y"; row 2: nothing; row 3: A, x first (no text) -> "A";
    # row 4: a null counts as false, x holds (no text) -> null.
    assert got == ["A; Y", "B; Y", None, "A", None]


def test_journey_and_table_share_the_handoffs():
    """The handoffs are worked out once per frames and period: the journey and the table read the same ones."""
    from revops.handoffs import journey
    frames = combined_frames()
    assert all_handoffs(frames, PERIOD) is all_handoffs(frames, PERIOD)
    assert journey(frames, PERIOD).handoffs is all_handoffs(frames, PERIOD)
    assert handoffs_table(frames, PERIOD).equals(journey(frames, PERIOD).table)


def test_lead_whose_deal_was_created_before_the_window_finds_it():
    """A lead's deal created before the window (outside handoff 2's cohort) is still found: its handoff time."""
    tables = h1_tables()
    tables["opportunities"] = tables["opportunities"].with_columns(
        created_at=pl.when(pl.col("opportunity_id") == "O9").then(pl.lit(D(2023, 12, 20))).otherwise("created_at"))
    h = lead_to_opportunity(frames_from_tables(tables), PERIOD)
    # M6 reached SQL 1 Feb 2024; O9 created 20 Dec 2023: 43 days earlier = -1032 h, left out of the median
    # (negative), which is then M1's 192 h alone.
    m6 = h.records.filter(pl.col("lead_id") == "M6").row(0, named=True)
    assert m6["handoff_hours"] == pytest.approx(-1032) and m6["outcome"] == "passed"
    assert h.median_hours == pytest.approx(192)
