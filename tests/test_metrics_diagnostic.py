"""Diagnostic tier on tiny hand-made tables, each expected value worked out in the test."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops.frames import Frames, empty_frames, frames_from_tables
from revops.metrics import compute
from revops.period import Period
from revops.schema import SLAs, Settings

D, T = dt.date, dt.datetime
PERIOD = Period(D(2024, 6, 30), D(2024, 1, 1), D(2024, 6, 30))

LEADS = pl.DataFrame({
    "lead_id": ["L1", "L2", "L3", "L4", "L5"],
    "created_at": [T(2024, 2, 1, 9), T(2024, 2, 2, 10), T(2024, 3, 1, 8), T(2024, 4, 1, 12), T(2023, 12, 31, 23)],
    "first_response_at": [T(2024, 2, 1, 9, 3), T(2024, 2, 2, 10, 12, 30), None, T(2024, 4, 1, 12, 5),
                          T(2023, 12, 31, 23, 1)],
    "mql_at": [T(2024, 2, 2), T(2024, 2, 3), None, None, T(2024, 1, 1)],
    "sql_at": [T(2024, 2, 5), None, T(2024, 3, 5), None, T(2024, 1, 2)],
    "pql_at": [None, None, None, T(2024, 4, 10), T(2024, 1, 5)],
    "opportunity_id": ["W", None, "L", None, "W"],
})
OPPS = pl.DataFrame({"opportunity_id": ["W", "L"], "stage": ["Closed Won", "Closed Lost"],
                     "close_date": [D(2024, 5, 1), D(2024, 5, 2)]})
# L5 was created before the window; L1–L4 are the window's leads.


def frames(**tables: pl.DataFrame) -> Frames:
    return frames_from_tables({"leads": LEADS, "opportunities": OPPS, **tables})


def value(metric_id: str, f: Frames, period: Period = PERIOD) -> float | None:
    return compute(metric_id, f, period).value


NO_LEADS = empty_frames()


# ---------------------------------------------------------------------------------------
# leads


def test_lead_response_is_the_median_minutes_of_answered_leads():
    """L1 3 min, L2 12.5 min (seconds count), L4 5 min; L3 unanswered, L5 before the window: median 5."""
    assert value("lead_response_minutes", frames()) == pytest.approx(5.0)


def test_lead_response_without_answered_leads_is_empty():
    """No lead with a response: empty."""
    r = compute("lead_response_minutes", frames(leads=LEADS.with_columns(first_response_at=None)), PERIOD)
    assert r.value is None and r.reason == "No lead created in the window has a response"


def test_lead_response_sla_counts_unanswered_leads_as_breaches():
    """Within 5 min: L1 (3) and L4 (exactly 5); L2 (12.5) and L3 (never) breach: 2 ÷ 4."""
    assert value("lead_response_sla", frames()) == 0.5


def test_lead_response_sla_follows_the_setting():
    """A 15-minute SLA also lets L2 in: 3 ÷ 4."""
    f = frames_from_tables({"leads": LEADS, "opportunities": OPPS},
                           Settings(slas=SLAs(lead_response_minutes=15)))
    assert value("lead_response_sla", f) == 0.75


def test_lead_response_sla_without_leads_is_empty():
    """No leads in the window: empty."""
    assert compute("lead_response_sla", NO_LEADS, PERIOD).reason == "No leads created in the window"


def test_mql_to_sql_counts_reaching_cumulatively():
    """Reached MQL: L1, L2 and L3 (its SQL implies MQL); reached SQL: L1, L3: 2 ÷ 3."""
    assert value("mql_to_sql", frames()) == pytest.approx(2 / 3)


def test_mql_to_sql_without_mqls_is_empty():
    """No lead reached MQL: empty."""
    f = frames(leads=LEADS.with_columns(mql_at=None, sql_at=None, opportunity_id=None))
    assert compute("mql_to_sql", f, PERIOD).reason == "No lead created in the window reached MQL"


def test_lead_to_customer_counts_leads_whose_opportunity_is_won():
    """Of L1–L4 only L1's opportunity W is won (L3's is lost): 1 ÷ 4."""
    assert value("lead_to_customer", frames()) == 0.25


def test_lead_to_customer_without_leads_is_empty():
    """No leads in the window: empty."""
    assert value("lead_to_customer", NO_LEADS) is None


# ---------------------------------------------------------------------------------------
# stage conversion


def test_stage_conversion_table_counts_reach_cumulatively():
    """Current stages only: won reached every stage, Proposal reached the first four, lost only the first."""
    opps = pl.DataFrame({"opportunity_id": ["a", "b", "c"], "stage": ["Closed Won", "Proposal", "Closed Lost"],
                         "created_at": [D(2024, 2, 1)] * 3, "close_date": [D(2024, 3, 1), None, D(2024, 3, 1)]})
    r = compute("stage_conversion", frames_from_tables({"opportunities": opps}), PERIOD)
    assert r.table is not None and r.table.columns == ["stage", "entered", "converted", "rate", "median_days"]
    rows = {row["stage"]: (row["entered"], row["converted"]) for row in r.table.to_dicts()}
    # chain: Prospecting → Qualification → Needs Analysis → Proposal → Negotiation → Closed Won
    assert rows == {"Prospecting": (3, 2), "Qualification": (2, 2), "Needs Analysis": (2, 2),
                    "Proposal": (2, 1), "Negotiation": (1, 1)}
    assert r.table["rate"].to_list()[0] == pytest.approx(2 / 3)


def test_stage_conversion_without_deals_is_empty():
    """No deal created in the window: the reason says so."""
    r = compute("stage_conversion", NO_LEADS, PERIOD)
    assert r.value is None and r.reason == "No deals created in the window"


# ---------------------------------------------------------------------------------------
# kickoff SLA


def test_kickoff_sla_counts_kickoffs_within_48_hours_of_signature():
    """a 48 h (within), b 49 h (breach), c within (won_at from its won deal), d no kickoff (breach): 2 ÷ 4."""
    life = pl.DataFrame({
        "account_id": ["a", "b", "c", "d", "e"],
        "won_at": [T(2024, 1, 10, 9), T(2024, 2, 1), None, T(2024, 4, 1), T(2023, 11, 1)],
        "kickoff_at": [T(2024, 1, 12, 9), T(2024, 2, 3, 1), T(2024, 3, 2), None, T(2023, 11, 2)],
    })
    won = pl.DataFrame({"opportunity_id": ["x"], "stage": ["Closed Won"], "account_id": ["c"],
                        "close_date": [D(2024, 3, 1)]})
    r = compute("kickoff_sla", frames_from_tables({"lifecycle": life, "opportunities": won}), PERIOD)
    assert r.value == 0.5
    assert r.detail is not None and sorted(r.detail["account_id"]) == ["a", "b", "c", "d"]  # e signed before


def test_kickoff_sla_without_signatures_in_the_window_is_empty():
    """Nobody signed in the window: empty."""
    life = pl.DataFrame({"account_id": ["e"], "won_at": [T(2023, 11, 1)]})
    r = compute("kickoff_sla", frames_from_tables({"lifecycle": life}), PERIOD)
    assert r.value is None and r.reason == "No customer was signed in the window"


# ---------------------------------------------------------------------------------------
# feature adoption


def _adoption_frames(**over: pl.DataFrame) -> Frames:
    subs = pl.DataFrame({"subscription_id": ["1", "2", "3", "4"], "account_id": ["a", "b", "c", "d"],
                         "start_date": [D(2023, 1, 1)] * 4, "end_date": [None, None, None, D(2024, 1, 1)],
                         "mrr": [10.0] * 4})
    usage = pl.DataFrame({
        "account_id": ["a", "a", "b", "b", "c", "d", "a"],
        "date": [D(2024, 6, 10), D(2024, 6, 1), D(2024, 5, 31), D(2024, 6, 15), D(2024, 6, 30), D(2024, 6, 20),
                 D(2023, 1, 1)],
        "feature": ["reports", "api", "reports", "api", "reports", "reports", "alerts"],
        "active_users": [None, 2, None, 0, 1, None, 3],
        "events": [5, 0, 9, 0, None, 3, 1],
    })
    return frames_from_tables({"subscriptions": subs, "usage": usage, **over})


def test_feature_adoption_averages_the_share_of_active_accounts_per_feature():
    """Active a, b, c (d ended). In the 30 days 1–30 Jun: reports a, c (b's 31 May is day 31); api a (b's row
    shows no use); alerts nobody (a used it in 2023). mean(2/3, 1/3, 0) = 1/3."""
    r = compute("feature_adoption", _adoption_frames(), PERIOD)
    assert r.value == pytest.approx(1 / 3)
    assert r.table is not None
    assert dict(zip(r.table["feature"], r.table["adoption"])) == pytest.approx(
        {"reports": 2 / 3, "api": 1 / 3, "alerts": 0.0})


def test_feature_adoption_without_active_accounts_is_empty():
    """Usage but nobody paying at as-of: empty."""
    r = compute("feature_adoption", _adoption_frames(), Period.ending(D(2022, 6, 30)))
    assert r.value is None and r.reason == "No active accounts at as-of"


def test_feature_adoption_without_features_is_empty():
    """No usage rows with a feature: empty."""
    r = compute("feature_adoption", frames_from_tables({}), PERIOD)
    assert r.value is None and r.reason == "No usage by feature loaded"


# ---------------------------------------------------------------------------------------
# data quality


def test_data_quality_is_filled_and_valid_cells_over_expected_cells():
    """targets: 3 expected (empty segment/owner mean company-wide), all good; spend: 8 expected, 6 filled,
    5 valid (−5 is not a valid amount). (3 + 5) ÷ (3 + 8)."""
    f = frames_from_tables({
        "targets": pl.DataFrame({"period_start": [D(2024, 1, 1)], "period_end": [D(2024, 3, 31)],
                                 "target_amount": [100.0]}),
        "spend": pl.DataFrame({"month": [D(2024, 1, 1), D(2024, 2, 1)], "amount": [100.0, -5.0],
                               "category": ["sales", None], "channel": ["events", None]}),
    })
    r = compute("data_quality", f, PERIOD)
    assert r.value == pytest.approx(8 / 11)
    assert r.table is not None
    assert {row["table"]: (row["rows"], row["expected"], row["filled"], row["valid"]) for row in r.table.to_dicts()} \
        == {"targets": (1, 3, 3, 3), "spend": (2, 8, 6, 5)}


def test_data_quality_flags_unknown_stages_and_expects_lost_reasons_on_lost_deals_only():
    """An unplaced stage is invalid; a lost reason is expected of the lost deal, not of the won one."""
    opps = pl.DataFrame({"opportunity_id": ["a", "b", "c"], "stage": ["Closed Won", "Closed Lost", "Mystery"]})
    r = compute("data_quality", frames_from_tables({"opportunities": opps}), PERIOD)
    cells = {row["column"]: (row["expected"], row["valid"]) for row in r.detail.to_dicts()}
    assert cells["stage"] == (3, 2)
    assert cells["lost_reason"] == (1, 0)
    assert cells["probability"] == (0, 0)  # optional: stage default stands in


def test_data_quality_without_data_is_empty():
    """Nothing loaded: empty."""
    r = compute("data_quality", NO_LEADS, PERIOD)
    assert r.value is None and r.reason == "No data loaded"
