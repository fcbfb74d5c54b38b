"""The statistical layer of a year: one accepted return per enterprise, and the cells of the
linked public tables with everything disclosure control needs (monitoring-tables.md §1-§2)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.config import Settings
from pipeline.disclosure import Relation
from pipeline.sql import statement
from schemas import reference
from schemas.tables import INDICATORS, PROVINCE, SIZE_CLASSES, TOTAL

#: What disclosure control writes beside the cells (pipeline/disclosure.py).
PROTECTED_CELLS = "cells_protected.parquet"


def aggregate_year(settings: Settings, year: int) -> dict:
    """Write statistical/<year>/enterprises.parquet and cells.parquet from the valid layer."""
    out_dir = settings.statistical_dir(year)
    out_dir.mkdir(parents=True, exist_ok=True)
    enterprises, cells = out_dir / "enterprises.parquet", out_dir / "cells.parquet"
    # Protected cells of earlier cells must never be published beside the new tables.
    (out_dir / PROTECTED_CELLS).unlink(missing_ok=True)
    con = connect_reference()
    try:
        con.read_parquet(str(settings.valid_path(year))).create_view("returns")
        _write(con.sql(statement("statistical")), enterprises)
        con.read_parquet(str(enterprises)).create_view("enterprises")
        _write(con.sql(statement("cells")), cells)
        counts = con.execute(
            "select (select count(*) from read_parquet(?)), (select count(*) from read_parquet(?))",
            [str(enterprises), str(cells)]).fetchall()[0]
    finally:
        con.close()
    return {"enterprises_path": str(enterprises), "cells_path": str(cells),
            "enterprises": counts[0], "cells": counts[1]}


def connect_reference() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the code lists as tables: regions, industries,
    industry_sections and indicators."""
    con = duckdb.connect()
    con.read_csv(str(reference.REFERENCE_DIR / "zhejiang_regions.csv"),
                 all_varchar=True).to_table("regions")
    con.read_csv(str(reference.REFERENCE_DIR / "industry_gbt4754_2017.csv"),
                 all_varchar=True).to_table("industries")
    sections = reference.class_sections()
    con.from_arrow(pa.table({"industry_code": list(sections),
                             "section_code": list(sections.values())})
                   ).to_table("industry_sections")
    con.from_arrow(pa.table({"indicator": list(INDICATORS),
                             "position": list(range(len(INDICATORS)))})
                   ).to_table("indicators")
    return con


def _write(rows: duckdb.DuckDBPyRelation, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    rows.write_parquet(str(tmp), compression="zstd")
    tmp.replace(path)


def cell_id(region_code: str, industry_code: str, size_class: str) -> str:
    return f"{region_code}|{industry_code}|{size_class}"


def relations(cell_keys: list[tuple[str, str, str]]) -> list[Relation]:
    """Every additive relation among the cells (§2): county → city → province, division →
    section → total, size classes → total, city × section → city and section totals."""
    present = set(cell_keys)
    cities = [r["code"] for r in reference.regions() if r["level"] == "city"]
    counties_of = defaultdict(list)
    for region in reference.regions():
        if region["level"] == "county":
            counties_of[region["parent_code"]].append(region["code"])
    section_of_division = {r["code"]: r["parent_code"] for r in reference.industries()
                           if r["level"] == "division"}
    sections = sorted({i for r, i, s in present if r == PROVINCE and s == TOTAL
                       and i in section_of_division.values()})
    divisions_of = defaultdict(list)
    for region, industry, size in sorted(present):
        if region == PROVINCE and size == TOTAL and industry in section_of_division:
            divisions_of[section_of_division[industry]].append(industry)
    found: list[tuple[tuple[str, str, str], list[tuple[str, str, str]]]] = [
        ((PROVINCE, TOTAL, TOTAL), [(city, TOTAL, TOTAL) for city in cities]),
        ((PROVINCE, TOTAL, TOTAL), [(PROVINCE, section, TOTAL) for section in sections]),
        ((PROVINCE, TOTAL, TOTAL), [(PROVINCE, TOTAL, size) for size in SIZE_CLASSES]),
    ]
    for city in cities:
        found.append(((city, TOTAL, TOTAL), [(county, TOTAL, TOTAL)
                                             for county in counties_of[city]]))
        found.append(((city, TOTAL, TOTAL), [(city, section, TOTAL) for section in sections]))
    for section in sections:
        found.append(((PROVINCE, section, TOTAL), [(PROVINCE, d, TOTAL)
                                                   for d in divisions_of[section]]))
        found.append(((PROVINCE, section, TOTAL), [(city, section, TOTAL) for city in cities]))
    # A child cell without enterprises is absent, and zero: it drops out of its sum.
    return [
        Relation(cell_id(*parent), tuple(cell_id(*c) for c in children if c in present))
        for parent, children in found
        if parent in present and any(c in present for c in children)
    ]
