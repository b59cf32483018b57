"""The demo company: deterministic, complete, consistent, scaled by --scale."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops import store
from revops.cli import main
from revops.demo import build_demo, generate
from revops.errors import UserError
from revops.schema import TABLES, Settings
from revops.stages import state_flags

TODAY = dt.date(2026, 5, 20)
SCALE = 500


@pytest.fixture(scope="module")
def demo() -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """One small demo company shared by the read-only checks."""
    return generate(seed=7, scale=SCALE, today=TODAY)


@pytest.fixture(scope="module")
def tables(demo) -> dict[str, pl.DataFrame]:
    return demo[0]


def _ids(frame: pl.DataFrame, col: str) -> set[str]:
    return set(frame[col].drop_nulls().unique().to_list())


def test_same_seed_and_day_give_identical_tables(demo):
    """Rebuilding with the same seed and today reproduces every table exactly."""
    again, snaps = generate(seed=7, scale=SCALE, today=TODAY)
    for name in TABLES:
        assert again[name].equals(demo[0][name]), name
    assert snaps.equals(demo[1])


def test_another_seed_gives_another_company(demo):
    """A different seed changes the data."""
    other, _ = generate(seed=8, scale=SCALE, today=TODAY)
    assert not other["opportunities"].equals(demo[0]["opportunities"])
    assert not other["usage"].equals(demo[0]["usage"])


def test_scale_is_the_number_of_opportunities():
    """--scale N gives exactly N deals, and the other tables grow with it."""
    small, _ = generate(seed=1, scale=200, today=TODAY)
    large, _ = generate(seed=1, scale=800, today=TODAY)
    assert small["opportunities"].height == 200
    assert large["opportunities"].height == 800
    assert large["leads"].height == 2 * 800
    assert large["accounts"].height == 800 // 5
    assert large["stage_history"].height > 3 * small["stage_history"].height


def test_table_sizes_follow_the_scale(tables):
    """Leads about 2x, history at least 5x, usage about 10x, touches about 3x, accounts N/5."""
    assert tables["leads"].height == 2 * SCALE
    assert tables["stage_history"].height >= 5 * SCALE
    assert 6 * SCALE <= tables["usage"].height <= 14 * SCALE
    assert 2 * SCALE <= tables["touches"].height <= 4 * SCALE
    assert tables["accounts"].height == SCALE // 5


def test_build_writes_every_table_and_marks_the_demo(tmp_path):
    """build_demo fills every canonical table and the snapshots in the file and sets the demo flag."""
    db = tmp_path / "demo.duckdb"
    counts = build_demo(db, seed=7, scale=SCALE, today=TODAY)
    with store.connect(db) as con:
        stored = store.row_counts(con)
        snaps = con.execute("SELECT count(*), count(DISTINCT snapshot_date) FROM _opportunity_snapshots").fetchone()
        assert store.is_demo(con)
    for name in TABLES:
        assert stored[name] > 0, name
        assert stored[name] == counts[name], name
    assert snaps == (counts["_opportunity_snapshots"], 12)


def test_rebuild_replaces_the_previous_company(tmp_path):
    """A second build replaces the tables instead of adding to them, in a new data version."""
    db = tmp_path / "demo.duckdb"
    build_demo(db, seed=7, scale=300, today=TODAY)
    first = store.data_version(db)
    build_demo(db, seed=7, scale=200, today=TODAY)
    with store.connect(db) as con:
        assert store.row_counts(con)["opportunities"] == 200
    assert store.data_version(db) > first


def test_references_point_at_existing_rows(tables):
    """Every account, deal and lead id a table mentions exists in its own table."""
    accounts = _ids(tables["accounts"], "account_id")
    for name in ("opportunities", "leads", "subscriptions", "lifecycle", "usage", "touches"):
        assert _ids(tables[name], "account_id") <= accounts, name
    deals = _ids(tables["opportunities"], "opportunity_id")
    assert _ids(tables["stage_history"], "opportunity_id") == deals
    assert _ids(tables["leads"], "opportunity_id") <= deals
    assert _ids(tables["touches"], "opportunity_id") <= deals
    assert _ids(tables["touches"], "lead_id") <= _ids(tables["leads"], "lead_id")
    assert tables["opportunities"]["opportunity_id"].is_unique().all()
    assert tables["accounts"]["account_id"].is_unique().all()


def test_deal_flags_agree_with_the_stage(tables):
    """is_closed / is_won are what the default stage settings say about the stage."""
    opps = tables["opportunities"]
    flags = state_flags(opps["stage"], Settings())
    assert opps["is_closed"].equals(flags["is_closed"])
    assert opps["is_won"].equals(flags["is_won"])
    assert set(opps["stage"].unique()) == {s.name for s in Settings().stages}
    assert set(opps["type"].unique()) == {"new_business", "expansion", "renewal"}
    lost = opps.filter(pl.col("is_closed") & ~pl.col("is_won"))
    assert lost["lost_reason"].null_count() == 0
    others = opps.filter(~(pl.col("is_closed") & ~pl.col("is_won")))
    assert others["lost_reason"].null_count() == others.height


def test_deal_dates_are_consistent(tables):
    """Closed deals closed by today; created <= close; open deals mostly due later, some past due."""
    opps = tables["opportunities"]
    assert (opps["created_at"] <= opps["close_date"]).all()
    assert (opps.filter(pl.col("is_closed"))["close_date"] <= TODAY).all()
    assert (opps["created_at"] <= TODAY).all()
    assert opps["created_at"].min() <= TODAY - dt.timedelta(days=730)
    open_ = opps.filter(~pl.col("is_closed"))
    past_due = (open_["close_date"] < TODAY).sum()
    assert 0 < past_due < open_.height / 2


def test_history_is_ordered_and_ends_at_the_current_state(tables):
    """Stage changes increase in time per deal and the last one is the deal's current stage, amount and date."""
    hist = tables["stage_history"]
    gaps = hist.select(pl.col("changed_at").diff().over("opportunity_id").alias("gap"))["gap"].drop_nulls()
    assert (gaps > dt.timedelta(0)).all()
    last = hist.group_by("opportunity_id").agg(pl.all().sort_by("changed_at").last())
    both = tables["opportunities"].join(last, on="opportunity_id", suffix="_h")
    assert both.height == SCALE
    assert (both["stage"] == both["stage_h"]).all()
    assert (both["amount"] == both["amount_h"]).all()
    assert (both["close_date"] == both["close_date_h"]).all()
    assert (both["forecast_category"] == both["forecast_category_h"]).all()
    assert (hist["changed_at"].dt.date() <= TODAY).all()


def test_history_has_slips_skips_and_reentries(tables):
    """Some rows re-enter the same stage with a later close date, some deals skip or go back a stage."""
    hist = tables["stage_history"].sort("opportunity_id", "changed_at")
    prev = hist.select(
        pl.col("stage").shift().over("opportunity_id").alias("prev_stage"),
        pl.col("close_date").shift().over("opportunity_id").alias("prev_close"), "stage", "close_date")
    slips = prev.filter((pl.col("stage") == pl.col("prev_stage")) & (pl.col("close_date") > pl.col("prev_close")))
    assert slips.height > 0.05 * SCALE
    order = {s.name: s.funnel_step for s in Settings().stages}
    steps = hist.with_columns(pl.col("stage").replace_strict(order).alias("step")).with_columns(
        pl.col("step").diff().over("opportunity_id").alias("jump"))
    open_steps = steps.filter(pl.col("step") <= 4)
    assert (open_steps["jump"] < 0).sum() > 0  # back to an earlier stage
    assert (open_steps["jump"] > 1).sum() > 0  # a stage skipped


def test_forecast_category_follows_the_stage(tables):
    """Closed won is 'closed', closed lost 'omitted', open stages pipeline / best_case / commit."""
    opps = tables["opportunities"]
    by_stage = opps.group_by("stage").agg(pl.col("forecast_category").unique())
    cats = {r["stage"]: set(r["forecast_category"]) for r in by_stage.iter_rows(named=True)}
    assert cats["Closed Won"] == {"closed"}
    assert cats["Closed Lost"] == {"omitted"}
    assert cats["Prospecting"] == {"pipeline"}
    assert cats["Negotiation"] == {"commit"}
    probs = opps["probability"]
    assert 0 < probs.null_count() < opps.height
    assert ((probs.drop_nulls() >= 0) & (probs.drop_nulls() <= 1)).all()


def test_lead_timestamps_are_in_order(tables):
    """created <= mql <= sql <= converted, pql and first response after creation; nothing after today."""
    leads = tables["leads"]
    for a, b in (("created_at", "mql_at"), ("mql_at", "sql_at"), ("sql_at", "converted_at"),
                 ("created_at", "pql_at"), ("created_at", "first_response_at")):
        pair = leads.filter(pl.col(a).is_not_null() & pl.col(b).is_not_null())
        assert (pair[a] <= pair[b]).all(), (a, b)
    for col in ("created_at", "mql_at", "sql_at", "pql_at", "converted_at", "first_response_at"):
        assert (leads[col].drop_nulls().dt.date() <= TODAY).all(), col
    converted = leads.filter(pl.col("opportunity_id").is_not_null())
    assert (converted["status"] == "converted").all()
    assert converted["converted_at"].null_count() == 0
    assert leads["pql_at"].drop_nulls().len() > 0


def test_lead_response_times_breach_the_sla_sometimes(tables):
    """Some leads are answered within 5 minutes, some later, some never."""
    leads = tables["leads"]
    minutes = (leads["first_response_at"] - leads["created_at"]).dt.total_seconds() / 60
    assert (minutes.drop_nulls() <= 5).sum() > 0
    assert (minutes.drop_nulls() > 5).sum() > 0
    assert 0 < minutes.null_count() < leads.height / 4


def test_deal_opens_when_its_lead_converts(tables):
    """A converted lead's converted_at is its deal's creation day."""
    pair = tables["leads"].filter(pl.col("opportunity_id").is_not_null()).join(
        tables["opportunities"], on="opportunity_id", suffix="_opp")
    assert pair.height > 0
    assert (pair["converted_at"].dt.date() == pair["created_at_opp"]).all()


def test_subscriptions_have_churn_changes_and_winbacks(tables):
    """end_date after start_date; some churn, some plan changes, some accounts come back after a gap."""
    subs = tables["subscriptions"]
    ended = subs.filter(pl.col("end_date").is_not_null())
    assert ended.height > 0
    assert (ended["end_date"] > ended["start_date"]).all()
    assert (subs["start_date"] <= TODAY).all()
    assert (subs["mrr"] > 0).all()
    # A win-back starts after every earlier subscription of its account had ended.
    far = dt.date(9999, 1, 1)
    gaps = (subs.sort("account_id", "start_date", "subscription_id")
            .with_columns(pl.col("end_date").fill_null(far).cum_max().shift().over("account_id").alias("covered"))
            .filter(pl.col("covered").is_not_null() & (pl.col("start_date") > pl.col("covered"))))
    assert gaps.height > 0


def test_lifecycle_has_sla_breaches_and_upcoming_renewals(tables):
    """Kickoffs after signing (some later than 48 h or missing), renewals due soon with partial outreach."""
    life = tables["lifecycle"]
    won_accounts = _ids(tables["opportunities"].filter(pl.col("is_won")), "account_id")
    assert _ids(life, "account_id") == won_accounts
    hours = (life["kickoff_at"] - life["won_at"]).dt.total_seconds() / 3600
    assert (hours.drop_nulls() > 0).all()
    assert (hours.drop_nulls() > 48).sum() > 0
    assert hours.null_count() > 0
    days = (life["first_value_at"] - life["won_at"]).dt.total_seconds() / 86400
    assert (days.drop_nulls() > 30).sum() > 0
    soon = life.filter((pl.col("renewal_date") > TODAY) & (pl.col("renewal_date") <= TODAY + dt.timedelta(days=90)))
    assert soon.height > 0
    reached = soon.filter(pl.col("renewal_outreach_at").dt.date() <= TODAY).height
    assert 0 < reached < soon.height
    assert ((life["health_score"] >= 0) & (life["health_score"] <= 100)).all()


def test_usage_is_recent_weekly_and_per_feature(tables):
    """Usage rows run up to the last week before today, over 5 to 8 features, for customer accounts."""
    usage = tables["usage"]
    assert usage["date"].max() <= TODAY
    assert usage["date"].max() > TODAY - dt.timedelta(days=7)
    assert 5 <= usage["feature"].n_unique() <= 8
    assert (usage["active_users"] > 0).all()
    assert _ids(usage, "account_id") <= _ids(tables["subscriptions"], "account_id")


def test_spend_is_monthly_by_category(tables):
    """Spend has marketing and sales rows on the first of every month up to this one."""
    spend = tables["spend"]
    assert set(spend["category"].unique()) == {"marketing", "sales"}
    assert (spend["month"].dt.day() == 1).all()
    assert spend["month"].max() == TODAY.replace(day=1)
    assert (spend["amount"] > 0).all()


def test_targets_cover_the_current_quarter(tables):
    """The quarter of today has a company target equal to the sum of its segment targets."""
    targets = tables["targets"].filter(pl.col("period_start") == dt.date(2026, 4, 1))
    assert (targets["period_end"] == dt.date(2026, 6, 30)).all()
    company = targets.filter(pl.col("segment").is_null())["target_amount"]
    segments = targets.filter(pl.col("segment").is_not_null())
    assert company.len() == 1
    assert set(segments["segment"]) == {"SMB", "Mid-Market", "Enterprise"}
    assert company[0] == pytest.approx(segments["target_amount"].sum())


def test_last_snapshot_matches_the_open_deals(demo):
    """The snapshot taken today holds every open deal in its current stage, amount and close date."""
    opps, snaps = demo[0]["opportunities"], demo[1]
    today = snaps.filter(pl.col("snapshot_date") == TODAY)
    open_now = opps.filter(~pl.col("is_closed"))
    both = open_now.join(today, on="opportunity_id", how="left", suffix="_s")
    assert both["stage_s"].null_count() == 0
    assert (both["stage"] == both["stage_s"]).all()
    assert (both["amount"] == both["amount_s"]).all()
    assert (both["close_date"] == both["close_date_s"]).all()
    assert snaps["snapshot_date"].n_unique() == 12
    assert (snaps["upload_id"] == 0).all()


def test_cli_builds_and_reports_counts(tmp_path, capsys):
    """python -m revops demo writes the file and prints the row counts."""
    db = tmp_path / "cli.duckdb"
    assert main(["demo", "--db", str(db), "--scale", "120", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "opportunities" in out and "120" in out
    with store.connect(db) as con:
        assert store.row_counts(con)["opportunities"] == 120


def test_too_small_scale_is_a_clear_error(tmp_path, capsys):
    """A scale below the minimum is refused with a sentence, not a traceback."""
    with pytest.raises(UserError):
        build_demo(tmp_path / "x.duckdb", scale=10)
    assert main(["demo", "--db", str(tmp_path / "y.duckdb"), "--scale", "10"]) == 1
    assert "at least" in capsys.readouterr().err
