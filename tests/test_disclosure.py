"""Disclosure control: primary rules, the LP audit, secondary suppression on linked tables."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import polars as pl
import pytest

from pipeline.disclosure import (
    DisclosureError,
    Relation,
    _require_protected,
    _suppress,
    _Table,
    audit,
    primary_status,
    protect,
    protect_indicators,
)

CELL_SCHEMA = {
    "cell_id": pl.String,
    "value": pl.Float64,
    "contributors": pl.Int64,
    "top1": pl.Float64,
    "top2": pl.Float64,
}


def cells_frame(*rows: tuple) -> pl.DataFrame:
    """Cells from (cell_id, value, contributors, top1, top2) tuples."""
    return pl.DataFrame(list(rows), schema=CELL_SCHEMA, orient="row")


def shown(cell_id: str, value: float) -> tuple:
    """A cell no primary rule hides: many contributors, none dominant."""
    return (cell_id, value, 10, value * 0.2, value * 0.1)


def single(cell_id: str, value: float) -> tuple:
    """A cell one enterprise makes up: primary confidential."""
    return (cell_id, value, 1, value, 0.0)


def free_zero(cell_id: str) -> tuple:
    return (cell_id, 0.0, 0, 0.0, 0.0)


def with_status(cells: pl.DataFrame, **status: str) -> pl.DataFrame:
    """Cells with conf_status set by hand for the named cells and "F" for the rest."""
    return cells.with_columns(
        pl.col("cell_id").replace_strict(status, default="F", return_dtype=pl.String)
        .alias("conf_status")
    )


def bounds(cells: pl.DataFrame, relations: list[Relation]) -> dict[str, dict]:
    return {r["cell_id"]: r for r in audit(cells, relations)}


def statuses(cells: pl.DataFrame) -> dict[str, str]:
    return dict(zip(cells["cell_id"], cells["conf_status"], strict=True))


def assert_all_protected(cells: pl.DataFrame, relations: list[Relation]) -> None:
    results = audit(cells, relations)
    assert len(results) == (cells["conf_status"] == "C").sum()
    exposed = [r for r in results if not r["protected"]]
    assert not exposed, exposed
    for r in results:  # the definition, checked here rather than trusted
        assert r["lower"] < 0.85 * r["value"] and r["upper"] > 1.15 * r["value"]


# ---------------------------------------------------------------------------------------------
# Primary rules
# ---------------------------------------------------------------------------------------------


def test_primary_few_contributors_are_confidential():
    cells = cells_frame(
        ("one", 50.0, 1, 50.0, 0.0),
        ("two", 50.0, 2, 30.0, 20.0),
        ("three", 90.0, 3, 30.0, 30.0),
    )
    status = primary_status(cells)
    assert status.name == "conf_status" and status.dtype == pl.String
    assert status.to_list() == ["C", "C", "F"]


def test_primary_dominance_over_85_percent_is_confidential():
    cells = cells_frame(
        ("dominated", 100.0, 3, 60.0, 30.0),  # top two are 90%
        ("fine", 100.0, 3, 50.0, 30.0),  # 80%
        ("exactly", 100.0, 5, 50.0, 35.0),  # 85% does not exceed 85%
        ("many", 1000.0, 40, 700.0, 200.0),  # many contributors do not save a dominated cell
    )
    assert primary_status(cells).to_list() == ["C", "F", "F", "C"]


def test_primary_zero_cell_without_contributors_is_free():
    cells = cells_frame(free_zero("empty"), ("tiny", 0.01, 1, 0.01, 0.0))
    assert primary_status(cells).to_list() == ["F", "C"]


def test_primary_refuses_nulls():
    cells = cells_frame(("a", 10.0, None, 5.0, 1.0))
    with pytest.raises(ValueError, match="nulls"):
        primary_status(cells)


# ---------------------------------------------------------------------------------------------
# The audit on hand-built tables
# ---------------------------------------------------------------------------------------------

PARENT_OF_THREE = [Relation("total", ("a", "b", "c"))]


def hundred_of_three() -> pl.DataFrame:
    """total 100 = a 30 (a single contributor) + b 45 + c 25."""
    return cells_frame(shown("total", 100.0), single("a", 30.0), shown("b", 45.0),
                       shown("c", 25.0))


def test_audit_one_hidden_child_is_recovered_exactly():
    cells = hundred_of_three()
    [result] = audit(with_status(cells, a="C"), PARENT_OF_THREE)
    assert result["cell_id"] == "a" and result["value"] == 30.0
    assert result["lower"] == pytest.approx(30.0) and result["upper"] == pytest.approx(30.0)
    assert result["protected"] is False


def test_audit_second_hidden_child_widens_the_bounds():
    cells = hundred_of_three()
    result = bounds(with_status(cells, a="C", c="D"), PARENT_OF_THREE)["a"]
    # a + c = 55 is all an intruder knows.
    assert result["lower"] == pytest.approx(0.0) and result["upper"] == pytest.approx(55.0)
    assert result["protected"] is True


def test_audit_too_small_a_partner_does_not_protect():
    cells = cells_frame(shown("total", 110.0), single("a", 100.0), shown("b", 4.0),
                        shown("c", 6.0))
    result = bounds(with_status(cells, a="C", b="D"), PARENT_OF_THREE)["a"]
    # a is in [0, 104]: below, wide open; above, within 15%.
    assert result["lower"] == pytest.approx(0.0) and result["upper"] == pytest.approx(104.0)
    assert result["protected"] is False


def test_audit_hidden_parent_leaves_the_upper_bound_open():
    cells = hundred_of_three()
    result = bounds(with_status(cells, a="C", total="D"), PARENT_OF_THREE)["a"]
    assert result["lower"] == pytest.approx(0.0) and math.isinf(result["upper"])
    assert result["protected"] is True


def test_audit_uses_every_linked_relation():
    # Hiding a and b protects a within the first relation; the second gives a away again.
    cells = cells_frame(shown("total", 100.0), single("a", 30.0), shown("b", 45.0),
                        shown("c", 25.0), shown("other", 40.0), shown("d", 10.0))
    relations = [*PARENT_OF_THREE, Relation("other", ("a", "d"))]
    alone = bounds(with_status(cells, a="C", b="D"), PARENT_OF_THREE)["a"]
    linked = bounds(with_status(cells, a="C", b="D"), relations)["a"]
    assert alone["protected"] is True
    assert linked["lower"] == pytest.approx(30.0) and linked["upper"] == pytest.approx(30.0)
    assert linked["protected"] is False


# ---------------------------------------------------------------------------------------------
# A per-group count is not enough: a region × section grid with totals
# ---------------------------------------------------------------------------------------------

GRID = {
    ("1", "1"): 100.0, ("1", "2"): 5.0, ("1", "3"): 50.0,
    ("2", "1"): 5.0, ("2", "2"): 40.0, ("2", "3"): 60.0,
    ("3", "1"): 50.0, ("3", "2"): 60.0, ("3", "3"): 70.0,
}  # fmt: skip


def grid_table() -> tuple[pl.DataFrame, list[Relation]]:
    """A 3×3 region × section table with row, column and grand totals; cell r1s1 is one firm's."""
    rows = [single("r1s1", GRID["1", "1"])]
    rows += [shown(f"r{r}s{s}", v) for (r, s), v in GRID.items() if (r, s) != ("1", "1")]
    for k in "123":
        rows.append(shown(f"r{k}", sum(v for (r, _), v in GRID.items() if r == k)))
        rows.append(shown(f"s{k}", sum(v for (_, s), v in GRID.items() if s == k)))
    rows.append(shown("total", sum(GRID.values())))
    relations = [Relation(f"r{r}", tuple(f"r{r}s{s}" for s in "123")) for r in "123"]
    relations += [Relation(f"s{s}", tuple(f"r{r}s{s}" for r in "123")) for s in "123"]
    relations += [Relation("total", ("r1", "r2", "r3")), Relation("total", ("s1", "s2", "s3"))]
    return cells_frame(*rows), relations


def group_count_rule(cells: pl.DataFrame, relations: list[Relation]) -> pl.DataFrame:
    """The strawman: while a relation has exactly one hidden cell, hide its smallest shown one."""
    value = dict(zip(cells["cell_id"], cells["value"], strict=True))
    primary = {c for c, s in zip(cells["cell_id"], primary_status(cells), strict=True) if s == "C"}
    hidden = set(primary)
    changed = True
    while changed:
        changed = False
        for relation in relations:
            group = (relation.parent, *relation.children)
            candidates = [c for c in group if c not in hidden and value[c] > 0]
            if sum(c in hidden for c in group) == 1 and candidates:
                hidden.add(min(candidates, key=lambda c: (value[c], c)))
                changed = True
    return with_status(cells, **{c: "C" if c in primary else "D" for c in hidden})


def test_group_count_rule_leaves_a_cell_the_lp_audit_recovers():
    cells, relations = grid_table()
    strawman = group_count_rule(cells, relations)
    hidden = {c for c, s in statuses(strawman).items() if s != "F"}
    assert hidden == {"r1s1", "r1s2", "r2s1", "r2s2"}
    # The rule is satisfied: no relation has exactly one hidden cell ...
    for relation in relations:
        assert sum(c in hidden for c in (relation.parent, *relation.children)) != 1
    # ... yet r1s1 can rise only as far as its small partners can fall: at most 105.
    result = bounds(strawman, relations)["r1s1"]
    assert result["lower"] == pytest.approx(60.0) and result["upper"] == pytest.approx(105.0)
    assert result["protected"] is False
    with pytest.raises(DisclosureError, match=r"'r1s1'.*100\.00.*\[60\.00, 105\.00\]"):
        _require_protected("std_spending", strawman, relations)


def test_protect_passes_the_audit_where_the_group_count_rule_fails():
    cells, relations = grid_table()
    protected = protect(cells, relations)
    assert_all_protected(protected, relations)
    status = statuses(protected)
    assert status["r1s1"] == "C"
    assert sum(s == "D" for s in status.values()) >= 3
    _require_protected("std_spending", protected, relations)  # does not raise


# ---------------------------------------------------------------------------------------------
# Secondary suppression
# ---------------------------------------------------------------------------------------------


def test_protect_hides_the_cheapest_sibling():
    cells = cells_frame(shown("total", 5150.0), single("a", 100.0), shown("small", 20.0),
                        shown("medium", 30.0), shown("large", 5000.0))
    relations = [Relation("total", ("a", "small", "medium", "large"))]
    protected = protect(cells, relations)
    assert statuses(protected) == {
        "total": "F", "a": "C", "small": "D", "medium": "F", "large": "F"
    }
    assert_all_protected(protected, relations)


def test_protect_hides_nothing_without_confidential_cells():
    cells = cells_frame(shown("total", 100.0), shown("a", 30.0), shown("b", 45.0),
                        shown("c", 25.0))
    assert set(protect(cells, PARENT_OF_THREE)["conf_status"]) == {"F"}


def test_protect_hides_nothing_when_confidential_cells_cover_each_other():
    cells = cells_frame(shown("total", 250.0), single("a", 100.0), single("b", 100.0),
                        shown("c", 50.0))
    protected = protect(cells, PARENT_OF_THREE)
    assert statuses(protected) == {"total": "F", "a": "C", "b": "C", "c": "F"}
    assert_all_protected(protected, PARENT_OF_THREE)


def test_protect_follows_a_cell_pinned_by_zeros_up_the_hierarchy():
    # The county's only non-zero division is one firm: the county total equals it, so it must go,
    # and then so must something beside the county in the city.
    cells = cells_frame(shown("city", 300.0), shown("county", 80.0), shown("other", 220.0),
                        single("firm", 80.0), free_zero("empty"))
    relations = [Relation("city", ("county", "other")), Relation("county", ("firm", "empty"))]
    protected = protect(cells, relations)
    status = statuses(protected)
    assert status["firm"] == "C" and status["county"] == "D" and status["empty"] == "F"
    assert "D" in (status["city"], status["other"])
    assert_all_protected(protected, relations)


def test_protect_refuses_relations_that_do_not_add_up():
    cells = cells_frame(shown("total", 101.0), single("a", 30.0), shown("b", 45.0),
                        shown("c", 25.0))
    with pytest.raises(ValueError, match="does not add up"):
        protect(cells, PARENT_OF_THREE)
    with pytest.raises(ValueError, match="unknown cells"):
        protect(cells, [Relation("total", ("a", "b", "zz"))])


def test_protect_keeps_precision_beside_billions():
    # A cell of a few jiao in a table of billions still gets, and needs, a real ±15% interval.
    cells = cells_frame(
        shown("total", 1_234_567_890.12 + 0.45 + 7.89 + 0.05),
        shown("big", 1_234_567_890.12),
        single("a", 0.45),
        shown("b", 7.89),
        shown("c", 0.05),
    )
    relations = [Relation("total", ("big", "a", "b", "c"))]
    exposed = bounds(with_status(cells, a="C", c="D"), relations)["a"]
    assert exposed["upper"] == pytest.approx(0.50, abs=1e-6) and not exposed["protected"]
    protected = protect(cells, relations)
    assert statuses(protected) == {"total": "F", "big": "F", "a": "C", "b": "D", "c": "D"}
    assert_all_protected(protected, relations)


def test_moves_ignored_as_noise_are_audited_and_redone():
    # Count every move of the first pass as solver noise: nothing is hidden by it, and the
    # check that follows must find the exposed cells and hide what they need.
    cells, relations = grid_table()
    primary = primary_status(cells).to_numpy() == "C"
    hidden = _suppress(_Table(cells, relations), primary, noise_share=1e12)
    assert hidden.sum() > primary.sum()
    status = np.where(primary, "C", np.where(hidden, "D", "F"))
    assert_all_protected(cells.with_columns(conf_status=pl.Series(status)), relations)


# ---------------------------------------------------------------------------------------------
# A province: 3 cities × 4 counties, 3 sections × 3 divisions, city × section
# ---------------------------------------------------------------------------------------------

COUNTIES = {city: tuple(f"{city}{k}" for k in range(1, 5)) for city in "ABC"}
DIVISIONS = {section: tuple(f"{section}{k}" for k in range(1, 4)) for section in "PQR"}


def province(seed: int, enterprises: int = 60, scale: float = 1.0):
    """Linked tables of one indicator over simulated enterprises: skewed amounts, many zeros."""
    rng = np.random.default_rng(seed)
    counties = [c for cs in COUNTIES.values() for c in cs]
    divisions = [d for ds in DIVISIONS.values() for d in ds]
    county = rng.choice(counties, enterprises, p=rng.dirichlet(np.ones(len(counties))))
    division = rng.choice(divisions, enterprises, p=rng.dirichlet(np.ones(len(divisions)) * 0.7))
    amount = np.round(rng.lognormal(np.log(20), 1.5, enterprises) * scale, 2)
    amount[rng.random(enterprises) < 0.3] = 0.0
    contributions: dict[str, list[float]] = defaultdict(list)
    for a, cty, div in zip(amount, county, division, strict=True):
        for cell in ("total", cty[0], cty, div[0], div, cty[0] + div[0]):
            contributions[cell].append(float(a))
    cell_ids = ["total", *COUNTIES, *counties, *DIVISIONS, *divisions]
    cell_ids += [city + section for city in COUNTIES for section in DIVISIONS]
    rows = []
    for cell in cell_ids:
        parts = sorted((a for a in contributions[cell] if a > 0), reverse=True) + [0.0, 0.0]
        rows.append((cell, sum(parts), len(parts) - 2, parts[0], parts[1]))
    relations = [Relation("total", tuple(COUNTIES)), Relation("total", tuple(DIVISIONS))]
    relations += [Relation(city, cs) for city, cs in COUNTIES.items()]
    relations += [Relation(section, ds) for section, ds in DIVISIONS.items()]
    relations += [Relation(city, tuple(city + s for s in DIVISIONS)) for city in COUNTIES]
    relations += [Relation(s, tuple(city + s for city in COUNTIES)) for s in DIVISIONS]
    return cells_frame(*rows), relations


@pytest.mark.parametrize(("seed", "scale"), [(s, 1.0) for s in range(6)] + [(6, 1e7), (7, 1e7)])
def test_protect_realistic_province(seed, scale):
    cells, relations = province(seed, scale=scale)
    assert cells.filter(pl.col("contributors").is_between(1, 2)).height > 0
    assert cells.filter(pl.col("contributors") == 0).height > 0
    protected = protect(cells, relations)
    assert_all_protected(protected, relations)
    primary = primary_status(cells)
    assert ((protected["conf_status"] == "C") == (primary == "C")).all()
    free_zeros = protected.filter((pl.col("value") == 0) & (pl.col("contributors") == 0))
    assert set(free_zeros["conf_status"]) == {"F"}
    # Hiding only C cells would leave something exposed; every D was bought for protection.
    only_primary = protected.with_columns(conf_status=primary)
    exposed = [r for r in audit(only_primary, relations) if not r["protected"]]
    assert bool(exposed) == ("D" in set(protected["conf_status"]))


def test_province_without_confidential_cells_gets_no_secondary():
    cells, relations = province(0, enterprises=400)
    cells = cells.with_columns(  # as if every cell had many contributors, none dominant
        contributors=pl.lit(50, dtype=pl.Int64), top1=pl.col("value") * 0.1,
        top2=pl.col("value") * 0.1,
    )
    assert set(protect(cells, relations)["conf_status"]) == {"F"}


# ---------------------------------------------------------------------------------------------
# Many indicators
# ---------------------------------------------------------------------------------------------


def test_protect_indicators_protects_each_and_keeps_row_order():
    parts = []
    for k, name in enumerate(["std_spending", "std_staff", "patents_in_standards"]):
        cells, relations = province(10 + k)
        parts.append(cells.with_columns(indicator=pl.lit(name)))
    # Interleaved, as an aggregation might emit them.
    cells = pl.concat(parts).with_row_index("order").sort("cell_id", "indicator")
    protected = protect_indicators(cells, relations)
    assert protected.drop("conf_status").equals(cells)
    for name in ("std_spending", "std_staff", "patents_in_standards"):
        part = protected.filter(pl.col("indicator") == name)
        alone = protect(cells.filter(pl.col("indicator") == name), relations)
        assert part["conf_status"].to_list() == alone["conf_status"].to_list(), name
        assert_all_protected(part, relations)


def test_an_exposed_cell_raises_disclosure_error():
    cells = cells_frame(shown("total", 100.0), single("a", 30.0), shown("b", 45.0),
                        shown("c", 25.0)).with_columns(indicator=pl.lit("std_staff"))
    with pytest.raises(DisclosureError, match=r"'std_staff'.*'a' value 30\.00.*\[30\.00, 30\.00\]"):
        _require_protected("std_staff", with_status(cells, a="C"), PARENT_OF_THREE)
    # protect_indicators on the same cells hides what is needed and so does not raise.
    assert set(protect_indicators(cells, PARENT_OF_THREE)["conf_status"]) == {"C", "D", "F"}
