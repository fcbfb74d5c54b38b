"""Deployment files, checked structurally (no Docker daemon here): docker-compose.yml, Dockerfile,
.dockerignore and .env.example against each other, uv.lock and the DAG.

ops/compose-config.sh runs a real compose parser on top of this.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

INIT = "airflow-init"
#: Each Airflow 3.3 component and the CLI command that starts it (the image's entrypoint adds
#: `airflow`); `airflow --help` / `airflow celery --help` list them with the celery provider.
COMPONENTS = {
    "airflow-api-server": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
WORKER_COMMAND = "celery worker"
#: A variable whose name says it is a secret must never get a default.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|(^|_)KEY$")
#: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}.
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _strings(node) -> list[str]:
    """Every string compose interpolates: keys and values, not YAML comments."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def _interpolations(compose: dict) -> list[tuple[str, str, str]]:
    """(name, operator, argument) of every compose interpolation; `$$` is a literal dollar."""
    text = "\n".join(_strings(compose)).replace("$$", "")
    bare = re.findall(r"\$(?!\{)[A-Za-z_]\w*", text)
    assert not bare, f"use ${{VAR}}, not bare $VAR, so every variable is checked: {bare}"
    return [(m[1], m[2] or "", m[3] or "") for m in INTERPOLATION.finditer(text)]


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


@pytest.fixture(scope="module")
def raw() -> str:
    return COMPOSE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(raw) -> dict:
    # safe_load resolves the x-airflow-common anchors and `<<` merges as compose does.
    return yaml.safe_load(raw)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def workers(services) -> dict:
    return {n: s for n, s in services.items() if _command(s) == WORKER_COMMAND}


@pytest.fixture(scope="module")
def airflow_services(services) -> dict:
    return {n: s for n, s in services.items() if "build" in s}


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        assert match, f".env.example:{number} is not a plain KEY=value line: {line!r}"
        values[match[1]] = match[2]
    return values


def _lock_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    (version,) = {p["version"] for p in lock["package"] if p["name"] == package}
    return version


# --- compose file -------------------------------------------------------------------------------


def test_compose_parses_without_top_level_name(compose):
    assert isinstance(compose, dict) and compose.get("services")
    # docker-compose 1.29 rejects a top-level `name`.
    assert "name" not in compose


def test_required_services(services, workers):
    for name in ("postgres", "redis", INIT, *COMPONENTS):
        assert name in services, f"missing service {name}"
    for name, command in COMPONENTS.items():
        assert _command(services[name]) == command
    assert len(workers) >= 2, "the DAG's mapped tasks need at least two Celery workers"


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name == INIT:
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and not service["healthcheck"].get("disable"), f"{name} has no healthcheck"
        assert service.get("restart") == "always", name


def test_startup_order_waits_for_health_and_init(services, airflow_services):
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            wanted = "service_completed_successfully" if target == INIT else "service_healthy"
            assert rule["condition"] == wanted, f"{name} -> {target}"
    for name, service in airflow_services.items():
        assert {"postgres", "redis"} <= set(service["depends_on"]), name
        if name != INIT:
            assert INIT in service["depends_on"], f"{name} starts before the database is migrated"
    assert services[INIT].get("restart", "no") == "no"


def test_healthchecks_probe_each_component(services, workers):
    def probe(name):
        test = services[name]["healthcheck"]["test"]
        return " ".join(test) if isinstance(test, list) else test

    assert "pg_isready" in probe("postgres")
    assert "redis-cli" in probe("redis") and "ping" in probe("redis")
    assert re.search(r"localhost:8080/api/v2/(version|monitor/health)", probe("airflow-api-server"))
    for name, job in (("airflow-scheduler", "SchedulerJob"),
                      ("airflow-dag-processor", "DagProcessorJob"),
                      ("airflow-triggerer", "TriggererJob")):
        assert f"airflow jobs check --job-type {job}" in probe(name), name
        assert "$${HOSTNAME}" in probe(name), f"{name} must check its own job, not any"
    for name in workers:
        assert "celery_executor.app inspect ping" in probe(name), name
        assert 'celery@$${HOSTNAME}' in probe(name), name


def test_airflow_services_share_one_image_built_here(airflow_services):
    assert set(airflow_services) == {INIT, *COMPONENTS} | {
        n for n, s in airflow_services.items() if _command(s) == WORKER_COMMAND}
    images = {s["image"] for s in airflow_services.values()}
    assert images == {"zj-std-survey-airflow:${SURVEY_IMAGE_TAG:-latest}"}
    for name, service in airflow_services.items():
        assert service["build"] == {"context": "."}, name


def test_celery_executor_and_execution_api(services, airflow_services):
    for name, service in airflow_services.items():
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        # Interpolations out first: the password's `${…:?message}` holds a `?`.
        broker = INTERPOLATION.sub("x", env["AIRFLOW__CELERY__BROKER_URL"])
        assert urlsplit(broker).hostname == "redis", name
        url = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        # Airflow 3 workers run tasks through the api-server, so it must name that service.
        assert _command(services[url.hostname]) == "api-server", name
        assert url.port == 8080 and url.path == "/execution/", name


def test_redis_requires_the_password_the_broker_url_carries(services, airflow_services):
    redis = services["redis"]
    password = r"\$\{REDIS_PASSWORD:\?[^}]*\}"
    command = redis["command"]
    assert command[0] == "redis-server"
    assert re.fullmatch(password, command[command.index("--requirepass") + 1]), command
    # redis-cli exits 0 even on NOAUTH: the healthcheck authenticates and looks for PONG.
    assert re.fullmatch(password, redis["environment"]["REDISCLI_AUTH"])
    assert "grep -q PONG" in " ".join(redis["healthcheck"]["test"])
    for name, service in airflow_services.items():
        broker = service["environment"]["AIRFLOW__CELERY__BROKER_URL"]
        assert re.fullmatch(rf"redis://:{password}@redis:6379/\d+", broker), name


def test_workers_share_the_data_volume_and_dags(compose, workers):
    named_volumes = set(compose.get("volumes") or {})
    data_mounts, dags_mounts, data_dirs = set(), set(), set()
    for name, worker in workers.items():
        volumes = [v.split(":") for v in worker["volumes"]]
        data = [(src, dst) for src, dst, *_ in volumes if src in named_volumes
                and dst == worker["environment"]["SURVEY_DATA_DIR"]]
        assert len(data) == 1, f"{name}: SURVEY_DATA_DIR is not a named volume mount"
        data_mounts.add(data[0])
        data_dirs.add(worker["environment"]["SURVEY_DATA_DIR"])
        dags_mounts |= {(src, dst) for src, dst, *_ in volumes if dst == "/opt/airflow/dags"}
    assert len(data_mounts) == 1, f"workers mount different data volumes: {data_mounts}"
    assert len(data_dirs) == 1
    assert dags_mounts == {("./dags", "/opt/airflow/dags")}
    hostnames = [w.get("hostname") for w in workers.values()]
    assert len(set(hostnames)) == len(hostnames), "two workers with one celery node name"


def test_admin_password_file_only_where_it_is_used(services, airflow_services):
    auth_manager = {s["environment"].get("AIRFLOW__CORE__AUTH_MANAGER") for s in
                    airflow_services.values()}
    # Airflow 3.3's default is the SimpleAuthManager; FAB's needs a provider the lock lacks.
    assert auth_manager <= {None, "airflow.api_fastapi.auth.managers.simple."
                                  "simple_auth_manager.SimpleAuthManager"}
    password_file = {s["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
                     for s in airflow_services.values()}
    assert len(password_file) == 1
    folder = str(Path(password_file.pop()).parent)
    mounted = {name for name, s in services.items()
               for v in s.get("volumes", []) if v.split(":")[1] == folder}
    assert mounted == {INIT, "airflow-api-server"}
    assert "AIRFLOW_ADMIN_PASSWORD" in services[INIT]["environment"]
    assert all("AIRFLOW_ADMIN_PASSWORD" not in s.get("environment", {})
               for n, s in services.items() if n != INIT)


def test_init_migrates_and_creates_the_dag_pool(services):
    script = _command(services[INIT])
    pool = re.search(r'^\s*WRITER_POOL\s*=\s*"([^"]+)"',
                     (ROOT / "dags" / "annual_standardisation_survey.py").read_text("utf-8"),
                     re.MULTILINE)
    assert pool, "the DAG no longer names its writer pool in WRITER_POOL"
    assert pool[1] == "survey_duckdb"
    assert "airflow db migrate" in script
    assert re.search(rf'airflow pools set {pool[1]} 1 "[^"]+"', script), "one-slot pool missing"


# --- variables and secrets ----------------------------------------------------------------------


def test_every_compose_variable_is_in_env_example(compose, env_example):
    used = {name for name, _, _ in _interpolations(compose)}
    missing = used - set(env_example)
    assert not missing, f"docker-compose.yml reads {sorted(missing)}, .env.example lacks them"


def test_secrets_are_required_and_empty_in_env_example(compose, env_example):
    uses = _interpolations(compose)
    required = {name for name, op, _ in uses if op in (":?", "?")}
    secrets = {name for name, _, _ in uses if SECRET_NAME.search(name)}
    assert {"AIRFLOW_FERNET_KEY", "POSTGRES_PASSWORD", "AIRFLOW_ADMIN_PASSWORD",
            "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "REDIS_PASSWORD"} <= secrets
    for name, op, _ in uses:
        if name in secrets:
            assert op == ":?", f"${{{name}}} must be ${{{name}:?...}}: a secret has no default"
    for name in required | secrets:
        assert env_example[name] == "", f".env.example must leave {name} empty"
    # Nothing secret set in the environment keys themselves either.
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and "PASSWORDS_FILE" not in key:
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", str(value)), f"{name}.{key}"


def test_database_urls_take_the_password_from_the_environment(airflow_services):
    for name, service in airflow_services.items():
        env = service["environment"]
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            assert re.search(r"://\S*?:\$\{POSTGRES_PASSWORD:\?[^}]*\}@postgres:",
                             env[key]), f"{name}.{key}"


def test_no_pip_additional_requirements_anywhere():
    # The official image's shortcut reinstalls on every start and bypasses uv.lock.
    for path in (COMPOSE, DOCKERFILE, ENV_EXAMPLE):
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in path.read_text(encoding="utf-8"), path.name


# --- image --------------------------------------------------------------------------------------


def test_dockerfile_base_matches_the_lock_and_python():
    text = DOCKERFILE.read_text(encoding="utf-8")
    bases = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert bases, "Dockerfile has no FROM"
    airflow = _lock_version("apache-airflow")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    python = re.search(r">=\s*(\d+\.\d+)", requires["requires-python"])[1]
    for base in bases:
        assert base == f"apache/airflow:{airflow}-python{python}", base


def test_dockerfile_installs_from_the_lock():
    text = DOCKERFILE.read_text(encoding="utf-8")
    makefile_uv = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text("utf-8"),
                            re.MULTILINE)
    assert makefile_uv, "the Makefile no longer pins UV_VERSION"
    assert re.search(rf"^ARG UV_VERSION={re.escape(makefile_uv[1])}$", text, re.MULTILINE), \
        "the image's uv differs from the Makefile's"
    assert re.search(r"uv export --locked --no-dev --no-emit-project", text)
    assert "--require-hashes" in text
    assert re.search(r"uv pip install --no-deps ", text), "the project must not re-resolve deps"
    assert re.search(r"^ENV UV_COMPILE_BYTECODE=1", text, re.MULTILINE)
    # uv compiles only what it installs; the base image's own Airflow needs compileall.
    assert "compileall" in text
    for folder in ("dags", "pipeline", "schemas"):
        assert re.search(rf"^COPY .*\b{folder}\b", text, re.MULTILINE), folder


def test_dockerignore_keeps_local_state_and_secrets_out():
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", "data", ".airflow", ".bench", ".tools", ".git", ".env"} <= ignored
    assert ignored & {"__pycache__", "**/__pycache__"}
