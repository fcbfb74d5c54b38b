"""End to end on two small synthetic years: every row's outcome and rule ids as the truth says."""

from __future__ import annotations

import csv

import polars as pl
import pytest
from conftest import YEARS

from pipeline.config import Settings
from pipeline.runner import run_year
from pipeline.valid import scan_valid_returns


@pytest.fixture(scope="module")
def processed(two_years) -> tuple[Settings, dict[int, dict]]:
    return two_years


def truth(settings: Settings, year: int, name: str) -> list[dict]:
    with open(settings.data_dir / "synth" / str(year) / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def rule_ids(row: dict) -> str:
    if row["outcome"] in ("superseded", "duplicate"):
        return row["outcome_rule"]
    found = {f["rule_id"] for f in row["findings"]
             if row["outcome"] == "rejected" or f["severity"] == "W"}
    return ";".join(sorted(found))


@pytest.mark.parametrize("year", YEARS)
def test_every_row_outcome_and_rule_ids_match_the_truth(processed, year):
    settings, _ = processed
    valid = scan_valid_returns(settings, year).collect()
    got = {(r["source_file"], str(r["source_row"])): (r["outcome"], rule_ids(r))
           for r in valid.iter_rows(named=True)}
    expected = {(t["source_file"], t["source_row"]): (t["outcome"], t["rule_ids"])
                for t in truth(settings, year, "truth_rows.csv")}
    assert got.keys() == expected.keys()
    wrong = {k: (got[k], expected[k]) for k in got if got[k] != expected[k]}
    assert not wrong, f"{len(wrong)} rows differ, e.g. {list(wrong.items())[:5]}"


@pytest.mark.parametrize("year", YEARS)
def test_every_file_read_or_quarantined_as_the_truth_says(processed, year):
    settings, accountings = processed
    got = {f["source_file"]: (f["status"], f["rule"] or "", str(f.get("rows_read", "") or ""))
           for f in accountings[year]["files"]}
    expected = {t["source_file"]: (t["status"], t["rule"], t["rows"])
                for t in truth(settings, year, "truth_files.csv")}
    assert got == expected


@pytest.mark.parametrize("year", YEARS)
def test_no_return_and_frame_rejected_lists_match_the_truth(processed, year):
    settings, _ = processed
    follow_up = pl.read_parquet(settings.output_dir(year) / "follow_up.parquet")
    got = set(follow_up.filter(pl.col("rule_id") == "N401")["credit_code"])
    assert got == {t["credit_code"] for t in truth(settings, year, "truth_no_return.csv")}
    # The frame's rows left out (N402), with the row a person sees on opening it.
    rejected = follow_up.filter(pl.col("rule_id") == "N402")
    assert set(rejected["source_file"]) == {f"frame/{year}.csv"}
    assert set(zip(rejected["source_row"].cast(pl.Utf8), rejected["value_received"],
                   strict=True)) == {(t["source_row"], t["credit_code"])
                                     for t in truth(settings, year, "truth_frame.csv")}


@pytest.mark.parametrize("year", YEARS)
def test_the_accounting_adds_up_per_file_and_in_total(processed, year):
    settings, accountings = processed
    accounting = accountings[year]
    outcomes = ("accepted", "rejected", "superseded", "duplicate")
    for f in accounting["files"]:
        if f["status"] == "read":
            assert f["rows_read"] == sum(f[k] for k in outcomes), f
    total = accounting["total"]
    assert total["rows_read"] == sum(total[k] for k in outcomes)
    valid = scan_valid_returns(settings, year).collect()
    assert valid.height == total["rows_read"]
    read_rows = sum(int(t["rows"]) for t in truth(settings, year, "truth_files.csv")
                    if t["status"] == "read")
    assert total["rows_read"] == read_rows


def test_every_rule_occurs_in_the_small_years(processed):
    settings, _ = processed
    seen = set()
    for year in YEARS:
        follow_up = pl.read_parquet(settings.output_dir(year) / "follow_up.parquet")
        seen |= set(follow_up["rule_id"])
    from schemas.rules import rules

    assert seen == set(rules())


def test_a_rerun_replaces_its_own_output(processed):
    settings, accountings = processed
    year = YEARS[-1]
    before = scan_valid_returns(settings, year).collect()
    again = run_year(settings, year)
    assert again["total"] == accountings[year]["total"]
    assert scan_valid_returns(settings, year).collect().equals(before)
    # No .building or .old folder is left beside the years' valid layers.
    assert all(p.name.isdigit() for p in settings.valid_dir(year).parent.iterdir())
