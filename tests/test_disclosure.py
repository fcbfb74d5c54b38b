"""Disclosure control against the intruders of monitoring-tables.md §3.

For each piece of what an intruder knows, a hand-built linked table where version 1's
suppression (additive relations and values ≥ 0 only) leaves a primary cell recoverable and the
new one does not. Every verdict is checked twice: by the solver's own audit, and by the intruders
written out afresh in disclosure_tables.py from §3's text. Then many random small tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from disclosure_tables import (
    AMOUNT,
    COUNT,
    KNOWLEDGE,
    Firm,
    Tables,
    intruder_bound,
    recovered,
    respondents,
    version_1,
)

from pipeline.disclosure import DisclosureError, Relation, audit, protect, summary
from pipeline.disclosure.system import CellSystem

T_ABC = [Relation("T", ("A", "B", "C"))]


def many(prefix: str, cells: tuple[str, ...], count: int, values: dict) -> list[Firm]:
    """`count` firms alike: enough contributors, none dominant, so their cells are published."""
    return [Firm(f"{prefix}{k}", cells, dict(values)) for k in range(count)]


def audited(tables: Tables, hidden: set) -> pl.DataFrame:
    findings, _ = audit(tables.cells, tables.relations, tables.members, KNOWLEDGE,
                        tables.hidden_frame(hidden), workers=1)
    return findings


def recoveries(findings: pl.DataFrame) -> set[tuple[str, str, str, str]]:
    """(cell, indicator, intruder, side) of every recovered cell."""
    return set(findings.filter(pl.col("recovered").is_not_null())
               .select("cell", "indicator", "intruder", "recovered").rows())


def hidden_of(protection) -> set[tuple[str, str]]:
    return set(protection.statuses.filter(pl.col("hidden_by").is_not_null())
               .select("cell", "indicator").rows())


def assert_protected(tables: Tables) -> set[tuple[str, str]]:
    """protect() hides a pattern that neither its own audit nor the intruders written afresh
    can break, for the outsider and every respondent."""
    protection = protect(tables.cells, tables.relations, tables.members, KNOWLEDGE, workers=1)
    assert not recoveries(protection.findings)
    hidden = hidden_of(protection)
    assert tables.primary() <= hidden
    assert not recoveries(audited(tables, hidden))
    for target in sorted(tables.primary()):
        for intruder in (None, *respondents(tables)):
            assert recovered(tables, hidden, target, intruder) is None, (target, intruder)
    return hidden


# ---------------------------------------------------------------------------------------------
# Primary rules
# ---------------------------------------------------------------------------------------------


def test_primary_rules_frequency_and_dominance():
    firms = [Firm("a", ("A",), {AMOUNT: 50.0}),  # one contributor
             Firm("b", ("B",), {AMOUNT: 30.0}), Firm("b2", ("B",), {AMOUNT: 20.0}),  # two
             *many("c", ("C",), 3, {AMOUNT: 30.0}),  # three alike: published
             Firm("d", ("D",), {AMOUNT: 60.0}), Firm("d2", ("D",), {AMOUNT: 30.0}),
             Firm("d3", ("D",), {AMOUNT: 10.0}),  # top two 90%: dominated
             Firm("e", ("E",), {AMOUNT: 50.0}), Firm("e2", ("E",), {AMOUNT: 35.0}),
             *many("e", ("E",), 3, {AMOUNT: 5.0})]  # top two exactly 85%: published
    tables = Tables(firms, [], ["A", "B", "C", "D", "E", "Z"])
    system = CellSystem(tables.cells, [], tables.members, KNOWLEDGE)
    rule = {c: system.primary_rule()[system.unit(c, AMOUNT)] for c in "ABCDEZ"}
    assert rule == {"A": "frequency", "B": "frequency", "C": None, "D": "dominance",
                    "E": None, "Z": None}  # Z: zero, no contributors, free


def test_cells_that_do_not_add_up_are_refused():
    tables = Tables([Firm("a", ("T", "A"), {AMOUNT: 5.0}), Firm("b", ("B",), {AMOUNT: 1.0})],
                    T_ABC, ["T", "A", "B", "C"])
    with pytest.raises(ValueError, match="does not add up"):
        protect(tables.cells, tables.relations, tables.members, KNOWLEDGE, workers=1)


# ---------------------------------------------------------------------------------------------
# Each piece of the outsider's knowledge
# ---------------------------------------------------------------------------------------------


def test_a_hidden_count_is_never_zero():
    # T = A + B + C; B is one firm's 1. Version 1 lets A and B cover each other, but B ≥ 1
    # (hiding a cell tells it is not zero), so A ≤ T − C − 1: its true value, exactly.
    tables = Tables([Firm("a", ("T", "A"), {COUNT: 5}), Firm("b", ("T", "B"), {COUNT: 1}),
                     *many("c", ("T", "C"), 3, {COUNT: 10})], T_ABC, ["T", "A", "B", "C"])
    old = version_1(tables)
    assert old == {("A", COUNT), ("B", COUNT)}
    assert ("A", COUNT, "outsider", "upper") in recoveries(audited(tables, old))
    assert intruder_bound(tables, old, ("A", COUNT), 1) == pytest.approx(5.0)
    assert recovered(tables, old, ("A", COUNT)) == "upper"
    assert_protected(tables)


def test_a_hidden_count_is_at_least_its_contributors_which_differencing_bounds():
    # T's and C's contributors are published: A and B have 3 between them. A has one
    # enterprise, so at most one contributor: B has 2, each adding at least 1. B ≥ 2, its value.
    tables = Tables([Firm("a", ("T", "A"), {COUNT: 8}),
                     *many("b", ("T", "B"), 2, {COUNT: 1}),
                     *many("c", ("T", "C"), 3, {COUNT: 10})], T_ABC, ["T", "A", "B", "C"])
    old = version_1(tables)
    assert old == {("A", COUNT), ("B", COUNT)}
    found = recoveries(audited(tables, old))
    assert ("B", COUNT, "outsider", "lower") in found
    assert intruder_bound(tables, old, ("B", COUNT), -1) == pytest.approx(2.0)
    assert recovered(tables, old, ("B", COUNT)) == "lower"
    assert_protected(tables)


def test_led_is_at_most_involved_in_the_same_cell():
    # City P = X + Y + Z for a_led. Y's a_involved (3) is published and bounds Y's a_led, so
    # X's a_led ≥ 12 − 3 = 9 (E009: involved includes led): within 15% of its 10.
    firms = [Firm("x", ("P", "X"), {"a_led": 10, "a_involved": 10}),
             *many("xi", ("P", "X"), 2, {"a_involved": 20}),
             *many("y", ("P", "Y"), 2, {"a_led": 1, "a_involved": 1}),
             Firm("y3", ("P", "Y"), {"a_involved": 1}),
             *many("z", ("P", "Z"), 3, {"a_led": 5, "a_involved": 5})]
    tables = Tables(firms, [Relation("P", ("X", "Y", "Z"))], ["P", "X", "Y", "Z"])
    old = version_1(tables)
    assert ("Y", "a_involved") not in old
    assert ("X", "a_led", "outsider", "lower") in recoveries(audited(tables, old))
    assert intruder_bound(tables, old, ("X", "a_led"), -1) == pytest.approx(9.0)
    assert_protected(tables)


def test_led_contributors_together_are_at_least_the_free_leading_count():
    # In K, 5 firms lead: 2 with a_led 1 each, 3 with b_led (published). So a_led has at least
    # 5 − 3 = 2 contributors, each leading at least one: a_led ≥ 2, its true value. Only a
    # model that ties the indicators together can see it, and hide b_led to stop it.
    firms = []
    for cell in ("K", "L"):
        firms += many(f"{cell}a", ("T", cell), 2, {"a_led": 1, "a_involved": 5, "b_involved": 5})
        firms += many(f"{cell}b", ("T", cell), 3, {"b_led": 1, "a_involved": 5, "b_involved": 5})
    firms += many("f", ("T", "F"), 3, {"a_led": 3, "b_led": 3, "a_involved": 5, "b_involved": 5})
    tables = Tables(firms, [Relation("T", ("K", "L", "F"))], ["T", "K", "L", "F"])
    old = version_1(tables)
    assert old == {("K", "a_led"), ("L", "a_led")}
    found = recoveries(audited(tables, old))
    assert {("K", "a_led", "outsider", "lower"), ("L", "a_led", "outsider", "lower")} <= found
    assert intruder_bound(tables, old, ("K", "a_led"), -1) == pytest.approx(2.0)
    hidden = assert_protected(tables)
    assert {("K", "b_led"), ("L", "b_led")} & hidden  # another indicator's cell protects it


def test_a_bound_that_only_always_published_figures_give_is_a_floor_not_a_recovery():
    # In K both leading firms lead a_led (b_led is 0 there, and zeros are published), so a_led
    # ≥ 2 = its value whatever is hidden: enterprise counts and zeros are always free (§3).
    firms = [*many("k", ("T", "K"), 2, {"a_led": 1, "a_involved": 4}),
             *many("l", ("T", "L"), 2, {"a_led": 1, "a_involved": 4}),
             *many("f", ("T", "F"), 3, {"a_led": 4, "a_involved": 4})]
    tables = Tables(firms, [Relation("T", ("K", "L", "F"))], ["T", "K", "L", "F"])
    everything = {(c, i) for c in tables.cell_names for i in KNOWLEDGE.magnitudes
                  if tables.cell(c, i)["value"] > 0}
    assert intruder_bound(tables, everything, ("K", "a_led"), -1) == pytest.approx(2.0)
    protection = protect(tables.cells, tables.relations, tables.members, KNOWLEDGE, workers=1)
    floors = protection.findings.filter(pl.col("floor"))
    assert ("K", "a_led") in set(floors.select("cell", "indicator").rows())
    assert not recoveries(protection.findings)
    figures = summary(protection.statuses, protection.findings, KNOWLEDGE)["a_led"]["audit"]
    assert figures["floors"] >= 1


# ---------------------------------------------------------------------------------------------
# What a respondent adds
# ---------------------------------------------------------------------------------------------


def test_a_respondent_alone_in_a_cell_recovers_its_partner():
    # A and B are each one firm's: the outsider cannot split A + B, but firm a knows A exactly,
    # so B = T − C − A (the singleton problem tau-ARGUS and sdcTable handle).
    tables = Tables([Firm("a", ("T", "A"), {AMOUNT: 5.0}), Firm("b", ("T", "B"), {AMOUNT: 6.0}),
                     *many("c", ("T", "C"), 3, {AMOUNT: 10.0})], T_ABC, ["T", "A", "B", "C"])
    old = version_1(tables)
    assert old == {("A", AMOUNT), ("B", AMOUNT)}
    found = recoveries(audited(tables, old))
    assert not {f for f in found if f[2] == "outsider"}
    assert {("B", AMOUNT, "a"), ("A", AMOUNT, "b")} <= {f[:3] for f in found}
    assert intruder_bound(tables, old, ("B", AMOUNT), 1, "a") == pytest.approx(6.0)
    assert recovered(tables, old, ("B", AMOUNT), "a") is not None
    assert recovered(tables, old, ("B", AMOUNT)) is None
    assert len(assert_protected(tables)) > len(old)


def test_a_respondent_knows_its_own_share_of_every_other_cell():
    # Cities C1, C2 × sections S1, S2. r reports 9.9 of C1×S1 (u the other 0.1). Version 1
    # moves C1×S2 up by taking from C1×S1, which r knows cannot drop below 9.9 + 0.01: to r,
    # C1×S2 ≤ C1 − 9.91 = 10.09, within 15% of its 10. r is a respondent: alone in C1×S1's
    # count.
    tables = own_share_tables()
    old = version_1(tables)
    assert {("C1×S1", AMOUNT), ("C1×S2", AMOUNT)} <= old
    found = recoveries(audited(tables, old))
    assert ("C1×S2", AMOUNT, "r", "upper") in found
    assert not {f for f in found if f[:3] == ("C1×S2", AMOUNT, "outsider")}
    assert intruder_bound(tables, old, ("C1×S2", AMOUNT), 1, "r") == pytest.approx(10.09)
    assert recovered(tables, old, ("C1×S2", AMOUNT), "r") == "upper"
    assert_protected(tables)


def own_share_tables() -> Tables:
    firms = [Firm("r", ("P", "C1", "S1", "C1×S1"), {AMOUNT: 9.9, COUNT: 3}),
             Firm("u", ("P", "C1", "S1", "C1×S1"), {AMOUNT: 0.1}),
             *many("s", ("P", "C1", "S2", "C1×S2"), 2, {AMOUNT: 5.0}),
             *many("d", ("P", "C2", "S1", "C2×S1"), 3, {AMOUNT: 10.0}),
             *many("e", ("P", "C2", "S2", "C2×S2"), 3, {AMOUNT: 10.0})]
    relations = [Relation("P", ("C1", "C2")), Relation("P", ("S1", "S2")),
                 Relation("C1", ("C1×S1", "C1×S2")), Relation("C2", ("C2×S1", "C2×S2")),
                 Relation("S1", ("C1×S1", "C2×S1")), Relation("S2", ("C1×S2", "C2×S2"))]
    return Tables(firms, relations, ["P", "C1", "C2", "S1", "S2", "C1×S1", "C1×S2", "C2×S1",
                                     "C2×S2"])


# ---------------------------------------------------------------------------------------------
# Random small linked tables
# ---------------------------------------------------------------------------------------------

CITIES = {"c1": ("c1a", "c1b", "c1c"), "c2": ("c2a", "c2b")}
SECTIONS = {"s1": ("s1a", "s1b"), "s2": ("s2a", "s2b")}


def random_tables(seed: int, firms: int = 30) -> Tables:
    """A province of 2 cities (5 counties) × 2 sections (4 divisions), with city × section, over
    random firms: skewed values, many zeros, involved including led, linked like the real
    tabulation."""
    rng = np.random.default_rng(seed)
    counties = [c for cs in CITIES.values() for c in cs]
    divisions = [d for ds in SECTIONS.values() for d in ds]
    made = []
    for k in range(firms):
        county, division = rng.choice(counties), rng.choice(divisions)
        city, section = county[:2], division[:2]
        values = {}
        for led, involved in (("a_led", "a_involved"), ("b_led", "b_involved")):
            lead = int(rng.random() < 0.35) * int(rng.integers(1, 4))
            values[led] = lead
            values[involved] = lead + int(rng.random() < 0.5) * int(rng.integers(0, 5))
        values[AMOUNT] = float(np.round(rng.lognormal(2, 1.2), 2)) * (rng.random() < 0.7)
        values[COUNT] = int(rng.random() < 0.5) * int(rng.integers(1, 6))
        made.append(Firm(f"f{k:02d}", ("P", city, county, section, division,
                                       f"{city}×{section}"), values))
    names = ["P", *CITIES, *counties, *SECTIONS, *divisions,
             *(f"{c}×{s}" for c in CITIES for s in SECTIONS)]
    relations = [Relation("P", tuple(CITIES)), Relation("P", tuple(SECTIONS))]
    relations += [Relation(city, cs) for city, cs in CITIES.items()]
    relations += [Relation(s, ds) for s, ds in SECTIONS.items()]
    relations += [Relation(c, tuple(f"{c}×{s}" for s in SECTIONS)) for c in CITIES]
    relations += [Relation(s, tuple(f"{c}×{s}" for c in CITIES)) for s in SECTIONS]
    return Tables(made, relations, names)


@pytest.mark.parametrize("seed", range(40))
def test_random_tables_suppressed_then_audited_have_no_recoverable_cell(seed):
    tables = random_tables(seed)
    protection = protect(tables.cells, tables.relations, tables.members, KNOWLEDGE, workers=1)
    assert not recoveries(protection.findings)
    hidden = hidden_of(protection)
    assert tables.primary() <= hidden
    # The audit alone, from the hidden pattern only (no witnesses from the suppression).
    assert not recoveries(audited(tables, hidden))


@pytest.mark.parametrize("seed", range(3))
def test_random_tables_hold_against_the_intruders_written_afresh(seed):
    tables = random_tables(100 + seed, firms=24)
    assert tables.primary() and respondents(tables)
    assert_protected(tables)


def test_version_1_on_random_tables_is_caught_by_the_audit():
    # The same tables protected the old way: the audit finds what the new intruders recover.
    caught = 0
    for seed in range(10):
        tables = random_tables(seed)
        old = version_1(tables)
        findings = recoveries(audited(tables, old))
        for cell, indicator, intruder, _ in sorted(findings)[:3]:
            assert recovered(tables, old, (cell, indicator),
                             None if intruder == "outsider" else intruder) is not None
        caught += bool(findings)
    assert caught >= 5


def test_an_exposed_cell_stops_protection_and_leaves_the_findings(tmp_path):
    from pipeline.protect import FAILED_AUDIT, refuse_recoverable

    tables = Tables([Firm("a", ("T", "A"), {COUNT: 5}), Firm("b", ("T", "B"), {COUNT: 1}),
                     *many("c", ("T", "C"), 3, {COUNT: 10})], T_ABC, ["T", "A", "B", "C"])
    findings = audited(tables, {("A", COUNT), ("B", COUNT)})  # version 1's pattern
    with pytest.raises(DisclosureError, match=r"count of cell A \(its upper bound\) by the "
                                              r"outsider") as raised:
        refuse_recoverable(findings, tmp_path, 2025)
    assert "(5)" not in str(raised.value) and "[" not in str(raised.value)  # no value, no bound
    assert pl.read_parquet(tmp_path / FAILED_AUDIT).equals(findings)
    refuse_recoverable(findings.filter(pl.col("recovered").is_null()), tmp_path, 2025)


_TASK_SCRIPT = """
import sys
if __name__ != "__main__":  # as the airflow command cannot start outside its task runner
    raise RuntimeError("this script cannot start outside its runner")
from disclosure_tables import KNOWLEDGE
from test_disclosure import random_tables
from pipeline.disclosure import protect
tables = random_tables(1)
one = protect(tables.cells, tables.relations, tables.members, KNOWLEDGE, workers=1)
two = protect(tables.cells, tables.relations, tables.members, KNOWLEDGE, workers=2)
assert one.statuses.equals(two.statuses) and one.findings.equals(two.findings)
print("same")
"""


def test_two_processes_find_what_one_does_under_a_main_script_that_cannot_run_again(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "task.py"
    script.write_text(_TASK_SCRIPT)
    tests = Path(__file__).parent
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(tests), str(tests.parent)])})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "same"


def _protect_in_a_daemon(queue) -> None:
    from test_disclosure import random_tables

    tables = random_tables(1)
    protection = protect(tables.cells, tables.relations, tables.members, KNOWLEDGE, workers=2)
    queue.put(protection.statuses["hidden_by"].drop_nulls().len())


def test_a_daemonic_process_protects_alone():
    # Pool workers (Celery's among them) are daemons, which may not start processes of their own.
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_protect_in_a_daemon, args=(queue,), daemon=True)
    child.start()
    hidden = queue.get(timeout=60)
    child.join(timeout=60)
    tables = random_tables(1)
    alone = protect(tables.cells, tables.relations, tables.members, KNOWLEDGE, workers=1)
    assert hidden == alone.statuses["hidden_by"].drop_nulls().len() > 0
