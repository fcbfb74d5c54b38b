"""Disclosure control of the magnitude cells (monitoring-tables.md §3): the primary rules,
secondary suppression that holds against both intruders, and the audit that proves it.

Pure: frames in, frames out, no file I/O. The step that reads and writes a year's cells is
pipeline.protect.
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.disclosure import work
from pipeline.disclosure.audit import FINDING_SCHEMA
from pipeline.disclosure.system import CellSystem, Knowledge, Relation
from pipeline.disclosure.work import (
    Workers,
    audit_parts,
    audit_units,
    balanced,
    protect_indicators,
    suppress_indicators,
)
from schemas.tables import HIDDEN_BY

__all__ = ["DisclosureError", "Knowledge", "Protection", "Relation", "audit", "protect",
           "summary"]

class DisclosureError(RuntimeError):
    """The audit found a primary cell an intruder can narrow to within ±15%."""


@dataclass(frozen=True)
class Protection:
    #: cell, indicator, hidden_by: frequency, dominance, secondary, or null when published.
    statuses: pl.DataFrame
    #: The audit's exact bounds: cell, indicator, rule, intruder ("outsider" or a respondent),
    #: truth (the value, less the respondent's share), lower, upper, recovered, floor.
    findings: pl.DataFrame
    #: What the audit did: primary cells, the suppression's witnesses it was offered and those
    #: it rejected (none, unless something is wrong), witnesses it found, exact bounds.
    effort: dict


def protect(cells: pl.DataFrame, relations: list[Relation], members: pl.DataFrame,
            knowledge: Knowledge, workers: int | None = None) -> Protection:
    """Hide the primary cells and the published ones their protection needs, then audit.

    cells: cell, indicator, value, contributors, enterprises, top1, top2, for every cell and
    magnitude, and the cell's `knowledge.leading` count. members: respondent, cell, indicator,
    value: every sole contributor's value in each cell it counts in (see CellSystem).
    """
    inputs = (cells, relations, members, knowledge)
    with Workers(inputs, workers) as pool:
        system = work.system()
        rule = system.primary_rule()
        primary = rule != None  # noqa: E711 (element-wise)
        # Sets of indicators the rules do not tie together are suppressed and audited apart:
        # the largest here, while the others suppress and audit theirs.
        cost = {g: float(primary[_units_of(system, g)].sum()) * math.sqrt(len(g))
                for g in knowledge.groups()}
        largest, *others = [sum(chunk, ()) for chunk in balanced(cost, pool.count)]
        elsewhere = [pool.submit(protect_indicators, chunk) for chunk in others]
        hidden, offered = suppress_indicators(largest)
        hidden |= primary
        # Its audit is shared out too, this process taking the first part.
        audits = _share_out(pool, hidden, audit_parts(system, hidden, largest), offered)
        offered_count = len(offered)
        for future in elsewhere:
            part, audited, found = future.result()
            hidden |= part
            audits += [_done(a) for a in audited]
            offered_count += found
        findings, effort = _findings(audits)
    effort["witnesses_offered"] = offered_count
    secondary = hidden & ~primary
    hidden_by = np.where(primary, rule, np.where(secondary, "secondary", None))
    return Protection(_statuses(system, hidden_by), findings, effort)


def audit(cells: pl.DataFrame, relations: list[Relation], members: pl.DataFrame,
          knowledge: Knowledge, hidden: pl.DataFrame, workers: int | None = None
          ) -> tuple[pl.DataFrame, dict]:
    """The audit of a year as published: `hidden` names the cell and indicator of every hidden
    magnitude cell. Returns the exact bounds worked out, and the work it took."""
    inputs = (cells, relations, members, knowledge)
    with Workers(inputs, workers) as pool:
        system = work.system()
        mask = np.zeros(system.N, dtype=bool)
        for cell, indicator in hidden.select("cell", "indicator").rows():
            mask[system.unit(cell, indicator)] = True
        parts = audit_parts(system, mask, sum(knowledge.groups(), ()))
        return _findings(_share_out(pool, mask, parts, []))


def _units_of(system: CellSystem, indicators: tuple[str, ...]) -> np.ndarray:
    return np.isin(system.indicator_of, [system.indicators.index(i) for i in indicators])


def _share_out(pool: Workers, hidden: np.ndarray, parts: list[np.ndarray],
               offered: list) -> list[Future]:
    """Audit the parts, the first here and the others in the other processes."""
    audits = [pool.submit(audit_units, hidden, part, offered) for part in parts[1:]]
    return [_done(audit_units(hidden, parts[0], offered)), *audits] if parts else audits


def _done(result) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


def _findings(audits: list[Future]) -> tuple[pl.DataFrame, dict]:
    """The audit's exact bounds, and the work it took."""
    findings, effort = [], {}
    for future in audits:
        found, counts = future.result()
        findings += found
        for key, value in counts.items():
            effort[key] = effort.get(key, 0) + value
    frame = pl.DataFrame(findings, schema=FINDING_SCHEMA).sort("indicator", "cell", "intruder")
    return frame, effort


def _statuses(system: CellSystem, hidden_by: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({
        "cell": [system.cells[k] for k in system.cell_of],
        "indicator": [system.indicators[i] for i in system.indicator_of],
        "hidden_by": pl.Series(hidden_by.tolist(), dtype=pl.String),
    })


def summary(statuses: pl.DataFrame, findings: pl.DataFrame, knowledge: Knowledge) -> dict:
    """Per indicator: cells hidden by each rule, and the audit's figures (monitoring-tables §3).

    The narrowest interval found is given as shares of the true value (of the rest, for a
    respondent): the highest lower bound and the lowest upper bound the audit worked out,
    leaving out lower bounds that say nothing (a count's at 1) and floors (lower bounds the
    always-published figures alone give, counted apart)."""
    out = {}
    says_nothing = pl.col("indicator").is_in(list(knowledge.counts)) & (pl.col("lower") <= 1)
    for (indicator,), part in statuses.group_by("indicator", maintain_order=True):
        hidden = dict.fromkeys(HIDDEN_BY, 0)
        hidden.update(part["hidden_by"].drop_nulls().value_counts().rows())
        found = findings.filter(pl.col("indicator") == indicator)
        bounds = found.filter(~pl.col("floor"))
        lower = bounds.filter(pl.col("lower").is_finite() & ~says_nothing)
        upper = bounds.filter(pl.col("upper").is_finite())
        out[indicator] = {
            "cells": part.height,
            "hidden": hidden,
            "audit": {
                "primary_cells": hidden["frequency"] + hidden["dominance"],
                "exact_bounds": found.height,
                "narrowest_lower_share": _share((lower["lower"] / lower["truth"]).max()),
                "narrowest_upper_share": _share((upper["upper"] / upper["truth"]).min()),
                "floors": found.filter(pl.col("floor")).height,
                "recoverable": found.filter(pl.col("recovered").is_not_null()).height,
            },
        }
    return out


def _share(value) -> float | None:
    return None if value is None else round(float(value), 4)
