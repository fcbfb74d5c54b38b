"""Publish a year: build every table, check it against its contract, and swap it in atomically
(monitoring-tables.md §5)."""

from __future__ import annotations

import copy
import csv
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import duckdb
import pandera.polars as pandera
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import tabulation
from pipeline.aggregate import DISCLOSURE_RECORD, PROTECTED_CELLS, connect
from pipeline.config import CLOSED_DIR, CLOSED_FILE, OPEN_DIR, OPEN_FILE, Settings
from pipeline.errors import PublicationRefused, SurveyError
from pipeline.population import no_frame, read_frame
from pipeline.sql import statement
from pipeline.valid import valid_returns
from schemas.tables import (
    CONTRACT_VERSION,
    FORM_VERSION,
    UNPARTITIONED,
    descriptions,
    indicators,
    published_tables,
    table_schema,
)

#: Tables built straight from SQL over the protected cells (pipeline/tabulation.py); by_region
#: (which also reads last year's) comes first, as headline is read from its rows.
CELL_TABLES = sorted((t.name for t in tabulation.CELL_TABLES), key=lambda n: n != "by_region")
#: The restricted tables with a row or more per return (Sliced) are read, checked and written this
#: many rows at a time: publishing holds a slice of them, never the year (issue 12: memory flat
#: from 1M to 5M returns).
SLICE_ROWS = 250_000
#: A snapshot folder is named by a sequence number; one being built has this prefix.
_BUILDING = ".building-"
_SNAPSHOT = re.compile(r"^\d{6}$")


def build_tables(settings: Settings, year: int,
                 accounting: dict) -> dict[tuple[str, str], pl.DataFrame]:
    """Every table of the year as published, each checked against its pandera model, whole."""
    return {key: pl.concat(table.checked()) if isinstance(table, Sliced) else table
            for key, table in _build_tables(settings, year, accounting).items()}


@dataclass(frozen=True)
class Sliced:
    """A large table: its Parquet file, cast and checked SLICE_ROWS rows at a time as it is read.
    Its model's checks must be row by row, but for the model's `unique`, checked across slices."""

    key: tuple[str, str]
    path: Path

    def checked(self) -> Iterator[pl.DataFrame]:
        """The table's slices, cast and checked; the failures of every slice are raised together
        (one SchemaErrors, rows numbered across the table) after the last slice."""
        schema = table_schema(*self.key)
        # A column's own `unique` would be judged a slice at a time: only the table's is carried.
        if any(column.unique for column in schema.columns.values()):
            raise TypeError(f"{self.key}: a column-level unique cannot be checked in slices")
        per_slice = copy.deepcopy(schema)
        per_slice.unique = None
        scan = pl.scan_parquet(self.path, glob=False)
        failed = []  # (SchemaErrors, the table's row number of each row of the frame checked)
        hashes = []  # of each row's unique columns: 8 bytes a row, not the columns themselves
        height = scan.select(pl.len()).collect().item()
        for offset in range(0, max(height, 1), SLICE_ROWS):  # an empty table is one empty slice
            frame = _cast(schema, scan.slice(offset, SLICE_ROWS)).collect()
            try:
                frame = per_slice.validate(frame, lazy=True)
            except pandera.errors.SchemaErrors as errors:
                failed.append((errors, pl.int_range(offset, offset + frame.height, eager=True)))
            if schema.unique:
                hashes.append(frame.select(pl.struct(schema.unique).hash()).to_series())
            yield frame
        shared = pl.concat(hashes).is_duplicated().arg_true() if hashes else []
        if len(shared):
            # Rows sharing a hash: the duplicates, and (about never) a collision. pandera judges
            # them alone, whole, as it would have in the whole table.
            suspects = _cast(schema, scan.with_row_index("row").filter(
                pl.col("row").is_in(shared.implode()))).collect(engine="streaming")
            try:
                pandera.DataFrameSchema(unique=schema.unique, name=schema.name,
                                        report_duplicates=schema.report_duplicates,
                                        ).validate(suspects, lazy=True)
            except pandera.errors.SchemaErrors as errors:
                failed.insert(0, (errors, shared))  # where pandera puts it
        if failed:
            raised = pandera.errors.SchemaErrors(
                schema, [e for errors, _ in failed for e in errors.schema_errors],
                pl.DataFrame())  # the table is never whole
            raised.failure_cases = pl.concat(errors.failure_cases.with_columns(
                pl.lit(rows).gather(pl.col("index")).cast(pl.Int32).alias("index"))
                for errors, rows in failed)
            raise raised


def _read_ahead(slices: Iterator[pl.DataFrame]) -> Iterator[pa.Table]:
    """The slices as Arrow, each read, checked and converted on a thread while the one before is
    written: pyarrow writes on one core, and one after the other the population of 5M returns
    took 11.2 s to publish, against 8.1 s side by side."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as reader:
        def following() -> pa.Table | None:
            frame = next(slices, None)
            return None if frame is None else frame.to_arrow()

        upcoming = reader.submit(following)
        while (table := upcoming.result()) is not None:
            upcoming = reader.submit(following)
            yield table


def _build_tables(settings: Settings, year: int,
                  accounting: dict) -> dict[tuple[str, str], pl.DataFrame | Sliced]:
    """Every table of the year as published: checked, or Sliced to be checked as written."""
    # Paths are data: polars would read `[`, `*` or `?` in the data root as a pattern.
    protected = pl.read_parquet(protected_cells_path(settings, year), glob=False)
    con = connect(settings)
    try:
        con.register("protected", protected.to_arrow())
        keys = protected.select(*(d.column for d in tabulation.DIMENSIONS)).unique().rows()
        con.register("table_cells", tabulation.table_cells(keys))
        con.sql(statement("shown")).create_view("shown")
        valid_returns(settings, year, con)
        _previous(settings, year, con)
        tables = {}
        for name in CELL_TABLES:
            tables[("public", name)] = con.sql(statement(name), params={"table_name": name}).pl()
            con.register(name, tables[("public", name)].to_arrow())
        _files(accounting, con)
        has_frame = _frame(settings, year, con)
        con.read_parquet(str(settings.statistical_dir(year) / "enterprises.parquet")
                         ).create_view("population")
        tables[("public", "data_quality")] = con.sql(
            statement("data_quality"), params={"has_frame": has_frame}).pl()
        tables[("public", "data_quality_rules")] = con.sql(statement("data_quality_rules")).pl()
    finally:
        con.close()
    tables[("restricted", "follow_up")] = Sliced(
        ("restricted", "follow_up"), settings.output_dir(year) / "follow_up.parquet")
    tables[("restricted", "enterprises")] = Sliced(
        ("restricted", "enterprises"), settings.statistical_dir(year) / "enterprises.parquet")
    tables[("restricted", "cells")] = protected
    tables[("public", "indicators")] = indicators()
    return {key: table if isinstance(table, Sliced) else _checked(key, table)
            for key, table in tables.items()}


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
    return schema.validate(_cast(schema, frame), lazy=True)


def _cast(schema: pandera.DataFrameSchema, frame: pl.DataFrame | pl.LazyFrame):
    """The schema's columns, in its order, cast to its types."""
    return frame.select(list(schema.columns)).cast(
        {c: col.dtype.type for c, col in schema.columns.items() if col.dtype is not None},
        strict=True)


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
    """The frame's enterprises (`frame`) and its rows left out (`frame_rejected`), normalised
    as the population takes them; empty, and False, without a frame."""
    frame = read_frame(settings, year)
    found = frame or no_frame()
    con.register("frame", found.enterprises.select("region_code", "credit_code").to_arrow())
    con.register("frame_rejected", found.rejected.unique("source_row").select(
        "region_code").to_arrow())
    return frame is not None


# Writing a snapshot ---------------------------------------------------------------------------


def publish_year(settings: Settings, year: int, *, run_id: str, started_at: str,
                 allow_shrink: bool = False) -> dict:
    """Build, check and publish the year's tables; returns the manifest."""
    accounting = json.loads((settings.output_dir(year) / "accounting.json").read_text("utf-8"))
    refuse_to_shrink(settings, accounting, allow_shrink)
    tables = _build_tables(settings, year, accounting)
    snapshots = settings.snapshots_dir
    snapshots.mkdir(parents=True, exist_ok=True)
    # One publisher at a time, whatever started it (the DAG's pool does not cover `survey run`):
    # two would number their snapshots alike and the later swap would drop the other's year.
    with open(snapshots / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Again under the lock: another run may have published the year meanwhile.
        refuse_to_shrink(settings, accounting, allow_shrink)
        return _publish_locked(settings, year, tables, accounting, run_id, started_at)


def refuse_to_shrink(settings: Settings, accounting: dict, allow_shrink: bool) -> None:
    """Raise PublicationRefused for a year with no readable row, or (unless allow_shrink) with
    fewer than half the accepted returns of the published version it would replace: an empty or
    half-copied landing folder must not overwrite good figures."""
    year, total = accounting["survey_year"], accounting["total"]
    found = (f"{accounting['files_received']} file(s) landed, "
             f"{accounting['files_quarantined']} quarantined, {total['rows_read']:,} row(s) read")
    if total["rows_read"] == 0:
        raise PublicationRefused(
            f"{year} is not published: no readable row ({found}); the published {year}, if "
            "any, stays as it is")
    published = published_manifest(settings, year)
    if allow_shrink or published is None:
        return
    before = published["accounting"]["accepted"]
    if total["accepted"] * 2 < before:
        raise PublicationRefused(
            f"{year} is not published: {total['accepted']:,} accepted return(s), under half of "
            f"the {before:,} in the published version (run {published['run_id']}); {found}. "
            "If the drop is real, run again with --allow-shrink (DAG param allow_shrink)")


def published_manifest(settings: Settings, year: int) -> dict | None:
    """The manifest of the year as published now, or None."""
    path = settings.published_dir / "manifest" / f"{year}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text("utf-8"))


def _publish_locked(settings: Settings, year: int, tables: dict, accounting: dict,
                    run_id: str, started_at: str) -> dict:
    current, building = _building(settings)
    if current is not None:
        _link_other_years(current, building, year)
    entries = {}
    try:
        for (scope, name), table in tables.items():
            relative = table_path(scope, name, year)
            slices = (_read_ahead(table.checked()) if isinstance(table, Sliced)
                      else [table.to_arrow()])
            entries[f"{scope}/{name}"] = _write_table(slices, building / relative, scope, name)
            entries[f"{scope}/{name}"]["path"] = str(relative)
    except BaseException:
        # A Sliced table fails its checks once written: its rows must not wait for the next run.
        shutil.rmtree(building, ignore_errors=True)  # never in place of the error itself
        raise
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
        "population": _population(tables[("public", "data_quality")]),
        "tables": entries,
    }
    (building / "manifest").mkdir(exist_ok=True)
    (building / "manifest" / f"{year}.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    _write_dictionary(building / "dictionary.csv")
    _write_views(building / "monitoring.duckdb", building)
    _swap_in(settings, current, building)
    return manifest


def add_report(settings: Settings, year: int, files: dict[str, bytes]) -> Path:
    """Swap in the current snapshot plus the year's report (`report/<year>/<name>` for each
    file), with the one rename a publication makes; returns the new snapshot."""
    settings.snapshots_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.snapshots_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if published_manifest(settings, year) is None:
            raise SurveyError(f"{year} is not published: publish it before its report")
        current, building = _building(settings)
        folder = Path("report") / str(year)
        _link_snapshot(current, building, lambda relative: relative.is_relative_to(folder))
        (building / folder).mkdir(parents=True)
        for name, data in files.items():
            (building / folder / name).write_bytes(data)
        return _swap_in(settings, current, building)


def _building(settings: Settings) -> tuple[Path | None, Path]:
    """The current snapshot, and the folder of the next one, begun (restricted/ closed)."""
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
    return current, building


def _swap_in(settings: Settings, current: Path | None, building: Path) -> Path:
    """Open and close the tiers, name the snapshot, point `published` at it, prune."""
    _set_tiers(building, settings)
    final = building.with_name(building.name.removeprefix(_BUILDING))
    building.rename(final)
    _swap_link(settings.published_dir, final)
    _prune(settings.snapshots_dir, keep={final.name, current.name if current else ""})
    return final


#: The province's coverage figures of data_quality, recorded in the manifest (§6).
POPULATION_FIGURES = ("frame_enterprises", "frame_responded", "response_rate", "imputed_ratio",
                      "imputed_donor", "frame_rejected_codes")


def _population(data_quality: pl.DataFrame) -> dict:
    province = data_quality.filter(pl.col("region_code") == tabulation.REGION.total)
    return province.select(POPULATION_FIGURES).row(0, named=True)


def _set_tiers(snapshot: Path, settings: Settings) -> None:
    """Open the snapshot's public part (tables, manifests, dictionary, views) to every user of
    the machine, and close `restricted/` to the owner, whatever the umask. The data root and
    `snapshots/` get only the right to pass through (not to list), to reach them."""
    for path in (snapshot, *snapshot.rglob("*")):
        closed = path.relative_to(snapshot).parts[:1] == ("restricted",)
        if path.is_dir():
            path.chmod(CLOSED_DIR if closed else OPEN_DIR)
        else:
            path.chmod(CLOSED_FILE if closed else OPEN_FILE)
    for folder in (settings.data_dir, settings.snapshots_dir):
        info = folder.stat()
        # Only our own: an office's data root (say, a volume owned by root) is its to set.
        if info.st_uid == os.geteuid() and info.st_mode & 0o011 != 0o011:
            folder.chmod(stat.S_IMODE(info.st_mode) | 0o011)


def _current_snapshot(settings: Settings) -> Path | None:
    link = settings.published_dir
    if link.is_symlink():
        return link.resolve()
    if link.exists():
        raise RuntimeError(f"{link} is a folder, not a link to a snapshot: move it aside first")
    return None


def _link_other_years(current: Path, building: Path, year: int) -> None:
    """Hard-link every file of the current snapshot except this year's, its report (built from
    the tables it replaces) and the shared files, which are rebuilt: untouched years cost no
    copy and stay byte for byte the same."""
    rebuilt = {Path("manifest") / f"{year}.json", Path("dictionary.csv"),
               Path("monitoring.duckdb"),
               *(table_path(scope, name, year) for scope, name in UNPARTITIONED)}
    _link_snapshot(current, building, lambda relative: (
        f"survey_year={year}" in relative.parts or relative in rebuilt
        or relative.is_relative_to(Path("report") / str(year))))


def _link_snapshot(current: Path, building: Path, skip) -> None:
    """Hard-link every file of the current snapshot whose relative path `skip` leaves."""
    for path in current.rglob("*"):
        relative = path.relative_to(current)
        if path.is_dir() or skip(relative):
            continue
        target = building / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)


def _write_table(slices: Iterable[pa.Table], path: Path, scope: str, name: str) -> dict:
    """Parquet (zstd), a row group per slice, with each column's English and Chinese description
    in its field metadata; its rows and sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    described = descriptions(scope, name)
    rows, writer = 0, None
    try:
        for table in slices:
            if writer is None:
                schema = pa.schema([
                    field.with_metadata({"description_en": described[field.name]["en"],
                                         "description_zh": described[field.name]["zh"]})
                    for field in table.schema
                ], metadata={"table": f"{scope}/{name}", "contract_version": CONTRACT_VERSION})
                # Dictionaries for text only: hashing every number to find few repeats, and the
                # statistics of the cell statuses' 33 letters, were a third of writing the
                # population (2.1 s a million rows, 1.3 s without them). Top-level columns keep
                # statistics, the ones that let a reader skip row groups.
                writer = pq.ParquetWriter(
                    str(path), schema, compression="zstd", use_dictionary=_text_leaves(schema),
                    write_statistics=[f.name for f in schema if not pa.types.is_nested(f.type)])
            writer.write_table(table.cast(schema))
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    with open(path, "rb") as f:
        return {"rows": rows, "sha256": hashlib.file_digest(f, "sha256").hexdigest()}


def _text_leaves(schema: pa.Schema | pa.StructType) -> list[str]:
    """The Parquet paths of the text columns, nested ones included (`cell_status.employees`,
    `warnings.list.element`)."""
    leaves = []
    for field in schema:
        kind = field.type
        if pa.types.is_struct(kind):
            leaves += [f"{field.name}.{leaf}" for leaf in _text_leaves(kind)]
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            element = pa.schema([pa.field("element", kind.value_type)])
            leaves += [f"{field.name}.list.{leaf}" for leaf in _text_leaves(element)]
        elif (pa.types.is_string(kind) or pa.types.is_large_string(kind)
              or pa.types.is_string_view(kind)):
            leaves.append(field.name)
    return leaves


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
    `file_search_path` set to the published folder, or from inside it). Each view lists its
    files: a pattern would be read as a glob across the whole path, data root included."""
    con = duckdb.connect(str(path))
    try:
        search_path(con, snapshot)
        for scope, name in published_tables():
            files = [str(f.relative_to(snapshot)) for f in table_files(snapshot, scope, name)]
            if not files:
                continue
            # DDL takes no parameters; the paths are built from fixed table names and years.
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            hive = str((scope, name) not in UNPARTITIONED).lower()
            con.execute(f"create view {name} as select * from read_parquet([{listed}], "
                        f"hive_partitioning = {hive}, union_by_name = true)")
    finally:
        con.close()


def table_path(scope: str, name: str, year: int) -> Path:
    """Where a table's file of the year goes in a snapshot (one file for every year for the
    tables that are not partitioned by year)."""
    if (scope, name) in UNPARTITIONED:
        return Path(scope) / name / "data.parquet"
    return Path(scope) / name / f"survey_year={year}" / "data.parquet"


def table_files(snapshot: Path, scope: str, name: str) -> list[Path]:
    """A published table's file of each year, in year order."""
    if (scope, name) in UNPARTITIONED:
        return [path] if (path := snapshot / table_path(scope, name, 0)).exists() else []
    return sorted((snapshot / scope / name).glob("survey_year=*/data.parquet"))


def search_path(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Resolve the views' relative paths against this folder."""
    con.execute("set file_search_path = " + "'" + str(folder).replace("'", "''") + "'")


#: What `survey query` runs: statements that read. COPY, ATTACH, EXPORT, SET, INSTALL and the
#: rest are refused before DuckDB sees them (and the sandbox would stop their file access too).
READING_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})


def query_connection(settings: Settings, restricted: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per published table across all years, that can read
    the current snapshot's public tables (and, if asked and the folder is open to this user,
    its restricted ones) and no other file: no writing, no attaching, no extensions."""
    link = settings.published_dir
    if not link.exists():
        raise SurveyError(f"nothing published yet: no {link}")
    # Resolved once: a swap while the query runs leaves this snapshot in place for it.
    snapshot = link.resolve()
    scopes = ["public"]
    if restricted:
        folder = snapshot / "restricted"
        if not os.access(folder, os.R_OK | os.X_OK):
            raise SurveyError(f"the restricted tables are closed to this user ({folder}): "
                              "they need the survey office's access to that folder")
        scopes.append("restricted")
    con = duckdb.connect()
    try:
        for scope, name in published_tables():
            files = [str(f) for f in table_files(snapshot, scope, name)]
            if scope in scopes and files:
                con.read_parquet(files, hive_partitioning=(scope, name) not in UNPARTITIONED,
                                 union_by_name=True).create_view(name)
        con.execute("set autoinstall_known_extensions = false")
        con.execute("set autoload_known_extensions = false")
        con.execute("set temp_directory = ''")  # spilling would write outside the sandbox
        con.execute("set allowed_directories = ?", [[f"{snapshot / scope}/" for scope in scopes]])
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def reading_statements(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    """The statements of `sql`, or SurveyError naming the first that does not only read."""
    statements = con.extract_statements(sql)
    for statement_ in statements:
        kind = statement_.type.name
        if kind not in READING_STATEMENTS:
            raise SurveyError(f"survey query only reads: a {kind} statement is not run "
                              "(use select … from a table; to export, read the Parquet files)")
    return statements


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
