"""Every accepted file shape, header mapping, row numbers and every F rule, on real files."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from conftest import YEAR, good_return

from pipeline.check import check_batch
from pipeline.config import Settings
from pipeline.ingest import canonical_column, read_received
from schemas.form import FORM_COLUMNS

ROWS = [good_return(), good_return(credit_code="91330100799655058B", employees="1,234")]


def csv_text(rows, headers=None, newline="\n") -> str:
    headers = headers or list(FORM_COLUMNS)
    out = io.StringIO()
    import csv

    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in FORM_COLUMNS])
    return out.getvalue()


def read(tmp_path: Path, name: str, data: bytes, **limits):
    path = tmp_path / name
    path.write_bytes(data)
    return read_received(Settings(data_dir=tmp_path, **limits), path)


def assert_read(received, rows=2):
    assert received.report.status == "read", received.report
    assert received.frame.height == rows
    assert received.frame["source_row"].to_list() == list(range(2, rows + 2))
    assert received.frame["credit_code"][1] == "91330100799655058B"


def test_csv_utf8(tmp_path):
    received = read(tmp_path, "a.csv", csv_text(ROWS).encode())
    assert_read(received)
    assert (received.report.format, received.report.encoding) == ("csv", "utf-8")
    assert received.frame["employees"][1] == "1,234"  # kept as received


def test_csv_utf8_bom_crlf(tmp_path):
    received = read(tmp_path, "a.txt", b"\xef\xbb\xbf" + csv_text(ROWS, newline="\r\n").encode())
    assert_read(received)
    assert received.report.encoding == "utf-8-sig"
    assert received.frame["submitted_at"][0] == "2026-02-03 10:00"


def test_csv_gb18030_chinese_headers_shuffled_with_units(tmp_path):
    labels = {c.name: c.label_zh + (f"（{c.unit}）" if c.unit else "") for c in
              FORM_COLUMNS.values()}
    labels["enterprise_name"] = " 企业名称 "
    labels["employees"] = "从业人员期末人数（人）"
    order = sorted(FORM_COLUMNS, key=lambda c: hash(c) % 7)
    frame = pl.DataFrame(ROWS).select(order).rename({c: labels[c] for c in order})
    received = read(tmp_path, "县局.csv", frame.write_csv().encode("gb18030"))
    assert_read(received)
    assert received.report.encoding == "gb18030"
    assert received.frame["enterprise_name"][0] == "杭州示例标准化有限公司"


def test_quoted_fields_hold_commas_and_line_breaks(tmp_path):
    rows = [good_return(enterprise_name="杭州甲,乙有限公司"),
            good_return(credit_code="91330100799655058B", contact_name="张\n三")]
    received = read(tmp_path, "a.csv", csv_text(rows).encode())
    assert_read(received)
    assert received.frame["contact_name"][1] == "张\n三"


def test_xlsx_typed_cells(tmp_path):
    path = tmp_path / "b.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    date_format = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    sheet.write_row(0, 0, list(FORM_COLUMNS))
    for r, row in enumerate(ROWS, start=1):
        for c, name in enumerate(FORM_COLUMNS):
            value = row[name]
            if name == "submitted_at":
                sheet.write_datetime(r, c, dt.datetime(2026, 2, 3, 10, 0), date_format)
            elif name in ("employees", "revenue", "std_spending") and value:
                sheet.write_number(r, c, float(value.replace(",", "")))
            elif value is not None:
                sheet.write_string(r, c, value)
    book.close()
    received = read_received(Settings(data_dir=tmp_path), path)
    assert_read(received)
    assert received.report.format == "xlsx"
    assert received.frame["employees"][1] == "1234"
    assert received.frame["submitted_at"][0].startswith("2026-02-03 10:00")


def test_json_lines_numbers_and_line_numbers(tmp_path):
    lines = [json.dumps(ROWS[0], ensure_ascii=False), "",
             json.dumps({**ROWS[1], "employees": 1234.0}, ensure_ascii=False)]
    received = read(tmp_path, "c.jsonl", "\n".join(lines).encode())
    assert received.report.format == "jsonl"
    assert received.frame["source_row"].to_list() == [1, 3]  # JSON Lines: the line number
    assert received.frame["employees"][1] == "1234"


def test_unknown_columns_are_listed_and_blank_rows_skipped(tmp_path):
    header, *rows = csv_text(ROWS).splitlines()
    text = "\n".join([header + ",备注", *(row + ",x" for row in rows), "," * 33]) + "\n"
    received = read(tmp_path, "a.csv", text.encode())
    assert received.report.unknown_columns == ["备注"]
    assert received.frame.height == 2 and received.report.blank_rows_skipped == 1


@pytest.mark.parametrize(("header", "column"), [
    ("从业人员期末人数（人）", "employees"),
    ("  Employees ", "employees"),
    ("参与制修订国际标准（含主导）（项）", "intl_involved"),
    ("参与制修订国际标准(含主导)", "intl_involved"),
    ("融入标准的专利（件）", "patents_in_standards"),
    ("ｃｒｅｄｉｔ＿ｃｏｄｅ", "credit_code"),
    ("主导制定“浙江制造”标准", "zhejiang_made"),
    ("备注", None),
    ("标准化经费投入(万元)", "std_spending"),
])
def test_header_mapping(header, column):
    assert canonical_column(header) == column


def xlsx_bytes(tmp_path) -> bytes:
    path = tmp_path / "ok.xlsx"
    book = xlsxwriter.Workbook(path)
    book.add_worksheet().write_row(0, 0, list(FORM_COLUMNS))
    book.close()
    return path.read_bytes()


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b" " * (8 * 2**20))
    return out.getvalue()


F_CASES = {
    "F301-pdf": ("report.csv", lambda t: b"%PDF-1.7\n%\xe2\xe3\n1 0 obj"),
    "F301-xls": ("old.xls", lambda t: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512),
    "F301-zip": ("data.xlsx", lambda t: _plain_zip()),
    "F302-utf16": ("u16.csv", lambda t: csv_text(ROWS).encode("utf-16")),
    "F302-bytes": ("bad.csv", lambda t: csv_text(ROWS).encode() + b"\xff\xfe\xfd,\x80\n"),
    "F303-missing": ("m.csv", lambda t: csv_text(ROWS).replace("credit_code", "code", 1).encode()),
    "F303-twice": ("d.csv", lambda t: csv_text(ROWS).replace("revenue", "营业收入（万元）", 1)
                   .replace("employees", "营业收入", 1).encode()),
    "F304-header-only": ("h.csv", lambda t: csv_text([]).encode()),
    "F304-empty": ("e.csv", lambda t: b""),
    "F305-rows": ("big.csv", lambda t: csv_text(ROWS * 3).encode()),
    "F305-rows-quoted": ("bigq.csv", lambda t: csv_text(
        [good_return(enterprise_name="甲,乙有限公司")] * 6).encode()),
    "F305-size": ("huge.csv", lambda t: csv_text(ROWS).encode() + b" " * 4096),
    "F306-broken-xlsx": ("broken.xlsx", lambda t: xlsx_bytes(t)[:200]),
    "F306-bomb": ("bomb.xlsx", lambda t: zip_bomb()),
    "F306-ragged": ("r.csv", lambda t: (csv_text(ROWS) + "1," * 40 + "\n").encode()),
    "F306-json": ("j.jsonl", lambda t: b'{"credit_code": "1"}\n{not json}\n'),
    "F306-long-record": ("long.csv", lambda t: csv_text(ROWS).encode() + b"x" * (2**20 + 1)),
    # F307: the maker makes the entry itself (and returns None).
    "F307-symlink": ("link.csv", lambda t: _link_to_a_good_file(t / "link.csv")),
    "F307-folder": ("folder.csv", lambda t: (t / "folder.csv").mkdir()),
}


def _link_to_a_good_file(link: Path) -> None:
    good = link.with_name("good.csv")
    good.write_text(csv_text(ROWS), encoding="utf-8")
    link.symlink_to(good)


def _plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return out.getvalue()


@pytest.mark.parametrize("case", sorted(F_CASES))
def test_file_rules(tmp_path, case):
    name, make = F_CASES[case]
    limits = {"max_file_rows": 5, "max_file_bytes": 4096} if case.startswith("F305") else {}
    made = make(tmp_path)
    if made is not None:
        (tmp_path / name).write_bytes(made)
    received = read_received(Settings(data_dir=tmp_path, **limits), tmp_path / name)
    assert received.report.status == "quarantined"
    assert received.report.rule == case[:4], received.report.reason
    assert received.report.reason and received.frame is None


def test_f303_names_the_missing_columns(tmp_path):
    text = csv_text(ROWS).replace("credit_code", "code", 1).replace("contact_phone", "tel", 1)
    received = read(tmp_path, "m.csv", text.encode())
    assert "credit_code" in received.report.reason and "contact_phone" in received.report.reason


def test_every_f_rule_is_tested_here():
    from schemas.rules import rules

    assert {case[:4] for case in F_CASES} == {r for r in rules() if r.startswith("F")}


def test_a_checked_file_keeps_each_row_s_place_and_the_file_s_sha256(tmp_path):
    settings = Settings(data_dir=tmp_path)
    landing = settings.landing_dir(YEAR)
    landing.mkdir(parents=True)
    (landing / "a.csv").write_text(csv_text(ROWS), encoding="utf-8")
    (report,) = check_batch(settings, YEAR, [landing / "a.csv"])
    checked = pl.read_parquet(report["checked_path"])
    assert checked.columns[:3] == ["source_file", "source_row", "source_sha256"]
    assert checked["source_sha256"].unique().to_list() == [report["sha256"]]
    assert report["sha256"] == hashlib.sha256((landing / "a.csv").read_bytes()).hexdigest()
    assert checked["source_row"].to_list() == [2, 3] and report["rows"] == 2
