"""Every E and W rule on tiny inline frames: one passing and one failing case each."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import YEAR, good_return, raw_frame

from pipeline.validate import check_returns
from schemas.rules import rules

# rule, column it names, cells that fail it, cells that pass it (beside the good return)
CASES = [
    ("E001", "enterprise_name", {"enterprise_name": "  "}, {"enterprise_name": "宁波甬江阀门厂"}),
    ("E001", "submitted_at", {"submitted_at": None}, {"submitted_at": "2026-03-31 23:59:59"}),
    ("E002", "employees", {"employees": "五十"}, {"employees": "50.0"}),
    ("E002", "intl_involved", {"intl_involved": "2.5"}, {"intl_involved": "2"}),
    ("E002", "submitted_at", {"submitted_at": "2026-02-30 10:00"},
     {"submitted_at": "2026-02-28T10:00:00+08:00"}),
    ("E002", "rd_expenditure", {"rd_expenditure": "n/a"}, {"rd_expenditure": ""}),
    ("E003", "std_spending", {"std_spending": "-1"}, {"std_spending": "0"}),
    ("E003", "patents_in_standards", {"patents_in_standards": "100001"},
     {"patents_in_standards": "100000"}),
    ("E003", "employees", {"employees": "2000001", "revenue": "99999999"},
     {"employees": "2000000", "revenue": "99999999", "size_class": "large"}),
    ("E003", "enterprise_name", {"enterprise_name": "厂"}, {"enterprise_name": "厂房"}),
    ("E004", "credit_code", {"credit_code": "91330108123456788I"},
     {"credit_code": " ９１３３０１０８１２３４５６７８８４ "}),
    ("E005", "credit_code", {"credit_code": "913301081234567885"},
     {"credit_code": "92330482ma2b3c4d1f"}),
    ("E006", "region_code", {"region_code": "330103"}, {"region_code": "330113"}),
    ("E007", "industry_code", {"industry_code": "331"}, {"industry_code": "3312"}),
    ("E008", "size_class", {"size_class": "tiny"}, {"size_class": "小型"}),
    ("E008", "innovation_award", {"innovation_award": "国家级"}, {"innovation_award": "省级"}),
    ("E009", "group_led", {"group_led": "3", "group_involved": "2"},
     {"group_led": "2", "group_involved": "2"}),
    ("E010", "std_staff", {"std_staff": "51"}, {"std_staff": "50"}),
    ("E011", "survey_year", {"survey_year": "2024"}, {"survey_year": "2025.0"}),
    ("W101", "std_spending", {"std_spending": "1200.01"}, {"std_spending": "1,200"}),
    ("W102", "size_class", {"size_class": "medium"}, {"employees": "300", "revenue": "2000",
                                                      "size_class": "medium"}),
    ("W102", "size_class", {"employees": "1500", "revenue": "100", "size_class": "large"},
     {"employees": "1500", "revenue": "100", "size_class": "micro"}),
    ("W104", "submitted_at", {"submitted_at": "2026-04-01 00:00"},
     {"submitted_at": "2026-01-01 00:00"}),
    ("W105", "leader_standards", {"leader_standards": "4"}, {"leader_standards": "3"}),
    ("W107", "contact_phone", {"contact_phone": "12345"}, {"contact_phone": "0571-87654321"}),
]


def findings_of(frame: pl.DataFrame) -> list[set[tuple[str, str]]]:
    return [{(f["rule_id"], f["column_name"]) for f in row} for row in frame["findings"]]


def test_the_good_return_passes_every_rule():
    checked = check_returns(raw_frame(good_return()), YEAR)
    assert findings_of(checked) == [set()]
    assert checked["rejected"].to_list() == [False]


@pytest.mark.parametrize(("rule", "column", "failing", "passing"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_rule(rule, column, failing, passing):
    checked = check_returns(raw_frame(good_return(**failing), good_return(**passing)), YEAR)
    bad, good = findings_of(checked)
    assert (rule, column) in bad
    assert good == set()
    assert checked["rejected"].to_list() == [rule.startswith("E"), False]


def test_w103_needs_a_valid_code_registered_outside_zhejiang():
    # Beijing (11…) code with the right check character
    from schemas.types import CREDIT_CODE_ALPHABET, CREDIT_CODE_WEIGHTS

    body = "91110108MA0123456"
    total = sum(CREDIT_CODE_ALPHABET.index(ch) * w for ch, w in zip(body, CREDIT_CODE_WEIGHTS,
                                                                      strict=True))
    code = body + CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]
    checked = check_returns(raw_frame(good_return(credit_code=code)), YEAR)
    assert findings_of(checked) == [{("W103", "credit_code")}]
    assert checked["rejected"].to_list() == [False]


def test_w106_compares_with_last_years_accepted_counts():
    previous = pl.DataFrame({"credit_code": ["913301081234567884"],
                             "previous_national_involved": [2], "previous_employees": [50]})
    jump = good_return(national_involved="21", national_led="1")
    small = good_return(national_involved="19", national_led="1")
    checked = check_returns(raw_frame(jump, small), YEAR, previous)
    assert findings_of(checked) == [{("W106", "national_involved")}, set()]
    # without last year's data the rule is skipped
    assert findings_of(check_returns(raw_frame(jump), YEAR)) == [set()]


def test_lazy_validation_reports_every_finding_of_a_row():
    bad = good_return(employees="x", credit_code="123", region_code="999999", size_class="?",
                      contact_phone="1", survey_year="2024")
    (found,) = findings_of(check_returns(raw_frame(bad), YEAR))
    assert found == {("E002", "employees"), ("E004", "credit_code"), ("E006", "region_code"),
                     ("E008", "size_class"), ("W107", "contact_phone"), ("E011", "survey_year")}


def test_findings_keep_the_value_as_received():
    checked = check_returns(raw_frame(good_return(employees=" 五十 ")), YEAR)
    (finding,) = checked["findings"][0]
    assert finding == {"rule_id": "E002", "severity": "E", "column_name": "employees",
                       "value_received": " 五十 "}


def test_cell_status_records_how_each_value_was_obtained():
    row = good_return(revenue="1,200", size_class="小型", employees="５０", std_staff=" 2",
                      intl_led=None, rd_expenditure=None)
    checked = check_returns(raw_frame(row), YEAR)
    status = checked["cell_status"][0]
    assert (status["revenue"], status["size_class"], status["employees"]) == ("N", "N", "N")
    assert (status["std_staff"], status["intl_led"], status["rd_expenditure"]) == ("N", "B", "B")
    assert (status["credit_code"], status["survey_year"]) == ("R", "R")
    typed = checked.row(0, named=True)
    assert (typed["revenue"], typed["size_class"], typed["employees"]) == (1200.0, "small", 50)
    assert typed["intl_led"] == 0 and typed["rd_expenditure"] is None
    assert typed["innovation_award"] == "none"


def test_every_rule_has_bilingual_messages():
    for rule_id, rule in rules().items():
        assert rule["message_zh"] and rule["message_en"], rule_id
        assert rule["severity"] == rule_id[0] or (rule_id[0], rule["severity"]) == ("N", "N")


def test_every_e_and_w_rule_is_tested_here():
    tested = {case[0] for case in CASES} | {"W103", "W106"}
    assert tested == {r for r in rules() if r[0] in "EW"}
