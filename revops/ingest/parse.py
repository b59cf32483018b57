"""Column-wise value parsers: strings in, typed Polars series out, with a mask of values that do not parse."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl


@dataclass(frozen=True)
class Parsed:
    """A parsed column: values (null where empty or bad), which inputs were bad, what was expected, notes."""

    values: pl.Series
    bad: pl.Series
    expected: str
    note: str | None = None


def _bad(s: pl.Series, values: pl.Series) -> pl.Series:
    """Inputs that were present but produced no value."""
    return (s.is_not_null() & values.is_null()).alias("bad")


def text(s: pl.Series) -> Parsed:
    """Plain text: kept as it is (already trimmed; formula-looking text stays plain text)."""
    return Parsed(s, pl.repeat(False, s.len(), dtype=pl.Boolean, eager=True).alias("bad"), "text")


# ---------------------------------------------------------------------------------------
# Salesforce ids

_SF_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_suffix(s: pl.Series) -> pl.Series:
    """The 3-character checksum Salesforce appends to a 15-character id (case of each 5-char chunk)."""
    frame = pl.DataFrame({"id": s})
    chunks = []
    for chunk in range(3):
        bits = sum(
            (pl.col("id").str.slice(chunk * 5 + i, 1).str.contains("^[A-Z]$").cast(pl.Int32) * (1 << i))
            for i in range(5)
        )
        chunks.append(pl.lit(_SF_ALPHABET).str.slice(bits, 1))
    return frame.select(pl.concat_str(chunks).alias("suffix"))["suffix"]


def salesforce_ids(s: pl.Series) -> Parsed:
    """15-character Salesforce ids -> their 18-character form, when the column holds Salesforce ids.

    A column counts as Salesforce ids when every value is 15 or 18 letters/digits with a digit
    among them and every 18-character value carries the right checksum, so other systems' keys
    of the same length are left alone.
    """
    ok = text(s)
    lengths = s.str.len_bytes().drop_nulls()
    if lengths.len() == 0 or not bool(lengths.is_in([15, 18]).all()):
        return ok
    present = s.drop_nulls()
    shaped = present.str.contains(r"^[A-Za-z0-9]{15}$|^[A-Za-z0-9]{18}$") & present.str.contains(r"[0-9]")
    if not bool(shaped.all()):
        return ok
    long_ids = present.filter(present.str.len_chars() == 18)
    if long_ids.len() and not bool((sf_suffix(long_ids.str.slice(0, 15)) == long_ids.str.slice(15, 3)).all()):
        return ok
    short = s.str.len_chars() == 15
    if not bool(short.any()):
        return ok
    fixed = pl.select(pl.when(short).then(s + sf_suffix(s)).otherwise(s).alias(s.name)).to_series()
    return Parsed(fixed, ok.bad, "an id", "15-character Salesforce ids were extended to 18 characters")


# ---------------------------------------------------------------------------------------
# Numbers and money

_US = r"^(\d{1,3}(,\d{3})+(\.\d*)?|\d*\.?\d+|\d+\.)$"
_EU = r"^(\d{1,3}(\.\d{3})+(,\d*)?|\d*,?\d+|\d+,)$"
# Unambiguous evidence of a convention: a decimal part that is not exactly three digits, or both separators.
_US_SURE = r"\.\d{1,2}$|\.\d{4,}$|,\d{3}\.|^\d{1,3}(,\d{3}){2,}$"
_EU_SURE = r",\d{1,2}$|,\d{4,}$|\.\d{3},|^\d{1,3}(\.\d{3}){2,}$"
_SPACES = r"[\s\u00a0\u202f']"
_CURRENCY_MARKS = r"[$€£¥₹]"
_SYMBOL_CODES = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
MONEY_LIMIT = 1e16


def _plain(s: pl.Series) -> pl.Series | None:
    """The column as floats when every value is a plain number like 1234.5 or -12 (the fast path)."""
    values = s.cast(pl.Float64, strict=False)
    if int(values.null_count()) != int(s.null_count()) or not bool(values.is_finite().all()):
        return None
    return values  # (Excel's 1.5E+06 is a plain number too)


def _numbers(s: pl.Series, decimal_comma_hint: bool, *, money: bool) -> tuple[pl.Series, pl.Series, bool, pl.Series]:
    """(absolute value, negative?, decimal comma used?, currency marks found) of number-like strings."""
    # In a decimal-comma file 1.500 means fifteen hundred: only the full reader may judge dots there.
    plain = None if decimal_comma_hint and bool(s.str.contains(".", literal=True).any()) else _plain(s)
    if plain is not None:
        none = pl.repeat(None, s.len(), dtype=pl.String, eager=True).alias("marks")
        return plain.abs(), plain < 0, False, none
    t = s.str.strip_chars()
    paren = t.str.contains(r"^\(.*\)$")
    t = pl.select(pl.when(paren).then(t.str.slice(1, t.str.len_chars() - 2)).otherwise(t)).to_series()
    marks = pl.repeat(None, s.len(), dtype=pl.String, eager=True).alias("marks")
    if money:
        t = t.str.replace(r"^[A-Za-z]{1,3}\$", "$")  # US$, CA$, A$
        front = t.str.extract(r"^([A-Za-z]{3})\s*[-−(]?[\d.,]", 1)
        back = t.str.extract(r"[\d.,)]\s*([A-Za-z]{3})$", 1)
        sym = t.str.extract(r"([$€£¥₹])", 1).replace_strict(_SYMBOL_CODES, default=None, return_dtype=pl.String)
        marks = pl.select(pl.coalesce(front.str.to_uppercase(), back.str.to_uppercase(), sym)).to_series()
        t = t.str.replace(r"^[A-Za-z]{3}\s*", "").str.replace(r"\s*[A-Za-z]{3}$", "")
        t = t.str.replace_all(_CURRENCY_MARKS, "")
    t = t.str.replace_all(_SPACES, "")
    minus = t.str.contains(r"^[-−]|[-−]$")
    t = t.str.replace_all(r"^[-−+]|[-−]$", "")
    negative = paren | minus
    present = t.drop_nulls()
    us_all = bool(present.str.contains(_US).all())
    eu_all = bool(present.str.contains(_EU).all())
    us_sure = bool(present.str.contains(_US_SURE).any())
    eu_sure = bool(present.str.contains(_EU_SURE).any())
    if us_all and not eu_all:
        comma = False
    elif eu_all and not us_all:
        comma = True
    elif eu_sure and not us_sure:
        comma = True
    elif us_sure and not eu_sure:
        comma = False
    elif us_all and eu_all:
        comma = decimal_comma_hint
    else:
        comma = present.str.contains(_EU).sum() > present.str.contains(_US).sum()
    if comma:
        valid = t.str.contains(_EU)
        digits = t.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    else:
        valid = t.str.contains(_US)
        digits = t.str.replace_all(",", "", literal=True)
    value = pl.select(pl.when(valid).then(digits).otherwise(None).cast(pl.Float64, strict=False)).to_series()
    return value, negative, comma, marks


def number(s: pl.Series, decimal_comma_hint: bool = False) -> Parsed:
    """A plain number: 1234.5, 1,234.5, 1.234,5, (12) negative."""
    value, negative, _, _ = _numbers(s, decimal_comma_hint, money=False)
    out = pl.select(pl.when(negative).then(-value).otherwise(value).alias(s.name)).to_series()
    return Parsed(out, _bad(s, out), "a number")


def integer(s: pl.Series, decimal_comma_hint: bool = False) -> Parsed:
    """A whole number (1,234 or 1.234 with thousands separators)."""
    p = number(s, decimal_comma_hint)
    whole = pl.select(pl.when(p.values == p.values.round(0)).then(p.values).otherwise(None)
                      .cast(pl.Int64, strict=False).alias(s.name)).to_series()
    return Parsed(whole, _bad(s, whole), "a whole number")


def money(s: pl.Series, decimal_comma_hint: bool = False, currency: str = "USD") -> Parsed:
    """Amounts: 1234.5, $1,234.50, USD 1,234.50, 1.234,50 €, (1,234) negative; rounded to cents."""
    value, negative, _, marks = _numbers(s, decimal_comma_hint, money=True)
    signed = pl.when(negative).then(-value).otherwise(value).round(2)
    # The store keeps amounts as DECIMAL(18,2): anything from 10^16 up does not fit (and is no deal size).
    out = pl.select(pl.when(signed.abs() < MONEY_LIMIT).then(signed).alias(s.name)).to_series()
    foreign = sorted({m for m in marks.drop_nulls().unique().to_list() if m != currency.upper()})
    note = None
    if foreign:
        note = (f"amounts carry {', '.join(foreign)} but the workspace currency is {currency}; "
                f"they were read as {currency}")
    return Parsed(out, _bad(s, out), "an amount like 1,234.50", note)


def ratio(s: pl.Series, decimal_comma_hint: bool = False) -> Parsed:
    """A probability or share: "65", "65%" and "0.65" all mean 0.65; must end up within 0-1.

    A value with % is a percentage; a column whose plain values go above 1 is in percent too.
    """
    pct = s.str.ends_with("%")  # values arrive trimmed
    p = number(s.str.replace(r"\s*%$", "") if bool(pct.any()) else s, decimal_comma_hint)
    plain_above_one = bool(p.values.filter(~pct.fill_null(False)).drop_nulls().gt(1).any())
    scaled = pl.select(
        pl.when(pct | pl.lit(plain_above_one)).then(p.values / 100).otherwise(p.values).alias(s.name)
    ).to_series()
    in_range = scaled.is_between(0, 1)
    out = pl.select(pl.when(in_range).then(scaled).otherwise(None).alias(s.name)).to_series()
    return Parsed(out, _bad(s, out), "a percentage between 0 and 100%")


def score(s: pl.Series, decimal_comma_hint: bool = False, *, rescale: bool = False) -> Parsed:
    """A 0-100 score; with rescale, a column on a 1-5 or 1-10 scale is brought to 0-100."""
    p = number(s.str.replace(r"\s*%\s*$", ""), decimal_comma_hint)
    top = p.values.max()
    factor, note = 1.0, None
    if rescale and top is not None and 0 < float(top) <= 5:  # type: ignore[arg-type]
        factor, note = 20.0, "a 1-5 scale, rescaled to 0-100 (5 = 100)"
    elif rescale and top is not None and 5 < float(top) <= 10:  # type: ignore[arg-type]
        factor, note = 10.0, "a 1-10 scale, rescaled to 0-100 (10 = 100)"
    scaled = p.values * factor
    out = pl.select(pl.when(scaled.is_between(0, 100)).then(scaled).otherwise(None).alias(s.name)).to_series()
    return Parsed(out, _bad(s, out), "a score between 0 and 100", note)


# ---------------------------------------------------------------------------------------
# Booleans

_TRUE = ("true", "t", "yes", "y", "1", "x", "✓", "✔", "checked", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "unchecked", "0.0")


def boolean(s: pl.Series) -> Parsed:
    """true/false, yes/no, 1/0, True/False; a column of X marks reads a blank as false."""
    low = s.str.to_lowercase()
    marks_only = bool(low.drop_nulls().is_in(["x", "✓", "✔"]).all()) and low.drop_nulls().len() > 0
    out = pl.select(
        pl.when(low.is_in(_TRUE)).then(True)
        .when(low.is_in(_FALSE)).then(False)
        .when(low.is_null() & pl.lit(marks_only)).then(False)
        .otherwise(None).alias(s.name)
    ).to_series()
    return Parsed(out, _bad(s, out), "yes/no, true/false or 1/0")


# ---------------------------------------------------------------------------------------
# Dates

_TIME = r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?\s*([AaPp]\.?[Mm]\.?)?\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})?)?"
_ISO = r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME + r"$"
_NUMERIC = r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2}),?" + _TIME + r"$"
_TEXT_FORMATS = {"%d %b %Y": "15 Jan 2024", "%b %d, %Y": "Jan 15, 2024", "%d-%b-%Y": "15-Jan-2024",
                 "%d %B %Y": "15 January 2024", "%B %d, %Y": "January 15, 2024", "%b %d %Y": "Jan 15 2024",
                 "%d-%b-%y": "15-Jan-24"}
DateOrder = Literal["month_first", "day_first"]
_LABELS = {"iso": "YYYY-MM-DD", "mdy": "M/D/YYYY", "dmy": "D/M/YYYY", **_TEXT_FORMATS}


def _assemble(y: pl.Expr, m: pl.Expr, d: pl.Expr, hh: pl.Expr, mi: pl.Expr, ss: pl.Expr, ampm: pl.Expr) -> pl.Expr:
    """Datetime from text parts (invalid dates such as Feb 30 become null)."""
    year = y.cast(pl.Int32, strict=False)
    year = pl.when(year < 100).then(pl.when(year < 70).then(year + 2000).otherwise(year + 1900)).otherwise(year)
    hour = hh.cast(pl.Int32, strict=False).fill_null(0)
    half = ampm.str.to_lowercase().str.replace_all(".", "", literal=True)
    hour_ok = pl.when(half.is_null()).then(hour < 24).otherwise(hour.is_between(1, 12))
    hour = (pl.when(half == "am").then(pl.when(hour == 12).then(0).otherwise(hour))
            .when(half == "pm").then(pl.when(hour == 12).then(12).otherwise(hour + 12))
            .otherwise(hour))
    stamp = pl.format("{}-{}-{} {}:{}:{}", year.cast(pl.String).str.zfill(4), m.str.zfill(2), d.str.zfill(2),
                      hour.cast(pl.String).str.zfill(2), mi.fill_null("0").str.zfill(2),
                      ss.fill_null("0").str.zfill(2))
    parsed = stamp.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
    return pl.when(hour_ok).then(parsed).otherwise(None)


_FAST_ISO = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def _candidates(s: pl.Series, present: int) -> dict[str, pl.Series]:
    """Each date family's reading of the column (null where that family does not apply)."""
    for fmt in _FAST_ISO:  # the common case, one strptime pass instead of regex extraction
        fast = s.str.to_datetime(fmt, strict=False, time_unit="us")
        if int(fast.is_not_null().sum()) == present:
            return {"iso": fast}
    frame = pl.DataFrame({"v": s})
    parts = frame.select(pl.col("v").str.extract_groups(_ISO).alias("iso"),
                         pl.col("v").str.extract_groups(_NUMERIC).alias("num"))
    i = lambda k: pl.col("iso").struct.field(str(k))  # noqa: E731
    n = lambda k: pl.col("num").struct.field(str(k))  # noqa: E731
    out = parts.select(
        _assemble(i(1), i(2), i(3), i(4), i(5), i(6), i(7)).alias("iso"),
        _assemble(n(3), n(1), n(2), n(4), n(5), n(6), n(7)).alias("mdy"),
        _assemble(n(3), n(2), n(1), n(4), n(5), n(6), n(7)).alias("dmy"),
    )
    result = {k: out[k] for k in out.columns}
    if max(int(v.is_not_null().sum()) for v in result.values()) < present:
        # Month names ("15 Jan 2024", "Jan 15, 2024"): only tried when the numeric forms fall short.
        for fmt in _TEXT_FORMATS:
            result[fmt] = s.str.to_datetime(fmt, strict=False, time_unit="us")
    return result


def dates(s: pl.Series, order: DateOrder = "month_first", *, kind: Literal["date", "ts"] = "date") -> Parsed:
    """Dates/timestamps read with the one format that parses the column; ties decided by `order`."""
    present = int(s.is_not_null().sum())
    if present == 0:
        empty = pl.repeat(None, s.len(), dtype=pl.Datetime("us"), eager=True).alias(s.name)
        return Parsed(empty.dt.date() if kind == "date" else empty, _bad(s, empty), "a date")
    cands = _candidates(s, present)
    counts = {k: int(v.is_not_null().sum()) for k, v in cands.items()}
    preferred = "mdy" if order == "month_first" else "dmy"
    best = max(counts, key=lambda k: (counts[k], k == "iso", k == preferred))
    note = None
    if best in ("mdy", "dmy") and counts["mdy"] == counts["dmy"]:
        best = preferred
        note = (f"could be read month-first or day-first (no day above 12); read "
                f"{'month-first' if best == 'mdy' else 'day-first'} ({_LABELS[best]}) as the date-order "
                f"setting says")
    elif best in ("mdy", "dmy"):
        note = f"read as {_LABELS[best]}"
    values = cands[best].alias(s.name)
    if kind == "date":
        values = values.dt.date()
    return Parsed(values, _bad(s, values), f"a date like {_LABELS[best]}", note)


# ---------------------------------------------------------------------------------------
# Labels

_TYPES = {
    "newbusiness": "new_business", "new": "new_business", "newcustomer": "new_business", "newlogo": "new_business",
    "existingbusiness": "expansion", "upsell": "expansion", "expansion": "expansion", "crosssell": "expansion",
    "addon": "expansion", "existingcustomerupgrade": "expansion", "existingcustomer": "expansion",
    "renewal": "renewal", "existingcustomerrenewal": "renewal",
}
_FORECAST = {
    "pipeline": "pipeline", "bestcase": "best_case", "upside": "best_case", "commit": "commit",
    "committed": "commit", "closed": "closed", "closedwon": "closed", "won": "closed",
    "omitted": "omitted", "notforecasted": "omitted", "closedlost": "omitted", "lost": "omitted",
}


def labels(s: pl.Series, table: dict[str, str]) -> Parsed:
    """CRM labels -> canonical codes ("New Business" -> new_business); unknown labels kept as they are."""
    # A label column has a handful of distinct values: normalise those, then look each row up.
    seen = s.drop_nulls().unique().cast(pl.String)  # a categorical column keeps its categories (replace below)
    key = seen.str.to_lowercase().str.replace_all(r"[^0-9a-z]", "").replace_strict(table, default=None,
                                                                                 return_dtype=pl.String)
    # Labels already in canonical form map to themselves: only the others cost a pass over the rows.
    known = {k: v for k, v in zip(seen.to_list(), key.to_list()) if v is not None and v != k}
    out = s.replace(known) if known else s
    return Parsed(out, pl.repeat(False, s.len(), dtype=pl.Boolean, eager=True).alias("bad"), "text")


def deal_type(s: pl.Series) -> Parsed:
    """Opportunity type labels -> new_business / expansion / renewal."""
    return labels(s, _TYPES)


def forecast_category(s: pl.Series) -> Parsed:
    """Forecast category labels -> pipeline / best_case / commit / closed / omitted."""
    return labels(s, _FORECAST)


__all__ = ["Parsed", "boolean", "dates", "deal_type", "forecast_category", "integer", "labels", "money",
           "number", "ratio", "salesforce_ids", "score", "sf_suffix", "text"]
