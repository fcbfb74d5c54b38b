"""De-duplication (D201, D202) in a real DuckDB, and the accounting that must add up."""

from __future__ import annotations

import json

import polars as pl
import pytest
from conftest import YEAR, good_return, raw_frame

from pipeline.config import Settings
from pipeline.consolidate import deduplicate
from pipeline.report import AccountingError, build_accounting, report
from pipeline.valid import scan_valid_returns
from pipeline.validate import check_returns

OTHER = "91330100799655058B"


def outcomes(tmp_path, files: dict[str, list[dict]]) -> dict[tuple[str, int], tuple]:
    settings = Settings(data_dir=tmp_path)
    paths = []
    for name, rows in files.items():
        path = tmp_path / f"{name}.parquet"
        check_returns(raw_frame(*rows, source_file=name), YEAR).write_parquet(path)
        paths.append(str(path))
    result = deduplicate(settings, YEAR, paths)
    valid = scan_valid_returns(settings, YEAR).collect()
    assert result["rows"] == valid.height == sum(len(rows) for rows in files.values())
    return {(r["source_file"], r["source_row"]): (r["outcome"], r["outcome_rule"])
            for r in valid.iter_rows(named=True)}


def test_latest_valid_submission_wins(tmp_path):
    early = good_return(submitted_at="2026-01-05 09:00", employees="50")
    late = good_return(submitted_at="2026-03-01 09:00", employees="51")
    got = outcomes(tmp_path, {"a.csv": [late], "b.csv": [early]})
    assert got == {("a.csv", 2): ("accepted", None), ("b.csv", 2): ("superseded", "D201")}


def test_ties_go_to_the_later_file_name_then_the_later_row(tmp_path):
    same_time = {"submitted_at": "2026-02-01 09:00"}
    a = good_return(**same_time, employees="50")
    b = good_return(**same_time, employees="51")
    c = good_return(**same_time, employees="52")
    got = outcomes(tmp_path, {"a.csv": [a], "b.csv": [b, c]})
    assert got[("b.csv", 3)] == ("accepted", None)
    assert got[("b.csv", 2)] == got[("a.csv", 2)] == ("superseded", "D201")


def test_an_invalid_later_correction_leaves_the_earlier_return(tmp_path):
    valid = good_return(submitted_at="2026-01-05 09:00")
    invalid = good_return(submitted_at="2026-03-01 09:00", std_staff="999")
    got = outcomes(tmp_path, {"a.csv": [valid, invalid]})
    assert got == {("a.csv", 2): ("accepted", None), ("a.csv", 3): ("rejected", None)}


def test_exact_duplicates_after_normalisation_keep_the_first_copy(tmp_path):
    row = good_return()
    same_after_normalising = good_return(employees="50.0", revenue="1,200",
                                         enterprise_name=" 杭州示例标准化有限公司")
    got = outcomes(tmp_path, {"a.csv": [row], "b.csv": [same_after_normalising, row]})
    assert got == {("a.csv", 2): ("accepted", None), ("b.csv", 2): ("duplicate", "D202"),
                   ("b.csv", 3): ("duplicate", "D202")}


def test_duplicates_of_rejected_rows_compare_the_unreadable_text(tmp_path):
    bad = good_return(employees="五十")
    other_bad = good_return(employees="六十")
    got = outcomes(tmp_path, {"a.csv": [bad, bad, other_bad]})
    assert got == {("a.csv", 2): ("rejected", None), ("a.csv", 3): ("duplicate", "D202"),
                   ("a.csv", 4): ("rejected", None)}


def test_copies_without_a_credit_code_or_time_are_still_found(tmp_path):
    # A blank key is compared as a value: equal rows without one are still copies.
    blank = good_return(credit_code=None, submitted_at=None)
    named_otherwise = good_return(credit_code=None, submitted_at=None, enterprise_name="乙公司")
    unreadable_time = good_return(credit_code=None, submitted_at="昨天")
    got = outcomes(tmp_path, {"a.csv": [blank, named_otherwise, blank, unreadable_time],
                              "b.csv": [unreadable_time]})
    assert got == {("a.csv", 2): ("rejected", None), ("a.csv", 3): ("rejected", None),
                   ("a.csv", 4): ("duplicate", "D202"), ("a.csv", 5): ("rejected", None),
                   ("b.csv", 2): ("duplicate", "D202")}


def test_different_enterprises_do_not_supersede_each_other(tmp_path):
    got = outcomes(tmp_path, {"a.csv": [good_return(), good_return(credit_code=OTHER)]})
    assert {o for o, _ in got.values()} == {"accepted"}


def test_report_follow_up_and_accounting(tmp_path):
    settings = Settings(data_dir=tmp_path)
    rows = [good_return(), good_return(), good_return(employees="x"),
            good_return(credit_code=OTHER, contact_phone="1")]
    checked = tmp_path / "a.parquet"
    check_returns(raw_frame(*rows, source_file="a.csv"), YEAR).write_parquet(checked)
    deduplicate(settings, YEAR, [str(checked)])
    settings.frame_path(YEAR).parent.mkdir(parents=True)
    settings.frame_path(YEAR).write_text(
        "credit_code,enterprise_name,region_code,industry_code,size_class\n"
        f"913301081234567884,甲,330106,3311,small\n{OTHER},乙,330102,3311,small\n"
        "92330482MA2B3C4D1F,丙,330482,3311,micro\n", encoding="utf-8")
    ingested = [
        {"source_file": "a.csv", "status": "read", "rows": 4, "sha256": "x"},
        {"source_file": "b.xls", "status": "quarantined", "rule": "F301", "reason": "legacy"},
    ]
    accounting = report(settings, YEAR, ingested)
    assert accounting["total"] == {"rows_read": 4, "accepted": 2, "rejected": 1,
                                   "superseded": 0, "duplicate": 1, "accepted_with_warnings": 1}
    follow_up = pl.read_parquet(accounting["follow_up"]["parquet"])
    found = sorted(zip(follow_up["rule_id"], follow_up["source_row"].to_list(), strict=True),
                   key=str)
    assert found == sorted([("D202", 3), ("E002", 4), ("W107", 5), ("F301", None),
                            ("N401", None)], key=str)
    no_return = follow_up.filter(pl.col("rule_id") == "N401").row(0, named=True)
    assert no_return["credit_code"] == "92330482MA2B3C4D1F" and no_return["message_zh"]
    csv_bytes = (settings.output_dir(YEAR) / "follow_up.csv").read_bytes()
    assert csv_bytes.startswith(b"\xef\xbb\xbf") and "必填" not in csv_bytes.decode("utf-8-sig")


def test_accounting_refuses_rows_that_do_not_add_up():
    ingested = [{"source_file": "a.csv", "status": "read", "rows": 5}]
    with pytest.raises(AccountingError):
        build_accounting(YEAR, ingested, {"a.csv": ("a.csv", 4, 4, 0, 0, 0, 0)}, False)
    with pytest.raises(AccountingError):
        build_accounting(YEAR, [], {"a.csv": ("a.csv", 4, 4, 0, 0, 0, 0)}, False)


def test_a_year_with_every_file_quarantined_still_accounts_for_it(tmp_path):
    from pipeline.errors import PublicationRefused
    from pipeline.runner import run_year

    settings = Settings(data_dir=tmp_path)
    landing = settings.landing_dir(YEAR)
    landing.mkdir(parents=True)
    (landing / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64)
    # Not published (no readable row), but accounted for and listed for follow-up.
    with pytest.raises(PublicationRefused, match="no readable row"):
        run_year(settings, YEAR)
    accounting = json.loads((settings.output_dir(YEAR) / "accounting.json").read_text())
    assert accounting["files_quarantined"] == 1 and accounting["total"]["rows_read"] == 0
    assert scan_valid_returns(settings, YEAR).collect().height == 0
    follow_up = pl.read_parquet(accounting["follow_up"]["parquet"])
    assert follow_up.select("rule_id", "source_file").rows() == [("F301", "old.xls")]
