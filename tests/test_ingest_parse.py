"""Column-wise value parsers: money, dates, booleans, percentages, scores, ids, labels."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from revops.ingest import parse
from tests.fixtures_gen import sf18


def S(*values: str | None) -> pl.Series:
    return pl.Series("x", list(values), pl.String)


def test_money_formats_users_write():
    """1234.5, $1,234.50, USD 1,234.50, (1,234) and -5 read as amounts; text does not."""
    p = parse.money(S("1234.5", "$1,234.50", "USD 1,234.50", "(1,234)", "-5", "lots", None))
    assert p.values.to_list() == [1234.5, 1234.5, 1234.5, -1234.0, -5.0, None, None]
    assert p.bad.to_list() == [False, False, False, False, False, True, False]


def test_money_european_column():
    """1.234,50 €, 12,00 and (1.234) read with a decimal comma."""
    p = parse.money(S("1.234,50 €", "12,00", "(1.234)", "3,5"), currency="EUR")
    assert p.values.to_list() == [1234.5, 12.0, -1234.0, 3.5]
    assert p.note is None


def test_money_ambiguous_thousands_follow_the_file_hint():
    """1,234 alone is 1234 in a comma file and 1.234 in a semicolon (European) file."""
    assert parse.money(S("1,234", "2,000")).values.to_list() == [1234.0, 2000.0]
    assert parse.money(S("1,234", "2,000"), decimal_comma_hint=True).values.to_list() == [1.23, 2.0]


def test_amounts_too_large_for_the_store_are_bad():
    """10^16 and beyond do not fit DECIMAL(18,2): bad values, not a failed load."""
    assert parse.money(S("99999999999999.99", "1e17")).bad.to_list() == [False, True]


def test_plain_looking_thousands_in_a_decimal_comma_file():
    """In a semicolon (European) file 1.500 and 2.000 are thousands, not 1.5 and 2."""
    assert parse.money(S("1.500", "2.000", "300"), decimal_comma_hint=True).values.to_list() == [1500.0, 2000.0, 300.0]
    assert parse.money(S("1.500", "2.000", "300")).values.to_list() == [1.5, 2.0, 300.0]


def test_money_in_another_currency_is_noted():
    """Amounts marked EUR in a USD workspace are read but the preview says so."""
    p = parse.money(S("12 EUR", "5"))
    assert p.values.to_list() == [12.0, 5.0]
    assert "EUR" in (p.note or "")


@pytest.mark.parametrize("values, expected", [
    (("65", "65%", "0.65"), [0.65, 0.65, 0.0065]),  # one plain value above 1: the plain column is in percent
    (("0.65", "1", "0.1"), [0.65, 1.0, 0.1]),
    (("65", "100", "0"), [0.65, 1.0, 0.0]),
    (("65 %", "12,5%"), [0.65, 0.125]),
])
def test_probability_inputs_mean_a_fraction(values, expected):
    """"65", "65%" and "0.65" all mean 0.65 (a column's scale decides plain numbers)."""
    assert parse.ratio(S(*values)).values.to_list() == pytest.approx(expected)


def test_probability_above_100_percent_is_bad():
    """150% is not a probability."""
    assert parse.ratio(S("150%", "50%")).bad.to_list() == [True, False]


def test_booleans():
    """true/false, yes/no, 1/0, True/False read; other words are bad; blanks stay unknown."""
    p = parse.boolean(S("true", "False", "yes", "No", "1", "0", None, "maybe"))
    assert p.values.to_list() == [True, False, True, False, True, False, None, None]
    assert p.bad.to_list() == [False] * 7 + [True]


def test_x_marks_read_blank_as_false():
    """A column of X marks: X is true and a blank is false."""
    assert parse.boolean(S("X", None, "x")).values.to_list() == [True, False, True]


@pytest.mark.parametrize("values, order, expected, note", [
    (("2024-01-15", "2024-02-03"), "month_first", [dt.date(2024, 1, 15), dt.date(2024, 2, 3)], None),
    (("1/15/2024", "2/3/2024"), "day_first", [dt.date(2024, 1, 15), dt.date(2024, 2, 3)], "M/D/YYYY"),
    (("15/01/2024", "03/02/2024"), "month_first", [dt.date(2024, 1, 15), dt.date(2024, 2, 3)], "D/M/YYYY"),
    (("01/02/2024", "03/04/2024"), "day_first", [dt.date(2024, 2, 1), dt.date(2024, 4, 3)], "day-first"),
    (("01/02/2024", "03/04/2024"), "month_first", [dt.date(2024, 1, 2), dt.date(2024, 3, 4)], "month-first"),
    (("2024-01-15 10:22", "2024-01-16"), "month_first", [dt.date(2024, 1, 15), dt.date(2024, 1, 16)], None),
    (("15 Jan 2024", "3 Feb 2024"), "month_first", [dt.date(2024, 1, 15), dt.date(2024, 2, 3)], None),
])
def test_dates_use_the_one_format_that_parses_the_column(values, order, expected, note):
    """ISO, M/D/YYYY, D/M/YYYY, with or without time; ambiguous columns follow the date-order setting, noted."""
    p = parse.dates(S(*values), order)
    assert p.values.to_list() == expected
    if note:
        assert note in (p.note or "")
    else:
        assert p.note is None


def test_timestamps_keep_time_and_am_pm():
    """Salesforce '2/3/2024 10:22 PM' and ISO with T and offset keep their time of day."""
    p = parse.dates(S("2/3/2024 10:22 PM", "12/31/2024 12:05 AM"), kind="ts")
    assert p.values.to_list() == [dt.datetime(2024, 2, 3, 22, 22), dt.datetime(2024, 12, 31, 0, 5)]
    p = parse.dates(S("2024-01-15T10:22:33.000+0000"), kind="ts")
    assert p.values.to_list() == [dt.datetime(2024, 1, 15, 10, 22, 33)]


def test_an_impossible_date_is_bad_and_named_by_the_format():
    """2/30/2024 does not exist: bad, with the column's format in the message."""
    p = parse.dates(S("2/30/2024", "1/13/2024"))
    assert p.bad.to_list() == [True, False]
    assert p.expected == "a date like M/D/YYYY"


def test_csat_scales_are_rescaled_to_0_100():
    """1-5 → ×20 (4 → 80), 1-10 → ×10 (7 → 70), 0-100 stays."""
    assert parse.score(S("4", "5", "1"), rescale=True).values.to_list() == [80.0, 100.0, 20.0]
    assert parse.score(S("7", "10"), rescale=True).values.to_list() == [70.0, 100.0]
    assert parse.score(S("70", "100"), rescale=True).values.to_list() == [70.0, 100.0]


def test_salesforce_checksum_matches_the_published_example():
    """0015000000Gv7qJ → 0015000000Gv7qJAAR (Salesforce's documented example)."""
    assert parse.sf_suffix(S("0015000000Gv7qJ")).to_list() == ["AAR"]


def test_salesforce_15_char_ids_become_18():
    """A column of 15- and 18-character ids is normalised to 18 so both spellings are one record."""
    p = parse.salesforce_ids(S("0065g00000AbCdE", sf18("0065g00000AbCdE"), None))
    assert p.values.to_list() == [sf18("0065g00000AbCdE")] * 2 + [None]


def test_other_ids_of_fifteen_characters_are_left_alone():
    """Ids that are not all Salesforce-shaped (no digit, wrong checksum, other lengths) are not touched."""
    assert parse.salesforce_ids(S("ABCDEFGHIJKLMNO", "0065g00000AbCdE")).values.to_list() == [
        "ABCDEFGHIJKLMNO", "0065g00000AbCdE"]
    assert parse.salesforce_ids(S("0065g00000AbCdE", "short")).values.to_list() == ["0065g00000AbCdE", "short"]
    wrong = "0065g00000AbCdEZZZ"
    assert parse.salesforce_ids(S("0065g00000AbCdE", wrong)).values.to_list() == ["0065g00000AbCdE", wrong]


def test_deal_type_labels_are_mapped():
    """New Business, Existing Business, Upsell, Renewal → codes; an unknown label is kept."""
    p = parse.deal_type(S("New Business", "Existing Business", "Upsell", "Renewal", "Partner deal"))
    assert p.values.to_list() == ["new_business", "expansion", "expansion", "renewal", "Partner deal"]


def test_integers_refuse_fractions():
    """1,234 is a whole number; 1.5 is not."""
    p = parse.integer(S("1,234", "12", "1.5"))
    assert p.values.to_list() == [1234, 12, None]
    assert p.bad.to_list() == [False, False, True]
