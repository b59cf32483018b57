"""The leakage map: the six handoffs of the customer journey (METRICS.md), their leaks, SLAs and money at stake."""
from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import polars as pl

from revops.format import format_value
from revops.frames import Frames
from revops.funnel import cohort_deals, cohort_last_change
from revops.memo import derived
from revops.metrics.common import closed_columns, deal_columns, fractional_days, in_window, lifecycle_won
from revops.metrics.diagnostic import reached_mql
from revops.period import Period, years_before
from revops.reads import table_between
from revops.revenue import arr_by_account, movements

_DT = pl.Datetime("us")
PASSED, LEAKED, IN_PROGRESS = "passed", "leaked", "in progress"
EXPANSION_MONTHS = 12

# How the page explains the numbers (shown under "How it is counted").
HOW_COUNTED = """\
Every handoff sorts its cohort into passed, leaked or in progress (the clock still runs), so
entered = passed + leaked + in progress. The leak rate counts only decided records,
leaked ÷ (passed + leaked): a young cohort is not leak-free just because nothing has failed yet.
The responsible team is the receiving one, which must act within the SLA.
"""


@dataclass(frozen=True)
class Handoff:
    """One handoff's numbers and the records behind them (one row per record, with its outcome)."""

    key: str
    number: int
    name: str
    from_team: str
    to_team: str
    team: str
    unit: str
    entered: int
    passed: int
    leaked: int
    in_progress: int
    median_hours: float | None
    time_basis: str
    sla: str
    sla_met: int
    sla_base: int
    sla_reason: str | None
    money_at_stake: float | None
    money_basis: str
    money_reason: str | None
    records: pl.DataFrame  # the cohort: id columns, outcome, sla_met, issue, money
    definition: str = ""

    @property
    def leak_rate(self) -> float | None:
        """leaked ÷ (passed + leaked), or None when nothing is decided yet."""
        decided = self.passed + self.leaked
        return self.leaked / decided if decided else None

    @property
    def leak_reason(self) -> str | None:
        """Why there is no leak rate."""
        if self.passed + self.leaked:
            return None
        if self.entered == 0:
            return f"No {self.unit} entered this handoff in the window."
        return f"None of the {self.entered:,} {self.unit} has passed or leaked yet."

    @property
    def sla_compliance(self) -> float | None:
        """Records handed over within the SLA ÷ the records it applies to, or None (see sla_reason)."""
        return self.sla_met / self.sla_base if self.sla_base else None

    def leaks(self) -> pl.DataFrame:
        """The leaked records and the SLA breaches (e.g. MQLs never answered), money at stake first.

        Kept with the records: the page asks again on every rerun (hundreds of thousands of MQLs at scale).
        """
        return derived(self.records, "leaks", lambda: _leaks(self.records))


def _leaks(records: pl.DataFrame) -> pl.DataFrame:
    """Handoff.leaks of these records."""
    # sla_met is empty where no SLA applies (closed deals, handoff 5): not a breach.
    rows = records.filter((pl.col("outcome") == LEAKED) | ~pl.col("sla_met").fill_null(True)).sort(
        "money", descending=True, nulls_last=True)
    # What went wrong and what it costs read first, after the record's key.
    first = [records.columns[0], "issue", "outcome", "money", "sla_met"]
    return rows.select(*first, pl.exclude(first))


def _counts(records: pl.DataFrame) -> tuple[int, int, int, int]:
    """entered, passed, leaked, in progress of a cohort with an `outcome` column."""
    outcome = records["outcome"]
    return (records.height, int((outcome == PASSED).sum()), int((outcome == LEAKED).sum()),
            int((outcome == IN_PROGRESS).sum()))


def _median(records: pl.DataFrame, col: str) -> float | None:
    values = records[col].drop_nulls()
    return float(values.median()) if values.len() else None  # type: ignore[arg-type]


def _sla(records: pl.DataFrame, base: pl.Expr | None = None) -> tuple[int, int]:
    """(met, base): records within the SLA among those it applies to (all by default)."""
    scope = records.filter(base) if base is not None else records
    return int(scope["sla_met"].fill_null(False).sum()), scope.height


def _cutoff(as_of: dt.date) -> dt.datetime:
    """The end of as_of: events before it have happened."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())


def _outcome(passed: pl.Expr, leaked: pl.Expr) -> pl.Expr:
    """passed, else leaked, else in progress."""
    return (pl.when(passed).then(pl.lit(PASSED)).when(leaked).then(pl.lit(LEAKED))
            .otherwise(pl.lit(IN_PROGRESS)))


def _text_matches(df: pl.DataFrame, col: str, pattern: str) -> pl.Expr:
    """The column's lowercase text contains the regex `pattern` (False when empty).

    Worked out once per distinct value (a status or deal type), not once per row.
    """
    values = df[col].unique().drop_nulls()
    hits = values.filter(values.cast(pl.String).str.to_lowercase().str.contains(pattern).fill_null(False))
    return pl.col(col).is_in(hits.implode()).fill_null(False)


def _first_texts(first: list[tuple[pl.Expr, str | None]], second: list[tuple[pl.Expr, str | None]]) -> pl.Expr:
    """The text of the first condition that holds in `first`, and of the first in `second`, joined by "; " (null when
    neither has one).

    Each row takes one of a dozen texts made once, not a string built per row (hundreds of thousands of MQLs).
    """
    def index(pairs: list[tuple[pl.Expr, str | None]]) -> pl.Expr:
        chosen = pl.lit(len(pairs), pl.UInt32)  # none holds
        for i, (cond, _) in reversed(list(enumerate(pairs))):
            chosen = pl.when(cond.fill_null(False)).then(pl.lit(i, pl.UInt32)).otherwise(chosen)
        return chosen
    a = [t for _, t in first] + [None]
    b = [t for _, t in second] + [None]
    labels = {i * len(b) + j: "; ".join(x for x in (x1, x2) if x) or None
              for i, x1 in enumerate(a) for j, x2 in enumerate(b)}
    return (index(first) * len(b) + index(second)).replace_strict(labels, return_dtype=pl.String)


def _hours(start: str, end: str) -> pl.Expr:
    """end − start in fractional hours."""
    return fractional_days(start, end) * 24


def account_value(frames: Frames, as_of: dt.date) -> pl.DataFrame:
    """What each account is worth: ARR at as_of, else (not billing yet) the amount of its won deals.

    Columns account_id, value. Kept per frames and day: two handoffs price their leaks with it.
    """
    return derived(frames, "account_value", lambda: _account_value(frames, as_of), key=as_of, limit=8)


def _account_value(frames: Frames, as_of: dt.date) -> pl.DataFrame:
    arr = arr_by_account(frames.subscriptions, as_of)
    won = (frames.opportunities.select("account_id", "state", "amount")
           .filter((pl.col("state") == "won") & pl.col("account_id").is_not_null())
           .group_by("account_id").agg(won_amount=pl.col("amount").sum()))
    # Every account of either side once (one full join, not a union of ids joined twice); an account without
    # an id matches nothing, so it is worth nothing.
    return arr.join(won, on="account_id", how="full", coalesce=True).select(
        "account_id", value=pl.when(pl.col("account_id").is_null()).then(pl.lit(None, pl.Float64))
        .when(pl.col("arr") > 0).then(pl.col("arr")).otherwise(pl.col("won_amount")))


def _with_value(records: pl.DataFrame, frames: Frames, as_of: dt.date) -> pl.DataFrame:
    """Add `money`: the account's value for leaked records (0 stake for the others)."""
    return records.join(account_value(frames, as_of), on="account_id", how="left").with_columns(
        money=pl.when(pl.col("outcome") == LEAKED).then(pl.col("value"))).drop("value")


def _money(records: pl.DataFrame) -> float:
    return float(records["money"].fill_null(0).sum()) if records.height else 0.0


# ---------------------------------------------------------------------------------------
# 1. Lead → Opportunity


def lead_to_opportunity(frames: Frames, period: Period) -> Handoff:
    """MQLs created in the window: passed when they became an opportunity.

    Leaked: disqualified, or still without an opportunity once the stall limit (30 days unless
    changed in the settings) has passed since qualifying (gone cold); the rest are in progress.
    SLA: first response within the lead-response SLA of capture (never answered = breach).
    Money at stake: each leaked MQL × the value an opportunity brings on average (win rate ×
    average won deal, deals closed in the window).
    """
    s = frames.settings
    mqls = table_between(frames, "leads", "created_at", period.start, period.end).filter(reached_mql())
    # Only the deals these leads name are looked up: a hash of those few ids, not of every deal's. They are
    # looked for among the deals created in the window first (kept for handoff 2; a lead's deal is usually
    # created after it), and among all deals only if some are not there.
    named = mqls.select(pl.col("opportunity_id").drop_nulls().unique())
    created = {"opp_created": pl.col("created_at").cast(_DT)}
    opp_created = cohort_deals(frames, period).select("opportunity_id", **created).join(
        named, on="opportunity_id", how="semi")
    elsewhere = named.join(opp_created, on="opportunity_id", how="anti")
    if elsewhere.height:
        opp_created = pl.concat([opp_created, frames.opportunities.select("opportunity_id", **created).join(
            elsewhere, on="opportunity_id", how="semi")])
    leads = mqls.join(opp_created, on="opportunity_id", how="left", maintain_order="left")
    qualified = pl.coalesce(pl.col("mql_at").cast(_DT), pl.col("sql_at").cast(_DT), pl.col("created_at").cast(_DT))
    became_opp = pl.col("converted_at").is_not_null() | pl.col("opportunity_id").is_not_null()
    cold = qualified + pl.duration(days=s.stall_days) <= _cutoff(period.as_of)
    disqualified = _text_matches(leads, "status", "disqual")
    response = fractional_days("created_at", "first_response_at") * 24 * 60
    records = leads.with_columns(qualified_at=qualified, response_minutes=response).with_columns(
        outcome=_outcome(became_opp, disqualified | cold),
        sla_met=(pl.col("response_minutes") <= s.slas.lead_response_minutes).fill_null(False),
        handoff_hours=(pl.coalesce(pl.col("converted_at").cast(_DT), "opp_created") - pl.col("qualified_at"))
        .dt.total_seconds(fractional=True) / 3600,
    ).with_columns(issue=_first_texts(
        [(pl.col("first_response_at").is_null(), "never answered"), (~pl.col("sla_met"), "answered late")],
        [(became_opp, None), (disqualified, "disqualified"),
         (cold, f"no opportunity {s.stall_days}+ days after qualifying")]))
    # closed_between and won_between, read from three columns (they keep a copy of every closed deal's values
    # for trends; here one window's counts and won amounts are all it takes).
    closed = closed_columns(frames, period.start, period.end, ["state", "close_date", "amount"])
    won = closed.filter(pl.col("state") == "won")
    per_opp: float | None = None
    money_reason = None
    if closed.height and won["amount"].drop_nulls().len():
        per_opp = won.height / closed.height * float(won["amount"].drop_nulls().mean())  # type: ignore[arg-type]
    else:
        money_reason = "No deals with a known amount closed in the window, so an MQL's value is unknown."
    records = records.with_columns(money=pl.when(pl.col("outcome") == LEAKED).then(
        pl.lit(per_opp, pl.Float64)))
    e, p, lk, ip = _counts(records)
    met, base = _sla(records)
    cols = ["lead_id", "created_at", "source", "owner", "segment", "status", "mql_at", "first_response_at",
            "response_minutes", "converted_at", "opportunity_id", "outcome", "sla_met", "issue", "money",
            "handoff_hours"]
    return Handoff(
        "lead_to_opportunity", 1, "Lead → Opportunity", "Marketing", "Sales", "Sales", "MQLs",
        e, p, lk, ip, _median(records.filter(pl.col("handoff_hours") >= 0), "handoff_hours"),
        "qualified to opportunity", f"first response within {s.slas.lead_response_minutes:g} minutes of capture",
        met, base, None if base else "No MQLs created in the window.",
        per_opp * lk if per_opp is not None else None,
        "leaked MQLs × win rate × average won deal (deals closed in the window)", money_reason,
        records.select([c for c in cols if c in records.columns]))


# ---------------------------------------------------------------------------------------
# 2. Opportunity → Close


def opportunity_to_close(frames: Frames, period: Period) -> Handoff:
    """Deals created in the window: passed when won; leaked when lost or stalled.

    Stalled = open without a stage change within the stall limit (30 days unless changed in the
    settings) up to as-of. SLA: the cohort's open deals that moved stage within that limit.
    Money at stake: lost and stalled amounts.
    """
    s = frames.settings
    opps = cohort_deals(frames, period).join(cohort_last_change(frames, period, period.as_of), on="code",
                                             how="left", maintain_order="left").with_columns(
        days_since_change=(pl.lit(period.as_of) - pl.col("last_change")).dt.total_days())
    is_open = pl.col("state") == "open"
    stalled = is_open & (pl.col("days_since_change") >= s.stall_days).fill_null(False)
    records = opps.with_columns(
        outcome=_outcome(pl.col("state") == "won", (pl.col("state") == "lost") | stalled),
        sla_met=pl.when(is_open).then(~stalled),
        handoff_hours=pl.when(pl.col("state") == "won").then(
            (pl.col("close_date").cast(pl.Date) - pl.col("created")).dt.total_days() * 24.0),
        issue=pl.when(pl.col("state") == "lost").then(pl.concat_str(
            [pl.lit("lost"), pl.col("lost_reason")], separator=": ", ignore_nulls=True))
        .when(stalled).then(pl.format("stalled: no stage change for {} days", pl.col("days_since_change"))),
    ).with_columns(money=pl.when(pl.col("outcome") == LEAKED).then(pl.col("amount")))
    e, p, lk, ip = _counts(records)
    met, base = _sla(records, is_open)
    return Handoff(
        "opportunity_to_close", 2, "Opportunity → Close", "Sales", "Sales", "Sales", "deals",
        e, p, lk, ip, _median(records, "handoff_hours"), "created to won",
        f"open deals moving stage within {s.stall_days} days", met, base,
        None if base else "No deal of the cohort is still open.",
        _money(records), "amount of the lost and stalled deals", None,
        deal_columns(records, "days_since_change", "lost_reason", "outcome", "sla_met", "issue", "money",
                     "handoff_hours"))


# ---------------------------------------------------------------------------------------
# 3. Close → Onboard and 4. Onboard → Value


def _signed(frames: Frames, period: Period) -> pl.DataFrame:
    """Lifecycle accounts signed in the window (won_at, else the close date of their first won deal).

    Kept per frames and window: handoffs 3 and 4 both start from them.
    """
    def make() -> pl.DataFrame:
        life = frames.lifecycle
        # When every row has its won_at, lifecycle_won fills nothing: its look-up of every account's first won
        # deal (a pass over all deals) is skipped.
        signed = lifecycle_won(frames) if life["won_at"].null_count() else life
        return signed.filter(in_window("won_at", period)).with_columns(
            pl.col("won_at", "kickoff_at", "first_value_at").cast(_DT))
    return derived(frames, "signed", make, key=(period.start, period.end), limit=4)


def close_to_onboard(frames: Frames, period: Period) -> Handoff:
    """Customers signed in the window: passed when kicked off (a customer that reached first value was).

    Leaked: no kickoff and the kickoff SLA has run out by as_of. SLA: kickoff within the kickoff
    SLA of signature (none yet = breach, as the kickoff_sla metric counts). Money at stake: the
    leaked accounts' value (ARR at as_of, else their won deals).
    """
    s = frames.settings
    sla = s.slas.kickoff_hours
    kicked = pl.col("kickoff_at").is_not_null() | pl.col("first_value_at").is_not_null()
    overdue = pl.col("won_at") + pl.duration(hours=sla) < _cutoff(period.as_of)
    records = _signed(frames, period).with_columns(handoff_hours=_hours("won_at", "kickoff_at")).with_columns(
        outcome=_outcome(kicked, overdue),
        sla_met=(pl.col("handoff_hours") <= sla).fill_null(False),
        issue=pl.when(~kicked & overdue).then(pl.lit("no kickoff"))
        .when(pl.col("kickoff_at").is_null()).then(pl.lit("kickoff not recorded"))
        .when(pl.col("handoff_hours") > sla).then(pl.lit("kickoff late")),
    )
    records = _with_value(records, frames, period.as_of)
    e, p, lk, ip = _counts(records)
    met, base = _sla(records)
    return Handoff(
        "close_to_onboard", 3, "Close → Onboard", "Sales", "Customer success", "Customer success", "customers",
        e, p, lk, ip, _median(records, "handoff_hours"), "signature to kickoff",
        f"kickoff within {sla:g} hours of signature", met, base,
        None if base else "No customer was signed in the window.",
        _money(records), "value of the signed customers without kickoff (ARR, else won amount)", None,
        records.select("account_id", "won_at", "kickoff_at", "first_value_at", "handoff_hours", "outcome", "sla_met",
                       "issue", "money"))


def onboard_to_value(frames: Frames, period: Period) -> Handoff:
    """Customers signed in the window and kicked off: passed when they reached first value.

    Leaked: no first value and the first-value SLA (days after signature) has run out by as_of.
    SLA: first value within that many days of signature. Handoff time: kickoff to first value.
    Money at stake: the leaked accounts' value.
    """
    s = frames.settings
    days = s.slas.first_value_days
    overdue = pl.col("won_at") + pl.duration(hours=days * 24) < _cutoff(period.as_of)
    valued = pl.col("first_value_at").is_not_null()
    records = _signed(frames, period).filter(
        pl.col("kickoff_at").is_not_null() | valued).with_columns(
        handoff_hours=_hours("kickoff_at", "first_value_at"),
        to_value_days=fractional_days("won_at", "first_value_at"),
    ).with_columns(
        outcome=_outcome(valued, overdue),
        sla_met=(pl.col("to_value_days") <= days).fill_null(False),
        issue=pl.when(~valued & overdue).then(pl.lit("no first value"))
        .when(pl.col("to_value_days") > days).then(pl.lit("first value late")),
    )
    records = _with_value(records, frames, period.as_of)
    e, p, lk, ip = _counts(records)
    met, base = _sla(records)
    return Handoff(
        "onboard_to_value", 4, "Onboard → Value", "Customer success", "Customer success", "Customer success",
        "customers", e, p, lk, ip, _median(records, "handoff_hours"), "kickoff to first value",
        f"first value within {days:g} days of signature", met, base,
        None if base else "No kicked-off customer was signed in the window.",
        _money(records), "value of the customers without first value (ARR, else won amount)", None,
        records.select("account_id", "won_at", "kickoff_at", "first_value_at", "to_value_days", "handoff_hours",
                       "outcome", "sla_met", "issue", "money"))


# ---------------------------------------------------------------------------------------
# 5. Value → Expand


def value_to_expand(frames: Frames, period: Period) -> Handoff:
    """Customers whose 12-month expansion window closed in the window: first value 12 months before it.

    Passed: an MRR expansion at a month end within 12 months after first value, or a won
    expansion deal closed then. Leaked: neither, once the 12 months are over by as_of. No SLA
    applies (the 12-month window is the pass rule). Money at stake: ARR at as_of of the
    accounts that did not expand (the base the expansion motion missed).
    """
    lo, hi = years_before(period.start), years_before(period.end)
    cohort = frames.lifecycle.filter(pl.col("first_value_at").cast(pl.Date).is_between(lo, hi)).select(
        "account_id", first_value_at=pl.col("first_value_at").cast(_DT)).with_columns(
        until=pl.col("first_value_at").dt.offset_by(f"{EXPANSION_MONTHS}mo"))
    cutoff = _cutoff(period.as_of)
    if cohort.height:
        # An account's movements depend on its own subscriptions only: those of the cohort's accounts are
        # classified, not every account's.
        subs = frames.subscriptions.filter(pl.col("account_id").is_in(cohort["account_id"].implode()))
        moves = movements(subs, lo, period.as_of).filter(pl.col("movement") == "expansion").select(
            "account_id", at=pl.col("month_end").cast(_DT))
    else:
        moves = pl.DataFrame(schema={"account_id": pl.String, "at": _DT})
    won = frames.opportunities.select("account_id", "state", "type", "close_date").filter(pl.col("state") == "won")
    deals = won.filter(_text_matches(won, "type", "expansion|upsell")).select(
        "account_id", at=pl.col("close_date").cast(_DT))
    first_expansion = (
        cohort.join(pl.concat([moves, deals]), on="account_id", how="inner")
        .filter((pl.col("at") > pl.col("first_value_at")) & (pl.col("at") <= pl.col("until"))
                & (pl.col("at") < cutoff))
        .group_by("account_id").agg(expanded_at=pl.col("at").min())
    )
    over = pl.col("until") < cutoff
    records = cohort.join(first_expansion, on="account_id", how="left").with_columns(
        outcome=_outcome(pl.col("expanded_at").is_not_null(), over),
        sla_met=pl.lit(None, pl.Boolean),
        handoff_hours=_hours("first_value_at", "expanded_at"),
        issue=pl.when(pl.col("expanded_at").is_null() & over).then(
            pl.lit(f"no expansion within {EXPANSION_MONTHS} months of first value")),
    )
    arr = arr_by_account(frames.subscriptions, period.as_of)
    records = records.join(arr, on="account_id", how="left").with_columns(
        money=pl.when(pl.col("outcome") == LEAKED).then(pl.col("arr").fill_null(0.0))).drop("arr")
    e, p, lk, ip = _counts(records)
    return Handoff(
        "value_to_expand", 5, "Value → Expand", "Customer success", "Customer success", "Customer success",
        "customers", e, p, lk, ip, _median(records, "handoff_hours"), "first value to first expansion",
        f"expansion within {EXPANSION_MONTHS} months of first value (the pass rule)", 0, 0,
        "No SLA applies: expanding within 12 months of first value is the pass rule itself.",
        _money(records), "ARR at as-of of the customers that did not expand", None,
        records.select(
            "account_id", "first_value_at", "until", "expanded_at", "handoff_hours", "outcome", "sla_met",
            "issue", "money").rename({"until": "expand_by"}))


# ---------------------------------------------------------------------------------------
# 6. Expand → Renew


def _active_on(day: str) -> pl.Expr:
    """A subscription row is active on the row's `day` (start <= day < end)."""
    return (pl.col("start_date") <= pl.col(day)) & (pl.col("end_date").is_null() | (pl.col("end_date") > pl.col(day)))


def _mrr_around(subs: pl.DataFrame, due: pl.DataFrame) -> pl.DataFrame:
    """`due` with the MRR of each row's account on the day before and the day after (mrr_before, mrr_after; 0 when
    none).

    Both days in one join of the accounts' subscriptions, not one join per day; each sum adds the subscriptions
    in table order, so it is the same to the last digit on every run.
    """
    around = (
        due.select("account_id", "due", "before_day", "after_day").unique()
        .join(subs.select("account_id", "start_date", "end_date", pl.col("mrr").cast(pl.Float64)), on="account_id",
              how="inner", maintain_order="right")
        # Inactive rows are null, which a sum skips (a filter inside the aggregation would run once per group).
        .select("account_id", "due", mrr_before=pl.when(_active_on("before_day")).then("mrr"),
                mrr_after=pl.when(_active_on("after_day")).then("mrr"))
        .group_by("account_id", "due").agg(pl.col("mrr_before", "mrr_after").sum())
    )
    return due.join(around, on=["account_id", "due"], how="left", maintain_order="left").with_columns(
        pl.col("mrr_before", "mrr_after").fill_null(0.0))


def renewals_due(frames: Frames, period: Period) -> pl.DataFrame:
    """Renewals that fell due in the window before as_of, one row per account and due date.

    The lifecycle table holds each customer's *next* contract end, so a customer who renewed
    already shows next year's date. Its earlier renewals are inferred as the yearly
    anniversaries before renewal_date (annual contracts), kept only when the account was
    billing the day before (a contract ran into that date). The stated renewal_date always counts.
    Columns account_id, due, stated (the stated date, not an inferred anniversary), renewal_outreach_at.
    """
    life = frames.lifecycle.filter(pl.col("renewal_date").is_not_null()).select(
        "account_id", renewal_date=pl.col("renewal_date").cast(pl.Date),
        renewal_outreach_at=pl.col("renewal_outreach_at").cast(_DT))
    # How many anniversaries back reach the window start (none for a date before it).
    years_back = ((pl.col("renewal_date") - pl.lit(period.start)).dt.total_days() // 365 + 1).clip(lower_bound=0)
    return (
        life.with_columns(k=pl.int_ranges(0, years_back + 1)).explode("k")
        .filter(pl.col("k").is_not_null())
        .with_columns(due=pl.col("renewal_date").dt.offset_by(pl.format("-{}y", pl.col("k"))), stated=pl.col("k") == 0)
        .filter(pl.col("due").is_between(period.start, period.end) & (pl.col("due") < period.as_of))
        .select("account_id", "due", "stated", "renewal_outreach_at")
    )


def expand_to_renew(frames: Frames, period: Period) -> Handoff:
    """Renewals due in the window before as_of: passed when the customer is still active after the date.

    Due dates are each customer's stated renewal date and, for customers who already renewed,
    its yearly anniversaries (the lifecycle table only keeps the next contract end). Renewed =
    MRR > 0 the day after; leaked = churned. SLA: outreach at least the outreach lead (90 days)
    before the stated renewal date (the outreach date belongs to it, so inferred anniversaries
    are not judged). Money at stake: ARR on the day before of the customers that churned.
    Without subscriptions nothing can be decided.
    """
    s = frames.settings
    lead = s.slas.renewal_outreach_days
    due = renewals_due(frames, period).with_columns(after_day=pl.col("due") + pl.duration(days=1),
                                                    before_day=pl.col("due") - pl.duration(days=1))
    known = frames.subscriptions.height > 0
    records = (
        _mrr_around(frames.subscriptions, due)
        # An inferred anniversary without a running contract was no renewal at all.
        .filter(pl.col("stated") | (pl.col("mrr_before") > 0))
        .with_columns(outreach_days_before=pl.when(pl.col("stated")).then(
            (pl.col("due") - pl.col("renewal_outreach_at").cast(pl.Date)).dt.total_days()))
        .with_columns(
            outcome=_outcome(pl.lit(known) & (pl.col("mrr_after") > 0), pl.lit(known) & (pl.col("mrr_after") <= 0)),
            sla_met=pl.when(pl.col("stated")).then((pl.col("outreach_days_before") >= lead).fill_null(False)),
            handoff_hours=pl.col("outreach_days_before") * 24.0,
            arr_before=12 * pl.col("mrr_before"),
        )
        .with_columns(
            issue=pl.concat_str([
                pl.when(pl.col("outcome") == LEAKED).then(pl.lit("churned at renewal")),
                pl.when(pl.col("stated") & pl.col("renewal_outreach_at").is_null()).then(pl.lit("no renewal outreach"))
                .when(pl.col("stated") & ~pl.col("sla_met")).then(
                    pl.format("outreach only {} days before", "outreach_days_before")),
            ], separator="; ", ignore_nulls=True),
            money=pl.when(pl.col("outcome") == LEAKED).then(pl.col("arr_before")),
        )
        .with_columns(issue=pl.when(pl.col("issue") != "").then(pl.col("issue")))
        .sort("due", "account_id")
    )
    e, p, lk, ip = _counts(records)
    met, base = _sla(records, pl.col("stated"))
    return Handoff(
        "expand_to_renew", 6, "Expand → Renew", "Customer success", "Customer success", "Customer success",
        "renewals", e, p, lk, ip, _median(records, "handoff_hours"), "outreach ahead of renewal",
        f"renewal outreach {lead} days before the renewal date", met, base,
        None if base else "No stated renewal date fell due in the window.",
        _money(records) if known else None, "ARR before renewal of the customers that churned",
        None if known else "No subscriptions are loaded, so renewals cannot be checked.",
        records.select("account_id", pl.col("due").alias("renewal_date"), "stated", "renewal_outreach_at",
                       "outreach_days_before", "mrr_before", "mrr_after", "arr_before", "handoff_hours", "outcome",
                       "sla_met", "issue", "money"))


# ---------------------------------------------------------------------------------------
# All six


HANDOFFS: tuple[Callable[[Frames, Period], Handoff], ...] = (
    lead_to_opportunity, opportunity_to_close, close_to_onboard, onboard_to_value, value_to_expand, expand_to_renew)

HANDOFFS_SCHEMA = {
    "number": pl.Int64, "key": pl.String, "handoff": pl.String, "from_team": pl.String, "to_team": pl.String,
    "team": pl.String, "unit": pl.String, "entered": pl.Int64, "passed": pl.Int64, "leaked": pl.Int64,
    "in_progress": pl.Int64, "leak_rate": pl.Float64, "leak_reason": pl.String, "median_hours": pl.Float64,
    "median_time": pl.String, "time_basis": pl.String, "sla": pl.String, "sla_compliance": pl.Float64,
    "sla_reason": pl.String, "money_at_stake": pl.Float64, "money_basis": pl.String, "money_reason": pl.String,
    "notes": pl.String,
}


def definition(fn: Callable[[Frames, Period], Handoff]) -> str:
    """A handoff's definition for the page: its function's docstring as one paragraph."""
    return " ".join((fn.__doc__ or "").split())


def all_handoffs(frames: Frames, period: Period) -> list[Handoff]:
    """The six handoffs in journey order, each with its definition.

    Kept per frames and period: the Handoffs page and the operating model's prefill both start from them.
    """
    return derived(frames, "handoffs", lambda: _all_handoffs(frames, period), key=period, limit=4)


def _all_handoffs(frames: Frames, period: Period) -> list[Handoff]:
    # Two at a time (Polars works outside the interpreter lock): the handoffs share no step but the kept
    # ones (memo.derived), whose second asker waits for the first.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="revops-handoffs") as pool:
        pending = [pool.submit(contextvars.copy_context().run, fn, frames, period) for fn in HANDOFFS]
        return [replace(p.result(), definition=definition(fn)) for fn, p in zip(HANDOFFS, pending)]


def _time_text(hours: float | None) -> str:
    """A handoff time in the unit that reads best: hours under two days, days above."""
    if hours is None:
        return format_value(None, "hours")
    return format_value(hours, "hours") if abs(hours) < 48 else format_value(hours / 24, "days")


def table_of(handoffs: list[Handoff]) -> pl.DataFrame:
    """One row per handoff: entered, passed, leaked, in progress, leak rate, time, SLA, money at stake, team."""
    rows = [{
        "number": h.number, "key": h.key, "handoff": h.name, "from_team": h.from_team, "to_team": h.to_team,
        "team": h.team, "unit": h.unit, "entered": h.entered, "passed": h.passed, "leaked": h.leaked,
        "in_progress": h.in_progress, "leak_rate": h.leak_rate, "leak_reason": h.leak_reason,
        "median_hours": h.median_hours, "median_time": _time_text(h.median_hours), "time_basis": h.time_basis,
        "sla": h.sla, "sla_compliance": h.sla_compliance, "sla_reason": None if h.sla_base else h.sla_reason,
        "money_at_stake": h.money_at_stake, "money_basis": h.money_basis, "money_reason": h.money_reason,
        # Every empty number says why, in one place the page can show next to the row.
        "notes": " ".join(r for r in (h.leak_reason, None if h.sla_base else h.sla_reason, h.money_reason) if r)
        or None,
    } for h in handoffs]
    return pl.DataFrame(rows, schema=HANDOFFS_SCHEMA)


def handoffs_table(frames: Frames, period: Period) -> pl.DataFrame:
    """The leakage map as a table: the six handoffs of METRICS.md, one row each."""
    return table_of(all_handoffs(frames, period))


def leaked_records(frames: Frames, period: Period, key: str) -> pl.DataFrame:
    """The leaked records and SLA breaches of one handoff (by key), money at stake first."""
    fn = {f.__name__: f for f in HANDOFFS}.get(key)
    if fn is None:
        raise ValueError(f"unknown handoff {key!r}; choose one of {', '.join(f.__name__ for f in HANDOFFS)}")
    return fn(frames, period).leaks()


# ---------------------------------------------------------------------------------------
# The Sankey


# Labels of the nodes between handoffs: the node a handoff starts from, and how its cohort
# joins the previous one (records entering from elsewhere, passed records outside the next cohort).
_STAGE_NODES = ("MQLs", "Opportunities", "Won customers", "Kicked off", "Reached value", "Renewals due")
_LEAK_NODES = ("Leaked: no opportunity", "Leaked: lost or stalled", "Leaked: no kickoff",
               "Leaked: no first value", "Leaked: no expansion", "Leaked: churned")
_BRIDGE_IN = ("", "Opportunities from other sources", "Customers signed from other deals", "",
              "Reached value earlier (12-month window closing now)", "Renewals of other customers")
_BRIDGE_OUT = ("Opportunities outside the window's cohort", "Won deals beyond the new customers", "",
               "Value reached, expansion clock still running", "Expanded, renewal not due yet")
NODE_KINDS = ("stage", "leak", "progress", "exit", "bridge_in", "bridge_out", "end")


# The parts of the journey the page can draw: label, first and last handoff (the whole journey dwarfs
# the customer handoffs, whose counts are a tenth of the lead ones).
SANKEY_SECTIONS: dict[str, tuple[str, int, int]] = {
    "all": ("Whole journey", 1, 6), "pre": ("Lead to close", 1, 2), "post": ("Close to renewal", 3, 6)}
_END_NODES = ("Opportunities", "Won deals", "Kicked off", "Reached value", "Expanded", "Renewed")
_PASSED = ("became an opportunity", "won", "kicked off", "reached value", "expanded", "renewed")


def sankey_flows(frames: Frames, period: Period, handoffs: list[Handoff] | None = None, first: int = 1,
                 last: int = 6) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The journey from leads to renewal (or handoffs first..last) as Sankey nodes and links, a leak at each handoff.

    Nodes (id, label, kind, value); links (source, target, value, label). A stage node's
    inflow equals its outflow: passed to the next stage, leaked, or still in progress. Units
    change along the way (leads, deals, customers, renewals), so where one handoff's cohort
    differs from the next, bridge nodes carry the difference: records joining from elsewhere
    (a source) or passed records that are not in the next cohort (a sink).
    """
    hs = handoffs if handoffs is not None else all_handoffs(frames, period)
    nodes: list[tuple[str, str]] = []
    links: list[tuple[int, int, int, str]] = []

    def node(label: str, kind: str) -> int:
        nodes.append((label, kind))
        return len(nodes) - 1

    def link(source: int, target: int, value: int, label: str) -> None:
        if value > 0:
            links.append((source, target, value, label))

    stage = node(_STAGE_NODES[first - 1], "stage")
    if first == 1:
        # Leads are a superset of the first cohort (MQLs created in the window); the difference never qualified.
        leads = table_between(frames, "leads", "created_at", period.start, period.end).height
        lead_node = node("Leads", "stage")
        link(lead_node, stage, hs[0].entered, "qualified")
        link(lead_node, node("Not marketing-qualified", "exit"), leads - hs[0].entered, "not qualified")
    progress = node("Still in progress", "progress")
    for i in range(first - 1, last):
        h = hs[i]
        link(stage, node(_LEAK_NODES[i], "leak"), h.leaked, "leaked")
        link(stage, progress, h.in_progress, "in progress")
        if i + 1 < last:
            nxt_h = hs[i + 1]
            nxt = node(_STAGE_NODES[i + 1], "stage")
            link(stage, nxt, min(h.passed, nxt_h.entered), _PASSED[i])
            if h.passed > nxt_h.entered:
                link(stage, node(_BRIDGE_OUT[i], "bridge_out"), h.passed - nxt_h.entered,
                     f"{_PASSED[i]}, not in the next cohort")
            if nxt_h.entered > h.passed:
                link(node(_BRIDGE_IN[i + 1], "bridge_in"), nxt, nxt_h.entered - h.passed, "joined")
            stage = nxt
        else:
            link(stage, node(_END_NODES[i], "end"), h.passed, _PASSED[i])
    node_frame = pl.DataFrame({"id": list(range(len(nodes))), "label": [n[0] for n in nodes],
                               "kind": [n[1] for n in nodes]}, schema={"id": pl.Int64, "label": pl.String,
                                                                       "kind": pl.String})
    link_frame = pl.DataFrame(links, schema={"source": pl.Int64, "target": pl.Int64, "value": pl.Int64,
                                             "label": pl.String}, orient="row")
    inflow = link_frame.group_by(pl.col("target").alias("id")).agg(inflow=pl.col("value").sum())
    outflow = link_frame.group_by(pl.col("source").alias("id")).agg(outflow=pl.col("value").sum())
    # A node's size is what passes through it (sources: what leaves; sinks: what arrives).
    node_frame = (node_frame.join(inflow, on="id", how="left").join(outflow, on="id", how="left")
                  .select("id", "label", "kind", value=pl.max_horizontal(pl.col("inflow").fill_null(0),
                                                                         pl.col("outflow").fill_null(0)))
                  .sort("id"))
    # Drop nodes that carry nothing (no link touches them), renumbering links.
    used = node_frame.filter(pl.col("value") > 0).with_row_index("new_id").with_columns(pl.col("new_id").cast(pl.Int64))
    remap = dict(zip(used["id"].to_list(), used["new_id"].to_list()))
    link_frame = link_frame.with_columns(pl.col("source", "target").replace_strict(remap, return_dtype=pl.Int64))
    return used.select(id="new_id", label="label", kind="kind", value="value"), link_frame


@dataclass(frozen=True)
class Journey:
    """Everything the Handoffs page shows: the six handoffs, their table, the Sankey, the headline."""

    handoffs: list[Handoff]
    table: pl.DataFrame
    nodes: pl.DataFrame
    links: pl.DataFrame
    money_at_stake: float
    headline: str
    sections: dict[str, tuple[pl.DataFrame, pl.DataFrame]]  # SANKEY_SECTIONS key -> (nodes, links)

    @property
    def leaked(self) -> int:
        """Leaked records over the six handoffs (MQLs, deals, customers and renewals together)."""
        return sum(h.leaked for h in self.handoffs)

    @property
    def in_progress(self) -> int:
        """Records whose handoff clock still runs, over the six handoffs."""
        return sum(h.in_progress for h in self.handoffs)

    def by_key(self, key: str) -> Handoff:
        """One handoff by its key."""
        return next(h for h in self.handoffs if h.key == key)


def journey(frames: Frames, period: Period) -> Journey:
    """The six handoffs, their table, the Sankey flows, the total money at stake and the biggest leak in words."""
    hs = all_handoffs(frames, period)
    total = sum(h.money_at_stake or 0.0 for h in hs)
    rated = [h for h in hs if h.leak_rate is not None]
    if not rated:
        headline = "No handoff has decided records in the window yet, so no leak can be named."
    else:
        worst = max(rated, key=lambda h: (h.money_at_stake or 0.0, h.leak_rate))
        money = format_value(worst.money_at_stake, "money", frames.settings.currency)
        headline = (f"The costliest leak is **{worst.name}** ({worst.team.lower()}): {worst.leaked:,} of "
                    f"{worst.passed + worst.leaked:,} decided {worst.unit} leaked ({worst.leak_rate:.0%}), "
                    f"{money} at stake.")
    sections = {key: sankey_flows(frames, period, hs, first, last) for key, (_, first, last) in SANKEY_SECTIONS.items()}
    nodes, links = sections["all"]  # the whole journey, handoffs 1 to 6
    return Journey(hs, table_of(hs), nodes, links, total, headline, sections)


__all__ = ["HANDOFFS", "HANDOFFS_SCHEMA", "Handoff", "account_value", "all_handoffs", "close_to_onboard",
           "definition", "expand_to_renew", "handoffs_table", "Journey", "journey", "lead_to_opportunity",
           "leaked_records", "onboard_to_value",
           "opportunity_to_close", "renewals_due", "SANKEY_SECTIONS", "sankey_flows", "table_of", "value_to_expand"]
