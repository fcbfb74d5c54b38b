"""DuckDB statements, one per file, each with its grain in a comment at the top, and the
connection the steps run them on."""

from functools import cache
from pathlib import Path

import duckdb

from pipeline.config import Settings, closed_dir


@cache
def statement(name: str) -> str:
    return (Path(__file__).parent / f"{name}.sql").read_text(encoding="utf-8")


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for a step's work, held to settings.duckdb_memory_mb: what does not
    fit spills to tmp/duckdb/ under the data root, closed like the rows it holds."""
    spill = closed_dir(settings.data_dir / "tmp" / "duckdb")
    return duckdb.connect(config={"memory_limit": f"{settings.duckdb_memory_mb}MB",
                                  "temp_directory": str(spill)})
