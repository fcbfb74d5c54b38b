"""The follow-up workbooks of the county offices: one per office, every value text, closed."""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from conftest import YEAR

from pipeline.config import Settings
from pipeline.workbooks import CELL_CHARS, COLUMNS, CUT_NOTE, OUTCOMES, write_workbooks

FOLLOW_UP_SCHEMA = {"region_code": pl.Utf8, "credit_code": pl.Utf8, "enterprise_name": pl.Utf8,
                    "rule_id": pl.Utf8, "severity": pl.Utf8, "column_name": pl.Utf8,
                    "value_received": pl.Utf8, "message_zh": pl.Utf8, "message_en": pl.Utf8,
                    "source_file": pl.Utf8, "source_row": pl.Int64, "contact_name": pl.Utf8,
                    "contact_phone": pl.Utf8}
LEADING_ZEROS = "0133010600000000AB"
LETTERS = "91330106MA2B3C4D1F"
FORMULA = "=1+1"
LINK = '=HYPERLINK("http://x","y")'


def finding(rule_id: str, region_code: str | None = "330106", **overrides) -> dict:
    row = {"region_code": region_code, "credit_code": LETTERS, "enterprise_name": "甲公司",
           "rule_id": rule_id, "severity": rule_id[0], "column_name": None,
           "value_received": None, "message_zh": "说明", "message_en": "message",
           "source_file": "a.csv", "source_row": 2, "contact_name": "张三",
           "contact_phone": "013812345678"}
    return row | overrides


def follow_up(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=FOLLOW_UP_SCHEMA)


YEAR_FINDINGS = follow_up(
    # 西湖区: out of order on purpose, and with a formula, a link and leading zeros to keep inert.
    finding("W107", source_row=5, column_name="contact_phone", value_received="1",
            contact_name=FORMULA),
    finding("E002", credit_code=LEADING_ZEROS, source_row=3, column_name="employees",
            value_received=LINK),
    finding("W101", source_row=5),
    finding("N401", credit_code=None, source_file=None, source_row=None, contact_name=None),
    finding("N402", credit_code="BAD", source_file="frame.csv", source_row=7,
            column_name="credit_code"),
    finding("N402", credit_code="BAD", source_file="frame.csv", source_row=7,
            column_name="region_code"),
    finding("D202", source_file="b.csv", source_row=2),
    # 上城区
    finding("W103", region_code="330102", credit_code="91110000600037341L"),
    # the province's: no region, not a county (unknown, a city)
    finding("F301", region_code=None, credit_code=None, source_file="old.xls", source_row=None,
            value_received="legacy"),
    finding("E006", region_code="339999", column_name="region_code", value_received="339999"),
    finding("E006", region_code="330100", credit_code=LEADING_ZEROS),
)


def cells(sheet) -> list[list]:
    return [[c.value for c in row] for row in sheet.iter_rows()]


def summary_counts(sheet) -> dict[str, str]:
    """Rule id → 条数, from the table under the 规则编号 header."""
    rows = cells(sheet)
    start = next(i for i, row in enumerate(rows) if row[0] == "规则编号") + 1
    counts = {}
    for row in rows[start:]:
        if row[0] is None:
            break
        counts[row[0]] = row[3]
    return counts


def summary_value(sheet, label: str) -> str:
    return next(row[1] for row in cells(sheet) if row[0] == label)


@pytest.fixture
def written(tmp_path):
    settings = Settings(data_dir=tmp_path)
    umask = os.umask(0o022)  # a careless umask: the workbooks are closed all the same
    try:
        result = write_workbooks(settings, YEAR, YEAR_FINDINGS)
    finally:
        os.umask(umask)
    return settings, result


def test_one_workbook_per_county_with_findings_plus_the_provinces(written):
    settings, result = written
    folder = settings.output_dir(YEAR) / "follow_up"
    assert result == {"folder": str(folder), "workbooks": 3,
                      "files": ["330000_浙江省.xlsx", "330102_上城区.xlsx", "330106_西湖区.xlsx"]}
    assert sorted(p.name for p in folder.iterdir()) == result["files"]
    books = {name: openpyxl.load_workbook(folder / name) for name in result["files"]}
    regions = {name: [row[0] for row in cells(book["问题清单"])[1:]]
               for name, book in books.items()}
    assert regions == {"330000_浙江省.xlsx": ["330100", "339999", None],
                       "330102_上城区.xlsx": ["330102"],
                       "330106_西湖区.xlsx": ["330106"] * 7}
    province = books["330000_浙江省.xlsx"]["汇总"]
    assert summary_value(province, "单位") == "浙江省"
    assert summary_counts(province) == {"E006": "2", "F301": "1"}


def test_the_findings_sheet(written):
    settings, _ = written
    book = openpyxl.load_workbook(settings.output_dir(YEAR) / "follow_up" / "330106_西湖区.xlsx")
    assert book.sheetnames == ["汇总", "问题清单"]
    sheet = book["问题清单"]
    rows = cells(sheet)
    assert rows[0] == [header for header, _, _ in COLUMNS]
    # By enterprise (no credit code last), then file, row and rule; the office's columns empty.
    assert [(r[1], r[3], r[9], r[10]) for r in rows[1:]] == [
        (LEADING_ZEROS, "E002", "a.csv", "3"),
        (LETTERS, "W101", "a.csv", "5"),
        (LETTERS, "W107", "a.csv", "5"),
        (LETTERS, "D202", "b.csv", "2"),
        ("BAD", "N402", "frame.csv", "7"),
        ("BAD", "N402", "frame.csv", "7"),
        (None, "N401", None, None),
    ]
    assert all(r[13] is None and r[14] is None for r in rows[1:])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:O8"
    (validation,) = sheet.data_validations.dataValidation
    assert validation.type == "list"
    assert validation.formula1.strip('"').split(",") == OUTCOMES
    assert str(validation.sqref) == "N2:N8"


def test_every_value_stays_text(written):
    settings, _ = written
    sheet = openpyxl.load_workbook(
        settings.output_dir(YEAR) / "follow_up" / "330106_西湖区.xlsx")["问题清单"]
    by_value = {c.value: c for row in sheet.iter_rows(min_row=2) for c in row if c.value}
    for value in (LEADING_ZEROS, LETTERS, FORMULA, LINK, "013812345678", "3"):
        cell = by_value[value]
        assert cell.data_type == "s" and cell.hyperlink is None, value
    assert by_value[FORMULA].column_letter == "L" and by_value[LINK].column_letter == "G"
    with zipfile.ZipFile(settings.output_dir(YEAR) / "follow_up" / "330106_西湖区.xlsx") as xlsx:
        xml = b"".join(xlsx.read(n) for n in xlsx.namelist() if n.startswith("xl/worksheets/"))
        assert not [n for n in xlsx.namelist() if n.endswith(".rels") and "worksheets" in n]
    assert b"<f>" not in xml and b"<hyperlink" not in xml


def test_the_summary_counts_findings_by_rule(written):
    settings, _ = written
    sheet = openpyxl.load_workbook(
        settings.output_dir(YEAR) / "follow_up" / "330106_西湖区.xlsx")["汇总"]
    assert summary_value(sheet, "单位") == "西湖区"
    assert summary_value(sheet, "行政区划代码") == "330106"
    assert summary_value(sheet, "调查年度") == str(YEAR)
    assert summary_value(sheet, "问题条数") == "7"
    # In rules.csv's order (E, W, D, N), with its Chinese message.
    assert list(summary_counts(sheet).items()) == [
        ("E002", "1"), ("W101", "1"), ("W107", "1"), ("D202", "1"), ("N401", "1"), ("N402", "2")]
    rows = cells(sheet)
    assert any(row[0] == "W107" and row[2] == "联系电话不像中国大陆电话号码" for row in rows)
    assert summary_value(sheet, "调查名录内未报企业数（N401）") == "1"
    assert summary_value(sheet, "调查名录中不计入总体的行数（N402）") == "1"  # one row, two cells
    assert any(str(row[0]).startswith("1. 请逐条核实") for row in rows)
    assert not any(row[0] == "问题清单工作表数" for row in rows)  # one findings sheet: no line


def test_the_folder_and_workbooks_are_closed(written):
    settings, result = written
    folder = settings.output_dir(YEAR) / "follow_up"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE((folder / name).stat().st_mode) for name in result["files"]} == {0o600}


def test_a_rerun_replaces_the_years_workbooks(written):
    settings, first = written
    folder = settings.output_dir(YEAR) / "follow_up"
    before = {name: (folder / name).read_bytes() for name in first["files"]}
    assert write_workbooks(settings, YEAR, YEAR_FINDINGS) == first
    # Same findings, same bytes: nothing in a workbook depends on when it was written.
    assert {name: (folder / name).read_bytes() for name in first["files"]} == before
    fewer = YEAR_FINDINGS.filter(pl.col("region_code") == "330102")
    assert write_workbooks(settings, YEAR, fewer)["files"] == ["330102_上城区.xlsx"]
    assert sorted(p.name for p in folder.iterdir()) == ["330102_上城区.xlsx"]
    assert write_workbooks(settings, YEAR, fewer.clear())["workbooks"] == 0
    assert list(folder.iterdir()) == []
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in settings.output_dir(YEAR).iterdir()) == ["follow_up"]


def test_processes_side_by_side_write_the_same_workbooks(written, tmp_path):
    settings, alone = written
    folder = settings.output_dir(YEAR) / "follow_up"
    shared = Settings(data_dir=tmp_path / "shared")
    shared_folder = shared.output_dir(YEAR) / "follow_up"
    side_by_side = write_workbooks(shared, YEAR, YEAR_FINDINGS, processes=2, niceness=5)
    assert side_by_side["files"] == alone["files"]
    for name in alone["files"]:  # an office a process, byte for byte as one process writes it
        assert (shared_folder / name).read_bytes() == (folder / name).read_bytes()
    assert {stat.S_IMODE((shared_folder / name).stat().st_mode)
            for name in alone["files"]} == {0o600}
    assert write_workbooks(shared, YEAR, YEAR_FINDINGS.clear(), processes=2)["workbooks"] == 0
    assert stat.S_IMODE(shared_folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in shared.output_dir(YEAR).iterdir()) == ["follow_up"]
    assert not (tmp_path / "shared" / "tmp" / "workbooks" / str(YEAR)).exists()


@pytest.mark.parametrize("in_memory_findings", [100, 0], ids=["in-memory", "constant-memory"])
def test_findings_past_a_sheets_rows_go_on_further_sheets(tmp_path, in_memory_findings):
    settings = Settings(data_dir=tmp_path)
    seven = follow_up(*(finding("W101", source_row=row) for row in range(2, 9)))
    write_workbooks(settings, YEAR, seven, sheet_rows=3, in_memory_findings=in_memory_findings)
    book = openpyxl.load_workbook(settings.output_dir(YEAR) / "follow_up" / "330106_西湖区.xlsx")
    assert book.sheetnames == ["汇总", "问题清单", "问题清单（2）", "问题清单（3）"]
    sheets = [book[name] for name in book.sheetnames[1:]]
    rows = [cells(sheet) for sheet in sheets]
    assert [r[0] for r in rows] == [[header for header, _, _ in COLUMNS]] * 3
    # All seven, in order, none twice: 3 + 3 + 1.
    assert [[r[10] for r in sheet_rows[1:]] for sheet_rows in rows] == [
        ["2", "3", "4"], ["5", "6", "7"], ["8"]]
    for sheet, (filtered, outcomes) in zip(sheets, [("A1:O4", "N2:N4"), ("A1:O4", "N2:N4"),
                                                    ("A1:O2", "N2")], strict=True):
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == filtered
        (validation,) = sheet.data_validations.dataValidation
        assert validation.formula1.strip('"').split(",") == OUTCOMES
        assert str(validation.sqref) == outcomes
        assert sheet.print_title_rows == "$1:$1"
        assert sheet.page_setup.orientation == "landscape"
        assert [sheet.column_dimensions[c].number_format for c in "AO"] == ["@", "@"]
    summary = book["汇总"]
    assert summary_value(summary, "问题条数") == "7"
    assert summary_value(summary, "问题清单工作表数") == (
        "3（问题清单、问题清单（2）、问题清单（3））")


def test_temp_files_stay_in_a_closed_folder_under_the_data_root(tmp_path, monkeypatch):
    made = []
    mkstemp = tempfile.mkstemp

    def recorded(*args, **kwargs):
        fd, name = mkstemp(*args, **kwargs)
        made.append(Path(name))
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", recorded)
    # The system's temp folder, pointed nowhere: a temp file put there would fail the write.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "system-temp-not-to-be-used"))
    settings = Settings(data_dir=tmp_path / "data")
    umask = os.umask(0o022)
    try:
        write_workbooks(settings, YEAR, YEAR_FINDINGS, in_memory_findings=0)  # all large
    finally:
        os.umask(umask)
    scratch = settings.data_dir / "tmp" / "workbooks"
    assert made and {path.parent for path in made} == {scratch / str(YEAR)}
    assert stat.S_IMODE(scratch.stat().st_mode) == 0o700
    assert list(scratch.iterdir()) == []  # removed with the run
    assert not (tmp_path / "system-temp-not-to-be-used").exists()


def test_a_value_longer_than_a_cell_is_cut_and_says_so(tmp_path):
    settings = Settings(data_dir=tmp_path)
    fits, long = "甲" * CELL_CHARS, "乙" * (CELL_CHARS + 5000)
    write_workbooks(settings, YEAR, follow_up(
        finding("E002", source_row=2, column_name="enterprise_name", value_received=fits),
        finding("E002", source_row=3, column_name="enterprise_name", value_received=long)))
    book = openpyxl.load_workbook(settings.output_dir(YEAR) / "follow_up" / "330106_西湖区.xlsx")
    received = [row[6] for row in cells(book["问题清单"])[1:]]
    assert received[0] == fits
    assert len(received[1]) == CELL_CHARS and received[1].endswith(CUT_NOTE)
    assert received[1].startswith("乙" * (CELL_CHARS - len(CUT_NOTE)))
