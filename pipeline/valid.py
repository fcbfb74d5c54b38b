"""The valid layer of a year, valid/<year>/: every data row typed, with its findings and outcome.

It is the year's checked batches as the check step wrote them (hard links under returns/: a
million wide rows cost seconds to write again) and outcomes.parquet, one row per data row with
its outcome, which de-duplication writes; the readers here join the two.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from pipeline.config import Settings
from pipeline.sql import statement


def valid_returns(settings: Settings, year: int, con: duckdb.DuckDBPyConnection) -> None:
    """The view `returns` on con: every checked row of the year with its outcome."""
    valid = settings.valid_dir(year)
    con.read_parquet(checked_parts(valid)).create_view("valid_checked")
    con.read_parquet(str(valid / "outcomes.parquet")).create_view("valid_outcomes")
    con.sql(statement("valid_returns")).create_view("returns")


def scan_valid_returns(settings: Settings, year: int) -> pl.LazyFrame:
    """Every checked row of the year with its outcome, in batch, file and row order."""
    valid = settings.valid_dir(year)
    return (pl.scan_parquet(checked_parts(valid), glob=False).drop("unread_text")
            .join(pl.scan_parquet(valid / "outcomes.parquet", glob=False),
                  on=["source_file", "source_row"], how="inner", maintain_order="left"))


def has_valid_returns(settings: Settings, year: int) -> bool:
    return (settings.valid_dir(year) / "outcomes.parquet").exists()


def checked_parts(valid: Path) -> list[str]:
    """The checked batches of a valid layer (paths, never a pattern)."""
    return sorted(str(p) for p in (valid / "returns").iterdir())
