"""De-duplicate a year's checked rows in DuckDB: every row gets its outcome (the valid layer)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from pipeline.config import Settings, closed_dir
from pipeline.ingest import RAW_META_COLUMNS
from pipeline.sql import statement
from pipeline.validate import check_returns
from schemas.form import FORM_COLUMNS


def deduplicate(settings: Settings, year: int, checked_paths: list[str]) -> dict:
    """Decide D201/D202 across all files of the year; writes valid/<year>/returns.parquet."""
    # Sorted, so the valid layer's row order does not depend on which worker finished first.
    checked_paths = sorted(str(Path(p)) for p in checked_paths)
    out = settings.valid_path(year)
    closed_dir(out.parent)
    tmp = out.with_suffix(".parquet.tmp")
    checked = _checked(checked_paths)
    con = duckdb.connect()
    try:
        # DuckDB decides outcomes reading only keys and form columns, into a narrow result …
        if checked_paths:
            con.read_parquet(checked_paths).create_view("checked")
        else:
            con.from_arrow(checked.collect().to_arrow()).create_view("checked")
        outcomes = con.sql(statement("outcomes")).pl()
    finally:
        con.close()
    # … and the wide rows stream through once, in file and row order, to take them.
    (
        checked.join(outcomes.lazy(), on=["source_file", "source_row"], how="left",
                     maintain_order="left")
        .drop("unread_text")
        .sink_parquet(tmp, compression="zstd")
    )
    tmp.replace(out)
    counts = outcomes["outcome"].value_counts().rows()
    return {"valid_path": str(out), "rows": outcomes.height, **dict(counts)}


def _checked(checked_paths: list[str]) -> pl.LazyFrame:
    if checked_paths:
        return pl.scan_parquet(checked_paths, glob=False)
    # A year whose every file was quarantined still has a (empty) valid layer.
    empty = pl.DataFrame(schema={c: pl.Utf8 for c in (*RAW_META_COLUMNS, *FORM_COLUMNS)})
    empty = empty.with_columns(pl.col("source_row").cast(pl.Int64))
    return check_returns(empty, 0).lazy()
