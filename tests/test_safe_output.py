"""Safe output: downloads escape spreadsheet formulas, user text is never HTML, user names never SQL text."""
from __future__ import annotations

import ast
import csv
import io
import tomllib
from pathlib import Path

import polars as pl
import pytest

from revops.export import to_csv_bytes

ROOT = Path(__file__).resolve().parents[1]
UI_SOURCES = sorted([ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")])
BOM = "\ufeff"


def _csv(frame: pl.DataFrame) -> list[str]:
    text = to_csv_bytes(frame).decode("utf-8")
    assert text.startswith(BOM)
    return text[len(BOM):].splitlines()


# --- to_csv_bytes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://e.vil")'])
def test_formula_text_cells_get_a_leading_quote(cell):
    """Every text cell a spreadsheet would run as a formula is prefixed with a quote."""
    text = to_csv_bytes(pl.DataFrame({"name": [cell]})).decode("utf-8")[len(BOM):]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["name"], ["'" + cell]]


def test_plain_text_and_numbers_are_untouched():
    """Ordinary text, negative numbers in numeric columns and empty cells keep their value."""
    lines = _csv(pl.DataFrame({"name": ["Acme", None, "a=b"], "amount": [-5.5, 3.0, None], "n": [-1, 0, 2]}))
    assert lines == ["name,amount,n", "Acme,-5.5,-1", ",3.0,0", "a=b,,2"]


def test_formula_looking_headers_are_escaped():
    """A header taken from an upload ("=cmd|' /C calc'!A0") is escaped like a cell."""
    lines = _csv(pl.DataFrame({"=cmd|' /C calc'!A0": ["x"], "ok": ["y"]}))
    assert lines[0] == "'=cmd|' /C calc'!A0,ok"


def test_categorical_and_list_columns_are_escaped_too():
    """Text hidden in categorical columns is cast to text and escaped; list columns are flattened to text."""
    frame = pl.DataFrame({"c": ["=1", "ok"]}).with_columns(pl.col("c").cast(pl.Categorical))
    assert _csv(frame) == ["c", "'=1", "ok"]


# --- every download button is fed by to_csv_bytes --------------------------------------------------------------

def _func_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _assignments(tree: ast.AST) -> dict[str, list[ast.AST]]:
    """Every value assigned to each plain name anywhere in the module."""
    out: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node.value)
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and isinstance(node.target, ast.Name) and node.value:
            out.setdefault(node.target.id, []).append(node.value)
    return out


def _returns(fn: ast.FunctionDef) -> list[ast.AST]:
    """The values a function returns (nested functions excluded); [] when it can fall off the end."""
    values: list[ast.AST] = []
    stack = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            values.append(node.value if node.value is not None else ast.Constant(None))
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))
    return values


def _functions(sources: list[Path]) -> dict[str, list[ast.FunctionDef]]:
    """Every function and method defined in the given files, by name."""
    out: dict[str, list[ast.FunctionDef]] = {}
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                out.setdefault(node.name, []).append(node)
    return out


# Helpers a download may call instead of to_csv_bytes itself (e.g. Preview.rejects_csv), checked the same way.
PROJECT_FUNCTIONS = _functions(sorted((ROOT / "revops").rglob("*.py")) + UI_SOURCES)


def _is_safe_csv(expr: ast.AST, assigned: dict[str, list[ast.AST]], depth: int = 0,
                 functions: dict[str, list[ast.FunctionDef]] | None = None) -> bool:
    """Whether an expression is (or lazily yields) to_csv_bytes(...), directly or through a project helper."""
    functions = PROJECT_FUNCTIONS if functions is None else functions
    if depth > 5:
        return False
    if isinstance(expr, ast.Call) and _func_name(expr.func) == "to_csv_bytes":
        return True
    if isinstance(expr, ast.Call) and _func_name(expr.func) == "partial" and expr.args:
        return _func_name(expr.args[0]) == "to_csv_bytes"  # functools.partial(to_csv_bytes, frame): built on click
    if isinstance(expr, ast.Call) and _func_name(expr.func) in functions:
        # A helper of the project: safe when every definition of that name only ever returns to_csv_bytes(...).
        defs = functions[_func_name(expr.func)]
        return all(_returns(fn) and all(_is_safe_csv(v, _assignments(fn), depth + 1, functions) for v in _returns(fn))
                   for fn in defs)
    if isinstance(expr, ast.Lambda):
        return _is_safe_csv(expr.body, assigned, depth + 1, functions)
    if isinstance(expr, ast.Name) and expr.id in assigned:
        return all(_is_safe_csv(v, assigned, depth + 1, functions) for v in assigned[expr.id])
    return False


def unsafe_downloads(source: str) -> list[int]:
    """Line numbers of download_button calls whose data is not produced by to_csv_bytes."""
    tree = ast.parse(source)
    assigned = _assignments(tree)
    functions = dict(PROJECT_FUNCTIONS)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = [*functions.get(node.name, []), node]
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _func_name(node.func) == "download_button":
            data = next((k.value for k in node.keywords if k.arg == "data"), None)
            if data is None and len(node.args) >= 2:
                data = node.args[1]
            if data is None or not _is_safe_csv(data, assigned, functions=functions):
                bad.append(node.lineno)
    return bad


def download_calls(source: str) -> int:
    """Number of download_button calls in a source text."""
    return sum(isinstance(n, ast.Call) and _func_name(n.func) == "download_button" for n in ast.walk(ast.parse(source)))


def test_download_checker_flags_raw_data():
    """The checker itself: raw bytes, write_csv() and a frame are flagged; to_csv_bytes forms pass."""
    bad = (
        "st.download_button('a', df.write_csv())\n"
        "st.download_button('b', data=b'x')\n"
        "raw = df.write_csv()\nst.download_button('c', raw)\n"
        "st.download_button('d', data=functools.partial(str, df))\n"
        "def raw_csv(df):\n    return df.write_csv().encode()\n"
        "st.download_button('e', raw_csv(df))\n"
    )
    assert unsafe_downloads(bad) == [1, 2, 4, 5, 8]
    good = (
        "st.download_button('a', to_csv_bytes(df))\n"
        "st.download_button('b', data=export.to_csv_bytes(df), file_name='x.csv')\n"
        "blob = to_csv_bytes(df)\ncol.download_button('c', blob)\n"
        "st.sidebar.download_button('d', data=lambda: to_csv_bytes(df))\n"
        "st.download_button('e', data=functools.partial(to_csv_bytes, df))\n"
        "def safe_csv(df):\n    out = to_csv_bytes(df)\n    return out\n"
        "st.download_button('f', pv.safe_csv())\n"
    )
    assert unsafe_downloads(good) == []


def test_the_app_offers_downloads_at_all():
    """The scan below has something to scan: the drill-downs, rejects and dictionary downloads exist."""
    assert sum(download_calls(p.read_text()) for p in UI_SOURCES) >= 3


@pytest.mark.parametrize("path", UI_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_download_button_uses_to_csv_bytes(path):
    """Each st.download_button in the app passes data made by revops.export.to_csv_bytes."""
    assert unsafe_downloads(path.read_text()) == [], f"{path.name}: download without to_csv_bytes"


# --- no user text rendered as HTML ------------------------------------------------------------------------------

def _literal_text(expr: ast.AST) -> bool:
    """A string written in the source (an f-string only if it interpolates nothing)."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return True
    return isinstance(expr, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in expr.values)


def raw_html_calls(source: str) -> list[int]:
    """Line numbers of HTML rendering (unsafe_allow_html=True, st.html, components.html) of non-literal text."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        unsafe = any(k.arg == "unsafe_allow_html" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                     for k in node.keywords)
        if unsafe or _func_name(node.func) == "html":
            body = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "body"), None)
            if body is None or not _literal_text(body):
                bad.append(node.lineno)
    return bad


def test_html_checker_flags_interpolated_html():
    """The checker itself: interpolated or computed HTML is flagged, a fixed literal is not."""
    src = (
        "st.markdown(f'<b>{name}</b>', unsafe_allow_html=True)\n"
        "st.html(text)\n"
        "st.markdown('<hr>', unsafe_allow_html=True)\n"
        "st.markdown(name)\n"
    )
    assert raw_html_calls(src) == [1, 2]


@pytest.mark.parametrize("path", UI_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_user_text_rendered_as_html(path):
    """HTML is only ever a fixed literal in the source, so uploaded text cannot become markup or script."""
    assert raw_html_calls(path.read_text()) == [], f"{path.name}: HTML built from data"


# --- configuration ---------------------------------------------------------------------------------------------

def test_upload_limit_and_xsrf_protection_are_configured():
    """.streamlit/config.toml caps uploads and keeps XSRF protection on; the README explains the cap."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    limit = config["server"]["maxUploadSize"]
    assert 1 <= limit <= 2000
    assert config["server"].get("enableXsrfProtection", True) is True
    # st.dataframe's own toolbar download would write cells unescaped; every CSV goes through to_csv_bytes.
    assert config["client"]["disableDataExport"] is True
    assert "maxUploadSize" in (ROOT / "README.md").read_text()


def test_secrets_file_is_never_committed():
    """.streamlit/secrets.toml (OIDC client secret, cookie secret) is git-ignored."""
    assert ".streamlit/secrets.toml" in (ROOT / ".gitignore").read_text().splitlines()


# --- names from users never become SQL -------------------------------------------------------------------------

HOSTILE = "x'); DROP TABLE accounts; --"


def _tables(db: Path) -> set[str]:
    from revops import store

    with store.connect(db) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_hostile_table_name_is_refused_in_a_sentence(tmp_path, capsys):
    """`ingest 'opportunities"; DROP TABLE accounts; --' FILE` stops with one line naming the real tables."""
    from revops.cli import main

    db = tmp_path / "s.duckdb"
    src = tmp_path / "deals.csv"
    src.write_text("opportunity_id,stage\nD1,Prospecting\n")
    before = _tables(db)
    assert main(["ingest", 'opportunities"; DROP TABLE accounts; --', str(src), "--db", str(db)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "opportunities" in err and "Traceback" not in err
    assert _tables(db) == before


def test_hostile_headers_and_values_are_stored_as_text(tmp_path):
    """Quotes and SQL in a header and in cells load as plain text; every table is still there."""
    from revops import store
    from revops.ingest import ingest_file

    db = tmp_path / "s.duckdb"
    src = tmp_path / "deals.csv"
    hostile_header = 'note"); DROP TABLE opportunities; --'
    with src.open("w", newline="") as fh:
        csv.writer(fh).writerows([["Opportunity ID", "Stage", "Opportunity Name", hostile_header],
                                  ["D1", "Prospecting", HOSTILE, "'; DELETE FROM _uploads; --"],
                                  ["D2", "Closed Won", "Robert\"); DROP TABLE leads;--", "ok"]])
    before = _tables(db)
    result = ingest_file(db, src, "opportunities", user="tester")
    assert result.rows_loaded == 2
    assert _tables(db) == before
    with store.connect(db) as con:
        names = sorted(r[0] for r in con.execute("SELECT opportunity_name FROM opportunities").fetchall())
        extras = " ".join(r[0] for r in con.execute("SELECT data FROM _extras").fetchall())
        uploads = con.execute("SELECT count(*) FROM _uploads").fetchall()[0][0]
    assert names == sorted([HOSTILE, "Robert\"); DROP TABLE leads;--"])
    assert "DELETE FROM _uploads" in extras and uploads == 1  # kept aside as data, never run


def test_hostile_mapping_target_is_refused(tmp_path):
    """A --map target that is not a column of the table is refused by name, not pasted into SQL."""
    from revops.errors import UserError
    from revops.ingest import preview

    data = b"Opportunity ID,Stage,Name\nD1,Prospecting,x\n"
    with pytest.raises(UserError, match="has no column"):
        preview(data, "d.csv", "opportunities", {"Name": 'opportunity_name" TEXT); DROP TABLE accounts; --'})


def test_hostile_scenario_name_round_trips(tmp_path):
    """A scenario saved under a name full of quotes and SQL comes back under exactly that name."""
    from revops.forecast import Levers
    from revops.scenarios import delete_scenario, load_scenarios, save_scenario

    db = tmp_path / "s.duckdb"
    levers = Levers(win_rate=0.25, avg_deal_size=1000.0, sales_cycle_days=30.0, pipeline_created_per_month=10.0,
                    gross_churn_rate=0.01, expansion_rate=0.01)
    stored = save_scenario(db, HOSTILE, levers)
    assert stored == HOSTILE and HOSTILE in load_scenarios(db)
    assert delete_scenario(db, HOSTILE) and load_scenarios(db) == {}


def _sql_f_strings(source: str) -> list[tuple[int, str]]:
    """(line, source) of every f-string handed to DuckDB's execute/sql/query in a module."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and _func_name(node.func) in ("execute", "sql", "query") and node.args
                and isinstance(node.args[0], ast.JoinedStr)):
            found.append((node.lineno, ast.unparse(node.args[0])))
    return found


def test_sql_text_interpolates_only_quoted_identifiers_and_numbers():
    """Every value interpolated into SQL text is a quoted identifier, a schema-built fragment or a number.

    Reviewed by hand: each name in ALLOWED below is built from the schema (revops/schema.py), from
    constants, or is an int; user text always travels as a ? parameter or an Arrow frame.
    """
    allowed = {
        # identifiers quoted by uploads._q / f'"{name}"', or built from schema columns
        "_q", "t", "undo", "keys", "match", "incoming", "changed_src", "names", "cols", "specs", "table",
        "name", "columns", "same_day", "mine", "later_rows", "_IN", "_CHANGED", "_OLD", "skip_lines", "where",
        "select_sql", "_typed_select", "_key_match", "_touched", "size", "left", "right", "k", "op",
        # frames.TableReader: schema column names given as literals by its callers, and the snapshot columns
        "column", "parts", "SNAPSHOT_COLUMNS",
        # revops.reads: column names checked against the schema by _ident, dates written by _day from date
        # objects, fragments built from those (picked, scan, counts), a file of its own temporary folder
        "picked", "scan", "counts", "keys_file",
        # revops.store's SQL builders (store.select_sql: schema column names)
        "store",
    }
    # Calls that check what they quote: revops.reads._ident (a column of the schema) and _day (a date object).
    sanitizers = {"_ident", "_day"}

    def offenders_in(source: str, where: str) -> list[str]:
        out = []
        for line, text in _sql_f_strings(source):
            tree = ast.parse(text, mode="eval")
            for value in (n for n in ast.walk(tree) if isinstance(n, ast.FormattedValue)):
                if isinstance(value.value, ast.Call) and _func_name(value.value.func) in sanitizers:
                    continue  # the sanitizer refuses anything but a schema column or a date object
                names = {n.id for n in ast.walk(value.value) if isinstance(n, ast.Name)}
                names |= {_func_name(n.func) for n in ast.walk(value.value) if isinstance(n, ast.Call)}
                if not names or not names <= allowed | {"str", "int", "join", "map", "format"}:
                    out.append(f"{where}:{line}: {ast.unparse(value.value)}")
        return out

    # The check itself: a value from outside the list is caught.
    assert offenders_in("con.execute(f'SELECT * FROM t WHERE name = {user_text}')", "x") == ["x:1: user_text"]
    assert offenders_in("con.execute(f'SELECT {_ident(t, c)} WHERE {_day(d)} AND {_other(u)}')", "x") == ["x:1: _other(u)"]
    scanned = 0
    found: list[str] = []
    for path in sorted((ROOT / "revops").rglob("*.py")):
        source = path.read_text()
        scanned += len(_sql_f_strings(source))
        found += offenders_in(source, str(path.relative_to(ROOT)))
    assert scanned >= 10  # the store, uploads and undo build their SQL this way
    assert not found, "SQL built from a value not known to be safe:\n" + "\n".join(found)


# --- uploaded markup on the page ---------------------------------------------------------------------------------

MARKUP = "<script>alert(1)</script>"


def _data_page(tmp_path, monkeypatch):
    """The Data page of the app on an empty workspace file, and that file."""
    from streamlit.testing.v1 import AppTest

    from revops import store

    db = tmp_path / "x.duckdb"
    with store.connect(db):
        pass
    monkeypatch.setenv("REVOPS_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/data.py")
    at.run()
    return at, db


def test_uploaded_markup_is_shown_as_text_on_the_data_page(tmp_path, monkeypatch):
    """A file named and filled with <script>/<img onerror> loads, and the page shows those names as text only."""
    at, db = _data_page(tmp_path, monkeypatch)
    body = (f"Opportunity ID,Stage,Opportunity Name,Amount\nD1,Prospecting,{MARKUP},100\n"
            f"D2,Closed Won,<img src=x onerror=alert(2)>,50\n")
    at.file_uploader[0].set_value((f"{MARKUP}.csv", body.encode(), "text/csv"))
    at.run()
    next(b for b in at.button if b.label.startswith("Load ")).click()
    at.run()
    assert not at.exception, at.exception
    from revops import store

    with store.connect(db) as con:
        assert {r[0] for r in con.execute("SELECT opportunity_name FROM opportunities").fetchall()} == {
            MARKUP, "<img src=x onerror=alert(2)>"}
    # Markdown escapes (\<script\>) are invisible on the page: compare without them.
    shown = [e for e in [*at.markdown, *at.caption, *at.success, *at.info] if MARKUP in e.value.replace("\\", "")]
    assert shown, "the upload's file name should be on the page (upload log, success message)"
    assert not [e for e in shown if getattr(e, "allow_html", False)]
    assert not at.get("html")


LINK = "[click me](http://evil.example)"


def test_markdown_links_in_headers_and_file_names_stay_text(tmp_path, monkeypatch):
    """A header and a file name written as a markdown link are shown escaped: no element renders a link."""
    at, _ = _data_page(tmp_path, monkeypatch)
    body = f"Opportunity ID,Stage,Amount,{LINK}\nD1,Prospecting,100,x\n"
    at.file_uploader[0].set_value((f"{LINK}.csv", body.encode(), "text/csv"))
    at.run()
    labels = [s.label for s in at.selectbox]
    captions = [c.value for c in at.caption]
    assert any("click me" in text for text in labels + captions), "the odd header should be on the page"
    next(b for b in at.button if b.label.startswith("Load ")).click()
    at.run()
    assert not at.exception, at.exception
    texts = [e.value for e in [*at.markdown, *at.caption, *at.success, *at.info, *at.error]] + labels
    raw = [t for t in texts if LINK in t]  # unescaped: a markdown renderer would make it a link
    assert not raw, raw
    assert any("click me" in t for t in texts)


def test_data_page_explains_the_upload_limit(tmp_path, monkeypatch):
    """The uploader's help names the configured limit and where it is set."""
    import tomllib

    from streamlit.testing.v1 import AppTest

    from revops import store

    with store.connect(tmp_path / "empty.duckdb"):
        pass  # an empty workspace: no demo company to build first
    monkeypatch.setenv("REVOPS_DB", str(tmp_path / "empty.duckdb"))
    limit = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/data.py")
    at.run()
    help_text = at.file_uploader[0].help
    assert f"{limit} MB" in help_text and "server.maxUploadSize" in help_text


def test_sql_sanitizers_refuse_anything_but_schema_columns_and_dates():
    """reads._ident quotes only a column of the table's schema; reads._day writes only a date object."""
    import datetime as dt

    from revops.reads import _day, _ident

    assert _ident("opportunities", "amount") == '"amount"'
    assert _day(dt.date(2024, 2, 29)) == "DATE '2024-02-29'"
    with pytest.raises(ValueError):
        _ident("opportunities", 'amount" ; DROP TABLE opportunities; --')
    with pytest.raises(TypeError):
        _day("2024-02-29' OR 1=1 --")  # type: ignore[arg-type]
    assert _ident(None, "code") == '"code"'
    with pytest.raises(ValueError):
        _ident(None, 'code"')
