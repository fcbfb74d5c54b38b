# The survey's Airflow image: the official Airflow image plus this project, installed from uv.lock.
# The FROM tag follows the apache-airflow version locked in uv.lock (tests/test_compose.py checks).
# Extra packages go into the image at build time, never through the official image's
# install-at-start variable, which reinstalls on every container start and ignores the lock.

# uv pinned like the Makefile's: an older uv may not read the lock, a newer one may export it
# differently. It comes from PyPI into a throwaway venv so it never lands in Airflow's environment.
ARG UV_VERSION=0.13.8

# --- lock: turn uv.lock into a hashed requirements file and build the project's wheel ----------
# Same base as the runtime stage, so the build pulls one image, not two.
FROM apache/airflow:3.3.2-python3.11 AS lock
ARG UV_VERSION
# Fail instead of fetching a Python of uv's own if the image's ever stops matching requires-python.
ENV UV_PYTHON_DOWNLOADS=never
RUN python -m venv /tmp/uv && /tmp/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
# Only the lock first: the export layer (and the slow install below) is reused until it changes.
COPY --chown=airflow:0 pyproject.toml uv.lock /tmp/src/
RUN cd /tmp/src && /tmp/uv/bin/uv export --locked --no-dev --no-emit-project \
        --format requirements-txt --output-file /tmp/requirements.txt
# hatchling reads README.md for the wheel's metadata.
COPY --chown=airflow:0 README.md /tmp/src/
COPY --chown=airflow:0 pipeline /tmp/src/pipeline
COPY --chown=airflow:0 schemas /tmp/src/schemas
RUN cd /tmp/src && /tmp/uv/bin/uv build --wheel --out-dir /tmp/dist

# --- runtime ----------------------------------------------------------------------------------
FROM apache/airflow:3.3.2-python3.11
ARG UV_VERSION
# Airflow imports 2-3x faster from compiled bytecode, and the base image ships none (its build
# deletes every .pyc): without it each new container compiles Airflow again on first import.
ENV UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never

# As the airflow user into the image's own environment (VIRTUAL_ENV=~/.local), as the image
# expects; --require-hashes makes every download match the lock byte for byte.
# uv compiles only what it installs: packages the base image already had at the locked version
# (Airflow itself) are compiled by compileall, which like uv skips files that do not compile.
COPY --from=lock --chown=airflow:0 /tmp/requirements.txt /tmp/requirements.txt
RUN python -m venv /tmp/uv && /tmp/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}" \
    && /tmp/uv/bin/uv pip install --require-hashes --requirements /tmp/requirements.txt \
    && python -c "import compileall, sysconfig; \
compileall.compile_dir(sysconfig.get_path('purelib'), quiet=2, workers=0)" \
    && rm -rf /tmp/uv /tmp/requirements.txt

# The project alone, its dependencies being exactly the lock's above.
COPY --from=lock --chown=airflow:0 /tmp/dist/ /tmp/dist/
RUN python -m venv /tmp/uv && /tmp/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}" \
    && /tmp/uv/bin/uv pip install --no-deps /tmp/dist/*.whl \
    && rm -rf /tmp/uv /tmp/dist

# A fresh named volume takes the owner of the directory it is mounted on: created here, owned by
# airflow, the data and auth volumes are writable without a root init step.
USER root
RUN mkdir -p /opt/survey/data /opt/airflow/auth \
    && chown airflow:0 /opt/survey/data /opt/airflow/auth \
    && chmod 0775 /opt/survey/data \
    && chmod 0700 /opt/airflow/auth
USER airflow

ENV SURVEY_DATA_DIR=/opt/survey/data
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
