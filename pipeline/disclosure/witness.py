"""Which intruders are shown a table that moves each primary cell past ±15%, and which are not.

A table that satisfies everything an intruder knows, and in which a primary cell lies past ±15%
of its true value, proves the intruder cannot narrow that cell so far that way: it is a witness.
Hiding more cells only adds tables an intruder cannot rule out, so a witness stays one. One
witness moves many cells, so it settles many (cell, direction) pairs at once.
"""

from __future__ import annotations

import numpy as np

from pipeline.disclosure.lp import Model
from pipeline.disclosure.system import DOWN, OUTSIDER, UP, CellSystem

#: A target counts as reached within the LP's feasibility tolerance.
REACHED_TOL = 1e-7


class Coverage:
    """For each primary unit and direction: is the outsider shown a witness, and which
    respondents have not been (None: no witness yet at all). It remembers which witness showed
    what, so that a witness can be taken back (see suppress.publish_back)."""

    def __init__(self, system: CellSystem, primary: np.ndarray, margins: float = 2.0):
        self.system, self.primary, self.margins = system, primary, margins
        self.targets = {
            d: np.array([np.nan if (t := system.target(u, d, margins=margins)) is None else t
                         for u in range(system.N)]) for d in (UP, DOWN)}
        self.outsider: set[tuple[int, int]] = set()
        #: The furthest each unit was moved up and down by a witness: the outsider's bounds lie
        #: at least that far out.
        self.reach = {UP: np.full(system.N, -np.inf), DOWN: np.full(system.N, np.inf)}
        self.uncovered: dict[tuple[int, int], set[int]] = {}
        #: (unit, direction, intruder) that no table within the rules can protect: the bound
        #: follows from figures that are always published (enterprise counts, zeros).
        self.floors: set[tuple[int, int, int]] = set()
        #: Per (unit, direction): the witnesses that reached its target, each with the
        #: respondents it does not fool; and per respondent with a share in the unit, the
        #: witnesses that reached what its rest needs.
        self.reached: dict[tuple[int, int], list[tuple[int, frozenset[int]]]] = {}
        self.own: dict[tuple[int, int], dict[int, list[int]]] = {}
        #: Every witness credited, as (units moved, dv, dc), its index its id; and per unit, the
        #: witnesses that move it.
        self.found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.moving: dict[int, list[int]] = {}
        #: Per witness, the pairs it helped settle.
        self.settles: dict[int, set[tuple[int, int]]] = {}
        #: Witnesses no longer shown to hold: they moved a cell published again since.
        self.taken_back: set[int] = set()
        self._own_targets: dict[tuple[int, int, int], float | None] = {}

    def needs_witness(self, u: int, d: int) -> bool:
        """Whether some intruder still lacks a witness for (u, d)."""
        if np.isnan(self.targets[d][u]):
            return False
        return (u, d) not in self.outsider or self.uncovered.get((u, d)) is None or bool(
            self.uncovered[(u, d)])

    def add(self, units: np.ndarray, dv: np.ndarray, dc: np.ndarray) -> set[int]:
        """Credit a witness moving `units` by (dv, dc) to every pair it settles; returns the
        respondents it does not fool."""
        witness = len(self.found)
        self.found.append((units, dv, dc))
        for u in map(int, units):
            self.moving.setdefault(u, []).append(witness)
        return self._record(units, dv, dc, witness)

    def held(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The witnesses found, less those taken back."""
        return [w for i, w in enumerate(self.found) if i not in self.taken_back]

    def _record(self, units: np.ndarray, dv: np.ndarray, dc: np.ndarray,
                witness: int) -> set[int]:
        system = self.system
        unfooled = system.unfooled(units, dv, dc)
        fixed = frozenset(unfooled)
        moved = np.flatnonzero(self.primary[units] & (dv != 0))
        moved_units, values = units[moved], system.x[units[moved]] + dv[moved]
        np.maximum.at(self.reach[UP], moved_units, values)
        np.minimum.at(self.reach[DOWN], moved_units, values)
        for d in (UP, DOWN):
            with np.errstate(invalid="ignore"):
                reached = d * (values - self.targets[d][moved_units]) >= -REACHED_TOL
            for u in map(int, moved_units[reached]):
                key = (u, d)
                self.reached.setdefault(key, []).append((witness, fixed))
                self.settles.setdefault(witness, set()).add(key)
                self.outsider.add(key)
                left = unfooled - {int(system.sole_owner[u])}
                self.uncovered[key] = (left if self.uncovered.get(key) is None
                                       else self.uncovered[key] & left)
            for u, value in zip(map(int, moved_units), values, strict=True):
                # A respondent's own share lowers what its rest needs (down, mostly).
                for r in system.contributors_known(u):
                    if r in unfooled:
                        continue
                    own = self._own_target(u, d, r)
                    if own is None or d * (value - own) >= -REACHED_TOL:
                        self.own.setdefault((u, d), {}).setdefault(r, []).append(witness)
                        self.settles.setdefault(witness, set()).add((u, d))
                        if self.uncovered.get((u, d)):
                            self.uncovered[(u, d)].discard(r)
        return unfooled

    def _own_target(self, u: int, d: int, r: int) -> float | None:
        key = (u, d, r)
        if key not in self._own_targets:
            self._own_targets[key] = self.system.target(
                u, d, self.system.respondent_share(r, u), margins=self.margins)
        return self._own_targets[key]

    def settle_floor(self, u: int, d: int, intruder: int) -> None:
        """No table can protect (u, d) from this intruder: note it, and stop asking."""
        self.floors.add((u, d, intruder))
        if intruder >= 0 and self.uncovered.get((u, d)):
            self.uncovered[(u, d)].discard(intruder)

    def settled_by(self, witnesses: set[int]) -> set[tuple[int, int]]:
        """The pairs some of these witnesses helped settle."""
        return set().union(*(self.settles.get(w, ()) for w in witnesses))

    def forget(self, keys: set[tuple[int, int]], gone: set[int]) -> dict:
        """Settle these pairs as if the `gone` witnesses (and those taken back before) had
        never been found; returns what they were, for restore()."""
        saved = {key: (key in self.outsider, self.uncovered.get(key)) for key in keys}
        gone = gone | self.taken_back
        for key in keys:
            alive = [unfooled for w, unfooled in self.reached.get(key, ()) if w not in gone]
            if not alive:
                self.outsider.discard(key)
                self.uncovered.pop(key, None)
                continue
            self.outsider.add(key)
            left = set(frozenset.intersection(*alive)) - {int(self.system.sole_owner[key[0]])}
            left -= {r for r, ws in self.own.get(key, {}).items()
                     if any(w not in gone for w in ws)}
            left -= {i for u, d, i in self.floors if (u, d) == key}
            self.uncovered[key] = left
        return saved

    def restore(self, saved: dict) -> None:
        """Put back pairs as forget() found them."""
        for key, (outsider, uncovered) in saved.items():
            if outsider:
                self.outsider.add(key)
            if uncovered is None:
                self.uncovered.pop(key, None)
            else:
                self.uncovered[key] = set(uncovered)


#: Moving a hidden cell costs a little (so that a witness moves no more cells than it needs: each
#: cell it moves is one it relies on), far less than a published one. Moving a cell one
#: respondent alone makes up fails that respondent, who then needs a witness of its own: priced
#: above the other hidden cells.
HIDDEN_PRICE, SOLE_PRICE = 1e-4, 1e-2
#: Deviations below this share of a unit's value (and of one contributor) are solver noise.
NOISE = 1e-9


class Witnesses:
    """Finds witnesses for (unit, direction) pairs, cheapest first, and credits them.

    It may move the units in `movable`: every non-zero cell when suppressing (a published cell it
    moves is then hidden, `hide`), only the hidden ones when auditing. A witness is sought first
    among the unit's own indicator, then its led/involved pair, then every indicator the rules
    tie together: the smaller models are restrictions of the larger (the others held at their
    true values), so what they find is a witness of the whole.
    """

    def __init__(self, system: CellSystem, coverage: Coverage, movable: np.ndarray,
                 hidden: np.ndarray, *, hide: bool, tiers: int = 3):
        self.system, self.coverage = system, coverage
        self.movable, self.hidden, self.hide = movable & ~system.zero, hidden, hide
        self.widest = tiers
        #: Where no table fools every respondent at once, look for one that fools the outsider.
        self.fallback = True
        #: Units no witness may move (published cells, once suppression is done).
        self.fixed = np.zeros(system.N, dtype=bool)
        self._universal = system.bounds(all_respondents=True)
        self._outsider = system.bounds()
        self.universal = tuple(b.copy() for b in self._universal)
        self.outsider = tuple(b.copy() for b in self._outsider)
        self.models: dict[tuple, Model] = {}
        self.value_cost = np.zeros(system.N)
        self.count_cost = np.zeros(system.N)
        self._price(np.arange(system.N))

    def _price(self, units: np.ndarray) -> None:
        """Moving a published cell costs more per unit the larger it is, so small cells go first
        (1 + log(1 + value) per unit of value, per contributor its mean contribution's worth)."""
        s = self.system
        weight = 1.0 + np.log1p(s.x[units])
        shown = ~self.hidden[units]
        sole = s.sole_owner[units] >= 0
        self.value_cost[units] = weight * np.where(shown, 1.0, np.where(sole, SOLE_PRICE,
                                                                        HIDDEN_PRICE))
        mean = np.where(s.n[units] > 0, s.x[units] / np.maximum(s.n[units], 1), 1.0)
        self.count_cost[units] = self.value_cost[units] * np.maximum(mean, 1.0)

    def fix(self, units: np.ndarray, fixed: bool = True) -> None:
        """Let no witness move these units from now on (or, fixed=False, again)."""
        units = np.atleast_1d(units)
        self.fixed[units] = fixed
        columns = np.concatenate([units, self.system.N + units])
        held = np.concatenate([self.fixed[units], self.fixed[units]])
        for bounds, pristine in ((self.universal, self._universal),
                                 (self.outsider, self._outsider)):
            for part in (2, 3):  # the column bounds
                bounds[part][columns] = np.where(held, 0.0, pristine[part][columns])
        for model in self.models.values():
            model.refresh(units, self.universal)

    def held(self, bounds):
        """An intruder's (fresh) bounds, with every fixed unit held at its true value."""
        columns = np.flatnonzero(np.concatenate([self.fixed, self.fixed]))
        bounds[2][columns] = 0.0
        bounds[3][columns] = 0.0
        return bounds

    def _tiers(self, u: int) -> list[tuple]:
        s = self.system
        name = s.indicators[s.indicator_of[u]]
        tiers = [(name,)]
        for pair in s.knowledge.pairs:
            if name in pair:
                tiers.append(pair)
        for group in s.knowledge.groups():
            if name in group and len(group) > len(tiers[-1]):
                tiers.append(group)
        return tiers[:self.widest]

    def _model(self, tier: tuple) -> Model:
        if tier not in self.models:
            s = self.system
            wanted = np.isin(s.indicator_of, [s.indicators.index(i) for i in tier])
            units = np.flatnonzero(wanted & self.movable)
            model = Model(s, units, self.universal, split=True)
            model.set_costs(self.value_cost[units], self.count_cost[units])
            self.models[tier] = model
        return self.models[tier]

    def search(self, u: int, target: float, bounds=None, where=None):
        """The cheapest witness putting u at `target` under an intruder's bounds (default: every
        respondent at once; `where` they differ from that, see CellSystem.differs): (units, dv,
        dc), or None when there is none."""
        for tier in self._tiers(u):
            model = self._model(tier)
            if not model.has(u):
                return None
            if bounds is not None:
                model.set_bounds(bounds, where)
            try:
                found = model.move(u, target)
            finally:
                if bounds is not None:
                    model.set_bounds(self.universal, where)
            if found is not None:
                return (model.units, *found)
        return None

    def take(self, units: np.ndarray, dv: np.ndarray, dc: np.ndarray) -> set[int]:
        """Credit a witness; when suppressing, hide the published cells it moves first."""
        s = self.system
        dv = np.where(np.abs(dv) > NOISE * np.maximum(s.x[units], 1.0), dv, 0.0)
        dc = np.where(np.abs(dc) > NOISE, dc, 0.0)
        kept = (dv != 0) | (dc != 0)
        units, dv, dc = units[kept], dv[kept], dc[kept]
        newly = units[~self.hidden[units]]
        if newly.size:
            if not self.hide:
                raise AssertionError("a witness moved a published cell it may not move")
            self.hidden[newly] = True
            self._price(newly)
            for model in self.models.values():
                model.set_costs(self.value_cost[model.units], self.count_cost[model.units])
        return self.coverage.add(units, dv, dc)

    def settle(self, u: int, d: int) -> list[int]:
        """Find witnesses until every intruder is shown one for (u, d), or none exists; returns
        the intruders for whom none exists (OUTSIDER first if the outsider)."""
        s, cov = self.system, self.coverage
        if not cov.needs_witness(u, d):
            return []
        failed = []
        if (u, d) not in cov.outsider or cov.uncovered.get((u, d)) is None:
            target = cov.targets[d][u]
            dominant = s.dominant_respondent(u, cov.margins) if d == DOWN else -1
            bounds = None if dominant < 0 else self.held(s.bounds(
                all_respondents=True, except_respondent=dominant, except_unit=u))
            found = self.search(u, target, bounds, (s.share_row[[u]], np.array([u])))
            if found is None and self.fallback:
                found = self.search(u, target, self.outsider, s.differs())
            if found is None:
                # Not even the outsider can be fooled. A respondent with no share in u knows
                # more, so is no more fooled; one with a share needs its rest protected.
                failed.append(OUTSIDER)
                cov.outsider.add((u, d))
                cov.uncovered[(u, d)] = set(s.contributors_known(u))
            else:
                self.take(*found)
        for r in sorted(cov.uncovered.get((u, d)) or ()):
            if r not in cov.uncovered[(u, d)]:
                continue  # a witness found meanwhile fooled it
            target = s.target(u, d, s.respondent_share(r, u), margins=cov.margins)
            if target is None:
                cov.uncovered[(u, d)].discard(r)
                continue
            found = self.search(u, target, self.held(s.bounds(r)), s.differs(r))
            if found is None:
                failed.append(r)
                continue
            self.take(*found)
        return failed
