"""Run a year's steps in-process, in the order the DAG runs them (used by the CLI and bench)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial

from pipeline.aggregate import aggregate_year
from pipeline.check import check_batch, landed_batches
from pipeline.config import Settings, close_new_files
from pipeline.consolidate import deduplicate
from pipeline.disclosure import DisclosureError
from pipeline.errors import SurveyError
from pipeline.locks import year_lock
from pipeline.protect import protect_year
from pipeline.publish import publish_year, refuse_to_shrink
from pipeline.report import report
from pipeline.workbooks import follow_up_workbooks
from pipeline.yearly_report import write_yearly_report

#: Batches checked at once by `survey run`.
CHECK_THREADS = 2
#: The county workbooks' processes in `survey run`, and how far they yield the CPU to the steps
#: beside them: publication waits for those, and xlsxwriter (Python from end to end) took a core
#: from DuckDB's two threads. Once the tables are out, both processes have the machine.
WORKBOOK_PROCESSES, WORKBOOKS_NICENESS = 2, 19


def run_year(settings: Settings, year: int, on_file: Callable[[str], None] | None = None,
             allow_shrink: bool = False) -> dict:
    """Every step of a year in-process, through publication; returns the accounting. Raises
    YearBusy at once if another run holds the year, PublicationRefused for a year that would
    replace its published version with nothing or with under half of it."""
    close_new_files()
    # Not an Airflow task, so no logical date: the run's start is its own clock.
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    steps: dict[str, float] = {}
    with year_lock(settings, year, wait=False):
        ingested = []
        with _timed(steps, "check"):
            for result in check_files(settings, year):
                ingested.append(result)
                if on_file:
                    on_file(result["source_file"])
        with _timed(steps, "deduplicate"):
            deduplicate(settings, year, checked_paths(ingested))
        with _timed(steps, "report"):
            accounting = report(settings, year, ingested)
        refuse_to_shrink(settings, accounting, allow_shrink)  # before the costly steps
        # As in the DAG, the county workbooks are written beside the tables, not before them,
        # and in processes of their own: xlsxwriter is Python from end to end, and on a thread
        # it held the interpreter's lock against the steps below (aggregate took 1.2 s longer
        # at 50,000 enterprises). This thread only hands out the offices.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbooks") as beside:
            workbooks = beside.submit(_workbooks, settings, year)
            with _timed(steps, "aggregate"):
                aggregate_year(settings, year)
            with _timed(steps, "protect"):
                accounting["protection"] = protect_year(settings, year)
            with _timed(steps, "publish"):
                accounting["manifest"] = publish_year(
                    settings, year, run_id=f"survey-run-{started_at}", started_at=started_at,
                    allow_shrink=allow_shrink)
            with _timed(steps, "yearly_report"):
                accounting["yearly_report"] = write_yearly_report(settings, year)
            accounting["workbooks"], steps["workbooks"] = workbooks.result()
    accounting["steps_seconds"] = steps
    return accounting


@contextmanager
def _timed(steps: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        steps[name] = round(time.perf_counter() - started, 3)


def _workbooks(settings: Settings, year: int) -> tuple[dict, float]:
    """The county workbooks, beside the tables; with their seconds."""
    steps: dict[str, float] = {}
    with _timed(steps, "workbooks"):
        written = follow_up_workbooks(settings, year, WORKBOOK_PROCESSES, WORKBOOKS_NICENESS)
    return written, steps["workbooks"]


def check_files(settings: Settings, year: int, threads: int = CHECK_THREADS) -> Iterator[dict]:
    """Every landed file through the check, batches side by side on threads of this process;
    yields each file's ingest report plus checked_path (None when quarantined), in batch order.

    Threads, not processes: polars does the work off the interpreter's lock, and a second batch
    fills the gaps one leaves (its reading, pandera's own Python between queries), with no
    worker to start and import.
    """
    batches = landed_batches(settings, year, threads)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="check") as pool:
        for reports in pool.map(partial(check_batch, settings, year), batches):
            yield from reports


def checked_paths(ingested: list[dict]) -> list[str]:
    """The checked batches that ingest reports point to, each once."""
    return sorted({r["checked_path"] for r in ingested if r["checked_path"]})


# Task bodies of the DAG: each is one call, reading settings from the environment, holding
# the year's lock (shared by the mapped check tasks) and creating files owner-only.


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


def landed_file_batches(year: int) -> list[list[str]]:
    with _task(year, shared=True) as settings:
        return [[str(p) for p in batch]
                for batch in landed_batches(settings, year, settings.check_workers)]


def check_landed_batch(year: int, batch: list[str]) -> list[dict]:
    with _task(year, shared=True) as settings:
        return check_batch(settings, year, batch)


def deduplicate_year(year: int, checked: list[list[dict]]) -> dict:
    ingested = [report for batch in checked for report in batch]
    with _task(year) as settings:
        return deduplicate(settings, year, checked_paths(ingested))


def report_year(year: int, checked: list[list[dict]], allow_shrink: bool = False) -> dict:
    ingested = [report for batch in checked for report in batch]
    with _task(year) as settings:
        accounting = report(settings, year, ingested)
        refuse_to_shrink(settings, accounting, allow_shrink)
    return {"path": accounting["path"], **accounting["total"]}


def county_workbooks(year: int) -> dict:
    with _task(year) as settings:
        return follow_up_workbooks(settings, year)


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
