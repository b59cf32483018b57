"""Settings edits from the Data page, and the generated data dictionary."""
from __future__ import annotations

import pytest

from revops.errors import UserError
from revops.ingest import dictionary as dd
from revops.ingest import settings_edit as se
from revops.metrics import REGISTRY
from revops.schema import TABLES, Settings, column_names
from revops.stages import state_flags


def test_stage_table_round_trips():
    """The editable stage table turns back into the same stages."""
    s = Settings()
    back = se.stages_from_rows(s, se.stage_rows(s).to_dicts())
    assert [x.model_dump() for x in back.stages] == [
        x.model_dump() for x in sorted(s.stages, key=lambda x: x.funnel_step)]


def test_editor_changes_apply_edits_deletions_and_additions():
    """edited_rows, deleted_rows and added_rows of the table editor are applied in that order."""
    rows = [{"name": "A"}, {"name": "B"}, {"name": "C"}]
    out = se.apply_editor_changes(rows, {"edited_rows": {1: {"name": "B2"}}, "deleted_rows": [0],
                                         "added_rows": [{"name": "D"}]})
    assert [r["name"] for r in out] == ["B2", "C", "D"]


def test_a_won_stage_is_closed_and_percent_probabilities_become_fractions():
    """Won implies closed; a probability typed as 40 means 0.4."""
    s = se.stages_from_rows(Settings(), [{"name": "Open", "probability": 40, "funnel_step": 0},
                                         {"name": "Signed", "is_won": True, "funnel_step": 1}])
    assert [(x.name, x.is_closed, x.is_won, x.probability) for x in s.stages] == [
        ("Open", False, False, 0.4), ("Signed", True, True, 1.0)]


@pytest.mark.parametrize("rows, message", [
    ([{"name": "A", "is_won": True}, {"name": "a"}], "twice"),
    ([{"name": "A"}], "won"),
    ([{"name": ""}], "at least one"),
])
def test_invalid_stage_tables_are_refused_with_a_sentence(rows, message):
    """Duplicate names, no won stage, no stage at all: refused."""
    with pytest.raises(UserError, match=message):
        se.stages_from_rows(Settings(), rows)


def test_placing_unknown_stages():
    """'Demo done' as another name of Needs Analysis, 'Legal' as a new open stage before the closed ones."""
    s = se.place_stages(Settings(), {"Demo done": "Needs Analysis", "Legal": se.NEW_STAGE, "Ignored": ""})
    flags = state_flags(__import__("polars").Series(["Demo done", "Legal", "Closed Won"]), s)
    assert flags.rows() == [(False, False), (False, False), (True, True)]
    steps = {x.name: x.funnel_step for x in s.stages}
    # open stages 0-4, so Legal is step 5 and the closed stages move down one: Won 5 → 6, Lost 6 → 7
    assert steps["Legal"] == 5 and steps["Closed Won"] == 6 and steps["Closed Lost"] == 7
    assert "Demo done" in next(x for x in s.stages if x.name == "Needs Analysis").aliases


def test_general_settings_are_validated():
    """SLAs and the rest change; a bad currency or margin is refused with a sentence."""
    s = se.with_general(Settings(), sla_kickoff_hours=24.0, currency="eur", date_order="day_first")
    assert (s.slas.kickoff_hours, s.currency, s.date_order) == (24.0, "EUR", "day_first")
    with pytest.raises(UserError, match="three-letter"):
        se.with_general(Settings(), currency="Euro")
    with pytest.raises(UserError, match="gross_margin"):
        se.with_general(Settings(), gross_margin=1.5)


def test_dictionary_lists_every_canonical_column_and_metric():
    """Every column of every table and every registered metric is documented."""
    d = dd.data_dictionary()
    for table in TABLES:
        assert d.filter(d["table"] == table)["column"].to_list() == column_names(table)
    assert d["meaning"].str.len_chars().min() > 0
    m = dd.metric_dictionary()
    assert m["id"].to_list() == [x.id for x in REGISTRY]
    assert m["definition"].str.len_chars().min() > 0
