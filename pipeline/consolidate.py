"""De-duplicate a year's checked rows in DuckDB: every row gets its outcome (the valid layer)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from pipeline.config import Settings
from pipeline.ingest import RAW_META_COLUMNS
from pipeline.sql import statement
from pipeline.validate import check_returns
from schemas.form import FORM_COLUMNS


def deduplicate(settings: Settings, year: int, checked_paths: list[str]) -> dict:
    """Decide D201/D202 across all files of the year; writes valid/<year>/returns.parquet."""
    out = settings.valid_path(year)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".parquet.tmp")
    con = duckdb.connect()
    try:
        _checked(con, checked_paths).create_view("checked")
        con.sql(statement("outcomes")).write_parquet(str(tmp), compression="zstd")
        counts = con.execute(
            "select outcome, count(*) from read_parquet(?) group by outcome", [str(tmp)]
        ).fetchall()
    finally:
        con.close()
    tmp.replace(out)
    return {"valid_path": str(out), "rows": sum(n for _, n in counts), **dict(counts)}


def _checked(con: duckdb.DuckDBPyConnection, checked_paths: list[str]):
    if checked_paths:
        return con.read_parquet([str(Path(p)) for p in checked_paths])
    # A year whose every file was quarantined still has a (empty) valid layer.
    empty = pl.DataFrame(schema={c: pl.Utf8 for c in (*RAW_META_COLUMNS, *FORM_COLUMNS)})
    empty = empty.with_columns(pl.col("source_row").cast(pl.Int64))
    return con.from_arrow(check_returns(empty, 0).to_arrow())
