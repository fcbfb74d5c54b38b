"""The tabulation, declared once (monitoring-tables.md §2): the dimensions a cell is placed by,
their hierarchies, and the cells each public table shows.

Everything else comes from here: the placements the aggregation SQL joins (each enterprise
counts in one cell per placement), the additive relations disclosure control uses, the region
roll-ups of data quality, and the cells each public table selects. Adding a breakdown is one
CellTable below and one SQL file that names its columns.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache

import duckdb
import pyarrow as pa

from schemas import reference
from schemas.tables import INDICATORS, MAGNITUDES, SIZE_CLASSES, TOTAL

#: Rows whose region could not be read count here in data quality (and in the province).
UNKNOWN_REGION = "000000"


@dataclass(frozen=True)
class Dimension:
    """A coordinate of every cell: its codes in a hierarchy, coarsest level first."""

    name: str
    #: The cell's column for this coordinate (cells.parquet, restricted `cells`), also the
    #: statistical layer's column holding an enterprise's finest code.
    column: str
    levels: tuple[str, ...]
    #: Every code is tabulated even where no enterprise counts in it (a region, a size class);
    #: otherwise (industries) only codes with enterprises are.
    complete: bool

    @property
    def total(self) -> str:
        """The one code of the coarsest level."""
        return next(code for code, level, _ in self.members() if level == self.levels[0])

    def members(self) -> tuple[tuple[str, str, str | None], ...]:
        """(code, level, parent code) of every tabulated code."""
        return _members(self.name)

    def level_of(self) -> dict[str, str]:
        return {code: level for code, level, _ in self.members()}

    def children(self) -> dict[str, list[str]]:
        return _children(self.name)

    def ancestors(self) -> dict[str, dict[str, str]]:
        """An enterprise's finest code → {level: the code it counts in at that level}."""
        return _ancestors(self.name)


REGION = Dimension("region", "region_code", ("province", "city", "county"), True)
INDUSTRY = Dimension("industry", "industry_code", ("total", "section", "division"), False)
SIZE = Dimension("size", "size_class", ("total", "class"), True)
DIMENSIONS = (REGION, INDUSTRY, SIZE)


@cache
def _members(name: str) -> tuple[tuple[str, str, str | None], ...]:
    if name == "region":
        return tuple((r["code"], r["level"], r["parent_code"] or None)
                     for r in reference.regions())
    if name == "industry":
        tabulated = [(r["code"], r["level"], r["parent_code"] or TOTAL)
                     for r in reference.industries() if r["level"] in ("section", "division")]
        return ((TOTAL, "total", None), *tabulated)
    return ((TOTAL, "total", None), *((size, "class", TOTAL) for size in SIZE_CLASSES))


@cache
def _children(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for code, _, parent in _members(name):
        if parent is not None:
            out[parent].append(code)
    return out


@cache
def _ancestors(name: str) -> dict[str, dict[str, str]]:
    if name == "region":
        parent = {r["code"]: r["parent_code"] for r in reference.regions()}
        level = {r["code"]: r["level"] for r in reference.regions()}
        finest = reference.county_codes()
    elif name == "industry":
        parent = {r["code"]: r["parent_code"] or TOTAL for r in reference.industries()}
        level = {r["code"]: r["level"] for r in reference.industries()} | {TOTAL: "total"}
        finest = reference.industry_classes()
    else:
        parent = dict.fromkeys(SIZE_CLASSES, TOTAL)
        level = dict.fromkeys(SIZE_CLASSES, "class") | {TOTAL: "total"}
        finest = list(SIZE_CLASSES)
    out = {}
    for code in finest:
        chain, node = {}, code
        while node:
            chain[level[node]] = node
            node = parent.get(node)
        out[code] = chain
    return out


@dataclass(frozen=True)
class CellTable:
    """A public table of cells: the levels of each dimension it shows (the others: total)."""

    name: str
    levels: dict[str, tuple[str, ...]]
    #: The table's own name for a dimension's code column, where it differs from the cell's.
    columns: dict[str, str] = field(default_factory=dict)

    def span(self, dimension: Dimension) -> tuple[str, ...]:
        return self.levels.get(dimension.name, dimension.levels[:1])

    def column(self, dimension: Dimension) -> str | None:
        """The table's column for a dimension, or None when it shows the total only."""
        if dimension.name not in self.levels:
            return None
        return self.columns.get(dimension.name, dimension.column)


CELL_TABLES = (
    CellTable("headline", {}),
    CellTable("by_region", {"region": ("province", "city", "county")}),
    CellTable("by_industry", {"industry": ("total", "section", "division")}),
    CellTable("by_size", {"size": ("total", "class")}),
    CellTable("by_region_industry",
              {"region": ("province", "city"), "industry": ("total", "section")},
              columns={"region": "city_code", "industry": "section_code"}),
)

CellKey = tuple[str, str, str]  # (region_code, industry_code, size_class)


def placements() -> list[tuple[str, str, str]]:
    """The levels (region, industry, size) of every cell some table shows: an enterprise counts
    in one cell per placement."""
    found = {combo for table in CELL_TABLES
             for combo in itertools.product(*(table.span(d) for d in DIMENSIONS))}
    return sorted(found, key=lambda combo: tuple(
        d.levels.index(level) for d, level in zip(DIMENSIONS, combo, strict=True)))


def always_tabulated() -> list[CellKey]:
    """Cells shown even without enterprises: every code of the complete dimensions, crossed
    with the totals of the others."""
    cells = set()
    for combo in placements():
        codes = []
        for dimension, level in zip(DIMENSIONS, combo, strict=True):
            if dimension.complete or level == dimension.levels[0]:
                codes.append([code for code, at, _ in dimension.members() if at == level])
            else:
                codes.append([])
        cells.update(itertools.product(*codes))
    return sorted(cells)


def _levels(key: CellKey) -> tuple[str, str, str]:
    return tuple(_level_of(d.name)[code] for d, code in zip(DIMENSIONS, key, strict=True))


@cache
def _level_of(name: str) -> dict[str, str]:
    return next(d for d in DIMENSIONS if d.name == name).level_of()


def cell_id(key: CellKey) -> str:
    """One text id per cell, for the disclosure solver."""
    return "|".join(key)


def relations(cells: list[CellKey]) -> list[tuple[str, tuple[str, ...]]]:
    """Every additive relation among the cells (§2), as (parent, children) cell ids: within
    each table, a cell at a level that is not the table's finest in some dimension is the sum
    of its children one level down, the other coordinates kept. A child without enterprises is
    absent, and zero: it drops out."""
    present = set(cells)
    found: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {}
    for table in CELL_TABLES:
        spans = [table.span(d) for d in DIMENSIONS]
        shown = [key for key in present
                 if all(level in span for level, span in zip(_levels(key), spans, strict=True))]
        for key in sorted(shown):
            for axis, dimension in enumerate(DIMENSIONS):
                level, span = _levels(key)[axis], spans[axis]
                if span.index(level) == len(span) - 1:
                    continue
                children = [key[:axis] + (child,) + key[axis + 1:]
                            for child in dimension.children()[key[axis]]]
                children = tuple(cell_id(c) for c in children if c in present)
                if children:
                    found[(cell_id(key), tuple(sorted(children)))] = (cell_id(key), children)
    return [found[k] for k in sorted(found)]


def table_cells(cells: list[CellKey]) -> pa.Table:
    """Which cells each public table shows: table_name, region_code, industry_code,
    size_class."""
    rows = []
    for table in CELL_TABLES:
        spans = [table.span(d) for d in DIMENSIONS]
        for key in sorted(cells):
            if all(level in span for level, span in zip(_levels(key), spans, strict=True)):
                rows.append((table.name, *key))
    names = ["table_name", *(d.column for d in DIMENSIONS)]
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})


def table_columns(name: str) -> dict[str, str]:
    """A table's dimension columns → the cell column each holds (others are totals)."""
    table = next(t for t in CELL_TABLES if t.name == name)
    return {table.column(d): d.column for d in DIMENSIONS if table.column(d)}


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Give a DuckDB connection the tabulation as tables: regions, industries, indicators
    (indicator, position, kind);
    <dimension>_ancestors (code, level, ancestor) and <dimension>_parts (code, part: its
    ancestors at the levels some placement uses, so codes of one part count in the same cells)
    for each dimension; placements (region_level, industry_level, size_level); tabulated (the
    cells shown even without enterprises); region_rollup (code, ancestor: a county, or 000000
    for an unreadable region, to every region its rows count in)."""
    con.read_csv(str(reference.REFERENCE_DIR / "zhejiang_regions.csv"),
                 all_varchar=True).to_table("regions")
    con.read_csv(str(reference.REFERENCE_DIR / "industry_gbt4754_2017.csv"),
                 all_varchar=True).to_table("industries")
    con.from_arrow(pa.table({
        "indicator": list(INDICATORS), "position": list(range(len(INDICATORS))),
        "kind": ["magnitude" if i in MAGNITUDES else "enterprise_count" for i in INDICATORS],
    })).to_table("indicators")
    combos = placements()
    for i, dimension in enumerate(DIMENSIONS):
        chains = dimension.ancestors()
        rows = [(code, level, ancestor) for code, chain in chains.items()
                for level, ancestor in chain.items()]
        con.from_arrow(pa.table({"code": [r[0] for r in rows], "level": [r[1] for r in rows],
                                 "ancestor": [r[2] for r in rows]})
                       ).to_table(f"{dimension.name}_ancestors")
        used = sorted({combo[i] for combo in combos})
        parts = {code: "|".join(f"{level}={chain[level]}" for level in used if level in chain)
                 for code, chain in chains.items()}
        con.from_arrow(pa.table({"code": list(parts), "part": list(parts.values())})
                       ).to_table(f"{dimension.name}_parts")
    con.from_arrow(pa.table({f"{d.name}_level": [c[i] for c in combos]
                             for i, d in enumerate(DIMENSIONS)})).to_table("placements")
    cells = always_tabulated()
    con.from_arrow(pa.table({d.column: [c[i] for c in cells] for i, d in enumerate(DIMENSIONS)})
                   ).to_table("tabulated")
    rollup = [(code, ancestor) for code, chain in REGION.ancestors().items()
              for ancestor in chain.values()]
    rollup += [(UNKNOWN_REGION, UNKNOWN_REGION), (UNKNOWN_REGION, REGION.total)]
    con.from_arrow(pa.table({"code": [r[0] for r in rollup], "ancestor": [r[1] for r in rollup]})
                   ).to_table("region_rollup")
