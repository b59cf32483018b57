"""CSV downloads that a spreadsheet opens safely: formula-looking text is escaped, numbers stay numbers."""
from __future__ import annotations

import polars as pl

# A cell starting with one of these is run as a formula by Excel, Sheets and LibreOffice.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix a quote to every text cell a spreadsheet would run; other columns are untouched."""
    pattern = r"^[=+\-@\t\r]"
    exprs = [
        pl.when(pl.col(name).str.contains(pattern)).then(pl.lit("'") + pl.col(name)).otherwise(pl.col(name)).alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    ]
    frame = frame.with_columns(exprs) if exprs else frame
    # Headers come from users too (a rejects file keeps the upload's own layout), so they get the same guard.
    renames = {name: f"'{name}" for name in frame.columns if name.startswith(FORMULA_PREFIXES)}
    return frame.rename(renames) if renames else frame


def to_csv_bytes(frame: pl.DataFrame) -> bytes:
    """The frame as UTF-8 CSV (with BOM, so Excel reads accents right), formulas escaped."""
    safe = escape_formulas(frame.with_columns(
        pl.col(name).cast(pl.String) for name, dtype in frame.schema.items()
        if dtype in (pl.Categorical, pl.Enum) or isinstance(dtype, (pl.List, pl.Struct, pl.Object))
    ))
    return b"\xef\xbb\xbf" + safe.write_csv().encode("utf-8")
