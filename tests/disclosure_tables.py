"""Small linked tables built from enterprises, for the disclosure tests: the cells and members
the solver takes, version 1's suppression as the reference the new one improves on, and the
§3 intruders written out afresh as linear programs (scipy), apart from the solver's own."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.optimize import linprog

from pipeline.disclosure import Knowledge, Relation

PAIRS = (("a_led", "a_involved"), ("b_led", "b_involved"))
LEDS = tuple(led for led, _ in PAIRS)
AMOUNT, COUNT, LEADING = "amount", "count", "leading"
KNOWLEDGE = Knowledge(magnitudes=(*sum(PAIRS, ()), AMOUNT, COUNT),
                      counts=frozenset({*sum(PAIRS, ()), COUNT}), pairs=PAIRS, leading=LEADING)


@dataclass
class Firm:
    name: str
    cells: tuple[str, ...]
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class Tables:
    """Linked tables: the cells (every magnitude, plus the leading count), relations, members."""

    firms: list[Firm]
    relations: list[Relation]
    cell_names: list[str]

    def __post_init__(self):
        self.intruders: dict = {}
        rows, members = [], []
        for cell in self.cell_names:
            inside = [f for f in self.firms if cell in f.cells]
            for indicator in KNOWLEDGE.magnitudes:
                values = sorted((f.values.get(indicator, 0.0) for f in inside), reverse=True)
                rows.append({"cell": cell, "indicator": indicator, "value": float(sum(values)),
                             "contributors": sum(v > 0 for v in values),
                             "enterprises": len(inside), "top1": (values + [0.0, 0.0])[0],
                             "top2": (values + [0.0, 0.0])[1]})
            leading = sum(any(f.values.get(led, 0) > 0 for led in LEDS) for f in inside)
            rows.append({"cell": cell, "indicator": LEADING, "value": float(leading),
                         "contributors": leading, "enterprises": len(inside),
                         "top1": min(leading, 1.0), "top2": min(max(leading - 1, 0), 1.0)})
            for firm in inside:
                members += [{"respondent": firm.name, "cell": cell, "indicator": i,
                             "value": float(firm.values.get(i, 0.0))}
                            for i in KNOWLEDGE.magnitudes]
        self.cells = pl.DataFrame(rows, schema={
            "cell": pl.String, "indicator": pl.String, "value": pl.Float64,
            "contributors": pl.Int64, "enterprises": pl.Int64, "top1": pl.Float64,
            "top2": pl.Float64})
        self.members = pl.DataFrame(members, schema={"respondent": pl.String, "cell": pl.String,
                                                     "indicator": pl.String,
                                                     "value": pl.Float64})

    def cell(self, cell: str, indicator: str) -> dict:
        return self.cells.filter((pl.col("cell") == cell) & (pl.col("indicator") == indicator)
                                 ).row(0, named=True)

    def primary(self) -> set[tuple[str, str]]:
        """§3's primary rules, read straight off the cells."""
        magnitudes = self.cells.filter(pl.col("indicator").is_in(KNOWLEDGE.magnitudes))
        return {(r["cell"], r["indicator"]) for r in magnitudes.iter_rows(named=True)
                if r["value"] > 0 and (r["contributors"] < 3
                                       or r["top1"] + r["top2"] > 0.85 * r["value"] * (1 + 1e-9))}

    def hidden_frame(self, hidden: set[tuple[str, str]]) -> pl.DataFrame:
        return pl.DataFrame(sorted(hidden), schema=["cell", "indicator"], orient="row")


def version_1(tables: Tables) -> set[tuple[str, str]]:
    """Version 1's suppression, as its README told it: each primary cell, largest first, moved up
    and down by 15% in the cheapest LP over the additive relations (values ≥ 0, free zeros
    fixed); the published cells it moves are hidden. It knows nothing else an intruder knows."""
    hidden = set(tables.primary())
    for indicator in KNOWLEDGE.magnitudes:
        value = {c: tables.cell(c, indicator)["value"] for c in tables.cell_names}
        names = tables.cell_names
        for target in sorted((c for c, i in tables.primary() if i == indicator),
                             key=lambda c: (-value[c], c)):
            for direction in (1, -1):
                n = len(names)
                # x = [up_0..up_n, down_0..down_n]; deviation = up - down.
                cost = [0.0 if (c, indicator) in hidden else 1 + math.log1p(value[c])
                        for c in names] * 2
                bounds = [(0, None) if value[c] > 0 else (0, 0) for c in names] + [
                    (0, value[c]) for c in names]
                j = names.index(target)
                shift = 0.15 * value[target] + 1e-6
                bounds[j if direction > 0 else n + j] = (shift, shift)
                bounds[n + j if direction > 0 else j] = (0, 0)
                equalities = [[0.0] * 2 * n for _ in tables.relations]
                for row, relation in zip(equalities, tables.relations, strict=True):
                    for c, a in [(relation.parent, 1.0), *((ch, -1.0) for ch in relation.children)]:
                        row[names.index(c)], row[n + names.index(c)] = a, -a
                result = linprog(cost, A_eq=equalities or None,
                                 b_eq=[0.0] * len(equalities) or None, bounds=bounds,
                                 method="highs")
                assert result.status == 0, result.message
                moved = np.abs(result.x[:n]) + np.abs(result.x[n:]) > 1e-9
                hidden |= {(c, indicator) for c, m in zip(names, moved, strict=True) if m}
    return hidden


# -- the intruders of §3, written out afresh --------------------------------------------------


def intruder_bound(tables: Tables, hidden: set[tuple[str, str]], target: tuple[str, str],
                   direction: int, respondent: str | None = None) -> float:
    """The least (-1) or greatest (+1) value of a hidden cell that an intruder can derive: the
    informed outsider, or a respondent with its own return (monitoring-tables.md §3)."""
    return _intruder(tables, frozenset(hidden), respondent).bound(target, direction)


def _intruder(tables: Tables, hidden: frozenset, respondent: str | None) -> _Intruder:
    """The intruder's LP, built once per tables, hidden pattern and intruder."""
    key = (hidden, respondent)
    if key not in tables.intruders:
        tables.intruders[key] = _Intruder(tables, hidden, respondent)
    return tables.intruders[key]


class _Intruder:
    """The intruder's LP over the hidden cells: for each, its value and its contributors."""

    def __init__(self, tables: Tables, hidden: frozenset, respondent: str | None):
        variables = sorted(hidden)
        self.k = k = {key: i for i, key in enumerate(variables)}
        m = self.m = len(variables)
        true = {(r["cell"], r["indicator"]): r for r in tables.cells.iter_rows(named=True)}
        firm = next((f for f in tables.firms if f.name == respondent), None)
        a_eq, b_eq, a_ub, b_ub = [], [], [], []
        value_bounds, count_bounds = [], []

        def term(key, part):
            """(coefficients, constant) of a cell's value (part 0) or contributors (part 1)."""
            row = np.zeros(2 * m)
            if key in k:
                row[k[key] + part * m] = 1.0
                return row, 0.0
            return row, true[key]["value" if part == 0 else "contributors"]

        for key in variables:
            r = true[key]
            step = 1.0 if key[1] in KNOWLEDGE.counts else 0.01
            most = r["enterprises"]  # contributors: not zero, as the cell is not; at most all
            if key[1] in LEDS:
                most = min(most, true[(key[0], LEADING)]["value"])
            own = firm.values.get(key[1], 0.0) if firm and key[0] in firm.cells else None
            if own == 0:
                most = min(most, r["enterprises"] - 1)  # it knows it is not a contributor
            if own and r["contributors"] == 1:  # it alone made up the cell: knows it exactly
                value_bounds.append((r["value"], r["value"]))
                count_bounds.append((1, 1))
            else:
                value_bounds.append((0, None))
                count_bounds.append((1, most))
            row = np.zeros(2 * m)  # value ≥ step · contributors, or its share and step · others
            row[k[key]], row[k[key] + m] = -1.0, step
            a_ub.append(row)
            b_ub.append(step - own if own else 0.0)
        for relation in tables.relations:
            for indicator in KNOWLEDGE.magnitudes:
                for part in (0, 1):  # values and contributors both add up
                    row, constant = term((relation.parent, indicator), part)
                    total = -constant
                    for child in relation.children:
                        child_row, child_constant = term((child, indicator), part)
                        row = row - child_row
                        total += child_constant
                    if row.any():
                        a_eq.append(row)
                        b_eq.append(total)
        for cell in tables.cell_names:
            for led, involved in PAIRS:
                for part in (0, 1):  # E009, and so for their contributors too
                    led_row, led_constant = term((cell, led), part)
                    involved_row, involved_constant = term((cell, involved), part)
                    if (led_row - involved_row).any():
                        a_ub.append(led_row - involved_row)
                        b_ub.append(involved_constant - led_constant)
            rows = [term((cell, led), 1) for led in LEDS]  # together at least the leading count
            row = -sum(r for r, _ in rows)
            if row.any():
                a_ub.append(row)
                b_ub.append(sum(c for _, c in rows) - true[(cell, LEADING)]["value"])
        self.problem = {"A_ub": np.array(a_ub) if a_ub else None, "b_ub": b_ub or None,
                        "A_eq": np.array(a_eq) if a_eq else None, "b_eq": b_eq or None,
                        "bounds": value_bounds + count_bounds}

    def bound(self, target: tuple[str, str], direction: int) -> float:
        objective = np.zeros(2 * self.m)
        objective[self.k[target]] = -direction
        result = linprog(objective, method="highs", **self.problem)
        if result.status == 3:
            return math.inf
        assert result.status == 0, result.message
        return -result.fun if direction > 0 else result.fun


def recovered(tables: Tables, hidden: set[tuple[str, str]], target: tuple[str, str],
              respondent: str | None = None) -> str | None:
    """§3's test on the intruder's bounds of a primary cell's rest: "lower" or "upper" when
    within ±15% of its true value. A count's bounds are whole numbers, a count's lower bound of
    1 recovers nothing, and neither does one that holds with every non-zero cell hidden."""
    firm = next((f for f in tables.firms if f.name == respondent), None)
    share = firm.values.get(target[1], 0.0) if firm and target[0] in firm.cells else 0.0
    rest = tables.cell(*target)["value"] - share
    if rest <= 0:
        return None
    lower = intruder_bound(tables, hidden, target, -1, respondent) - share
    upper = intruder_bound(tables, hidden, target, 1, respondent) - share
    if target[1] in KNOWLEDGE.counts and math.isfinite(upper):
        upper = math.floor(upper + 1e-6)
    if target[1] in KNOWLEDGE.counts:
        lower = math.ceil(lower - 1e-6)
        lower = lower if lower > 1 else -math.inf
    margin = 1e-6
    if upper <= 1.15 * rest + margin:
        return "upper"
    if lower >= 0.85 * rest - margin:
        everything = {(r["cell"], r["indicator"]) for r in tables.cells.iter_rows(named=True)
                      if r["indicator"] in KNOWLEDGE.magnitudes and r["value"] > 0}
        floor = intruder_bound(tables, everything, target, -1, respondent) - share
        if target[1] in KNOWLEDGE.counts:
            floor = math.ceil(floor - 1e-6)
        return None if floor >= 0.85 * rest - margin else "lower"
    return None


def respondents(tables: Tables) -> list[str]:
    """Every firm that alone contributes to some non-zero cell."""
    sole = {(c, i) for c, i in tables.primary() if tables.cell(c, i)["contributors"] == 1}
    return sorted({f.name for f in tables.firms for c, i in sole
                   if c in f.cells and f.values.get(i, 0) > 0})
