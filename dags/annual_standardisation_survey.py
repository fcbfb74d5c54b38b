"""
### Annual enterprise standardisation survey (浙江省企业标准化统计监测)

Runs once a year, on 1 April at 02:00 Asia/Shanghai, after the collection window closes, for the
survey year just ended (param `survey_year`, default: the year before the run's logical date).

1. **landed_files** lists `landing/<year>/`;
2. **ingest** (mapped, one task per file) reads each file into the raw layer or quarantines it
   with its F rule;
3. **validate** (mapped) types and checks every row against the survey form (E and W rules);
4. **deduplicate** decides D201/D202 across files and writes the valid layer;
5. **report** writes the follow-up list and the accounting
   (rows_read = accepted + rejected + superseded + duplicate, per file and in total);
6. **aggregate** builds the statistical layer (one accepted return per enterprise) and the cells
   of the linked public tables in DuckDB;
7. **protect** applies disclosure control (primary C, secondary D) and proves it with a
   linear-programming audit: a year with an exposed cell stops here, unpublished;
8. **publish** checks every table against its contract and swaps the year in atomically; each
   published table is an Asset (`x-survey://published/<scope>/<table>`) other DAGs can be
   scheduled on.

Any year can be re-run by hand with `survey_year` set; each task replaces only its own output.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task

RETRIES = {
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}

#: Every published table (monitoring-tables.md), as an Asset downstream DAGs can wait for.
PUBLISHED_TABLES = {
    "public": ("headline", "by_region", "by_industry", "by_size", "by_region_industry",
               "data_quality", "data_quality_rules"),
    "restricted": ("enterprises", "follow_up"),
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
    default_args=RETRIES,
    params={
        "survey_year": Param(
            None, type=["null", "integer"], minimum=2000, maximum=2100,
            description="Survey year to process; empty means the year before the logical date.",
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
    def landed_files(year: int) -> list[str]:
        from pipeline.runner import landed_paths

        return landed_paths(year)

    @task
    def ingest(path: str, year: int) -> dict:
        from pipeline.runner import ingest_landed

        return ingest_landed(year, path)

    @task
    def validate(ingested: dict, year: int) -> dict:
        from pipeline.runner import validate_ingested

        return validate_ingested(year, ingested)

    @task
    def deduplicate(validated: list[dict], year: int) -> dict:
        from pipeline.runner import deduplicate_year

        return deduplicate_year(year, validated)

    @task
    def report(ingested: list[dict], year: int, deduplicated: dict) -> dict:
        from pipeline.runner import report_year

        return report_year(year, ingested)

    @task
    def aggregate(year: int, reported: dict) -> dict:
        from pipeline.runner import aggregate_statistics

        return aggregate_statistics(year)

    @task
    def protect(year: int, aggregated: dict) -> dict:
        from pipeline.runner import protect_cells

        return protect_cells(year)

    @task(outlets=ASSETS)
    def publish(year: int, protected: dict, dag_run=None) -> dict:
        from pipeline.runner import publish_tables

        return publish_tables(year, dag_run.run_id, dag_run.start_date)

    year = survey_year()
    ingested = ingest.partial(year=year).expand(path=landed_files(year))
    validated = validate.partial(year=year).expand(ingested=ingested)
    reported = report(ingested, year, deduplicate(validated, year))
    publish(year, protect(year, aggregate(year, reported)))


annual_standardisation_survey()
