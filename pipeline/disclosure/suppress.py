"""Secondary suppression: hide the published cells that the cheapest witnesses need, then
publish again those the protection can do without."""

from __future__ import annotations

import numpy as np

from pipeline.disclosure.system import DOWN, UP, CellSystem
from pipeline.disclosure.witness import Coverage, Witnesses


def suppress(system: CellSystem, primary: np.ndarray) -> tuple[np.ndarray, Witnesses]:
    """Which units to hide: the primary ones, and the published ones that tables fooling every
    intruder need (the hidden mask, and the witnesses found)."""
    hidden = primary.copy()
    coverage = Coverage(system, primary)
    witnesses = Witnesses(system, coverage, ~system.zero, hidden, hide=True)
    # Largest first: their wide moves hide cells that then protect the smaller ones for free.
    order = sorted(np.flatnonzero(primary), key=lambda u: (-system.x[u], u))
    for u in order:
        for d in (UP, DOWN):
            for intruder in witnesses.settle(int(u), d):
                # Every non-zero cell could move, and still no table fools this intruder: its
                # bound follows from what is always published (enterprise counts, zeros).
                coverage.settle_floor(int(u), d, intruder)
    publish_back(system, witnesses, primary)
    return hidden, witnesses


def _sole_partner(rows, columns, hidden: np.ndarray, primary: np.ndarray, u: int) -> bool:
    """Whether u is the only other hidden cell of some relation with a primary cell, which
    can then move only if u does: no table without u exists, and no LP need say so."""
    for row in columns.indices[columns.indptr[u]:columns.indptr[u + 1]]:
        cells = rows.indices[rows.indptr[row]:rows.indptr[row + 1]]
        others = cells[hidden[cells] & (cells != u)]
        if others.size == 1 and primary[others[0]]:
            return True
    return False


#: How widely publish_back looks for tables without a cell: 1, the cell's own indicator; 2, also
#: its led/involved pair; 3, every indicator the rules tie together. On a 50,000-enterprise year
#: 2 publishes about 5% more cells again than 1, for twice the time.
PUBLISH_BACK_TIERS = 1


def publish_back(system: CellSystem, witnesses: Witnesses, primary: np.ndarray) -> None:
    """Publish again each secondary cell, largest first, that the protection can do without.
    The greedy pass above hides what each cell's cheapest tables need, cell by cell; a cell
    hidden early may be needed by none once others are hidden. It is published if every pair
    its witnesses helped settle is settled again by tables that move other hidden cells only."""
    coverage, hidden = witnesses.coverage, witnesses.hidden
    # Tables that move hidden cells only (smaller LPs than suppression's), and only within a
    # cell's own indicator: a cell these cannot do without stays hidden.
    again = Witnesses(system, coverage, hidden.copy(), hidden, hide=False,
                      tiers=PUBLISH_BACK_TIERS)
    values = system.A[:system.relation_rows, :system.N].tocsr()  # the relations of values
    by_cell = values.tocsc()
    for u in sorted(np.flatnonzero(hidden & ~primary), key=lambda u: (-system.x[u], u)):
        if _sole_partner(values, by_cell, hidden, primary, int(u)):
            continue
        gone = set(coverage.moving.get(int(u), ())) - coverage.taken_back
        pairs = coverage.settled_by(gone)
        saved = coverage.forget(pairs, gone)
        again.fix(np.array([u]))
        if all(not again.settle(*pair) for pair in sorted(pairs)):
            hidden[u] = False
            coverage.taken_back |= gone
        else:
            coverage.restore(saved)
            again.fix(np.array([u]), fixed=False)
