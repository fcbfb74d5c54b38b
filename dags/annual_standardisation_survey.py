"""
### Annual enterprise standardisation survey (浙江省企业标准化统计监测)

Runs once a year, on 1 April at 02:00 Asia/Shanghai, after the collection window closes, for the
survey year just ended (param `survey_year`, default: the year before the run's logical date).

1. **landed_batches** lists `landing/<year>/` and groups the files into batches, in a multiple
   of `SURVEY_CHECK_WORKERS` so the workers share them;
2. **check** (mapped, one task per batch) reads each file of its batch, or quarantines it with
   its F rule, then types and checks every row against the survey form (E and W rules) in one
   pass, written once; a failed batch retries alone and its alert names its files;
3. **deduplicate** decides D201/D202 across the batches and writes the valid layer;
4. **report** writes the follow-up list and the accounting
   (rows_read = accepted + rejected + superseded + duplicate, per file and in total), and stops
   a year with no readable row, or with under half the accepted returns of the published
   version, unless param `allow_shrink` is set (publish checks the same again);
   **workbooks** then writes the follow-up list as one XLSX workbook per county office
   (`output/<year>/follow_up/`), beside the steps below;
5. **aggregate** builds the statistical layer, the year's population (monitoring-tables.md §6):
   every accepted return, and every enterprise of the survey frame (`frame/<year>.csv`) without
   one, imputed from its last year's return × its class's trend, or from a donor, and flagged;
   then the cells of the linked public tables in DuckDB;
6. **protect** applies disclosure control (monitoring-tables.md §3: primary cells and the
   secondary ones their protection needs, all published as `C`) and proves it with a
   linear-programming audit against both intruders, the informed outsider and a respondent:
   a year with a recoverable cell stops here, unpublished;
7. **publish** checks every table against its contract and swaps the year in atomically; each
   published table is an Asset (`x-survey://published/<scope>/<table>`) other DAGs can be
   scheduled on;
8. **yearly_report** builds the leadership's report from the public tables
   (`published/report/<year>/index.html`: charts as inline SVG, no script, no request) and swaps
   it into the published snapshot the same way.

Any year can be re-run by hand with `survey_year` set; each task replaces only its own output.
A failed task raises an alert (task log, `alerts/alerts.jsonl` under the data root, and the
`survey_alerts` HTTP connection if one is set), and so does a run not finished
`SURVEY_RUN_DEADLINE_HOURS` (default 12) after it was queued. The steps that write a year's
DuckDB work and the published snapshot share the one-slot pool `survey_duckdb`. Every task holds
the year's lock (`locks/<year>.lock` under the data root; shared by the check tasks), so the
DAG and a `survey run` never work on one year at once: the run refuses while a task holds it,
a task waits for the run.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AsyncCallback, DeadlineAlert, DeadlineReference, Param, dag, task


def alert_failure(context) -> None:
    """A failed task raises an alert (log, alerts file, webhook connection if any)."""
    from pipeline.alerts import task_failed

    task_failed(context)


DEFAULTS = {
    # Every step reads or writes the shared data volume: retry I/O hiccups, backing off.
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(hours=1),
    "on_failure_callback": alert_failure,
}
#: Only one task at a time writes a year's DuckDB work and the published snapshot.
WRITER_POOL = "survey_duckdb"
#: The yearly run must be done this long after it was queued, or the triggerer raises an alert.
#: 0 turns the alert off: `airflow dags test` / dag.test() in Airflow 3.3.2 fail on a DAG with a
#: deadline (they look the alert up by its serialized form, not its id), so the embedded demo and
#: the dag.test() tests run without it; the real-scheduler test runs with it.
RUN_DEADLINE_HOURS = float(os.environ.get("SURVEY_RUN_DEADLINE_HOURS", "12"))
DEADLINE = DeadlineAlert(
    reference=DeadlineReference.DAGRUN_QUEUED_AT,
    interval=timedelta(hours=RUN_DEADLINE_HOURS),
    callback=AsyncCallback("pipeline.alerts.deadline_missed",
                           kwargs={"deadline_hours": RUN_DEADLINE_HOURS}),
) if RUN_DEADLINE_HOURS > 0 else None

#: Every published table (monitoring-tables.md), as an Asset downstream DAGs can wait for.
PUBLISHED_TABLES = {
    "public": ("headline", "by_region", "by_industry", "by_size", "by_region_industry",
               "data_quality", "data_quality_rules", "indicators"),
    "restricted": ("enterprises", "follow_up", "cells"),
}
ASSETS = [
    Asset(name=f"survey_{scope}_{table}", uri=f"x-survey://published/{scope}/{table}",
          group="standardisation_survey")
    for scope, tables in PUBLISHED_TABLES.items() for table in tables
]


@dag(
    dag_id="annual_standardisation_survey",
    schedule="0 2 1 4 *",
    start_date=pendulum.datetime(2025, 4, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    deadline=DEADLINE,
    params={
        "survey_year": Param(
            None, type=["null", "integer"], minimum=2000, maximum=2100,
            description="Survey year to process; empty means the year before the logical date.",
        ),
        "allow_shrink": Param(
            False, type="boolean",
            description="Publish even if the year has under half the accepted returns of the "
                        "version it replaces (a year with no readable row is never published).",
        ),
    },
    tags=["survey", "standardisation", "annual"],
    doc_md=__doc__,
)
def annual_standardisation_survey():
    @task
    def survey_year(params=None, logical_date=None, dag_run=None) -> int:
        from pipeline.config import survey_year_for

        return survey_year_for(params.get("survey_year"), logical_date or dag_run.run_after)

    @task
    def landed_batches(year: int) -> list[list[str]]:
        from pipeline.runner import landed_file_batches

        return landed_file_batches(year)

    @task(execution_timeout=timedelta(minutes=30))
    def check(batch: list[str], year: int) -> list[dict]:
        from pipeline.runner import check_landed_batch

        return check_landed_batch(year, batch)

    @task(pool=WRITER_POOL)
    def deduplicate(checked: list[list[dict]], year: int) -> dict:
        from pipeline.runner import deduplicate_year

        return deduplicate_year(year, checked)

    @task(pool=WRITER_POOL)
    def report(checked: list[list[dict]], year: int, deduplicated: dict, params=None) -> dict:
        from pipeline.runner import report_year

        return report_year(year, checked, params["allow_shrink"])

    @task
    def workbooks(year: int, reported: dict) -> dict:
        from pipeline.runner import county_workbooks

        return county_workbooks(year)

    @task(pool=WRITER_POOL)
    def aggregate(year: int, reported: dict) -> dict:
        from pipeline.runner import aggregate_statistics

        return aggregate_statistics(year)

    @task(pool=WRITER_POOL)
    def protect(year: int, aggregated: dict) -> dict:
        from pipeline.runner import protect_cells

        return protect_cells(year)

    @task(pool=WRITER_POOL, outlets=ASSETS, execution_timeout=timedelta(minutes=30))
    def publish(year: int, protected: dict, dag_run=None, params=None) -> dict:
        from pipeline.runner import publish_tables

        return publish_tables(year, dag_run.run_id, dag_run.start_date, params["allow_shrink"])

    @task(pool=WRITER_POOL)
    def yearly_report(year: int, published: dict) -> dict:
        from pipeline.runner import yearly_report_page

        return yearly_report_page(year)

    year = survey_year()
    checked = check.partial(year=year).expand(batch=landed_batches(year))
    reported = report(checked, year, deduplicate(checked, year))
    workbooks(year, reported)
    yearly_report(year, publish(year, protect(year, aggregate(year, reported))))


annual_standardisation_survey()
