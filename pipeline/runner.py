"""Run a year's steps in-process, in the order the DAG runs them (used by the CLI and bench)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from pipeline.config import Settings
from pipeline.consolidate import deduplicate
from pipeline.ingest import ingest_file, landed_files
from pipeline.report import report
from pipeline.validate import validate_file


def run_year(settings: Settings, year: int, on_file: Callable[[str], None] | None = None,
             workers: int | None = None) -> dict:
    """Ingest and validate every landed file, de-duplicate, report; returns the accounting."""
    ingested, checked = [], []
    for result in check_files(settings, year, landed_files(settings, year), workers):
        ingested.append(result)
        if result["checked_path"]:
            checked.append(result["checked_path"])
        if on_file:
            on_file(result["source_file"])
    deduplicate(settings, year, checked)
    return report(settings, year, ingested)


def check_files(settings: Settings, year: int, paths: list[Path],
                workers: int | None = None) -> Iterator[dict]:
    """Ingest then validate each file, in name order; files run side by side on every core,
    as the DAG's mapped tasks do on a deployment."""
    workers = workers or os.cpu_count() or 1
    check = partial(check_file, settings, year)
    if workers == 1 or len(paths) < 2:
        yield from map(check, paths)
        return
    # spawn, not fork: a forked child of a process that has started polars' threads can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(paths)), mp_context=context) as pool:
        yield from pool.map(check, paths)


def check_file(settings: Settings, year: int, path: Path) -> dict:
    """One file through ingest and validate: its ingest report plus checked_path (None when
    quarantined)."""
    result = ingest_file(settings, year, path)
    return {**result, "checked_path": validate_read(settings, year, result)["checked_path"]}


def validate_read(settings: Settings, year: int, ingested: dict) -> dict:
    """Validate a read file; a quarantined one passes through with no checked rows."""
    if ingested["status"] != "read":
        return {"source_file": ingested["source_file"], "checked_path": None, "rows": 0}
    return validate_file(settings, year, ingested["raw_path"])


# Task bodies of the DAG: each is one call, reading settings from the environment.


def landed_paths(year: int) -> list[str]:
    return [str(p) for p in landed_files(Settings.from_env(), year)]


def ingest_landed(year: int, path: str) -> dict:
    return ingest_file(Settings.from_env(), year, path)


def validate_ingested(year: int, ingested: dict) -> dict:
    return validate_read(Settings.from_env(), year, ingested)


def deduplicate_year(year: int, validated: list[dict]) -> dict:
    checked = [v["checked_path"] for v in validated if v["checked_path"]]
    return deduplicate(Settings.from_env(), year, checked)


def report_year(year: int, ingested: list[dict]) -> dict:
    accounting = report(Settings.from_env(), year, list(ingested))
    return {"path": accounting["path"], **accounting["total"]}
