"""`make demo`'s timing line: how long the embedded Airflow took for a year's DAG run, with the
protect step's time beside it, read from the run's task instances in the demo's SQLite
metadata database (`python -m devtools.dag_timing --year Y --started EPOCH_SECONDS`)."""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from datetime import datetime
from pathlib import Path

DAG_ID = "annual_standardisation_survey"


def run_timing(database: Path) -> dict:
    """The latest run of the DAG: its tasks' span and each step's seconds (mapped ones summed)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as con:
        (run_id,) = con.execute(
            "select run_id from dag_run where dag_id = ? order by id desc limit 1",
            [DAG_ID]).fetchone()
        rows = con.execute(
            "select task_id, start_date, end_date from task_instance "
            "where dag_id = ? and run_id = ? and state = 'success'", [DAG_ID, run_id]).fetchall()
    spans = [(task, _time(start), _time(end)) for task, start, end in rows]
    steps: dict[str, float] = {}
    for task, start, end in spans:
        steps[task] = steps.get(task, 0.0) + (end - start).total_seconds()
    first = min(start for _, start, _ in spans)
    last = max(end for _, _, end in spans)
    return {"run_id": run_id, "seconds": (last - first).total_seconds(), "steps": steps}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.dag_timing", description=__doc__)
    parser.add_argument("--year", type=int, required=True)
    parser.add_argument("--started", type=float, required=True,
                        help="when the `airflow dags test` command started (seconds since 1970)")
    args = parser.parse_args(argv)
    command_seconds = time.time() - args.started
    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow"))
    timing = run_timing(home / "airflow.db")
    protect = timing["steps"].get("protect", 0.0)
    print(f"DAG run for {args.year}: {timing['seconds']:.1f} s from its first task to its last "
          f"(protect {protect:.1f} s; everything else {timing['seconds'] - protect:.1f} s); "
          f"`airflow dags test` took {command_seconds:.1f} s in all, start-up included")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
