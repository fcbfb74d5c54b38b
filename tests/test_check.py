"""The check step: landed files grouped into batches, each read and checked in one pass, the
verdicts the same whichever files share a batch."""

from __future__ import annotations

import csv
import io

import polars as pl
import pytest
from conftest import YEAR, good_return

from pipeline.check import batch_name, check_batch, checked_bytes, landed_batches
from pipeline.config import Settings
from pipeline.errors import BatchFailed
from schemas.form import FORM_COLUMNS


def landed(settings: Settings, files: dict[str, bytes]) -> list:
    folder = settings.landing_dir(YEAR)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return sorted(folder / name for name in files)


def csv_of(*rows: dict) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(FORM_COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_batches_hold_every_file_once_and_share_the_work(tmp_path, workers):
    settings = Settings(data_dir=tmp_path)
    sizes = [900, 500, 400, 300, 300, 200, 100, 50, 10, 0]
    paths = landed(settings, {f"f{number}.csv": b"x" * size
                              for number, size in enumerate(sizes)})
    batches = landed_batches(settings, YEAR, workers, batch_bytes=600)
    assert sorted(p.name for batch in batches for p in batch) == sorted(p.name for p in paths)
    assert all(batches)
    totals = [sum(p.stat().st_size for p in batch) for batch in batches]
    # Files heavier than their share go alone; the rest fill a multiple of `workers` batches.
    shared = [batch for batch in batches if len(batch) > 1]
    assert len(shared) % workers == 0
    # Largest first into the lightest batch: no batch is heavier than the lightest by more than
    # the largest file it holds.
    assert max(totals) - min(totals) <= max(sizes)
    assert all(batch == sorted(batch, key=lambda p: p.name) for batch in batches)


@pytest.mark.parametrize("workers", [2, 3])
def test_one_large_file_goes_alone_and_the_rest_are_shared(tmp_path, workers):
    # A file heavier than its share (a city's whole year, say) is checked alone.
    settings = Settings(data_dir=tmp_path)
    small = {f"county_{number:02}.csv": b"x" * (100 + number) for number in range(30)}
    landed(settings, {"online_full_dump.csv": b"x" * 20_000, **small})
    batches = landed_batches(settings, YEAR, workers, batch_bytes=30_000)
    assert batches[0] == [settings.landing_dir(YEAR) / "online_full_dump.csv"]
    assert len(batches) == 1 + workers
    totals = [sum(p.stat().st_size for p in batch) for batch in batches[1:]]
    assert max(totals) - min(totals) <= 129


@pytest.mark.parametrize(("dump_rows", "weighed"), [(400, False), (101, False), (100, True),
                                                    (99, True)])
def test_a_csv_over_the_row_limit_weighs_nothing(tmp_path, dump_rows, weighed):
    # Refused on a count of its lines (F305), its bytes are no work: by its size it would go
    # alone, and leave the county files to the other worker.
    settings = Settings(data_dir=tmp_path, max_file_rows=100)
    blank_row = b"2025" + b"," * (len(FORM_COLUMNS) - 1) + b"\n"
    dump = ",".join(FORM_COLUMNS).encode() + b"\n" + blank_row * dump_rows
    counties = {f"county_{number}.csv": b"x" * (300 + number) for number in range(6)}
    landed(settings, {"online_full_dump.csv": dump, **counties})
    batches = landed_batches(settings, YEAR, 2, batch_bytes=sum(map(len, counties.values())))
    dump_batch = next(b for b in batches if any(p.name == "online_full_dump.csv" for p in b))
    assert (dump_batch == [settings.landing_dir(YEAR) / "online_full_dump.csv"]) is weighed
    if not weighed:
        assert len(batches) == 2
        totals = [sum(p.stat().st_size for p in batch if p.name in counties) for batch in batches]
        assert max(totals) - min(totals) <= 305
    verdict = {r["source_file"]: r for r in check_batch(settings, YEAR, dump_batch)}
    assert verdict["online_full_dump.csv"]["rule"] == (None if weighed else "F305")


def test_a_csv_just_at_the_row_limit_is_counted_not_guessed_from_its_head(tmp_path):
    # An exporter's part stops at the limit; its first rows are shorter than the rest, so its
    # head alone would put it over.
    settings = Settings(data_dir=tmp_path, max_file_rows=2_000)
    header = ",".join(FORM_COLUMNS).encode() + b"\n"
    (part,) = landed(settings, {"export_p1.csv": header + b"2025,x\n" * 1_000
                                + (b"2025," + b"y" * 100 + b"\n") * 1_000})
    assert checked_bytes(settings, part) == part.stat().st_size
    with part.open("ab") as f:
        f.write(b"2025,x\n")
    assert checked_bytes(settings, part) == 0


def test_a_quoted_csv_over_the_row_limit_weighs_its_size(tmp_path):
    # A quote can join lines into one row: such a file is parsed up to the limit, not counted.
    settings = Settings(data_dir=tmp_path, max_file_rows=100)
    rows = b"credit_code,enterprise_name\n" + b'x,"a, b"\n' * 400
    plain, quoted = landed(settings, {"plain.csv": rows.replace(b'"', b""), "quoted.csv": rows})
    assert checked_bytes(settings, quoted) == quoted.stat().st_size
    assert checked_bytes(settings, plain) == 0


def test_one_file_and_no_file_make_one_batch_or_none(tmp_path):
    settings = Settings(data_dir=tmp_path)
    landed(settings, {})
    assert landed_batches(settings, YEAR, 2) == []
    only = landed(settings, {"only.csv": b"x" * 10})
    assert landed_batches(settings, YEAR, 2, batch_bytes=1) == [only]


def test_files_checked_together_get_the_verdicts_they_get_alone(tmp_path):
    files = {
        "a.csv": csv_of(good_return(), good_return(employees="x", std_staff="2.5")),
        "b.csv": csv_of(good_return(credit_code="91330108123456788X"),
                        good_return(region_code="110101", contact_phone="n/a"), good_return()),
        "c.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64),
    }
    alone_settings = Settings(data_dir=tmp_path / "alone")
    paths = landed(alone_settings, files)
    alone = {}
    for path in paths:
        (report,) = check_batch(alone_settings, YEAR, [path])
        rows = (pl.read_parquet(report["checked_path"]) if report["checked_path"]
                else None)
        alone[report["source_file"]] = (report, rows)

    settings = Settings(data_dir=tmp_path / "together")
    together = check_batch(settings, YEAR, landed(settings, files))
    assert [r["source_file"] for r in together] == ["a.csv", "b.csv", "c.xls"]
    (checked_path,) = {r["checked_path"] for r in together} - {None}
    rows = pl.read_parquet(checked_path)
    assert rows.height == 5 and int(rows["rejected"].sum()) == 3
    for report in together:
        expected_report, expected_rows = alone[report["source_file"]]
        ignore = {"checked_path"}
        assert {k: v for k, v in report.items() if k not in ignore} == \
            {k: v for k, v in expected_report.items() if k not in ignore}
        if expected_rows is None:
            assert report["checked_path"] is None and report["rule"] == "F301"
        else:
            assert rows.filter(pl.col("source_file") == report["source_file"]).equals(
                expected_rows)


def test_a_batch_writes_one_checked_file_named_by_its_files_and_no_raw_copy(tmp_path):
    settings = Settings(data_dir=tmp_path)
    paths = landed(settings, {"a.csv": csv_of(good_return()), "b.csv": csv_of(good_return())})
    first = check_batch(settings, YEAR, paths)
    again = check_batch(settings, YEAR, list(reversed(paths)))  # the same batch, checked again
    assert first == again
    checked = sorted(settings.checked_dir(YEAR).iterdir())
    assert [p.name for p in checked] == [batch_name(paths)]
    assert batch_name(paths[:1]) != batch_name(paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checked", "landing"]
    assert pl.read_parquet(checked[0])["source_sha256"].n_unique() == 1  # the same bytes twice


def test_a_batch_that_cannot_be_checked_names_its_files(tmp_path):
    settings = Settings(data_dir=tmp_path)
    paths = landed(settings, {"a.csv": csv_of(good_return()), "b.csv": csv_of(good_return())})
    # The checked folder cannot be made: the place is taken by a file.
    (tmp_path / "checked").write_text("not a folder")
    with pytest.raises(BatchFailed) as failed:
        check_batch(settings, YEAR, paths)
    assert failed.value.files == ["a.csv", "b.csv"]
    assert "a.csv, b.csv" in str(failed.value)
