"""The DAG on a real Airflow deployment shaped like docker-compose.yml, all on 127.0.0.1: PostgreSQL
for the metadata and Celery's results, Redis with a password as Celery's broker, the scheduler,
dag-processor, triggerer, api-server and two Celery workers. A small year is triggered through
the REST API; while it runs, the worker running one of its tasks is killed (SIGKILL, with every
process under it). The task must be retried on the other worker and the year finish with every
task successful and the accounting adding up. Every process the test starts, it stops by pid."""

from __future__ import annotations

import contextlib
import json
import os
import re
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
from datetime import datetime
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
REDIS_SERVER = Path("/usr/bin/redis-server")
#: The Celery node names, as docker-compose.yml's two worker services are named.
WORKERS = ("airflow-worker-1", "airflow-worker-2")
#: Task slots per worker (docker-compose.yml's SURVEY_WORKER_CONCURRENCY default).
WORKER_CONCURRENCY = 2
#: A task whose worker stops heartbeating is failed (and retried) after this many seconds.
HEARTBEAT_TIMEOUT = 15
#: A task queued this many seconds and not started is sent back to be scheduled (not a try).
QUEUED_TIMEOUT = 30
#: The DAG's retry delay in this test (see the cluster policy in the fixture).
RETRY_DELAY_SECONDS = 1
FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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


def signal_all(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop_pids(pids: set[int], sig: signal.Signals, timeout: float) -> None:
    """Signal these pids, wait for them to end, and SIGKILL whatever is left."""
    signal_all(pids, sig)
    deadline = time.monotonic() + timeout
    while alive := {p for p in pids if running(p)}:
        if time.monotonic() > deadline:
            signal_all(alive, signal.SIGKILL)
            break
        time.sleep(0.2)


def freeze_tree(pid: int) -> set[int]:
    """SIGSTOP a process and everything below it, until no new child appears; return the pids."""
    frozen: set[int] = set()
    while new := ({pid} | descendants(pid)) - frozen:
        signal_all(new, signal.SIGSTOP)
        frozen |= new
    return frozen


class Services:
    """The processes this test starts; stopped by pid: Airflow, then Redis, then PostgreSQL."""

    def __init__(self, logs: Path):
        self.logs, self.started = logs, []

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.started.append((name, process))
        return process

    def pids(self) -> set[int]:
        return {p.pid for _, p in self.started if running(p.pid)} | {
            d for _, p in self.started for d in descendants(p.pid)}

    def stop(self) -> None:
        stores = ("redis", "postgres")
        airflow = [p for name, p in self.started if name not in stores]
        # Backgrounded Airflow ignores SIGINT: SIGTERM every process, found before any ends.
        stop_pids({p.pid for p in airflow} | {d for p in airflow for d in descendants(p.pid)},
                  signal.SIGTERM, timeout=30)
        # The broker, then PostgreSQL once nothing is connected (SIGINT is its fast shutdown).
        for store, sig in zip(stores, (signal.SIGTERM, signal.SIGINT), strict=True):
            processes = [p for name, p in self.started if name == store]
            stop_pids({p.pid for p in processes} | {d for p in processes
                                                    for d in descendants(p.pid)},
                      sig, timeout=30)
        for _, process in self.started:
            process.wait(timeout=10)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tail(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
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

    def wait(self, what: str, check, timeout: float, services: Services, every: float = 1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if result := check():
                    return result
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(every)
        pytest.fail(f"timed out waiting for {what}\n{services.tail()}")


def start_redis(services: Services, folder: Path, env: dict) -> tuple[int, str]:
    """Celery's broker: a redis-server of its own on 127.0.0.1, with a password and nothing
    written to disk; its settings (the password among them) in a file only we can read."""
    if not REDIS_SERVER.exists():
        pytest.fail("no redis-server: `make redis` installs Debian's package")
    import redis

    port, password = free_port(), secrets.token_hex(24)
    folder.mkdir(mode=0o700)
    config = folder / "redis.conf"
    config.touch(mode=0o600)
    config.write_text("\n".join([
        "bind 127.0.0.1", f"port {port}", "protected-mode yes", f"requirepass {password}",
        'save ""', "appendonly no", f"dir {folder}", "daemonize no", 'logfile ""', ""]))
    process = services.start("redis", [str(REDIS_SERVER), str(config)], env)
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis(host="127.0.0.1", port=port, password=password,
                        socket_timeout=2).ping()
            return port, password
        except redis.exceptions.ConnectionError:
            assert process.poll() is None and time.monotonic() < deadline, services.tail()
            time.sleep(0.2)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    from devtools.synth import synthesize

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
    # A cluster policy (Airflow imports airflow_local_settings from $AIRFLOW_HOME/config): the
    # retry after the kill starts a second later, not after the DAG's 30-60 s first delay.
    (airflow_home / "config").mkdir()
    (airflow_home / "config" / "airflow_local_settings.py").write_text(
        "from datetime import timedelta\n\n\n"
        "def task_policy(task):\n"
        f"    task.retry_delay = timedelta(seconds={RETRY_DELAY_SECONDS})\n")
    database = f"airflow:{db_password}@127.0.0.1:{pg_port}/airflow"
    try:
        redis_port, redis_password = start_redis(services, root / "redis", os.environ.copy())
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",  # the workers' logs say at once which task each runs
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{database}",
            # As docker-compose.yml: Celery, Redis the broker, PostgreSQL the result backend.
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://:{redis_password}@127.0.0.1:{redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{database}",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
            "AIRFLOW__CORE__PARALLELISM": str(len(WORKERS) * WORKER_CONCURRENCY),
            # A killed worker's task is noticed within seconds, not the default 5 minutes: the
            # task's supervisor heartbeats every 2 s (default 5), the scheduler fails a task
            # silent for HEARTBEAT_TIMEOUT s (default 300) and looks every second (default 10).
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "1",
            # A task the killed worker had taken but not yet started never runs, so no heartbeat
            # goes missing: it waits in `queued` until this timeout (default 600 s, looked for
            # every 120 s) sends it back to be scheduled: half a minute here.
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(QUEUED_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE":
                str(airflow_home / "passwords.json"),
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
        # The log servers of the scheduler, triggerer and workers would listen on every
        # interface.
        services.start("api-server", [airflow, "api-server"], env)
        services.start("scheduler", [airflow, "scheduler", "--skip-serve-logs"], env)
        services.start("dag-processor", [airflow, "dag-processor"], env)
        services.start("triggerer", [airflow, "triggerer", "--skip-serve-logs"], env)
        workers = {name: services.start(name, [
            airflow, "celery", "worker", "--celery-hostname", name,
            "--concurrency", str(WORKER_CONCURRENCY), "--skip-serve-logs"], env)
            for name in WORKERS}
        api = Api(f"http://127.0.0.1:{api_port}")
        api.wait("the api-server", lambda: api.call("GET", "/api/v2/monitor/health"), 120,
                 services)
        api.token = api.call("POST", "/auth/token",
                             {"username": "admin", "password": secret})["access_token"]
        # Both workers consume from the broker before the run starts, so both get tasks.
        api.wait("both Celery workers", lambda: all(
            f"celery@{name} ready" in services.log(name) for name in WORKERS), 120, services)
        yield {"api": api, "services": services, "data_dir": data_dir, "workers": workers,
               "redis": (redis_port, redis_password)}
    finally:
        services.stop()
        shutil.rmtree(pgdata, ignore_errors=True)


def listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets these processes listen on (from `ss`)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        if any(f"pid={pid}," in line for pid in pids):
            address, port = line.split()[3].rsplit(":", 1)
            found.add((address, int(port)))
    return found


def worker_of(workers: dict, pid: int | None) -> str | None:
    """The worker whose process tree holds this pid (a task's process), if any."""
    for name, process in workers.items():
        if pid and running(process.pid) and pid in descendants(process.pid):
            return name
    return None


def tries_by_worker(services: Services) -> dict[tuple[str, int], str]:
    """(task instance id, try number) → the worker that ran it, from each worker's log line
    `Executing workload in Celery: … ti=TaskInstanceDTO(id=UUID('…'), … try_number=N, …`.
    (Both workers run on this machine, so a task instance's `hostname` is the same for both.)"""
    ran = {}
    for name in WORKERS:
        for line in services.log(name).splitlines():
            if "Executing workload" in line and (ti := re.search(
                    rf"\bti=\w+\(id=UUID\('({UUID.pattern})'\).*?\btry_number=(\d+)", line)):
                key = (ti[1], int(ti[2]))
                assert key not in ran, f"{key} ran on {ran[key]} and {name}"
                ran[key] = name
    return ran


def kill_a_worker_mid_task(api: Api, run_path: str, mapped_tasks: set[str], services: Services,
                           workers: dict) -> tuple[dict, str]:
    """Poll the run's task instances until one runs, preferring a mapped task (any task once the
    mapped ones are done); freeze the worker running it, and SIGKILL that worker's whole tree if
    the task is still running then. Return the task instance as it was killed, and the worker."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        instances = api.call("GET", f"{run_path}/taskInstances?limit=100")["task_instances"]
        mapped_done = not mapped_tasks or (
            any(t["map_index"] >= 0 for t in instances)
            and all(t["state"] in FINISHED for t in instances if t["task_id"] in mapped_tasks))
        candidates = [t for t in instances if t["state"] == "running" and t["pid"]
                      and (t["task_id"] in mapped_tasks or mapped_done)]
        for ti in candidates:
            if not (worker := worker_of(workers, ti["pid"])):
                continue
            path = f"{run_path}/taskInstances/{ti['task_id']}" + (
                f"/{ti['map_index']}" if ti["map_index"] >= 0 else "")
            # Frozen, the task cannot finish between this check and the kill.
            frozen, kill = freeze_tree(workers[worker].pid), False
            try:
                now = api.call("GET", path)
                kill = now["state"] == "running" and now["try_number"] == ti["try_number"]
            finally:
                signal_all(frozen, signal.SIGKILL if kill else signal.SIGCONT)
            if kill:
                gone = time.monotonic() + 10
                while any(running(p) for p in frozen) and time.monotonic() < gone:
                    time.sleep(0.1)
                return now, worker
        if api.call("GET", run_path)["state"] in FINISHED:
            break
        time.sleep(0.2)
    pytest.fail(f"no task of the run was caught running on a worker\n{services.tail()}")


def print_timeline(instances: list[dict], ran: dict[tuple[str, int], str]) -> None:
    """The run's tasks on a time axis, with the worker each ran on (`pytest -s` shows it;
    docs/deploy.md quotes one)."""
    start = min(datetime.fromisoformat(t["start_date"]) for t in instances)
    for t in sorted(instances, key=lambda t: (t["start_date"], t["try_number"])):
        begin = (datetime.fromisoformat(t["start_date"]) - start).total_seconds()
        end = (datetime.fromisoformat(t["end_date"]) - start).total_seconds()
        name = t["task_id"] + (f"[{t['map_index']}]" if t["map_index"] >= 0 else "")
        worker = ran.get((t["id"], t["try_number"]), "?")
        bar = "·" * int(begin) + "█" * max(1, int(end - begin))
        print(f"{name:16s} try {t['try_number']}  {worker:16s} {begin:6.1f}s → {end:6.1f}s  {bar}")


def test_a_year_survives_a_worker_killed_mid_task(deployment):
    api, services, data_dir, workers = (deployment[k] for k in
                                        ("api", "services", "data_dir", "workers"))
    import redis

    # The broker answers no one without its password.
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=deployment["redis"][0], socket_timeout=2).ping()

    dag = api.wait("the DAG to be parsed",
                   lambda: (d := api.call("GET", f"/api/v2/dags/{DAG_ID}")).get("dag_id") and d,
                   180, services)
    tasks = api.call("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]
    mapped_tasks = {t["task_id"] for t in tasks if t["is_mapped"]}
    # Every task retries, and the cluster policy reached the scheduler's copy of the DAG.
    assert all(t["retries"] >= 1 and t["retry_delay"]["days"] == 0 and
               t["retry_delay"]["seconds"] == RETRY_DELAY_SECONDS for t in tasks), tasks
    # Everything is up, both workers too: nothing listens beyond loopback, and the workers (no
    # log server) not at all.
    sockets = listening(services.pids())
    assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets
    assert not listening({p.pid for p in workers.values()} | {
        d for p in workers.values() for d in descendants(p.pid)})
    # Catchup is off, so unpausing starts the run of the latest scheduled date (a year ago at
    # most); triggered on that date, ours is that run, and the scheduler starts no other.
    assert dag["is_paused"] and dag["next_dagrun_logical_date"], dag
    run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {
        "dag_run_id": "integration-2025",
        "logical_date": dag["next_dagrun_logical_date"],
        "conf": {"survey_year": YEAR},
    })
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}"

    killed, dead = kill_a_worker_mid_task(api, run_path, mapped_tasks, services, workers)
    assert not any(running(p) for p in {workers[dead].pid} | descendants(workers[dead].pid))
    (alive,) = set(WORKERS) - {dead}

    state = api.wait(
        "the run to finish",
        lambda: (s := api.call("GET", run_path)["state"]) in ("success", "failed") and s,
        600, services)
    assert state == "success", services.tail()
    assert api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")["total_entries"] == 1

    # Every task succeeded; the killed one on a later try, on the worker left.
    instances = api.call("GET", f"{run_path}/taskInstances?limit=100")["task_instances"]
    ran = tries_by_worker(services)
    print(f"\nkilled {dead} while it ran {killed['task_id']}[{killed['map_index']}] "
          f"try {killed['try_number']}")
    # The killed try as well, as the history of tries keeps it (with no id: it is killed's).
    path = f"{run_path}/taskInstances/{killed['task_id']}" + (
        f"/{killed['map_index']}" if killed["map_index"] >= 0 else "") + "/tries"
    tries = {t["try_number"]: t for t in api.call("GET", path)["task_instances"]}
    print_timeline(instances + [{**tries[killed["try_number"]], "id": killed["id"]}], ran)
    assert all(t["state"] == "success" for t in instances), instances
    (retried,) = [t for t in instances if (t["task_id"], t["map_index"]) ==
                  (killed["task_id"], killed["map_index"])]
    assert retried["try_number"] > killed["try_number"]
    assert ran[killed["id"], killed["try_number"]] == dead
    assert ran[retried["id"], retried["try_number"]] == alive
    assert tries[killed["try_number"]]["state"] in ("failed", "up_for_retry"), tries
    # Each try of every task ran on one worker, and each worker ran some.
    assert all((t["id"], t["try_number"]) in ran for t in instances), (instances, ran)
    assert set(ran.values()) == set(WORKERS), ran

    # Nothing counted twice or lost: every row read is accounted for, per file and in total.
    accounting = json.loads((data_dir / "output" / str(YEAR) / "accounting.json").read_text())
    outcomes = ("accepted", "rejected", "superseded", "duplicate")
    total = accounting["total"]
    assert accounting["files_received"] == KEPT_FILES and accounting["files_quarantined"] >= 1
    read = [f for f in accounting["files"] if f["status"] == "read"]
    assert len(read) == accounting["files_read"] == KEPT_FILES - accounting["files_quarantined"]
    for entry in read:
        assert entry["rows_read"] == sum(entry[k] for k in outcomes) > 0, entry
    for key in ("rows_read", *outcomes):
        assert total[key] == sum(f[key] for f in read), key
    assert total["rows_read"] == sum(total[k] for k in outcomes) > 0
    manifest = json.loads(
        (data_dir / "published" / "manifest" / f"{YEAR}.json").read_text())
    assert manifest["run_id"] == run["dag_run_id"]
    assert manifest["accounting"]["rows_read"] == total["rows_read"]

    # The run outlived its deadline: the triggerer ran the alert, which reached the data root.
    # A task that was retried and then succeeded raised no alert.
    alerts_file = data_dir / "alerts" / "alerts.jsonl"
    alerts = api.wait("the deadline alert", lambda: [
        a for a in map(json.loads, alerts_file.read_text().splitlines())
        if a["kind"] == "deadline_missed"] if alerts_file.exists() else None, 60, services)
    assert alerts[0]["deadline_hours"] == 0.0005
    assert [a["kind"] for a in map(json.loads, alerts_file.read_text().splitlines())
            ] == ["deadline_missed"]

    # Nothing the test started listens beyond loopback; Redis and PostgreSQL do, there.
    sockets = listening(services.pids())
    assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets
    assert deployment["redis"][0] in {port for _, port in sockets}
