"""Reading files as users have them: encodings, delimiters, quotes, line numbers, footers, bad files."""
from __future__ import annotations

import hashlib
import os

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops.errors import UserError
from revops.ingest import preview
from revops.ingest.read import LINE, PROBLEM, read_raw


def _values(raw, col: str) -> list[object]:
    return raw.frame[col].to_list()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252"])
def test_encodings_read_accents_right(encoding):
    """UTF-8, UTF-8 with BOM, UTF-16 (with and without BOM) and Windows-1252 all give José and 1.234,50 €."""
    text = "name;amount\r\nJosé;1.234,50 €\r\nMüller;12,00 €\r\n"
    data = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):
        data = text.encode(encoding)  # no BOM: recognised from the NUL pattern
    raw = read_raw(data, "x.csv")
    assert raw.headers == ["name", "amount"]
    assert _values(raw, "name") == ["José", "Müller"]
    assert _values(raw, "amount") == ["1.234,50 €", "12,00 €"]


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_delimiters_are_sniffed(delim):
    """Comma, semicolon, tab and pipe files split into the same columns."""
    data = delim.join(["id", "name", "amount"]) + "\n" + delim.join(["1", "Acme", "5"]) + "\n"
    raw = read_raw(data.encode(), "x.csv")
    assert raw.headers == ["id", "name", "amount"]
    assert raw.frame.select("id", "name", "amount").rows() == [("1", "Acme", "5")]


def test_quoted_fields_with_commas_and_line_breaks_keep_their_line_numbers():
    """A quoted line break stays in the value and the next row's line number counts it (header = line 1)."""
    data = b'id,note,amount\r\n1,"a, b",5\r\n2,"two\nlines",6\r\n3,plain,7\r\n'
    raw = read_raw(data, "x.csv")
    assert _values(raw, "note") == ["a, b", "two\nlines", "plain"]
    # line 2 = row 1; row 2 starts on line 3 and spans 3-4; row 3 is on line 5
    assert _values(raw, LINE) == [2, 3, 5]


def test_blank_lines_are_skipped_and_line_numbers_stay_true():
    """Blank lines do not become rows, and later rows keep the line they have in the file."""
    raw = read_raw(b"id,name\n1,a\n\n,\n2,b\n\n", "x.csv")
    assert _values(raw, "id") == ["1", "2"]
    assert _values(raw, LINE) == [2, 5]
    assert raw.blank_rows == 3  # lines 3, 4 (only a comma) and 6


def test_excel_sep_hint_line_is_honoured():
    """A first line `sep=;` sets the delimiter and the header is the next line."""
    raw = read_raw(b"sep=;\nid;name\n1;a,b\n", "x.csv")
    assert raw.headers == ["id", "name"]
    assert _values(raw, "name") == ["a,b"]
    assert _values(raw, LINE) == [3]


def test_ragged_rows_are_flagged_not_fatal():
    """Rows with too many or too few fields are marked with a reason; the others read normally."""
    raw = read_raw(b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12,\n13,14,\n", "x.csv")
    problems = dict(zip(_values(raw, LINE), _values(raw, PROBLEM)))
    assert problems[2] is None
    assert "fewer fields" in problems[3]
    assert "more fields" in problems[4]
    assert problems[5] is None  # a trailing empty field is harmless
    assert problems[6] is None  # 13,14, has three fields, the last one empty


def test_short_rows_are_found_after_a_sep_line_and_a_quoted_line_break():
    """Field counts are checked on records, so a sep= line or a multi-line cell does not shift them."""
    raw = read_raw(b"sep=;\na;b;c\n1;2;3\n1;2\n4;5;6\n", "x.csv")
    assert [(line, p is not None) for line, p in raw.frame.select(LINE, PROBLEM).rows()] == [
        (3, False), (4, True), (5, False)]
    raw = read_raw(b'a,b,c\n"x\ny",1,2\n1,2\n4,5,6\n', "x.csv")
    assert [(line, p is not None) for line, p in raw.frame.select(LINE, PROBLEM).rows()] == [
        (2, False), (4, True), (5, False)]


# Cells of a file without quotes: letters, digits, spaces inside, never a delimiter or a line break.
_plain_cell = st.text(alphabet="abcXYZ019 .-", max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(min_value=2, max_value=5),
       rows=st.lists(st.lists(_plain_cell, min_size=0, max_size=7), min_size=1, max_size=12),
       delim=st.sampled_from([",", ";", "\t", "|"]), crlf=st.booleans(), last_break=st.booleans(),
       sep_line=st.booleans(), on_disk=st.booleans())
def test_short_rows_of_a_file_without_quotes_are_exactly_the_rows_with_fewer_fields(
        tmp_path_factory, width, rows, delim, crlf, last_break, sep_line, on_disk):
    """Without quotes, fields are counted per line from the bytes: a row is short iff it has fewer fields."""
    header = [f"h{i}" for i in range(width)]
    end = "\r\n" if crlf else "\n"
    lines = ([f"sep={delim}"] if sep_line else []) + [delim.join(header)] + [delim.join(r) for r in rows]
    data = (end.join(lines) + (end if last_break else "")).encode()
    source = data
    if on_disk:
        source = tmp_path_factory.mktemp("short") / "x.csv"
        source.write_bytes(data)
    raw = read_raw(source, "x.csv")
    first = 2 + sep_line  # file line of the first data row
    # A row whose cells are all blank is skipped as blank; every other row with fewer fields is flagged.
    expected = {first + i for i, r in enumerate(rows) if len(r) < width and any(c.strip() for c in r)}
    flagged = {line for line, p in raw.frame.select(LINE, PROBLEM).rows() if p and "fewer" in p}
    assert flagged == expected


@pytest.mark.parametrize("encoding, name", [("utf-8", "x.csv"), ("utf-8-sig", "x.csv"), ("cp1252", "x.csv"),
                                            ("utf-16", "x.csv")])
def test_the_file_hash_is_of_the_bytes_as_uploaded(tmp_path, encoding, name):
    """The sha256 the reader reports is that of the file's own bytes, whatever encoding it was read in."""
    data = "id,name\n1,José\n2,Zoë\n".encode(encoding)
    assert read_raw(data, name).sha256 == hashlib.sha256(data).hexdigest()
    path = tmp_path / name
    path.write_bytes(data)
    assert read_raw(path, name).sha256 == hashlib.sha256(data).hexdigest()


def test_quoted_empty_and_blank_cells_are_null_like_empty_ones():
    """A quoted empty cell and a cell of spaces read as null, like an empty cell; their neighbours are untouched."""
    raw = read_raw(b'id,name,note\n1,"",x\n2,   ,\n3," ",y\n', "x.csv")
    assert _values(raw, "name") == [None, None, None]
    assert _values(raw, "note") == ["x", None, "y"]


def test_a_five_megabyte_field_does_not_crash_the_reader():
    """A 5 MB cell is read whole."""
    big = "x" * (5 * 1024 * 1024)
    raw = read_raw(f'id,note\n1,"{big}"\n2,small\n'.encode(), "x.csv")
    assert raw.frame["note"].str.len_chars().to_list() == [len(big), 5]


def test_values_are_trimmed_and_empty_cells_are_null():
    """Spaces around values go; an empty or blank cell is null."""
    raw = read_raw(b"id,name\n 1 ,  \n2,\xc2\xa0b \n", "x.csv")
    assert _values(raw, "id") == ["1", "2"]
    assert _values(raw, "name") == [None, "b"]


def test_duplicate_and_empty_headers_get_distinct_names():
    """Two columns called Amount and an unnamed column stay apart."""
    raw = read_raw(b"Amount,Amount,\n1,2,3\n", "x.csv")
    assert raw.headers == ["Amount", "Amount (2)", "Column 3"]


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"\r\n\r\n", "empty"),
    (bytes(range(256)) * 40, "binary"),
    (b"\xd0\xcf\x11\xe0" + bytes(600), ".xls"),
])
def test_unreadable_files_get_one_clear_sentence(data, message):
    """Empty, blank, binary and old .xls files fail with a sentence, not a traceback."""
    with pytest.raises(UserError, match=message):
        read_raw(data, "x.csv")


def test_header_only_file_has_a_clear_problem():
    """A header without rows previews with the problem 'no data rows'."""
    pv = preview(b"opportunity_id,stage\n", "x.csv", "opportunities")
    assert pv.rows_read == 0
    assert "no data rows" in (pv.problem or "")


def test_random_binary_named_csv_is_refused(tmp_path):
    """Garbage bytes named .csv: refused with a sentence."""
    path = tmp_path / "garbage.csv"
    path.write_bytes(os.urandom(20_000))
    with pytest.raises(UserError):
        preview(path, None, "opportunities")


def test_corrupt_xlsx_is_refused():
    """A file that starts like a zip but is no workbook fails with a sentence."""
    with pytest.raises(UserError, match="Excel"):
        read_raw(b"PK\x03\x04" + b"not really a zip" * 10, "x.xlsx")


def test_windows_1252_after_a_long_ascii_start_is_still_read():
    """A Windows-1252 byte far down the file (past the sniffing sample) is decoded, not an error."""
    lines = ["id,name"] + [f"{i},plain" for i in range(20_000)] + ["20000,Caf\xe9"]
    raw = read_raw("\n".join(lines).encode("cp1252"), "x.csv")
    assert raw.frame["name"].to_list()[-1] == "Café"
    assert raw.encoding == "cp1252"


def test_xlsx_rows_are_numbered_like_excel_rows():
    """In a workbook the line is the Excel row number (header = row 1)."""
    import io

    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "amount"])
    ws.append(["A", 1])
    ws.append([None, None])
    ws.append(["B", 2.5])
    buf = io.BytesIO()
    wb.save(buf)
    raw = read_raw(buf.getvalue(), "x.xlsx")
    assert raw.frame.select("id", "amount", LINE).rows() == [("A", "1", 2), ("B", "2.5", 4)]
    assert isinstance(raw.frame, pl.DataFrame)


def test_xlsx_title_block_above_the_header_is_skipped():
    """A formatted report's title rows are skipped; the header is the first full row; lines stay Excel rows."""
    import io

    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Opportunity Pipeline"])
    ws.append(["Filtered by: All opportunities"])
    ws.append([])
    ws.append(["Opportunity ID", "Stage", "Amount"])
    ws.append(["A1", "Prospecting", 5])
    buf = io.BytesIO()
    wb.save(buf)
    raw = read_raw(buf.getvalue(), "report.xlsx")
    assert raw.headers == ["Opportunity ID", "Stage", "Amount"]
    assert raw.frame.select("Opportunity ID", LINE).rows() == [("A1", 5)]
    assert "title rows" in raw.notices[0]


def test_repeating_columns_of_a_big_file_are_held_as_categories(monkeypatch):
    """Values that repeat in the sampled rows are held as categories (4 bytes a row); unique ones stay text."""
    from revops.ingest import read
    rows = "".join(f"D{i},{['Won', 'Lost', ' Open '][i % 3]},{i * 7}\n" for i in range(400))
    data = ("id,stage,amount\n" + rows).encode()
    assert read_raw(data, "x.csv").frame.schema["stage"] == pl.String  # a small file stays plain text
    monkeypatch.setattr(read, "_CATEGORICAL_FROM", len(data))
    raw = read_raw(data, "x.csv")
    assert (raw.frame.schema["id"], raw.frame.schema["stage"], raw.frame.schema["amount"]) == (
        pl.String, pl.Categorical, pl.String)
    assert raw.frame["stage"].head(3).to_list() == ["Won", "Lost", "Open"]  # trimmed like text
