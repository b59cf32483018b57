"""Demo deals: stage paths with skips, slips, re-entries and stalls -> opportunities and stage_history.

Every deal gets a planned path over 18 event slots (enter a stage, update it, re-enter an
earlier one, close). Whether a slot happens, when, at what amount and with which expected
close date is decided for all deals at once on (deals x slots) matrices; events after the end
of today are cut off, which leaves the deals in flight open at the stage they have reached.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revops.demo.accounts import SEGMENTS, Accounts, Team, account_ids, account_names, id_expr, ids, label, pick
from revops.demo.clock import Clock
from revops.schema import default_stages

_STAGES = sorted(default_stages(), key=lambda s: s.funnel_step)
STAGE_NAMES = tuple(s.name for s in _STAGES)  # 0-4 open, 5 Closed Won, 6 Closed Lost
STAGE_PROBABILITY = np.array([s.probability for s in _STAGES])
WON, LOST = 5, 6
TYPES = ("new_business", "expansion", "renewal")
TYPE_LABELS = ("New Business", "Expansion", "Renewal")
SOURCES = ("paid_search", "organic", "partner", "events", "outbound", "referral", "product_signup")
EXISTING_CUSTOMER = "existing_customer"  # the source of expansion and renewal deals
# Lead source mix of new business per segment: self-serve and search for SMB, outbound and events upmarket.
SOURCE_MIX = np.array([
    [0.24, 0.18, 0.06, 0.05, 0.10, 0.09, 0.28],
    [0.18, 0.14, 0.12, 0.12, 0.22, 0.10, 0.12],
    [0.06, 0.06, 0.18, 0.22, 0.34, 0.10, 0.04],
])
SOURCE_WIN = np.array([0.80, 1.05, 1.25, 1.00, 0.75, 1.40, 1.15])
# Win rate by type (rows) and segment (columns).
WIN_RATE = np.array([[0.26, 0.21, 0.17], [0.42, 0.40, 0.38], [0.86, 0.83, 0.80]])
# Where lost deals drop out, by type: new business dies early, a lost renewal late in negotiation.
LOSS_STAGE_MIX = np.array([
    [0.55, 0.22, 0.10, 0.08, 0.05],
    [0.25, 0.25, 0.20, 0.18, 0.12],
    [0.05, 0.10, 0.15, 0.30, 0.40],
])
# Mean days spent in each open stage, per segment: enterprise cycles are five times longer.
STAGE_DAYS = np.array([[4.0, 5.0, 6.0, 7.0, 6.0], [8.0, 12.0, 15.0, 16.0, 13.0], [15.0, 24.0, 30.0, 34.0, 28.0]])
TYPE_PACE = np.array([1.0, 0.7, 1.0])
RENEWAL_DAYS = np.array([14.0, 16.0, 18.0, 20.0, 16.0])
DEAL_MEDIAN = np.array([9_000.0, 38_000.0, 140_000.0])
TYPE_AMOUNT = np.array([1.0, 0.22, 0.7])
AMOUNT_ROUNDING = np.array([100.0, 500.0, 1_000.0])
SKIP_P = np.array([0.0, 0.05, 0.10, 0.03, 0.12])
SMB_NEGOTIATION_SKIP = 0.25
UPDATE_P = (0.48, 0.25)  # a first and a second update row while in a stage
SLIP_SHARE = 0.6  # updates that push the close date (the rest revise the amount)
SLIP_DAYS = np.array([14.0, 25.0, 40.0])
REGRESS_P = 0.05
STALL_P = 0.45
RENEWAL_SHARE = 0.3  # of the deals at least 300 days after the first win; the rest are expansions
FORECAST = ("pipeline", "best_case", "commit", "closed", "omitted")
FORECAST_BY_STAGE = np.array([0, 0, 0, 1, 2, 3, 4])
LOST_REASONS = ("No decision", "Unresponsive", "Budget", "Timing", "Price", "Competitor",
                "Missing feature", "Chose status quo")
LOST_EARLY_MIX = np.array([0.22, 0.24, 0.18, 0.16, 0.04, 0.06, 0.04, 0.06])
LOST_LATE_MIX = np.array([0.12, 0.04, 0.08, 0.08, 0.26, 0.26, 0.10, 0.06])

# Slot layout: the stage each slot enters (-1 = close) and which slots are what.
OPP_WIDTH = 7
SLOTS = 18
ENTER_SLOT = np.array([0, 3, 6, 9, 14])
UPDATE_SLOTS = np.array([1, 2, 4, 5, 7, 8, 10, 11, 15, 16])
UPDATE_STAGE = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
REGRESS_SLOTS = (12, 13)  # back to Needs Analysis, then Proposal again
CLOSE_SLOT = 17
SLOT_STAGE = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 2, 3, 4, 4, 4, -1], dtype=np.int8)


@dataclass(frozen=True)
class DealDraws:
    """Every random number a deal's path needs, drawn once so two passes give the same deal."""

    created: np.ndarray
    account: np.ndarray
    owner: np.ndarray
    source: np.ndarray
    u_win: np.ndarray
    u_loss: np.ndarray
    u_type: np.ndarray
    u_stall: np.ndarray
    stall_mult: np.ndarray
    u_push: np.ndarray
    push_back: np.ndarray
    u_optimism: np.ndarray
    u_prob: np.ndarray
    prob_adjust: np.ndarray
    size: np.ndarray
    est_noise: np.ndarray
    u_regress: np.ndarray
    amt_proposal: np.ndarray
    amt_negotiation: np.ndarray
    amt_close: np.ndarray
    u_lost_reason: np.ndarray
    u_skip: np.ndarray  # (n, 5)
    u_update: np.ndarray  # (n, 10) presence of each update slot
    u_slip: np.ndarray  # (n, 10) slip or amount revision
    slip_len: np.ndarray  # (n, 10) unit-mean
    amt_update: np.ndarray  # (n, 10)
    duration: np.ndarray  # (n, 18) unit-mean

    @property
    def n(self) -> int:
        """Number of deals."""
        return int(self.created.shape[0])


@dataclass(frozen=True)
class Paths:
    """Each deal's events on the (deals x slots) grid, cut at the end of today."""

    happened: np.ndarray  # (n, 18) bool: the slot took place on or before today
    time: np.ndarray  # (n, 18) day offsets
    stage: np.ndarray  # (n, 18) stage code entered
    amount: np.ndarray  # (n, 18)
    expected_close: np.ndarray  # (n, 18) whole-day offsets
    forecast: np.ndarray  # (n, 18) forecast category code
    planned_close: np.ndarray  # (n,) when the deal closes (maybe after today)

    def current(self) -> np.ndarray:
        """Slot of each deal's latest event."""
        return SLOTS - 1 - np.argmax(self.happened[:, ::-1], axis=1)


@dataclass(frozen=True)
class Deals:
    """The deals and what the rest of the company needs to know about them."""

    draws: DealDraws
    segment: np.ndarray
    type: np.ndarray
    won: np.ndarray  # planned outcome
    source: np.ndarray  # index into SOURCES, -1 = existing customer
    paths: Paths
    slot: np.ndarray  # current slot
    state: np.ndarray  # current stage code

    @property
    def closed(self) -> np.ndarray:
        """Closed on or before today."""
        return self.state >= WON

    @property
    def close_time(self) -> np.ndarray:
        """Close event time of closed deals, NaN for open ones."""
        return np.where(self.closed, self.paths.time[:, CLOSE_SLOT], np.nan)

    @property
    def opened(self) -> np.ndarray:
        """When each deal was created (its first stage-history row)."""
        return self.paths.time[:, 0]

    @property
    def amount(self) -> np.ndarray:
        """Current amount."""
        return np.take_along_axis(self.paths.amount, self.slot[:, None], axis=1)[:, 0]


def _draw(rng: np.random.Generator, n: int, accounts: Accounts, team: Team, clock: Clock) -> DealDraws:
    """All random inputs of n deals."""
    created = np.sort(clock.sample_times(rng, n, 0, int(clock.horizon) - 1))
    weight = np.array([1.0, 1.4, 2.0])[accounts.segment] * rng.lognormal(0.0, 0.6, accounts.n)
    account = rng.choice(accounts.n, size=n, p=weight / weight.sum())
    seg = accounts.segment[account]
    # Most deals belong to the account owner; some go to a teammate covering the same segment.
    first = np.searchsorted(team.segment, np.arange(3))
    size = np.bincount(team.segment, minlength=3)
    teammate = first[seg] + np.floor(rng.random(n) * size[seg]).astype(np.int64)
    owner = np.where(rng.random(n) < 0.85, accounts.owner[account], teammate)
    cum = SOURCE_MIX.cumsum(axis=1)
    source = np.minimum((rng.random(n)[:, None] > cum[seg]).sum(axis=1), len(SOURCES) - 1)

    def u(*shape: int) -> np.ndarray:
        return rng.random((n, *shape) if shape else n, dtype=np.float32)

    return DealDraws(
        created=created, account=account, owner=owner, source=source,
        u_win=u(), u_loss=u(),
        u_type=u(), u_stall=u(), stall_mult=rng.uniform(4.0, 12.0, n).astype(np.float32),
        u_push=u(), push_back=rng.integers(0, 5, n).astype(np.float32),
        u_optimism=u(), u_prob=u(), prob_adjust=rng.choice(np.array([-0.1, 0.0, 0.0, 0.1]), n),
        size=rng.lognormal(0.0, 0.55, n).astype(np.float32),
        est_noise=np.round(rng.normal(0.0, 4.0, n)).astype(np.float32), u_regress=u(),
        amt_proposal=rng.uniform(0.85, 1.25, n).astype(np.float32),
        amt_negotiation=rng.uniform(0.85, 1.0, n).astype(np.float32),
        amt_close=rng.uniform(0.9, 1.0, n).astype(np.float32),
        u_lost_reason=u(), u_skip=u(5), u_update=u(10), u_slip=u(10),
        slip_len=rng.standard_gamma(2.0, (n, 10), dtype=np.float32) / 2.0,
        amt_update=rng.uniform(0.8, 1.2, (n, 10)).astype(np.float32),
        duration=rng.standard_gamma(1.6, (n, SLOTS), dtype=np.float32) / 1.6,
    )


def _reach(d: DealDraws, typ: np.ndarray, won: np.ndarray) -> np.ndarray:
    """The last open stage each deal enters: Negotiation for wins, the stage it dies in for losses."""
    lost_in = np.minimum((d.u_loss[:, None] > LOSS_STAGE_MIX.cumsum(axis=1)[typ]).sum(axis=1), 4)
    return np.where(won, 4, lost_in)


def _presence(d: DealDraws, seg: np.ndarray, won: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Which slots each deal's path goes through (before cutting at today)."""
    present = np.zeros((d.n, SLOTS), dtype=bool)
    entered = np.zeros((d.n, 5), dtype=bool)
    entered[:, 0] = True
    for k in range(1, 5):
        skippable = (k < reach) | ((k == 4) & won)
        p_skip = np.where((k == 4) & (seg == 0), SMB_NEGOTIATION_SKIP, SKIP_P[k])
        entered[:, k] = (k <= reach) & ~(skippable & (d.u_skip[:, k] < p_skip))
    present[:, ENTER_SLOT] = entered
    # A lingering deal gets its close date pushed (an update row) more often than a moving one.
    lingering = (~won & (d.u_stall < STALL_P))[:, None] & (UPDATE_STAGE[0::2][None, :] == reach[:, None])
    first = entered[:, UPDATE_STAGE[0::2]] & (d.u_update[:, 0::2] < np.where(lingering, 0.9, UPDATE_P[0]))
    second = first & (d.u_update[:, 1::2] < np.where(lingering, 0.75, UPDATE_P[1]))
    present[:, UPDATE_SLOTS[0::2]] = first
    present[:, UPDATE_SLOTS[1::2]] = second
    regress = entered[:, 3] & (d.u_regress < REGRESS_P)
    present[:, REGRESS_SLOTS[0]] = regress
    present[:, REGRESS_SLOTS[1]] = regress
    present[:, CLOSE_SLOT] = True
    return present


def business_hours(time: np.ndarray) -> np.ndarray:
    """Squeeze each day's events into 08:00-18:00, keeping their day and their order."""
    day = np.floor(time)
    return day + (8.0 + 10.0 * (time - day)) / 24.0


def _paths(d: DealDraws, seg: np.ndarray, typ: np.ndarray, won: np.ndarray, clock: Clock) -> Paths:
    """Event times, stages, amounts, expected close dates and forecast categories of every slot."""
    n = d.n
    reach = _reach(d, typ, won)
    present = _presence(d, seg, won, reach)
    # Renewals open about a quarter ahead of the contract end whatever the segment.
    days = np.where((typ == 2)[:, None], RENEWAL_DAYS[None, :], STAGE_DAYS[seg] * TYPE_PACE[typ][:, None])
    # Mean wait before each slot: entering stage k follows time in stage k-1; updates come mid-stage.
    mean = np.zeros((n, SLOTS))
    mean[:, ENTER_SLOT[1:]] = days[:, :4]
    mean[:, UPDATE_SLOTS] = days[:, UPDATE_STAGE] * 0.45
    mean[:, REGRESS_SLOTS[0]] = days[:, 3] * 0.5
    mean[:, REGRESS_SLOTS[1]] = days[:, 2] * 0.8
    # Deals that will be lost often linger for months in their last stage, the rep pushing the close
    # date now and then, before someone marks them lost (the stalled pipeline of every CRM).
    stall = np.where(won, np.where(d.u_stall < 0.05, 2.0, 1.0), np.where(d.u_stall < STALL_P, d.stall_mult, 1.0))
    mean[:, CLOSE_SLOT] = days[np.arange(n), reach] * stall
    last_stage = UPDATE_STAGE[None, :] == reach[:, None]
    mean[:, UPDATE_SLOTS] *= np.where(last_stage, stall[:, None], 1.0)
    wait = np.maximum(mean * d.duration, 0.02) * present
    wait[:, 0] = 0.0
    time = d.created[:, None] + np.cumsum(wait, axis=1)
    del mean, wait
    # Quarter-end push: reps pull wins into the last days of the quarter, hardest in Q4.
    close = time[:, CLOSE_SLOT]
    quarter_end = clock.quarter_end(close)
    q4 = clock.calendar(quarter_end).astype("datetime64[M]").astype(np.int64) % 12 == 11
    pushed_to = quarter_end - d.push_back + (close - np.floor(close))
    push = won & (quarter_end - np.floor(close) <= 30) & (d.u_push < np.where(q4, 0.55, 0.3)) & (pushed_to > close)
    time[:, CLOSE_SLOT] = np.where(push, pushed_to, close)
    time = business_hours(time)

    stage = np.broadcast_to(SLOT_STAGE, (n, SLOTS)).copy()
    stage[:, CLOSE_SLOT] = np.where(won, WON, LOST)

    # Amount: initial estimate revised at Proposal, by some updates, discounted in Negotiation and at signature.
    is_slip = np.zeros((n, SLOTS), dtype=bool)
    is_slip[:, UPDATE_SLOTS] = present[:, UPDATE_SLOTS] & (d.u_slip < SLIP_SHARE)
    factor = np.ones((n, SLOTS), dtype=np.float64)
    factor[:, UPDATE_SLOTS] = np.where(d.u_slip < SLIP_SHARE, 1.0, d.amt_update)
    factor[:, ENTER_SLOT[3]] = d.amt_proposal
    factor[:, ENTER_SLOT[4]] = d.amt_negotiation
    factor[:, CLOSE_SLOT] = np.where(won, d.amt_close, 1.0)
    base = np.round(DEAL_MEDIAN[seg] * TYPE_AMOUNT[typ] * d.size / AMOUNT_ROUNDING[seg]) * AMOUNT_ROUNDING[seg]
    base = np.maximum(base, AMOUNT_ROUNDING[seg])
    amount = np.round(base[:, None] * np.cumprod(np.where(present, factor, 1.0), axis=1) / 10.0) * 10.0
    del factor

    # Expected close date: optimistic at first, pushed out by each slip, the real date at close.
    step = np.zeros((n, SLOTS))
    step[:, UPDATE_SLOTS] = d.slip_len * SLIP_DAYS[seg][:, None] * np.where(last_stage, stall[:, None], 1.0)
    step = np.round(step) * is_slip
    day = np.floor(time)
    close_day = day[:, CLOSE_SLOT]
    # Reps date a deal they will win near its real close; one they will lose, at a typical cycle's end.
    typical = d.created + days.sum(axis=1) * (0.75 + 0.35 * d.u_optimism)
    target_day = np.where(won, close_day, np.floor(typical))
    first_guess = np.maximum(target_day - step.sum(axis=1) + d.est_noise, day[:, 0] + 7)
    raw = first_guess[:, None] + np.cumsum(step, axis=1)
    carried = np.where(is_slip, np.maximum(raw, day + np.maximum(step, 7)), -np.inf)
    carried[:, 0] = first_guess
    expected = np.maximum.accumulate(carried, axis=1)
    expected[:, CLOSE_SLOT] = close_day
    del raw, carried, step, is_slip

    forecast = FORECAST_BY_STAGE[np.where(stage < 0, 0, stage)]
    forecast = np.where((stage == 2) & (d.u_optimism < 0.15)[:, None], 1, forecast)
    forecast = np.where((stage == 3) & (d.u_optimism < 0.20)[:, None], 2, forecast).astype(np.int8)
    happened = present & (time < clock.horizon)
    return Paths(happened, time, stage, amount, expected, forecast, time[:, CLOSE_SLOT].copy())


def make_deals(rng: np.random.Generator, n: int, accounts: Accounts, team: Team, clock: Clock) -> Deals:
    """n deals; an account's deals after its first win are expansions and renewals."""
    d = _draw(rng, n, accounts, team, clock)
    seg = accounts.segment[d.account]
    skill = team.skill[d.owner]
    rate_new = np.minimum(WIN_RATE[0, seg] * SOURCE_WIN[d.source] * skill, 0.95)
    # Pass 1 treats every deal as new business, to find when each account first signs.
    new = np.zeros(n, dtype=np.int64)
    first_paths = _paths(d, seg, new, d.u_win < rate_new, clock)
    first_win = np.full(accounts.n, np.inf)
    np.minimum.at(first_win, d.account, np.where(d.u_win < rate_new, first_paths.planned_close, np.inf))
    del first_paths
    since = business_hours(d.created) - first_win[d.account]
    customer = since >= 0
    typ = np.where(customer, np.where((since >= 300) & (d.u_type < RENEWAL_SHARE), 2, 1), 0)
    # Deals before the first win keep their pass-1 outcome (same draws), so the first win stays put.
    rate = np.where(customer, np.minimum(WIN_RATE[typ, seg] * skill, 0.97), rate_new)
    won = d.u_win < rate
    paths = _paths(d, seg, typ, won, clock)
    slot = paths.current()
    state = np.take_along_axis(paths.stage, slot[:, None], axis=1)[:, 0]
    source = np.where(customer, -1, d.source)
    return Deals(d, seg, typ, won, source, paths, slot, state)


def opportunity_ids(n: int) -> pl.Series:
    """Keys of n deals."""
    return ids("OPP-", n, OPP_WIDTH)


def _at(matrix: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """Each row's value in its given column."""
    return np.take_along_axis(matrix, slot[:, None], axis=1)[:, 0]


def opportunities_frame(deals: Deals, accounts: Accounts, team: Team, clock: Clock) -> pl.DataFrame:
    """The opportunities table: each deal's latest state."""
    d, p = deals.draws, deals.paths
    state = deals.state
    lost = state == LOST
    late = _reach(d, deals.type, deals.won) >= 3
    reason_early = np.searchsorted(LOST_EARLY_MIX.cumsum(), d.u_lost_reason, side="right").clip(0, 7)
    reason_late = np.searchsorted(LOST_LATE_MIX.cumsum(), d.u_lost_reason, side="right").clip(0, 7)
    reason = np.where(lost, np.where(late, reason_late, reason_early), -1)
    # Reps fill the probability on about 60 % of deals: the stage default nudged by their judgement.
    prob = np.where(state >= WON, np.where(state == WON, 1.0, 0.0),
                    np.clip(STAGE_PROBABILITY[np.minimum(state, 4)] + d.prob_adjust, 0.05, 0.95))
    prob = np.where(d.u_prob < 0.6, np.round(prob, 2), np.nan)
    names = account_names(accounts).gather(pl.Series(d.account))
    frame = pl.DataFrame({
        "opportunity_id": opportunity_ids(d.n),
        "stage": pick(STAGE_NAMES, state),
        "account_id": account_ids(accounts.n).gather(pl.Series(d.account)),
        "account_name": names,
        "type_label": pick(TYPE_LABELS, deals.type),
        "owner": pick(team.names, d.owner),
        "source_code": deals.source,
        "segment": pick(SEGMENTS, deals.segment),
        "reason": pl.Series(reason, dtype=pl.Int64),
        "type": pick(TYPES, deals.type),
        "amount": deals.amount,
        "created_day": d.created,
        "close_day": _at(p.expected_close, deals.slot),
        "is_closed": state >= WON,
        "is_won": state == WON,
        "forecast": _at(p.forecast, deals.slot).astype(np.int64),
        "probability": pl.Series(prob).fill_nan(None),
    })
    return frame.select(
        "opportunity_id", "stage", "account_id",
        pl.concat_str("account_name", "type_label", separator=" - ").alias("opportunity_name"),
        "owner",
        pl.when(pl.col("source_code") >= 0).then(label("source_code", SOURCES))
        .otherwise(pl.lit(EXISTING_CUSTOMER)).alias("source"),
        "segment", label("reason", LOST_REASONS).alias("lost_reason"),
        "type", pl.col("amount").round(2),
        clock.date_expr("created_day").alias("created_at"),
        clock.date_expr("close_day").alias("close_date"),
        "is_closed", "is_won",
        label("forecast", FORECAST).alias("forecast_category"),
        "probability",
    )


def stage_history_frame(deals: Deals, clock: Clock) -> pl.DataFrame:
    """The stage_history table: every slot that happened, in time order per deal."""
    p = deals.paths
    row, slot = np.nonzero(p.happened)  # row-major: each deal's events come out in time order
    frame = pl.DataFrame({
        "deal": row.astype(np.int64),
        "stage_code": p.stage[row, slot].astype(np.int64),
        "t": p.time[row, slot],
        "amount": p.amount[row, slot],
        "close_day": p.expected_close[row, slot],
        "forecast": p.forecast[row, slot].astype(np.int64),
    })
    del row, slot
    return frame.select(
        id_expr("OPP-", pl.col("deal"), OPP_WIDTH).alias("opportunity_id"),
        label("stage_code", STAGE_NAMES).alias("stage"),
        clock.ts_expr("t").alias("changed_at"),
        pl.col("amount").round(2),
        clock.date_expr("close_day").alias("close_date"),
        label("forecast", FORECAST).alias("forecast_category"),
    )
