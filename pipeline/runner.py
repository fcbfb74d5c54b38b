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


# Task bodies of the DAG: each is one call, reading settings from the environment.


def landed_paths(year: int) -> list[str]:
    return [str(p) for p in landed_files(Settings.from_env(), year)]


def ingest_landed(year: int, path: str) -> dict:
    return ingest_file(Settings.from_env(), year, path)


def validate_ingested(year: int, ingested: dict) -> dict:
    """Validate a read file; a quarantined one passes through with no checked rows."""
    if ingested["status"] != "read":
        return {"source_file": ingested["source_file"], "checked_path": None, "rows": 0}
    return validate_file(Settings.from_env(), year, ingested["raw_path"])


def deduplicate_year(year: int, validated: list[dict]) -> dict:
    checked = [v["checked_path"] for v in validated if v["checked_path"]]
    return deduplicate(Settings.from_env(), year, checked)


def report_year(year: int, ingested: list[dict]) -> dict:
    accounting = report(Settings.from_env(), year, list(ingested))
    return {"path": accounting["path"], **accounting["total"]}
