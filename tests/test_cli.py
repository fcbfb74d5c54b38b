"""The `survey` command as a county office and an operator use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
from conftest import good_return

from schemas.form import FORM_COLUMNS

SURVEY = str(Path(sys.executable).parent / "survey")


def survey(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SURVEY_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    return subprocess.run([SURVEY, *args], capture_output=True, text=True, env=env)


def gb18030_file(tmp_path: Path, rows: list[dict]) -> Path:
    labels = {c.name: c.label_zh + (f"（{c.unit}）" if c.unit else "") for c in
              FORM_COLUMNS.values()}
    frame = pl.DataFrame(rows).select(list(reversed(FORM_COLUMNS))).rename(labels)
    path = tmp_path / "县局上报.csv"
    path.write_bytes(frame.write_csv().encode("gb18030"))
    return path


def test_check_reports_findings_in_chinese_and_english_with_row_numbers(tmp_path):
    rows = [good_return(), good_return(), good_return(employees="五十人"), good_return()]
    result = survey("check", str(gb18030_file(tmp_path, rows)), data_dir=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    finding = next(line for line in result.stdout.splitlines() if "E002" in line)
    assert "│ 4 " in finding  # header is row 1, so the third data row is row 4
    assert "五十人" in finding and "数值无法按规定类型读取" in finding
    assert "cannot be read as its type" in finding


def test_check_passes_a_clean_file_and_refuses_a_quarantined_one(tmp_path):
    clean = survey("check", str(gb18030_file(tmp_path, [good_return()])), data_dir=tmp_path)
    assert clean.returncode == 0, clean.stdout
    legacy = tmp_path / "old.xls"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64)
    result = survey("check", str(legacy), data_dir=tmp_path)
    assert result.returncode == 1 and "F301" in result.stdout


def test_run_exits_zero_with_rejected_rows_and_prints_the_accounting(small_year_dir):
    data_dir, year = small_year_dir
    result = survey("run", "--year", str(year), data_dir=data_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    accounting = json.loads((data_dir / "output" / str(year) / "accounting.json").read_text())
    total = accounting["total"]
    assert total["rejected"] > 0
    assert f"rows_read {total['rows_read']:,} = accepted {total['accepted']:,}" in result.stdout


def test_run_fails_for_a_year_that_never_landed(tmp_path):
    result = survey("run", "--year", "1999", data_dir=tmp_path)
    assert result.returncode != 0
    assert "no landing folder" in result.stderr
