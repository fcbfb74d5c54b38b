"""One typed settings object, read from the environment (see .env.example)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from pipeline.errors import ConfigError

MIB = 1024 * 1024
#: Folders and files of the closed tiers (everything but landing/, frame/ and the public part of
#: published/): owner only, whatever umask the process was started with.
CLOSED_DIR, CLOSED_FILE = 0o700, 0o600
#: The public part of a snapshot: anyone on the machine may read it.
OPEN_DIR, OPEN_FILE = 0o755, 0o644


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    max_file_bytes: int = 200 * MIB
    max_file_rows: int = 1_000_000
    max_expansion_ratio: float = 100.0
    max_expanded_bytes: int = 1024 * MIB
    #: Workers that share a year's check tasks on a deployment: batches come in multiples of it.
    check_workers: int = 2
    #: Memory a step's DuckDB may hold before it spills to disk (a million returns need ~1 GB).
    duckdb_memory_mb: int = 1536

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        settings = cls(
            data_dir=Path(os.environ.get("SURVEY_DATA_DIR") or "data"),
            max_file_bytes=int(_number("SURVEY_MAX_FILE_MB", 200) * MIB),
            max_file_rows=int(_number("SURVEY_MAX_FILE_ROWS", 1_000_000, whole=True)),
            check_workers=int(_number("SURVEY_CHECK_WORKERS", 2, whole=True)),
            duckdb_memory_mb=int(_number("SURVEY_DUCKDB_MEMORY_MB", 1536, whole=True)),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    # The layers of a year (design.md, "The value chain").
    def landing_dir(self, year: int) -> Path:
        return self.data_dir / "landing" / str(year)

    def frame_path(self, year: int) -> Path:
        return self.data_dir / "frame" / f"{year}.csv"

    def checked_dir(self, year: int) -> Path:
        return self.data_dir / "checked" / str(year)

    def valid_dir(self, year: int) -> Path:
        return self.data_dir / "valid" / str(year)

    def output_dir(self, year: int) -> Path:
        return self.data_dir / "output" / str(year)

    def statistical_dir(self, year: int) -> Path:
        return self.data_dir / "statistical" / str(year)

    @property
    def published_dir(self) -> Path:
        """A symbolic link to the current snapshot: swapping it publishes a year atomically."""
        return self.data_dir / "published"

    @property
    def snapshots_dir(self) -> Path:
        return self.data_dir / "snapshots"


def _number(name: str, default: float, whole: bool = False) -> float:
    """A positive number from the environment, or a ConfigError that names the variable."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{name} must be {kind} above 0, not {text!r}")
    return value


def close_new_files() -> None:
    """Create every file and folder owner-only from here on (this process and its children);
    publication opens up the public tier explicitly."""
    os.umask(0o077)


def closed_dir(path: Path) -> Path:
    """A folder of a closed tier, made or closed to owner only (mkdir alone leaves an existing
    folder's mode, and the umask, as they are)."""
    path.mkdir(mode=CLOSED_DIR, parents=True, exist_ok=True)
    path.chmod(CLOSED_DIR)
    return path


def survey_year_for(param: int | str | None, logical_date: datetime | None) -> int:
    """The year a run processes: the param if given, else the year before the logical date."""
    if param not in (None, ""):
        return int(param)
    if logical_date is None:
        raise ValueError("no survey_year param and no logical date to derive it from")
    return logical_date.year - 1
