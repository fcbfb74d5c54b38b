"""Disclosure control of whole synthetic years: the protect step, what it publishes, and
`survey audit` on a published year, catching what a careless publication would give away."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from conftest import YEARS

from pipeline import tabulation
from pipeline.aggregate import DISCLOSURE_RECORD, PROTECTED_CELLS
from pipeline.cli import main
from pipeline.protect import audit_year, published_cells
from schemas.tables import ENTERPRISE_COUNTS, MAGNITUDES

KEY = ["region_code", "industry_code", "size_class"]


@pytest.mark.parametrize("year", YEARS)
def test_primary_cells_follow_the_rules_and_every_hidden_cell_is_c(two_years, year):
    settings, _ = two_years
    cells = pl.read_parquet(settings.statistical_dir(year) / PROTECTED_CELLS)
    value, contributors = pl.col("value"), pl.col("contributors")
    magnitude = pl.col("indicator").is_in(list(MAGNITUDES))
    primary = magnitude & (value > 0) & ((contributors < 3) | (
        pl.col("top1") + pl.col("top2") > 0.85 * value * (1 + 1e-9)))
    checked = cells.with_columns(primary=primary)
    assert checked.filter(pl.col("primary") != pl.col("hidden_by").is_in(
        ["frequency", "dominance"])).is_empty()
    assert checked.filter((pl.col("hidden_by") == "frequency") != (
        pl.col("primary") & (contributors < 3))).is_empty()
    assert (checked.filter(~magnitude)["hidden_by"].null_count()
            == checked.filter(~magnitude).height)  # enterprise counts are always free
    assert checked.filter((pl.col("conf_status") == "C") != pl.col("hidden_by").is_not_null()
                          ).is_empty()
    assert checked.filter((value == 0) & (contributors == 0) & pl.col("hidden_by").is_not_null()
                          ).is_empty()  # zeros are published
    assert "secondary" in set(checked["hidden_by"])


@pytest.mark.parametrize("year", YEARS)
def test_the_manifest_records_each_indicators_hiding_and_audit(two_years, year):
    settings, _ = two_years
    manifest = json.loads((settings.published_dir / "manifest" / f"{year}.json").read_text())
    disclosure = manifest["disclosure"]
    assert disclosure == {k: v for k, v in json.loads(
        (settings.statistical_dir(year) / DISCLOSURE_RECORD).read_text()).items()
        if k != "seconds"}
    assert set(disclosure["indicators"]) == set(MAGNITUDES)
    assert disclosure["recoverable"] == 0
    restricted = pl.read_parquet(settings.published_dir / "restricted" / "cells"
                                 / f"survey_year={year}" / "data.parquet")
    for indicator, figures in disclosure["indicators"].items():
        mine = restricted.filter(pl.col("indicator") == indicator)
        assert figures["hidden"] == {rule: mine.filter(pl.col("hidden_by") == rule).height
                                     for rule in ("frequency", "dominance", "secondary")}
        audited = figures["audit"]
        assert audited["primary_cells"] == figures["hidden"]["frequency"] + figures["hidden"][
            "dominance"]
        assert audited["recoverable"] == 0
        if audited["narrowest_lower_share"] is not None:
            assert audited["narrowest_lower_share"] < 0.85
        if audited["narrowest_upper_share"] is not None:
            assert audited["narrowest_upper_share"] > 1.15
    assert disclosure["audit"]["witnesses_offered"] > 0
    assert disclosure["audit"]["witnesses_rejected"] == 0


def test_public_tables_show_what_restricted_cells_hold(two_years):
    settings, _ = two_years
    year = YEARS[-1]
    shown = published_cells(settings.published_dir, year)
    truth = pl.read_parquet(settings.published_dir / "restricted" / "cells"
                            / f"survey_year={year}" / "data.parquet")
    joined = shown.join(truth, on=[*KEY, "indicator"], suffix="_true")
    assert joined.height == shown.height
    assert joined.filter(pl.col("conf_status") != pl.col("conf_status_true")).is_empty()
    free = joined.filter(pl.col("conf_status") == "F")
    assert (free["value"] - free["value_true"]).abs().max() < 1e-9
    assert set(shown.select(*KEY).unique().rows()) == set(truth.select(*KEY).unique().rows())
    counts = shown.filter(pl.col("indicator").is_in(list(ENTERPRISE_COUNTS)))
    assert set(counts["conf_status"]) == {"F"}


def test_survey_audit_finds_no_recoverable_cell_in_a_published_year(two_years, capsys):
    settings, _ = two_years
    year = YEARS[-1]
    code = main(["--data-dir", str(settings.data_dir), "audit", "--year", str(year)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no recoverable cell" in out
    manifest = json.loads((settings.published_dir / "manifest" / f"{year}.json").read_text())
    hidden = manifest["disclosure"]["hidden"]
    assert (f"{hidden['frequency']:,} frequency, {hidden['dominance']:,} dominance, "
            f"{hidden['secondary']:,} secondary") in out


def published_copy(settings, tmp_path):
    """The published folder, copied whole into another data root."""
    copy = tmp_path / "data"
    shutil.copytree(settings.published_dir.resolve(), copy / "published")
    return copy


def reveal(published, year: int, cells: set[tuple[str, str, str, str]]) -> None:
    """Publish these hidden cells after all, with their true values, in every public table."""
    truth = pl.read_parquet(published / "restricted" / "cells" / f"survey_year={year}"
                            / "data.parquet")
    revealed = truth.filter(pl.struct(*KEY, "indicator").is_in(
        [dict(zip([*KEY, "indicator"], c, strict=True)) for c in cells]))
    for table in tabulation.CELL_TABLES:
        path = published / "public" / table.name / f"survey_year={year}" / "data.parquet"
        frame = pl.read_parquet(path)
        columns = tabulation.table_columns(table.name)
        keyed = frame.with_columns(
            *(pl.col(own).alias(f"_{cell}") for own, cell in columns.items()),
            *(pl.lit(d.total).alias(f"_{d.column}") for d in tabulation.DIMENSIONS
              if d.column not in columns.values()))
        joined = keyed.join(revealed.select(
            *(pl.col(k).alias(f"_{k}") for k in KEY), "indicator",
            pl.col("value").alias("_value"), pl.col("contributors").alias("_contributors")),
            on=[*(f"_{k}" for k in KEY), "indicator"], how="left")
        shown = pl.col("_value").is_not_null()
        joined.with_columns(
            value=pl.when(shown).then(pl.col("_value")).otherwise(pl.col("value")),
            contributors=pl.when(shown).then(pl.col("_contributors")).otherwise(
                pl.col("contributors")),
            conf_status=pl.when(shown).then(pl.lit("F")).otherwise(pl.col("conf_status")),
        ).select(frame.columns).write_parquet(path)


def test_survey_audit_catches_a_primary_cell_shown(two_years, tmp_path, capsys):
    settings, _ = two_years
    year = YEARS[-1]
    data = published_copy(settings, tmp_path)
    truth = pl.read_parquet(data / "published" / "restricted" / "cells"
                            / f"survey_year={year}" / "data.parquet")
    county = truth.filter((pl.col("hidden_by") == "frequency")
                          & (pl.col("region_code").str.ends_with("00").not_())).row(0, named=True)
    reveal(data / "published", year,
           {(county["region_code"], county["industry_code"], county["size_class"],
             county["indicator"])})
    code = main(["--data-dir", str(data), "audit", "--year", str(year)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"RECOVERABLE {county['indicator']} of cell {county['region_code']}|" in out


def test_survey_audit_catches_what_hiding_only_primary_cells_gives_away(two_years, tmp_path):
    settings, _ = two_years
    year = YEARS[-1]
    data = published_copy(settings, tmp_path)
    truth = pl.read_parquet(data / "published" / "restricted" / "cells"
                            / f"survey_year={year}" / "data.parquet")
    secondary = truth.filter(pl.col("hidden_by") == "secondary")
    reveal(data / "published", year, set(secondary.select(*KEY, "indicator").rows()))
    report = audit_year(type(settings)(data_dir=data), year)
    assert not report["disagreements"]
    assert report["recoverable"] > 0
    intruders = {cell["intruder"] for cell in report["recoverable_cells"]}
    assert intruders == {"outsider", "respondent"}
    assert report["hidden"]["secondary"] == 0
