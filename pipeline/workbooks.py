"""The follow-up list as one XLSX workbook per county office (monitoring-tables §4), for the
people who ring the enterprises back: output/<year>/follow_up/<region_code>_<name>.xlsx."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path

import polars as pl
import xlsxwriter

from pipeline.config import CLOSED_FILE, Settings, closed_dir
from pipeline.processes import die_with_parent, without_main_script
from schemas import reference
from schemas.reference import PROVINCE
from schemas.rules import rules

#: The findings sheet: (header, follow_up column or None for the office's own columns, width).
COLUMNS = (
    ("行政区划代码", "region_code", 13),
    ("统一社会信用代码", "credit_code", 21),
    ("企业名称", "enterprise_name", 30),
    ("规则编号", "rule_id", 9),
    ("级别", "severity", 15),
    ("涉及字段", "column_name", 16),
    ("收到的原始值", "value_received", 20),
    ("说明（中文）", "message_zh", 45),
    ("说明（英文）", "message_en", 45),
    ("来源文件", "source_file", 24),
    ("来源行号", "source_row", 9),
    ("填报人", "contact_name", 10),
    ("联系电话", "contact_phone", 14),
    ("处理结果", None, 13),
    ("说明", None, 40),
)
#: What the workbooks read of the follow-up list.
FINDING_COLUMNS = [column for _, column, _ in COLUMNS if column]
#: A sheet's findings: by enterprise (no credit code last), then file, row, rule and column.
SORT_BY = ["credit_code", "source_file", "source_row", "rule_id", "column_name"]
OUTCOME_COLUMN = [header for header, _, _ in COLUMNS].index("处理结果")
OUTCOMES = ["已核实无误", "已更正重报", "无法联系", "其他"]
SEVERITY_ZH = {"E": "错误（未接受）", "W": "存疑（已接受）", "D": "重复或被替代",
               "N": "调查名录", "F": "文件（未读取）"}
TO_DO = (
    "请逐条核实“问题清单”中的每一条问题：按清单中的填报人和联系电话联系企业"
    "（N401、N402 为调查名录中的企业，请按名录联系）。",
    "在“处理结果”列从下拉列表中选择：已核实无误、已更正重报、无法联系、其他。",
    "在最后一列“说明”中记录核实情况；选择“其他”时必须说明。",
    "需要更正的，请企业按原渠道重新报送完整的报表：后报送的有效报表替代先前的报表。",
    "请勿改动其他列和表头。处理完毕后，请将本工作簿交回省调查办公室。",
)
#: Strings stay strings: nothing from a return becomes a formula, a link or a number that loses
#: its leading zeros.
WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False,
                    "strings_to_numbers": False}
#: A workbook of up to this many findings is built in memory (xlsxwriter keeps about 1.6 kB a
#: finding). A larger one is built in constant memory: each row goes to a temp file once written
#: (strings inline, not in a shared table; rows in order, sheet by sheet), so the province's
#: workbook costs the same memory at 5 million returns as at 1 million. Its temp files hold names
#: and phones: `tmpdir` puts them in a closed folder under the data root, never the system's.
IN_MEMORY_FINDINGS = 100_000
#: Offices whose findings are read together, up to this many rows: one scan of the follow-up
#: list for the many small offices, one office at a time for a large one.
READ_FINDINGS = 200_000
#: Shared among processes, the offices are read in about this many groups a process, so that
#: the processes finish together rather than one waiting on the other's last large group.
GROUPS_PER_PROCESS = 4
#: xlsxwriter stamps the workbook with the time it was written unless told otherwise: a fixed
#: date keeps a workbook's bytes a function of its findings (the ZIP entries get a fixed date too).
CREATED = datetime(1980, 1, 1)
#: An XLSX sheet holds 1,048,576 rows: the header and this many findings under it. An office with
#: more gets further findings sheets, 问题清单（2） and on, rather than losing the rest.
SHEET_ROWS = 1_048_575
#: A cell holds at most this many characters (xlsxwriter would cut a longer value without a
#: word): a longer one is cut with CUT_NOTE at its end, which says where the whole value is.
CELL_CHARS = 32_767
CUT_NOTE = "…〔过长已截断，完整内容见 follow_up.csv〕"
FINDINGS_SHEET = "问题清单"


def follow_up_workbooks(settings: Settings, year: int, processes: int = 1,
                        niceness: int = 0) -> dict:
    """The workbooks of the follow-up list the report step wrote for the year."""
    # Scanned, not read: each office's rows are read on their own, so the step holds one office's
    # findings at a time rather than the whole year's.
    follow_up = pl.scan_parquet(settings.output_dir(year) / "follow_up.parquet", glob=False)
    return write_workbooks(settings, year, follow_up, processes=processes, niceness=niceness)


def write_workbooks(settings: Settings, year: int, follow_up: pl.DataFrame | pl.LazyFrame,
                    sheet_rows: int = SHEET_ROWS, in_memory_findings: int = IN_MEMORY_FINDINGS,
                    processes: int = 1, niceness: int = 0) -> dict:
    """Write the year's follow-up workbooks (one per county with findings, the province's for the
    rest), replacing the previous set whole; return the folder, the count and the file names.
    With processes > 1, offices are written side by side in that many spawned processes, each
    run at `niceness` (beside other steps, they take the CPU those leave)."""
    out_dir = closed_dir(settings.output_dir(year))
    folder, building, old = (out_dir / "follow_up", out_dir / ".follow_up.building",
                             out_dir / ".follow_up.old")
    # xlsxwriter's temp files (the rows as they are written): closed, and removed with the run.
    scratch = closed_dir(settings.data_dir / "tmp" / "workbooks") / str(year)
    for leftover in (building, old, scratch):  # from a run that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    closed_dir(building)
    closed_dir(scratch)
    try:
        files = _write_offices(building, scratch, year, follow_up,
                               {"sheet_rows": sheet_rows, "in_memory_findings": in_memory_findings},
                               processes, niceness)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # Swap the whole folder, so that an office with no findings any more keeps no stale workbook.
    if folder.exists():
        folder.rename(old)
    building.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return {"folder": str(folder), "workbooks": len(files), "files": sorted(files)}


def _write_offices(building: Path, scratch: Path, year: int,
                   follow_up: pl.DataFrame | pl.LazyFrame, sizes: dict, processes: int,
                   niceness: int) -> list[str]:
    """Write each office's workbook into the building folder; return the file names."""
    counties = reference.county_codes()
    # Null or not a current county (quarantined files, unreadable regions): the province's.
    office = pl.when(pl.col("region_code").is_in(counties)).then(
        pl.col("region_code")).fill_null(PROVINCE)
    findings = follow_up.lazy().select(FINDING_COLUMNS).with_columns(office=office)
    counts = findings.group_by("office").len().sort("office").collect()
    most = READ_FINDINGS
    if processes > 1:
        most = min(most, max(1, counts["len"].sum() // (processes * GROUPS_PER_PROCESS)))
    # A group's rows as a query, collected by the process that writes the group.
    groups = [(codes, findings.filter(pl.col("office").is_in(codes)))
              for codes in _read_together(counts, most)]
    write = partial(_write_group, building, scratch, year, sizes)
    if processes == 1:
        return [name for codes, rows in groups for name in write(codes, rows)]
    # spawn, not fork: a forked child of a process running polars' threads can deadlock.
    with ProcessPoolExecutor(processes, multiprocessing.get_context("spawn"),
                             initializer=_start_process, initargs=(os.getpid(), niceness)) as pool:
        with without_main_script():  # the processes start on the first calls
            written = pool.map(write, *zip(*groups, strict=True)) if groups else []
        return [name for names in written for name in names]


def _start_process(parent: int, niceness: int) -> None:
    die_with_parent(parent)
    os.nice(niceness)


def _write_group(building: Path, scratch: Path, year: int, sizes: dict, codes: list[str],
                 rows: pl.LazyFrame) -> list[str]:
    """The workbooks of offices read together; their file names."""
    names = {r["code"]: r["name"] for r in reference.regions()}
    read = rows.collect(engine="streaming")
    files = []
    for code in codes:
        # The sort is stable and the filter keeps the file's order: the same rows in the
        # same order as sorting the whole year first.
        office_rows = read.filter(pl.col("office") == code).drop("office").sort(
            SORT_BY, nulls_last=True, maintain_order=True)
        name = f"{code}_{names[code]}.xlsx"
        _write_workbook(building / name, code, names[code], year, office_rows, scratch, **sizes)
        (building / name).chmod(CLOSED_FILE)
        files.append(name)
        del office_rows  # before the next office's
    return files


def _read_together(counts: pl.DataFrame, most: int = READ_FINDINGS) -> list[list[str]]:
    """Office codes in order, grouped up to `most` rows (a larger office alone)."""
    groups, total = [], most
    for code, rows in counts.iter_rows():
        if total + rows > most:
            groups.append([])
            total = 0
        groups[-1].append(code)
        total += rows
    return groups


def _write_workbook(path: Path, code: str, name: str, year: int, rows: pl.DataFrame,
                    scratch: Path, sheet_rows: int, in_memory_findings: int) -> None:
    """One office's workbook: the summary, then its findings with columns for the outcome."""
    sheets = [FINDINGS_SHEET] + [f"{FINDINGS_SHEET}（{i}）"
                                 for i in range(2, -(-rows.height // sheet_rows) + 1)]
    large = {"constant_memory": True, "tmpdir": str(scratch)}
    workbook = xlsxwriter.Workbook(path, WORKBOOK_OPTIONS | (
        {"in_memory": True} if rows.height <= in_memory_findings else large))
    workbook.set_properties({"title": f"{year}年度企业标准化调查问题核查清单（{name}）",
                             "created": CREATED})
    text = workbook.add_format({"num_format": "@"})
    styles = {"text": text, "bold": workbook.add_format({"bold": True, "num_format": "@"}),
              "title": workbook.add_format({"bold": True, "font_size": 14, "num_format": "@"}),
              "header": workbook.add_format({"bold": True, "num_format": "@", "bg_color": "#DDEBF7",
                                             "border": 1})}
    _write_summary(workbook.add_worksheet("汇总"), styles, code, name, year, rows, sheets)
    for i, sheet_name in enumerate(sheets):
        _write_findings(workbook.add_worksheet(sheet_name), styles,
                        rows.slice(i * sheet_rows, sheet_rows))
    for worksheet in workbook.worksheets():
        # Codes and counts are text on purpose: no green "number stored as text" triangles.
        worksheet.ignore_errors({"number_stored_as_text": "A1:XFD1048576"})
    workbook.close()


def _write_findings(sheet, styles: dict, rows: pl.DataFrame) -> None:
    """A findings sheet: the header, the rows in order (constant memory), the outcome's list."""
    text = styles["text"]
    for col, (header, _, width) in enumerate(COLUMNS):
        # The column's own format too: what the office types in later stays text as well.
        sheet.set_column(col, col, width, text)
        sheet.write_string(0, col, header, styles["header"])
    for row, finding in enumerate(rows.iter_rows(named=True), start=1):
        for col, (_, column, _) in enumerate(COLUMNS):
            value = finding.get(column) if column else None
            if column == "severity":
                value = f"{value} {SEVERITY_ZH.get(value, '')}".strip()
            # -1: past the sheet's last row; the split into sheets should make it impossible.
            if value is not None and sheet.write_string(row, col, _cell_text(value), text) == -1:
                raise ValueError(f"finding {row} does not fit on sheet {sheet.name}")
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, rows.height, len(COLUMNS) - 1)
    sheet.data_validation(1, OUTCOME_COLUMN, rows.height, OUTCOME_COLUMN, {
        "validate": "list", "source": OUTCOMES,
        "error_title": "处理结果",
        "error_message": "请从下拉列表中选择；其他情况选“其他”并在“说明”列写明。"})
    sheet.repeat_rows(0)
    sheet.set_landscape()


def _cell_text(value) -> str:
    text = str(value)
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS - len(CUT_NOTE)] + CUT_NOTE


def _write_summary(sheet, styles: dict, code: str, name: str, year: int,
                   rows: pl.DataFrame, sheets: list[str]) -> None:
    """The `汇总` sheet: whose workbook, the findings counted by rule, and what to do."""
    known = rules()
    order = {rule_id: i for i, rule_id in enumerate(known)}  # rules.csv order: E, W, D, N, F
    counts = sorted(rows["rule_id"].value_counts().iter_rows(),
                    key=lambda r: (order.get(r[0], len(order)), r[0]))
    frame_rows_left_out = rows.filter(pl.col("rule_id") == "N402").select(
        "source_file", "source_row").n_unique()
    lines = [
        [("title", f"{year}年度企业标准化调查 问题核查清单")],
        [],
        [("bold", "单位"), ("text", name)],
        [("bold", "行政区划代码"), ("text", code)],
        [("bold", "调查年度"), ("text", str(year))],
        [("bold", "问题条数"), ("text", str(rows.height))],
        *([[("bold", "问题清单工作表数"), ("text", f"{len(sheets)}（{'、'.join(sheets)}）")]]
          if len(sheets) > 1 else []),
        [("bold", "调查名录内未报企业数（N401）"),
         ("text", str(rows.filter(pl.col("rule_id") == "N401").height))],
        [("bold", "调查名录中不计入总体的行数（N402）"), ("text", str(frame_rows_left_out))],
    ]
    if code == PROVINCE:
        lines.append([("bold", "范围"), ("text", "行政区划代码缺失或不是浙江省现行县级代码的问题，"
                                               "包括无法读取的文件（F 类规则）")])
    lines += [[], [("header", h) for h in ("规则编号", "级别", "中文说明", "条数")]]
    for rule_id, count in counts:
        rule = known.get(rule_id, {})
        severity = rule.get("severity", "")
        lines.append([("text", rule_id), ("text", f"{severity} {SEVERITY_ZH.get(severity, '')}"),
                      ("text", rule.get("message_zh", "")), ("text", str(count))])
    lines += [[], [("bold", "处理要求")]]
    lines += [[("text", f"{i}. {step}")] for i, step in enumerate(TO_DO, start=1)]
    for row, line in enumerate(lines):
        for col, (style, value) in enumerate(line):
            sheet.write_string(row, col, value, styles[style])
    sheet.set_column(0, 0, 34)
    sheet.set_column(1, 1, 18)
    sheet.set_column(2, 2, 60)
    sheet.set_column(3, 3, 8)
