"""The solver's parts side by side: sets of indicators the rules do not tie together are
suppressed apart, and the audit's bounds are split by the work they take. Each worker process
builds the year's CellSystem once from the same frames, so the parts agree exactly."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

from pipeline.disclosure.audit import Audit
from pipeline.disclosure.suppress import suppress
from pipeline.disclosure.system import CellSystem
from pipeline.processes import die_with_parent, without_main_script

_SYSTEM: CellSystem | None = None


def _start(*inputs) -> None:
    global _SYSTEM
    _SYSTEM = CellSystem(*inputs)


def _start_worker(parent: int, *inputs) -> None:
    die_with_parent(parent)
    _start(*inputs)


def system() -> CellSystem:
    """This process's CellSystem (Workers builds it)."""
    return _SYSTEM


def suppress_indicators(indicators: tuple[str, ...]) -> tuple[np.ndarray, list]:
    """Suppression of some indicator sets: (hidden mask, the witnesses found)."""
    s = _SYSTEM
    primary = (s.primary_rule() != None) & np.isin(  # noqa: E711 (element-wise)
        s.indicator_of, [s.indicators.index(i) for i in indicators])
    hidden, witnesses = suppress(s, primary)
    return hidden, witnesses.coverage.held()


def audit_units(hidden: np.ndarray, units: np.ndarray, offered: list) -> tuple[list, dict]:
    """The audit of some primary units: (exact bounds, work counts)."""
    return Audit(_SYSTEM, hidden, _SYSTEM.primary_rule()).run(units, offered)


def protect_indicators(indicators: tuple[str, ...]) -> tuple[np.ndarray, list[tuple], int]:
    """Suppression of some indicator sets, then their audit part by part (audit_parts):
    (hidden mask, each part's audit, how many witnesses the suppression offered it)."""
    hidden, found = suppress_indicators(indicators)
    hidden |= _SYSTEM.primary_rule() != None  # noqa: E711 (element-wise)
    return hidden, [audit_units(hidden, part, found)
                    for part in audit_parts(_SYSTEM, hidden, indicators)], len(found)


#: The audit of an indicator set is shared out in parts of about this much work (cells bounded
#: times the size of their LP). The parts depend on the year's cells alone, not on the number of
#: workers, so that every run solves the same LPs in the same order and finds the same bounds.
AUDIT_PART_WORK = 400_000


def audit_parts(system: CellSystem, hidden: np.ndarray,
                indicators: tuple[str, ...]) -> list[np.ndarray]:
    """The primary units of some indicator sets, in parts of about AUDIT_PART_WORK each."""
    plan = Audit(system, hidden, system.primary_rule())
    parts = []
    for group in system.knowledge.groups():
        if group[0] not in indicators:
            continue
        mine = np.isin(system.indicator_of, [system.indicators.index(i) for i in group])
        size = {int(u): plan.cost(int(u)) for u in np.flatnonzero(plan.primary & mine)}
        count = max(1, round(sum(size.values()) / AUDIT_PART_WORK))
        parts += [np.array(sorted(part)) for part in balanced(size, count)]
    return parts


class Workers:
    """Runs calls against one CellSystem in this process and `count - 1` spawned ones."""

    def __init__(self, inputs: tuple, count: int | None = None):
        self.count = max(1, count or os.cpu_count() or 1)
        if multiprocessing.current_process().daemon:
            self.count = 1  # a daemonic process (a worker of some pool) may not have children
        self.pool = None
        if self.count > 1:
            # spawn, not fork: a forked child of a process running polars' threads can deadlock.
            self.pool = ProcessPoolExecutor(self.count - 1, multiprocessing.get_context("spawn"),
                                            initializer=_start_worker,
                                            initargs=(os.getpid(), *inputs))
            # Starting a process hands it the year's cells, and waits until it has read them
            # (after importing polars): calls go through a thread, so that this one goes on.
            self.dispatch = ThreadPoolExecutor(1)
            self.dispatch.submit(self._start_processes)
        _start(*inputs)

    def _start_processes(self) -> None:
        with without_main_script():
            for _ in range(self.count - 1):  # each call starts a process
                self.pool.submit(os.getpid)

    def submit(self, function: Callable, *args) -> Future:
        """Start a call in another process (in this one, at once, when there is none)."""
        if self.pool is not None:
            return _through(self.dispatch.submit(self.pool.submit, function, *args))
        future: Future = Future()
        future.set_result(function(*args))
        return future

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.dispatch.shutdown()
            self.pool.shutdown(cancel_futures=True)


def _through(outer: Future) -> Future:
    """The outcome of the future that `outer` ends with."""
    done: Future = Future()

    def inner_done(inner: Future) -> None:
        if inner.exception() is not None:
            done.set_exception(inner.exception())
        else:
            done.set_result(inner.result())

    def outer_done(_: Future) -> None:
        if outer.exception() is not None:
            done.set_exception(outer.exception())
        else:
            outer.result().add_done_callback(inner_done)

    outer.add_done_callback(outer_done)
    return done


def balanced(costs: dict, bins: int) -> list[list]:
    """Keys in `bins` lists of about equal total cost, largest first (LPT), empty ones dropped."""
    loads = [0.0] * bins
    out: list[list] = [[] for _ in range(bins)]
    for key in sorted(costs, key=lambda k: (-costs[k], str(k))):
        smallest = loads.index(min(loads))
        out[smallest].append(key)
        loads[smallest] += costs[key]
    return [b for b in sorted(out, key=lambda b: -sum(costs[k] for k in b)) if b]
