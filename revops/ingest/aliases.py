"""Header aliases: CRM export labels and API names -> canonical columns; table guessing."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from revops.schema import MODELS, TABLES, column_names, columns

# Source columns that feed a canonical one indirectly: an annual amount (mrr = arr / 12)
# and the currency of the amounts (checked against the workspace currency).
ARR = "arr"
CURRENCY = "currency"
PSEUDO: dict[str, tuple[str, ...]] = {
    ARR: ("subscriptions",),
    CURRENCY: TABLES,
}

# Generic labels that mean "the key of the table being loaded" or "its creation date".
GENERIC_KEY = ("Record ID", "Id", "ID", "Record Id")
GENERIC_CREATED = ("Create Date", "Created Date", "Created", "CreatedDate", "Created On", "Created At")

_COMMON: dict[str, tuple[str, ...]] = {
    "account_id": ("Account ID", "AccountId", "Account Id", "Company ID", "Associated Company ID",
                   "Associated Company IDs", "Associated Company IDs (Primary)", "customer_id", "Customer ID"),
    "owner": ("Owner", "OwnerId", "Owner Name", "Owner ID"),
    "segment": ("Segment", "Customer Segment", "Market Segment"),
    "source": ("Source", "Lead Source", "LeadSource", "Original Source"),
    "amount": ("Amount",),
    "close_date": ("Close Date", "CloseDate", "closedate"),
    "forecast_category": ("Forecast Category", "ForecastCategoryName", "ForecastCategory", "hs_forecast_category"),
    "opportunity_id": ("Opportunity ID", "OpportunityId", "Opportunity Id", "Deal ID", "deal_id", "opp_id"),
    "lead_id": ("Lead ID", "LeadId", "Lead Id"),
    "stage": ("Stage", "StageName", "Stage Name"),
    "product": ("Product", "Product Name"),
    "plan": ("Plan", "Plan Name"),
    "channel": ("Channel",),
    "category": ("Category",),
}

# Per table: canonical column -> aliases, best first. They rank after the column's own name and
# the common aliases, so "Account Name" stands in for "Account ID" only when the file has none.
_TABLE: dict[str, dict[str, tuple[str, ...]]] = {
    "accounts": {
        "account_id": ("account",),
        "account_name": ("Account Name", "Name", "Company Name", "Company name", "Company"),
        "industry": ("Industry", "sector"),
        "region": ("Region", "Sales Region", "Territory"),
        "owner": ("Account Owner", "Company owner"),
        "business_unit": ("Business Unit", "BU", "Division"),
        "employees": ("Employees", "NumberOfEmployees", "Number of Employees", "Employee Count", "Headcount"),
    },
    "leads": {
        "lead_id": ("Contact ID", "Prospect ID"),
        "account_id": ("Company", "Company Name", "Account Name", "ConvertedAccountId", "Converted Account ID"),
        "owner": ("Lead Owner", "Contact owner"),
        "first_response_at": ("First Response", "First Response Date", "First Response Time",
                              "first_response_date", "First Touch", "First Contact Date"),
        "mql_at": ("MQL Date", "mql_date", "Became a Marketing Qualified Lead Date", "MQL"),
        "sql_at": ("SQL Date", "sql_date", "Became a Sales Qualified Lead Date", "SQL"),
        "pql_at": ("PQL Date", "pql_date", "PQL"),
        "converted_at": ("Converted Date", "ConvertedDate", "Conversion Date", "converted_date"),
        "opportunity_id": ("Converted Opportunity ID", "ConvertedOpportunityId"),
        "status": ("Lead Status", "Status"),
    },
    "opportunities": {
        "stage": ("Deal Stage", "deal_stage", "dealstage", "Opportunity Stage"),
        "account_id": ("account", "Account Name", "Company", "Associated Company", "Account"),
        "opportunity_name": ("Opportunity Name", "Deal Name", "dealname", "deal_name", "Name", "Opportunity"),
        "owner": ("Opportunity Owner", "Deal owner", "Deal Owner", "hubspot_owner_id", "sales_agent",
                  "Sales Agent", "Sales Rep", "Rep", "Account Executive"),
        "source": ("Deal source", "Deal Source", "Opportunity Source"),
        "lost_reason": ("Loss Reason", "Lost Reason", "Closed Lost Reason", "closed_lost_reason",
                        "Reason Lost", "Loss_Reason__c"),
        "type": ("Type", "Opportunity Type", "Deal Type", "dealtype"),
        "amount": ("close_value", "Deal Amount", "Value", "Deal Value", "Amount (converted)",
                   "Amount in company currency", "amount_in_home_currency"),
        "created_at": ("engage_date", "Engage Date"),
        "close_date": ("Expected Close Date",),
        "is_closed": ("IsClosed", "Is Closed", "Closed"),
        "is_won": ("IsWon", "Is Won", "Won"),
        "probability": ("Probability", "Probability (%)", "Deal probability", "hs_deal_stage_probability"),
    },
    "stage_history": {
        "stage": ("To Stage", "New Stage", "Deal Stage", "deal_stage"),
        "changed_at": ("Changed At", "Change Date", "Stage Change Date", "Date Entered", "Edit Date",
                       "Last Modified", "CreatedDate", "Created Date", "Date"),
    },
    "subscriptions": {
        "subscription_id": ("Subscription ID", "SubscriptionId", "sub_id"),
        "account_id": ("Customer", "Account", "account"),
        "start_date": ("Start Date", "Subscription Start Date", "Start", "start"),
        "end_date": ("End Date", "Subscription End Date", "End", "end"),
        "mrr": ("MRR", "monthly_amount", "Monthly Amount", "Monthly Recurring Revenue", "mrr_amount"),
        ARR: ("ARR", "Annual Recurring Revenue", "annual_amount", "Annual Amount"),
    },
    "lifecycle": {
        "account_id": ("Account", "Customer", "account"),
        "won_at": ("Won Date", "Signed Date", "Contract Signed", "Contract Signed Date", "Signature Date"),
        "kickoff_at": ("Kickoff Date", "Kickoff", "Kick-off Date"),
        "first_value_at": ("First Value Date", "First Value", "Go Live Date", "Go-Live Date", "Go Live"),
        "renewal_date": ("Renewal Date", "Contract End Date"),
        "renewal_outreach_at": ("Renewal Outreach Date", "Renewal Outreach", "Renewal Outreach At"),
        "health_score": ("Health Score", "Health"),
        "csat": ("CSAT", "CSAT Score", "Satisfaction", "Customer Satisfaction"),
    },
    "usage": {
        "account_id": ("Account", "Customer", "account"),
        "date": ("Date", "Day", "Week", "usage_date", "Usage Date"),
        "feature": ("Feature", "Feature Name"),
        "active_users": ("Active Users", "Users"),
        "events": ("Events", "Event Count"),
    },
    "spend": {
        "month": ("Month", "Date", "Period"),
        "amount": ("Spend", "Cost"),
    },
    "touches": {
        "touched_at": ("Touched At", "Touch Date", "Activity Date", "Timestamp", "Date"),
        "channel": ("Source", "Touch Channel"),
    },
    "targets": {
        "period_start": ("Period Start", "Start Date", "Start"),
        "period_end": ("Period End", "End Date", "End"),
        "target_amount": ("Target", "Quota", "Target Amount", "Plan Amount", "Amount"),
    },
}
_CURRENCY_ALIASES = ("Amount Currency", "Currency", "CurrencyIsoCode", "Opportunity Currency",
                     "Currency Code", "Deal Currency", "Currency ISO Code")


def normalize_header(name: str) -> str:
    """A header with case, spaces and punctuation removed and a trailing "(%)" dropped."""
    name = re.sub(r"\(\s*%\s*\)\s*$", "", name.strip())
    return re.sub(r"[^0-9a-z]", "", name.lower())


def targets(table: str) -> list[str]:
    """Canonical columns (and pseudo-columns such as arr/currency) a source column may map to."""
    return column_names(table) + [p for p, tables in PSEUDO.items() if table in tables]


def alias_table(table: str) -> dict[str, list[str]]:
    """Canonical column -> normalized aliases, best first, for one table."""
    model = MODELS[table]
    out: dict[str, list[str]] = {}
    for name in targets(table):
        spellings: list[str] = [name]
        spellings += _COMMON.get(name, ())
        spellings += _TABLE.get(table, {}).get(name, ())
        if name == CURRENCY:
            spellings += _CURRENCY_ALIASES
        if len(model.key) == 1 and name == model.key[0]:
            spellings += GENERIC_KEY
        if name == "created_at":
            spellings += GENERIC_CREATED
        seen: list[str] = []
        for s in spellings:
            n = normalize_header(s)
            if n and n not in seen:
                seen.append(n)
        out[name] = seen
    return out


@dataclass
class Match:
    """The automatic mapping of a file's headers onto one table."""

    table: str
    mapping: dict[str, str]                      # source header -> canonical column
    unmatched: list[str] = field(default_factory=list)   # kept aside in _extras
    ambiguous: dict[str, str] = field(default_factory=dict)  # source -> why it was not used
    missing_required: list[str] = field(default_factory=list)

    @property
    def required_matched(self) -> int:
        """How many required columns of the table the file carries."""
        req = [c.name for c in columns(self.table) if c.required]
        return sum(1 for r in req if r in self.mapping.values())


def match_headers(headers: list[str], table: str, manual: dict[str, str] | None = None) -> Match:
    """Map headers onto `table`: manual choices first, then exact alias matches, best alias first."""
    manual = dict(manual or {})
    allowed = set(targets(table))
    mapping: dict[str, str] = {}
    for src, dst in manual.items():
        if dst and dst in allowed and src in headers:
            mapping[src] = dst
    ignored = {src for src, dst in manual.items() if not dst}
    taken = set(mapping.values())
    norm = {h: normalize_header(h) for h in headers}
    ambiguous: dict[str, str] = {}
    for target, aliases in alias_table(table).items():
        if target in taken:
            continue
        for alias in aliases:
            hits = [h for h in headers if norm[h] == alias and h not in mapping and h not in ignored]
            if not hits:
                continue
            mapping[hits[0]] = target
            taken.add(target)
            for other in hits[1:]:
                ambiguous[other] = f"also matches {target}, already taken by “{hits[0]}”"
            break
    # A header that matched a lower-ranked alias of a column someone else took stays aside, with the reason.
    for h in headers:
        if h in mapping or h in ambiguous or h in ignored:
            continue
        for target, aliases in alias_table(table).items():
            if norm[h] in aliases and target in taken:
                owner = next(s for s, t in mapping.items() if t == target)
                ambiguous[h] = f"also matches {target}, already taken by “{owner}”"
                break
    unmatched = [h for h in headers if h not in mapping]
    have = set(mapping.values())
    missing = [c.name for c in columns(table) if c.required and c.name not in have]
    if table == "subscriptions" and "mrr" in missing and ARR in have:
        missing.remove("mrr")
    return Match(table=table, mapping=mapping, unmatched=unmatched, ambiguous=ambiguous, missing_required=missing)


def guess_table(headers: list[str]) -> str:
    """The table whose required columns the headers cover best (ties: more columns matched)."""
    scored = []
    for i, table in enumerate(TABLES):
        m = match_headers(headers, table)
        req = sum(1 for c in columns(table) if c.required)
        complete = not m.missing_required
        scored.append((complete, m.required_matched / req, len(m.mapping), m.required_matched, -i, table))
    return max(scored)[-1]
