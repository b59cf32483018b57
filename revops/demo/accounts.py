"""Demo owners and accounts: segments, regions, industries, headcount, account owners."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revops.demo.clock import Clock

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
SEGMENT_MIX = np.array([0.60, 0.28, 0.12])
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
REGION_MIX = np.array([0.46, 0.30, 0.15, 0.09])
INDUSTRIES = ("Software", "Financial Services", "Healthcare", "Retail", "Manufacturing",
              "Media", "Education", "Logistics", "Professional Services", "Energy")
INDUSTRY_MIX = np.array([0.20, 0.13, 0.11, 0.10, 0.10, 0.07, 0.07, 0.08, 0.09, 0.05])
BUSINESS_UNITS = ("Velocity", "Commercial", "Strategic")  # the sales team that covers each segment
EMPLOYEES_MEDIAN = np.array([55.0, 650.0, 7000.0])
OWNER_NAMES = (
    "Avery Chen", "Jordan Patel", "Sam Rivera", "Morgan Lee", "Taylor Brooks", "Riley Novak",
    "Casey Kim", "Jamie Ortiz", "Drew Walsh", "Quinn Adler", "Harper Singh", "Rowan Fischer",
    "Emerson Diaz", "Parker Nguyen", "Sage Moreau", "Reese Kowalski", "Kai Tanaka", "Logan Murphy",
    "Blake Osei", "Finley Rossi",
)
NAME_FIRST = ("Acme", "Blue", "Bright", "Cedar", "Clear", "Cobalt", "Crest", "Delta", "Echo", "Ember",
              "Falcon", "Granite", "Harbor", "Helix", "Iron", "Juniper", "Keystone", "Lumen", "Maple",
              "Meridian", "Nimbus", "North", "Nova", "Oak", "Orbit", "Pine", "Pioneer", "Quartz", "Redwood",
              "Ridge", "Silver", "Summit", "Terra", "Tidal", "Vertex", "Vista", "Willow", "Zenith",
              "Atlas", "Beacon")
NAME_SECOND = ("Analytics", "Bio", "Capital", "Cloud", "Systems", "Logistics", "Foods", "Health", "Labs",
               "Media", "Motors", "Networks", "Energy", "Retail", "Robotics", "Security", "Software",
               "Studios", "Supply", "Technologies", "Travel", "Works", "Dynamics", "Partners", "Learning",
               "Insurance", "Pharma", "Logic", "Apparel", "Freight")
NAME_SUFFIX = ("Inc", "LLC", "Ltd", "GmbH", "Group", "Co", "SA", "Corp")
# Owners specialise by segment; the share of the team covering each one.
OWNER_SEGMENT_SHARE = np.array([0.45, 0.32, 0.23])


@dataclass(frozen=True)
class Team:
    """The sales team: owner names, the segment each covers and a skill multiplier on win rates."""

    names: tuple[str, ...]
    segment: np.ndarray
    skill: np.ndarray


@dataclass(frozen=True)
class Accounts:
    """Drawn account attributes as arrays (index = account number)."""

    segment: np.ndarray
    region: np.ndarray
    industry: np.ndarray
    owner: np.ndarray
    employees: np.ndarray
    name_parts: np.ndarray  # (n, 3) indices into the name word lists

    @property
    def n(self) -> int:
        """Number of accounts."""
        return int(self.segment.shape[0])


def team_size(scale: int) -> int:
    """8 owners for small books up to 20 for a million deals."""
    return int(np.clip(round(8 + 4 * np.log10(max(scale, 1) / 1000)), 8, len(OWNER_NAMES)))


def make_team(rng: np.random.Generator, scale: int) -> Team:
    """Owners, each covering one segment, with a spread of skill (the leaderboard has a story)."""
    n = team_size(scale)
    counts = np.maximum(1, np.floor(OWNER_SEGMENT_SHARE * n)).astype(int)
    counts[0] += n - counts.sum()
    segment = np.repeat(np.arange(3), counts)
    skill = np.clip(rng.normal(1.0, 0.16, n), 0.7, 1.35)
    # Each segment team averages 1, so the segment win rates stay as designed whatever the seed.
    skill = skill / (np.bincount(segment, weights=skill, minlength=3) / np.bincount(segment, minlength=3))[segment]
    return Team(OWNER_NAMES[:n], segment, skill)


def make_accounts(rng: np.random.Generator, n: int, team: Team) -> Accounts:
    """Account attributes: segment mix, region, industry, headcount, owner within the segment team."""
    segment = rng.choice(3, size=n, p=SEGMENT_MIX)
    region = rng.choice(len(REGIONS), size=n, p=REGION_MIX)
    industry = rng.choice(len(INDUSTRIES), size=n, p=INDUSTRY_MIX)
    employees = np.maximum(2, np.round(EMPLOYEES_MEDIAN[segment] * rng.lognormal(0.0, 0.55, n))).astype(np.int64)
    # Owner: a uniformly drawn member of the team covering the account's segment.
    first = np.searchsorted(team.segment, np.arange(3))
    size = np.bincount(team.segment, minlength=3)
    owner = first[segment] + np.floor(rng.random(n) * size[segment]).astype(np.int64)
    parts = np.stack([rng.integers(0, len(NAME_FIRST), n), rng.integers(0, len(NAME_SECOND), n),
                      rng.integers(0, len(NAME_SUFFIX), n)], axis=1)
    return Accounts(segment, region, industry, owner, employees, parts)


def id_expr(prefix: str, index: pl.Expr, width: int) -> pl.Expr:
    """Stable key PREFIX-000001… of a 0-based row number."""
    return pl.concat_str(pl.lit(prefix), (index + 1).cast(pl.String).str.zfill(width))


def ids(prefix: str, n: int, width: int) -> pl.Series:
    """Stable keys of n rows."""
    return pl.select(id_expr(prefix, pl.int_range(0, n, dtype=pl.Int64), width)).to_series()


def label(col: str, words: tuple[str, ...]) -> pl.Expr:
    """The word of each code in an integer column (vectorised lookup)."""
    return pl.col(col).replace_strict(list(range(len(words))), list(words), default=None, return_dtype=pl.String)


def pick(words: tuple[str, ...], index: np.ndarray) -> pl.Series:
    """The word of each index (vectorised lookup)."""
    return pl.Series(words, dtype=pl.String).gather(pl.Series(index, dtype=pl.Int64))


def account_ids(n: int) -> pl.Series:
    """Keys of n accounts."""
    return ids("ACC-", n, 6)


def account_names(acc: Accounts) -> pl.Series:
    """Company names made from three word lists."""
    frame = pl.DataFrame({
        "a": pick(NAME_FIRST, acc.name_parts[:, 0]),
        "b": pick(NAME_SECOND, acc.name_parts[:, 1]),
        "c": pick(NAME_SUFFIX, acc.name_parts[:, 2]),
    })
    return frame.select(pl.concat_str("a", "b", "c", separator=" ")).to_series()


def first_seen(rng: np.random.Generator, n: int, touched: list[tuple[np.ndarray, np.ndarray]],
               clock: Clock) -> np.ndarray:
    """Account creation day: a little before its first lead or deal; a random day for untouched ones."""
    first = np.full(n, np.inf)
    for account, when in touched:
        known = account >= 0
        np.minimum.at(first, account[known], when[known])
    lead_time = rng.uniform(0.0, 60.0, n)
    untouched = rng.uniform(-200.0, clock.horizon - 1.0, n)
    return np.floor(np.where(np.isfinite(first), first - lead_time, untouched))


def accounts_frame(acc: Accounts, team: Team, created_days: np.ndarray, clock: Clock) -> pl.DataFrame:
    """The accounts table."""
    return pl.DataFrame({
        "account_id": account_ids(acc.n),
        "account_name": account_names(acc),
        "segment": pick(SEGMENTS, acc.segment),
        "industry": pick(INDUSTRIES, acc.industry),
        "region": pick(REGIONS, acc.region),
        "owner": pick(team.names, acc.owner),
        "business_unit": pick(BUSINESS_UNITS, acc.segment),
        "employees": acc.employees,
        "created_day": created_days,
    }).with_columns(clock.date_expr("created_day").alias("created_at")).drop("created_day")
