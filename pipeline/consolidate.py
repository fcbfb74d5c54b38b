"""De-duplicate a year's checked rows in DuckDB: every row gets its outcome (the valid layer).

The valid layer is written as pipeline.valid describes it, and read through that module.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl

from pipeline.config import Settings, closed_dir
from pipeline.ingest import RAW_META_COLUMNS, write_working_layer
from pipeline.sql import connect, statement
from pipeline.valid import checked_parts
from pipeline.validate import check_returns
from schemas.form import FORM_COLUMNS


def deduplicate(settings: Settings, year: int, checked_paths: list[str]) -> dict:
    """Decide D201/D202 across every checked batch of the year; writes valid/<year>/."""
    valid = settings.valid_dir(year)
    building, old = valid.with_name(f".{year}.building"), valid.with_name(f".{year}.old")
    for leftover in (building, old):  # from a run that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    parts = closed_dir(building / "returns")
    # Sorted, so the valid layer's row order does not depend on which worker finished first.
    for path in sorted({Path(p) for p in checked_paths}):  # a batch's files share one
        os.link(path, parts / path.name)
    if not checked_paths:  # a year whose every file was quarantined has an empty valid layer
        write_working_layer(_no_returns(), parts / "empty.parquet")
    con = connect(settings)
    try:
        con.read_parquet(checked_parts(building)).create_view("checked")
        outcomes = con.sql(statement("outcomes")).pl()
    finally:
        con.close()
    outcomes.write_parquet(building / "outcomes.parquet", compression="zstd")
    # Two renames: the year's lock keeps every reader out of the gap between them.
    if valid.exists():
        valid.rename(old)
    building.rename(valid)
    shutil.rmtree(old, ignore_errors=True)
    counts = outcomes["outcome"].value_counts().rows()
    return {"valid_dir": str(valid), "rows": outcomes.height, **dict(counts)}


def _no_returns() -> pl.DataFrame:
    empty = pl.DataFrame(schema={c: pl.Utf8 for c in (*RAW_META_COLUMNS, *FORM_COLUMNS)})
    return check_returns(empty.with_columns(pl.col("source_row").cast(pl.Int64)), 0)
