"""The DAG on a real Airflow deployment: PostgreSQL metadata, the scheduler, dag-processor,
triggerer and api-server with the LocalExecutor, all on 127.0.0.1; a small year triggered
through the REST API and its outputs checked. Every process the test starts, it stops by pid."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import SMALL_ENTERPRISES, SMALL_MAX_ROWS

REPO = Path(__file__).resolve().parent.parent
DAG_ID = "annual_standardisation_survey"
YEAR = 2025
#: Files kept from the synthetic year: a few county files, an online export and a damaged file,
#: so a run has mapped tasks to spread without taking minutes.
KEPT_FILES = 6
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin(name: str) -> Path:
    """A PostgreSQL server program, as Debian installs it (`make postgres` does)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        pytest.fail("no PostgreSQL server: `make postgres` installs Debian's package")
    return found[-1]


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the postgres account when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def descendants(pid: int) -> set[int]:
    """Every process below this one (Airflow puts task runners in process groups of their own)."""
    found, todo = set(), [pid]
    while todo:
        for children in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            try:
                pids = {int(c) for c in children.read_text().split()}
            except OSError:  # the process ended meanwhile
                continue
            todo.extend(pids - found)
            found |= pids
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_pids(pids: set[int], sig: signal.Signals, timeout: float) -> None:
    """Signal these pids, wait for them to end, and SIGKILL whatever is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while alive := {p for p in pids if running(p)}:
        if time.monotonic() > deadline:
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.2)


class Services:
    """The processes this test starts; stopped by pid, Airflow first, PostgreSQL last."""

    def __init__(self, logs: Path):
        self.logs, self.started = logs, []

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.started.append((name, process))
        return process

    def pids(self) -> set[int]:
        return {p.pid for _, p in self.started} | {
            d for _, p in self.started for d in descendants(p.pid)}

    def stop(self) -> None:
        airflow = [p for name, p in self.started if name != "postgres"]
        postgres = [p for name, p in self.started if name == "postgres"]
        # Backgrounded Airflow ignores SIGINT: SIGTERM every process, found before any ends.
        stop_pids({p.pid for p in airflow} | {d for p in airflow for d in descendants(p.pid)},
                  signal.SIGTERM, timeout=30)
        # PostgreSQL last, once nothing is connected; SIGINT is its fast shutdown.
        stop_pids({p.pid for p in postgres} | {d for p in postgres for d in descendants(p.pid)},
                  signal.SIGINT, timeout=30)
        for _, process in self.started:
            process.wait(timeout=10)

    def tail(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}"
                         for path in sorted(self.logs.glob("*.log")))


class Api:
    """The Airflow REST API (v2), with a JWT from the simple auth manager."""

    def __init__(self, base: str):
        self.base, self.token = base, None

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.base + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {self.token}"} if self.token else {})})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def wait(self, what: str, check, timeout: float, services: Services):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if result := check():
                    return result
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(1)
        pytest.fail(f"timed out waiting for {what}\n{services.tail()}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    from pipeline.synth import synthesize

    root = tmp_path_factory.mktemp("deployment")
    data_dir, airflow_home, logs = (root / n for n in ("data", "airflow", "logs"))
    for folder in (data_dir, airflow_home, logs):
        folder.mkdir()
    # Outside pytest's private temp folder, which the postgres account cannot enter.
    pgdata = Path(tempfile.mkdtemp(prefix="survey-pg-"))
    synthesize(YEAR, SMALL_ENTERPRISES, 3, data_dir, max_rows=SMALL_MAX_ROWS)
    landing = data_dir / "landing" / str(YEAR)
    files = sorted(landing.iterdir())
    kept = files[:KEPT_FILES - 2] + [p for p in files if "online" in p.name][:1] + [
        p for p in files if p.name.endswith(".xls") or "dump" in p.name][:1]
    for path in files:
        if path not in kept:
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    services = Services(logs)
    pg_port, api_port = free_port(), free_port()
    if os.geteuid() == 0:
        shutil.chown(pgdata, "postgres")
    # Password authentication even on loopback: another local user must not get in meanwhile.
    db_password = secrets.token_hex(16)
    pwfile = pgdata / "pwfile"
    pwfile.write_text(db_password)
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres")
    subprocess.run(as_postgres([str(postgres_bin("initdb")), "-D", str(pgdata / "cluster"),
                                "-U", "airflow", "--auth=scram-sha-256", f"--pwfile={pwfile}",
                                "--no-sync"]), check=True, capture_output=True)
    pwfile.unlink()
    postgres = services.start("postgres", as_postgres([
        str(postgres_bin("postgres")), "-D", str(pgdata / "cluster"), "-h", "127.0.0.1",
        "-p", str(pg_port), "-k", str(pgdata)]), os.environ.copy())
    secret = secrets.token_urlsafe(16)
    (airflow_home / "passwords.json").write_text(json.dumps({"admin": secret}))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
            f"postgresql+psycopg2://airflow:{db_password}@127.0.0.1:{pg_port}/airflow",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "3",  # LocalExecutor pre-forks one process per slot
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "SURVEY_DATA_DIR": str(data_dir),
        # A deadline the run cannot meet (about 2 s): the triggerer must raise the alert.
        "SURVEY_RUN_DEADLINE_HOURS": "0.0005",
        "SURVEY_MAX_FILE_ROWS": str(SMALL_MAX_ROWS),
    }
    try:
        ready = time.monotonic() + 60
        while subprocess.run(as_postgres([str(postgres_bin("pg_isready")), "-h", "127.0.0.1",
                                          "-p", str(pg_port)]), capture_output=True).returncode:
            assert postgres.poll() is None and time.monotonic() < ready, services.tail()
            time.sleep(0.5)
        subprocess.run(as_postgres([str(postgres_bin("createdb")), "-h", "127.0.0.1", "-p",
                                    str(pg_port), "-U", "airflow", "airflow"]), check=True,
                       env={**os.environ, "PGPASSWORD": db_password})
        airflow = str(BIN / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([airflow, "pools", "set", "survey_duckdb", "1",
                        "one writer of a year's DuckDB/published files at a time"],
                       env=env, check=True, capture_output=True)
        # The log servers of the scheduler and triggerer would listen on every interface.
        services.start("api-server", [airflow, "api-server"], env)
        services.start("scheduler", [airflow, "scheduler", "--skip-serve-logs"], env)
        services.start("dag-processor", [airflow, "dag-processor"], env)
        services.start("triggerer", [airflow, "triggerer", "--skip-serve-logs"], env)
        api = Api(f"http://127.0.0.1:{api_port}")
        api.wait("the api-server", lambda: api.call("GET", "/api/v2/monitor/health"), 120,
                 services)
        api.token = api.call("POST", "/auth/token",
                             {"username": "admin", "password": secret})["access_token"]
        yield api, services, data_dir
    finally:
        services.stop()
        shutil.rmtree(pgdata, ignore_errors=True)


def listening_addresses(pids: set[int]) -> set[str]:
    """Local addresses of the TCP sockets these processes listen on (from `ss`)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        if any(f"pid={pid}," in line for pid in pids):
            found.add(line.split()[3].rsplit(":", 1)[0])
    return found


def print_timeline(instances: list[dict]) -> None:
    """The run's tasks on a time axis (`pytest -s` shows it; docs/deploy.md quotes one)."""
    start = min(datetime.fromisoformat(t["start_date"]) for t in instances)
    for t in sorted(instances, key=lambda t: t["start_date"]):
        begin = (datetime.fromisoformat(t["start_date"]) - start).total_seconds()
        end = (datetime.fromisoformat(t["end_date"]) - start).total_seconds()
        name = t["task_id"] + (f"[{t['map_index']}]" if t["map_index"] >= 0 else "")
        bar = "·" * int(begin) + "█" * max(1, int(end - begin))
        print(f"{name:16s} {begin:6.1f}s → {end:6.1f}s  {bar}")


def test_a_year_triggered_through_the_rest_api_runs_and_publishes(deployment):
    api, services, data_dir = deployment
    api.wait("the DAG to be parsed",
             lambda: api.call("GET", f"/api/v2/dags/{DAG_ID}").get("dag_id"), 180, services)
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {
        "dag_run_id": "integration-2025",
        "logical_date": datetime(YEAR + 1, 4, 1, tzinfo=UTC).isoformat(),
        "conf": {"survey_year": YEAR},
    })
    run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}"
    state = api.wait(
        "the run to finish",
        lambda: (s := api.call("GET", run_path)["state"]) in ("success", "failed") and s,
        600, services)
    assert state == "success", services.tail()

    accounting = json.loads((data_dir / "output" / str(YEAR) / "accounting.json").read_text())
    total = accounting["total"]
    assert accounting["files_received"] == KEPT_FILES and accounting["files_quarantined"] >= 1
    assert total["rows_read"] == sum(total[k] for k in
                                     ("accepted", "rejected", "superseded", "duplicate")) > 0
    manifest = json.loads(
        (data_dir / "published" / "manifest" / f"{YEAR}.json").read_text())
    assert manifest["run_id"] == run["dag_run_id"]
    assert manifest["accounting"]["rows_read"] == total["rows_read"]

    # The run outlived its deadline: the triggerer ran the alert, which reached the data root.
    alerts = api.wait("the deadline alert", lambda: [
        a for a in map(json.loads, (data_dir / "alerts" / "alerts.jsonl").read_text().splitlines())
        if a["kind"] == "deadline_missed"] if (data_dir / "alerts" / "alerts.jsonl").exists()
        else None, 60, services)
    assert alerts[0]["deadline_hours"] == 0.0005

    # The mapped ingest tasks ran side by side on the LocalExecutor's slots.
    instances = api.call("GET", f"{run_path}/taskInstances?limit=100")["task_instances"]
    print_timeline(instances)
    mapped = [(datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"]))
              for t in instances if t["task_id"] in ("ingest", "validate")]
    assert len(mapped) == 2 * KEPT_FILES
    most_at_once = max(sum(start <= moment < end for start, end in mapped)
                       for moment, _ in mapped)
    assert most_at_once >= 2, mapped
    assert all(t["state"] == "success" for t in instances)

    # Nothing the test started listens beyond loopback.
    addresses = listening_addresses(services.pids())
    assert addresses and addresses <= {"127.0.0.1"}, addresses
