"""The audit of monitoring-tables.md §3: can either intruder narrow a primary cell to ±15%?

For every primary cell, direction and intruder, a witness (a table the intruder cannot rule out,
with the cell past ±15%) proves it cannot: the suppression's are checked from scratch, and more
are sought among the hidden cells. Where none is found, the intruder's bound is worked out
exactly, by LP over all hidden cells of the year, and decides. The outsider's exact bounds are
also worked out until each indicator's narrowest interval is known.

A bound that no suppression could widen, because it follows from figures that are always
published (enterprise counts, zeros), is reported as a floor, not as a recovery: no table within
the rules of §3 (counts free, zeros free) can protect the cell from it.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy.sparse.csgraph import connected_components

from pipeline.disclosure.lp import Model
from pipeline.disclosure.system import ABS_TOL, DOWN, OUTSIDER, REL_TOL, UP, CellSystem
from pipeline.disclosure.witness import Coverage, Witnesses

FINDING_SCHEMA = {
    "cell": pl.String, "indicator": pl.String, "rule": pl.String, "intruder": pl.String,
    "truth": pl.Float64, "lower": pl.Float64, "upper": pl.Float64, "recovered": pl.String,
    "floor": pl.Boolean,
}
#: Audit witnesses aim just past the audit's own line (suppression aims at twice its margin).
AUDIT_MARGINS = 1.001


class Audit:
    """The audit of one hidden pattern; its parts can run apart (see pipeline.disclosure)."""

    def __init__(self, system: CellSystem, hidden: np.ndarray, rule: np.ndarray):
        self.system, self.rule = system, rule
        self.hidden = hidden & ~system.zero
        self.primary = np.array([r is not None for r in rule])
        self.component = self._components()
        self.models: dict[int, Model] = {}
        self._everything_hidden: Witnesses | None = None
        self.bounded: set[tuple[int, int]] = set()  # (unit, direction) the outsider's, exactly
        self.reach: dict | None = None  # how far witnesses took each unit, each way

    def _components(self) -> np.ndarray:
        """Per unit, its set of hidden units that no relation or rule links to another set:
        bounds are worked out within each, in a small LP (-1: published)."""
        s = self.system
        units = np.flatnonzero(self.hidden)
        columns = np.concatenate([units, s.N + units])
        incidence = (s.A[:, columns] != 0).astype(np.int8)
        _, label = connected_components((incidence.T @ incidence).tocsr(), directed=False)
        component = np.full(s.N, -1)
        component[units] = label[:units.size]  # a unit's dv and dc share a row
        return component

    def cost(self, u: int) -> int:
        """How much work bounding u takes, roughly: the size of its component."""
        return int((self.component == self.component[u]).sum())

    def _model(self, u: int) -> Model:
        label = int(self.component[u])
        if label not in self.models:
            units = np.flatnonzero(self.component == label)
            self.models[label] = Model(self.system, units, self.system.bounds(), split=False)
        return self.models[label]

    # -- findings -------------------------------------------------------------------------------

    def _finding(self, u: int, intruder: int, lower: float, upper: float) -> dict:
        s = self.system
        share = 0.0 if intruder == OUTSIDER else s.respondent_share(intruder, u)
        # An intruder whose knowledge contradicts itself (nan) is taken to know the cell.
        way = "lower" if math.isnan(lower) or math.isnan(upper) else s.recovered(
            u, lower, upper, share)
        floor = way == "lower" and self._floor(u, intruder, share)
        if s.count[u]:  # a count's bounds, as the intruder rounds them: whole numbers
            lower = math.ceil(lower - ABS_TOL) if math.isfinite(lower) else lower
            upper = math.floor(upper + ABS_TOL) if math.isfinite(upper) else upper
        return {
            "cell": s.cells[s.cell_of[u]], "indicator": s.indicators[s.indicator_of[u]],
            "rule": self.rule[u],
            "intruder": "outsider" if intruder == OUTSIDER else s.respondents[intruder],
            "truth": s.x[u] - share, "lower": lower - share, "upper": upper - share,
            "recovered": None if floor else way, "floor": floor,
        }

    def _floor(self, u: int, intruder: int, share: float) -> bool:
        """Whether the lower bound holds even with every non-zero cell hidden: no table within
        the intruder's knowledge takes u's rest below the line."""
        s = self.system
        if self._everything_hidden is None:
            everything = ~s.zero
            self._everything_hidden = Witnesses(
                s, Coverage(s, self.primary, AUDIT_MARGINS), everything, everything.copy(),
                hide=False)
        target = s.target(u, DOWN, share, margins=AUDIT_MARGINS)
        return target is not None and self._everything_hidden.search(
            u, target, s.bounds(intruder)) is None

    # -- the audit of some primary units -------------------------------------------------------

    def run(self, units: np.ndarray, offered: list) -> tuple[list[dict], dict]:
        """Every intruder against these primary units. A witness settles a (unit, direction)
        pair for every intruder it fools: the offered ones count once checked from scratch,
        then more are sought among the hidden cells. Where none fools an intruder, its bound
        is worked out exactly. Returns those exact bounds, and counts of the work done."""
        s = self.system
        coverage = Coverage(s, self.primary, margins=AUDIT_MARGINS)
        self.reach = coverage.reach
        witnesses = Witnesses(s, coverage, self.hidden, self.hidden.copy(), hide=False)
        rejected = 0
        wanted = np.zeros(s.N, dtype=bool)
        wanted[units] = True
        offered = [w for w in offered if wanted[w[0]].any()]  # those that move these cells
        for moved, dv, dc in offered:
            if self.consistent(moved, dv, dc):
                coverage.add(moved, dv, dc)
            else:
                rejected += 1
        findings: dict[tuple[int, int], dict] = {}
        primary_cells = int(units.size)
        for u in map(int, units[~self.hidden[units]]):
            # A primary cell shown: anyone reads its value.
            value = float(s.x[u])
            findings[(u, OUTSIDER)] = {
                "cell": s.cells[s.cell_of[u]], "indicator": s.indicators[s.indicator_of[u]],
                "rule": self.rule[u], "intruder": "outsider", "truth": value, "lower": value,
                "upper": value, "recovered": "shown", "floor": False}
        units = units[self.hidden[units]]
        for u in map(int, units):
            for d in (UP, DOWN):
                failed = witnesses.settle(u, d)
                if failed and failed[0] == OUTSIDER:
                    verdict = self._outsider(u, d, findings)
                    failed = failed[1:]
                    if verdict["recovered"] is None and not verdict["floor"]:
                        # Its exact bound protects it, barely: check everyone who knows more.
                        failed = self.relevant(u)
                for r in failed:
                    self._respondent(u, d, r, findings)
        self._narrowest(units, coverage, findings)
        counts = {"primary_cells": primary_cells, "witnesses_rejected": rejected,
                  "witnesses_found": len(coverage.found) - (len(offered) - rejected),
                  "exact_bounds": len(findings)}
        return list(findings.values()), counts

    def _outsider(self, u: int, d: int, findings: dict) -> dict:
        """The outsider's exact bound on u in direction d, merged into u's finding. The table
        that reaches it is one the outsider cannot rule out: how far it takes the other cells
        is a bound on theirs too."""
        model = self._model(u)
        bound = model.bound(u, d)
        self.bounded.add((u, d))
        if model.values is not None and self.reach is not None:
            extreme = np.maximum if d == UP else np.minimum
            self.reach[d][model.units] = extreme(self.reach[d][model.units], model.values)
        earlier = findings.get((u, OUTSIDER))
        lower = bound if d == DOWN else (earlier["lower"] if earlier else -math.inf)
        upper = bound if d == UP else (earlier["upper"] if earlier else math.inf)
        findings[(u, OUTSIDER)] = self._finding(u, OUTSIDER, lower, upper)
        return findings[(u, OUTSIDER)]

    def _respondent(self, u: int, d: int, r: int, findings: dict) -> None:
        """Respondent r's exact bound on u's rest in direction d."""
        s = self.system
        if s.target(u, d, s.respondent_share(r, u)) is None:
            return
        model = self._model(u)
        model.set_bounds(s.bounds(r))
        try:
            bound = model.bound(u, d)
        finally:
            model.set_bounds(s.bounds())
        earlier = findings.get((u, r))
        share = s.respondent_share(r, u)
        lower = bound if d == DOWN else (earlier["lower"] + share if earlier else -math.inf)
        upper = bound if d == UP else (earlier["upper"] + share if earlier else math.inf)
        findings[(u, r)] = self._finding(u, r, lower, upper)

    def _narrowest(self, units: np.ndarray, coverage: Coverage, findings: dict) -> None:
        """Exact outsider bounds until each indicator's narrowest interval is known (§3: the
        manifest records it). A witness shows how far out a bound lies at least, so the cell
        whose witnesses lie closest is bounded next (each exact bound's table moves the others
        too), until the closest lies past the narrowest bound found. Lower bounds of a count
        at 1 or below say nothing, and take no part."""
        s = self.system
        for i in sorted(set(s.indicator_of[units].tolist())):
            mine = units[s.indicator_of[units] == i]
            for d in (UP, DOWN):
                side = "upper" if d == UP else "lower"
                narrowest = math.inf  # as d · bound / value: the smallest is the narrowest
                while True:
                    done = np.array([(int(u), d) in self.bounded for u in mine], dtype=bool)
                    for u in mine[done]:
                        bound = findings[(int(u), OUTSIDER)][side]
                        if not (d == DOWN and s.count[u] and bound <= 1):
                            narrowest = min(narrowest, d * bound / s.x[u])
                    with np.errstate(invalid="ignore"):
                        witnessed = np.where(done, np.inf, d * coverage.reach[d][mine] / s.x[mine])
                    j = int(np.argmin(witnessed))
                    if done.all() or witnessed[j] >= narrowest:
                        break
                    self._outsider(int(mine[j]), d, findings)

    def consistent(self, units: np.ndarray, dv: np.ndarray, dc: np.ndarray) -> bool:
        """Whether a table moving `units` by (dv, dc) is one the outsider cannot rule out."""
        s = self.system
        if not self.hidden[units].all():
            return False
        w = np.zeros(2 * s.N)
        w[units], w[s.N + units] = dv, dc
        activity = s.A @ w
        # Within HiGHS's feasibility tolerance, relative to the terms summed.
        slack = ABS_TOL + REL_TOL * (s.A_abs @ np.abs(w))
        return bool((activity >= s.row_lo - slack).all() and (activity <= s.row_hi + slack).all()
                    and (w >= s.col_lo - ABS_TOL).all() and (w <= s.col_hi + ABS_TOL).all())

    def relevant(self, u: int) -> list[int]:
        """Respondents whose knowledge reaches u's component."""
        s = self.system
        units = np.flatnonzero(self.component == self.component[u])
        members = np.concatenate([np.arange(s.member_ptr[v], s.member_ptr[v + 1])
                                  for v in units])
        owners = s.sole_owner[units]
        found = set(s.member_r[members].tolist()) | set(owners[owners >= 0].tolist())
        return sorted(found - {int(s.sole_owner[u])})
