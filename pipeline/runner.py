"""Run a year's steps in-process, in the order the DAG runs them (used by the CLI and bench)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from pipeline.aggregate import aggregate_year
from pipeline.config import Settings, close_new_files
from pipeline.consolidate import deduplicate
from pipeline.disclosure import DisclosureError
from pipeline.errors import SurveyError
from pipeline.ingest import ingest_file, landed_files
from pipeline.locks import year_lock
from pipeline.processes import die_with_parent
from pipeline.protect import protect_year
from pipeline.publish import publish_year, refuse_to_shrink
from pipeline.report import report
from pipeline.validate import validate_file, validate_files
from pipeline.yearly_report import write_yearly_report

#: Input bytes checked as one frame: about 200,000 returns, 0.7 GB at the worker's peak.
BATCH_BYTES = 40 * 2**20


def run_year(settings: Settings, year: int, on_file: Callable[[str], None] | None = None,
             workers: int | None = None, allow_shrink: bool = False) -> dict:
    """Every step of a year in-process, through publication; returns the accounting. Raises
    YearBusy at once if another run holds the year, PublicationRefused for a year that would
    replace its published version with nothing or with under half of it."""
    close_new_files()
    # Not an Airflow task, so no logical date: the run's start is its own clock.
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with year_lock(settings, year, wait=False):
        ingested, checked = [], []
        for result in check_files(settings, year, landed_files(settings, year), workers):
            ingested.append(result)
            if result["checked_path"]:
                checked.append(result["checked_path"])
            if on_file:
                on_file(result["source_file"])
        deduplicate(settings, year, checked)
        accounting = report(settings, year, ingested)
        refuse_to_shrink(settings, accounting, allow_shrink)  # before the costly steps
        aggregate_year(settings, year)
        accounting["protection"] = protect_year(settings, year)
        accounting["manifest"] = publish_year(settings, year, run_id=f"survey-run-{started_at}",
                                              started_at=started_at, allow_shrink=allow_shrink)
        accounting["yearly_report"] = write_yearly_report(settings, year)
    return accounting


def check_files(settings: Settings, year: int, paths: list[Path],
                workers: int | None = None) -> Iterator[dict]:
    """Ingest then validate every file, batches of files side by side on every core, as the
    DAG's mapped tasks run on a deployment; yields each file's ingest report plus checked_path
    (None when quarantined) as its batch finishes."""
    workers = workers or os.cpu_count() or 1
    batches = file_batches(paths, workers)
    check = partial(check_batch, settings, year)
    if workers == 1 or len(batches) < 2:
        for batch in map(check, batches):
            yield from batch
        return
    # spawn, not fork: a forked child of a process that has started polars' threads can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(batches)), mp_context=context,
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        for batch in pool.map(check, batches):
            yield from batch


def file_batches(paths: list[Path], workers: int,
                 batch_bytes: int = BATCH_BYTES) -> list[list[Path]]:
    """Files grouped to be checked together: a multiple of `workers` batches of about
    batch_bytes or less (a larger file goes alone), largest first, so the cores finish together."""
    # lstat: a link or a folder is weighed as itself, never followed (ingest sets it aside, F307).
    sizes = {path: path.lstat().st_size for path in paths}
    count = max(1, -(-sum(sizes.values()) // batch_bytes))
    count = min(len(paths), -(-count // workers) * workers)
    batches: list[list[Path]] = [[] for _ in range(count)]
    totals = [0] * count
    for path in sorted(paths, key=lambda p: (-sizes[p], p.name)):
        smallest = totals.index(min(totals))
        batches[smallest].append(path)
        totals[smallest] += sizes[path]
    return [sorted(batch, key=lambda p: p.name) for batch in batches if batch]


def check_batch(settings: Settings, year: int, paths: list[Path]) -> list[dict]:
    """Files through ingest, then validated together as one frame."""
    ingested = [ingest_file(settings, year, path) for path in paths]
    raw_paths = [r["raw_path"] for r in ingested if r["status"] == "read"]
    checked = validate_files(settings, year, raw_paths) if raw_paths else []
    checked_path = {c["source_file"]: c["checked_path"] for c in checked}
    return [{**r, "checked_path": checked_path.get(r["source_file"])} for r in ingested]


def validate_read(settings: Settings, year: int, ingested: dict) -> dict:
    """Validate a read file; a quarantined one passes through with no checked rows."""
    if ingested["status"] != "read":
        return {"source_file": ingested["source_file"], "checked_path": None, "rows": 0}
    return validate_file(settings, year, ingested["raw_path"])


# Task bodies of the DAG: each is one call, reading settings from the environment, holding
# the year's lock (shared by the mapped per-file steps) and creating files owner-only.


@contextmanager
def _task(year: int, *, shared: bool = False) -> Iterator[Settings]:
    from airflow.sdk.exceptions import AirflowFailException

    close_new_files()
    settings = Settings.from_env()
    try:
        with year_lock(settings, year, shared=shared):
            yield settings
    except (SurveyError, DisclosureError) as e:
        # A refusal that the same inputs meet again: retrying only delays the alert.
        raise AirflowFailException(str(e)) from e


def landed_paths(year: int) -> list[str]:
    with _task(year, shared=True) as settings:
        return [str(p) for p in landed_files(settings, year)]


def ingest_landed(year: int, path: str) -> dict:
    with _task(year, shared=True) as settings:
        return ingest_file(settings, year, path)


def validate_ingested(year: int, ingested: dict) -> dict:
    with _task(year, shared=True) as settings:
        return validate_read(settings, year, ingested)


def deduplicate_year(year: int, validated: list[dict]) -> dict:
    checked = [v["checked_path"] for v in validated if v["checked_path"]]
    with _task(year) as settings:
        return deduplicate(settings, year, checked)


def report_year(year: int, ingested: list[dict], allow_shrink: bool = False) -> dict:
    with _task(year) as settings:
        accounting = report(settings, year, list(ingested))
        refuse_to_shrink(settings, accounting, allow_shrink)
    return {"path": accounting["path"], **accounting["total"]}


def aggregate_statistics(year: int) -> dict:
    with _task(year) as settings:
        return aggregate_year(settings, year)


def protect_cells(year: int) -> dict:
    with _task(year) as settings:
        return protect_year(settings, year)


def publish_tables(year: int, run_id: str, started_at: datetime | None,
                   allow_shrink: bool = False) -> dict:
    with _task(year) as settings:
        manifest = publish_year(settings, year, run_id=run_id,
                                started_at=started_at.isoformat() if started_at else "",
                                allow_shrink=allow_shrink)
    return {"survey_year": year, "tables": len(manifest["tables"]),
            **manifest["accounting"]}


def yearly_report_page(year: int) -> dict:
    with _task(year) as settings:
        return write_yearly_report(settings, year)
