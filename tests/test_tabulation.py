"""The tabulation declared once: placements, relations, the cells each table shows and the
region roll-ups all follow from pipeline/tabulation.py, and a new breakdown is one declaration."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest
from conftest import YEARS

from pipeline import tabulation
from pipeline.aggregate import TABULATION_VIEWS, connect
from pipeline.config import Settings
from pipeline.sql import statement
from schemas import reference
from schemas.tables import MAGNITUDES, PROVINCE, SIZE_CLASSES, TOTAL


def test_placements_are_the_levels_the_tables_show():
    assert set(tabulation.placements()) == {
        ("province", "total", "total"), ("city", "total", "total"),
        ("county", "total", "total"), ("province", "section", "total"),
        ("province", "division", "total"), ("province", "total", "class"),
        ("city", "section", "total")}


def section_two_relations(keys: list[tuple[str, str, str]]) -> set:
    """monitoring-tables.md §2's relations, written out as the text lists them."""
    present = set(keys)
    cities = [r["code"] for r in reference.regions() if r["level"] == "city"]
    counties = defaultdict(list)
    for r in reference.regions():
        if r["level"] == "county":
            counties[r["parent_code"]].append(r["code"])
    parent_of = {r["code"]: r["parent_code"] for r in reference.industries()}
    sections = sorted({i for _, i, _ in present if len(i) == 1})
    divisions = sorted({i for _, i, _ in present if len(i) == 2 and i.isdigit()})
    found = [((PROVINCE, TOTAL, TOTAL), [(c, TOTAL, TOTAL) for c in cities]),
             ((PROVINCE, TOTAL, TOTAL), [(PROVINCE, s, TOTAL) for s in sections]),
             ((PROVINCE, TOTAL, TOTAL), [(PROVINCE, TOTAL, s) for s in SIZE_CLASSES])]
    for city in cities:  # county → city; city × section → city
        found.append(((city, TOTAL, TOTAL), [(c, TOTAL, TOTAL) for c in counties[city]]))
        found.append(((city, TOTAL, TOTAL), [(city, s, TOTAL) for s in sections]))
    for section in sections:  # division → section; city × section → section
        found.append(((PROVINCE, section, TOTAL),
                      [(PROVINCE, d, TOTAL) for d in divisions if parent_of[d] == section]))
        found.append(((PROVINCE, section, TOTAL), [(c, section, TOTAL) for c in cities]))
    return {(tabulation.cell_id(parent), tuple(sorted(tabulation.cell_id(c) for c in children
                                                      if c in present)))
            for parent, children in found
            if parent in present and any(c in present for c in children)}


def test_relations_are_the_ones_section_two_lists(two_years):
    settings, _ = two_years
    cells = pl.read_parquet(settings.statistical_dir(YEARS[-1]) / "cells.parquet")
    keys = cells.select("region_code", "industry_code", "size_class").unique().rows()
    derived = {(p, tuple(sorted(c))) for p, c in tabulation.relations(keys)}
    assert derived == section_two_relations(keys)


def test_each_table_shows_its_cells(two_years):
    settings, _ = two_years
    cells = pl.read_parquet(settings.statistical_dir(YEARS[-1]) / "cells.parquet")
    keys = cells.select("region_code", "industry_code", "size_class").unique().rows()
    shown = pl.from_arrow(tabulation.table_cells(keys))
    count = dict(shown.group_by("table_name").len().rows())
    assert count["headline"] == 1 and count["by_size"] == 5
    assert count["by_region"] == len(reference.regions())
    # An industry is tabulated where its population has an enterprise, imputed ones included.
    with_enterprises = cells.filter((pl.col("indicator") == "enterprises_reporting")
                                    & (pl.col("enterprises") + pl.col("imputed") > 0))
    sections = with_enterprises.filter((pl.col("region_code") == PROVINCE)
                                       & (pl.col("industry_code").str.len_chars() == 1))
    divisions = with_enterprises.filter((pl.col("region_code") == PROVINCE)
                                        & pl.col("industry_code").str.contains(r"^\d\d$"))
    assert count["by_industry"] == 1 + sections.height + divisions.height
    crossed = shown.filter(pl.col("table_name") == "by_region_industry")
    assert set(crossed["size_class"]) == {TOTAL}
    assert set(crossed["region_code"]) == {r["code"] for r in reference.regions()
                                           if r["level"] in ("province", "city")}


def test_region_rollup_takes_a_county_to_its_city_and_the_province(tmp_path):
    con = connect(Settings(data_dir=tmp_path))
    rollup = con.sql("select code, list(ancestor order by ancestor) from region_rollup "
                     "group by code").fetchall()
    rollup = dict(rollup)
    assert rollup["330102"] == ["330000", "330100", "330102"]
    assert rollup[tabulation.UNKNOWN_REGION] == ["000000", "330000"]
    assert len(rollup) == len(reference.county_codes()) + 1


def enterprises() -> pl.DataFrame:
    """Three accepted returns, as the statistical layer holds them."""
    rows = [("913301081234567884", "330106", "3311", "small", 2.0),
            ("92330482MA2B3C4D1F", "330482", "3311", "large", 5.0),
            ("91330100799655058B", "330102", "0111", "small", 7.0)]
    frame = pl.DataFrame(rows, schema=["credit_code", "region_code", "industry_code",
                                       "size_class", "std_spending"], orient="row")
    return frame.with_columns(
        *(pl.lit(1, dtype=pl.Int64).alias(m) for m in MAGNITUDES
          if m not in ("std_spending", "financing_amount")),
        financing_amount=pl.lit(0.0), innovation_award=pl.lit("none"),
        imputation=pl.lit(None, pl.Utf8))


def cells_of(frame: pl.DataFrame, has_frame: bool = False) -> pl.DataFrame:
    # A step's DuckDB spills under the data root: here, a fresh folder.
    con = connect(Settings(data_dir=Path(tempfile.mkdtemp(prefix="cells-"))))
    con.register("enterprises", frame.to_arrow())
    for view in TABULATION_VIEWS:  # as aggregate.tabulate makes them, from a frame
        con.sql(statement(view)).create_view(view)
    return con.sql(statement("cells"), params={"has_frame": has_frame}).pl()


def test_a_new_breakdown_is_one_declaration(monkeypatch):
    # City × size class: declared here, and nothing else changes but its own SQL file.
    by_city_size = tabulation.CellTable(
        "by_city_size", {"region": ("province", "city"), "size": ("total", "class")},
        columns={"region": "city_code"})
    monkeypatch.setattr(tabulation, "CELL_TABLES", (*tabulation.CELL_TABLES, by_city_size))
    assert ("city", "total", "class") in tabulation.placements()
    cells = cells_of(enterprises()).filter(pl.col("indicator") == "std_spending")
    spending = {(r, i, s): v for r, i, s, v in
                cells.select("region_code", "industry_code", "size_class", "value").rows()}
    assert spending[("330100", TOTAL, "small")] == pytest.approx(9.0)  # 2 + 7, both Hangzhou
    assert spending[("330400", TOTAL, "large")] == pytest.approx(5.0)
    assert spending[("330100", TOTAL, "large")] == 0  # every city × size is shown
    links = {(p, tuple(sorted(c))) for p, c in tabulation.relations(list(spending))}
    assert ("330100|_T|_T", ("330100|_T|large", "330100|_T|medium", "330100|_T|micro",
                             "330100|_T|small")) in links
    small = [c for p, c in links if p == "330000|_T|small"]
    assert small and all(c.endswith("|_T|small") for c in small[0])
    columns = tabulation.table_columns("by_city_size")
    assert columns == {"city_code": "region_code", "size_class": "size_class"}


def test_cells_count_each_enterprise_once_per_placement():
    cells = cells_of(enterprises())
    reporting = cells.filter(pl.col("indicator") == "enterprises_reporting")
    province = reporting.filter((pl.col("region_code") == PROVINCE)
                                & (pl.col("industry_code") == TOTAL)
                                & (pl.col("size_class") == TOTAL))
    assert province["value"].item() == 3
    sections = reporting.filter((pl.col("region_code") == PROVINCE)
                                & (pl.col("industry_code").str.len_chars() == 1))
    assert sorted(sections.select("industry_code", "value").rows()) == [("A", 1.0), ("C", 2.0)]
    assert reporting.filter(pl.col("region_code") == "330106")["value"].sum() == 1


def test_amounts_add_up_to_the_same_total_in_any_order():
    # 0.1 + 0.2 + 0.3 is 0.6000000000000001 added as doubles in this order and 0.6 in the
    # other: a total that depends on the order its rows come in (DuckDB's threads decide it)
    # would publish other bytes when a year runs again.
    spending = enterprises().with_columns(std_spending=pl.Series([0.1, 0.2, 0.3]))
    totals = []
    for frame in (spending, spending.reverse()):
        cells = cells_of(frame).filter((pl.col("indicator") == "std_spending")
                                       & (pl.col("region_code") == PROVINCE)
                                       & (pl.col("industry_code") == TOTAL)
                                       & (pl.col("size_class") == TOTAL))
        totals.append(cells["value"].item())
    assert totals == [0.6, 0.6]  # the decimal sum of what was reported, to the double nearest
