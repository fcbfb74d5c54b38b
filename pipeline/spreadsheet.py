"""Text a person opens in a spreadsheet stays text: no formula, link or command from a return
becomes live (OWASP, "CSV Injection")."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

#: A cell that starts with one of these is read as a formula by Excel, LibreOffice or WPS (a tab
#: or CR is dropped first, then the rest is read). The full-width forms are what Chinese input
#: methods type, and some spreadsheet locales convert them.
FORMULA_STARTS = "=+-@\t\r＝＋－＠"
_FORMULA = "^[" + re.escape(FORMULA_STARTS) + "]"


def inert(text: pl.Expr) -> pl.Expr:
    """The text with a leading apostrophe where it would start a formula: the spreadsheet shows
    what was received, apostrophe first, and computes nothing."""
    return pl.when(text.str.contains(_FORMULA)).then(pl.lit("'") + text).otherwise(text)


def write_csv_for_excel(frame: pl.DataFrame, path: Path) -> None:
    """CSV in UTF-8 with a BOM (which Excel needs to read Chinese), every text cell inert and
    quoted; written whole or not at all."""
    text = [c for c, dtype in frame.schema.items() if dtype == pl.Utf8]
    tmp = path.with_name(path.name + ".tmp")
    frame.with_columns(inert(pl.col(c)).alias(c) for c in text).write_csv(
        tmp, include_bom=True, quote_style="non_numeric")
    tmp.replace(path)
