"""The statistical layer of a year: one row per enterprise of the population (its accepted
return, or its imputed values: §6), and the cells of the linked public tables with everything
disclosure control needs (monitoring-tables.md §1-§2)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import sql, tabulation
from pipeline.config import Settings, closed_dir
from pipeline.imputation import RETURN_COLUMNS
from pipeline.population import IMPUTED, imputed_enterprises, no_frame, read_frame
from pipeline.sql import statement
from pipeline.valid import valid_returns
from pipeline.validate import CELL_STATUS
from schemas import reference
from schemas.form import FORM_COLUMNS

#: What disclosure control writes beside the cells (pipeline/protect.py): the cells with their
#: statuses, and the record of what was hidden and audited. Removed first here: cells protected
#: for earlier cells must never be published beside the new tables.
PROTECTED_CELLS, DISCLOSURE_RECORD = "cells_protected.parquet", "disclosure.json"
PROTECTED_FILES = (PROTECTED_CELLS, DISCLOSURE_RECORD)


def aggregate_year(settings: Settings, year: int) -> dict:
    """Write statistical/<year>/enterprises.parquet (the population, imputed enterprises
    included) and cells.parquet from the valid layer and the survey frame."""
    out_dir = settings.statistical_dir(year)
    closed_dir(out_dir)
    enterprises, cells = out_dir / "enterprises.parquet", out_dir / "cells.parquet"
    for name in PROTECTED_FILES:
        (out_dir / name).unlink(missing_ok=True)
    frame = read_frame(settings, year)
    con = connect(settings)
    try:
        valid_returns(settings, year, con)
        con.sql(statement("accepted")).create_view("accepted")
        # Imputation takes this year's returns in memory; without a frame it has nothing to do.
        returns = con.sql("select " + ", ".join(RETURN_COLUMNS) + " from accepted"
                          + ("" if frame else " limit 0")).pl()
        imputed = imputed_enterprises(settings, year, frame or no_frame(), returns)
        con.register("imputed", imputed.to_arrow())
        _write(con.sql(statement("statistical")), enterprises)
        tabulate(con, enterprises)
        _write(con.sql(statement("cells"), params={"has_frame": frame is not None}), cells)
        # Counted from the files written: the accepted returns are its rows not imputed (counting
        # the view would read the valid layer again, a second at 5M returns).
        population, returned = con.execute(
            "select count(*), count(*) filter (where imputation is null) from read_parquet(?)",
            [str(enterprises)]).fetchall()[0]
        cell_count = con.execute("select count(*) from read_parquet(?)",
                                 [str(cells)]).fetchall()[0][0]
    finally:
        con.close()
    by_method = imputed["imputation"].value_counts().rows()
    return {"enterprises_path": str(enterprises), "cells_path": str(cells),
            "enterprises": population, "cells": cell_count, "returns": returned,
            "imputed": {"ratio": 0, "donor": 0} | dict(by_method)}


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A step's DuckDB (pipeline.sql.connect) with the tabulation and the code lists as tables
    (tabulation.register), the macros `placed` (placed.sql) and `part_sums` (part_sums.sql),
    industry_sections (GB/T 4754 class → section letter) and the type `cell_statuses`."""
    con = sql.connect(settings)
    tabulation.register(con)
    con.execute(statement("placed"))
    con.execute(statement("part_sums"))
    # A struct of one-byte letters, one per form column: DuckDB reads the statuses as strings,
    # and ordering the population by credit code carried 33 of them a row (3.7 s, against
    # 2.2 s with this type, at a million returns). Parquet stores either as strings.
    con.execute("create type cell_status_letter as enum (select unnest($letters))",
                {"letters": [*CELL_STATUS.categories, IMPUTED]})
    con.execute("create type cell_statuses as struct("
                + ", ".join(f'"{name}" cell_status_letter' for name in FORM_COLUMNS) + ")")
    sections = reference.class_sections()
    con.from_arrow(pa.table({"industry_code": list(sections),
                             "section_code": list(sections.values())})
                   ).to_table("industry_sections")
    return con


#: The views a statistical layer is tabulated through, each built on those before it:
#: `reported_wide` and `reported` (each enterprise's value of each indicator, a column or a row
#: each) and `contributions` (what it adds to each cell).
TABULATION_VIEWS = ("reported_wide", "reported", "contributions")


def tabulate(con: duckdb.DuckDBPyConnection, enterprises: Path) -> None:
    """The TABULATION_VIEWS of a statistical layer."""
    con.read_parquet(str(enterprises)).create_view("enterprises")
    for view in TABULATION_VIEWS:
        con.sql(statement(view)).create_view(view)


def _write(rows: duckdb.DuckDBPyRelation, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    rows.write_parquet(str(tmp), compression="zstd")
    tmp.replace(path)
