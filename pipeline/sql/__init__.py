"""DuckDB statements, one per file, each with its grain in a comment at the top, and the
connection the steps run them on."""

import os
from functools import cache
from pathlib import Path

import duckdb

from pipeline.config import Settings, closed_dir

#: DuckDB's memory a thread needs at the least here. DuckDB otherwise takes a thread per core
#: and shares its limit among them: aggregate's cells at 5M returns ran out of 1,024 MB on 4
#: threads and spilled for 218 s in 1,536 MB on 8, against 21-27 s on 2 (DuckDB's own advice
#: for aggregation is 1-2 GB a thread).
MB_PER_THREAD = 512


@cache
def statement(name: str) -> str:
    return (Path(__file__).parent / f"{name}.sql").read_text(encoding="utf-8")


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for a step's work, held to settings.duckdb_memory_mb and to the
    threads that memory can feed: what does not fit spills to tmp/duckdb/ under the data root,
    closed like the rows it holds."""
    spill = closed_dir(settings.data_dir / "tmp" / "duckdb")
    return duckdb.connect(config={"memory_limit": f"{settings.duckdb_memory_mb}MB",
                                  "temp_directory": str(spill),
                                  "threads": threads(settings.duckdb_memory_mb)})


def threads(memory_mb: int) -> int:
    """DuckDB's threads: one a core this process may run on, at most one per MB_PER_THREAD."""
    return max(1, min(len(os.sched_getaffinity(0)), memory_mb // MB_PER_THREAD))
