"""The lead funnel and the opportunity stage funnel on hand-made tables, worked out by hand."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops.frames import empty_frames, frames_from_tables
from revops.funnel import find_bottleneck, lead_funnel, opportunity_funnel, stage_conversion
from revops.period import Period
from revops.schema import Settings, StageSetting

D = dt.date
T = dt.datetime
PERIOD = Period(D(2024, 12, 31), D(2024, 1, 1), D(2024, 12, 31))
SETTINGS = Settings(stages=[
    StageSetting(name="Discovery", funnel_step=0),
    StageSetting(name="Demo", funnel_step=1),
    StageSetting(name="Proposal", funnel_step=2),
    StageSetting(name="Won", is_closed=True, is_won=True, funnel_step=3),
    StageSetting(name="Lost", is_closed=True, funnel_step=4),
])


def deals_frames():
    """frames of deals_tables()."""
    return frames_from_tables(deals_tables(), SETTINGS)


def deals_tables() -> dict[str, pl.DataFrame]:
    """Six deals created in the window (A..F) and one before it (G).

    A won, history Discovery 1 Jan -> Demo 11 Jan -> Proposal 21 Jan, no Won row, close 31 Jan.
    B skips Demo: Discovery 1 Feb -> Proposal 5 Feb -> Lost 15 Feb.
    C re-enters: Discovery 1 Mar -> Demo 3 Mar -> Discovery 5 Mar -> Demo 10 Mar -> Proposal 20 Mar (open).
    D open in Demo, E lost, F won: no history.
    """
    opps = pl.DataFrame({
        "opportunity_id": ["A", "B", "C", "D", "E", "F", "G"],
        "stage": ["Won", "Lost", "Proposal", "Demo", "Lost", "Won", "Won"],
        "owner": ["ann", "ann", "ann", "bob", "bob", "bob", "bob"],
        "created_at": [D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1), D(2024, 3, 2), D(2024, 4, 1), D(2024, 4, 2),
                       D(2023, 6, 1)],
        "close_date": [D(2024, 1, 31), D(2024, 2, 15), D(2025, 1, 31), D(2025, 1, 31), D(2024, 5, 1),
                       D(2024, 6, 1), D(2023, 7, 1)],
        "amount": [100.0] * 7,
    })
    hist = pl.DataFrame({
        "opportunity_id": ["A", "A", "A", "B", "B", "B", "C", "C", "C", "C", "C"],
        "stage": ["Discovery", "Demo", "Proposal", "Discovery", "Proposal", "Lost",
                  "Discovery", "Demo", "Discovery", "Demo", "Proposal"],
        "changed_at": [T(2024, 1, 1), T(2024, 1, 11), T(2024, 1, 21), T(2024, 2, 1), T(2024, 2, 5), T(2024, 2, 15),
                       T(2024, 3, 1), T(2024, 3, 3), T(2024, 3, 5), T(2024, 3, 10), T(2024, 3, 20)],
    })
    return {"opportunities": opps, "stage_history": hist}


def row(table: pl.DataFrame, stage: str, **where: str) -> dict:
    """The one row of a funnel table for a stage (and group)."""
    sel = table.filter(pl.col("stage") == stage)
    for k, v in where.items():
        sel = sel.filter(pl.col(k) == v)
    assert sel.height == 1
    return sel.row(0, named=True)


def test_entered_and_converted_are_cumulative():
    """Reached is cumulative: B skipped Demo yet counts in it; lost E without history only entered the first stage."""
    t = opportunity_funnel(deals_frames(), PERIOD)
    # reached: A 3 (won), B 2 (history Proposal), C 2, D 1, E 0, F 3; G created before the window.
    assert t["stage"].to_list() == ["Discovery", "Demo", "Proposal", "Won"]
    assert t["entered"].to_list() == [6, 5, 4, 2]
    assert t["converted"].to_list() == [5, 4, 2, None]
    # rates 5/6, 4/5, 2/4; the won step converts to nothing.
    assert t["rate"][:3].to_list() == pytest.approx([5 / 6, 0.8, 0.5])
    assert t["rate"][3] is None
    # cumulative = entered / 6
    assert t["cumulative_rate"].to_list() == pytest.approx([1.0, 5 / 6, 4 / 6, 2 / 6])


def test_days_in_stage_sum_reentries_and_skip_skipped():
    """Days in stage: C's two visits are summed, B has no Demo time, C's running Proposal time is left out."""
    t = opportunity_funnel(deals_frames(), PERIOD)
    discovery, demo, proposal = row(t, "Discovery"), row(t, "Demo"), row(t, "Proposal")
    # Discovery: A 10, B 4, C (3 Mar - 1 Mar) + (10 Mar - 5 Mar) = 2 + 5 = 7 -> median 7;
    # p90 linear over [4, 7, 10]: position 0.9 * 2 = 1.8 -> 7 + 0.8 * 3 = 9.4.
    assert (discovery["timed"], discovery["median_days"]) == (3, pytest.approx(7.0))
    assert discovery["p90_days"] == pytest.approx(9.4)
    # Demo: A 10, C (5 Mar - 3 Mar) + (20 Mar - 10 Mar) = 2 + 10 = 12; B skipped it -> median 11, p90 10 + 0.9 * 2.
    assert (demo["timed"], demo["median_days"], demo["p90_days"]) == (2, pytest.approx(11.0), pytest.approx(11.8))
    # Proposal: A until its close date 31 Jan = 10, B until Lost 15 Feb = 10, C still in it.
    assert (proposal["timed"], proposal["median_days"]) == (2, pytest.approx(10.0))


def test_history_rows_of_a_deal_need_not_sit_together():
    """Stage history in any row order, with rows of unknown deals and without an id, gives the same funnel."""
    tables = deals_tables()
    hist = tables["stage_history"]
    # C's five rows split around A's, then a deal outside the cohort (G) and a row without an id between B's.
    order = [6, 7, 0, 8, 1, 9, 2, 10, 3, 4, 5]
    mixed = pl.concat([
        hist[order[:9]],
        pl.DataFrame({"opportunity_id": ["G", None], "stage": ["Demo", "Demo"],
                      "changed_at": [T(2023, 6, 2), T(2024, 2, 2)]}),
        hist[order[9:]],
    ])
    t = opportunity_funnel(frames_from_tables({**tables, "stage_history": mixed}, SETTINGS), PERIOD)
    # As test_entered_and_converted_are_cumulative and test_days_in_stage_sum_reentries_and_skip_skipped:
    # entered 6, 5, 4, 2; Discovery days [4, 7, 10] (C: 2 + 5), Demo [10, 12] (C: 2 + 10).
    assert t["entered"].to_list() == [6, 5, 4, 2]
    assert (row(t, "Discovery")["median_days"], row(t, "Demo")["median_days"]) == (pytest.approx(7.0),
                                                                                   pytest.approx(11.0))
    assert (row(t, "Discovery")["timed"], row(t, "Demo")["timed"], row(t, "Proposal")["timed"]) == (3, 2, 2)


def test_history_in_id_order_reads_only_the_window_deals_rows():
    """History kept by deal id, with deals created before the window on both sides of the window's ids: the same
    funnel as the same rows in any order (the binary-searched block holds every row of the window's deals)."""
    tables = deals_tables()
    early = pl.DataFrame({"opportunity_id": ["0"], "stage": ["Won"], "owner": ["ann"], "created_at": [D(2023, 5, 1)],
                          "close_date": [D(2023, 8, 1)], "amount": [100.0]})
    outside = pl.DataFrame({"opportunity_id": ["0", "0", "G", "G"], "stage": ["Discovery", "Demo", "Discovery", "Demo"],
                            "changed_at": [T(2023, 5, 1), T(2023, 6, 1), T(2023, 6, 1), T(2023, 6, 20)]})
    by_id = pl.concat([outside[:2], tables["stage_history"], outside[2:]])
    opps = pl.concat([early, tables["opportunities"]])
    sorted_t = opportunity_funnel(frames_from_tables({"opportunities": opps, "stage_history": by_id}, SETTINGS), PERIOD)
    shuffled = by_id.reverse()
    mixed_t = opportunity_funnel(frames_from_tables({"opportunities": opps, "stage_history": shuffled}, SETTINGS),
                                 PERIOD)
    # As test_entered_and_converted_are_cumulative: "0" and G were created before the window.
    assert sorted_t["entered"].to_list() == [6, 5, 4, 2]
    assert sorted_t.equals(mixed_t)


def test_deals_in_any_row_order_give_the_same_funnel():
    """Deals not in id order (and a deal listed twice) are coded by id all the same."""
    tables = deals_tables()
    opps = tables["opportunities"]
    t = opportunity_funnel(frames_from_tables({**tables, "opportunities": opps.reverse()}, SETTINGS), PERIOD)
    # As test_entered_and_converted_are_cumulative.
    assert t["entered"].to_list() == [6, 5, 4, 2]
    twice = pl.concat([opps, opps.filter(pl.col("opportunity_id") == "D")])
    t = opportunity_funnel(frames_from_tables({**tables, "opportunities": twice}, SETTINGS), PERIOD)
    # D (open in Demo, reached 1) counts twice: entered 7, 6, 4, 2.
    assert t["entered"].to_list() == [7, 6, 4, 2]


def test_stage_conversion_is_the_open_stages_with_the_metric_columns():
    """stage_conversion keeps the metric's columns and lists every open stage (not the won step)."""
    t = stage_conversion(deals_frames(), PERIOD)
    assert t.columns[:5] == ["stage", "entered", "converted", "rate", "median_days"]
    assert t["stage"].to_list() == ["Discovery", "Demo", "Proposal"]


def test_breakdown_by_owner():
    """By owner: ann has A, B, C and bob D, E, F, each tallied on its own."""
    t = opportunity_funnel(deals_frames(), PERIOD, by="owner")
    # ann reached 3, 2, 2: Discovery 3 -> 3, Demo 3 -> 3, Proposal 3 -> 1.
    assert [row(t, s, owner="ann")["entered"] for s in ("Discovery", "Demo", "Proposal", "Won")] == [3, 3, 3, 1]
    assert row(t, "Proposal", owner="ann")["rate"] == pytest.approx(1 / 3)
    # bob reached 1, 0, 3: Discovery 3 -> 2, Demo 2 -> 1, Proposal 1 -> 1.
    assert [row(t, s, owner="bob")["entered"] for s in ("Discovery", "Demo", "Proposal", "Won")] == [3, 2, 1, 1]
    assert row(t, "Demo", owner="bob")["rate"] == pytest.approx(0.5)


def test_breakdown_by_segment_takes_the_account_segment_when_a_deal_has_none():
    """By segment: a deal with an empty or missing segment counts in its account's; neither gives "(none)"."""
    tables = deals_tables()
    opps = tables["opportunities"].with_columns(
        account_id=pl.Series(["a1", "a1", "a2", "a2", "a3", "a3", "a3"]),
        segment=pl.Series(["SMB", "", None, "MM", None, "SMB", "SMB"]))
    accounts = pl.DataFrame({"account_id": ["a1", "a2"], "segment": ["MM", "Ent"]})
    t = opportunity_funnel(frames_from_tables({**tables, "opportunities": opps, "accounts": accounts}, SETTINGS),
                           PERIOD, by="segment")
    # A SMB; B "" -> a1's MM; C None -> a2's Ent; D MM; E None, a3 unknown -> (none); F SMB (G is before the window).
    cohort = {r["segment"]: r["entered"] for r in t.filter(pl.col("step") == 0).iter_rows(named=True)}
    assert cohort == {"SMB": 2, "MM": 2, "Ent": 1, "(none)": 1}


def test_breakdown_by_cohort_month():
    """By cohort: deals are grouped by the month they were created."""
    t = opportunity_funnel(deals_frames(), PERIOD, by="cohort")
    # Jan: A; Feb: B; Mar: C, D; Apr: E, F.
    assert sorted(t["cohort"].unique().to_list()) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert row(t, "Discovery", cohort="2024-03")["entered"] == 2
    assert row(t, "Proposal", cohort="2024-03")["entered"] == 1  # C reached Proposal, D only Demo


def test_deal_without_created_at_is_dated_by_its_history():
    """A deal with no created_at joins the cohort of its first stage-history row."""
    opps = pl.DataFrame({"opportunity_id": ["H", "I"], "stage": ["Demo", "Demo"], "created_at": [None, None]},
                        schema_overrides={"created_at": pl.Date})
    hist = pl.DataFrame({"opportunity_id": ["H"], "stage": ["Discovery"], "changed_at": [T(2024, 5, 1)]})
    t = opportunity_funnel(frames_from_tables({"opportunities": opps, "stage_history": hist}, SETTINGS), PERIOD)
    # H is dated 1 May 2024 (in the window); I has no date at all and stays out.
    assert row(t, "Discovery")["entered"] == 1


def test_bottleneck_is_the_lowest_rate_with_enough_volume():
    """The bottleneck is the lowest rate among stages with enough deals; below the floor a stage is skipped."""
    t = opportunity_funnel(deals_frames(), PERIOD)
    # rates: Discovery 5/6 (6 deals), Demo 0.8 (5), Proposal 0.5 (4).
    assert find_bottleneck(t, min_entered=1).stage == "Proposal"
    # With a floor of 5 deals Proposal (4) is too thin: Demo 0.8 < Discovery 0.83.
    b = find_bottleneck(t, min_entered=5)
    assert (b.stage, b.entered) == ("Demo", 5)
    assert "Demo" in b.message and "80%" in b.message


def test_empty_data_gives_zero_entries_and_no_rates():
    """No deals: every stage is listed with 0 entered, no rate (not a 0 %), and no bottleneck."""
    t = opportunity_funnel(empty_frames(SETTINGS), PERIOD)
    assert t["entered"].to_list() == [0, 0, 0, 0]
    assert t["rate"].null_count() == 4 and t["cumulative_rate"].null_count() == 4
    b = find_bottleneck(t)
    assert b.stage is None and "too few" in b.message


def leads_frames():
    """Five leads created 1 Jan 2024 and their two opportunities (O1 won 15 Jan, O2 lost).

    L1 mql 2 Jan, sql 4 Jan, converted 5 Jan to O1 (won 15 Jan).
    L2 skips MQL: sql 3 Jan 12:00. L3 mql 1 Jan 12:00 only. L4 nothing.
    L5 mql 2 Jan, no sql, no converted_at but its opportunity O2 was created 3 Jan.
    """
    leads = pl.DataFrame({
        "lead_id": ["L1", "L2", "L3", "L4", "L5"],
        "created_at": [T(2024, 1, 1)] * 5,
        "mql_at": [T(2024, 1, 2), None, T(2024, 1, 1, 12), None, T(2024, 1, 2)],
        "sql_at": [T(2024, 1, 4), T(2024, 1, 3, 12), None, None, None],
        "converted_at": [T(2024, 1, 5), None, None, None, None],
        "opportunity_id": ["O1", None, None, None, "O2"],
        "source": ["web", "web", "web", "partner", "partner"],
    })
    opps = pl.DataFrame({"opportunity_id": ["O1", "O2"], "stage": ["Won", "Lost"],
                         "created_at": [D(2024, 1, 5), D(2024, 1, 3)], "close_date": [D(2024, 1, 15), D(2024, 2, 1)]})
    return frames_from_tables({"leads": leads, "opportunities": opps}, SETTINGS)


def test_lead_funnel_counts_and_rates():
    """Lead funnel: cumulative reach (L2 reached MQL via SQL, L5 Opportunity via its opportunity_id)."""
    t = lead_funnel(leads_frames(), PERIOD)
    # reached: L1 4, L2 2, L3 1, L4 0, L5 3.
    assert t["stage"].to_list() == ["Lead", "MQL", "SQL", "Opportunity", "Won"]
    assert t["entered"].to_list() == [5, 4, 3, 2, 1]
    # 4/5, 3/4, 2/3, 1/2
    assert t["rate"][:4].to_list() == pytest.approx([0.8, 0.75, 2 / 3, 0.5])


def test_lead_funnel_days_run_to_the_next_stage_reached():
    """Lead days: a skipped stage has no time and the previous one runs to the next stage reached."""
    t = lead_funnel(leads_frames(), PERIOD)
    # Lead: L1 1, L2 (sql 3 Jan 12:00) 2.5, L3 0.5, L5 1 -> median of [0.5, 1, 1, 2.5] = 1.
    assert (row(t, "Lead")["timed"], row(t, "Lead")["median_days"]) == (4, pytest.approx(1.0))
    # MQL: L1 4 Jan - 2 Jan = 2, L5 to its opportunity (created 3 Jan) = 1 -> 1.5.
    assert row(t, "MQL")["median_days"] == pytest.approx(1.5)
    # SQL: only L1, 5 Jan - 4 Jan = 1; Opportunity: L1 15 Jan - 5 Jan = 10.
    assert (row(t, "SQL")["timed"], row(t, "SQL")["median_days"]) == (1, pytest.approx(1.0))
    assert row(t, "Opportunity")["median_days"] == pytest.approx(10.0)


def test_lead_funnel_by_source():
    """Lead funnel by source: web (L1-L3) and partner (L4, L5)."""
    t = lead_funnel(leads_frames(), PERIOD, by="source")
    # web reached 4, 2, 1: MQL 3, SQL 2; partner reached 0, 3: MQL 1 of 2.
    assert row(t, "MQL", source="web")["entered"] == 3
    assert row(t, "SQL", source="web")["entered"] == 2
    assert row(t, "Lead", source="partner")["rate"] == pytest.approx(0.5)


def test_heatmap_cells_drop_the_last_step_for_conversion():
    """Conversion cells stop before the won step (it converts to nothing); shares keep every step."""
    t = opportunity_funnel(deals_frames(), PERIOD, by="owner")
    from revops.funnel import heatmap_cells
    assert heatmap_cells(t, "rate")["stage"].unique().sort().to_list() == ["Demo", "Discovery", "Proposal"]
    assert heatmap_cells(t, "cumulative_rate").height == t.height == 8  # 2 owners × 4 steps


def test_stage_sums_add_up_as_a_grouping_does():
    """_stage_sums gives a group_by's sums to the last bit (row order, compensated), skipping nulls; all() of ended."""
    from revops.funnel import _stage_sums
    # Deal 0 stage 1: three visits whose plain left-to-right sum (13.281458333333333) differs in the last bit
    # from the compensated one Polars groups give (13.281458333333331), with a visit to stage 0 in between;
    # deal 1 stage 0: 1 + (running) + 2 = 3, not ended; deal 2 stage 2: five visits of 0.1; deal 3: one
    # running visit -> 0.0, not ended.
    visits = pl.DataFrame({
        "code": [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3],
        "idx": [1, 0, 1, 1, 0, 0, 0, 2, 2, 2, 2, 2, 0],
        "days": [2.958125, 4.0, 8.163252314814814, 2.160081018518518, 1.0, None, 2.0, 0.1, 0.1, 0.1, 0.1, 0.1,
                 None],
        "ended": [True, True, True, True, True, False, True, True, True, True, True, True, False],
    }, schema_overrides={"code": pl.UInt32})
    got = _stage_sums(visits, "code", 3).sort("code", "idx")
    want = visits.group_by("code", "idx").agg(pl.col("days").sum(), pl.col("ended").all()).sort("code", "idx")
    assert got.equals(want)
    assert got["days"].to_list()[:3] == [4.0, 13.281458333333331, 3.0]
    assert got["ended"].to_list() == [True, True, False, True, False]
