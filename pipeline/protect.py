"""Disclosure control of a year (monitoring-tables.md §3): the step around the solver in
pipeline.disclosure. `protect_year` reads the statistical layer and writes the protected cells
and the audit's record; `audit_year` audits a year as it was published."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import polars as pl

from pipeline import tabulation
from pipeline.aggregate import (
    DISCLOSURE_RECORD,
    PROTECTED_CELLS,
    PROTECTED_FILES,
    connect,
    tabulate,
)
from pipeline.config import Settings
from pipeline.disclosure import DisclosureError, Knowledge, Relation, audit, protect, summary
from pipeline.sql import statement
from schemas.form import STANDARD_LEVELS, SurveyReturn
from schemas.tables import HIDDEN_BY, LEADING, MAGNITUDES

#: Where a failed audit leaves its findings for the office to look into (restricted layer).
FAILED_AUDIT = "audit_failed.parquet"
KEY = [d.column for d in tabulation.DIMENSIONS]


def knowledge() -> Knowledge:
    """What the form's public rules tell an intruder (monitoring-tables.md §3)."""
    fields = SurveyReturn.to_schema().columns
    return Knowledge(
        magnitudes=MAGNITUDES,
        counts=frozenset(m for m in MAGNITUDES if fields[m].metadata["kind"] == "count"),
        pairs=tuple((f"{level}_led", f"{level}_involved") for level in STANDARD_LEVELS),
        leading=LEADING,
    )


def protect_year(settings: Settings, year: int, workers: int | None = None) -> dict:
    """Protect the year's cells and audit them; write statistical/<year>/cells_protected.parquet
    (every cell with its true value, hidden_by and conf_status) and disclosure.json (per
    indicator: cells hidden by each rule, the audit's figures). Raises DisclosureError, and
    writes neither, when the audit finds a recoverable cell."""
    started = time.perf_counter()
    directory = settings.statistical_dir(year)
    for name in (*PROTECTED_FILES, FAILED_AUDIT):
        (directory / name).unlink(missing_ok=True)  # a failed year leaves nothing to publish
    cells = pl.read_parquet(directory / "cells.parquet", glob=False)
    members = _respondents(settings, directory / "enterprises.parquet",
                           directory / "cells.parquet")
    rules = knowledge()
    protection = protect(solver_cells(cells), _relations(cells), members, rules, workers)
    refuse_recoverable(protection.findings, directory, year)
    statuses = protection.statuses.with_columns(
        pl.col("cell").str.split("|").list.to_struct(fields=KEY)).unnest("cell")
    protected = cells.join(statuses, on=[*KEY, "indicator"], how="left").with_columns(
        conf_status=pl.when(pl.col("hidden_by").is_null()).then(pl.lit("F")).otherwise(
            pl.lit("C")))
    record = {
        "indicators": summary(protection.statuses, protection.findings, rules),
        "audit": protection.effort,
        "seconds": round(time.perf_counter() - started, 2),
    }
    record |= totals(record["indicators"])
    _write(protected, directory / PROTECTED_CELLS)
    (directory / DISCLOSURE_RECORD).write_text(json.dumps(record, ensure_ascii=False, indent=1),
                                               "utf-8")
    return {"path": str(directory / PROTECTED_CELLS), **{k: v for k, v in record.items()
                                                   if k != "indicators"}}


def totals(indicators: dict) -> dict:
    """Magnitude cells hidden by each rule, over every indicator, and the share hidden."""
    hidden = {rule: sum(i["hidden"][rule] for i in indicators.values()) for rule in HIDDEN_BY}
    cells = sum(i["cells"] for i in indicators.values())
    return {"magnitude_cells": cells, "hidden": hidden,
            "hidden_share": round(sum(hidden.values()) / max(cells, 1), 4),
            "recoverable": sum(i["audit"]["recoverable"] for i in indicators.values())}


def audit_year(settings: Settings, year: int, workers: int | None = None) -> dict:
    """The audit of a published year, from its published tables: what they show (public) and
    what they hide (restricted `cells` and `enterprises`). Returns the per-indicator summary,
    the recoverable cells with the intruder that recovers each, and any cell the tables show
    differently from one another or from the truth."""
    published = settings.published_dir
    truth = _read(published / "restricted" / "cells" / f"survey_year={year}" / "data.parquet")
    shown = published_cells(published, year)
    problems = _disagreements(shown, truth)
    hidden = shown.filter(pl.col("conf_status") == "C").select(*KEY, "indicator").unique()
    cells = truth.drop("hidden_by", "conf_status", strict=False)
    members = _respondents(
        settings, published / "restricted" / "enterprises" / f"survey_year={year}" / "data.parquet",
        published / "restricted" / "cells" / f"survey_year={year}" / "data.parquet")
    rules = knowledge()
    findings, effort = audit(solver_cells(cells), _relations(cells), members, rules,
                             _cell_ids(hidden), workers)
    # Why each cell the tables hide is hidden (restricted `cells` keeps it; a cell shown is
    # counted as shown, whatever that says).
    statuses = _cell_ids(truth.select(*KEY, "indicator", "hidden_by").join(
        hidden.with_columns(shown_hidden=pl.lit(True)), on=[*KEY, "indicator"], how="left")
    ).filter(pl.col("indicator").is_in(list(MAGNITUDES))).select(
        "cell", "indicator", pl.when(pl.col("shown_hidden")).then(
            pl.col("hidden_by").fill_null("secondary")).alias("hidden_by"))
    indicators = summary(statuses, findings, rules)
    return {"survey_year": year, "indicators": indicators, "audit": effort,
            **totals(indicators), "recoverable_cells": _recoverable(findings),
            "disagreements": problems}


def published_cells(published: Path, year: int) -> pl.DataFrame:
    """Every cell the year's public tables show, read back from them: cell key, indicator,
    value, contributors, enterprises, conf_status, and the table it came from."""
    frames = []
    for table in tabulation.CELL_TABLES:
        frame = _read(published / "public" / table.name / f"survey_year={year}"
                      / "data.parquet")
        columns = {cell: own for own, cell in tabulation.table_columns(table.name).items()}
        frames.append(frame.select(
            *(pl.col(columns[d.column]).alias(d.column) if d.column in columns
              else pl.lit(d.total).alias(d.column) for d in tabulation.DIMENSIONS),
            "indicator", "value", "contributors", "enterprises", "conf_status",
            pl.lit(table.name).alias("table_name")))
    return pl.concat(frames)


def _disagreements(shown: pl.DataFrame, truth: pl.DataFrame) -> list[str]:
    """Cells shown unlike the truth, or unlike themselves in another table (§2)."""
    joined = shown.join(truth, on=[*KEY, "indicator"], how="left", suffix="_true")
    problems = []
    missing = joined.filter(pl.col("value_true").is_null())
    if missing.height:
        problems.append(f"{missing.height} shown cells are not in restricted/cells")
    free = joined.filter(pl.col("conf_status") == "F")
    wrong = free.filter(((pl.col("value") - pl.col("value_true")).abs() > 1e-6)
                        | (pl.col("contributors") != pl.col("contributors_true")))
    if wrong.height:
        problems.append(f"{wrong.height} free cells differ from their true value")
    leaked = joined.filter((pl.col("conf_status") != "F")
                           & (pl.col("value").is_not_null() | pl.col("contributors").is_not_null()))
    if leaked.height:
        problems.append(f"{leaked.height} hidden cells carry a value")
    status = shown.group_by(*KEY, "indicator").agg(pl.col("conf_status").n_unique())
    if (status["conf_status"] > 1).any():
        problems.append("a cell has two statuses in two tables")
    return problems


def _recoverable(findings: pl.DataFrame) -> list[dict]:
    return [
        {**{k: row[k] for k in ("cell", "indicator", "rule", "recovered")},
         "intruder": "outsider" if row["intruder"] == "outsider" else "respondent",
         "truth": row["truth"], "lower": _finite(row["lower"]), "upper": _finite(row["upper"])}
        for row in findings.filter(pl.col("recovered").is_not_null()).iter_rows(named=True)
    ]


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def refuse_recoverable(findings: pl.DataFrame, directory: Path, year: int) -> None:
    """Raise DisclosureError naming recoverable cells; all findings stay in `directory` for the
    office to look into. The message names cells and intruders, not values: it goes to logs and
    alerts, which are not restricted."""
    recoverable = findings.filter(pl.col("recovered").is_not_null())
    if recoverable.is_empty():
        return
    _write(findings, directory / FAILED_AUDIT)
    details = "; ".join(
        f"{r['indicator']} of cell {r['cell']} (its {r['recovered']} bound) by "
        + ("the outsider" if r["intruder"] == "outsider" else "a respondent")
        for r in recoverable.head(10).iter_rows(named=True))
    raise DisclosureError(
        f"{year}: {recoverable.height} primary cell(s) can be narrowed to within ±15%, so the "
        f"year is not published: {details} (bounds and values in {directory / FAILED_AUDIT})")


def _respondents(settings: Settings, enterprises: Path, cells: Path) -> pl.DataFrame:
    """Every respondent's value in each cell it counts in (sql/respondents.sql)."""
    con = connect(settings)
    try:
        tabulate(con, enterprises)
        con.read_parquet(str(cells)).create_view("cells")
        return _cell_ids(con.sql(statement("respondents")).pl())
    finally:
        con.close()


def solver_cells(cells: pl.DataFrame) -> pl.DataFrame:
    """Cells as the solver takes them. Its `enterprises` bounds a cell's contributors: here the
    population's, imputed enterprises included (§3: contributors ≤ enterprises + imputed)."""
    return _cell_ids(cells.with_columns(
        enterprises=pl.col("enterprises") + pl.col("imputed").fill_null(0)))


def _cell_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """The cell key as one id column, `cell`, as the solver takes it."""
    return frame.with_columns(cell=pl.concat_str(KEY, separator="|")).drop(KEY)


def _relations(cells: pl.DataFrame) -> list[Relation]:
    keys = cells.select(KEY).unique().rows()
    return [Relation(parent, children) for parent, children in tabulation.relations(keys)]


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: is the year published?")
    return pl.read_parquet(path, glob=False)


def _write(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp, compression="zstd")
    tmp.replace(path)
