"""One typed settings object, read from the environment (see .env.example)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    max_file_bytes: int = 200 * MIB
    max_file_rows: int = 1_000_000
    max_expansion_ratio: float = 100.0
    max_expanded_bytes: int = 1024 * MIB

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        env = os.environ
        settings = cls(
            data_dir=Path(env.get("SURVEY_DATA_DIR", "data")),
            max_file_bytes=int(float(env.get("SURVEY_MAX_FILE_MB", 200)) * MIB),
            max_file_rows=int(env.get("SURVEY_MAX_FILE_ROWS", 1_000_000)),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    # The layers of a year (design.md, "The value chain").
    def landing_dir(self, year: int) -> Path:
        return self.data_dir / "landing" / str(year)

    def frame_path(self, year: int) -> Path:
        return self.data_dir / "frame" / f"{year}.csv"

    def raw_dir(self, year: int) -> Path:
        return self.data_dir / "raw" / str(year)

    def checked_dir(self, year: int) -> Path:
        return self.data_dir / "checked" / str(year)

    def valid_path(self, year: int) -> Path:
        return self.data_dir / "valid" / str(year) / "returns.parquet"

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


def survey_year_for(param: int | str | None, logical_date: datetime | None) -> int:
    """The year a run processes: the param if given, else the year before the logical date."""
    if param not in (None, ""):
        return int(param)
    if logical_date is None:
        raise ValueError("no survey_year param and no logical date to derive it from")
    return logical_date.year - 1
