"""Pydantic models of the canonical tables and the workspace settings (DATA.md)."""
from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["id", "text", "date", "ts", "money", "int", "float", "bool"]

# DuckDB type of each canonical kind; money is a decimal in the file so BI tools see cents exactly.
DUCKDB_TYPES: dict[str, str] = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "date": "DATE",
    "ts": "TIMESTAMP",
    "money": "DECIMAL(18,2)",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
}


def col(kind: Kind, doc: str = "", *, required: bool = False) -> Any:
    """Declare a canonical column: its kind, whether the file must carry it, its meaning."""
    extra = {"kind": kind, "required": required}
    if required:
        return Field(..., description=doc, json_schema_extra=extra)
    return Field(None, description=doc, json_schema_extra=extra)


class CanonicalTable(BaseModel):
    """Base of every canonical table model: a row of the table."""

    model_config = ConfigDict(extra="ignore")
    table: ClassVar[str]
    key: ClassVar[tuple[str, ...]]
    description: ClassVar[str]


class Account(CanonicalTable):
    table = "accounts"
    key = ("account_id",)
    description = "One row per customer or prospect company."
    account_id: str = col("id", "Stable key of the company.", required=True)
    account_name: str | None = col("text", "Company name.")
    segment: str | None = col("text", "SMB / Mid-Market / Enterprise or the company's own.")
    industry: str | None = col("text", "Industry.")
    region: str | None = col("text", "Sales region.")
    owner: str | None = col("text", "Account owner.")
    business_unit: str | None = col("text", "Business unit.")
    employees: int | None = col("int", "Headcount.")
    created_at: dt.date | None = col("date", "When the account was created.")


class Lead(CanonicalTable):
    table = "leads"
    key = ("lead_id",)
    description = "One row per lead or contact entering the funnel."
    lead_id: str = col("id", "Stable key of the lead.", required=True)
    created_at: dt.datetime = col("ts", "First captured.", required=True)
    source: str | None = col("text", "Lead source / channel (e.g. paid_search, partner).")
    account_id: str | None = col("text", "Company of the lead.")
    owner: str | None = col("text", "Lead owner.")
    segment: str | None = col("text", "Segment.")
    first_response_at: dt.datetime | None = col("ts", "First human sales touch (lead response time).")
    mql_at: dt.datetime | None = col("ts", "Became marketing-qualified.")
    sql_at: dt.datetime | None = col("ts", "Became sales-qualified.")
    pql_at: dt.datetime | None = col("ts", "Became product-qualified.")
    converted_at: dt.datetime | None = col("ts", "Converted to an opportunity.")
    opportunity_id: str | None = col("id", "The opportunity it became.")
    status: str | None = col("text", "open / working / converted / disqualified.")


class Opportunity(CanonicalTable):
    table = "opportunities"
    key = ("opportunity_id",)
    description = "One row per deal (latest known state)."
    opportunity_id: str = col("id", "Stable key of the deal.", required=True)
    stage: str = col("text", "Stage name as in the CRM; mapped through the stage settings.", required=True)
    account_id: str | None = col("text", "Company of the deal.")
    opportunity_name: str | None = col("text", "Deal name.")
    owner: str | None = col("text", "Deal owner.")
    source: str | None = col("text", "Lead source of the deal.")
    segment: str | None = col("text", "Segment.")
    lost_reason: str | None = col("text", "Why the deal was lost.")
    type: str | None = col("text", "new_business / expansion / renewal.")
    amount: float | None = col("money", "Deal value.")
    created_at: dt.date | None = col("date", "When the deal was created.")
    close_date: dt.date | None = col("date", "Expected close for open deals, actual close for closed ones.")
    is_closed: bool | None = col("bool", "Closed (won or lost); derived from the stage settings when absent.")
    is_won: bool | None = col("bool", "Won; derived from the stage settings when absent.")
    forecast_category: str | None = col("text", "pipeline / best_case / commit / closed / omitted.")
    probability: float | None = col("float", "0-1 (65, 65% and 0.65 all mean 0.65).")


class StageChange(CanonicalTable):
    table = "stage_history"
    key = ("opportunity_id", "stage", "changed_at")
    description = "One row per stage change of a deal."
    opportunity_id: str = col("id", "The deal.", required=True)
    stage: str = col("text", "Stage entered.", required=True)
    changed_at: dt.datetime = col("ts", "When it was entered.", required=True)
    amount: float | None = col("money", "Amount at that time.")
    close_date: dt.date | None = col("date", "Expected close date at that time (slippage).")
    forecast_category: str | None = col("text", "Forecast category at that time.")


class Subscription(CanonicalTable):
    table = "subscriptions"
    key = ("subscription_id",)
    description = "Recurring revenue: the ARR/NRR base."
    subscription_id: str = col("id", "Stable key of the subscription.", required=True)
    account_id: str = col("id", "The paying account.", required=True)
    start_date: dt.date = col("date", "First day billed.", required=True)
    end_date: dt.date | None = col("date", "First day no longer billed (exclusive); empty = still active.")
    mrr: float = col("money", "Monthly recurring amount (an arr column divided by 12 may stand in).", required=True)
    product: str | None = col("text", "Product.")
    plan: str | None = col("text", "Plan.")


class Lifecycle(CanonicalTable):
    table = "lifecycle"
    key = ("account_id",)
    description = "One row per customer account after the sale."
    account_id: str = col("id", "The customer account.", required=True)
    won_at: dt.datetime | None = col("ts", "Contract signed (else the close date of its first won deal).")
    kickoff_at: dt.datetime | None = col("ts", "Customer kickoff held.")
    first_value_at: dt.datetime | None = col("ts", "First value / go-live.")
    renewal_date: dt.date | None = col("date", "Next contract end.")
    renewal_outreach_at: dt.datetime | None = col("ts", "Renewal conversation started.")
    health_score: float | None = col("float", "0-100.")
    csat: float | None = col("float", "0-100 (1-5 and 1-10 scales are rescaled).")


class Usage(CanonicalTable):
    table = "usage"
    key = ("account_id", "date", "feature")
    description = "Product usage: one row per account, day (or week) and feature."
    account_id: str = col("id", "The account.", required=True)
    date: dt.date = col("date", "Day (or week start) of the usage.", required=True)
    feature: str | None = col("text", "Feature used.")
    active_users: int | None = col("int", "Active users.")
    events: int | None = col("int", "Events.")


class Spend(CanonicalTable):
    table = "spend"
    key = ("month", "category", "channel")
    description = "Sales and marketing cost per month."
    month: dt.date = col("date", "Any day of the month (stored as the first).", required=True)
    amount: float = col("money", "Cost.", required=True)
    category: str | None = col("text", "marketing / sales.")
    channel: str | None = col("text", "Channel.")


class Touch(CanonicalTable):
    table = "touches"
    key = ("touched_at", "channel", "lead_id", "account_id", "opportunity_id")
    description = "Marketing touchpoints, for attribution."
    touched_at: dt.datetime = col("ts", "When.", required=True)
    channel: str = col("text", "Channel.", required=True)
    lead_id: str | None = col("id", "Lead touched.")
    account_id: str | None = col("id", "Account touched.")
    opportunity_id: str | None = col("id", "Deal touched.")


class Target(CanonicalTable):
    table = "targets"
    key = ("period_start", "period_end", "segment", "owner")
    description = "Quotas and plans (bookings targets)."
    period_start: dt.date = col("date", "First day of the period (inclusive).", required=True)
    period_end: dt.date = col("date", "Last day of the period (inclusive).", required=True)
    target_amount: float = col("money", "Bookings (closed-won amount) target.", required=True)
    segment: str | None = col("text", "Segment; empty = whole company.")
    owner: str | None = col("text", "Owner; empty = whole company.")


MODELS: dict[str, type[CanonicalTable]] = {
    m.table: m
    for m in (Account, Lead, Opportunity, StageChange, Subscription, Lifecycle, Usage, Spend, Touch, Target)
}
TABLES: tuple[str, ...] = tuple(MODELS)


class ColumnSpec(BaseModel):
    """One canonical column as the store, the reader and the data dictionary see it."""

    name: str
    kind: Kind
    required: bool
    doc: str

    @property
    def duckdb_type(self) -> str:
        """DuckDB column type of this kind."""
        return DUCKDB_TYPES[self.kind]


def columns(table: str) -> list[ColumnSpec]:
    """The canonical columns of a table, in order."""
    model = MODELS[table]
    out = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra or {}
        out.append(ColumnSpec(name=name, kind=extra["kind"], required=bool(extra["required"]),
                              doc=field.description or ""))
    return out


def column_names(table: str) -> list[str]:
    """Names of the canonical columns of a table."""
    return [c.name for c in columns(table)]


# ---------------------------------------------------------------------------------------
# Settings


class StageSetting(BaseModel):
    """One opportunity stage: where it sits in the funnel and what it means."""

    name: str
    is_closed: bool = False
    is_won: bool = False
    probability: float = Field(0.1, ge=0, le=1)
    funnel_step: int = 0
    aliases: list[str] = Field(default_factory=list)


class SLAs(BaseModel):
    """Service levels of the handoffs."""

    lead_response_minutes: float = 5.0
    kickoff_hours: float = 48.0
    first_value_days: float = 30.0
    renewal_outreach_days: int = 90


def default_stages() -> list[StageSetting]:
    """Stage defaults recognising Salesforce, HubSpot and common plain names."""
    rows = [
        ("Prospecting", False, False, 0.10, ["prospect", "new", "appointmentscheduled", "lead"]),
        ("Qualification", False, False, 0.20, ["qualify", "qualified", "qualifiedtobuy", "discovery", "engaging"]),
        ("Needs Analysis", False, False, 0.30, ["needsanalysis", "presentationscheduled", "demo", "solution"]),
        ("Proposal", False, False, 0.50, ["proposalpricequote", "proposal/price quote", "valueproposition",
                                           "decisionmakerboughtin", "idreview", "id. decision makers",
                                           "perceptionanalysis"]),
        ("Negotiation", False, False, 0.75, ["negotiationreview", "negotiation/review", "contractsent",
                                              "commit"]),
        ("Closed Won", True, True, 1.0, ["won", "closedwon", "closed won", "win"]),
        ("Closed Lost", True, False, 0.0, ["lost", "closedlost", "closed lost", "disqualified"]),
    ]
    return [StageSetting(name=n, is_closed=c, is_won=w, probability=p, funnel_step=i, aliases=a)
            for i, (n, c, w, p, a) in enumerate(rows)]


class Settings(BaseModel):
    """The workspace-level settings record."""

    stages: list[StageSetting] = Field(default_factory=default_stages)
    slas: SLAs = Field(default_factory=SLAs)
    fiscal_year_start_month: int = Field(1, ge=1, le=12)
    currency: str = "USD"
    gross_margin: float = Field(0.80, gt=0, le=1)
    date_order: Literal["month_first", "day_first"] = "month_first"
    stall_days: int = 30

    def open_stages(self) -> list[StageSetting]:
        """Stages that are not closed, in funnel order."""
        return [s for s in sorted(self.stages, key=lambda s: s.funnel_step) if not s.is_closed]
