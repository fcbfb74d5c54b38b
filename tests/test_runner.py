"""The in-process runner: files grouped into batches, checked together as the DAG checks them
one by one."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import YEAR, good_return, raw_frame

from pipeline.config import Settings
from pipeline.runner import file_batches
from pipeline.validate import validate_file, validate_files


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_batches_hold_every_file_once_and_share_the_work(tmp_path, workers):
    sizes = [900, 500, 400, 300, 300, 200, 100, 50, 10, 0]
    paths = []
    for number, size in enumerate(sizes):
        path = tmp_path / f"f{number}.csv"
        path.write_bytes(b"x" * size)
        paths.append(path)
    batches = file_batches(paths, workers, batch_bytes=600)
    assert sorted(p.name for batch in batches for p in batch) == sorted(p.name for p in paths)
    assert len(batches) % workers == 0 and all(batches)
    totals = [sum(p.stat().st_size for p in batch) for batch in batches]
    # Largest first into the lightest batch: no batch is heavier than the lightest by more than
    # the largest file it holds.
    assert max(totals) - min(totals) <= max(sizes)
    assert all(batch == sorted(batch, key=lambda p: p.name) for batch in batches)


def test_one_file_and_no_file_make_one_batch_or_none(tmp_path):
    only = tmp_path / "only.csv"
    only.write_bytes(b"x" * 10)
    assert file_batches([only], 2, batch_bytes=1) == [[only]]
    assert file_batches([], 2) == []


def test_files_checked_together_get_the_verdicts_they_get_alone(tmp_path):
    settings = Settings(data_dir=tmp_path)
    raw_dir = settings.raw_dir(YEAR)
    raw_dir.mkdir(parents=True)
    files = {
        "a.csv": raw_frame(good_return(), good_return(employees="x", std_staff="2.5"),
                           source_file="a.csv"),
        "b.csv": raw_frame(good_return(credit_code="91330108123456788X"),
                           good_return(region_code="110101", contact_phone="n/a"),
                           good_return(), source_file="b.csv"),
    }
    paths = []
    for name, frame in files.items():
        frame.write_parquet(raw_dir / f"{name}.parquet")
        paths.append(raw_dir / f"{name}.parquet")
    alone = {}
    for path in paths:
        result = validate_file(settings, YEAR, path)
        alone[result["source_file"]] = (result, pl.read_parquet(result["checked_path"]))
    together = validate_files(settings, YEAR, paths)
    assert [r["source_file"] for r in together] == ["a.csv", "b.csv"]
    for result in together:
        expected_result, expected_rows = alone[result["source_file"]]
        assert result == expected_result
        assert pl.read_parquet(result["checked_path"]).equals(expected_rows)
    assert sum(r["rejected"] for r in together) == 3
