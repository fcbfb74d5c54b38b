"""The population of a year (monitoring-tables.md §6): the frame normalised and checked (N402), a
tiny year with and without a frame, and the imputed figures of two small synthetic years against
their restricted enterprises."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import YEAR, YEARS, good_return, raw_frame

from pipeline.aggregate import aggregate_year
from pipeline.config import Settings
from pipeline.consolidate import deduplicate
from pipeline.errors import SurveyError
from pipeline.population import check_frame, read_frame
from pipeline.protect import protect_year
from pipeline.publish import build_tables
from pipeline.report import report
from pipeline.valid import scan_valid_returns
from pipeline.validate import check_returns
from schemas import reference
from schemas.tables import MAGNITUDES, PROVINCE, TOTAL
from schemas.types import CREDIT_CODE_ALPHABET, CREDIT_CODE_WEIGHTS

FRAME_HEADER = "credit_code,enterprise_name,region_code,industry_code,size_class\n"


def valid_code(first17: str) -> str:
    """A GB 32100 code: the 17 characters and their check character."""
    total = sum(CREDIT_CODE_ALPHABET.index(c) * w
                for c, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True))
    return first17 + CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


CODES = [valid_code(f"91330106MA2B3C4{i:02d}") for i in range(6)]


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def frame_of(*rows: tuple[str, ...]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), orient="row", schema=[
        "credit_code", "enterprise_name", "region_code", "industry_code", "size_class"])


def test_frame_codes_are_normalised_as_returns_are_and_a_code_listed_twice_counts_once():
    enterprises, rejected = check_frame(frame_of(
        (CODES[0].lower(), "甲", "330106", "3311", "small"),
        (full_width(CODES[1]), "乙", " 330106 ", "3311", "小型"),
        (f"  {CODES[2]} ", "丙", "330106", "3311", "Micro"),
        (CODES[0], "甲（重复）", "330102", "3311", "large"),
    ))
    assert rejected.is_empty()
    assert enterprises["credit_code"].to_list() == CODES[:3]
    assert enterprises["size_class"].to_list() == ["small", "small", "micro"]
    assert enterprises["enterprise_name"].to_list() == ["甲", "乙", "丙"]  # the first row counts
    assert enterprises["city_code"].to_list() == ["330100"] * 3
    assert enterprises["section_code"].to_list() == ["C"] * 3


def test_frame_rows_failing_e004_e005_or_an_invalid_code_are_n402_and_left_out():
    wrong_check = CODES[3][:-1] + ("0" if CODES[3][-1] != "0" else "1")
    enterprises, rejected = check_frame(frame_of(
        (CODES[0], "甲", "330106", "3311", "small"),
        (wrong_check, "乙", "330106", "3311", "small"),  # E005
        ("91330106MA2B3C4I0X", "丙", "330106", "3311", "small"),  # E004: I is not in the alphabet
        (CODES[4], "丁", "110101", "3311", "small"),  # not a Zhejiang county
        (CODES[5], "戊", "330106", "9999", "huge"),  # neither a class nor a size
    ))
    assert enterprises["credit_code"].to_list() == [CODES[0]]
    assert rejected.select("source_row", "column_name", "value_received").rows() == [
        (3, "credit_code", wrong_check), (4, "credit_code", "91330106MA2B3C4I0X"),
        (5, "region_code", "110101"), (6, "industry_code", "9999"), (6, "size_class", "huge")]


def test_a_frame_without_its_columns_is_refused_naming_the_file(tmp_path):
    settings = Settings(data_dir=tmp_path)
    settings.frame_path(YEAR).parent.mkdir(parents=True)
    settings.frame_path(YEAR).write_text("credit_code,name\n913301081234567884,甲\n", "utf-8")
    with pytest.raises(SurveyError, match=r"frame/2025\.csv lacks the column\(s\) "
                                          r"enterprise_name, region_code"):
        read_frame(settings, YEAR)
    chinese = "统一社会信用代码,企业名称,所在地行政区划代码,国民经济行业代码,企业规模\n"
    settings.frame_path(YEAR).write_bytes(
        (chinese + f"{CODES[0]},甲,330106,3311,小型\n").encode("gb18030"))
    assert read_frame(settings, YEAR).enterprises["credit_code"].to_list() == [CODES[0]]


def tiny_year(tmp_path, frame: str | None) -> tuple[Settings, dict]:
    """Three accepted returns through every step up to the published tables (not swapped in)."""
    settings = Settings(data_dir=tmp_path)
    rows = [good_return(credit_code=code, intl_involved=str(i + 1), std_staff=str(2 * i + 1))
            for i, code in enumerate(CODES[:3])]
    checked = tmp_path / "a.parquet"
    check_returns(raw_frame(*rows, source_file="a.csv"), YEAR).write_parquet(checked)
    deduplicate(settings, YEAR, [str(checked)])
    if frame is not None:
        settings.frame_path(YEAR).parent.mkdir(parents=True)
        settings.frame_path(YEAR).write_text(FRAME_HEADER + frame, encoding="utf-8")
    accounting = report(settings, YEAR, [{"source_file": "a.csv", "status": "read",
                                          "rows": len(rows), "sha256": "x"}])
    aggregated = aggregate_year(settings, YEAR)
    accepted = sum(outcome == "accepted" for outcome in
                   scan_valid_returns(settings, YEAR).collect()["outcome"])
    assert (aggregated["returns"], aggregated["returns"] + sum(aggregated["imputed"].values())
            ) == (accepted, aggregated["enterprises"])
    protect_year(settings, YEAR, workers=1)
    return settings, build_tables(settings, YEAR, accounting)


def test_a_frame_in_lower_case_or_full_width_finds_its_returns(tmp_path):
    frame = (f"{CODES[0].lower()},甲,330106,3311,small\n"
             f"{full_width(CODES[1])},乙,330106,3311,small\n"
             f" {CODES[2]} ,丙,330106,3311,small\n"
             f"{CODES[2].lower()},丙,330106,3311,small\n"  # listed twice: counts once
             f"{CODES[3]},丁,330106,3311,small\n"  # no return: imputed from a donor
             f"{CODES[4][:-1]}X,戊,330106,3311,small\n")  # a wrong check character: N402
    settings, tables = tiny_year(tmp_path, frame)
    follow_up = tables[("restricted", "follow_up")]
    frame_findings = follow_up.filter(pl.col("rule_id").str.starts_with("N"))
    assert frame_findings.select("rule_id", "credit_code", "source_file", "source_row").rows() \
        == [("N401", CODES[3], None, None), ("N402", f"{CODES[4][:-1]}X", "frame/2025.csv", 7)]
    province = tables[("public", "data_quality")].filter(
        pl.col("region_code") == PROVINCE).row(0, named=True)
    assert (province["frame_enterprises"], province["frame_responded"],
            province["imputed_ratio"], province["imputed_donor"],
            province["frame_rejected_codes"]) == (4, 3, 0, 1, 1)
    enterprises = tables[("restricted", "enterprises")]
    imputed = enterprises.filter(pl.col("imputation").is_not_null()).row(0, named=True)
    assert (imputed["credit_code"], imputed["imputation"]) == (CODES[3], "donor")
    assert imputed["donor_credit_code"] in CODES[:3]
    assert imputed["source_file"] is None and imputed["cell_status"]["intl_involved"] == "I"
    returned = enterprises.filter(pl.col("imputation").is_null())
    assert returned["cell_status"].struct.field("employees").to_list() == ["R"] * 3
    donor = enterprises.filter(pl.col("credit_code") == imputed["donor_credit_code"])
    assert imputed["intl_involved"] == donor["intl_involved"].item()
    headline = tables[("public", "headline")]
    staff = headline.filter(pl.col("indicator") == "std_staff").row(0, named=True)
    assert (staff["enterprises"], staff["imputed"]) == (3, 1)
    reporting = headline.filter(pl.col("indicator") == "enterprises_reporting")
    assert reporting["value"].item() == 3  # accepted returns only


def test_without_a_frame_nothing_is_imputed_and_the_coverage_columns_are_null(tmp_path):
    settings, tables = tiny_year(tmp_path, frame=None)
    assert tables[("restricted", "enterprises")]["imputation"].null_count() == 3
    assert not tables[("restricted", "follow_up")]["rule_id"].str.starts_with("N").any()
    for name in ("headline", "by_region", "by_industry", "by_size", "by_region_industry"):
        table = tables[("public", name)]
        assert table["imputed"].null_count() == table.height, name
        assert table["imputed_share"].null_count() == table.height, name
    quality = tables[("public", "data_quality")]
    for column in ("frame_enterprises", "frame_responded", "response_rate", "imputed_ratio",
                   "imputed_donor", "frame_rejected_codes"):
        assert quality[column].null_count() == quality.height, column
    assert tables[("restricted", "cells")]["imputed"].null_count() > 0


# Two small synthetic years, run through publication (conftest.two_years) ---------------------


def published(settings: Settings, scope: str, name: str, year: int) -> pl.DataFrame:
    return pl.read_parquet(settings.published_dir / scope / name / f"survey_year={year}"
                           / "data.parquet")


@pytest.mark.parametrize("year", YEARS)
def test_imputed_share_is_recomputed_from_the_restricted_enterprises(two_years, year):
    settings, _ = two_years
    enterprises = published(settings, "restricted", "enterprises", year).with_columns(
        imputed=pl.col("imputation").is_not_null(),
        section_code=pl.col("industry_code").replace_strict(reference.class_sections()))
    placements = {
        "by_region": [("region_code", pl.col("region_code")),
                      ("region_code", pl.col("region_code").str.slice(0, 4) + "00"),
                      ("region_code", pl.lit(PROVINCE))],
        "by_size": [("size_class", pl.col("size_class")), ("size_class", pl.lit(TOTAL))],
        "by_industry": [("industry_code", pl.col("section_code")),
                        ("industry_code", pl.col("industry_code").str.slice(0, 2)),
                        ("industry_code", pl.lit(TOTAL))],
    }
    checked = 0
    for name, keys in placements.items():
        table = published(settings, "public", name, year).filter(
            (pl.col("conf_status") == "F") & pl.col("indicator").is_in(list(MAGNITUDES)))
        expected = pl.concat([
            enterprises.unpivot(index=["imputed", "region_code", "industry_code",
                                       "section_code", "size_class"],
                                on=list(MAGNITUDES), variable_name="indicator")
            .group_by(key.alias(column), "indicator")
            .agg(part=pl.col("value").filter(pl.col("imputed")).sum(), total=pl.col("value").sum(),
                 imputed=pl.col("imputed").sum())
            for column, key in keys])
        column = keys[0][0]
        joined = table.join(expected.with_columns(pl.col("imputed").cast(pl.Int64)),
                            on=[column, "indicator"], suffix="_expected")
        assert joined.height == table.height, name
        nonzero = joined.filter(pl.col("value") > 0)
        # Published to 4 decimals: within half a unit of the last of them.
        share = nonzero["part"] / nonzero["total"]
        assert (nonzero["imputed_share"] - share).abs().max() <= 0.5e-4 + 1e-9, name
        assert joined.filter(pl.col("value") == 0)["imputed_share"].null_count() == \
            joined.filter(pl.col("value") == 0).height
        assert (joined["imputed"] == joined["imputed_expected"]).all(), name
        checked += nonzero.filter(pl.col("imputed_share") > 0).height
    assert checked > 100  # the small years impute: shares are really compared


def test_imputed_adds_up_across_the_linked_tables(two_years):
    settings, _ = two_years
    year = YEARS[-1]
    tables = {name: published(settings, "public", name, year).filter(
        pl.col("indicator") == "std_staff") for name in
        ("headline", "by_region", "by_industry", "by_size", "by_region_industry")}
    region = dict(tables["by_region"].select("region_code", "imputed").rows())
    parent = dict(tables["by_region"].select("region_code", "parent_code").rows())
    for code, level in tables["by_region"].select("region_code", "region_level").rows():
        if level != "county":
            assert region[code] == sum(region[c] for c, p in parent.items() if p == code), code
    industry = tables["by_industry"]
    total = industry.filter(pl.col("industry_level") == "total")["imputed"].item()
    assert industry.filter(pl.col("industry_level") == "section")["imputed"].sum() == total
    sections = dict(industry.filter(pl.col("industry_level") == "section").select(
        "industry_code", "imputed").rows())
    for section, count in sections.items():
        assert industry.filter(pl.col("parent_code") == section)["imputed"].sum() == count
    size = dict(tables["by_size"].select("size_class", "imputed").rows())
    assert size[TOTAL] == sum(v for k, v in size.items() if k != TOTAL)
    crossed = tables["by_region_industry"]
    for city, section, count in crossed.select("city_code", "section_code", "imputed").rows():
        if section == TOTAL:
            assert count == region[city], city
        if city == PROVINCE and section != TOTAL:
            assert count == sections[section], section
    assert tables["headline"]["imputed"].item() == region[PROVINCE] == size[TOTAL] == total > 0


def test_every_frame_enterprise_without_a_return_is_imputed_and_the_second_year_by_ratio(
        two_years):
    settings, _ = two_years
    for year in YEARS:
        quality = published(settings, "public", "data_quality", year)
        province = quality.filter(pl.col("region_code") == PROVINCE).row(0, named=True)
        no_return = pl.read_parquet(settings.output_dir(year) / "follow_up.parquet").filter(
            pl.col("rule_id") == "N401").height
        assert province["imputed_ratio"] + province["imputed_donor"] == no_return > 0
        assert province["frame_enterprises"] - province["frame_responded"] == no_return
    first, second = (published(settings, "public", "data_quality", y).filter(
        pl.col("region_code") == PROVINCE).row(0, named=True) for y in YEARS)
    assert first["imputed_ratio"] == 0 < second["imputed_ratio"]
    assert second["imputed_donor"] > 0


# The method's quality (§6): a two-year synthetic run whose non-respondents' values are known -----

QUALITY_ENTERPRISES = 10_000


@pytest.fixture(scope="module")
def measured_years(tmp_path_factory) -> Settings:
    """Two synthetic years through the statistical layer (imputation included, not protection)."""
    from devtools.synth import synthesize
    from pipeline.runner import check_files, checked_paths

    settings = Settings(data_dir=tmp_path_factory.mktemp("quality"))
    for year in YEARS:
        synthesize(year, QUALITY_ENTERPRISES, 3, settings.data_dir)
        ingested = list(check_files(settings, year))
        deduplicate(settings, year, checked_paths(ingested))
        report(settings, year, ingested)
        aggregate_year(settings, year)
    return settings


def relative_errors(settings: Settings, year: int) -> dict[str, float]:
    """Mean absolute relative error of the provincial totals against the whole-frame truth, over
    the magnitudes: for the imputed totals and for the respondents' sums."""
    truth = pl.read_csv(settings.data_dir / "synth" / str(year) / "truth_population.csv",
                        infer_schema_length=None)
    population = pl.read_parquet(settings.statistical_dir(year) / "enterprises.parquet")
    true = truth.select(pl.col(MAGNITUDES).sum()).row(0, named=True)
    estimates = {
        "imputed": population.select(pl.col(MAGNITUDES).sum()).row(0, named=True),
        "respondents": population.filter(pl.col("imputation").is_null()).select(
            pl.col(MAGNITUDES).sum()).row(0, named=True),
    }
    measured = [m for m in MAGNITUDES if true[m] > 0]
    return {name: sum(abs(found[m] - true[m]) / true[m] for m in measured) / len(measured)
            for name, found in estimates.items()}


def test_imputed_totals_are_closer_to_the_population_than_respondents_sums(measured_years):
    settings = measured_years
    for year in YEARS:
        truth = pl.read_csv(settings.data_dir / "synth" / str(year) / "truth_population.csv")
        population = pl.read_parquet(settings.statistical_dir(year) / "enterprises.parquet")
        # The truth is the frame, and the population holds each of its enterprises once.
        assert set(truth["credit_code"]) == set(population["credit_code"])
        # Respondents carry exactly the values the truth gives their returns.
        answered = truth.filter(pl.col("accepted") == 1).select(pl.col(MAGNITUDES).sum())
        returns = population.filter(pl.col("imputation").is_null()).select(
            pl.col(MAGNITUDES).sum())
        assert (answered.cast(pl.Float64) - returns.cast(pl.Float64)).to_numpy().max() < 1e-6
        errors = relative_errors(settings, year)
        print(f"\n{year}: mean absolute relative error of the {len(MAGNITUDES)} provincial "
              f"totals against the whole-frame truth: imputed {errors['imputed']:.4f}, "
              f"respondents' sums {errors['respondents']:.4f}")
        assert errors["imputed"] < errors["respondents"], (year, errors)
