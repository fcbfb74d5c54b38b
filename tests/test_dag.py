"""DAG integrity (imports, schedule, params, retries, parse time) and a real dag.test() run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

DAGS = Path(__file__).parent.parent / "dags"
DAG_ID = "annual_standardisation_survey"


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dag_ids


def test_schedule_params_and_retries(dagbag):
    dag = dagbag.get_dag(DAG_ID)
    assert dag.schedule == "0 2 1 4 *"
    assert "Asia/Shanghai" in str(dag.timezone)
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.doc_md and dag.tags
    assert "survey_year" in dag.params
    for task in dag.tasks:
        assert task.retries >= 2 and task.retry_exponential_backoff, task.task_id
    assert {t.task_id for t in dag.tasks} == {"survey_year", "landed_batches", "check",
                                              "deduplicate", "report", "workbooks", "aggregate",
                                              "protect", "publish", "yearly_report"}
    assert dag.get_task("check").is_mapped


def test_operations_timeouts_alerts_pool_and_deadline(dagbag):
    dag = dagbag.get_dag(DAG_ID)
    for task in dag.tasks:
        assert task.execution_timeout is not None, task.task_id
        assert task.on_failure_callback, task.task_id
    writers = {t.task_id for t in dag.tasks if t.pool == "survey_duckdb"}
    assert writers == {"deduplicate", "report", "aggregate", "protect", "publish",
                       "yearly_report"}
    assert dag.deadline, "the run deadline alert is on by default"


def test_every_published_table_is_an_asset_outlet(dagbag):
    from schemas.tables import published_tables

    outlets = dagbag.get_dag(DAG_ID).get_task("publish").outlets
    assert {a.uri for a in outlets} == {f"x-survey://published/{scope}/{name}"
                                        for scope, name in published_tables()}


def test_parsing_the_dag_file_is_fast():
    """Parse time of the DAG file alone, airflow already imported (as the dag-processor has it)."""
    code = (
        "import time, runpy, airflow.sdk\n"
        "t = time.perf_counter()\n"
        f"runpy.run_path({str(DAGS / (DAG_ID + '.py'))!r})\n"
        "print(time.perf_counter() - t)\n"
        "import sys; heavy = {'polars', 'duckdb', 'pandera', 'pyarrow', 'highspy'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
        "print(sorted(m for m in sys.modules if m.startswith('pipeline.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=os.environ).stdout.splitlines()
    assert float(out[0]) < 1.0
    assert out[1] == "[]", "the DAG file imports heavy libraries at module level"
    # The deadline callback is resolved at parse time: its module must stay light.
    assert out[2] == "['pipeline.alerts', 'pipeline.config', 'pipeline.errors']", out[2]


def test_survey_year_defaults_to_the_year_before_the_logical_date():
    from pipeline.config import survey_year_for

    assert survey_year_for(None, datetime(2026, 4, 1, tzinfo=UTC)) == 2025
    assert survey_year_for(2019, datetime(2026, 4, 1, tzinfo=UTC)) == 2019


def test_dag_test_runs_a_small_year(airflow_db, small_year_dir, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    data_dir, year = small_year_dir
    monkeypatch.setenv("SURVEY_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SURVEY_RUN_DEADLINE_HOURS", "0")  # dag.test() cannot run a deadline
    dag = DagBag(dag_folder=str(DAGS)).get_dag(DAG_ID)
    run = dag.test(logical_date=datetime(year + 1, 4, 1, 2, tzinfo=UTC) - timedelta(hours=8))
    assert run.state == "success"
    accounting = json.loads((data_dir / "output" / str(year) / "accounting.json").read_text())
    total = accounting["total"]
    assert total["rows_read"] > 0
    assert total["rows_read"] == sum(total[k] for k in ("accepted", "rejected", "superseded",
                                                         "duplicate"))
    assert accounting["files_received"] == len(list((data_dir / "landing" / str(year)).iterdir()))
    manifest = json.loads((data_dir / "published" / "manifest" / f"{year}.json").read_text())
    assert manifest["run_id"] == run.run_id and manifest["accounting"]["rows_read"] == total[
        "rows_read"]
