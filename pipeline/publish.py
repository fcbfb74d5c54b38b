"""Publish a year: build every table, check it against its contract, and swap it in atomically
(monitoring-tables.md §5)."""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import tabulation
from pipeline.aggregate import DISCLOSURE_RECORD, PROTECTED_CELLS, connect
from pipeline.config import Settings
from pipeline.sql import statement
from schemas.tables import (
    CONTRACT_VERSION,
    FORM_VERSION,
    descriptions,
    published_tables,
    table_schema,
)

#: Tables built straight from SQL over the protected cells (pipeline/tabulation.py); by_region
#: (which also reads last year's) comes first, as headline is read from its rows.
CELL_TABLES = sorted((t.name for t in tabulation.CELL_TABLES), key=lambda n: n != "by_region")
FOLLOW_UP_COLUMNS = list(table_schema("restricted", "follow_up").columns)
#: A snapshot folder is named by a sequence number; one being built has this prefix.
_BUILDING = ".building-"
_SNAPSHOT = re.compile(r"^\d{6}$")


def build_tables(settings: Settings, year: int,
                 accounting: dict) -> dict[tuple[str, str], pl.DataFrame]:
    """Every table of the year as published, each checked against its pandera model."""
    protected = pl.read_parquet(protected_cells_path(settings, year))
    con = connect()
    try:
        con.register("protected", protected.to_arrow())
        keys = protected.select(*(d.column for d in tabulation.DIMENSIONS)).unique().rows()
        con.register("table_cells", tabulation.table_cells(keys))
        con.sql(statement("shown")).create_view("shown")
        con.read_parquet(str(settings.valid_path(year))).create_view("returns")
        _previous(settings, year, con)
        tables = {}
        for name in CELL_TABLES:
            tables[("public", name)] = con.sql(statement(name), params={"table_name": name}).pl()
            con.register(name, tables[("public", name)].to_arrow())
        _files(accounting, con)
        has_frame = _frame(settings, year, con)
        tables[("public", "data_quality")] = con.sql(
            statement("data_quality"), params={"has_frame": has_frame}).pl()
        tables[("public", "data_quality_rules")] = con.sql(statement("data_quality_rules")).pl()
    finally:
        con.close()
    follow_up = pl.read_parquet(settings.output_dir(year) / "follow_up.parquet")
    tables[("restricted", "follow_up")] = follow_up.select(FOLLOW_UP_COLUMNS)
    tables[("restricted", "enterprises")] = pl.read_parquet(
        settings.statistical_dir(year) / "enterprises.parquet")
    tables[("restricted", "cells")] = protected
    return {key: _checked(key, frame) for key, frame in tables.items()}


def protected_cells_path(settings: Settings, year: int) -> Path:
    return settings.statistical_dir(year) / PROTECTED_CELLS


def disclosure_record(settings: Settings, year: int) -> dict:
    """What protect recorded: per indicator, cells hidden by each rule and the audit's figures."""
    path = settings.statistical_dir(year) / DISCLOSURE_RECORD
    record = json.loads(path.read_text("utf-8"))
    record.pop("seconds", None)  # a timing, not a fact about the data
    return record


def _checked(key: tuple[str, str], frame: pl.DataFrame) -> pl.DataFrame:
    schema = table_schema(*key)
    frame = frame.select(list(schema.columns)).cast(
        {c: col.dtype.type for c, col in schema.columns.items() if col.dtype is not None},
        strict=True)
    return schema.validate(frame, lazy=True)


def _previous(settings: Settings, year: int, con: duckdb.DuckDBPyConnection) -> None:
    """Last year's published by_region as the view `previous` (empty before the first year)."""
    path = settings.published_dir / "public" / "by_region" / f"survey_year={year - 1}" / (
        "data.parquet")
    if path.exists():
        con.read_parquet(str(path)).create_view("previous")
        return
    con.execute("create temp table previous "
                "(region_code varchar, indicator varchar, value double, conf_status varchar)")


def _files(accounting: dict, con: duckdb.DuckDBPyConnection) -> None:
    con.from_arrow(pa.table({
        "source_file": pa.array([f["source_file"] for f in accounting["files"]], pa.string()),
        "status": pa.array([f["status"] for f in accounting["files"]], pa.string()),
    })).create_view("files")


def _frame(settings: Settings, year: int, con: duckdb.DuckDBPyConnection) -> bool:
    path = settings.frame_path(year)
    if path.exists():
        con.read_csv(str(path), all_varchar=True).select(
            "region_code", "credit_code").create_view("frame")
        return True
    con.execute("create temp table frame (region_code varchar, credit_code varchar)")
    return False


# Writing a snapshot ---------------------------------------------------------------------------


def publish_year(settings: Settings, year: int, *, run_id: str, started_at: str) -> dict:
    """Build, check and publish the year's tables; returns the manifest."""
    accounting = json.loads((settings.output_dir(year) / "accounting.json").read_text("utf-8"))
    tables = build_tables(settings, year, accounting)
    snapshots = settings.snapshots_dir
    snapshots.mkdir(parents=True, exist_ok=True)
    # One publisher at a time, whatever started it (the DAG's pool does not cover `survey run`):
    # two would number their snapshots alike and the later swap would drop the other's year.
    with open(snapshots / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _publish_locked(settings, year, tables, accounting, run_id, started_at)


def _publish_locked(settings: Settings, year: int, tables: dict, accounting: dict,
                    run_id: str, started_at: str) -> dict:
    snapshots = settings.snapshots_dir
    for leftover in snapshots.glob(f"{_BUILDING}*"):  # from a run that was killed
        shutil.rmtree(leftover)
    current = _current_snapshot(settings)
    number = max((int(p.name) for p in snapshots.iterdir() if _SNAPSHOT.match(p.name)),
                 default=0) + 1
    building = snapshots / f"{_BUILDING}{number:06d}"
    building.mkdir()
    # Restricted tables hold identities and contacts: their folder is closed before any is written.
    (building / "restricted").mkdir(mode=0o700)
    if current is not None:
        _link_other_years(current, building, year)
    entries = {}
    for (scope, name), frame in tables.items():
        relative = Path(scope) / name / f"survey_year={year}" / "data.parquet"
        entries[f"{scope}/{name}"] = _write_table(frame, building / relative, scope, name)
        entries[f"{scope}/{name}"]["path"] = str(relative)
    manifest = {
        "survey_year": year,
        "form_version": FORM_VERSION,
        "contract_version": CONTRACT_VERSION,
        "pipeline_version": version("zj-std-survey"),
        "run_id": run_id,
        "started_at": started_at,
        # Metadata only, left out of every checksum: the one place the clock is read.
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": [
            {k: f.get(k) for k in ("sha256", "format", "encoding", "status", "rule", "reason")}
            | {"name": f["source_file"], "rows": f.get("rows_read", 0)}
            for f in accounting["files"]
        ],
        "accounting": {k: accounting["total"][k] for k in
                       ("rows_read", "accepted", "rejected", "superseded", "duplicate")},
        "disclosure": disclosure_record(settings, year),
        "tables": entries,
    }
    (building / "manifest").mkdir(exist_ok=True)
    (building / "manifest" / f"{year}.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    _write_dictionary(building / "dictionary.csv")
    _write_views(building / "monitoring.duckdb", building)
    final = snapshots / f"{number:06d}"
    building.rename(final)
    _swap_link(settings.published_dir, final)
    _prune(snapshots, keep={final.name, current.name if current else ""})
    return manifest


def _current_snapshot(settings: Settings) -> Path | None:
    link = settings.published_dir
    if link.is_symlink():
        return link.resolve()
    if link.exists():
        raise RuntimeError(f"{link} is a folder, not a link to a snapshot: move it aside first")
    return None


def _link_other_years(current: Path, building: Path, year: int) -> None:
    """Hard-link every file of the current snapshot except this year's and the shared files,
    which are rebuilt: untouched years cost no copy and stay byte for byte the same."""
    for path in current.rglob("*"):
        relative = path.relative_to(current)
        if path.is_dir() or f"survey_year={year}" in relative.parts:
            continue
        if relative in (Path("manifest") / f"{year}.json", Path("dictionary.csv"),
                        Path("monitoring.duckdb")):
            continue
        target = building / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)


def _write_table(frame: pl.DataFrame, path: Path, scope: str, name: str) -> dict:
    """Parquet (zstd) with each column's English and Chinese description in its field metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = frame.to_arrow()
    described = descriptions(scope, name)
    fields = [
        field.with_metadata({"description_en": described[field.name]["en"],
                             "description_zh": described[field.name]["zh"]})
        for field in table.schema
    ]
    table = table.cast(pa.schema(fields, metadata={"table": f"{scope}/{name}",
                                                   "contract_version": CONTRACT_VERSION}))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    data = buffer.getvalue()
    path.write_bytes(data)
    return {"rows": frame.height, "sha256": hashlib.sha256(data).hexdigest()}


def _write_dictionary(path: Path) -> None:
    """The data dictionary: every column of every published table, in English and Chinese."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["scope", "table", "column", "type", "description_en", "description_zh"])
        for scope, name in published_tables():
            for column, spec in table_schema(scope, name).columns.items():
                text = descriptions(scope, name)[column]
                writer.writerow([scope, name, column, str(spec.dtype or ""), text["en"],
                                 text["zh"]])


def _write_views(path: Path, snapshot: Path) -> None:
    """monitoring.duckdb: one view per table across all years, over paths relative to the
    published folder, so the views read whichever snapshot `published` points at (open it with
    `file_search_path` set to the published folder, as `survey query` does, or from inside it)."""
    con = duckdb.connect(str(path))
    try:
        search_path(con, snapshot)
        for scope, name in published_tables():
            # DDL takes no parameters; the pattern is built from fixed table names only.
            con.execute(f"create view {name} as select * from read_parquet("
                        f"'{scope}/{name}/*/*.parquet', hive_partitioning = true)")
    finally:
        con.close()


def search_path(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Resolve the views' relative paths against this folder."""
    con.execute("set file_search_path = " + "'" + str(folder).replace("'", "''") + "'")


def _swap_link(link: Path, snapshot: Path) -> None:
    """Point `published` at the new snapshot with one rename: readers see the old or the new."""
    staged = link.with_name(f".{link.name}.{snapshot.name}")
    staged.unlink(missing_ok=True)
    staged.symlink_to(os.path.relpath(snapshot, link.parent))
    os.replace(staged, link)


def _prune(snapshots: Path, keep: set[str]) -> None:
    """Drop older snapshots; the one just replaced stays for readers still in it."""
    for path in snapshots.iterdir():
        if _SNAPSHOT.match(path.name) and path.name not in keep:
            shutil.rmtree(path)
