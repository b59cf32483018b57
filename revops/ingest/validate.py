"""Raw strings + a mapping -> typed canonical rows, and the rejected ones with line, column and reason."""
from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from revops.ingest import parse
from revops.ingest.aliases import ARR, CURRENCY
from revops.ingest.read import LINE, PROBLEM, RECORD, RawTable
from revops.schema import MODELS, ColumnSpec, Settings, columns
from revops.stages import state_flags, unknown_stages

REJECT_SCHEMA = {"line": pl.Int64, "column": pl.String, "problem": pl.String, "reason": pl.String}
_POLARS_TYPES: dict[str, pl.DataType] = {
    "id": pl.String(), "text": pl.String(), "date": pl.Date(), "ts": pl.Datetime("us"),
    "money": pl.Float64(), "int": pl.Int64(), "float": pl.Float64(), "bool": pl.Boolean(),
}
_SHOWN_VALUE = 60  # characters of a bad value quoted in its reason


@dataclass
class Checked:
    """Accepted rows (canonical columns + line), rejects in long form, extras of accepted rows, notices."""

    frame: pl.DataFrame
    rejects: pl.DataFrame
    extras: pl.DataFrame
    notices: list[str] = field(default_factory=list)


def polars_type(spec: ColumnSpec) -> pl.DataType:
    """The Polars type a canonical column is parsed to."""
    return _POLARS_TYPES[spec.kind]


def _keeps_categories(spec: ColumnSpec) -> bool:
    """Labels (text that is no id) stay categorical when the reader held them so: 4 bytes a row, not 16."""
    return spec.kind == "text" and not spec.name.endswith("_id")


def _source(spec: ColumnSpec, s: pl.Series) -> pl.Series:
    """A source column as its parser takes it: one chunk, and as plain text unless it stays categorical."""
    s = s.rechunk()
    return s.cast(pl.String) if s.dtype == pl.Categorical and not _keeps_categories(spec) else s


def _parse(spec: ColumnSpec, table: str, s: pl.Series, settings: Settings, comma: bool) -> parse.Parsed:
    """Parse one source column as the canonical column `spec`."""
    if spec.kind in ("id", "text"):
        if table in ("opportunities",) and spec.name == "type":
            return parse.deal_type(s)
        if spec.name == "forecast_category":
            return parse.forecast_category(s)
        if spec.kind == "id" or spec.name.endswith("_id"):
            return parse.salesforce_ids(s)
        return parse.text(s)
    if spec.kind == "money":
        return parse.money(s, comma, settings.currency)
    if spec.kind in ("date", "ts"):
        return parse.dates(s, settings.date_order, kind=spec.kind)
    if spec.kind == "int":
        return parse.integer(s, comma)
    if spec.kind == "bool":
        return parse.boolean(s)
    if spec.name == "probability":
        return parse.ratio(s, comma)
    if spec.name in ("csat", "health_score"):
        return parse.score(s, comma, rescale=spec.name == "csat")
    return parse.number(s, comma)


def _reasons(lines: pl.Series, mask: pl.Series, column: str, problem: str, reason: str,
             values: pl.Series | None = None, *, quote: bool = True) -> pl.DataFrame:
    """Long-form reject rows where mask is true; `{}` in reason is replaced by the row's value (quoted)."""
    mask = mask.fill_null(False)
    if not bool(mask.any()):
        return pl.DataFrame(schema=REJECT_SCHEMA)
    frame = pl.DataFrame({"line": lines.filter(mask)})
    if values is not None:
        v = values.filter(mask)
        short = pl.when(v.str.len_chars() > _SHOWN_VALUE).then(v.str.slice(0, _SHOWN_VALUE) + "…").otherwise(v)
        text = pl.format(reason.replace("{}", "“{}”") if quote else reason, short)
    else:
        text = pl.lit(reason)
    return frame.select("line", pl.lit(column).alias("column"), pl.lit(problem).alias("problem"),
                        text.cast(pl.String).alias("reason"))


def check(raw: RawTable, table: str, mapping: dict[str, str], settings: Settings) -> Checked:
    """Parse every mapped column, reject bad rows (line, column, reason), keep the last of duplicate keys.

    When the file can be read again (raw.reread), each source column is let go as soon as it is
    parsed, so the text and the typed values of a big file are never held whole side by side; the
    rejected rows' text is fetched again afterwards (RawTable.keep_rows).
    """
    # One chunk per column from here on: columns of different chunking would be realigned (copied whole)
    # by every later step that puts them side by side. Each source column is rechunked as it is parsed.
    lines = raw.frame[LINE].rechunk()
    height = raw.frame.height
    comma = raw.delimiter == ";"
    source_of = {dst: src for src, dst in mapping.items()}
    notices: list[str] = []
    rejects: list[pl.DataFrame] = []
    out: dict[str, pl.Series] = {}
    bad_of: dict[str, pl.Series] = {}

    def let_go(src: str) -> None:
        if raw.reread is not None:
            raw.frame = raw.frame.drop(src)

    for spec in columns(table):
        src = source_of.get(spec.name)
        if src is None:
            out[spec.name] = pl.repeat(None, height, dtype=polars_type(spec), eager=True).alias(spec.name)
            continue
        values = _source(spec, raw.frame[src])
        parsed = _parse(spec, table, values, settings, comma)
        typed = parsed.values if parsed.values.dtype == pl.Categorical else parsed.values.cast(polars_type(spec))
        out[spec.name] = typed.alias(spec.name)
        bad_of[spec.name] = parsed.bad
        if parsed.note:
            notices.append(f"{src}: {parsed.note}.")
        rejects.append(_reasons(lines, parsed.bad, src, f"not {parsed.expected}",
                                f"{{}} is not {parsed.expected}", values))
        del parsed, values, typed
        let_go(src)

    if ARR in source_of:  # an annual amount stands in for a missing monthly one
        src = source_of[ARR]
        text = raw.frame[src].cast(pl.String)
        annual = parse.money(text, comma, settings.currency)
        rejects.append(_reasons(lines, annual.bad, src, f"not {annual.expected}",
                                f"{{}} is not {annual.expected}", text))
        out["mrr"] = pl.select(pl.coalesce(out["mrr"], (annual.values / 12).round(2)).alias("mrr")).to_series()
        bad_of["mrr"] = annual.bad | bad_of["mrr"] if "mrr" in bad_of else annual.bad
        source_of.setdefault("mrr", src)
        let_go(src)

    for spec in columns(table):
        if spec.required:
            # Null after parsing and not a bad value: the cell was empty.
            empty = out[spec.name].is_null() & ~bad_of.get(spec.name, pl.repeat(False, height, eager=True))
            src = source_of.get(spec.name, spec.name)
            rejects.append(_reasons(lines, empty, src, "required value is empty",
                                    f"{src} is empty, and {spec.name} is required"))

    if CURRENCY in source_of:
        src = source_of[CURRENCY]
        code = raw.frame[src].cast(pl.String).str.to_uppercase()
        other = code.is_not_null() & (code != settings.currency.upper())
        rejects.append(_reasons(
            lines, other, src, "currency differs from the workspace's",
            f"the amount is in {{}}, not the workspace currency {settings.currency} (no exchange rates are loaded)",
            code, quote=False))
        if bool(other.any()):
            bad_lines = lines.filter(other).head(5).to_list()
            notices.append(f"{int(other.sum())} row(s) are in another currency than {settings.currency} "
                           f"(lines {', '.join(map(str, bad_lines))}{'…' if int(other.sum()) > 5 else ''}).")
        let_go(src)

    if table == "touches":  # a touch must say whom it touched
        ids = ["lead_id", "account_id", "opportunity_id"]
        nobody = pl.select(pl.all_horizontal(out[c].is_null() for c in ids)).to_series()
        rejects.append(_reasons(lines, nobody, ", ".join(source_of.get(c, c) for c in ids), "nobody touched",
                                "a touch needs a lead_id, account_id or opportunity_id"))

    typed = pl.DataFrame(out).with_columns(lines.alias(LINE))
    typed = _derive(typed, table, settings)

    # A misaligned row (wrong field count) is reported once, for the row, not per column.
    frame = raw.frame
    ragged = frame[PROBLEM].is_not_null()
    long = pl.concat([r for r in rejects if r.height] or [pl.DataFrame(schema=REJECT_SCHEMA)], how="vertical")
    if bool(ragged.any()):
        long = long.filter(~pl.col("line").is_in(lines.filter(ragged).implode()))
        long = pl.concat([_reasons(lines, ragged, "", "wrong number of fields", "{}", frame[PROBLEM], quote=False),
                          long])
    bad_lines = long["line"].unique()
    # Filtering copies every column: only do it when some row was rejected.
    accepted = typed.filter(~pl.col(LINE).is_in(bad_lines.implode())) if bad_lines.len() else typed
    accepted, dupes = _dedupe(accepted, table, mapping)
    long = pl.concat([long, dupes]).sort("line", maintain_order=True)

    unknown = unknown_stages(_texts(accepted["stage"]), settings) if "stage" in accepted.columns else []
    if unknown:
        notices.append(f"Stages not in the stage settings, counted as open until placed on the Data page: "
                       f"{', '.join(unknown[:10])}{'…' if len(unknown) > 10 else ''}.")
    extras = _extras(frame, accepted, table, mapping)
    return Checked(frame=accepted, rejects=long, extras=extras, notices=notices)


def _derive(typed: pl.DataFrame, table: str, settings: Settings) -> pl.DataFrame:
    """Table rules: deal flags from the stage settings, spend on the first of its month."""
    if table == "opportunities":
        # Flags of each distinct stage (a handful), then looked up per row.
        seen = _texts(typed["stage"]).drop_nulls().unique()
        flags = state_flags(seen, settings)
        # One lookup per row gives both flags: 2 = won, 1 = closed (an unknown or empty stage is open, 0).
        codes = {stage: 2 * won + closed for stage, closed, won in
                 zip(seen.to_list(), flags["is_closed"].to_list(), flags["is_won"].to_list())}
        code = typed.select(pl.col("stage").replace_strict(codes, default=0, return_dtype=pl.UInt8)).to_series()
        won = pl.coalesce(pl.col("is_won"), pl.lit(code >= 2))
        typed = typed.with_columns(won.alias("is_won"),
                                   pl.coalesce(pl.col("is_closed"), pl.lit(code % 2 == 1) | won).alias("is_closed"))
    if table == "spend":
        typed = typed.with_columns(pl.col("month").dt.month_start())
    return typed


def _texts(s: pl.Series) -> pl.Series:
    """A label column as text; a categorical one as its distinct values only (all a lookup needs)."""
    return s.unique().cast(pl.String) if s.dtype == pl.Categorical else s


def _dedupe(accepted: pl.DataFrame, table: str, mapping: dict[str, str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the last row of each key; the earlier ones are rejected naming the line that wins."""
    keys = list(MODELS[table].key)
    if _all_distinct(accepted, keys):
        return accepted, pl.DataFrame(schema=REJECT_SCHEMA)
    last = pl.col(LINE).last().over(keys)
    marked = accepted.with_columns(last.alias("_last"))
    dup = marked.filter(pl.col(LINE) != pl.col("_last"))
    source_of = {dst: src for src, dst in mapping.items()}
    label = ", ".join(source_of.get(k, k) for k in keys if k in source_of) or ", ".join(keys)
    rejects = dup.select(
        pl.col(LINE).alias("line"), pl.lit(label).alias("column"), pl.lit("duplicate key").alias("problem"),
        pl.format("duplicate key of line {}", pl.col("_last")).alias("reason"))
    return marked.filter(pl.col(LINE) == pl.col("_last")).drop("_last"), rejects


def _all_distinct(accepted: pl.DataFrame, keys: list[str]) -> bool:
    """Whether no key occurs twice (counting needs far less memory than marking duplicates)."""
    if len(keys) > 1:
        return accepted.select(pl.struct(keys).n_unique()).item() == accepted.height
    key = accepted[keys[0]]
    if key.len() > 1 and (key.is_sorted() or key.is_sorted(descending=True)):
        # Exports are often in key order: equal keys then sit side by side, no hashing needed.
        return not bool(key.slice(1).eq_missing(key.slice(0, key.len() - 1)).any())
    return key.n_unique() == key.len()


def _extras(frame: pl.DataFrame, accepted: pl.DataFrame, table: str, mapping: dict[str, str]) -> pl.DataFrame:
    """Unmapped columns of the accepted rows as one JSON object per row, keyed by line and row key."""
    unmapped = [h for h in frame.columns if h not in mapping and h not in (LINE, PROBLEM, RECORD)]
    schema = {LINE: pl.Int64, "row_key": pl.String, "data": pl.String}
    if not unmapped or accepted.height == 0:
        return pl.DataFrame(schema=schema)
    keys = list(MODELS[table].key)
    row_key = pl.concat_str([pl.col(k).cast(pl.String).fill_null("") for k in keys], separator="|")
    ids = accepted.select(LINE, row_key.alias("row_key"))
    data = frame.select(LINE, pl.struct(unmapped).struct.json_encode().alias("data"))
    return ids.join(data, on=LINE, how="left").select(list(schema))
