#!/usr/bin/env bash
# Parse docker-compose.yml with a real compose implementation: docker-compose 1.29.2, the last one
# on PyPI (this machine has no compose plugin and no Docker daemon). `config` interpolates every
# ${VAR}, merges the anchors and validates against the Compose Specification, all offline.
# Installs once into .tools/compose (about 25 s, most of it building PyYAML 5.4.1), then ~1 s a run.
# Exits non-zero if the file does not parse or a required variable is missing from .env.example.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.tools/compose"
COMPOSE="$VENV/bin/docker-compose"
STAMP="$VENV/.installed-1.29.2"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [[ ! -f "$STAMP" ]]; then
    # A half-finished install from an interrupted run is not trusted.
    rm -rf "$VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
    # PyYAML 5.4.1 (compose 1.29's pin) only builds from source with Cython 2; PIP_CONSTRAINT
    # reaches pip's isolated build environment, a --constraint flag would not.
    echo 'cython<3' > "$tmp/constraints.txt"
    # setuptools brings back distutils, which compose imports and Python 3.12 dropped.
    PIP_CONSTRAINT="$tmp/constraints.txt" "$VENV/bin/pip" install --quiet --no-input \
        docker-compose==1.29.2 setuptools
    touch "$STAMP"
fi

# Every value .env.example leaves empty (the secrets) gets a dummy, so `config` fails only on a
# variable the compose file requires and .env.example does not list.
sed -E 's/^([A-Za-z_][A-Za-z0-9_]*)=$/\1=dummy-\1/' "$REPO/.env.example" > "$tmp/env"

# A clean environment: a variable exported in this shell would otherwise win over the env file
# and hide one missing from .env.example.
env -i PATH="$PATH" HOME="$HOME" \
    "$COMPOSE" --project-directory "$REPO" --file "$REPO/docker-compose.yml" \
    --env-file "$tmp/env" config --quiet
echo "docker-compose.yml: parsed by docker-compose 1.29.2"
