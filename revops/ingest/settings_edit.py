"""Editing the workspace settings from the Data page: stage table, unknown stages, SLAs and the rest."""
from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import ValidationError

from revops.errors import UserError
from revops.schema import Settings, StageSetting

NEW_STAGE = "__new_open_stage__"
STAGE_COLUMNS = ["name", "funnel_step", "is_closed", "is_won", "probability", "aliases"]


def stage_rows(settings: Settings) -> pl.DataFrame:
    """The stages as an editable table, in funnel order (aliases comma-separated)."""
    stages = sorted(settings.stages, key=lambda s: s.funnel_step)
    return pl.DataFrame({
        "name": [s.name for s in stages], "funnel_step": [s.funnel_step for s in stages],
        "is_closed": [s.is_closed for s in stages], "is_won": [s.is_won for s in stages],
        "probability": [s.probability for s in stages], "aliases": [", ".join(s.aliases) for s in stages],
    }, schema={"name": pl.String, "funnel_step": pl.Int64, "is_closed": pl.Boolean, "is_won": pl.Boolean,
               "probability": pl.Float64, "aliases": pl.String})


def _sentence(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid value')}" if where else str(first.get("msg", "invalid value"))


def apply_editor_changes(rows: list[dict[str, Any]], changes: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rows after a table editor's changes: edited_rows {position: {column: value}}, added_rows, deleted_rows."""
    changes = changes or {}
    out = [dict(r) for r in rows]
    for pos, edits in (changes.get("edited_rows") or {}).items():
        if 0 <= int(pos) < len(out):
            out[int(pos)].update(edits)
    deleted = {int(p) for p in changes.get("deleted_rows") or []}
    out = [r for i, r in enumerate(out) if i not in deleted]
    out += [dict(r) for r in changes.get("added_rows") or []]
    return out


def stages_from_rows(settings: Settings, rows: list[dict[str, Any]]) -> Settings:
    """Settings with the stages of an edited table; a won stage is closed; names must be unique."""
    stages: list[StageSetting] = []
    seen: set[str] = set()
    for row in rows:
        name = str(row.get("name") or "").strip()
        if not name:
            continue  # an emptied row of the editor is a deleted stage
        if name.lower() in seen:
            raise UserError(f"The stage “{name}” is listed twice; give each stage one row.")
        seen.add(name.lower())
        won = bool(row.get("is_won"))
        prob = row.get("probability")
        prob = 1.0 if won and prob is None else (0.0 if prob is None else float(prob))
        if prob > 1:
            prob = prob / 100  # typed as a percentage
        aliases = [a.strip() for a in str(row.get("aliases") or "").split(",") if a.strip()]
        try:
            stages.append(StageSetting(name=name, is_closed=bool(row.get("is_closed")) or won, is_won=won,
                                       probability=prob, funnel_step=int(row.get("funnel_step") or 0),
                                       aliases=aliases))
        except ValidationError as exc:
            raise UserError(f"The stage “{name}” is not valid ({_sentence(exc)}).") from None
    if not stages:
        raise UserError("Keep at least one stage.")
    if not any(s.is_won for s in stages):
        raise UserError("Mark one stage as won, so that won deals can be counted.")
    return settings.model_copy(update={"stages": stages})


def place_stages(settings: Settings, placements: dict[str, str]) -> Settings:
    """Place stage names found in the data: as another name of an existing stage, or as a new open stage."""
    stages = [s.model_copy(deep=True) for s in settings.stages]
    by_name = {s.name: s for s in stages}
    open_steps = [s.funnel_step for s in stages if not s.is_closed]
    next_step = (max(open_steps) + 1) if open_steps else 0
    for found, target in placements.items():
        if not target:
            continue
        if target == NEW_STAGE:
            # A new open stage goes after the last open one; closed stages move down one step.
            for s in stages:
                if s.is_closed and s.funnel_step >= next_step:
                    s.funnel_step += 1
            stages.append(StageSetting(name=found, funnel_step=next_step, probability=0.1))
            next_step += 1
        elif target in by_name:
            by_name[target].aliases.append(found)
        else:
            raise UserError(f"There is no stage “{target}” to place “{found}” in.")
    return settings.model_copy(update={"stages": stages})


def with_general(settings: Settings, **fields: Any) -> Settings:
    """Settings with SLA, fiscal, currency, margin, date-order and stall fields changed, validated."""
    slas = {k[4:]: v for k, v in fields.items() if k.startswith("sla_")}
    rest = {k: v for k, v in fields.items() if not k.startswith("sla_")}
    if "currency" in rest:
        rest["currency"] = str(rest["currency"]).strip().upper()
        if len(rest["currency"]) != 3 or not rest["currency"].isalpha():
            raise UserError("The currency must be a three-letter code such as USD or EUR.")
    data = settings.model_dump()
    data["slas"].update(slas)
    data.update(rest)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"That setting is not valid ({_sentence(exc)}).") from None
