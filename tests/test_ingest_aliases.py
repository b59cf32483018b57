"""Header aliases: exact matches after normalising, best alias first, never a partial guess."""
from __future__ import annotations

import pytest

from revops.ingest.aliases import guess_table, match_headers, normalize_header


def test_normalising_drops_case_spaces_punctuation_and_percent_suffix():
    """'Probability (%)' and 'probability' compare equal; so do 'Close Date' and 'close_date'."""
    assert normalize_header("Probability (%)") == normalize_header("probability")
    assert normalize_header("Close Date") == normalize_header("close_date") == "closedate"


def test_salesforce_report_labels():
    """Salesforce report labels map to the opportunity columns; Account Name stays aside when Account ID exists."""
    headers = ["Opportunity ID", "Opportunity Name", "Account ID", "Account Name", "Stage", "Amount",
               "Close Date", "Created Date", "Opportunity Owner", "Lead Source", "Type", "Forecast Category",
               "Probability (%)"]
    m = match_headers(headers, "opportunities")
    assert m.mapping == {
        "Opportunity ID": "opportunity_id", "Opportunity Name": "opportunity_name", "Account ID": "account_id",
        "Stage": "stage", "Amount": "amount", "Close Date": "close_date", "Created Date": "created_at",
        "Opportunity Owner": "owner", "Lead Source": "source", "Type": "type",
        "Forecast Category": "forecast_category", "Probability (%)": "probability"}
    assert m.unmatched == ["Account Name"]
    assert "account_id" in m.ambiguous["Account Name"]


def test_salesforce_api_names():
    """Id, AccountId, StageName, CloseDate, CreatedDate, IsClosed, IsWon, ForecastCategoryName, LeadSource, OwnerId."""
    headers = ["Id", "AccountId", "StageName", "CloseDate", "CreatedDate", "IsClosed", "IsWon",
               "ForecastCategoryName", "LeadSource", "OwnerId", "Amount", "Name"]
    m = match_headers(headers, "opportunities")
    assert m.mapping["Id"] == "opportunity_id"
    assert m.mapping["StageName"] == "stage"
    assert m.mapping["IsClosed"] == "is_closed" and m.mapping["IsWon"] == "is_won"
    assert m.mapping["OwnerId"] == "owner" and m.mapping["LeadSource"] == "source"
    assert not m.unmatched


def test_hubspot_labels():
    """Record ID, Deal Name, Deal Stage, Create Date, Deal owner, Deal Type; Pipeline has no canonical home."""
    headers = ["Record ID", "Deal Name", "Deal Stage", "Close Date", "Create Date", "Deal owner", "Pipeline",
               "Deal Type", "Forecast category", "Amount"]
    m = match_headers(headers, "opportunities")
    assert m.mapping["Record ID"] == "opportunity_id"
    assert m.mapping["Create Date"] == "created_at"
    assert m.mapping["Deal owner"] == "owner"
    assert m.unmatched == ["Pipeline"]


def test_plain_variants_of_the_maven_and_mrr_files():
    """deal_stage, engage_date, close_value, sales_agent, account; customer_id, monthly_amount."""
    m = match_headers(["opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date",
                       "close_date", "close_value"], "opportunities")
    assert m.mapping == {"opportunity_id": "opportunity_id", "sales_agent": "owner", "account": "account_id",
                         "deal_stage": "stage", "engage_date": "created_at", "close_date": "close_date",
                         "close_value": "amount"}
    assert m.unmatched == ["product"]
    s = match_headers(["subscription_id", "customer_id", "start_date", "end_date", "monthly_amount"],
                      "subscriptions")
    assert s.mapping["customer_id"] == "account_id" and s.mapping["monthly_amount"] == "mrr"


def test_generic_id_maps_to_the_key_of_the_table_loaded():
    """'Id' is the opportunity id in opportunities and the lead id in leads."""
    assert match_headers(["Id", "Stage"], "opportunities").mapping["Id"] == "opportunity_id"
    assert match_headers(["Id", "Created"], "leads").mapping == {"Id": "lead_id", "Created": "created_at"}


def test_no_partial_matches():
    """'Amount Due' or 'Stage Duration' are not amount or stage."""
    m = match_headers(["Amount Due", "Stage Duration", "Opportunity ID"], "opportunities")
    assert m.mapping == {"Opportunity ID": "opportunity_id"}
    assert m.missing_required == ["stage"]


def test_manual_mapping_wins_and_blank_keeps_a_column_aside():
    """--map Deal=opportunity_id maps a column no alias knows; mapping Amount to '' keeps it aside."""
    m = match_headers(["Deal", "Stage", "Amount"], "opportunities", {"Deal": "opportunity_id", "Amount": ""})
    assert m.mapping == {"Deal": "opportunity_id", "Stage": "stage"}
    assert m.unmatched == ["Amount"]


def test_arr_stands_in_for_mrr():
    """A subscriptions file with ARR instead of MRR is complete."""
    m = match_headers(["Subscription ID", "Customer ID", "Start Date", "ARR"], "subscriptions")
    assert m.mapping["ARR"] == "arr"
    assert m.missing_required == []


@pytest.mark.parametrize("headers, table", [
    (["opportunity_id", "sales_agent", "account", "deal_stage", "close_value"], "opportunities"),
    (["subscription_id", "customer_id", "start_date", "end_date", "monthly_amount"], "subscriptions"),
    (["Opportunity ID", "Stage", "Created Date", "Amount", "Close Date", "Opportunity Name"], "opportunities"),
    (["OpportunityId", "StageName", "CreatedDate", "Amount"], "stage_history"),
    (["Lead ID", "Created Date", "Lead Source", "Lead Status"], "leads"),
    (["account", "sector", "employees"], "accounts"),
    (["Month", "Spend", "Channel"], "spend"),
    (["account_id", "date", "feature", "active_users"], "usage"),
])
def test_table_is_guessed_from_required_columns(headers, table):
    """The table whose required columns the headers cover (ties: more columns matched)."""
    assert guess_table(headers) == table
