"""The benchmark's yardstick: every metric of METRICS.md as hand-written DuckDB SQL over the same file.

    python bench/baseline.py DB.duckdb [--as-of YYYY-MM-DD]
    # prints {"as_of", "window", "metrics": {id: value}, "stage_conversion": [row], "handoffs": [row]}

The two tables have the shape of `python -m revops metrics --json`'s top-level lists (same keys,
same row order), so the bench can compare them cell by cell.

It shares nothing with revops' arithmetic: only the workspace settings (stage names, SLAs, fiscal year,
gross margin) are read through revops.schema, because they are configuration, not computation. The
bench times it against `python -m revops metrics --json` and checks that both give the same numbers.
"""
from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from revops.schema import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # revops, for the settings model only

# ---------------------------------------------------------------------------------------
# Calendar arithmetic on a handful of dates (the rows are all in SQL)

def month_end(d: dt.date) -> dt.date:
    return dt.date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


def add_months(d: dt.date, n: int) -> dt.date:
    i = d.year * 12 + d.month - 1 + n
    return dt.date(i // 12, i % 12 + 1, 1)


def month_ends(start: dt.date, end: dt.date) -> list[dt.date]:
    out, m = [], month_end(start)
    while m <= end:
        out.append(m)
        m = month_end(add_months(m, 1))
    return out


def quarter(d: dt.date, fiscal: int) -> tuple[dt.date, dt.date]:
    start = add_months(dt.date(d.year, d.month, 1), -((d.month - fiscal) % 3))
    return start, add_months(start, 3) - dt.timedelta(days=1)


def year_before(d: dt.date) -> dt.date:
    return dt.date(d.year - 1, d.month, min(d.day, calendar.monthrange(d.year - 1, d.month)[1]))


def lit(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


# ---------------------------------------------------------------------------------------
# Settings: stored in _meta as JSON, else the defaults

def settings(con: duckdb.DuckDBPyConnection):  # noqa: ANN201
    from revops.schema import Settings
    row = con.execute("SELECT value FROM _meta WHERE key = 'settings'").fetchone()
    return Settings.model_validate_json(row[0]) if row else Settings()


def text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def stage_values(cfg) -> str:  # noqa: ANN001
    """VALUES rows (stage_key, stage_name, state, probability) of every spelling of every configured stage."""
    rows: dict[str, tuple[str, str, float]] = {}
    for s in cfg.stages:
        state = "won" if s.is_won else ("lost" if s.is_closed else "open")
        for spelling in [s.name, *s.aliases]:
            rows.setdefault(re.sub(r"[^0-9a-z]", "", spelling.lower()), (s.name, state, s.probability))
    return ", ".join(f"({text(k)}, {text(n)}, '{st}', {p!r})" for k, (n, st, p) in rows.items())


def stage_chain(cfg: Settings) -> list[str]:
    """The funnel a deal walks: open stages by funnel step, then the first won stage (named "Won" when none is)."""
    ordered = sorted(cfg.stages, key=lambda s: s.funnel_step)
    return [s.name for s in ordered if not s.is_closed] + ([s.name for s in ordered if s.is_won][:1] or ["Won"])


# A placed stage decides the state; an unplaced one falls back to the stored flags.
STATE = ("coalesce(s.state, CASE WHEN coalesce(o.is_won, false) THEN 'won' "
         "WHEN coalesce(o.is_closed, false) THEN 'lost' ELSE 'open' END)")

SETUP = """
CREATE TEMP TABLE stage_map AS SELECT * FROM (VALUES {stages}) v(stage_key, stage_name, state, stage_probability);
CREATE TEMP TABLE chain AS SELECT * FROM (VALUES {chain}) v(stage_name, idx);
-- the few distinct stage names are normalised, not the million rows; chain_idx places the current stage
-- (an unplaced stage keeps its own name) in the funnel
CREATE TEMP TABLE stage_of AS
  SELECT s.stage, m.state, m.stage_probability, m.state IS NOT NULL AS known, c.idx AS chain_idx
  FROM (SELECT DISTINCT stage FROM opportunities) s
  LEFT JOIN stage_map m ON m.stage_key = regexp_replace(lower(s.stage), '[^0-9a-z]', '', 'g')
  LEFT JOIN chain c ON c.stage_name = coalesce(m.stage_name, s.stage);
CREATE TEMP TABLE opps AS
  SELECT o.opportunity_id, o.account_id, CAST(o.amount AS DOUBLE) AS amount, o.created_at, o.close_date,
         o.probability, o.type, s.stage_probability, coalesce(s.known, false) AS stage_known, s.chain_idx,
         {state} AS state
  FROM opportunities o LEFT JOIN stage_of s USING (stage);
CREATE TEMP TABLE subs AS
  SELECT account_id, start_date, end_date, CAST(mrr AS DOUBLE) AS mrr FROM subscriptions;
"""

LATEST = """
SELECT max(d) FROM (
  SELECT max(CAST(created_at AS DATE)) AS d FROM leads
  UNION ALL SELECT max(created_at) FROM opps
  UNION ALL SELECT max(close_date) FROM opps WHERE state <> 'open'
  UNION ALL SELECT max(CAST(changed_at AS DATE)) FROM stage_history
  UNION ALL SELECT max(date) FROM usage
  UNION ALL SELECT max(start_date) FROM subs)
"""


def arr_by_account(day: str) -> str:
    return (f"SELECT account_id, 12 * sum(mrr) AS arr FROM subs WHERE start_date <= {day} "
            f"AND (end_date IS NULL OR end_date > {day}) GROUP BY account_id")


def arr_total(day: str) -> str:
    return f"SELECT 12 * sum(mrr) FROM subs WHERE start_date <= {day} AND (end_date IS NULL OR end_date > {day})"


MONTH_NO = "(year({d}) * 12 + month({d}) - 1)"


def month_no(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def covered_sql(lo: int | str, hi: int | str, subs: str = "subs") -> str:
    """Each subscription's rows (account_id, mrr, m) at the month ends it covers among month numbers lo..hi.

    A subscription covers the month ends from its start month up to the month before its (exclusive)
    end month, so each is unnested over just the months it covers. lo and hi may be columns of `subs`.
    """
    first = MONTH_NO.format(d="start_date")
    stop = f"coalesce({MONTH_NO.format(d='end_date')}, {hi} + 1)"
    return f"SELECT account_id, mrr, unnest(range(greatest({first}, {lo}), least({stop}, {hi} + 1))) AS m FROM {subs}"


def month_end_of(m: str) -> str:
    """The last day of month number m (SQL)."""
    return f"last_day(make_date(CAST({m} // 12 AS INTEGER), CAST({m} % 12 + 1 AS INTEGER), 1))"


def movements_sql(ends: list[dt.date]) -> str:
    """Month-end MRR movements (dbt mrr-playbook names) at `ends`, compared with the month end before the first."""
    lo, hi = month_no(add_months(ends[0], -1)), month_no(ends[-1])
    return f"""
    WITH covered AS ({covered_sql(lo, hi)}),
    active AS (SELECT account_id, m, sum(mrr) AS mrr FROM covered GROUP BY ALL),
    grid AS (
      SELECT a.account_id, p.m, coalesce(x.mrr, 0) AS mrr
      FROM (SELECT DISTINCT account_id FROM subs) a CROSS JOIN range({lo}, {hi + 1}) p(m)
      LEFT JOIN active x ON x.account_id = a.account_id AND x.m = p.m),
    paired AS (SELECT *, lag(mrr) OVER (PARTITION BY account_id ORDER BY m) AS prev FROM grid),
    first_paid AS (
      SELECT account_id, min(last_day(start_date)) AS first_active FROM subs
      WHERE mrr > 0 AND (end_date IS NULL OR end_date > last_day(start_date)) GROUP BY account_id)
    SELECT p.account_id, {month_end_of("p.m")} AS month_end,
      abs(p.mrr - p.prev) AS amount,
      CASE WHEN p.prev <= 0 AND p.mrr > 0 AND NOT coalesce(f.first_active < {month_end_of("p.m")}, false)
           THEN 'new'
           WHEN p.prev <= 0 AND p.mrr > 0 THEN 'reactivation'
           WHEN p.prev > 0 AND p.mrr <= 0 THEN 'churn'
           WHEN p.prev > 0 AND p.mrr > p.prev THEN 'expansion'
           WHEN p.prev > 0 AND p.mrr < p.prev THEN 'contraction' END AS movement
    FROM paired p LEFT JOIN first_paid f USING (account_id)
    WHERE p.m > {lo}
    """


# Data quality: per table, columns whose emptiness only means "not happened" and the validity rules.
EVENT_COLUMNS = {
    "leads": {"first_response_at", "mql_at", "sql_at", "pql_at", "converted_at", "opportunity_id"},
    "opportunities": {"probability", "is_closed", "is_won"},
    "subscriptions": {"end_date"},
    "lifecycle": {"kickoff_at", "first_value_at", "renewal_outreach_at"},
    "touches": {"lead_id", "account_id", "opportunity_id"},
    "targets": {"segment", "owner"},
}
VALID = {
    ("accounts", "employees"): "employees >= 0",
    ("leads", "first_response_at"): "created_at IS NULL OR first_response_at >= created_at",
    ("opportunities", "stage"): "stage_known",
    ("opportunities", "amount"): "amount >= 0",
    ("opportunities", "probability"): "probability BETWEEN 0 AND 1",
    ("opportunities", "close_date"): "created_at IS NULL OR close_date >= created_at",
    ("stage_history", "amount"): "amount >= 0",
    ("subscriptions", "mrr"): "mrr >= 0",
    ("subscriptions", "end_date"): "end_date > start_date",
    ("lifecycle", "health_score"): "health_score BETWEEN 0 AND 100",
    ("lifecycle", "csat"): "csat BETWEEN 0 AND 100",
    ("usage", "active_users"): "active_users >= 0",
    ("usage", "events"): "events >= 0",
    ("spend", "amount"): "amount >= 0",
    ("targets", "target_amount"): "target_amount >= 0",
    ("targets", "period_end"): "period_end >= period_start",
}
QUALITY_TABLES = ("accounts", "leads", "opportunities", "stage_history", "subscriptions", "lifecycle", "usage",
                  "spend", "touches", "targets")


def quality_sql(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """One scan of a table: Σ expected cells and Σ filled-and-valid cells."""
    cols = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main' "
        "ORDER BY ordinal_position", [table]).fetchall()]
    expected, valid = [], []
    for c in cols:
        filled = f'"{c}" IS NOT NULL'
        if c in EVENT_COLUMNS.get(table, set()):
            exp = filled
        elif (table, c) == ("opportunities", "lost_reason"):
            exp = "state = 'lost'"
        else:
            exp = "true"
        rule = VALID.get((table, c), "true")
        expected.append(f"count(*) FILTER ({exp})")
        valid.append(f"count(*) FILTER (({exp}) AND {filled} AND coalesce({rule}, true))")
    source = (f"(SELECT o.*, {STATE} AS state, coalesce(s.known, false) AS stage_known "
              "FROM opportunities o LEFT JOIN stage_of s USING (stage))" if table == "opportunities" else f'"{table}"')
    return f"SELECT count(*), {' + '.join(expected)}, {' + '.join(valid)} FROM {source}"


# ---------------------------------------------------------------------------------------
# The tables: stage conversion and the six handoffs

def ts(t: dt.datetime) -> str:
    return f"TIMESTAMP '{t.isoformat(sep=' ')}'"


# Deals created in the window (dated by their first stage-history row when created_at is empty), where their
# current stage puts them in the chain, and their stage-history rows placed in the chain too (won stages are
# the chain's last step; lost and unplaced stages have no place). `deal` is an integer key: the history work
# below partitions and groups millions of rows by deal, which integers do faster than the text ids.
COHORT = """
CREATE TEMP TABLE cohort AS
  WITH undated AS (
    SELECT opportunity_id, CAST(min(changed_at) AS DATE) AS first_seen FROM stage_history
    WHERE opportunity_id IN (SELECT opportunity_id FROM opps WHERE created_at IS NULL) GROUP BY ALL)
  SELECT row_number() OVER () AS deal, o.opportunity_id, o.account_id, o.amount, o.state, o.created_at, o.close_date,
         coalesce(o.created_at, u.first_seen) AS created,
         CASE o.state WHEN 'won' THEN {won} WHEN 'open' THEN coalesce(o.chain_idx, 0) ELSE 0 END AS current_idx
  FROM opps o LEFT JOIN undated u USING (opportunity_id)
  WHERE coalesce(o.created_at, u.first_seen) BETWEEN {S} AND {E};
CREATE TEMP TABLE cohort_history AS
  WITH placed AS (
    SELECT s.stage, m.state, CASE WHEN m.state = 'won' THEN {won} ELSE c.idx END AS idx
    FROM (SELECT DISTINCT stage FROM stage_history) s
    LEFT JOIN stage_map m ON m.stage_key = regexp_replace(lower(s.stage), '[^0-9a-z]', '', 'g')
    LEFT JOIN chain c ON c.stage_name = m.stage_name)
  SELECT c.deal, h.changed_at, p.state, p.idx
  FROM stage_history h JOIN cohort c USING (opportunity_id) LEFT JOIN placed p USING (stage);
"""

# Reached is cumulative: the furthest of the current stage and every history row. Days in a stage: each visit
# runs to the deal's next row (the close date stands in for a closing row the history lacks); a stage still
# being visited (a visit without an end) or with negative time is left out.
STAGE_CONVERSION = """
WITH history AS (
  SELECT deal, max(idx) AS furthest, bool_or(state IN ('won', 'lost')) AS closing_row FROM cohort_history GROUP BY ALL),
deals AS (SELECT c.*, h.furthest, h.closing_row FROM cohort c LEFT JOIN history h USING (deal)),
spread AS (SELECT greatest(current_idx, coalesce(furthest, 0)) AS reached, count(*) AS n FROM deals GROUP BY ALL),
visits AS (
  SELECT deal, changed_at, idx FROM cohort_history
  UNION ALL
  SELECT deal, CAST(close_date AS TIMESTAMP), NULL FROM deals
  WHERE state IN ('won', 'lost') AND close_date IS NOT NULL AND NOT coalesce(closing_row, false)),
timed AS (
  SELECT deal, idx, epoch(lead(changed_at) OVER (PARTITION BY deal ORDER BY changed_at) - changed_at) / 86400 AS days
  FROM visits),
stay AS (
  SELECT idx, sum(days) AS days FROM timed WHERE idx < {won} GROUP BY deal, idx
  HAVING count(days) = count(*) AND sum(days) >= 0),
medians AS (SELECT idx, quantile_cont(days, 0.5) AS median_days FROM stay GROUP BY ALL)
SELECT c.stage_name, coalesce(sum(s.n) FILTER (s.reached >= c.idx), 0), coalesce(sum(s.n) FILTER (s.reached > c.idx), 0),
       any_value(m.median_days)
FROM chain c LEFT JOIN spread s ON true LEFT JOIN medians m USING (idx)
WHERE c.idx < {won} GROUP BY c.idx, c.stage_name ORDER BY c.idx
"""

# The counts every handoff reports, over a relation with an `outcome` column.
OUTCOMES = ("count(*), count(*) FILTER (outcome = 'passed'), count(*) FILTER (outcome = 'leaked'), "
            "count(*) FILTER (outcome = 'in progress')")

# 1. MQLs created in the window: passed when they became an opportunity; leaked when disqualified or gone
# cold (no opportunity a stall limit after qualifying).
LEAD_TO_OPPORTUNITY = """
WITH mqls AS (
  SELECT l.created_at, l.first_response_at, coalesce(l.mql_at, l.sql_at, l.created_at) AS qualified_at,
         coalesce(l.converted_at, CAST(o.created_at AS TIMESTAMP)) AS opportunity_at,
         l.converted_at IS NOT NULL OR l.opportunity_id IS NOT NULL AS became_opportunity,
         coalesce(contains(lower(l.status), 'disqual'), false) AS disqualified
  FROM leads l LEFT JOIN opps o USING (opportunity_id)
  WHERE CAST(l.created_at AS DATE) BETWEEN {S} AND {E}
    AND (l.mql_at IS NOT NULL OR l.sql_at IS NOT NULL OR l.converted_at IS NOT NULL OR l.opportunity_id IS NOT NULL)),
judged AS (
  SELECT *, CASE WHEN became_opportunity THEN 'passed' WHEN disqualified OR qualified_at <= {cold_before} THEN 'leaked'
                 ELSE 'in progress' END AS outcome,
         epoch(opportunity_at - qualified_at) / 3600 AS hours
  FROM mqls)
SELECT {outcomes}, quantile_cont(hours, 0.5) FILTER (hours >= 0),
       count(*) FILTER (epoch(first_response_at - created_at) / 60 <= {sla})
FROM judged
"""

# 2. Deals created in the window: passed when won, leaked when lost or stalled (open, no stage change in the
# stall limit); the SLA is the open deals' share that is not stalled.
OPPORTUNITY_TO_CLOSE = """
WITH last_change AS (
  SELECT deal, CAST(max(changed_at) AS DATE) AS changed FROM cohort_history WHERE changed_at < {cutoff} GROUP BY ALL),
deals AS (
  SELECT c.*, c.state = 'open' AND coalesce(datediff('day', coalesce(l.changed, c.created_at), {A}) >= {stall}, false)
              AS stalled
  FROM cohort c LEFT JOIN last_change l USING (deal)),
judged AS (
  SELECT *, CASE WHEN state = 'won' THEN 'passed' WHEN state = 'lost' OR stalled THEN 'leaked' ELSE 'in progress' END
            AS outcome
  FROM deals)
SELECT {outcomes}, quantile_cont(24.0 * datediff('day', created, close_date)::DOUBLE, 0.5) FILTER (state = 'won'),
       count(*) FILTER (state = 'open' AND NOT stalled), count(*) FILTER (state = 'open'),
       coalesce(sum(amount) FILTER (outcome = 'leaked'), 0)
FROM judged
"""

# 3 and 4. Customers signed in the window (lifecycle won_at, else their first won deal's close date).
# 3 passes on a kickoff (or first value); 4 takes the kicked-off ones and passes on first value. Each leaks
# once its SLA has run out; a leak costs the account's ARR at as_of, else its won deals' amount.
ONBOARDING = """
WITH account_value AS (
  SELECT account_id, CASE WHEN a.arr > 0 THEN a.arr ELSE w.won END AS value
  FROM ({arr_now}) a
  FULL JOIN (SELECT account_id, sum(amount) AS won FROM opps WHERE state = 'won' AND account_id IS NOT NULL
             GROUP BY ALL) w USING (account_id)),
signed AS (
  SELECT l.won_at_filled AS won_at, l.kickoff_at, l.first_value_at, v.value,
         l.kickoff_at IS NOT NULL OR l.first_value_at IS NOT NULL AS kicked
  FROM life l LEFT JOIN account_value v USING (account_id)
  WHERE CAST(l.won_at_filled AS DATE) BETWEEN {S} AND {E}),
judged AS (
  SELECT *,
    CASE WHEN kicked THEN 'passed' WHEN won_at < {kickoff_before} THEN 'leaked' ELSE 'in progress' END AS kickoff,
    CASE WHEN NOT kicked THEN NULL WHEN first_value_at IS NOT NULL THEN 'passed' WHEN won_at < {value_before}
         THEN 'leaked' ELSE 'in progress' END AS valued
  FROM signed)
SELECT count(*), count(*) FILTER (kickoff = 'passed'), count(*) FILTER (kickoff = 'leaked'),
       count(*) FILTER (kickoff = 'in progress'), quantile_cont(epoch(kickoff_at - won_at) / 3600, 0.5),
       count(*) FILTER (epoch(kickoff_at - won_at) / 3600 <= {kickoff_hours}),
       coalesce(sum(value) FILTER (kickoff = 'leaked'), 0),
       count(valued), count(*) FILTER (valued = 'passed'), count(*) FILTER (valued = 'leaked'),
       count(*) FILTER (valued = 'in progress'), quantile_cont(epoch(first_value_at - kickoff_at) / 3600, 0.5),
       count(*) FILTER (kicked AND epoch(first_value_at - won_at) / 86400 <= {value_days}),
       coalesce(sum(value) FILTER (valued = 'leaked'), 0)
FROM judged
"""

# 5. Customers whose first value was 12 months before a window day: passed on an MRR expansion at a month end
# (MRR up from a positive amount a month earlier), or a won expansion/upsell deal, within 12 months after first
# value; leaked once those months are over. MRR is needed only at each cohort account's own month ends, from the
# one before its first value to its deadline.
VALUE_TO_EXPAND = """
WITH cohort5 AS (
  SELECT account_id, first_value_at AS valued_at, first_value_at + INTERVAL 12 MONTH AS expand_by FROM lifecycle
  WHERE CAST(first_value_at AS DATE) BETWEEN {lo} AND {hi}),
months AS (
  SELECT account_id, min({valued_month}) - 1 AS first_m, least(max({deadline_month}), {as_of_month}) AS last_m
  FROM cohort5 GROUP BY ALL),
mrr AS (SELECT account_id, m, sum(mrr) AS mrr FROM ({covered}) GROUP BY ALL),
expansions AS (
  SELECT now.account_id, CAST({month_end} AS TIMESTAMP) AS at
  FROM mrr now JOIN mrr before ON before.account_id = now.account_id AND before.m = now.m - 1
  WHERE before.mrr > 0 AND now.mrr > before.mrr
  UNION ALL
  SELECT account_id, CAST(close_date AS TIMESTAMP) FROM opps
  WHERE state = 'won' AND (contains(lower(type), 'expansion') OR contains(lower(type), 'upsell'))),
first_expansion AS (
  SELECT c.account_id, min(x.at) AS expanded_at FROM cohort5 c JOIN expansions x USING (account_id)
  WHERE x.at > c.valued_at AND x.at <= c.expand_by AND x.at < {cutoff} GROUP BY ALL),
judged AS (
  SELECT c.*, f.expanded_at, CASE WHEN f.expanded_at IS NOT NULL THEN 'passed' WHEN c.expand_by < {cutoff}
                                  THEN 'leaked' ELSE 'in progress' END AS outcome
  FROM cohort5 c LEFT JOIN first_expansion f USING (account_id))
SELECT {outcomes}, quantile_cont(epoch(expanded_at - valued_at) / 3600, 0.5),
       coalesce(sum(coalesce(a.arr, 0)) FILTER (outcome = 'leaked'), 0)
FROM judged j LEFT JOIN ({arr_now}) a USING (account_id)
"""

# 6. Renewals due in the window before as_of: the stated renewal date and, for customers who renewed already,
# its yearly anniversaries back into the window (kept when a contract ran into them). Passed when MRR > 0 the
# day after, leaked when not. SLA: outreach at least the outreach lead before the stated date.
EXPAND_TO_RENEW = """
WITH anniversaries AS (
  SELECT account_id, renewal_date, renewal_outreach_at,
         unnest(range(0, greatest(CAST(floor(datediff('day', {S}, renewal_date) / 365) AS BIGINT) + 1, 0) + 1)) AS k
  FROM lifecycle WHERE renewal_date IS NOT NULL),
due AS (
  SELECT * FROM (SELECT account_id, CAST(renewal_date - to_years(CAST(k AS INTEGER)) AS DATE) AS due, k = 0 AS stated,
                        renewal_outreach_at FROM anniversaries)
  WHERE due BETWEEN {S} AND {E} AND due < {A}),
billing AS (
  SELECT d.account_id, d.due,
         sum(s.mrr) FILTER (s.start_date <= d.due - 1 AND (s.end_date IS NULL OR s.end_date > d.due - 1)) AS mrr_before,
         sum(s.mrr) FILTER (s.start_date <= d.due + 1 AND (s.end_date IS NULL OR s.end_date > d.due + 1)) AS mrr_after
  FROM (SELECT DISTINCT account_id, due FROM due) d JOIN subs s USING (account_id) GROUP BY ALL),
judged AS (
  SELECT d.stated, coalesce(b.mrr_before, 0) AS mrr_before,
         CASE WHEN d.stated THEN datediff('day', CAST(d.renewal_outreach_at AS DATE), d.due) END AS lead_days,
         CASE WHEN NOT {known} THEN 'in progress' WHEN coalesce(b.mrr_after, 0) > 0 THEN 'passed' ELSE 'leaked' END
           AS outcome
  FROM due d LEFT JOIN billing b USING (account_id, due)
  WHERE d.stated OR coalesce(b.mrr_before, 0) > 0)
SELECT {outcomes}, quantile_cont(24.0 * lead_days::DOUBLE, 0.5),
       count(*) FILTER (stated AND lead_days >= {lead}), count(*) FILTER (stated),
       coalesce(sum(12 * mrr_before) FILTER (outcome = 'leaked'), 0)
FROM judged
"""

HANDOFF_NAMES = (  # key, name, from team, to team, unit, time basis, money basis
    ("lead_to_opportunity", "Lead → Opportunity", "Marketing", "Sales", "MQLs", "qualified to opportunity",
     "leaked MQLs × win rate × average won deal (deals closed in the window)"),
    ("opportunity_to_close", "Opportunity → Close", "Sales", "Sales", "deals", "created to won",
     "amount of the lost and stalled deals"),
    ("close_to_onboard", "Close → Onboard", "Sales", "Customer success", "customers", "signature to kickoff",
     "value of the signed customers without kickoff (ARR, else won amount)"),
    ("onboard_to_value", "Onboard → Value", "Customer success", "Customer success", "customers",
     "kickoff to first value", "value of the customers without first value (ARR, else won amount)"),
    ("value_to_expand", "Value → Expand", "Customer success", "Customer success", "customers",
     "first value to first expansion", "ARR at as-of of the customers that did not expand"),
    ("expand_to_renew", "Expand → Renew", "Customer success", "Customer success", "renewals",
     "outreach ahead of renewal", "ARR before renewal of the customers that churned"),
)


def duration_text(hours: float | None) -> str:
    """A handoff time as the report words it: hours under two days, else days; a decimal below ten."""
    if hours is None:
        return "—"
    value, unit = (hours, "hours") if abs(hours) < 48 else (hours / 24, "days")
    decimals = 1 if abs(value) < 10 else 0
    unit = unit[:-1] if round(abs(value), decimals) == 1 else unit
    return f"{'-' if value < 0 else ''}{abs(value):,.{decimals}f} {unit}"


def handoff_row(number: int, counts: tuple, median_hours: float | None, sla: str, sla_met: int, sla_base: int,
                no_sla: str, money: float | None, money_reason: str | None) -> dict:
    """One row of the handoffs table from its numbers (the reasons say why a number is empty)."""
    key, name, from_team, to_team, unit, time_basis, money_basis = HANDOFF_NAMES[number - 1]
    entered, passed, leaked, in_progress = counts
    decided = passed + leaked
    if decided:
        leak_reason = None
    elif entered == 0:
        leak_reason = f"No {unit} entered this handoff in the window."
    else:
        leak_reason = f"None of the {entered:,} {unit} has passed or leaked yet."
    sla_reason = None if sla_base else no_sla
    return {"number": number, "key": key, "handoff": name, "from_team": from_team, "to_team": to_team,
            "team": to_team, "unit": unit, "entered": entered, "passed": passed, "leaked": leaked,
            "in_progress": in_progress, "leak_rate": leaked / decided if decided else None,
            "leak_reason": leak_reason, "median_hours": median_hours, "median_time": duration_text(median_hours),
            "time_basis": time_basis, "sla": sla, "sla_compliance": sla_met / sla_base if sla_base else None,
            "sla_reason": sla_reason, "money_at_stake": money, "money_basis": money_basis,
            "money_reason": money_reason,
            "notes": " ".join(r for r in (leak_reason, sla_reason, money_reason) if r) or None}


def tables(con: duckdb.DuckDBPyConnection, cfg: Settings, as_of: dt.date, start: dt.date, end: dt.date,
           closed: tuple, n_subs: int) -> dict[str, list[dict]]:
    """stage_conversion and handoffs, as the report's lists of rows.

    closed: (deals closed in the window, of them won, their mean known won amount), from the scalar metrics.
    """
    def q(sql: str) -> tuple:
        return con.execute(sql).fetchone()
    A, S, E = lit(as_of), lit(start), lit(end)
    won = len(stage_chain(cfg)) - 1
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())  # the end of as_of
    sla = cfg.slas
    con.execute(COHORT.format(won=won, S=S, E=E))
    stages = [{"stage": name, "entered": entered, "converted": converted,
               "rate": converted / entered if entered else None, "median_days": median_days}
              for name, entered, converted, median_days in con.execute(STAGE_CONVERSION.format(won=won)).fetchall()]

    h1 = q(LEAD_TO_OPPORTUNITY.format(S=S, E=E, outcomes=OUTCOMES, sla=repr(float(sla.lead_response_minutes)),
                                      cold_before=ts(cutoff - dt.timedelta(days=cfg.stall_days))))
    n_closed, n_won, avg_won = closed
    # An MQL is worth what an opportunity brings on average: win rate × average won deal, closed in the window.
    per_mql = n_won / n_closed * avg_won if n_closed and avg_won is not None else None
    h2 = q(OPPORTUNITY_TO_CLOSE.format(A=A, cutoff=ts(cutoff), stall=cfg.stall_days, outcomes=OUTCOMES))
    h34 = q(ONBOARDING.format(S=S, E=E, arr_now=arr_by_account(A), kickoff_hours=repr(float(sla.kickoff_hours)),
                              value_days=repr(float(sla.first_value_days)),
                              kickoff_before=ts(cutoff - dt.timedelta(hours=sla.kickoff_hours)),
                              value_before=ts(cutoff - dt.timedelta(days=sla.first_value_days))))
    h5 = q(VALUE_TO_EXPAND.format(
        lo=lit(year_before(start)), hi=lit(year_before(end)), cutoff=ts(cutoff), arr_now=arr_by_account(A),
        outcomes=OUTCOMES, valued_month=MONTH_NO.format(d="valued_at"), deadline_month=MONTH_NO.format(d="expand_by"),
        as_of_month=month_no(as_of), month_end=month_end_of("now.m"),
        covered=covered_sql("first_m", "last_m", "subs JOIN months USING (account_id)")))
    h6 = q(EXPAND_TO_RENEW.format(S=S, E=E, A=A, known=str(bool(n_subs)).lower(), lead=sla.renewal_outreach_days,
                                  outcomes=OUTCOMES))
    handoffs = [
        handoff_row(1, h1[:4], h1[4], f"first response within {sla.lead_response_minutes:g} minutes of capture",
                    h1[5], h1[0], "No MQLs created in the window.",
                    per_mql * h1[2] if per_mql is not None else None,
                    None if per_mql is not None else
                    "No deals with a known amount closed in the window, so an MQL's value is unknown."),
        handoff_row(2, h2[:4], h2[4], f"open deals moving stage within {cfg.stall_days} days", h2[5], h2[6],
                    "No deal of the cohort is still open.", h2[7], None),
        handoff_row(3, h34[:4], h34[4], f"kickoff within {sla.kickoff_hours:g} hours of signature", h34[5], h34[0],
                    "No customer was signed in the window.", h34[6], None),
        handoff_row(4, h34[7:11], h34[11], f"first value within {sla.first_value_days:g} days of signature", h34[12],
                    h34[7], "No kicked-off customer was signed in the window.", h34[13], None),
        handoff_row(5, h5[:4], h5[4], "expansion within 12 months of first value (the pass rule)", 0, 0,
                    "No SLA applies: expanding within 12 months of first value is the pass rule itself.", h5[5], None),
        handoff_row(6, h6[:4], h6[4], f"renewal outreach {sla.renewal_outreach_days} days before the renewal date",
                    h6[5], h6[6], "No stated renewal date fell due in the window.", h6[7] if n_subs else None,
                    None if n_subs else "No subscriptions are loaded, so renewals cannot be checked."),
    ]
    return {"stage_conversion": stages, "handoffs": handoffs}


def compute(db: str, as_of_arg: dt.date | None = None) -> dict:
    con = duckdb.connect(db, read_only=True)
    cfg = settings(con)
    chain = stage_chain(cfg)
    con.execute(SETUP.format(stages=stage_values(cfg), state=STATE,
                             chain=", ".join(f"({text(n)}, {i})" for i, n in enumerate(chain))))
    q = lambda sql: con.execute(sql).fetchone()  # noqa: E731
    latest = q(LATEST)[0]
    as_of = as_of_arg or (min(latest, dt.date.today()) if latest else dt.date.today())
    start, end = as_of - dt.timedelta(days=364), as_of
    then = year_before(as_of)
    q_start, q_end = quarter(as_of, cfg.fiscal_year_start_month)
    A, S, E = lit(as_of), lit(start), lit(end)
    margin = cfg.gross_margin
    out: dict[str, float | None] = {}

    def ratio(num: float | None, den: float | None) -> float | None:
        return None if num is None or den is None or den == 0 else num / den

    n_subs, n_opps, n_leads, n_usage = q("SELECT (SELECT count(*) FROM subs), (SELECT count(*) FROM opps), "
                                         "(SELECT count(*) FROM leads), (SELECT count(*) FROM usage)")

    # ---- North Star
    out["arr"] = q(arr_total(A))[0] if n_subs else None
    if n_subs and out["arr"] is None:
        out["arr"] = 0.0
    base = q(f"""SELECT count(*), sum(t.arr), sum(coalesce(n.arr, 0)), sum(least(coalesce(n.arr, 0), t.arr)),
                        count(*) FILTER (coalesce(n.arr, 0) <= 0)
                 FROM ({arr_by_account(lit(then))}) t LEFT JOIN ({arr_by_account(A)}) n USING (account_id)
                 WHERE t.arr > 0""")
    base_n, arr_then, arr_now, arr_kept, churned = base
    out["nrr"] = ratio(arr_now, arr_then) if base_n else None
    out["grr"] = ratio(arr_kept, arr_then) if base_n else None

    window_ends = month_ends(start, end)
    moves = {"new": 0.0, "reactivation": 0.0, "expansion": 0.0, "contraction": 0.0, "churn": 0.0}
    new_accounts = 0
    if n_subs and window_ends:
        con.execute(f"CREATE TEMP TABLE moves AS {movements_sql(window_ends)}")
        for kind, amount in con.execute("SELECT movement, sum(amount) FROM moves WHERE movement IS NOT NULL "
                                        "GROUP BY movement").fetchall():
            moves[kind] = amount
        new_accounts = q("SELECT count(DISTINCT account_id) FROM moves WHERE movement = 'new'")[0]
    out["net_new_arr"] = (12 * (moves["new"] + moves["reactivation"] + moves["expansion"] - moves["contraction"]
                                - moves["churn"]) if n_subs and window_ends else None)

    def spend_between(a: dt.date, b: dt.date) -> tuple[int, float]:
        n, total = q(f"SELECT count(*), coalesce(sum(CAST(amount AS DOUBLE)), 0) FROM spend "
                     f"WHERE date_trunc('month', month) BETWEEN {lit(a)} AND {lit(b)}")
        return n, total

    spend_n, spend = spend_between(start, end)
    out["cac_payback_months"] = ratio(spend, moves["new"] * margin) if spend_n else None

    last_start, last_end = quarter(as_of, cfg.fiscal_year_start_month)
    if last_end != as_of:
        last_start, last_end = quarter(last_start - dt.timedelta(days=1), cfg.fiscal_year_start_month)
    b_start, b_end = quarter(last_start - dt.timedelta(days=1), cfg.fiscal_year_start_month)
    _, b_spend = spend_between(b_start, b_end)
    if n_subs:
        arr_q = q(arr_total(lit(last_end)))[0] or 0.0
        arr_b = q(arr_total(lit(b_end)))[0] or 0.0
        out["magic_number"] = ratio(arr_q - arr_b, b_spend)
    else:
        out["magic_number"] = None

    n_active, active_arr = q(f"SELECT count(*), coalesce(sum(arr), 0) FROM ({arr_by_account(A)}) WHERE arr > 0")
    arpa = active_arr / 12 / n_active if n_active else None
    monthly_churn = churned / base_n / 12 if base_n else None
    ltv = arpa * margin / monthly_churn if arpa is not None and monthly_churn else None
    cac = spend / new_accounts if spend_n and new_accounts else None
    if not n_active or not base_n or churned == 0 or spend <= 0:
        out["ltv_to_cac"] = None
    else:
        out["ltv_to_cac"] = ratio(ltv, cac)

    # ---- Operational
    open_at = f"(created_at IS NULL OR created_at <= {A}) AND (state = 'open' OR (state IN ('won', 'lost') AND close_date > {A}))"
    target = q(f"""
        WITH t AS (SELECT * FROM targets WHERE period_start <= {lit(q_end)} AND period_end >= {lit(q_start)}),
        lvl AS (SELECT CASE WHEN count(*) FILTER (segment IS NULL AND owner IS NULL) > 0 THEN 0
                            WHEN count(*) FILTER (owner IS NULL) > 0 THEN 1 ELSE 2 END AS level FROM t)
        SELECT count(*), sum(CAST(target_amount AS DOUBLE)
               * (datediff('day', greatest(period_start, {lit(q_start)}), least(period_end, {lit(q_end)})) + 1)
               / (datediff('day', period_start, period_end) + 1))
        FROM t, lvl
        WHERE CASE lvl.level WHEN 0 THEN segment IS NULL AND owner IS NULL WHEN 1 THEN owner IS NULL ELSE true END""")
    target_amount = target[1] if target[0] else None
    won_q = q(f"SELECT coalesce(sum(amount), 0) FROM opps WHERE state = 'won' AND close_date BETWEEN {lit(q_start)} AND {A}")[0]
    in_quarter = q(f"SELECT coalesce(sum(amount), 0) FROM opps WHERE {open_at} AND close_date BETWEEN {A} AND {lit(q_end)}")[0]
    if target_amount is None or target_amount - won_q <= 0:
        out["pipeline_coverage"] = None
    else:
        out["pipeline_coverage"] = ratio(in_quarter, target_amount - won_q)

    closed = q(f"""SELECT count(*), count(*) FILTER (state = 'won'), coalesce(sum(amount) FILTER (state = 'won'), 0),
                          coalesce(sum(amount), 0), avg(amount) FILTER (state = 'won'),
                          quantile_cont(datediff('day', created_at, close_date), 0.5) FILTER (state = 'won')
                   FROM opps WHERE state IN ('won', 'lost') AND close_date BETWEEN {S} AND {E}""")
    n_closed, n_won, won_amount, closed_amount, avg_won, cycle = closed
    out["win_rate"] = ratio(n_won, n_closed)
    out["win_rate_value"] = ratio(won_amount, closed_amount) if n_closed else None
    out["avg_deal_size"] = avg_won
    out["sales_cycle_days"] = cycle
    n_open, open_amount, weighted = q(f"""SELECT count(*), coalesce(sum(amount), 0),
                                              coalesce(sum(amount * coalesce(probability, stage_probability)), 0)
                                       FROM opps WHERE {open_at}""")
    parts = (out["win_rate"], out["avg_deal_size"], out["sales_cycle_days"])
    out["sales_velocity"] = (None if any(p is None for p in parts) or not n_opps
                             else ratio(n_open * parts[0] * parts[1], parts[2]))
    out["open_pipeline"] = open_amount if n_opps else None
    out["weighted_pipeline"] = weighted if n_opps else None
    out["quota_attainment"] = ratio(won_q, target_amount) if target_amount is not None else None

    con.execute("""CREATE TEMP TABLE life AS
        SELECT l.*, coalesce(l.won_at, CAST(f.first_won AS TIMESTAMP)) AS won_at_filled
        FROM lifecycle l LEFT JOIN (SELECT account_id, min(close_date) AS first_won FROM opps
                                    WHERE state = 'won' AND account_id IS NOT NULL GROUP BY account_id) f USING (account_id)""")
    out["time_to_value_days"] = q(f"""SELECT quantile_cont(epoch(first_value_at - won_at_filled) / 86400, 0.5)
                                      FROM life WHERE CAST(first_value_at AS DATE) BETWEEN {S} AND {E}""")[0]
    if n_subs:
        before = lit(start - dt.timedelta(days=1))
        out["expansion_rate"] = ratio(12 * moves["expansion"], q(arr_total(before))[0] or 0.0)
    else:
        out["expansion_rate"] = None

    # ---- Diagnostic
    sla = cfg.slas
    lead = q(f"""SELECT quantile_cont(epoch(first_response_at - created_at) / 60, 0.5),
                        count(*) FILTER (epoch(first_response_at - created_at) / 60 <= {sla.lead_response_minutes!r}),
                        count(*),
                        count(*) FILTER (mql_at IS NOT NULL OR sql_at IS NOT NULL OR converted_at IS NOT NULL
                                         OR opportunity_id IS NOT NULL),
                        count(*) FILTER (sql_at IS NOT NULL OR converted_at IS NOT NULL OR opportunity_id IS NOT NULL),
                        count(*) FILTER (opportunity_id IN (SELECT opportunity_id FROM opps WHERE state = 'won'))
                 FROM leads WHERE CAST(created_at AS DATE) BETWEEN {S} AND {E}""")
    out["lead_response_minutes"] = lead[0]
    out["lead_response_sla"] = ratio(lead[1], lead[2])
    out["mql_to_sql"] = ratio(lead[4], lead[3])
    out["lead_to_customer"] = ratio(lead[5], lead[2])
    kick = q(f"""SELECT count(*) FILTER (epoch(kickoff_at - won_at_filled) / 60 / 60 <= {sla.kickoff_hours!r}), count(*)
                 FROM life WHERE CAST(won_at_filled AS DATE) BETWEEN {S} AND {E}""")
    out["kickoff_sla"] = ratio(kick[0], kick[1])

    f30 = lit(as_of - dt.timedelta(days=29))
    adoption = q(f"""
        WITH active AS (SELECT account_id FROM ({arr_by_account(A)}) WHERE arr > 0),
        features AS (SELECT DISTINCT feature FROM usage WHERE feature IS NOT NULL),
        users AS (SELECT u.feature, count(DISTINCT u.account_id) AS n FROM usage u SEMI JOIN active a USING (account_id)
                  WHERE u.date BETWEEN {f30} AND {A} AND u.feature IS NOT NULL
                    AND (coalesce(u.events, 0) > 0 OR coalesce(u.active_users, 0) > 0) GROUP BY u.feature)
        SELECT (SELECT count(*) FROM features), (SELECT count(*) FROM active),
               avg(coalesce(users.n, 0) / (SELECT count(*) FROM active))
        FROM features LEFT JOIN users USING (feature)""")
    out["feature_adoption"] = adoption[2] if adoption[0] and adoption[1] else None

    expected = valid = 0
    for table in QUALITY_TABLES:
        rows, e, v = q(quality_sql(con, table))
        if rows:
            expected, valid = expected + e, valid + v
    out["data_quality"] = ratio(valid, expected)

    # ---- Leading
    out["pipeline_created"] = (q(f"SELECT coalesce(sum(amount), 0) FROM opps WHERE created_at BETWEEN {S} AND {E}")[0]
                               if n_opps else None)
    d = lambda n: lit(as_of - dt.timedelta(days=n))  # noqa: E731
    recent, base3 = q(f"""SELECT coalesce(sum(amount) FILTER (created_at >= {d(27)}), 0),
                                 coalesce(sum(amount) FILTER (created_at < {d(27)}), 0) / 3
                          FROM opps WHERE created_at BETWEEN {d(111)} AND {A}""")
    trend = ratio(recent, base3)
    out["pipeline_creation_trend"] = None if trend is None else trend - 1
    now_users, before_users = q(f"""SELECT coalesce(sum(active_users) FILTER (date >= {d(27)}), 0),
                                           coalesce(sum(active_users) FILTER (date < {d(27)}), 0)
                                    FROM usage WHERE date BETWEEN {d(55)} AND {A}""")
    trend = ratio(float(now_users), float(before_users))
    out["usage_trend"] = None if trend is None else trend - 1

    if n_usage:
        engagement = q(f"""
            WITH n_features AS (SELECT greatest(count(DISTINCT feature) + max(CASE WHEN feature IS NULL THEN 1 ELSE 0 END), 1) AS n FROM usage),
            last_use AS (SELECT account_id, datediff('day', max(date), {A}) AS days_ago FROM usage
                         WHERE date <= {A} AND (coalesce(events, 0) > 0 OR coalesce(active_users, 0) > 0) GROUP BY account_id),
            recent AS (SELECT account_id, date, feature, datediff('day', date, {A}) AS days_ago, date >= {d(27)} AS current,
                              CAST(coalesce(active_users, events, 0) AS DOUBLE) AS activity,
                              coalesce(events, 0) > 0 OR coalesce(active_users, 0) > 0 AS used
                       FROM usage WHERE date BETWEEN {d(55)} AND {A}),
            per AS (SELECT account_id,
                           count(DISTINCT days_ago // 7) FILTER (current AND used) AS weeks,
                           count(DISTINCT feature) FILTER (current AND used)
                             + max(CASE WHEN current AND used AND feature IS NULL THEN 1 ELSE 0 END) AS features,
                           sum(activity) FILTER (current) AS now, sum(activity) FILTER (NOT current) AS before
                    FROM recent GROUP BY account_id),
            scored AS (
              SELECT 25 * (
                  coalesce(least(greatest(1 - l.days_ago / 28, 0), 1), 0)
                + least(greatest(coalesce(p.weeks, 0) / 4, 0), 1)
                + least(greatest(coalesce(p.features, 0) / (SELECT n FROM n_features), 0), 1)
                + CASE WHEN coalesce(p.before, 0) > 0 THEN least(greatest(0.5 * coalesce(p.now, 0) / p.before, 0), 1)
                       WHEN coalesce(p.now, 0) > 0 THEN 1 ELSE 0 END) AS score
              FROM ({arr_by_account(A)}) a LEFT JOIN last_use l USING (account_id) LEFT JOIN per p USING (account_id)
              WHERE a.arr > 0)
            SELECT count(*), avg(score) FROM scored""")
        out["engagement_score"] = engagement[1] if engagement[0] else None
    else:
        out["engagement_score"] = None

    horizon = lit(as_of + dt.timedelta(days=sla.renewal_outreach_days))
    if n_subs:
        out["at_risk_arr"] = q(f"""
            WITH usage_now AS (SELECT account_id, sum(active_users) AS u FROM usage WHERE date BETWEEN {d(27)} AND {A} GROUP BY 1),
            usage_before AS (SELECT account_id, sum(active_users) AS u FROM usage WHERE date BETWEEN {d(55)} AND {d(28)} GROUP BY 1),
            life1 AS (SELECT * FROM lifecycle QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY rowid) = 1)
            SELECT coalesce(sum(a.arr), 0) FROM ({arr_by_account(A)}) a
            LEFT JOIN life1 l USING (account_id) LEFT JOIN usage_now n USING (account_id)
            LEFT JOIN usage_before b USING (account_id)
            WHERE a.arr > 0 AND (
                coalesce(l.health_score < 50, false)
             OR coalesce(b.u > 0 AND coalesce(n.u, 0) < 0.7 * b.u, false)
             OR coalesce(l.renewal_date > {A} AND l.renewal_date <= {horizon}
                         AND (l.renewal_outreach_at IS NULL OR CAST(l.renewal_outreach_at AS DATE) > {A}), false))""")[0]
    else:
        out["at_risk_arr"] = None
    out["pql_count"] = (q(f"SELECT count(*) FROM leads WHERE CAST(pql_at AS DATE) BETWEEN {S} AND {E}")[0]
                        if n_leads else None)
    renew = q(f"""SELECT count(*) FILTER (CAST(renewal_outreach_at AS DATE) <= {A}), count(*) FROM lifecycle
                  WHERE renewal_date > {A} AND renewal_date <= {horizon}""")
    out["renewal_outreach_coverage"] = ratio(renew[0], renew[1])
    lists = tables(con, cfg, as_of, start, end, (n_closed, n_won, avg_won), n_subs)
    con.close()
    return {"as_of": as_of.isoformat(), "window": {"start": start.isoformat(), "end": end.isoformat()},
            "metrics": {k: (None if v is None else float(v)) for k, v in out.items()}, **lists}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("db")
    p.add_argument("--as-of", type=dt.date.fromisoformat)
    args = p.parse_args(argv)
    if not Path(args.db).exists():
        print(f"error: there is no database at {args.db}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    report = compute(args.db, args.as_of)
    report["seconds"] = time.perf_counter() - started
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
