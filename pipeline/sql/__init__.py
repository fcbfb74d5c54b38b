"""DuckDB statements, one per file, each with its grain in a comment at the top."""

from functools import cache
from pathlib import Path


@cache
def statement(name: str) -> str:
    return (Path(__file__).parent / f"{name}.sql").read_text(encoding="utf-8")
