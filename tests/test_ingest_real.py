"""The real public files load as they are, and metrics on them match independent SQL on the raw CSV."""
from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest

from revops import store
from revops.frames import load_frames
from revops.ingest import ingest_file, preview
from revops.metrics import BY_ID
from revops.period import Period

ALL_OF_MAVEN = Period(dt.date(2017, 12, 31), dt.date(2016, 1, 1), dt.date(2017, 12, 31))


@pytest.fixture(scope="module")
def maven_db(tmp_path_factory, real_dir):
    db = tmp_path_factory.mktemp("maven") / "m.duckdb"
    result = ingest_file(db, real_dir / "maven-crm" / "sales_pipeline.csv", "opportunities")
    assert result.rows_loaded == 8800 and result.rows_rejected == 0
    return db


@pytest.fixture(scope="module")
def maven_frames(maven_db):
    with store.connect(maven_db) as con:
        return load_frames(con)


def _sql(query: str, real_dir) -> list[tuple]:
    return duckdb.sql(query.replace("PIPE", f"'{real_dir / 'maven-crm' / 'sales_pipeline.csv'}'")
                      .replace("SUBS", f"'{real_dir / 'mrr-playbook' / 'subscription_periods.csv'}'")).fetchall()


def test_maven_mapping_is_found_without_help(real_dir):
    """deal_stage→stage, engage_date→created_at, close_value→amount, sales_agent→owner, account→account_id."""
    pv = preview(real_dir / "maven-crm" / "sales_pipeline.csv")
    assert pv.table == "opportunities"
    assert pv.mapping == {"opportunity_id": "opportunity_id", "deal_stage": "stage", "engage_date": "created_at",
                          "close_value": "amount", "sales_agent": "owner", "account": "account_id",
                          "close_date": "close_date"}
    assert pv.unmatched == ["product"]


def test_maven_quirks_survive_loading(maven_frames):
    """Prospecting deals have no created_at; open deals no close date or amount; 1,425 without account; lost = 0."""
    o = maven_frames.opportunities
    assert o.height == 8800
    counts = dict(o.group_by("stage").len().rows())
    assert counts == {"Won": 4238, "Lost": 2473, "Engaging": 1589, "Prospecting": 500}
    assert o.filter(pl.col("stage") == "Prospecting")["created_at"].null_count() == 500
    open_deals = o.filter(pl.col("stage").is_in(["Engaging", "Prospecting"]))
    assert open_deals["close_date"].null_count() == open_deals.height
    assert open_deals["amount"].null_count() == open_deals.height
    assert o["account_id"].null_count() == 1425
    assert o.filter(pl.col("stage") == "Lost")["amount"].unique().to_list() == [0.0]
    assert dict(o.group_by("state").len().rows()) == {"won": 4238, "lost": 2473, "open": 2089}


def test_maven_counts_match_sql_on_the_raw_file(maven_frames, real_dir):
    """The stage counts above are the raw file's (independent DuckDB read)."""
    raw = dict(_sql("SELECT deal_stage, count(*) FROM read_csv(PIPE) GROUP BY 1", real_dir))
    got = dict(maven_frames.opportunities.group_by("stage").len().rows())
    assert got == raw


def test_maven_win_rate_matches_sql(maven_frames, real_dir):
    """win_rate over all of the data = won ÷ (won + lost) counted on the raw CSV (4238 / 6711 ≈ 0.6315)."""
    [(expected,)] = _sql("SELECT count(*) FILTER (deal_stage = 'Won') / count(*) FILTER (deal_stage IN ('Won','Lost')) "
                         "FROM read_csv(PIPE)", real_dir)
    got = BY_ID["win_rate"].compute(maven_frames, ALL_OF_MAVEN).value
    assert got == pytest.approx(expected)
    assert got == pytest.approx(4238 / 6711)


def test_maven_average_deal_size_matches_sql(maven_frames, real_dir):
    """avg_deal_size over all of the data = mean close_value of the won deals in the raw CSV."""
    [(expected,)] = _sql("SELECT avg(close_value) FROM read_csv(PIPE) WHERE deal_stage = 'Won'", real_dir)
    got = BY_ID["avg_deal_size"].compute(maven_frames, ALL_OF_MAVEN).value
    assert got == pytest.approx(expected)


def test_mrr_playbook_loads_and_arr_matches_sql(tmp_path, real_dir):
    """ARR on 2019-06-15 = 12 × Σ monthly_amount of periods with start ≤ day < end (end exclusive)."""
    db = tmp_path / "s.duckdb"
    result = ingest_file(db, real_dir / "mrr-playbook" / "subscription_periods.csv", "subscriptions")
    assert (result.rows_loaded, result.rows_rejected) == (121, 0)
    day = dt.date(2019, 6, 15)
    [(monthly,)] = _sql(f"SELECT sum(monthly_amount) FROM read_csv(SUBS) WHERE start_date <= DATE '{day}' "
                        f"AND (end_date IS NULL OR end_date > DATE '{day}')", real_dir)
    with store.connect(db) as con:
        frames = load_frames(con)
    assert frames.subscriptions.height == 121
    got = BY_ID["arr"].compute(frames, Period.ending(day)).value
    assert got == pytest.approx(12 * monthly)


def test_maven_accounts_load_with_their_name_as_key(tmp_path, real_dir):
    """accounts.csv: account is the key the pipeline refers to; sector → industry; the rest kept aside."""
    pv = preview(real_dir / "maven-crm" / "accounts.csv", None, "accounts")
    assert pv.mapping == {"account": "account_id", "sector": "industry", "employees": "employees"}
    assert pv.rows_ok == 85 and pv.rows_rejected == 0
    assert set(pv.unmatched) == {"year_established", "revenue", "office_location", "subsidiary_of"}
