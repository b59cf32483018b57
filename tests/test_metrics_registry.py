"""Every registered metric is documented: ids, tiers and units match METRICS.md, definitions are written out."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from revops.metrics import BY_ID, REGISTRY, TIERS, scalar_metrics

METRICS_MD = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "METRICS.md"
TIER_HEADINGS = {"North Star tier": "north_star", "Operational tier": "operational",
                 "Diagnostic tier": "diagnostic", "Leading tier": "leading"}
UNITS = {"money", "ratio", "months", "days", "minutes", "money/day", "score", "count", "table"}


def documented() -> dict[str, tuple[str, str]]:
    """id -> (tier, unit) from the four tier tables of METRICS.md."""
    out: dict[str, tuple[str, str]] = {}
    tier = None
    for line in METRICS_MD.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            tier = TIER_HEADINGS.get(line[3:].strip())
            continue
        row = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|\s*([^|]+?)\s*\|", line)
        if tier and row:
            out[row.group(1)] = (tier, row.group(2))
    return out


def test_metrics_md_lists_the_four_tiers():
    """The parser finds every tier table (so the comparisons below compare something)."""
    tiers = {tier for tier, _ in documented().values()}
    assert tiers == set(TIERS)
    assert len(documented()) >= 30


def test_registered_scalar_ids_equal_the_documented_ones():
    """The scalar metrics registered are exactly the non-table ids of the four tier tables."""
    doc = {mid for mid, (_, unit) in documented().items() if unit != "table"}
    assert {m.id for m in scalar_metrics()} == doc


def test_registered_table_metrics_equal_the_documented_ones():
    """Table metrics (stage_conversion) are registered with kind table."""
    doc = {mid for mid, (_, unit) in documented().items() if unit == "table"}
    assert {m.id for m in REGISTRY if m.kind == "table"} == doc


@pytest.mark.parametrize("metric_id", sorted(documented()))
def test_each_metric_has_the_documented_tier_and_unit(metric_id):
    """Tier and unit as METRICS.md declares them."""
    tier, unit = documented()[metric_id]
    m = BY_ID[metric_id]
    assert (m.tier, m.unit) == (tier, unit)


@pytest.mark.parametrize("metric", REGISTRY, ids=lambda m: m.id)
def test_each_metric_has_a_label_a_known_unit_and_a_full_definition(metric):
    """A label, a known tier and unit, and a definition of at least one sentence."""
    assert metric.label.strip()
    assert metric.tier in TIERS
    assert metric.unit in UNITS
    assert len(metric.definition) >= 60 and metric.definition.rstrip().endswith(".")


def test_direction_of_cost_and_delay_metrics_is_lower_is_better():
    """Payback, cycle, response time, time to value and ARR at risk improve when they fall."""
    lower = {"cac_payback_months", "sales_cycle_days", "lead_response_minutes", "time_to_value_days", "at_risk_arr"}
    assert {m.id for m in REGISTRY if not m.higher_is_better} == lower
