"""Publication on two small synthetic years: the tables, their contract, disclosure, year on year,
atomic swaps, idempotency, and nothing identifying in public."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandera.polars as pa
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import YEARS

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.publish import publish_year
from pipeline.valid import scan_valid_returns
from schemas.tables import (
    ENTERPRISE_COUNTS,
    IDENTIFYING_COLUMNS,
    MAGNITUDES,
    PROVINCE,
    TOTAL,
    UNPARTITIONED,
    indicators,
    published_tables,
    table_schema,
)

#: The public tables of each year (the `indicators` table is one for every year).
PUBLIC = [name for scope, name in published_tables()
          if scope == "public" and (scope, name) not in UNPARTITIONED]
MANIFEST_KEYS = {"survey_year", "form_version", "contract_version", "pipeline_version", "run_id",
                 "started_at", "finished_at", "inputs", "accounting", "tables"}


def published(settings, scope: str, name: str) -> pl.DataFrame:
    """Every year of a table, read as an analyst reads it (hive partitioning)."""
    if (scope, name) in UNPARTITIONED:
        return pl.read_parquet(settings.published_dir / scope / name / "data.parquet")
    pattern = str(settings.published_dir / scope / name / "*" / "*.parquet")
    return duckdb.sql(f"select * from read_parquet('{pattern}', hive_partitioning = true)").pl()


def manifest_is_whole(published_dir: Path, year: int) -> dict:
    manifest = json.loads((published_dir / "manifest" / f"{year}.json").read_text("utf-8"))
    for entry in manifest["tables"].values():
        data = (published_dir / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
        assert pq.read_metadata(published_dir / entry["path"]).num_rows == entry["rows"]
    return manifest


def test_every_table_of_every_year_is_published_and_read_at_once(two_years):
    settings, _ = two_years
    assert settings.published_dir.is_symlink()
    for scope, name in published_tables():
        if (scope, name) in UNPARTITIONED:
            continue
        years = set(published(settings, scope, name)["survey_year"].unique())
        assert years == set(YEARS), (scope, name)
    assert published(settings, "public", "indicators").equals(indicators())
    regions = published(settings, "public", "by_region").filter(
        (pl.col("survey_year") == YEARS[-1]) & (pl.col("indicator") == "intl_led"))
    assert regions["region_level"].value_counts().sort("region_level").rows() == [
        ("city", 11), ("county", 90), ("province", 1)]


@pytest.mark.parametrize("year", YEARS)
def test_the_manifest_records_inputs_accounting_and_tables(two_years, year):
    settings, accountings = two_years
    manifest = manifest_is_whole(settings.published_dir, year)
    assert MANIFEST_KEYS <= set(manifest)
    assert manifest["survey_year"] == year
    counts = manifest["accounting"]
    assert counts["rows_read"] == sum(counts[k] for k in
                                      ("accepted", "rejected", "superseded", "duplicate"))
    assert counts == {k: accountings[year]["total"][k] for k in counts}
    landed = {p.name for p in settings.landing_dir(year).iterdir()}
    assert {i["name"] for i in manifest["inputs"]} == landed
    assert all(i["status"] == "read" or i["rule"] for i in manifest["inputs"])
    assert set(manifest["tables"]) == {f"{s}/{n}" for s, n in published_tables()}


def test_the_data_quality_table_accounts_for_every_row(two_years):
    settings, accountings = two_years
    quality = published(settings, "public", "data_quality")
    for year in YEARS:
        rows = quality.filter(pl.col("survey_year") == year)
        province = rows.filter(pl.col("region_code") == PROVINCE).row(0, named=True)
        total = accountings[year]["total"]
        assert province["rows_read"] == total["rows_read"]
        assert province["rows_accepted"] == total["accepted"]
        assert province["files_received"] == accountings[year]["files_received"]
        counties = rows.filter(pl.col("region_level") == "county")["rows_read"].sum()
        unknown = rows.filter(pl.col("region_code") == "000000")["rows_read"].sum()
        assert counties + unknown == total["rows_read"]
        assert 0 < province["response_rate"] <= 1
        follow_up = pl.read_parquet(settings.output_dir(year) / "follow_up.parquet")
        no_return = follow_up.filter(pl.col("rule_id") == "N401").height
        assert province["frame_enterprises"] - province["frame_responded"] == no_return


@pytest.mark.parametrize("year", YEARS)
def test_no_identity_or_contact_in_any_public_table(two_years, year):
    settings, _ = two_years
    valid = scan_valid_returns(settings, year).collect()
    identities = set()
    for column in IDENTIFYING_COLUMNS:
        identities |= {v for v in valid[column].drop_nulls().unique() if len(v) >= 2}
    for name in PUBLIC:
        table = published(settings, "public", name).filter(pl.col("survey_year") == year)
        assert not set(table.columns) & set(IDENTIFYING_COLUMNS), name
        for column, dtype in table.schema.items():
            if dtype == pl.String:
                leaked = set(table[column].drop_nulls().unique()) & identities
                assert not leaked, (name, column, sorted(leaked)[:3])


def test_hidden_cells_carry_no_value_and_counts_are_free(two_years):
    settings, _ = two_years
    for name in ("headline", "by_region", "by_industry", "by_size", "by_region_industry"):
        table = published(settings, "public", name)
        hidden = table.filter(pl.col("conf_status") != "F")
        assert hidden["value"].null_count() == hidden.height
        assert hidden["contributors"].null_count() == hidden.height
        assert set(hidden["indicator"]) <= set(MAGNITUDES)
        counts = table.filter(pl.col("indicator").is_in(list(ENTERPRISE_COUNTS)))
        assert set(counts["conf_status"]) == {"F"}
    # The demo sizes hide cells by both rules.
    statuses = set(published(settings, "public", "by_region")["conf_status"])
    assert statuses == {"F", "C"}  # which rule hid a cell is not published (§2)


def test_a_cell_in_two_tables_has_one_value_and_status(two_years):
    settings, _ = two_years
    year = YEARS[-1]
    by_region = published(settings, "public", "by_region").filter(
        (pl.col("survey_year") == year) & (pl.col("region_level") == "city"))
    crossed = published(settings, "public", "by_region_industry").filter(
        (pl.col("survey_year") == year) & (pl.col("section_code") == TOTAL)
        & (pl.col("city_code") != PROVINCE))
    joined = by_region.join(crossed, left_on=["region_code", "indicator"],
                            right_on=["city_code", "indicator"])
    assert joined.height == by_region.height
    assert joined.filter(pl.col("conf_status") != pl.col("conf_status_right")).is_empty()
    assert joined.filter(pl.col("value").ne_missing(pl.col("value_right"))).is_empty()
    headline = published(settings, "public", "headline").filter(pl.col("survey_year") == year)
    province = published(settings, "public", "by_size").filter(
        (pl.col("survey_year") == year) & (pl.col("size_class") == TOTAL))
    assert headline.select("indicator", "value", "conf_status").equals(
        province.select("indicator", "value", "conf_status"))


def test_year_on_year_comes_from_last_years_published_cells(two_years):
    settings, _ = two_years
    by_region = published(settings, "public", "by_region")
    last = by_region.filter(pl.col("survey_year") == YEARS[0])
    this = by_region.filter(pl.col("survey_year") == YEARS[1])
    assert last["prev_value"].null_count() == last.height  # no year before the first
    assert this["prev_value"].null_count() < this.height
    assert this["yoy_pct"].null_count() < this.height
    joined = this.join(last, on=["region_code", "indicator"], suffix="_last")
    free_last = joined.filter(pl.col("conf_status_last") == "F")
    assert free_last.filter(pl.col("prev_value") != pl.col("value_last")).is_empty()
    assert joined.filter(pl.col("conf_status_last") != "F")["prev_value"].null_count() == (
        joined.filter(pl.col("conf_status_last") != "F").height)
    both = joined.filter((pl.col("conf_status") == "F") & (pl.col("conf_status_last") == "F")
                         & (pl.col("value_last") > 0))
    expected = (both["value"] - both["value_last"]) / both["value_last"] * 100
    assert (both["yoy_pct"] - expected).abs().max() <= 0.005 + 1e-9  # rounded to 2 decimals
    assert this.filter(pl.col("conf_status") != "F")["yoy_pct"].null_count() == (
        this.filter(pl.col("conf_status") != "F").height)


def test_columns_are_described_in_english_and_chinese(two_years):
    settings, _ = two_years
    for scope, name in published_tables():
        path = next((settings.published_dir / scope / name).rglob("data.parquet"))
        for field in pq.read_schema(path):
            assert field.metadata[b"description_en"] and field.metadata[b"description_zh"], (
                name, field.name)
    dictionary = pl.read_csv(settings.published_dir / "dictionary.csv")
    assert dictionary.filter(pl.col("description_zh").is_null()).is_empty()
    assert set(zip(dictionary["scope"], dictionary["table"], strict=True)) == set(
        published_tables())
    mode = (settings.published_dir / "restricted").stat().st_mode & 0o777
    assert mode == 0o700


def test_text_is_dictionary_encoded_and_top_level_columns_carry_statistics(two_years):
    """Text columns, nested ones included, are dictionary-encoded and numbers are not; every
    top-level column has the min/max statistics that let a reader skip row groups."""
    settings, _ = two_years
    for scope, name in published_tables():
        path = next((settings.published_dir / scope / name).rglob("data.parquet"))
        row_group = pq.read_metadata(path).row_group(0)
        for i in range(row_group.num_columns):
            chunk = row_group.column(i)
            text = chunk.physical_type == "BYTE_ARRAY"
            assert ("RLE_DICTIONARY" in chunk.encodings) == text, (name, chunk.path_in_schema)
            if "." not in chunk.path_in_schema:
                assert chunk.is_stats_set, (name, chunk.path_in_schema)


def test_query_reads_every_year_through_the_monitoring_database(two_years, capsys):
    settings, _ = two_years
    code = main(["--data-dir", str(settings.data_dir), "query",
                 "select survey_year, count(*) as n from headline group by all order by 1"])
    assert code == 0
    out = capsys.readouterr().out
    assert all(str(year) in out for year in YEARS)
    assert main(["--data-dir", str(settings.data_dir), "query", "select * from nowhere"]) == 1


def test_query_shows_counts_as_whole_numbers_and_amounts_with_two_decimals(two_years, capsys):
    settings, _ = two_years
    sql = (f"select indicator, value, prev_value, value as std_spending from headline "
           f"where survey_year = {YEARS[-1]} and conf_status = 'F' and prev_value > 0")
    assert main(["--data-dir", str(settings.data_dir), "query", sql]) == 0
    rows = [[cell.strip() for cell in line.split("│")[1:-1]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    units = dict(indicators().select("indicator", "unit").rows())
    shown = {row[0]: row[1:] for row in rows if row[0] in units}
    assert {units[i] for i in shown} >= {"万元", "项", "家"}
    for indicator, (value, prev_value, as_spending) in shown.items():
        pattern = r"^[\d,]+\.\d\d$" if units[indicator] == "万元" else r"^[\d,]+$"
        assert re.match(pattern, value) and re.match(pattern, prev_value), (indicator, value)
        # A column named after an indicator takes that indicator's unit.
        assert re.match(r"^[\d,]+\.\d\d$", as_spending), as_spending


def test_the_readmes_worked_questions_answer(two_years, capsys):
    settings, _ = two_years
    readme = (Path(__file__).parent.parent / "README.md").read_text("utf-8")
    worked = readme[readme.index("Three worked"):]
    questions = re.findall(r'survey query "(select .*?)"', worked, flags=re.S)
    assert len(questions) == 3
    for sql in questions:
        assert main(["--data-dir", str(settings.data_dir), "query", sql]) == 0, sql
        lines = [line for line in capsys.readouterr().out.splitlines() if "│" in line]
        assert len(lines) >= 3, sql  # a header and at least two answers


def test_publishing_again_publishes_the_same_rows(two_years):
    settings, _ = two_years
    year = YEARS[-1]
    before = manifest_is_whole(settings.published_dir, year)
    other = manifest_is_whole(settings.published_dir, YEARS[0])
    again = publish_year(settings, year, run_id="again", started_at="2026-04-01T02:00:00+08:00")
    assert again["run_id"] == "again"
    assert {k: v["sha256"] for k, v in again["tables"].items()} == {
        k: v["sha256"] for k, v in before["tables"].items()}
    assert manifest_is_whole(settings.published_dir, YEARS[0]) == other
    snapshots = [p for p in settings.snapshots_dir.iterdir() if not p.name.startswith(".")]
    assert len(snapshots) <= 2


def test_the_large_tables_are_checked_and_written_a_slice_at_a_time(two_years, tmp_path,
                                                                     monkeypatch):
    source, _ = two_years
    settings = Settings(data_dir=tmp_path / "data", max_file_rows=source.max_file_rows)
    shutil.copytree(source.data_dir, settings.data_dir, symlinks=True)
    year = YEARS[-1]
    monkeypatch.setattr("pipeline.publish.SLICE_ROWS", 300)
    whole = settings.published_dir.resolve()
    sliced = publish_year(settings, year, run_id="sliced", started_at="")
    for name in ("follow_up", "enterprises"):
        relative = sliced["tables"][f"restricted/{name}"]["path"]
        path = settings.published_dir / relative
        assert pl.read_parquet(path).equals(pl.read_parquet(whole / relative)), name
        assert pq.read_schema(path).equals(pq.read_schema(whole / relative), check_metadata=True)
        assert pq.read_metadata(path).num_row_groups > 1, name  # one a slice
    # A failure in any slice, or a credit code in two slices, fails the year as checking the
    # whole table would: rows numbered across the table, the published version left as it was.
    enterprises = settings.statistical_dir(year) / "enterprises.parquet"
    frame = pl.read_parquet(enterprises)
    last, codes = frame.height - 1, frame["credit_code"]
    frame = frame.with_columns(credit_code=codes.scatter(last, codes[0]),
                               imputation=frame["imputation"].scatter(400, "bogus"))
    frame.write_parquet(enterprises)
    published = settings.published_dir.resolve()
    with pytest.raises(pa.errors.SchemaErrors) as failed:
        publish_year(settings, year, run_id="failed", started_at="")
    schema = table_schema("restricted", "enterprises")
    with pytest.raises(pa.errors.SchemaErrors) as at_once:
        schema.validate(frame.select(list(schema.columns)), lazy=True)
    found = sorted(failed.value.failure_cases.rows())
    assert found == sorted(at_once.value.failure_cases.rows())
    assert {(check, index) for _, _, _, check, _, index in found} >= {
        ("multiple_fields_uniqueness", 0), ("multiple_fields_uniqueness", last),
        ("isin(['ratio', 'donor'])", 400)}
    assert settings.published_dir.resolve() == published
    assert not list(settings.snapshots_dir.glob(".building-*"))


_PUBLISH_IN_CHILD = """
import sys
from pathlib import Path
from pipeline.config import Settings
from pipeline.publish import publish_year
settings = Settings(data_dir=Path(sys.argv[1]))
print("ready", flush=True)
publish_year(settings, int(sys.argv[2]), run_id="killed", started_at="")
print("done", flush=True)
"""


def test_two_publishers_at_once_both_publish_and_lose_nothing(two_years):
    settings, _ = two_years
    children = [subprocess.Popen([sys.executable, "-c", _PUBLISH_IN_CHILD.replace(
        '"killed"', f'"together-{year}"'), str(settings.data_dir), str(year)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
        for year in YEARS]
    assert [child.wait() for child in children] == [0, 0]
    for year in YEARS:
        assert manifest_is_whole(settings.published_dir, year)["run_id"] == f"together-{year}"


def building(settings) -> dict[int, Path]:
    """Snapshots being written, by inode (a killed run's leftover keeps its inode)."""
    found = {}
    for path in settings.snapshots_dir.glob(".building-*"):
        try:
            found[path.stat().st_ino] = path
        except FileNotFoundError:  # renamed into place between the listing and the look
            continue
    return found


def test_killing_publish_at_any_moment_leaves_a_whole_published_version(two_years):
    settings, _ = two_years
    year = YEARS[-1]
    ends, tables_written_at_kill = set(), []  # this year's tables in the new snapshot
    # Writing a small year's tables takes a few tens of milliseconds: kill all through it.
    delays = (0.0, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.045, 0.07, 0.1, 0.3)
    for delay in (*delays, None):  # None: let it finish
        before = building(settings)
        child = subprocess.Popen([sys.executable, "-c", _PUBLISH_IN_CHILD,
                                  str(settings.data_dir), str(year)],
                                 stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert child.stdout.readline().strip() == "ready"
        # Kill once this run has started its own next snapshot.
        deadline = time.monotonic() + 120
        while (not building(settings).keys() - before.keys() and child.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.001)
        if delay is not None:
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            new = [p for ino, p in building(settings).items() if ino not in before]
            tables_written_at_kill.append(sum(
                1 for folder in new for _ in folder.rglob(f"survey_year={year}/data.parquet")))
        # A late kill may find the run already done.
        assert child.wait() in ((0,) if delay is None else (0, -signal.SIGKILL))
        for each in YEARS:
            manifest = manifest_is_whole(settings.published_dir, each)
            if each == year:
                ends.add(manifest["run_id"] == "killed")
        assert duckdb.sql(f"select count(*) from read_parquet('"
                          f"{settings.published_dir}/public/*/*/*.parquet', union_by_name = true)"
                          ).fetchall()[0][0] > 0
    # Some kills landed with the next snapshot's tables half written: the old version stayed
    # published, whole; the run left to finish published the new one.
    assert any(tables_written_at_kill), tables_written_at_kill
    assert ends == {False, True}
