"""The population of a year (monitoring-tables.md §6): the survey frame, normalised as returns
are and checked (N402), and the frame enterprises without an accepted return, imputed
(pipeline/imputation.py) into rows of the statistical layer."""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandera.polars as pa
import polars as pl

from pipeline.config import Settings
from pipeline.errors import SurveyError
from pipeline.imputation import IMPUTED_COLUMNS, RETURN_COLUMNS, impute
from pipeline.valid import has_valid_returns, scan_valid_returns
from schemas import reference, types
from schemas.form import FORM_COLUMNS, FRAME_COLUMNS, SIZE_LABELS, SurveyFrame

#: What the follow-up list names as the source of a frame row.
FRAME_SOURCE = "frame/{year}.csv"
#: survey-form §5: the status of an imputed cell.
IMPUTED = "I"
_REJECTED_SCHEMA = {"source_row": pl.Int64, "credit_code": pl.Utf8, "enterprise_name": pl.Utf8,
                    "region_code": pl.Utf8, "column_name": pl.Utf8, "value_received": pl.Utf8}


@dataclass(frozen=True)
class Frame:
    """A year's survey frame as the population uses it."""

    source_file: str
    #: One row per enterprise (a code listed twice counts once, its first row): FRAME_COLUMNS
    #: normalised, city_code, section_code and source_row (the header is row 1).
    enterprises: pl.DataFrame
    #: N402: one row per failing cell of a row left out, with the text as received.
    rejected: pl.DataFrame


def read_frame(settings: Settings, year: int) -> Frame | None:
    """frame/<year>.csv checked and normalised, or None when the year has no frame."""
    path = settings.frame_path(year)
    if not path.exists():
        return None
    source = FRAME_SOURCE.format(year=year)
    enterprises, rejected = check_frame(_read_csv(path, source))
    return Frame(source, enterprises, rejected)


def _read_csv(path: Path, source: str) -> pl.DataFrame:
    """The frame's cells as text, headers matched as a return's are (English or Chinese)."""
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SurveyError(f"{source} is neither UTF-8 nor GB18030 text")
    try:
        received = pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False)
    except pl.exceptions.PolarsError as e:
        raise SurveyError(f"{source} cannot be read as CSV: {str(e).splitlines()[0]}") from e
    labels = {FORM_COLUMNS[c].label_zh: c for c in FRAME_COLUMNS} | {c: c for c in FRAME_COLUMNS}
    names = {name: labels.get(unicodedata.normalize("NFKC", name).strip().lower(),
                              labels.get(unicodedata.normalize("NFKC", name).strip()))
             for name in received.columns}
    missing = [c for c in FRAME_COLUMNS if c not in names.values()]
    if missing:
        raise SurveyError(f"{source} lacks the column(s) {', '.join(missing)} (survey-form §6: "
                          f"{', '.join(FRAME_COLUMNS)})")
    return received.select(pl.col(name).alias(column) for name, column in names.items()
                           if column is not None)


def check_frame(received: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Frame rows as text → (enterprises, N402 rejections); see Frame."""
    received = received.select(pl.col(c).cast(pl.Utf8) for c in FRAME_COLUMNS)
    normalised = types.cleaned(received).with_columns(
        types.as_credit_code(pl.col("credit_code")),
        types.as_enum(pl.col("size_class"), SIZE_LABELS))
    try:
        SurveyFrame.validate(normalised, lazy=True)
        failures = pl.DataFrame(schema={"index": pl.Int64, "column": pl.Utf8})
    except pa.errors.SchemaErrors as errors:
        failures = errors.failure_cases.select(pl.col("index").cast(pl.Int64), "column")
    rows = normalised.with_row_index("index").with_columns(
        pl.col("index").cast(pl.Int64), source_row=pl.col("index").cast(pl.Int64) + 2)
    rejected = (
        failures.join(rows, on="index")
        .join(received.with_row_index("index").with_columns(pl.col("index").cast(pl.Int64)),
              on="index", suffix="_received")
        .select("source_row", "credit_code", "enterprise_name",
                pl.col("region_code_received").alias("region_code"),
                pl.col("column").alias("column_name"),
                pl.coalesce(
                    pl.when(pl.col("column") == c).then(pl.col(f"{c}_received"))
                    for c in FRAME_COLUMNS).alias("value_received"))
        .sort("source_row", "column_name")
    )
    sections = reference.class_sections()
    enterprises = (
        rows.join(failures, on="index", how="anti")
        .unique("credit_code", keep="first", maintain_order=True)
        .select(*FRAME_COLUMNS,
                city_code=pl.col("region_code").str.slice(0, 4) + "00",
                section_code=pl.col("industry_code").replace_strict(sections,
                                                                    return_dtype=pl.Utf8),
                source_row="source_row")
    )
    return enterprises, rejected.cast(_REJECTED_SCHEMA)


def no_frame() -> Frame:
    """A year without a frame: nothing is imputed (survey-form §6)."""
    enterprises, rejected = check_frame(pl.DataFrame(schema=dict.fromkeys(FRAME_COLUMNS,
                                                                           pl.Utf8)))
    return Frame("", enterprises, rejected)


def previous_returns(settings: Settings, year: int) -> pl.DataFrame | None:
    """Last year's accepted returns (credit_code and what imputation takes), or None."""
    if not has_valid_returns(settings, year - 1):
        return None
    return (scan_valid_returns(settings, year - 1)
            .filter(pl.col("outcome") == "accepted")
            .select("credit_code", *IMPUTED_COLUMNS)
            .unique("credit_code", keep="first")
            .collect())


def imputed_enterprises(settings: Settings, year: int, frame: Frame,
                        returns: pl.DataFrame) -> pl.DataFrame:
    """Rows of the statistical layer for the frame enterprises with no accepted return this year
    (returns: RETURN_COLUMNS of the accepted ones), imputed, every imputed cell with status I."""
    recipients = frame.enterprises.join(returns.select("credit_code"), on="credit_code",
                                        how="anti")
    solved = impute(recipients, returns.select(RETURN_COLUMNS), previous_returns(settings, year))
    status = pl.struct(
        (pl.lit(IMPUTED) if c in IMPUTED_COLUMNS else pl.lit(None, pl.Utf8)).alias(c)
        for c in FORM_COLUMNS)
    return (
        frame.enterprises.join(solved, on="credit_code")
        .select(
            pl.lit(year, pl.Int64).alias("survey_year"), *FRAME_COLUMNS, *IMPUTED_COLUMNS,
            "city_code", "section_code",
            pl.col("industry_code").str.slice(0, 2).alias("division_code"),
            pl.lit([], pl.List(pl.Utf8)).alias("warnings"),
            status.alias("cell_status"), "imputation", "donor_credit_code")
        .sort("credit_code")
    )
