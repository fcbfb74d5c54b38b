"""Shared fixtures: tiny returns built in code, and an isolated Airflow home and data root."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads its home when first imported: point it at a throwaway folder before any test does.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-test-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent.parent / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"

import polars as pl  # noqa: E402
import pytest  # noqa: E402

from schemas.form import FORM_COLUMNS  # noqa: E402

YEAR = 2025
GOOD = {
    "survey_year": "2025",
    "credit_code": "913301081234567884",
    "enterprise_name": "杭州示例标准化有限公司",
    "region_code": "330106",
    "industry_code": "3311",
    "size_class": "small",
    "employees": "50",
    "revenue": "1200",
    "intl_led": "0",
    "intl_involved": "1",
    "national_led": "1",
    "national_involved": "2",
    "enterprise_declared": "3",
    "leader_standards": "1",
    "std_staff": "2",
    "std_spending": "12.5",
    "innovation_award": "none",
    "contact_name": "张三",
    "contact_phone": "13812345678",
    "submitted_at": "2026-02-03 10:00",
}


def good_return(**overrides: str | None) -> dict[str, str | None]:
    """A return that passes every rule, with some cells replaced."""
    row = {column: None for column in FORM_COLUMNS}
    row.update(GOOD)
    row.update(overrides)
    return row


def raw_frame(*rows: dict, source_file: str = "test.csv") -> pl.DataFrame:
    """Rows as the raw layer holds them: text cells plus source_file, source_row and sha256."""
    frame = pl.DataFrame(list(rows), schema={c: pl.Utf8 for c in FORM_COLUMNS})
    return frame.with_columns(
        source_file=pl.lit(source_file),
        source_row=pl.int_range(2, len(rows) + 2, dtype=pl.Int64),
        source_sha256=pl.lit("0" * 64),
    )


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An SQLite Airflow metadata database, migrated once for the session."""
    import subprocess
    import sys

    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    return _AIRFLOW_HOME


SMALL_ENTERPRISES = 2_000
#: A small per-file row limit, so the synthetic year's F305 file is small too.
SMALL_MAX_ROWS = 500


@pytest.fixture
def small_year_dir(tmp_path, monkeypatch) -> tuple[Path, int]:
    """A fresh data root holding one small synthetic year; the pipeline's row limit to match."""
    from devtools.synth import synthesize

    synthesize(YEAR, SMALL_ENTERPRISES, 11, tmp_path, max_rows=SMALL_MAX_ROWS)
    monkeypatch.setenv("SURVEY_MAX_FILE_ROWS", str(SMALL_MAX_ROWS))
    return tmp_path, YEAR


YEARS = (2024, 2025)  # the second year has last year's data: W106 applies, yoy_pct is filled


@pytest.fixture(scope="session")
def two_years(tmp_path_factory) -> tuple:
    """Two consecutive small synthetic years run through every step, publication included:
    (settings, {year: accounting})."""
    from devtools.synth import synthesize
    from pipeline.config import Settings
    from pipeline.runner import run_year

    data_dir = tmp_path_factory.mktemp("two-years")
    settings = Settings(data_dir=data_dir, max_file_rows=SMALL_MAX_ROWS)
    for year in YEARS:
        synthesize(year, SMALL_ENTERPRISES, 5, data_dir, max_rows=SMALL_MAX_ROWS)
    return settings, {year: run_year(settings, year) for year in YEARS}
