"""The sidebar filters: which rows of each table a segment, region, owner or source filter keeps."""
from __future__ import annotations

import datetime as dt

import polars as pl

from revops.frames import Filters, apply_filters, frames_from_tables

D = dt.date


def _frames():
    accounts = pl.DataFrame({"account_id": ["a", "b", "c"], "segment": ["SMB", "Enterprise", "SMB"],
                             "region": ["EMEA", "EMEA", "APAC"], "owner": ["Ana", "Bo", "Ana"]})
    opps = pl.DataFrame({
        "opportunity_id": ["o1", "o2", "o3", "o4", "o5"],
        "account_id": ["a", "b", "c", "b", None],
        # o3 has no segment of its own: its account's (SMB) counts; o5 has neither
        "segment": ["SMB", "Enterprise", None, "SMB", None],
        "owner": ["Ana", "Bo", "Ana", "Bo", "Cy"],
        "source": ["web", "event", "web", "web", "event"],
        "stage": ["Closed Won"] * 5, "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
        "close_date": [D(2024, 1, 1)] * 5,
    })
    subs = pl.DataFrame({"subscription_id": ["s1", "s2", "s3"], "account_id": ["a", "b", "c"],
                         "start_date": [D(2023, 1, 1)] * 3, "end_date": [None, None, None],
                         "mrr": [10.0, 20.0, 30.0]})
    return frames_from_tables({"accounts": accounts, "opportunities": opps, "subscriptions": subs})


def test_segment_uses_the_deals_own_segment_else_its_accounts():
    """SMB: o1 (own SMB), o3 (no segment, account c is SMB), o4 (own SMB though account b is Enterprise)."""
    view = apply_filters(_frames(), Filters(segment=("SMB",)))
    assert view.opportunities["opportunity_id"].to_list() == ["o1", "o3", "o4"]


def test_segment_of_a_deal_without_segment_or_account_matches_nothing():
    """o5 has neither a segment nor an account: no segment filter keeps it."""
    view = apply_filters(_frames(), Filters(segment=("SMB", "Enterprise")))
    assert view.opportunities["opportunity_id"].to_list() == ["o1", "o2", "o3", "o4"]


def test_region_follows_the_account_and_account_tables_follow_the_filter():
    """EMEA is accounts a and b: deals o1, o2, o4; their subscriptions s1, s2."""
    view = apply_filters(_frames(), Filters(region=("EMEA",)))
    assert view.opportunities["opportunity_id"].to_list() == ["o1", "o2", "o4"]
    assert view.subscriptions["subscription_id"].to_list() == ["s1", "s2"]


def test_filters_combine_and_source_applies_to_deals():
    """SMB and web: o1, o3, o4 are SMB, all three from web; add owner Ana: o1, o3."""
    assert apply_filters(_frames(), Filters(segment=("SMB",), source=("web",))).opportunities[
        "opportunity_id"].to_list() == ["o1", "o3", "o4"]
    assert apply_filters(_frames(), Filters(segment=("SMB",), source=("web",), owner=("Ana",))).opportunities[
        "opportunity_id"].to_list() == ["o1", "o3"]
