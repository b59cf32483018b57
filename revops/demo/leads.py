"""Demo leads and marketing touches: converted leads behind new business, the rest of the funnel beside it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revops.demo.accounts import SEGMENT_MIX, SEGMENTS, Accounts, Team, id_expr, label
from revops.demo.clock import Clock
from revops.demo.deals import OPP_WIDTH, SOURCE_MIX, SOURCES, Deals, business_hours

# Leads that become MQLs, by source (referrals and partners arrive warm, outbound rarely does).
MQL_RATE = np.array([0.40, 0.45, 0.60, 0.55, 0.30, 0.65, 0.50])
SQL_OF_MQL = 0.30
PQL_RATE = np.array([0.03, 0.03, 0.02, 0.02, 0.01, 0.03, 0.55])
NO_ANSWER = 0.10  # leads nobody ever calls back
NURTURE_CHANNELS = ("email", "webinar", "paid_social", "content", "events", "paid_search")
NURTURE_MIX = np.array([0.30, 0.15, 0.17, 0.18, 0.08, 0.12])
STATUSES = ("open", "working", "converted", "disqualified")


@dataclass(frozen=True)
class LeadArrays:
    """Lead attributes as arrays, before they become a table."""

    created: np.ndarray
    source: np.ndarray
    account: np.ndarray  # -1 = no account
    owner: np.ndarray  # -1 = unassigned
    segment: np.ndarray
    response: np.ndarray  # NaN = never answered
    mql: np.ndarray
    sql: np.ndarray
    pql: np.ndarray
    converted: np.ndarray
    deal: np.ndarray  # -1 = not converted
    status: np.ndarray


def _before(t: np.ndarray, horizon: float) -> np.ndarray:
    """Events after the end of today have not happened yet."""
    return np.where(t < horizon, t, np.nan)


def _converted(rng: np.random.Generator, deals: Deals, clock: Clock) -> LeadArrays:
    """One lead behind most new-business deals, qualified and converted before the deal opened."""
    d = deals.draws
    new = np.flatnonzero((deals.type == 0) & (rng.random(d.n) < np.where(d.source == 4, 0.6, 0.88)))
    opened = deals.opened[new]
    lag = np.maximum(rng.lognormal(np.log(9.0), 0.9, new.size), 0.1)
    created = np.minimum(business_hours(opened - lag), opened - 0.01)
    gap = opened - created
    mql = created + np.minimum(rng.lognormal(np.log(0.25), 0.8, new.size), 0.4 * gap)
    sql = mql + rng.uniform(0.3, 0.9, new.size) * (opened - mql)
    src = d.source[new]
    is_pql = rng.random(new.size) < PQL_RATE[src] * 1.3
    pql = np.where(is_pql, created + rng.uniform(0.05, 0.9, new.size) * (sql - created), np.nan)
    wait = rng.lognormal(np.log(2.6), 1.2, new.size) / 1440.0
    response = created + np.minimum(wait, 0.8 * (mql - created) + 0.3 * gap)
    return LeadArrays(created, src, d.account[new], d.owner[new], deals.segment[new], response, mql, sql, pql,
                      opened, new, np.full(new.size, 2))


def _unconverted(rng: np.random.Generator, n: int, accounts: Accounts, team: Team, clock: Clock) -> LeadArrays:
    """Leads that did not (yet) become deals: most stall before MQL or are disqualified."""
    created = np.sort(clock.sample_times(rng, n, -60, int(clock.horizon) - 1))
    has_account = rng.random(n) < 0.75
    account = np.where(has_account, rng.integers(0, accounts.n, n), -1)
    segment = np.where(has_account, accounts.segment[np.maximum(account, 0)], rng.choice(3, size=n, p=SEGMENT_MIX))
    cum = SOURCE_MIX.cumsum(axis=1)
    source = np.minimum((rng.random(n)[:, None] > cum[segment]).sum(axis=1), len(SOURCES) - 1)
    first = np.searchsorted(team.segment, np.arange(3))
    size = np.bincount(team.segment, minlength=3)
    any_owner = first[segment] + np.floor(rng.random(n) * size[segment]).astype(np.int64)
    owner = np.where(has_account, accounts.owner[np.maximum(account, 0)], any_owner)
    owner = np.where(rng.random(n) < 0.05, -1, owner)
    is_mql = rng.random(n) < MQL_RATE[source]
    mql = np.where(is_mql, created + rng.lognormal(np.log(0.8), 1.0, n), np.nan)
    sql = np.where(is_mql & (rng.random(n) < SQL_OF_MQL), mql + rng.lognormal(np.log(4.0), 0.7, n), np.nan)
    pql = np.where(rng.random(n) < PQL_RATE[source], created + rng.lognormal(np.log(3.0), 0.8, n), np.nan)
    answered = rng.random(n) >= NO_ANSWER
    response = np.where(answered, created + rng.lognormal(np.log(3.4), 1.4, n) / 1440.0, np.nan)
    age = clock.horizon - created
    recent = age < 14
    u = rng.random(n)
    status = np.where(recent, np.where(u < 0.55, 0, 1),
                      np.where(u < 0.62, 3, np.where(u < 0.78, 1, 0)))
    status = np.where(~np.isnan(sql) & ~recent & (status == 0), 1, status)
    return LeadArrays(created, source, account, owner, segment, response, mql, sql, pql,
                      np.full(n, np.nan), np.full(n, -1), status)


def make_leads(rng: np.random.Generator, total: int, deals: Deals, accounts: Accounts, team: Team,
               clock: Clock) -> LeadArrays:
    """About `total` leads: the converted ones behind deals plus the unconverted rest."""
    conv = _converted(rng, deals, clock)
    rest = _unconverted(rng, max(total - conv.created.size, 0), accounts, team, clock)
    both = {f: np.concatenate([getattr(conv, f), getattr(rest, f)]) for f in LeadArrays.__dataclass_fields__}
    order = np.argsort(both["created"], kind="stable")
    horizon = clock.horizon
    out = {k: v[order] for k, v in both.items()}
    for key in ("response", "mql", "sql", "pql"):
        out[key] = _before(out[key], horizon)
    return LeadArrays(**out)


def leads_frame(leads: LeadArrays, team: Team, clock: Clock) -> pl.DataFrame:
    """The leads table, keyed in order of creation."""
    frame = pl.DataFrame({
        "i": np.arange(leads.created.size, dtype=np.int64),
        "created": leads.created, "source_code": leads.source, "account": leads.account,
        "owner_code": leads.owner, "segment_code": leads.segment,
        "response": pl.Series(leads.response).fill_nan(None), "mql": pl.Series(leads.mql).fill_nan(None),
        "sql": pl.Series(leads.sql).fill_nan(None), "pql": pl.Series(leads.pql).fill_nan(None),
        "converted": pl.Series(leads.converted).fill_nan(None), "deal": leads.deal, "status_code": leads.status,
    })
    return frame.select(
        id_expr("LEAD-", pl.col("i"), 7).alias("lead_id"),
        clock.ts_expr("created").alias("created_at"),
        label("source_code", SOURCES).alias("source"),
        pl.when(pl.col("account") >= 0).then(id_expr("ACC-", pl.col("account"), 6)).alias("account_id"),
        label("owner_code", team.names).alias("owner"),
        label("segment_code", SEGMENTS).alias("segment"),
        clock.ts_expr("response").alias("first_response_at"),
        clock.ts_expr("mql").alias("mql_at"),
        clock.ts_expr("sql").alias("sql_at"),
        clock.ts_expr("pql").alias("pql_at"),
        clock.ts_expr("converted").alias("converted_at"),
        pl.when(pl.col("deal") >= 0).then(id_expr("OPP-", pl.col("deal"), OPP_WIDTH)).alias("opportunity_id"),
        label("status_code", STATUSES).alias("status"),
    )


def touches_frame(rng: np.random.Generator, leads: LeadArrays, clock: Clock) -> pl.DataFrame:
    """Marketing touches: the lead's source first, then nurture touches until conversion (or 45 days)."""
    n = leads.created.size
    converted = leads.deal >= 0
    count = np.where(converted, 1 + rng.poisson(2.3, n), rng.poisson(0.95, n))
    lead = np.repeat(np.arange(n), count)
    # Position of each touch within its lead: 0 is the touch that brought the lead in.
    position = np.arange(lead.size) - np.repeat(np.cumsum(count) - count, count)
    created = leads.created[lead]
    end = np.where(converted[lead], leads.converted[lead], np.minimum(created + 45.0, clock.horizon - 1e-3))
    later = created + rng.random(lead.size) * np.maximum(end - created, 0.01)
    first = created - rng.uniform(1.0, 120.0, lead.size) / 1440.0
    when = np.where(position == 0, first, later)
    nurture = np.searchsorted(NURTURE_MIX.cumsum(), rng.random(lead.size), side="right").clip(0, 5)
    frame = pl.DataFrame({
        "lead": lead.astype(np.int64), "position": position, "when": when,
        "source_code": leads.source[lead], "nurture": nurture,
        "account": leads.account[lead], "deal": leads.deal[lead],
    }).filter(pl.col("when") < clock.horizon)
    return frame.select(
        clock.ts_expr("when").alias("touched_at"),
        pl.when(pl.col("position") == 0).then(label("source_code", SOURCES))
        .otherwise(label("nurture", NURTURE_CHANNELS)).alias("channel"),
        id_expr("LEAD-", pl.col("lead"), 7).alias("lead_id"),
        pl.when(pl.col("account") >= 0).then(id_expr("ACC-", pl.col("account"), 6)).alias("account_id"),
        pl.when(pl.col("deal") >= 0).then(id_expr("OPP-", pl.col("deal"), OPP_WIDTH)).alias("opportunity_id"),
    ).sort("touched_at", "lead_id", "channel", maintain_order=True)
