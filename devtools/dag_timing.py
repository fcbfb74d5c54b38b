"""`make demo`'s DAG run of a year: `airflow dags test` in this process, its log to a file, then
how long the run took, with the protect step's time beside it, read from the run's task
instances in the demo's SQLite metadata database
(`python -m devtools.dag_timing --year Y --log FILE`).

`airflow dags test` starts an execution API of its own, in-process, when its first task starts
(a deployment's API server is up before any run): about 8 s of FastAPI and Cadwyn set-up, most
of it on the first request, that would land on the first task. It is started here before the
run and timed apart, so the run's time is the DAG's own."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path

DAG_ID = "annual_standardisation_survey"


def run_dag(year: int, log: Path) -> float:
    """`airflow dags test` of the year's scheduled run (1 April of the next year), its output
    appended to `log`; returns the seconds the harness's execution API took to start."""
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    try:
        from airflow.__main__ import main
        from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

        started = time.perf_counter()
        # The same cached server the run's tasks use; Cadwyn builds its versioned routes on the
        # first request, so one is made.
        InProcessTestSupervisor._api_client().get("health/ping")
        harness = time.perf_counter() - started
        sys.argv = ["airflow", "dags", "test", DAG_ID, f"{year + 1}-04-01"]
        main()  # raises SystemExit("DagRun failed") when a task fails
        return harness
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)


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
    parser.add_argument("--log", type=Path, required=True, help="where Airflow's output goes")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        harness = run_dag(args.year, args.log)
    except SystemExit as e:
        print(f"the DAG run for {args.year} failed ({e}); its log: {args.log}", file=sys.stderr)
        return 1
    command_seconds = time.perf_counter() - started
    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow"))
    timing = run_timing(home / "airflow.db")
    protect = timing["steps"].get("protect", 0.0)
    print(f"DAG run for {args.year}: {timing['seconds']:.1f} s from its first task to its last "
          f"(protect {protect:.1f} s; everything else {timing['seconds'] - protect:.1f} s); "
          f"`airflow dags test` took {command_seconds:.1f} s in all, start-up included "
          f"({harness:.1f} s of it starting its in-process execution API)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
