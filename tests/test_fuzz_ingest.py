"""Bad input, fuzzed: any text into the value parsers and any bytes into the file reader give values or a clear error."""
from __future__ import annotations

import csv
import datetime as dt
import io

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from revops.errors import UserError
from revops.ingest import load, parse, preview
from revops.schema import TABLES

# Examples per property: enough to shake out edge cases, few enough that the suite stays quick on 2 cores.
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EACH = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # × many parameters
SOME = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Cells as the reader hands them to the parsers: trimmed, an empty cell is null.
cell = st.one_of(st.none(), st.text(min_size=0, max_size=30)).map(
    lambda v: v.strip() or None if v is not None else None)
column = st.lists(cell, min_size=0, max_size=25)
# Text that looks like what CRM exports hold: digits, separators, currency marks, signs, letters.
numberish = st.text(alphabet="0123456789.,-−+()$€£ %eEUSD\u00a0'", max_size=20).map(lambda v: v.strip() or None)

PARSERS = {
    "money": lambda s: parse.money(s),
    "money_eu_hint": lambda s: parse.money(s, True, "EUR"),
    "number": lambda s: parse.number(s),
    "integer": lambda s: parse.integer(s),
    "ratio": lambda s: parse.ratio(s),
    "score": lambda s: parse.score(s, rescale=True),
    "boolean": parse.boolean,
    "date_mdy": lambda s: parse.dates(s, "month_first"),
    "ts_dmy": lambda s: parse.dates(s, "day_first", kind="ts"),
    "salesforce_ids": parse.salesforce_ids,
    "deal_type": parse.deal_type,
    "forecast_category": parse.forecast_category,
    "text": parse.text,
}


def _check_contract(values: list[str | None], parsed: parse.Parsed) -> None:
    """One value per input; a missing input is never 'bad'; bad means present but unreadable."""
    s = pl.Series("c", values, dtype=pl.String)
    assert parsed.values.len() == s.len() and parsed.bad.len() == s.len()
    assert parsed.bad.dtype == pl.Boolean
    present = s.is_not_null()
    assert not (parsed.bad & ~present).any()
    assert (parsed.bad == (present & parsed.values.is_null())).all() or parsed.expected == "text"
    assert isinstance(parsed.expected, str) and parsed.expected


# --- any text in: values or "bad" marks out, never an exception ---------------------------------------------

@pytest.mark.parametrize("name", list(PARSERS))
@EACH
@given(values=column)
def test_parser_takes_any_text(name, values):
    """Each value parser accepts any column of text and answers with values and a bad-mask, never raising."""
    _check_contract(values, PARSERS[name](pl.Series("c", values, dtype=pl.String)))


@pytest.mark.parametrize("name", ["money", "money_eu_hint", "number", "integer", "ratio", "score"])
@EACH
@given(values=st.lists(numberish, max_size=25))
def test_number_parsers_take_any_number_like_text(name, values):
    """Number-like junk ("1,2,3", "((5", "--", "1e999", "$€") is read or marked bad, never raised."""
    _check_contract(values, PARSERS[name](pl.Series("c", values, dtype=pl.String)))


# --- what is written one way reads back as the same value -----------------------------------------------------

cents = st.integers(min_value=-10**13, max_value=10**13)


def _us(v: float) -> str:
    return f"{abs(v):,.2f}"


@FUZZ
@given(amount=cents, style=st.sampled_from(["plain", "dollar", "code", "paren", "eu", "eu_code"]))
def test_money_reads_back_what_exports_write(amount, style):
    """An amount written as 1234.5, $1,234.50, USD 1,234.50, (1,234.50) or 1.234,50 € reads back to the cent."""
    v = amount / 100
    eu = _us(v).replace(",", "_").replace(".", ",").replace("_", ".")
    sign = "-" if v < 0 else ""
    text = {
        "plain": f"{v:.2f}",
        "dollar": f"{sign}${_us(v)}",
        "code": f"USD {sign}{_us(v)}",
        "paren": f"({_us(v)})" if v < 0 else _us(v),
        "eu": f"{sign}{eu} €",
        "eu_code": f"{sign}{eu} EUR",
    }[style]
    got = parse.money(pl.Series("c", [text]), currency="EUR" if style.startswith("eu") else "USD").values[0]
    assert got == pytest.approx(v, abs=0.005), text


@FUZZ
@given(pct=st.integers(min_value=0, max_value=100), style=st.sampled_from(["percent", "spaced", "share"]))
def test_probability_reads_percent_and_share(pct, style):
    """"65%", "65 %" and "0.65" all mean 0.65."""
    text = {"percent": f"{pct}%", "spaced": f"{pct} %", "share": f"{pct / 100:.2f}"}[style]
    assert parse.ratio(pl.Series("c", [text])).values[0] == pytest.approx(pct / 100), text


@FUZZ
@given(flag=st.booleans(), word=st.integers(min_value=0, max_value=3), caps=st.sampled_from([str.lower, str.upper,
                                                                                              str.title]))
def test_booleans_read_back(flag, word, caps):
    """true/false, yes/no, 1/0, t/f in any case read back as the flag they spell."""
    text = caps([("true", "false"), ("yes", "no"), ("1", "0"), ("t", "f")][word][0 if flag else 1])
    assert parse.boolean(pl.Series("c", [text])).values[0] is flag


days = st.dates(min_value=dt.date(1971, 1, 1), max_value=dt.date(2068, 12, 31))


@FUZZ
@given(day=days, style=st.sampled_from(["iso", "mdy", "dmy", "iso_time", "mdy_time"]))
def test_dates_read_back(day, style):
    """ISO, M/D/YYYY (month-first setting) and D/M/YYYY (day-first setting), with or without a time."""
    text = {
        "iso": day.isoformat(),
        "mdy": f"{day.month}/{day.day}/{day.year}",
        "dmy": f"{day.day}/{day.month}/{day.year}",
        "iso_time": f"{day.isoformat()} 13:45",
        "mdy_time": f"{day.month}/{day.day}/{day.year} 1:45 PM",
    }[style]
    order = "day_first" if style == "dmy" else "month_first"
    ts = parse.dates(pl.Series("c", [text]), order, kind="ts").values[0]
    assert ts.date() == day, text
    if style.endswith("_time"):
        assert (ts.hour, ts.minute) == (13, 45)


sf15 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=15, max_size=15)


@FUZZ
@given(ids=st.lists(sf15.filter(lambda v: any(c.isdigit() for c in v)), min_size=1, max_size=10))
def test_salesforce_ids_extend_once_and_stay(ids):
    """15-character ids become 18 characters starting with themselves; the 18-character forms are kept as they are."""
    long_ids = parse.salesforce_ids(pl.Series("c", ids)).values
    assert long_ids.str.len_chars().to_list() == [18] * len(ids)
    assert [v[:15] for v in long_ids.to_list()] == ids
    assert parse.salesforce_ids(long_ids).values.to_list() == long_ids.to_list()


# --- any bytes into the file reader: rows or a UserError --------------------------------------------------------

def _preview_or_user_error(data: bytes, name: str, table: str | None = "opportunities"):
    """preview(), with a UserError (a sentence) accepted as the answer; anything else escapes and fails the test."""
    try:
        return preview(data, name, table)
    except UserError as exc:
        message = str(exc)
        assert message and "Traceback" not in message and "\n" not in message.strip()
        return None


@FUZZ
@given(data=st.binary(max_size=2000), name=st.sampled_from(["x.csv", "x.txt", "x.xlsx", "x.tsv", "x"]))
def test_reader_takes_any_bytes(data, name):
    """Random bytes under any file name: a preview or a clear UserError, never another exception."""
    pv = _preview_or_user_error(data, name)
    if pv is not None:
        assert pv.rows_ok + pv.rows_rejected <= pv.rows_read or pv.problem


csv_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@FUZZ
@given(rows=st.lists(st.lists(csv_text, min_size=0, max_size=6), max_size=15),
       header=st.lists(csv_text, min_size=1, max_size=6),
       delim=st.sampled_from([",", ";", "\t", "|"]),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
def test_reader_takes_any_csv_shape(rows, header, delim, encoding):
    """Ragged rows, quotes, line breaks and formula text in any delimiter and encoding: a preview or a UserError."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=delim, lineterminator="\r\n").writerows([header, *rows])
    try:
        data = buf.getvalue().encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    _preview_or_user_error(data, "export.csv", None)


names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"]),
                min_size=1, max_size=30).filter(lambda v: v.strip() == v and v)


@FUZZ
@given(deal_names=st.lists(names, min_size=1, max_size=12), delim=st.sampled_from([",", ";", "\t"]))
def test_text_cells_survive_quoting(deal_names, delim):
    """Deal names with quotes, delimiters, '=', '<script>' and accents load as exactly the text written."""
    assume(not any(n.lower().startswith(("grand total", "copyright", "confidential", "total", "generated by"))
                   for n in deal_names))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delim, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["Opportunity ID", "Stage", "Opportunity Name"])
    writer.writerows([[f"D{i}", "Prospecting", n] for i, n in enumerate(deal_names)])
    pv = preview(buf.getvalue().encode("utf-8"), "deals.csv", "opportunities")
    assert pv.rows_rejected == 0, pv.reason_summary()
    assert pv.frame.sort("opportunity_id")["opportunity_name"].to_list() == [
        n for _, n in sorted((f"D{i}", n) for i, n in enumerate(deal_names))]


@pytest.mark.parametrize("table", TABLES)
@SOME
@given(data=st.binary(max_size=600))
def test_every_table_takes_any_bytes(table, data):
    """Whatever the target table, junk bytes give a preview or a clear UserError."""
    _preview_or_user_error(b"id,date,amount\n" + data, "junk.csv", table)


@SOME
@given(amounts=st.lists(st.one_of(numberish, st.none()), min_size=1, max_size=8),
       stages=st.lists(st.sampled_from(["Closed Won", "Closed Lost", "Prospecting", "", "???"]), min_size=1,
                       max_size=8))
def test_loading_fuzzed_rows_writes_or_refuses_clearly(tmp_path_factory, amounts, stages):
    """Loading what the preview accepted writes it, or refuses with a UserError; the file stays readable."""
    n = min(len(amounts), len(stages))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["opportunity_id", "stage", "amount"])
    writer.writerows([[f"F{i}", stages[i], amounts[i] or ""] for i in range(n)])
    db = tmp_path_factory.mktemp("fuzzload") / "f.duckdb"
    pv = _preview_or_user_error(buf.getvalue().encode(), "f.csv")
    if pv is None:
        return
    try:
        result = load(db, pv, user="fuzz")
    except UserError:
        return
    assert result.rows_loaded == pv.rows_ok


def test_vertical_tab_before_commas_is_a_clear_error_or_rows():
    """Found by the fuzzer: b'\\x0b,,' made Polars raise a SchemaError that escaped the reader."""
    from revops.errors import UserError
    from revops.ingest import preview
    try:
        preview(b"\x0b,,", "x.csv")
    except UserError as exc:
        assert str(exc)
