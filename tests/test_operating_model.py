"""Operating-model questionnaire: transparent scoring, pattern, framework, maturity, pitfalls, prefill, history."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops import operating_model as om
from revops import store
from revops.frames import empty_frames, frames_from_tables
from revops.metrics import by_tier
from revops.period import Period

D = dt.date

PROFILES = {
    # A large single-business company with weak functional leaders and leaky handoffs.
    "centralized": om.Answers(arr=80e6, funding_stage="series_c_plus", business_units=1, segments=1,
                              leader_strength="weak", handoff_leak_rate=0.35, sales_headcount=40,
                              marketing_headcount=10, cs_headcount=10),
    # A seed company with strong functional leaders and a small team.
    "federated": om.Answers(arr=4e6, funding_stage="seed", business_units=1, segments=1, leader_strength="strong",
                            handoff_leak_rate=0.1, sales_headcount=8, marketing_headcount=2, cs_headcount=2),
    # A Series B company moving from self-serve to sales, several segments, leaders of mixed strength.
    "hybrid": om.Answers(arr=25e6, funding_stage="series_b", business_units=2, segments=3, motion="hybrid",
                         leader_strength="mixed", handoff_leak_rate=0.2, sales_headcount=25, marketing_headcount=8,
                         cs_headcount=7),
    # A public enterprise with six business units and strong local leaders.
    "center_of_excellence": om.Answers(arr=400e6, funding_stage="public", business_units=6, segments=3,
                                       leader_strength="strong", handoff_leak_rate=0.1, sales_headcount=300,
                                       marketing_headcount=100, cs_headcount=100),
}


@pytest.mark.parametrize("model", list(PROFILES))
def test_each_model_wins_for_the_profile_built_for_it(model):
    """The scorer recommends each of the four models for a company shaped like it."""
    rec = om.recommend(PROFILES[model])
    assert rec.model == model and rec.label == om.MODELS[model].label
    assert rec.scores[model] == max(rec.scores.values())


def test_centralized_score_worked_out():
    """Every point comes from a listed rule: the centralized profile's score added up by hand."""
    scores, reasons = om.score(PROFILES["centralized"])
    # ARR ≥ 50M +3, Series C +2, one business unit +1, weak leaders +2, handoffs leak 35 % +1 = 9
    assert scores["centralized"] == 9
    # CoE: ARR 50–100M +1, Series C +1, single business unit −2 = 0
    assert scores["center_of_excellence"] == 0
    for model in om.MODELS:
        assert scores[model] == sum(r.points for r in reasons if r.model == model)
    assert any("35 %" in r.reason for r in reasons if r.model == "centralized")


def test_tie_goes_to_the_lighter_structure():
    """Equal scores: federated before hybrid before centralized before center of excellence."""
    answers = om.Answers(arr=0, funding_stage="series_a", leader_strength="mixed", business_units=2,
                         sales_headcount=30)
    scores, _ = om.score(answers)
    best = max(scores.values())
    tied = [m for m in om.TIE_ORDER if scores[m] == best]
    assert om.recommend(answers).model == tied[0]
    forced = {"federated": 1, "hybrid": 1, "centralized": 1, "center_of_excellence": 1}
    assert max(om.TIE_ORDER, key=lambda m: (forced[m], -om.TIE_ORDER.index(m))) == "federated"


@pytest.mark.parametrize("motion, pricing, deal, pattern, framework", [
    ("self_serve", "seat", None, "product_led", "product_led"),
    ("hybrid", "seat", None, "plg_to_sales", "agile"),
    ("sales_led", "usage", None, "consumption", "agile"),
    ("sales_led", "subscription", 80_000.0, "enterprise", "account_based"),
    ("sales_led", "subscription", 12_000.0, "enterprise", "waterfall"),
])
def test_pattern_and_framework(motion, pricing, deal, pattern, framework):
    """Motion and pricing pick the strategic pattern; the pattern and deal size pick the GTM framework."""
    rec = om.recommend(om.Answers(arr=5e6, motion=motion, pricing=pricing, avg_deal_size=deal))
    assert (rec.pattern, rec.gtm_framework) == (pattern, framework)


@pytest.mark.parametrize("stage, maturity", [("seed", "RevOps-minded operator"),
                                             ("series_a", "RevOps-minded operator"),
                                             ("series_b", "Dedicated RevOps function"),
                                             ("series_c_plus", "RevOps team"), ("public", "RevOps team")])
def test_maturity_ladder(stage, maturity):
    """Seed–Series A an operator, Series B a function, Series C+ a team."""
    assert om.recommend(om.Answers(funding_stage=stage)).maturity == maturity


def test_pitfalls():
    """Premature centralization, metric overload (registry count) and misaligned incentives are flagged."""
    assert om.Answers().north_star_metrics == len(by_tier("north_star"))
    early_central = om.Answers(arr=30e6, funding_stage="series_c_plus", leader_strength="weak", business_units=1,
                               north_star_metrics=7, shared_incentives=False, handoff_leak_rate=0.4)
    rec = om.recommend(early_central)
    assert rec.model == "centralized"
    text = " ".join(rec.pitfalls)
    assert "Premature centralization" in text and "Metric overload: 7" in text
    assert "Misaligned incentives" in text and "40 %" in text
    calm = om.recommend(PROFILES["centralized"].model_copy(update={"north_star_metrics": 5,
                                                                   "shared_incentives": True}))
    assert calm.pitfalls == []


def test_plan_has_council_charter_dictionary_and_slas():
    """The first 90 days name the revenue council, the charter, the data dictionary and the SLAs."""
    rec = om.recommend(PROFILES["hybrid"])
    text = " ".join(s.action for s in rec.plan)
    for word in ("revenue council", "charter", "data dictionary", "lead response within 5 minutes"):
        assert word in text
    assert om.MODELS["hybrid"].first_step in text
    assert rec.risks == [om.MODELS["hybrid"].risk]


def test_prefill_from_data():
    """ARR, segments, business units, deal owners, self-serve share and motion come from the tables."""
    ts = dt.datetime
    frames = frames_from_tables({
        "subscriptions": pl.DataFrame({"subscription_id": ["s1", "s2"], "account_id": ["a", "b"],
                                       "start_date": [D(2024, 1, 1), D(2024, 2, 1)], "mrr": [1000.0, 500.0]}),
        "accounts": pl.DataFrame({"account_id": ["a", "b", "c"], "segment": ["SMB", "Enterprise", "smb"],
                                  "business_unit": ["Core", "Core", "Payments"]}),
        "opportunities": pl.DataFrame({"opportunity_id": ["o1", "o2", "o3"], "stage": ["Closed Won"] * 3,
                                       "owner": ["ana", "bo", "ana"], "amount": [100.0, 300.0, 200.0],
                                       "created_at": [D(2024, 1, 5)] * 3, "close_date": [D(2024, 2, 5)] * 3}),
        "leads": pl.DataFrame({"lead_id": ["l1", "l2", "l3", "l4"], "created_at": [ts(2024, 1, 3)] * 4,
                               "source": ["Product Signup", "paid_search", "partner", "webinar"],
                               "pql_at": [None, ts(2024, 1, 4), None, None]}),
    })
    answers = om.prefill(frames, Period.ending(D(2024, 3, 31)))
    assert answers.arr == 18000.0  # 12 × (1000 + 500)
    assert answers.funding_stage == "seed"  # guessed from ARR below $2M
    assert answers.segments == 2  # SMB and smb are one segment
    assert answers.business_units == 2 and answers.sales_headcount == 2
    assert answers.self_serve_share == 0.5  # Product Signup and a PQL, of 4 leads
    assert answers.motion == "hybrid"
    assert answers.avg_deal_size == 200.0
    assert {"arr", "segments", "self_serve_share", "motion"} <= set(answers.from_data)


def test_prefill_on_empty_data_keeps_defaults():
    """No data: the defaults stay and nothing claims to come from the data but the registry count."""
    answers = om.prefill(empty_frames(), Period.ending(D(2024, 3, 31)))
    assert answers.arr == 0 and answers.self_serve_share is None and answers.handoff_leak_rate is None
    assert set(answers.from_data) == {"north_star_metrics"}
    assert om.recommend(answers).model in om.MODELS


def test_assessments_saved_with_their_date(tmp_path):
    """Assessments round-trip with their time, newest first, and bump the data version."""
    db = tmp_path / "a.duckdb"
    with store.connect(db):
        pass
    v0 = store.data_version(db)
    first = om.save_assessment(db, PROFILES["federated"], om.recommend(PROFILES["federated"]))
    second = om.save_assessment(db, PROFILES["hybrid"], om.recommend(PROFILES["hybrid"]))
    assert (first, second) == (1, 2) and store.data_version(db) == v0 + 2
    history = om.list_assessments(db)
    assert history["assessment_id"].to_list() == [2, 1]
    assert history["recommended"].to_list() == ["Hybrid", "Federated"]
    assert history["taken_at"].dtype == pl.Datetime("us") and history["taken_at"].null_count() == 0
    _, _, answers, rec = om.load_assessments(db)[1]
    assert answers == PROFILES["federated"] and rec.model == "federated"


def test_score_and_reason_tables():
    """The scores table has the four models with the recommended one flagged; reasons carry points."""
    rec = om.recommend(PROFILES["hybrid"])
    table = om.scores_table(rec)
    assert table["model"].to_list() == list(om.MODELS)
    assert table.filter(pl.col("recommended"))["model"].to_list() == ["hybrid"]
    assert om.reasons_table(rec)["points"].sum() == sum(rec.scores.values())
