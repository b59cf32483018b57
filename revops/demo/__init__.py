"""The deterministic demo company: every canonical table plus weekly snapshots, at any scale."""
from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import polars as pl

from revops import store
from revops.demo.accounts import accounts_frame, first_seen, make_accounts, make_team
from revops.demo.clock import Clock, rng_for
from revops.demo.customers import (customer_facts, lifecycle_frame, subscription_rows, subscriptions_frame,
                                   usage_frame)
from revops.demo.deals import make_deals, opportunities_frame, stage_history_frame
from revops.demo.leads import leads_frame, make_leads, touches_frame
from revops.demo.plan import spend_frame, targets_frame
from revops.demo.snapshots import snapshot_dates, snapshots_frame
from revops.errors import UserError
from revops.schema import TABLES

MIN_SCALE = 50
ACCOUNTS_PER_DEAL = 0.2
LEADS_PER_DEAL = 2


def generate(seed: int = 7, scale: int = 5000,
             today: dt.date | None = None) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """The demo company's canonical tables and its weekly opportunity snapshots (nothing written)."""
    if scale < MIN_SCALE:
        raise UserError(f"The demo needs at least {MIN_SCALE} opportunities (--scale {scale} was given).")
    clock = Clock(today or dt.date.today())
    team = make_team(rng_for(seed, 1), scale)
    accounts = make_accounts(rng_for(seed, 2), max(int(scale * ACCOUNTS_PER_DEAL), 40), team)
    deals = make_deals(rng_for(seed, 3), scale, accounts, team, clock)
    leads = make_leads(rng_for(seed, 4), LEADS_PER_DEAL * scale, deals, accounts, team, clock)
    customers = customer_facts(rng_for(seed, 5), deals, accounts, clock)
    subs = subscription_rows(rng_for(seed, 6), deals, accounts, customers, clock)
    created = first_seen(rng_for(seed, 12), accounts.n,
                         [(deals.draws.account, deals.draws.created), (leads.account, leads.created)], clock)
    made: dict[str, pl.DataFrame] = {
        "accounts": accounts_frame(accounts, team, created, clock),
        "opportunities": opportunities_frame(deals, accounts, team, clock),
        "stage_history": stage_history_frame(deals, clock),
        "spend": spend_frame(rng_for(seed, 10), deals, clock),
        "targets": targets_frame(rng_for(seed, 11), deals, clock),
    }
    del deals  # its (deals x slots) matrices are the largest thing held at scale
    made["leads"] = leads_frame(leads, team, clock)
    made["touches"] = touches_frame(rng_for(seed, 7), leads, clock)
    made["subscriptions"] = subscriptions_frame(subs, clock)
    made["lifecycle"] = lifecycle_frame(rng_for(seed, 8), accounts, customers, clock)
    made["usage"] = usage_frame(rng_for(seed, 9), subs, accounts, customers, clock)
    snapshots = snapshots_frame(made["opportunities"], made["stage_history"], snapshot_dates(clock.today))
    tables = {name: made[name] for name in TABLES}
    return tables, snapshots


def build_demo(db: str | Path, seed: int = 7, scale: int = 5000, today: dt.date | None = None) -> dict[str, int]:
    """Write the demo company into the DuckDB file (replacing its tables) in one transaction; row counts."""
    tables, snapshots = generate(seed, scale, today)
    with store.connect(db) as con:
        store.replace_tables(con, tables, snapshots=snapshots, meta={"demo": "1"})
    counts = {name: frame.height for name, frame in tables.items()}
    counts["_opportunity_snapshots"] = snapshots.height
    return counts


def cli_demo(args: argparse.Namespace) -> int:
    """python -m revops demo: build the company, print the row counts and the time it took."""
    started = time.perf_counter()
    db = store.resolve_db(args.db)
    counts = build_demo(db, seed=args.seed, scale=args.scale)
    elapsed = time.perf_counter() - started
    width = max(len(name) for name in counts)
    for name, rows in counts.items():
        print(f"{name:<{width}}  {rows:>12,}")
    print(f"demo company (seed {args.seed}, {args.scale:,} opportunities) written to {db} in {elapsed:.1f} s")
    return 0


__all__ = ["build_demo", "cli_demo", "generate"]
