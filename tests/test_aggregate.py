"""The statistical layer against a plain recomputation from the accepted rows of a small year
and its imputed enterprises."""

from __future__ import annotations

import os

import polars as pl
import pytest
from conftest import YEARS

from pipeline import sql
from pipeline.config import Settings
from pipeline.tabulation import cell_id, relations
from pipeline.valid import scan_valid_returns
from schemas import reference
from schemas.tables import ENTERPRISE_COUNTS, MAGNITUDES, PROVINCE, TOTAL

LEVELS = ("intl", "national", "industry", "local", "group")


def population(settings, year: int) -> pl.DataFrame:
    """The accepted rows of the valid layer, and the imputed enterprises (§6) beside them."""
    valid = scan_valid_returns(settings, year).collect()
    imputed = pl.read_parquet(settings.statistical_dir(year) / "enterprises.parquet").filter(
        pl.col("imputation").is_not_null())
    columns = ["credit_code", "region_code", "industry_code", "size_class", "innovation_award",
               *MAGNITUDES]
    return pl.concat([
        valid.filter(pl.col("outcome") == "accepted").select(columns).with_columns(
            imputed=pl.lit(False)),
        imputed.select(columns).with_columns(imputed=pl.lit(True))])


def recomputed(population: pl.DataFrame) -> pl.DataFrame:
    """Every cell of the linked tables, summed in plain polars over the population."""
    accepted = population.with_columns(
        county=pl.col("region_code"),
        city=pl.col("region_code").str.slice(0, 4) + "00",
        section=pl.col("industry_code").replace_strict(reference.class_sections()),
        division=pl.col("industry_code").str.slice(0, 2),
        enterprises_reporting=(~pl.col("imputed")).cast(pl.Float64),
        enterprises_leading=(pl.max_horizontal(*(f"{x}_led" for x in LEVELS)) > 0).cast(
            pl.Float64),
        enterprises_awarded=(pl.col("innovation_award") != "none").cast(pl.Float64),
    )
    placements = {
        "province": (pl.lit(PROVINCE), pl.lit(TOTAL), pl.lit(TOTAL)),
        "city": (pl.col("city"), pl.lit(TOTAL), pl.lit(TOTAL)),
        "county": (pl.col("county"), pl.lit(TOTAL), pl.lit(TOTAL)),
        "section": (pl.lit(PROVINCE), pl.col("section"), pl.lit(TOTAL)),
        "division": (pl.lit(PROVINCE), pl.col("division"), pl.lit(TOTAL)),
        "size": (pl.lit(PROVINCE), pl.lit(TOTAL), pl.col("size_class")),
        "city_section": (pl.col("city"), pl.col("section"), pl.lit(TOTAL)),
    }
    frames = []
    for indicator in (*MAGNITUDES, *ENTERPRISE_COUNTS):
        value = pl.col(indicator).cast(pl.Float64)
        for region, industry, size in placements.values():
            frames.append(accepted.group_by(
                region.alias("region_code"), industry.alias("industry_code"),
                size.alias("size_class")).agg(
                indicator=pl.lit(indicator),
                value=value.sum(),
                contributors=(value > 0).sum().cast(pl.Int64),
                enterprises=(~pl.col("imputed")).sum().cast(pl.Int64),
                imputed=pl.col("imputed").sum().cast(pl.Int64),
                imputed_value=value.filter(pl.col("imputed")).sum(),
                top1=value.sort(descending=True).first(),
                top2=value.sort(descending=True).get(1, null_on_oob=True).fill_null(0.0),
            ))
    return pl.concat(frames).unique()


@pytest.mark.parametrize("year", YEARS)
def test_cells_equal_a_plain_recomputation_from_the_population(two_years, year):
    settings, _ = two_years
    cells = pl.read_parquet(settings.statistical_dir(year) / "cells.parquet")
    expected = recomputed(population(settings, year))
    keys = ["region_code", "industry_code", "size_class", "indicator"]
    joined = cells.join(expected, on=keys, how="full", coalesce=True, suffix="_expected")
    # Cells without enterprises are published (every region, every size class) as zeros.
    empty = joined.filter(pl.col("value_expected").is_null())
    assert (empty["enterprises"] == 0).all() and (empty["value"] == 0).all()
    assert (empty["imputed"] == 0).all()
    assert joined["value"].null_count() == 0, "a recomputed cell is missing from the layer"
    both = joined.filter(pl.col("value_expected").is_not_null())
    for column in ("value", "top1", "top2", "imputed_value"):
        assert (both[column] - both[f"{column}_expected"]).abs().max() < 1e-6, column
    for column in ("contributors", "enterprises", "imputed"):
        assert cells.schema[column] == pl.Int64, column  # counts, not sums of floats
        assert (both[column] == both[f"{column}_expected"]).all(), column
    regions = set(cells.filter(pl.col("industry_code") == TOTAL)["region_code"])
    assert regions == {r["code"] for r in reference.regions()}


def test_every_additive_relation_holds(two_years):
    settings, _ = two_years
    cells = pl.read_parquet(settings.statistical_dir(YEARS[-1]) / "cells.parquet")
    links = relations(cells.select("region_code", "industry_code", "size_class").unique().rows())
    parents = {parent for parent, _ in links}
    assert {f"{PROVINCE}|{TOTAL}|{TOTAL}", f"330100|{TOTAL}|{TOTAL}"} <= parents
    value = {(cell_id(r[:3]), r[3]): r[4] for r in cells.select(
        "region_code", "industry_code", "size_class", "indicator", "value").rows()}
    imputed = {(cell_id(r[:3]), r[3]): r[4] for r in cells.select(
        "region_code", "industry_code", "size_class", "indicator", "imputed").rows()}
    for indicator in ("intl_led", "std_spending", "enterprises_reporting"):
        for parent, children in links:
            total = sum(value[(child, indicator)] for child in children)
            assert abs(value[(parent, indicator)] - total) < 1e-6, (parent, indicator)
            assert imputed[(parent, indicator)] == sum(imputed[(c, indicator)] for c in children)


def test_published_free_cells_are_the_recomputed_values(two_years):
    settings, _ = two_years
    year = YEARS[-1]
    expected = recomputed(population(settings, year)).filter(
        (pl.col("industry_code") == TOTAL) & (pl.col("size_class") == TOTAL))
    by_region = pl.read_parquet(settings.published_dir / "public" / "by_region"
                                / f"survey_year={year}" / "data.parquet")
    joined = by_region.join(expected, on=["region_code", "indicator"], suffix="_expected")
    free = joined.filter(pl.col("conf_status") == "F")
    assert free.height > 0
    assert (free["value"] - free["value_expected"]).abs().max() < 1e-6


@pytest.mark.parametrize(("memory_mb", "at_most"), [(256, 1), (1024, 2), (1536, 3), (10**6, None)])
def test_a_step_s_duckdb_gets_a_thread_per_512_mb_and_no_more_than_its_cores(tmp_path,
                                                                             memory_mb, at_most):
    cores = len(os.sched_getaffinity(0))
    con = sql.connect(Settings(data_dir=tmp_path, duckdb_memory_mb=memory_mb))
    try:
        found = con.execute("select current_setting('threads')").fetchall()[0][0]
    finally:
        con.close()
    assert found == min(cores, at_most or cores)
