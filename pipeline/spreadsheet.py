"""Text a person opens in a spreadsheet stays text: no formula, link or command from a return
becomes live (OWASP, "CSV Injection")."""

from __future__ import annotations

import re
from collections.abc import Iterable
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


#: Rows read, escaped and written at a time: DuckDB's row group, so each slice decodes one.
CHUNK_ROWS = 122_880


def write_csv_for_excel(frame: pl.DataFrame, path: Path) -> None:
    """CSV in UTF-8 with a BOM (which Excel needs to read Chinese), every text cell inert and
    quoted; written whole or not at all."""
    _write_chunks([frame], path)


def write_parquet_as_csv_for_excel(parquet: Path, path: Path) -> None:
    """The parquet file as write_csv_for_excel writes it, a slice of CHUNK_ROWS at a time."""
    # Sliced rather than sink_csv: polars' streaming sink held ~1 GB on 6M follow-up rows.
    rows = pl.scan_parquet(parquet, glob=False)
    height = rows.select(pl.len()).collect().item()
    # One slice even when empty, so the BOM and header are written.
    _write_chunks((rows.slice(start, CHUNK_ROWS).collect()
                   for start in range(0, max(height, 1), CHUNK_ROWS)), path)


def _write_chunks(chunks: Iterable[pl.DataFrame], path: Path) -> None:
    """The chunks as one CSV, BOM and header before the first."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        for i, chunk in enumerate(chunks):
            text = [c for c, dtype in chunk.schema.items() if dtype == pl.Utf8]
            chunk.with_columns(inert(pl.col(c)).alias(c) for c in text).write_csv(
                out, include_bom=i == 0, include_header=i == 0, quote_style="non_numeric")
    tmp.replace(path)
