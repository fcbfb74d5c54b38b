"""Run a year's steps in-process, in the order the DAG runs them (used by the CLI and bench)."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.config import Settings
from pipeline.consolidate import deduplicate
from pipeline.ingest import ingest_file, landed_files
from pipeline.report import report
from pipeline.validate import validate_file


def run_year(settings: Settings, year: int,
             on_file: Callable[[str], None] | None = None) -> dict:
    """Ingest and validate every landed file, de-duplicate, report; returns the accounting."""
    ingested, checked = [], []
    for path in landed_files(settings, year):
        result = ingest_file(settings, year, path)
        ingested.append(result)
        if result["status"] == "read":
            checked.append(validate_file(settings, year, result["raw_path"])["checked_path"])
        if on_file:
            on_file(path.name)
    deduplicate(settings, year, checked)
    return report(settings, year, ingested)
