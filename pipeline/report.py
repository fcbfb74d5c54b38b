"""The follow-up list and the accounting of a year: every row and file accounted for."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import Settings, closed_dir
from pipeline.population import read_frame
from pipeline.spreadsheet import write_parquet_as_csv_for_excel
from pipeline.sql import connect, statement
from pipeline.valid import valid_returns
from schemas.rules import RULES_PATH

OUTCOMES = ("accepted", "rejected", "superseded", "duplicate")


class AccountingError(RuntimeError):
    """Rows were lost or double-counted between layers: the run must not go on."""


def report(settings: Settings, year: int, ingested: list[dict]) -> dict:
    """Write output/<year>/follow_up.{parquet,csv} and accounting.json; return the accounting.
    (The workbooks step then writes one workbook per county office from the follow-up list.)"""
    out_dir = settings.output_dir(year)
    closed_dir(out_dir)
    con = connect(settings)
    try:
        valid_returns(settings, year, con)
        con.read_csv(str(RULES_PATH), all_varchar=True).create_view("rules")
        quarantined = [r for r in ingested if r["status"] == "quarantined"]
        con.from_arrow(pa.table({
            "source_file": pa.array([r["source_file"] for r in quarantined], pa.string()),
            "rule": pa.array([r["rule"] for r in quarantined], pa.string()),
            "reason": pa.array([r["reason"] for r in quarantined], pa.string()),
        })).create_view("quarantined")
        con.sql(statement("follow_up")).create_view("follow_up")
        frame = read_frame(settings, year)
        if frame is not None:
            con.register("frame", frame.enterprises.to_arrow())
            con.register("frame_rejected", frame.rejected.with_columns(
                source_file=pl.lit(frame.source_file)).to_arrow())
            con.sql(statement("no_return")).create_view("no_return")
            con.sql(statement("frame_rejected")).create_view("frame_findings")
        else:  # without a frame there is no N401 or N402 (survey-form §6)
            con.sql("from follow_up limit 0").create_view("no_return")
            con.sql("from follow_up limit 0").create_view("frame_findings")
        follow_up_path = out_dir / "follow_up.parquet"
        con.sql("from follow_up union all by name from no_return "
                "union all by name from frame_findings").write_parquet(
            str(follow_up_path), compression="zstd")
        # Streamed, and counted from the footer: millions of rows in a large year.
        write_parquet_as_csv_for_excel(follow_up_path, out_dir / "follow_up.csv")
        follow_up_rows = pq.read_metadata(follow_up_path).num_rows
        per_file = {row[0]: row for row in con.sql(statement("accounting")).fetchall()}
    finally:
        con.close()
    accounting = build_accounting(year, ingested, per_file, frame is not None)
    if frame is not None:
        accounting["frame"] = {"enterprises": frame.enterprises.height,
                               "rows_rejected": frame.rejected["source_row"].n_unique()}
    accounting["follow_up"] = {"rows": follow_up_rows,
                               "parquet": str(out_dir / "follow_up.parquet"),
                               "csv": str(out_dir / "follow_up.csv")}
    (out_dir / "accounting.json").write_text(
        json.dumps(accounting, ensure_ascii=False, indent=1), encoding="utf-8")
    accounting["path"] = str(out_dir / "accounting.json")
    return accounting


def build_accounting(year: int, ingested: list[dict], per_file: dict[str, tuple],
                     has_frame: bool) -> dict:
    """Per file and total: rows_read = accepted + rejected + superseded + duplicate."""
    files, total = [], dict.fromkeys(("rows_read", *OUTCOMES, "accepted_with_warnings"), 0)
    for report in sorted(ingested, key=lambda r: r["source_file"]):
        entry = {k: report.get(k) for k in ("source_file", "sha256", "format", "encoding",
                                            "status", "rule", "reason", "unknown_columns")}
        if report["status"] == "read":
            _, rows_read, *outcomes, warned = per_file.get(report["source_file"],
                                                            (None, 0, 0, 0, 0, 0, 0))
            counts = dict(zip(OUTCOMES, outcomes, strict=True))
            if rows_read != report["rows"] or rows_read != sum(counts.values()):
                raise AccountingError(
                    f"{report['source_file']}: ingest read {report['rows']} rows, the valid layer "
                    f"holds {rows_read}, outcomes add up to {sum(counts.values())}")
            entry.update(rows_read=rows_read, **counts, accepted_with_warnings=warned)
            for key in total:
                total[key] += entry[key]
        files.append(entry)
    unaccounted = set(per_file) - {r["source_file"] for r in ingested if r["status"] == "read"}
    if unaccounted:
        raise AccountingError(f"rows from files that were not ingested: {sorted(unaccounted)}")
    return {
        "survey_year": year,
        "files_received": len(ingested),
        "files_read": sum(r["status"] == "read" for r in ingested),
        "files_quarantined": sum(r["status"] == "quarantined" for r in ingested),
        "has_frame": has_frame,
        "total": total,
        "files": files,
    }
