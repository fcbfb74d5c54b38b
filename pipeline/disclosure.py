"""Disclosure control of magnitude tables: primary cells, LP secondary suppression and audit."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import numpy as np
import polars as pl

from pipeline.config import Settings
from schemas.tables import MAGNITUDES

#: A non-zero cell with fewer contributors than this is confidential.
MIN_CONTRIBUTORS = 3
#: (2, 85) dominance: a cell whose two largest contributions exceed this share is confidential.
DOMINANCE_SHARE = 0.85
#: An intruder must not narrow a confidential cell to within this share of its true value.
PROTECTION = 0.15
#: Relative tolerance, as a share of the table's largest value: sums of 2-decimal amounts up to
#: about 1e9 carry float error far below it, and an LP bound is trusted to within it.
REL_TOL = 1e-9
#: Absolute floor of that tolerance: above HiGHS's feasibility tolerance (1e-7), below a cent.
ABS_TOL = 1e-6

CONFIDENTIAL, SECONDARY, FREE = "C", "D", "F"
CELL_COLUMNS = ("cell_id", "value", "contributors", "top1", "top2")

_OPTIMAL = highspy.HighsModelStatus.kOptimal
_UNBOUNDED = (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible)


class DisclosureError(RuntimeError):
    """The audit found a confidential cell an intruder can narrow to within ±15%."""


@dataclass(frozen=True)
class Relation:
    """An additive relation between cells: the parent's value is the sum of the children's."""

    parent: str
    children: tuple[str, ...]


def primary_status(cells: pl.DataFrame) -> pl.Series:
    """"C" for a non-zero cell with under 3 contributors or (2, 85) dominance, else "F"."""
    _require_columns(cells)
    value = pl.col("value")
    # "Exceed" 85%: a relative tolerance keeps float noise at exactly 85% from flipping a cell.
    dominated = pl.col("top1") + pl.col("top2") > DOMINANCE_SHARE * value * (1 + REL_TOL)
    confidential = (value > 0) & ((pl.col("contributors") < MIN_CONTRIBUTORS) | dominated)
    return cells.select(
        pl.when(confidential).then(pl.lit(CONFIDENTIAL)).otherwise(pl.lit(FREE))
        .cast(pl.String).alias("conf_status")
    ).to_series()


def protect(cells: pl.DataFrame, relations: list[Relation]) -> pl.DataFrame:
    """Cells of one indicator with conf_status: F, C (primary) or D (secondary), passing audit()."""
    table = _Table(cells, relations)
    primary = primary_status(cells).to_numpy() == CONFIDENTIAL
    hidden = _suppress(table, primary)
    status = np.where(primary, CONFIDENTIAL, np.where(hidden, SECONDARY, FREE))
    return cells.with_columns(pl.Series("conf_status", status, dtype=pl.String))


def _suppress(table: _Table, primary: np.ndarray, noise_share: float = 0.1) -> np.ndarray:
    """Which cells to hide: the primary ones and those their cheapest ±15% moves need."""
    hidden = primary.copy()
    suppressor = _Suppressor(table, hidden, noise_share)
    # Largest first: their wide moves hide cells that then protect the smaller ones for free.
    suppressor.protect_all(
        sorted(np.flatnonzero(primary), key=lambda i: (-table.value[i], table.ids[i]))
    )
    # Each solution is a table the intruder cannot rule out that moves the cell past ±15%, and
    # it stays one as more cells are hidden, unless it moved a shown cell by less than the noise
    # ignored. Only such cells need an audit; an exposed one is redone with a wider target and
    # every moved cell hidden, however little it moved.
    doubtful = np.array(sorted(suppressor.doubtful), dtype=np.int64)
    exposed = [table.index[r["cell_id"]] for r in table.audit(hidden, doubtful)
               if not r["protected"]]
    suppressor.noise_share = 0.0
    suppressor.protect_all(exposed, widen=10.0)
    return hidden


def audit(cells: pl.DataFrame, relations: list[Relation]) -> list[dict]:
    """The interval an intruder can derive by LP for every C cell, and whether it protects it."""
    if "conf_status" not in cells.columns:
        raise ValueError("audit needs a conf_status column")
    status = cells["conf_status"]
    if status.null_count() or not status.is_in([CONFIDENTIAL, SECONDARY, FREE]).all():
        raise ValueError("conf_status must be one of C, D, F in every row")
    table = _Table(cells, relations)
    hidden = status.is_in([CONFIDENTIAL, SECONDARY]).to_numpy()
    return table.audit(hidden, np.flatnonzero(status.eq(CONFIDENTIAL).to_numpy()))


def protect_indicators(cells: pl.DataFrame, relations: list[Relation]) -> pl.DataFrame:
    """Protect and audit every indicator; raises DisclosureError if any C cell is exposed."""
    if "indicator" not in cells.columns:
        raise ValueError("cells need an indicator column")
    if cells.is_empty():
        return cells.with_columns(pl.lit(None, dtype=pl.String).alias("conf_status"))
    row = "__disclosure_row"
    protected = [
        protect(part, relations)
        for part in cells.with_row_index(row).partition_by("indicator", maintain_order=True)
    ]
    # A full audit apart from protect(), so that no flaw there can publish an exposed cell.
    for part in protected:
        _require_protected(str(part["indicator"][0]), part, relations)
    return pl.concat(protected).sort(row).drop(row)


def protect_year(settings: Settings, year: int) -> dict:
    """Disclosure control of the year's cells, audited: writes
    statistical/<year>/cells_protected.parquet (hidden cells with no value and no contributors);
    raises DisclosureError, and writes nothing, when a C cell stays exposed."""
    from pipeline.aggregate import PROTECTED_CELLS, relations

    started = time.perf_counter()
    directory = settings.statistical_dir(year)
    out = directory / PROTECTED_CELLS
    # A year that fails its audit must leave nothing a publish step could take for protected.
    out.unlink(missing_ok=True)
    cells = pl.read_parquet(directory / "cells.parquet").with_columns(
        cell_id=pl.concat_str(["region_code", "industry_code", "size_class"], separator="|"))
    links = relations(cells.select("region_code", "industry_code", "size_class")
                      .unique().rows())
    magnitudes = cells.filter(pl.col("indicator").is_in(list(MAGNITUDES)))
    counts = cells.filter(~pl.col("indicator").is_in(list(MAGNITUDES)))
    protected = pl.concat([
        protect_indicators(magnitudes, links),
        counts.with_columns(conf_status=pl.lit(FREE)),  # enterprise counts are always free (§3)
    ])
    free = pl.col("conf_status") == FREE
    protected = protected.with_columns(hidden_by=_hidden_by()).with_columns(
        value=pl.when(free).then(pl.col("value")),
        contributors=pl.when(free).then(pl.col("contributors")),
    ).drop("cell_id", "top1", "top2")
    tmp = out.with_name(out.name + ".tmp")
    protected.write_parquet(tmp, compression="zstd")
    tmp.replace(out)
    return {"path": str(out), **summary(protected),
            "seconds": round(time.perf_counter() - started, 2)}


def _hidden_by() -> pl.Expr:
    """Which rule hid a cell (null when free), for the manifest's count by rule."""
    status = pl.col("conf_status")
    return (
        pl.when(status == SECONDARY).then(pl.lit("secondary"))
        .when((status == CONFIDENTIAL) & (pl.col("contributors") < MIN_CONTRIBUTORS))
        .then(pl.lit("fewer_than_3_contributors"))
        .when(status == CONFIDENTIAL).then(pl.lit("dominance_2_85"))
    )


def summary(protected: pl.DataFrame) -> dict:
    """How many magnitude cells were hidden, and by which rule."""
    magnitudes = protected.filter(pl.col("indicator").is_in(list(MAGNITUDES)))
    hidden = dict.fromkeys(("fewer_than_3_contributors", "dominance_2_85", "secondary"), 0)
    hidden.update(magnitudes["hidden_by"].drop_nulls().value_counts().rows())
    primary = hidden["fewer_than_3_contributors"] + hidden["dominance_2_85"]
    return {"magnitude_cells": magnitudes.height, "hidden": hidden, "primary": primary,
            "secondary": hidden["secondary"],
            "hidden_share": round(sum(hidden.values()) / max(magnitudes.height, 1), 4)}


def _require_protected(indicator: str, cells: pl.DataFrame, relations: list[Relation]) -> None:
    """Raise DisclosureError naming every C cell of the indicator that audit() finds exposed."""
    exposed = [r for r in audit(cells, relations) if not r["protected"]]
    if exposed:
        details = "; ".join(
            f"cell {r['cell_id']!r} value {r['value']:.2f} narrowed to "
            f"[{r['lower']:.2f}, {r['upper']:.2f}]"
            for r in exposed
        )
        raise DisclosureError(
            f"indicator {indicator!r}: {len(exposed)} confidential cell(s) can be narrowed to "
            f"within ±{PROTECTION:.0%}: {details}"
        )


def _require_columns(cells: pl.DataFrame) -> None:
    missing = [c for c in CELL_COLUMNS if c not in cells.columns]
    if missing:
        raise ValueError(f"cells lack columns {missing}")
    nulls = [c for c in CELL_COLUMNS if cells[c].null_count()]
    if nulls:
        # A null would fall through every rule to "F": refuse rather than publish it.
        raise ValueError(f"cells have nulls in {nulls}")


def _highs() -> highspy.Highs:
    model = highspy.Highs()
    model.setOptionValue("output_flag", False)
    return model


class _Table:
    """One indicator's cells and relations as arrays: values, free zeros, the relation matrix."""

    def __init__(self, cells: pl.DataFrame, relations: list[Relation]):
        _require_columns(cells)
        self.ids: list[str] = cells["cell_id"].cast(pl.String).to_list()
        self.index = {cell_id: i for i, cell_id in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise ValueError("cell_id must be unique within one indicator")
        self.value = cells["value"].cast(pl.Float64).to_numpy().copy()
        if not np.all(np.isfinite(self.value)) or np.any(self.value < 0):
            raise ValueError("cell values must be finite and >= 0")
        # An intruder knows these are 0: they are shown, and fixed in every LP whatever their
        # status says.
        self.free_zero = (self.value == 0) & (cells["contributors"].to_numpy() == 0)
        self.tol = max(REL_TOL * float(self.value.max(initial=0.0)), ABS_TOL)
        self.rows = [self._row(r) for r in relations]

    def _row(self, relation: Relation) -> tuple[np.ndarray, np.ndarray]:
        ids = (relation.parent, *relation.children)
        unknown = [i for i in ids if i not in self.index]
        if unknown:
            raise ValueError(f"relation {relation} mentions unknown cells {unknown}")
        if not relation.children or len(set(ids)) != len(ids):
            raise ValueError(f"relation {relation} needs distinct children other than its parent")
        cells = np.array([self.index[i] for i in ids], dtype=np.int64)
        coefficients = np.array([1.0] + [-1.0] * len(relation.children))
        gap = float(coefficients @ self.value[cells])
        if abs(gap) > self.tol:
            raise ValueError(f"relation {relation} does not add up: parent - children = {gap}")
        return cells, coefficients

    def margin(self, i: int) -> float:
        """How far past ±15% a bound must lie to count: the table's tolerance, at most 0.1% of x."""
        # The cap lets a cell tiny beside the table's largest be protected at all.
        return min(self.tol, 1e-3 * float(self.value[i]))

    def add_rows(self, model: highspy.Highs, columns_of: dict[int, list[tuple[int, float]]]):
        """Each relation as a row "sum of deviations = 0"; a cell without columns stays put."""
        starts, indices, values = [], [], []
        for cells, coefficients in self.rows:
            entries = [
                (column, sign * a)
                for cell, a in zip(cells, coefficients, strict=True)
                for column, sign in columns_of.get(int(cell), ())
            ]
            if entries:
                starts.append(len(indices))
                indices.extend(column for column, _ in entries)
                values.extend(v for _, v in entries)
        if starts:
            m = len(starts)
            model.addRows(
                m, np.zeros(m), np.zeros(m), len(indices), np.array(starts, dtype=np.int32),
                np.array(indices, dtype=np.int32), np.array(values),
            )

    def audit(self, hidden: np.ndarray, confidential: np.ndarray) -> list[dict]:
        """Min and max of every confidential cell over all tables consistent with what is shown."""
        # The intruder's unknowns are the deviations of hidden cells from their true values:
        # small numbers, so bounds keep their precision beside a table of billions. Shown cells
        # do not move and drop out of every relation.
        unknown = np.flatnonzero(hidden & ~self.free_zero)
        column = {int(cell): k for k, cell in enumerate(unknown)}
        model = _highs()
        if unknown.size:
            model.addVars(
                unknown.size, -self.value[unknown], np.full(unknown.size, highspy.kHighsInf)
            )
            self.add_rows(model, {cell: [(k, 1.0)] for cell, k in column.items()})
        results = []
        for c in map(int, confidential):
            x = float(self.value[c])
            lower = upper = x
            if c in column:
                model.changeColCost(column[c], 1.0)
                model.changeObjectiveSense(highspy.ObjSense.kMinimize)
                lower = max(0.0, x + _optimum(model, f"the audit minimum of cell {self.ids[c]!r}"))
                model.changeObjectiveSense(highspy.ObjSense.kMaximize)
                upper = x + _optimum(model, f"the audit maximum of cell {self.ids[c]!r}")
                model.changeColCost(column[c], 0.0)
            margin = self.margin(c)
            protected = (
                lower < (1 - PROTECTION) * x - margin and upper > (1 + PROTECTION) * x + margin
            )
            results.append(
                {"cell_id": self.ids[c], "value": x, "lower": lower, "upper": upper,
                 "protected": bool(protected)}
            )
        return results


class _Suppressor:
    """One warm-started LP per indicator: the cheapest consistent change moving a cell by 15%."""

    def __init__(self, table: _Table, hidden: np.ndarray, noise_share: float):
        # hidden is shared with the caller and grows in place as cells become D.
        self.table, self.hidden = table, hidden
        #: A shown cell moved by at most this share of the audit margin counts as solver noise.
        self.noise_share = noise_share
        #: Cells whose move ignored a tiny shift of a shown cell, so need an audit to be sure.
        self.doubtful: set[int] = set()
        n = len(table.ids)
        # How far up and down each cell goes in some solution so far: each solution is a table
        # the intruder cannot rule out, so a cell it already moved by 15% needs no solve.
        self.reach = {1: np.zeros(n), -1: np.zeros(n)}
        # Columns: up[i] = i, down[i] = n + i; a cell's new value is x + up - down, never < 0.
        self.model = _highs()
        self.up_bound = np.where(table.free_zero, 0.0, highspy.kHighsInf)
        self.down_bound = np.where(table.free_zero, 0.0, table.value)
        self.model.addVars(
            2 * n, np.zeros(2 * n), np.concatenate([self.up_bound, self.down_bound])
        )
        table.add_rows(self.model, {i: [(i, 1.0), (n + i, -1.0)] for i in range(n)})
        # Moving a shown cell costs more per unit the larger it is, so small cells go first;
        # hidden cells move for free.
        weight = np.where(hidden, 0.0, 1.0 + np.log1p(table.value))
        self.model.changeColsCost(
            2 * n, np.arange(2 * n, dtype=np.int32), np.concatenate([weight, weight])
        )

    def protect_all(self, order, widen: float = 1.0) -> None:
        """For each cell, hide the shown cells its cheapest 15% moves up and down need."""
        for c in map(int, order):
            for direction in (1, -1):
                self._move(c, direction, widen)

    def _move(self, c: int, direction: int, widen: float) -> None:
        table, model, n = self.table, self.model, len(self.table.ids)
        x, margin = float(table.value[c]), table.margin(c)
        # Aim past the ±15% line by twice the audit's margin, so solver noise cannot fall short.
        shift = min(PROTECTION * x + 2 * widen * margin, x)
        if self.reach[direction][c] >= shift:
            return
        moving, still = (c, n + c) if direction > 0 else (n + c, c)
        model.changeColBounds(moving, shift, shift)
        model.changeColBounds(still, 0.0, 0.0)
        _optimum(model, f"{'raising' if direction > 0 else 'lowering'} cell {table.ids[c]!r}")
        solution = np.asarray(model.getSolution().col_value)
        model.changeColBounds(c, 0.0, self.up_bound[c])
        model.changeColBounds(n + c, 0.0, self.down_bound[c])
        moved = (np.abs(solution[:n]) + np.abs(solution[n:])) * ~self.hidden
        noise = self.noise_share * margin
        if np.any((moved > 0) & (moved <= noise)):
            self.doubtful.add(c)
        else:
            deviation = solution[:n] - solution[n:]
            np.maximum(self.reach[1], deviation, out=self.reach[1])
            np.maximum(self.reach[-1], -deviation, out=self.reach[-1])
        newly = np.flatnonzero(moved > noise)
        if newly.size:
            self.hidden[newly] = True
            columns = np.concatenate([newly, newly + n]).astype(np.int32)
            model.changeColsCost(columns.size, columns, np.zeros(columns.size))


def _optimum(model: highspy.Highs, what: str) -> float:
    """The optimal objective; +inf when a maximum is unbounded; DisclosureError otherwise."""
    model.run()
    status = model.getModelStatus()
    if status == _OPTIMAL:
        return model.getInfo().objective_function_value
    # Only the audit maximises, and the true table (all deviations 0) is feasible for it, so
    # "unbounded or infeasible" there means unbounded.
    if status in _UNBOUNDED and model.getObjectiveSense()[1] == highspy.ObjSense.kMaximize:
        return math.inf
    # The suppression LP is feasible whenever the relations add up (the whole table scaled by
    # 1.15 or 0.85 moves the cell as asked, free zeros staying 0): failing here means the cells
    # and relations disagree, or the solver gave up.
    raise DisclosureError(f"LP for {what} ended {model.modelStatusToString(status)}")
