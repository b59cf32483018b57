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


def _is_safe_csv(expr: ast.AST, assigned: dict[str, list[ast.AST]], depth: int = 0) -> bool:
    """Whether an expression is (or lazily yields) to_csv_bytes(...)."""
    if depth > 5:
        return False
    if isinstance(expr, ast.Call) and _func_name(expr.func) == "to_csv_bytes":
        return True
    if isinstance(expr, ast.Call) and _func_name(expr.func) == "partial" and expr.args:
        return _func_name(expr.args[0]) == "to_csv_bytes"  # functools.partial(to_csv_bytes, frame): built on click
    if isinstance(expr, ast.Lambda):
        return _is_safe_csv(expr.body, assigned, depth + 1)
    if isinstance(expr, ast.Name) and expr.id in assigned:
        return all(_is_safe_csv(v, assigned, depth + 1) for v in assigned[expr.id])
    return False


def unsafe_downloads(source: str) -> list[int]:
    """Line numbers of download_button calls whose data is not produced by to_csv_bytes."""
    tree = ast.parse(source)
    assigned = _assignments(tree)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _func_name(node.func) == "download_button":
            data = next((k.value for k in node.keywords if k.arg == "data"), None)
            if data is None and len(node.args) >= 2:
                data = node.args[1]
            if data is None or not _is_safe_csv(data, assigned):
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
    )
    assert unsafe_downloads(bad) == [1, 2, 4, 5]
    good = (
        "st.download_button('a', to_csv_bytes(df))\n"
        "st.download_button('b', data=export.to_csv_bytes(df), file_name='x.csv')\n"
        "blob = to_csv_bytes(df)\ncol.download_button('c', blob)\n"
        "st.sidebar.download_button('d', data=lambda: to_csv_bytes(df))\n"
        "st.download_button('e', data=functools.partial(to_csv_bytes, df))\n"
    )
    assert unsafe_downloads(good) == []


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
