"""Imputation of non-response (monitoring-tables.md §6) on tiny inline frames: the ratio class
and its fall-backs, rounding and E009, the donor rule and its tie-break."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from pipeline.imputation import IMPUTED_COLUMNS, MIN_PAIRS, impute
from schemas.tables import MAGNITUDES

CITY, OTHER_CITY = "330100", "330200"


def code(n: int, prefix: str = "R") -> str:
    """A distinct 18-character code (the solver matches codes; it does not check them)."""
    return f"{prefix}{n:017d}"


def returns_of(rows: list[tuple[str, str, str, str, dict]]) -> pl.DataFrame:
    """Accepted returns: (credit_code, city, section, size, {magnitude: value}); others 0."""
    records = []
    for credit_code, city, section, size, values in rows:
        record = {"credit_code": credit_code, "city_code": city, "section_code": section,
                  "size_class": size, "innovation_award": values.get("innovation_award", "none")}
        record |= {m: values.get(m, 0) for m in MAGNITUDES}
        records.append(record)
    return pl.DataFrame(records).with_columns(
        pl.col("std_spending", "financing_amount").cast(pl.Float64))


def last_year(rows: list[tuple[str, dict]]) -> pl.DataFrame:
    return returns_of([(c, CITY, "C", "small", v) for c, v in rows]).select(
        "credit_code", *IMPUTED_COLUMNS)


def recipient(credit_code: str, city: str = CITY, section: str = "C",
              size: str = "small") -> pl.DataFrame:
    return pl.DataFrame({"credit_code": [credit_code], "city_code": [city],
                         "section_code": [section], "size_class": [size]})


def pairs(count: int, section: str, size: str, now: float, before: float,
          start: int = 0) -> tuple[list, list]:
    """`count` matched pairs of a class, each with std_staff `before` last year, `now` this."""
    this = [(code(start + i), CITY, section, size, {"std_staff": now}) for i in range(count)]
    last = [(code(start + i), {"std_staff": before}) for i in range(count)]
    return this, last


def imputed_staff(this: list, last: list, size: str = "small") -> int:
    target = code(999, "T")
    previous = pl.concat([last_year(last), last_year([(target, {"std_staff": 100})])])
    found = impute(recipient(target, size=size), returns_of(this), previous)
    assert found["imputation"].to_list() == ["ratio"]
    return found["std_staff"].item()


def test_ratio_uses_the_section_size_class_with_enough_pairs():
    this, last = pairs(MIN_PAIRS, "C", "small", now=12, before=10)  # trend 1.2
    other, other_last = pairs(MIN_PAIRS, "C", "large", now=30, before=10, start=100)
    assert imputed_staff(this + other, last + other_last) == 120


def test_ratio_falls_back_to_the_section_under_ten_pairs():
    this, last = pairs(MIN_PAIRS - 1, "C", "small", now=12, before=10)
    other, other_last = pairs(MIN_PAIRS, "C", "large", now=30, before=10, start=100)
    # The section: (9 × 12 + 10 × 30) / (19 × 10) = 408 / 190
    assert imputed_staff(this + other, last + other_last) == round(100 * 408 / 190)


def test_ratio_falls_back_to_the_section_on_a_zero_denominator():
    this, last = pairs(MIN_PAIRS, "C", "small", now=3, before=0)
    other, other_last = pairs(MIN_PAIRS, "C", "large", now=15, before=10, start=100)
    # The class has its pairs but nothing last year: the section's (30 + 150) / 100.
    assert imputed_staff(this + other, last + other_last) == 180


def test_ratio_falls_back_to_the_province_then_to_one():
    this, last = pairs(MIN_PAIRS - 1, "C", "small", now=12, before=10)
    other, other_last = pairs(MIN_PAIRS - 1, "F", "small", now=8, before=10, start=100)
    # Neither the class nor section C has 10 pairs; the province has 18: (108 + 72) / 180.
    assert imputed_staff(this + other, last + other_last) == 100
    other, other_last = pairs(MIN_PAIRS - 1, "F", "small", now=16, before=10, start=100)
    assert imputed_staff(this + other, last + other_last) == round(100 * (108 + 144) / 180)
    few, few_last = pairs(MIN_PAIRS - 1, "C", "small", now=50, before=10)
    assert imputed_staff(few, few_last) == 100  # nowhere 10 pairs: a trend of 1


def test_ratio_trends_each_magnitude_on_its_own_rounds_halves_up_and_keeps_led_within_involved():
    this = [(code(i), CITY, "C", "small", {"national_led": 3, "national_involved": 2,
                                           "std_spending": 1.5, "enterprise_declared": 1})
            for i in range(MIN_PAIRS)]
    last = [(code(i), {"national_led": 2, "national_involved": 2, "std_spending": 1.0,
                       "enterprise_declared": 4}) for i in range(MIN_PAIRS)]
    target = code(999, "T")
    before = {"national_led": 1, "national_involved": 1, "std_spending": 0.67,
              "enterprise_declared": 2, "innovation_award": "city"}
    previous = pl.concat([last_year(last), last_year([(target, before)])])
    row = impute(recipient(target), returns_of(this), previous).row(0, named=True)
    # led 1 × 1.5 = 1.5 → 2 (halves up); involved 1 × 1 = 1, raised to 2 by E009.
    assert (row["national_led"], row["national_involved"]) == (2, 2)
    assert row["std_spending"] == pytest.approx(1.01)  # 0.67 × 1.5 = 1.005 → 1.01
    assert row["enterprise_declared"] == 1  # 2 × 0.25 = 0.5 → 1
    assert row["innovation_award"] == "city"  # carried forward
    assert row["donor_credit_code"] is None


def first_by_hash(target: str, candidates: list[str]) -> str:
    return min(candidates,
               key=lambda c: hashlib.sha256(f"{target}|{c}".encode()).hexdigest())


def test_donor_is_the_candidate_whose_hash_sorts_first_in_the_finest_class_with_one():
    same_class = [code(i) for i in range(6)]
    rows = [(c, CITY, "C", "small", {"std_staff": i + 1, "innovation_award": "county"})
            for i, c in enumerate(same_class)]
    rows += [(code(50 + i), OTHER_CITY, "C", "small", {"std_staff": 99}) for i in range(6)]
    target = code(999, "T")
    found = impute(recipient(target), returns_of(rows), None).row(0, named=True)
    donor = first_by_hash(target, same_class)
    assert found["imputation"] == "donor" and found["donor_credit_code"] == donor
    assert found["std_staff"] == dict(zip(same_class, range(1, 7), strict=True))[donor]
    assert found["innovation_award"] == "county"
    # Re-runs, and other recipients beside it, pick the same donor.
    two = pl.concat([recipient(target), recipient(code(998, "T"))])
    again = impute(two, returns_of(rows), None)
    assert again.filter(pl.col("credit_code") == target)["donor_credit_code"].item() == donor


@pytest.mark.parametrize(("city", "section", "size", "pool"), [
    # no candidate in Ningbo × C × small: section × size, across cities
    (OTHER_CITY, "C", "small", "c_small"),
    # no candidate of section F at all: the size class, across sections
    (CITY, "F", "small", "small"),
    # no medium enterprise anywhere: the whole province
    (CITY, "C", "medium", "all"),
])
def test_donor_class_relaxes_while_it_has_no_candidate(city, section, size, pool):
    rows = [(code(i), CITY, "C", "small", {}) for i in range(4)]
    rows += [(code(10 + i), CITY, "G", "small", {}) for i in range(3)]
    rows += [(code(20 + i), CITY, "G", "large", {}) for i in range(3)]
    pools = {"c_small": [code(i) for i in range(4)],
             "small": [code(i) for i in range(4)] + [code(10 + i) for i in range(3)],
             "all": [r[0] for r in rows]}
    target = code(999, "T")
    found = impute(recipient(target, city, section, size), returns_of(rows), None)
    assert found["donor_credit_code"].item() == first_by_hash(target, pools[pool])


def test_ratio_for_those_that_answered_last_year_donor_for_the_others():
    this, last = pairs(MIN_PAIRS, "C", "small", now=10, before=10)
    recipients = pl.concat([recipient(code(998, "T")), recipient(code(999, "T"))])
    previous = pl.concat([last_year(last), last_year([(code(999, "T"), {"std_staff": 7})])])
    found = impute(recipients, returns_of(this), previous).sort("credit_code")
    assert found["imputation"].to_list() == ["donor", "ratio"]
    assert found["std_staff"].to_list() == [10, 7]
