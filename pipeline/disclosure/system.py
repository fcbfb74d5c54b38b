"""The intruders of monitoring-tables.md §3 as one system of linear constraints over every
magnitude cell of a year: what the public tables, their additive relations and the form's public
rules tell an outsider, and what a respondent adds by knowing its own return.

The unknowns are deviations from the true table: for each magnitude cell ("unit") dv, the change
of its value, and dc, the change of its contributor count. The true table is the point 0, and a
table an intruder cannot rule out is a point satisfying every constraint with published cells at
0. Working in deviations keeps bounds precise beside totals of billions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

#: A non-zero cell with fewer contributors than this is confidential (frequency rule).
MIN_CONTRIBUTORS = 3
#: (2, 85) dominance: a cell whose two largest contributions exceed this share is confidential.
DOMINANCE_SHARE = 0.85
#: Recovered: narrowed to within ±15% of the true value. As twentieths, so that whole-number
#: bounds compare exactly: lower ≥ 17/20·x or upper ≤ 23/20·x.
LOWER_TWENTIETHS, UPPER_TWENTIETHS = 17, 23
#: Relative tolerance, as a share of an indicator's largest cell: sums of 2-decimal amounts up to
#: about 1e9 carry float error far below it, and an LP bound is trusted to within it.
REL_TOL = 1e-9
#: Absolute floor of that tolerance: above HiGHS's feasibility tolerance (1e-7), below a cent.
ABS_TOL = 1e-6
#: The least non-zero amount a contributor can report (amounts are kept to 2 decimals).
AMOUNT_STEP = 0.01

UP, DOWN = 1, -1
OUTSIDER = -1  # the intruder index of the informed outsider; respondents are 0, 1, …


@dataclass(frozen=True)
class Relation:
    """An additive relation between cells: the parent's value is the sum of the children's."""

    parent: str
    children: tuple[str, ...]


@dataclass(frozen=True)
class Knowledge:
    """What the form's public rules tell an intruder about the cells (monitoring-tables.md §3)."""

    #: The magnitude indicators, each a sum over enterprises of the form column of its name.
    magnitudes: tuple[str, ...]
    #: Magnitudes in whole numbers: every contributor adds at least 1. The others are amounts.
    counts: frozenset[str]
    #: (X_led, X_involved): involved includes led, so X_led ≤ X_involved in every cell (E009).
    pairs: tuple[tuple[str, str], ...]
    #: The free enterprise count of enterprises with any X_led above 0.
    leading: str

    def groups(self) -> list[tuple[str, ...]]:
        """Magnitudes in sets that the rules tie together; sets are protected independently."""
        coupled = {i for pair in self.pairs for i in pair}
        return [tuple(m for m in self.magnitudes if m in coupled)] * bool(coupled) + [
            (m,) for m in self.magnitudes if m not in coupled]


class CellSystem:
    """A year's magnitude cells, its respondents and the constraints every intruder knows.

    cells: cell, indicator, value, contributors, enterprises, top1, top2; one row for every cell
    and every magnitude, and the cell's free `leading` count.
    members: respondent, cell, indicator, value; for each enterprise that may be the sole
    contributor of a cell, its value in every magnitude of every cell it counts in.
    """

    def __init__(self, cells: pl.DataFrame, relations: Sequence[Relation],
                 members: pl.DataFrame, knowledge: Knowledge):
        self.knowledge = knowledge
        self._read_cells(cells)
        self._check_relations(relations)
        self._read_members(members)
        self._build_constraints(relations)

    # -- the cells ------------------------------------------------------------------------------

    def _read_cells(self, cells: pl.DataFrame) -> None:
        required = ("cell", "indicator", "value", "contributors", "enterprises", "top1", "top2")
        missing = [c for c in required if c not in cells.columns]
        if missing:
            raise ValueError(f"cells lack columns {missing}")
        k = self.knowledge
        self.indicators = k.magnitudes
        self.cells: list[str] = sorted(set(cells["cell"].cast(pl.String).to_list()))
        self.cell_index = {c: i for i, c in enumerate(self.cells)}
        n_indicators, K = len(self.indicators), len(self.cells)
        self.I, self.K, self.N = n_indicators, K, n_indicators * K
        wanted = cells.filter(pl.col("indicator").is_in([*k.magnitudes, k.leading]))
        if wanted.select(pl.col(*required[2:]).null_count().sum()).row(0) != (0,) * 5:
            # A null would fall through every rule as "free": refuse rather than publish it.
            raise ValueError("cells have nulls in value, contributors, enterprises or top1/top2")
        grid = {name: np.full((self.I, K), np.nan) for name in required[2:]}
        position = {name: i for i, name in enumerate(k.magnitudes)}
        leading = np.full(K, np.nan)
        seen = np.zeros((self.I, K), dtype=np.int64)
        for row in wanted.iter_rows(named=True):
            kc = self.cell_index[row["cell"]]
            if row["indicator"] == k.leading:
                leading[kc] = row["value"]
                continue
            ic = position[row["indicator"]]
            seen[ic, kc] += 1
            for name in required[2:]:
                grid[name][ic, kc] = row[name]
        if (seen != 1).any() or np.isnan(leading).any():
            raise ValueError("cells need exactly one row per cell and magnitude, and the "
                             f"{k.leading!r} count of every cell")
        flat = {name: grid[name].ravel() for name in grid}
        self.x, self.n, self.e = flat["value"], flat["contributors"], flat["enterprises"]
        self.top1, self.top2 = flat["top1"], flat["top2"]
        if not np.all(np.isfinite(self.x)) or (self.x < 0).any():
            raise ValueError("cell values must be finite and >= 0")
        self.leading = leading
        self.indicator_of = np.repeat(np.arange(self.I), K)
        self.cell_of = np.tile(np.arange(K), self.I)
        is_count = np.array([m in k.counts for m in k.magnitudes])
        self.count = is_count[self.indicator_of]
        self.step = np.where(self.count, 1.0, AMOUNT_STEP)
        # Zeros are published and fixed for every intruder; hidden cells are never 0.
        self.zero = self.x == 0
        largest = grid["value"].max(axis=1, initial=0.0)
        self.tol = np.maximum(REL_TOL * largest, ABS_TOL)[self.indicator_of]

    def unit(self, cell: str, indicator: str) -> int:
        return self.indicators.index(indicator) * self.K + self.cell_index[cell]

    def describe(self, u: int) -> str:
        return f"{self.indicators[self.indicator_of[u]]} of cell {self.cells[self.cell_of[u]]!r}"

    def primary_rule(self) -> np.ndarray:
        """Per unit: "frequency", "dominance" or None (§3 primary rules)."""
        nonzero = ~self.zero
        frequency = nonzero & (self.n < MIN_CONTRIBUTORS)
        # "Exceed" 85%: a relative tolerance keeps float noise at exactly 85% from flipping a cell.
        dominance = nonzero & ~frequency & (
            self.top1 + self.top2 > DOMINANCE_SHARE * self.x * (1 + REL_TOL))
        return np.where(frequency, "frequency", np.where(dominance, "dominance", None))

    def _check_relations(self, relations: Sequence[Relation]) -> None:
        self.relations = []
        for relation in relations:
            ids = (relation.parent, *relation.children)
            unknown = [c for c in ids if c not in self.cell_index]
            if unknown:
                raise ValueError(f"relation {relation} mentions unknown cells {unknown}")
            if not relation.children or len(set(ids)) != len(ids):
                raise ValueError(f"relation {relation} needs distinct children other than its "
                                 "parent")
            parent = self.cell_index[relation.parent]
            children = np.array([self.cell_index[c] for c in relation.children])
            for i in range(self.I):
                units = i * self.K + children
                value_gap = self.x[i * self.K + parent] - self.x[units].sum()
                count_gap = self.n[i * self.K + parent] - self.n[units].sum()
                if abs(value_gap) > self.tol[i * self.K] or count_gap != 0:
                    raise ValueError(f"relation {relation} does not add up for "
                                     f"{self.indicators[i]}: parent - children = {value_gap}")
            self.relations.append((parent, children))

    # -- the respondents ------------------------------------------------------------------------

    def _read_members(self, members: pl.DataFrame) -> None:
        """Respondents: every enterprise that is the sole contributor of a non-zero cell."""
        missing = [c for c in ("respondent", "cell", "indicator", "value")
                   if c not in members.columns]
        if missing:
            raise ValueError(f"members lack columns {missing}")
        members = members.filter(pl.col("indicator").is_in(list(self.indicators)))
        unknown = set(members["cell"].unique().to_list()) - set(self.cell_index)
        if unknown:
            raise ValueError(f"members of unknown cells {sorted(unknown)[:5]}")
        unit = (pl.col("indicator").replace_strict(
            {m: i for i, m in enumerate(self.indicators)}, return_dtype=pl.Int64) * self.K
            + pl.col("cell").replace_strict(self.cell_index, return_dtype=pl.Int64))
        members = members.with_columns(unit=unit)
        sole = np.flatnonzero(~self.zero & (self.n == 1))
        owners = members.filter(pl.col("unit").is_in(sole.tolist()) & (pl.col("value") > 0))
        found = owners.group_by("unit").agg(pl.col("respondent").first(), pl.len())
        if found.height != sole.size or (found["len"] > 1).any():
            raise ValueError("members must name exactly one contributor of every cell with one "
                             "contributor")
        self.respondents: list[str] = sorted(set(found["respondent"].to_list()))
        index = {r: i for i, r in enumerate(self.respondents)}
        self.R = len(self.respondents)
        self.sole_owner = np.full(self.N, -1)
        self.sole_owner[found["unit"].to_numpy()] = [index[r] for r in found["respondent"]]
        self.sole_units = [[] for _ in range(self.R)]
        for u in np.flatnonzero(self.sole_owner >= 0):
            self.sole_units[self.sole_owner[u]].append(int(u))
        mine = members.filter(pl.col("respondent").is_in(self.respondents)).with_columns(
            r=pl.col("respondent").replace_strict(index, return_dtype=pl.Int64)).sort("unit", "r")
        self.member_unit = mine["unit"].to_numpy()
        self.member_r = mine["r"].to_numpy()
        self.member_value = mine["value"].cast(pl.Float64).to_numpy()
        # Per unit, the respondents counted in it (CSR by unit), for checking a table cheaply.
        self.member_ptr = np.searchsorted(self.member_unit, np.arange(self.N + 1))
        contributes = self.member_value > 0
        # What all respondents know together: the largest own share in each unit, and whether a
        # respondent knows itself to be a non-contributor there.
        self.own_share = np.zeros(self.N)
        np.maximum.at(self.own_share, self.member_unit[contributes],
                      self.member_value[contributes])
        self.zero_member = np.zeros(self.N, dtype=bool)
        self.zero_member[self.member_unit[~contributes]] = True
        self._share = {(int(r), int(u)): float(v) for r, u, v in zip(
            self.member_r[contributes], self.member_unit[contributes],
            self.member_value[contributes], strict=True)}
        self._differs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._contributors: list[list[int]] = [[] for _ in range(self.N)]
        for r, u in sorted(self._share, key=lambda key: (key[1], key[0])):
            if self.sole_owner[u] != r:
                self._contributors[u].append(r)
        self.units_of_respondent = [[] for _ in range(self.R)]
        for k, r in enumerate(self.member_r):
            self.units_of_respondent[r].append(k)

    def respondent_share(self, r: int, u: int) -> float:
        """What respondent r reported in unit u (0 when it counts there with nothing)."""
        return self._share.get((r, u), 0.0)

    def contributors_known(self, u: int) -> list[int]:
        """The respondents with a share in unit u, but not the one that alone makes it up."""
        return self._contributors[u]

    def dominant_respondent(self, u: int, margins: float = 2.0) -> int:
        """The respondent whose own share alone exceeds the down target of u, or -1."""
        lo, hi = self.member_ptr[u], self.member_ptr[u + 1]
        target = self.target(u, DOWN, margins=margins)
        for k in range(lo, hi):
            if target is not None and self.member_value[k] > target:
                return int(self.member_r[k])
        return -1

    # -- the constraints ------------------------------------------------------------------------

    def _build_constraints(self, relations: Sequence[Relation]) -> None:
        """Rows over 2N columns (dv of every unit, then dc), with the outsider's bounds."""
        N, K = self.N, self.K
        rows, cols, vals, lo, hi = [], [], [], [], []

        def add(entries: list[tuple[int, float]], low: float, high: float) -> int:
            r = len(lo)
            for c, a in entries:
                rows.append(r)
                cols.append(c)
                vals.append(a)
            lo.append(low)
            hi.append(high)
            return r

        # Additive relations, for values and for contributors (§3, intruder 1).
        for parent, children in self.relations:
            for i in range(self.I):
                units = [i * K + parent, *(i * K + children)]
                signs = [1.0] + [-1.0] * len(children)
                add(list(zip(units, signs, strict=True)), 0.0, 0.0)
                add([(N + u, s) for u, s in zip(units, signs, strict=True)], 0.0, 0.0)
        #: Rows 0 … relation_rows - 1 are the additive relations (values and contributors).
        self.relation_rows = len(lo)
        # A hidden cell is not 0, and each of its contributors adds at least one step:
        # value >= step · contributors. A respondent raises the right side by its own share.
        self.share_row = np.full(N, -1)
        for u in np.flatnonzero(~self.zero):
            self.share_row[u] = add([(u, 1.0), (N + u, -self.step[u])],
                                    self.step[u] * self.n[u] - self.x[u], np.inf)
        # E009: X_led ≤ X_involved in every cell, so also for their contributor counts.
        position = {m: i for i, m in enumerate(self.indicators)}
        self.led = [position[led] for led, _ in self.knowledge.pairs]
        for led, involved in self.knowledge.pairs:
            for k in range(K):
                a, b = position[led] * K + k, position[involved] * K + k
                if self.zero[a]:
                    continue
                add([(a, 1.0), (b, -1.0)], -np.inf, self.x[b] - self.x[a])
                add([(N + a, 1.0), (N + b, -1.0)], -np.inf, self.n[b] - self.n[a])
        # The free count of leading enterprises: each X_led has at most that many contributors,
        # and together at least that many.
        for k in range(K):
            units = [i * K + k for i in self.led if not self.zero[i * K + k]]
            if units:
                add([(N + u, 1.0) for u in units],
                    self.leading[k] - sum(self.n[u] for u in units), np.inf)
        self.A = sp.csr_matrix((vals, (rows, cols)), shape=(len(lo), 2 * N))
        self.A_abs = abs(self.A)
        self.row_lo, self.row_hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
        # Columns: a hidden cell has at least one contributor and at most its enterprises.
        nonzero = ~self.zero
        dc_hi = self.e - self.n
        led_unit = np.isin(self.indicator_of, self.led)
        dc_hi = np.where(led_unit, np.minimum(dc_hi, self.leading[self.cell_of] - self.n), dc_hi)
        self.col_lo = np.concatenate([np.where(nonzero, self.step - self.x, 0.0),
                                      np.where(nonzero, 1.0 - self.n, 0.0)])
        self.col_hi = np.concatenate([np.where(nonzero, np.inf, 0.0),
                                      np.where(nonzero, dc_hi, 0.0)])
        if (self.row_lo > 1e-9).any() or (self.row_hi < -1e-9).any() or (
                self.col_lo > 0).any() or (self.col_hi < 0).any():
            raise ValueError("the true table breaks a rule the intruders assume (a cell below "
                             "its contributors, X_led above X_involved, or leading counts)")

    # -- what each intruder knows, as bounds ----------------------------------------------------

    def bounds(self, intruder: int = OUTSIDER, *, all_respondents: bool = False,
               except_respondent: int = -1, except_unit: int = -1):
        """Row and column bounds for an intruder: the outsider, one respondent, or (for a table
        that must hold against them all at once) every respondent's own shares together, less
        one respondent's share in one unit."""
        row_lo, col_hi = self.row_lo.copy(), self.col_hi.copy()
        col_lo = self.col_lo.copy()
        N = self.N
        if all_respondents:
            share = self.own_share.copy()
            if except_respondent >= 0:
                lo, hi = self.member_ptr[except_unit], self.member_ptr[except_unit + 1]
                others = (self.member_r[lo:hi] != except_respondent) & (
                    self.member_value[lo:hi] > 0)
                share[except_unit] = self.member_value[lo:hi][others].max(initial=0.0)
            self._raise_share(row_lo, share > 0, share)
            known = self.zero_member
            col_hi[N:] = np.where(known, np.minimum(col_hi[N:], self.e - 1 - self.n), col_hi[N:])
        elif intruder >= 0:
            share = np.zeros(N)
            mine = np.array(self.units_of_respondent[intruder], dtype=np.int64)
            units, values = self.member_unit[mine], self.member_value[mine]
            share[units[values > 0]] = values[values > 0]
            self._raise_share(row_lo, share > 0, share)
            outside = units[values == 0]
            col_hi[N + outside] = np.minimum(col_hi[N + outside],
                                             self.e[outside] - 1 - self.n[outside])
            sole = np.array(self.sole_units[intruder], dtype=np.int64)
            for part in (sole, N + sole):
                col_lo[part] = 0.0
                col_hi[part] = 0.0
        return row_lo, self.row_hi, col_lo, col_hi

    def differs(self, intruder: int = OUTSIDER) -> tuple[np.ndarray, np.ndarray]:
        """Where an intruder's bounds can differ from every respondent's together: (rows,
        units)."""
        if intruder not in self._differs:
            self._differs[intruder] = self._differ(intruder)
        return self._differs[intruder]

    def _differ(self, intruder: int) -> tuple[np.ndarray, np.ndarray]:
        known = (self.own_share > 0) & (self.share_row >= 0)
        rows, units = self.share_row[known], np.flatnonzero(self.zero_member)
        if intruder >= 0:
            mine = np.array(self.units_of_respondent[intruder], dtype=np.int64)
            own = self.member_unit[mine]
            rows = np.union1d(rows, self.share_row[own][self.share_row[own] >= 0])
            units = np.union1d(units, np.concatenate(
                [own, np.array(self.sole_units[intruder], dtype=np.int64)]))
        return rows, units

    def _raise_share(self, row_lo: np.ndarray, where: np.ndarray, share: np.ndarray) -> None:
        """value − own share ≥ step · (contributors − 1), where a respondent knows its share."""
        units = np.flatnonzero(where & (self.share_row >= 0))
        row_lo[self.share_row[units]] = (share[units] - self.step[units]
                                         + self.step[units] * self.n[units] - self.x[units])

    # -- what counts as recovered ---------------------------------------------------------------

    def target(self, u: int, direction: int, share: float = 0.0,
               margins: float = 2.0) -> float | None:
        """The value of u a table must reach for its rest (value less a respondent's share) to
        lie past ±15% by `margins` times the audit's margin; None when nothing needs protecting
        that way."""
        rest = self.x[u] - share
        if rest <= 0:
            return None
        if self.count[u]:
            whole = round(rest)
            if direction == UP:
                return share + (UPPER_TWENTIETHS * whole) // 20 + 1
            # A lower bound of 1 recovers nothing: hiding a cell already tells it is not zero.
            if whole <= 1:
                return None
            return share + -((-LOWER_TWENTIETHS * whole) // 20) - 1
        # How far past ±15% an amount's bound must lie to count (see recovered): at most 0.1% of
        # the value, so that a cell tiny beside its indicator's largest can be protected at all.
        margin = margins * min(self.tol[u], 1e-3 * rest)
        if direction == UP:
            return share + rest * UPPER_TWENTIETHS / 20 + margin
        return share + rest * LOWER_TWENTIETHS / 20 - margin

    def recovered(self, u: int, lower: float, upper: float, share: float = 0.0) -> str | None:
        """"lower" or "upper" when bounds of u narrow its rest to within ±15%, else None."""
        rest = self.x[u] - share
        if rest <= 0:
            return None
        lower, upper = lower - share, upper - share
        if self.count[u]:
            whole = round(rest)
            low = np.ceil(lower - ABS_TOL)
            high = np.floor(upper + ABS_TOL)
            if low > 1 and 20 * low >= LOWER_TWENTIETHS * whole:
                return "lower"
            if 20 * high <= UPPER_TWENTIETHS * whole:
                return "upper"
            return None
        margin = min(self.tol[u], 1e-3 * rest)
        if lower >= rest * LOWER_TWENTIETHS / 20 - margin:
            return "lower"
        if upper <= rest * UPPER_TWENTIETHS / 20 + margin:
            return "upper"
        return None

    # -- checking a table against each respondent ----------------------------------------------

    def unfooled(self, units: np.ndarray, dv: np.ndarray, dc: np.ndarray) -> set[int]:
        """The respondents who can rule out a table that moves `units` by (dv, dc), every other
        unit at its true value: owners of a moved sole cell (they know it exactly), and those
        whose own share or non-contribution the table contradicts."""
        moved = (np.abs(dv) > 0) | (np.abs(dc) > 0)
        units, dv, dc = units[moved], dv[moved], dc[moved]
        unfooled = {int(r) for r in self.sole_owner[units] if r >= 0}
        if not units.size:
            return unfooled
        starts, ends = self.member_ptr[units], self.member_ptr[units + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total:
            at = np.repeat(np.arange(units.size), lengths)
            # The members of each unit in turn: its first member, then one more each step.
            member = starts[at] + np.arange(total) - np.repeat(np.cumsum(lengths) - lengths,
                                                               lengths)
            u = units[at]
            value = self.x[u] + dv[at]
            contributors = self.n[u] + dc[at]
            share = self.member_value[member]
            slack = value - self.step[u] * contributors - (share - self.step[u])
            bad = np.where(share > 0, slack < -self.tol[u],
                           contributors > self.e[u] - 1 + ABS_TOL)
            unfooled.update(int(r) for r in self.member_r[member[bad]])
        return unfooled
