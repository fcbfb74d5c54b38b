"""HiGHS linear programs over some units of a CellSystem, warm-started from solve to solve."""

from __future__ import annotations

import math
import os
import sys

import highspy
import numpy as np
import scipy.sparse as sp

from pipeline.disclosure.system import CellSystem

_OPTIMAL = highspy.HighsModelStatus.kOptimal
_INFEASIBLE = highspy.HighsModelStatus.kInfeasible
_UNBOUNDED = (highspy.HighsModelStatus.kUnbounded,
              highspy.HighsModelStatus.kUnboundedOrInfeasible)
# Dual simplex suits a sequence of bound changes (moving one cell after another); primal simplex
# suits a sequence of objectives over one feasible region (the min and max of each cell).
_DUAL, _PRIMAL = 1, 4


_banner_shown = False


def _highs() -> highspy.Highs:
    """A silent HiGHS model. The first one a process makes prints a banner to stdout before
    any option can stop it, so that one is made with stdout pointed at /dev/null."""
    global _banner_shown
    if _banner_shown:
        return highspy.Highs()
    _banner_shown = True
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class SolverError(RuntimeError):
    """HiGHS ended a solve in a state that is neither an answer nor a proof of none."""


class Model:
    """An LP over the dv and dc of `units`; every other unit stays at its true value.

    Split models carry each deviation as two non-negative columns (up and down) so that moving a
    published cell can be priced; plain models carry it as one column, to bound a cell.
    """

    def __init__(self, system: CellSystem, units: np.ndarray, bounds, *, split: bool):
        self.system, self.split = system, split
        self.units = np.asarray(units, dtype=np.int64)
        m = self.units.size
        self.columns = np.concatenate([self.units, system.N + self.units])
        matrix = system.A[:, self.columns].tocsr()
        self.rows = np.flatnonzero(np.diff(matrix.indptr) > 0)
        self.row_position = np.full(system.A.shape[0], -1)
        self.row_position[self.rows] = np.arange(self.rows.size)
        self.unit_position = np.full(system.N, -1)
        self.unit_position[self.units] = np.arange(m)
        matrix = matrix[self.rows]
        if split:
            matrix = sp.hstack([matrix, -matrix]).tocsr()
        self.highs = _highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("simplex_strategy", _DUAL if split else _PRIMAL)
        # Without bound perturbation, primal simplex re-solves a new objective about 20% faster.
        self.highs.setOptionValue("primal_simplex_bound_perturbation_multiplier", 0.0)
        width = 4 * m if split else 2 * m
        self.highs.addVars(width, np.zeros(width), np.zeros(width))
        if self.rows.size:
            self.highs.addRows(self.rows.size, np.zeros(self.rows.size),
                               np.zeros(self.rows.size), matrix.nnz,
                               matrix.indptr[:-1].astype(np.int32),
                               matrix.indices.astype(np.int32), matrix.data)
        self.row_lo = np.full(self.rows.size, np.nan)
        self.row_hi = np.full(self.rows.size, np.nan)
        self.col_lo = np.full(width, np.nan)
        self.col_hi = np.full(width, np.nan)
        self.set_bounds(bounds)
        self.costs = np.zeros(width)

    # -- bounds and costs -----------------------------------------------------------------------

    def set_bounds(self, bounds, where: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Take an intruder's bounds (CellSystem.bounds), changing only what differs; `where`
        (rows, units), when given, says where alone they can differ from the bounds now set."""
        row_lo, row_hi, col_lo, col_hi = bounds
        if where is None:
            rows, local_rows = self.rows, np.arange(self.rows.size)
        else:
            local_rows = self.row_position[where[0]]
            local_rows = local_rows[local_rows >= 0]
            rows = self.rows[local_rows]
        lo, hi = row_lo[rows], row_hi[rows]
        changed = (lo != self.row_lo[local_rows]) | (hi != self.row_hi[local_rows])
        if changed.any():
            changed_rows = local_rows[changed]
            self.highs.changeRowsBounds(changed_rows.size, changed_rows.astype(np.int32),
                                        lo[changed], hi[changed])
            self.row_lo[changed_rows], self.row_hi[changed_rows] = lo[changed], hi[changed]
        if where is not None:
            self.refresh(where[1], bounds)
            return
        lo, hi = col_lo[self.columns], col_hi[self.columns]
        if self.split:
            lo, hi = (np.concatenate([np.zeros_like(lo), np.maximum(-hi, 0.0)]),
                      np.concatenate([np.maximum(hi, 0.0), np.maximum(-lo, 0.0)]))
        self._set_columns(np.arange(lo.size), lo, hi)

    def has(self, u: int) -> bool:
        """Whether the model moves unit u."""
        return self.unit_position[u] >= 0

    def refresh(self, units: np.ndarray, bounds) -> None:
        """Take these units' column bounds from an intruder's bounds, the rest as they are."""
        mine = self.unit_position[units]
        mine = mine[mine >= 0]
        if not mine.size:
            return
        m = self.units.size
        _, _, col_lo, col_hi = bounds
        local = np.concatenate([mine, m + mine])
        lo, hi = col_lo[self.columns[local]], col_hi[self.columns[local]]
        if self.split:
            local = np.concatenate([local, 2 * m + local])
            lo, hi = (np.concatenate([np.zeros_like(lo), np.maximum(-hi, 0.0)]),
                      np.concatenate([np.maximum(hi, 0.0), np.maximum(-lo, 0.0)]))
        self._set_columns(local, lo, hi)

    def _set_columns(self, columns: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        changed = (lo != self.col_lo[columns]) | (hi != self.col_hi[columns])
        columns, lo, hi = columns[changed], lo[changed], hi[changed]
        if columns.size:
            self.highs.changeColsBounds(columns.size, columns.astype(np.int32), lo, hi)
            self.col_lo[columns], self.col_hi[columns] = lo, hi

    def set_costs(self, value_cost: np.ndarray, count_cost: np.ndarray) -> None:
        """Split models: the price of moving each unit's value and its contributor count, up or
        down alike."""
        costs = np.concatenate([value_cost, count_cost, value_cost, count_cost])
        changed = np.flatnonzero(costs != self.costs)
        if changed.size:
            self.highs.changeColsCost(changed.size, changed.astype(np.int32), costs[changed])
            self.costs[changed] = costs[changed]

    # -- solving --------------------------------------------------------------------------------

    def move(self, u: int, value: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The cheapest table (split model) in which unit u has this value: its (dv, dc) over the
        model's units, or None when no table the intruder cannot rule out has it."""
        m, j = self.units.size, int(self.unit_position[u])
        shift = value - self.system.x[u]
        up, down = j, 2 * m + j
        saved = self.col_lo[[up, down]].copy(), self.col_hi[[up, down]].copy()
        pinned = np.array([max(shift, 0.0), max(-shift, 0.0)])
        self._set_columns(np.array([up, down]), pinned, pinned)
        try:
            status = self._run()
            if status == _INFEASIBLE:
                return None
            if status != _OPTIMAL:
                raise SolverError(f"moving {self.system.describe(u)} ended "
                                  f"{self.highs.modelStatusToString(status)}")
            solution = np.asarray(self.highs.getSolution().col_value)
        finally:
            self._set_columns(np.array([up, down]), *saved)
        deviation = solution[:2 * m] - solution[2 * m:]
        return deviation[:m], deviation[m:]

    def bound(self, u: int, direction: int) -> float:
        """The least (direction -1) or greatest (+1) value of unit u (plain model); `values`
        then holds every unit's value in the table that reaches it, or None."""
        j = int(self.unit_position[u])
        self.highs.changeColCost(j, 1.0)
        self.highs.changeObjectiveSense(highspy.ObjSense.kMaximize if direction > 0
                                        else highspy.ObjSense.kMinimize)
        self.values = None
        try:
            status = self._run()
            # Read before the cost is reset: changing the model clears what HiGHS reports.
            optimum = self.highs.getInfo().objective_function_value
            if status == _OPTIMAL:
                solution = np.asarray(self.highs.getSolution().col_value)
                self.values = self.system.x[self.units] + solution[:self.units.size]
        finally:
            self.highs.changeColCost(j, 0.0)
        if status == _OPTIMAL:
            return self.system.x[u] + optimum
        # The true table (all deviations 0) is feasible, so "unbounded or infeasible" is
        # unbounded; only a maximum can be (values have no upper limit, and are never < 0).
        if status in _UNBOUNDED and direction > 0:
            return math.inf
        if status == _INFEASIBLE:
            return math.nan  # the intruder's knowledge contradicts itself: treated as exposed
        raise SolverError(f"bounding {self.system.describe(u)} ended "
                          f"{self.highs.modelStatusToString(status)}")

    def _run(self):
        self.highs.run()
        status = self.highs.getModelStatus()
        if status == _OPTIMAL or status == _INFEASIBLE or status in _UNBOUNDED:
            return status
        # A long chain of warm starts can leave the simplex in numerical trouble, which HiGHS
        # reports as Unknown: the same LP from a cold start settles it.
        self.highs.clearSolver()
        self.highs.run()
        return self.highs.getModelStatus()
