"""The publication contract (monitoring-tables.md): each published table as a pandera model,
every column described in English and Chinese."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from schemas.reference import PROVINCE  # noqa: F401 (the tables' province row)

CONTRACT_VERSION = "2"
FORM_VERSION = "2025"

#: §1: magnitudes are sums over accepted enterprises of the form column of the same name.
MAGNITUDES = (
    "intl_led", "intl_involved", "national_led", "national_involved", "industry_led",
    "industry_involved", "local_led", "local_involved", "group_led", "group_involved",
    "enterprise_declared", "zhejiang_made", "leader_standards", "patents_in_standards",
    "intl_tc_posts", "national_tc_members", "intl_registered_experts", "std_staff",
    "std_spending", "financing_amount",
)
#: §1: enterprise counts, never confidential (§3).
ENTERPRISE_COUNTS = ("enterprises_reporting", "enterprises_leading", "enterprises_awarded")
#: The enterprise count of enterprises with any *_led above 0.
LEADING = "enterprises_leading"
INDICATORS = MAGNITUDES + ENTERPRISE_COUNTS
#: SDMX CONF_STATUS in public tables: free or confidential, never which rule hid a cell (§2).
CONF_STATUS = ("F", "C")
#: Why a cell is hidden, kept in the restricted tier only (§4).
HIDDEN_BY = ("frequency", "dominance", "secondary")
TOTAL = "_T"
SIZE_CLASSES = ("large", "medium", "small", "micro")


def _field(en: str, zh: str, **checks) -> object:
    return pa.Field(nullable=checks.pop("nullable", False), metadata={"en": en, "zh": zh},
                    **checks)


class Measures(pa.DataFrameModel):
    """§2: the columns every public table has after its own dimension columns."""

    indicator: str = _field(
        "indicator name (monitoring-tables.md §1); its names, unit and definition are in the "
        "table `indicators`", "指标名称；中英文名称、计量单位和定义见 indicators 表",
        isin=list(INDICATORS))
    value: float | None = _field(
        "the cell's value, a total over the year's population: accepted returns plus imputed "
        "non-respondents of the survey frame (enterprises_reporting: accepted returns only); "
        "null when confidential",
        "数值，覆盖当年总体：有效报表加上调查名录内未报企业的插补值（enterprises_reporting 仅含有效"
        "报表）；保密时为空", nullable=True, ge=0)
    contributors: int | None = _field(
        "enterprises with a non-zero value in the cell; null when confidential",
        "该格中数值非零的企业数；保密时为空", nullable=True, ge=0)
    enterprises: int = _field("accepted enterprises in the cell", "该格中的有效企业数", ge=0)
    imputed: int | None = _field(
        "frame enterprises in the cell with no accepted return, imputed (monitoring-tables.md "
        "§6); null without a survey frame",
        "该格中调查名录内未报、其数值经插补的企业数；无调查名录时为空", nullable=True, ge=0)
    imputed_share: float | None = _field(
        "the imputed part of the value, as a share of it; null when the value is hidden, 0 or "
        "there is no survey frame",
        "数值中插补部分所占比例；数值保密、为 0 或无调查名录时为空", nullable=True, ge=0, le=1)
    conf_status: str = _field("SDMX CONF_STATUS: F free, C confidential (hidden to protect "
                              "respondents; which rule hid it is not published)",
                              "保密状态：F 公开，C 保密（为保护填报单位而隐藏，不公布隐藏原因）",
                              isin=list(CONF_STATUS))

    class Config:
        strict = True
        ordered = True

    @pa.dataframe_check(name="hidden_values_are_null")
    def hidden_values_are_null(cls, data: PolarsData) -> pl.LazyFrame:
        free = pl.col("conf_status") == "F"
        return data.lazyframe.select(
            (free == (pl.col("value").is_not_null() & pl.col("contributors").is_not_null()))
            & (free | pl.col("imputed_share").is_null()))

    @pa.dataframe_check(name="counts_are_free")
    def counts_are_free(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            ~pl.col("indicator").is_in(list(ENTERPRISE_COUNTS)) | (pl.col("conf_status") == "F"))


class YearOnYear(Measures):
    prev_value: float | None = _field(
        "last year's published value of the same cell; null if it was not free or did not exist",
        "上年公布的同一格数值；上年未公开或不存在时为空", nullable=True)
    yoy_pct: float | None = _field(
        "change on last year in percent; null unless both years are free and prev_value > 0",
        "同比增长（%）；两年均公开且上年数值大于 0 时才有值", nullable=True)


class Headline(YearOnYear):
    pass


class ByRegion(pa.DataFrameModel):
    region_code: str = _field("GB/T 2260 region code", "行政区划代码", str_length=6)
    region_name: str = _field("region name", "行政区划名称")
    region_level: str = _field("province, city or county", "层级：省、市、县（市、区）",
                               isin=["province", "city", "county"])
    parent_code: str | None = _field("the region it belongs to", "上级行政区划代码",
                                     nullable=True)


class ByRegionTable(YearOnYear, ByRegion):
    pass


class ByIndustry(pa.DataFrameModel):
    industry_code: str = _field("GB/T 4754-2017 code: _T total, a section letter or a division",
                                "国民经济行业代码：_T 合计、门类字母或大类")
    industry_name: str = _field("industry name", "行业名称")
    industry_level: str = _field("total, section or division", "层级：合计、门类、大类",
                                 isin=["total", "section", "division"])
    parent_code: str | None = _field("the level above", "上级行业代码", nullable=True)


class ByIndustryTable(Measures, ByIndustry):
    pass


class BySizeTable(Measures):
    size_class: str = _field("enterprise size: _T all, large, medium, small, micro",
                             "企业规模：_T 合计、大型、中型、小型、微型",
                             isin=[TOTAL, *SIZE_CLASSES])


class ByRegionIndustryTable(Measures):
    city_code: str = _field("a city, or 330000 for the province", "设区市代码，全省为 330000",
                            str_length=6)
    section_code: str = _field("a GB/T 4754 section letter, or _T for all",
                               "行业门类字母，合计为 _T")


_COUNT = {"ge": 0}


class DataQualityTable(pa.DataFrameModel):
    region_code: str = _field("region code; 000000 for rows whose region could not be read",
                              "行政区划代码；无法识别地区的行为 000000", str_length=6)
    region_level: str = _field("province, city, county or unknown",
                               "层级：省、市、县（市、区）或未知",
                               isin=["province", "city", "county", "unknown"])
    files_received: int = _field("files with rows in the region (province: every file)",
                                 "含该地区数据的文件数（全省：全部收到的文件）", **_COUNT)
    files_quarantined: int = _field("files set aside whole with an F rule (province and unknown)",
                                    "整体隔离的文件数（F 规则；计入全省与未知）", **_COUNT)
    rows_read: int = _field("data rows read", "读取的数据行数", **_COUNT)
    rows_accepted: int = _field("rows accepted", "有效行数", **_COUNT)
    rows_rejected: int = _field("rows rejected (an E rule)", "被拒绝的行数（E 规则）", **_COUNT)
    rows_superseded: int = _field("rows superseded by a later return (D201)",
                                  "被后续报表替代的行数（D201）", **_COUNT)
    rows_duplicate: int = _field("exact duplicate rows (D202)", "完全重复的行数（D202）", **_COUNT)
    rows_with_warnings: int = _field("accepted rows with a W finding", "有警告（W）的有效行数",
                                     **_COUNT)
    frame_enterprises: int | None = _field("enterprises in the survey frame; null without a frame",
                                           "调查名录中的企业数；无名录时为空", nullable=True, ge=0)
    frame_responded: int | None = _field(
        "frame enterprises with an accepted return (the others are N401 in the follow-up list)",
        "名录中有有效报表的企业数（其余列入 N401 催报）", nullable=True, ge=0)
    response_rate: float | None = _field("frame_responded / frame_enterprises",
                                         "回收率：有报表企业数 / 名录企业数",
                                         nullable=True, ge=0, le=1)
    imputed_ratio: int | None = _field(
        "frame enterprises without a return imputed from their last year's return by the "
        "class trend (monitoring-tables.md §6); null without a frame",
        "按上年报表与同类趋势插补的名录内未报企业数；无名录时为空", nullable=True, ge=0)
    imputed_donor: int | None = _field(
        "frame enterprises without a return imputed from a donor of this year; null without a "
        "frame", "按本年同类供体企业插补的名录内未报企业数；无名录时为空", nullable=True, ge=0)
    frame_rejected_codes: int | None = _field(
        "frame rows left out of the population (N402: a credit code failing E004/E005, or an "
        "invalid region, industry or size); null without a frame",
        "未计入总体的名录行数（N402：信用代码不合规，或地区、行业、规模代码无效）；无名录时为空",
        nullable=True, ge=0)

    class Config:
        strict = True
        ordered = True


class DataQualityRulesTable(pa.DataFrameModel):
    region_code: str = _field("region code; 000000 unknown", "行政区划代码；000000 为未知",
                              str_length=6)
    rule_id: str = _field("rule id (survey-form §3)", "规则编号")
    severity: str = _field("E error, W warning, D de-duplication", "级别：E 错误、W 警告、D 去重",
                           isin=["E", "W", "D"])
    rows: int = _field("rows with that finding", "触发该规则的行数", ge=1)

    class Config:
        strict = True
        ordered = True


class FollowUpTable(pa.DataFrameModel):
    region_code: str | None = _field("region code as reported", "行政区划代码（按报送）",
                                     nullable=True)
    credit_code: str | None = _field("unified social credit code", "统一社会信用代码",
                                     nullable=True)
    enterprise_name: str | None = _field("enterprise name", "企业名称", nullable=True)
    rule_id: str = _field("rule id", "规则编号")
    severity: str = _field("E, W, D, N or F", "级别", isin=["E", "W", "D", "N", "F"])
    column_name: str | None = _field("form column concerned", "涉及的表单字段", nullable=True)
    value_received: str | None = _field("the value as received (text)", "收到的原始值",
                                        nullable=True)
    message_zh: str = _field("message in Chinese", "中文说明")
    message_en: str = _field("message in English", "英文说明")
    source_file: str | None = _field("file the row came from", "来源文件", nullable=True)
    source_row: int | None = _field("row in that file (header = row 1)",
                                    "来源行号（表头为第 1 行）", nullable=True)
    contact_name: str | None = _field("contact person", "填报人", nullable=True)
    contact_phone: str | None = _field("contact phone", "联系电话", nullable=True)

    class Config:
        strict = True
        ordered = True


class CellsTable(pa.DataFrameModel):
    """§4 restricted `cells`: every cell of the public tables with its true value and why it is
    hidden."""

    region_code: str = _field("region code (330000 the province)", "行政区划代码", str_length=6)
    industry_code: str = _field("_T all, a GB/T 4754 section letter or division",
                                "行业代码：_T 合计、门类或大类")
    size_class: str = _field("_T all, or a size class", "企业规模：_T 合计或规模类别",
                             isin=[TOTAL, *SIZE_CLASSES])
    indicator: str = _field("indicator name (monitoring-tables.md §1)", "指标名称",
                            isin=list(INDICATORS))
    value: float = _field("the cell's true value", "真实数值", ge=0)
    contributors: int = _field("enterprises with a non-zero value in the cell",
                               "该格中数值非零的企业数", ge=0)
    enterprises: int = _field("accepted enterprises in the cell", "该格中的有效企业数", ge=0)
    top1: float = _field("the largest single contribution", "最大单个企业贡献", ge=0)
    top2: float = _field("the second largest single contribution", "第二大单个企业贡献", ge=0)
    imputed: int | None = _field("imputed enterprises in the cell; null without a frame",
                                 "该格中的插补企业数；无调查名录时为空", nullable=True, ge=0)
    imputed_value: float | None = _field(
        "the part of the value from imputed enterprises; null without a frame",
        "数值中来自插补企业的部分；无调查名录时为空", nullable=True, ge=0)
    hidden_by: str | None = _field(
        "why the cell is hidden: frequency (under 3 contributors), dominance (two largest over "
        "85%), secondary (to protect others); null when published",
        "隐藏原因：frequency 贡献企业少于 3 家，dominance 前两家占比超过 85%，secondary "
        "为保护其他格而隐藏；公开时为空", nullable=True, isin=list(HIDDEN_BY))
    conf_status: str = _field("as published: F free, C confidential", "公布时的保密状态",
                              isin=list(CONF_STATUS))

    class Config:
        strict = True
        ordered = True


INDICATOR_KINDS = ("magnitude", "enterprise_count")


class IndicatorsTable(pa.DataFrameModel):
    """§1-§2 public `indicators`: what each indicator is, its unit and what its total covers."""

    indicator: str = _field("indicator name (monitoring-tables.md §1)", "指标名称",
                            isin=list(INDICATORS), unique=True)
    name_zh: str = _field("name in Chinese", "中文名称")
    name_en: str = _field("name in English", "英文名称")
    unit: str = _field("unit: 项 standards, 件 patents, 人 persons, 万元 10,000 yuan, 家 "
                       "enterprises", "计量单位")
    kind: str = _field("magnitude (a sum over enterprises) or enterprise_count",
                       "类别：magnitude 数量合计，enterprise_count 企业数",
                       isin=list(INDICATOR_KINDS))
    definition_zh: str = _field("definition in Chinese: what the total covers", "中文定义")
    definition_en: str = _field("definition in English: what the total covers", "英文定义")

    class Config:
        strict = True
        ordered = True

    @pa.dataframe_check(name="every_indicator_of_its_kind")
    def every_indicator(cls, data: PolarsData) -> pl.LazyFrame:
        listed = pl.col("indicator").n_unique() == len(INDICATORS)
        kind = pl.when(pl.col("indicator").is_in(list(MAGNITUDES))).then(
            pl.lit("magnitude")).otherwise(pl.lit("enterprise_count"))
        return data.lazyframe.select((listed & (pl.col("kind") == kind)).alias("listed"))


INDICATORS_PATH = Path(__file__).resolve().parent / "indicators.csv"
AMOUNT_UNIT = "万元"


@cache
def indicators() -> pl.DataFrame:
    """schemas/indicators.csv, in §1 order: the public `indicators` table."""
    table = pl.read_csv(INDICATORS_PATH, infer_schema=False)
    order = {name: i for i, name in enumerate(INDICATORS)}
    return table.sort(pl.col("indicator").replace_strict(order, default=len(order)))

#: Every published table: (scope, name) → its model. Public tables never hold identities.
TABLES: dict[tuple[str, str], type[pa.DataFrameModel]] = {
    ("public", "headline"): Headline,
    ("public", "by_region"): ByRegionTable,
    ("public", "by_industry"): ByIndustryTable,
    ("public", "by_size"): BySizeTable,
    ("public", "by_region_industry"): ByRegionIndustryTable,
    ("public", "data_quality"): DataQualityTable,
    ("public", "data_quality_rules"): DataQualityRulesTable,
    ("public", "indicators"): IndicatorsTable,
    ("restricted", "follow_up"): FollowUpTable,
    ("restricted", "cells"): CellsTable,
}
#: Tables that are one file for every year (not partitioned by survey_year).
UNPARTITIONED = frozenset({("public", "indicators")})
#: Columns that identify or reach an enterprise: never in a public table.
IDENTIFYING_COLUMNS = ("credit_code", "enterprise_name", "contact_name", "contact_phone")


@cache
def table_schema(scope: str, name: str) -> pa.DataFrameSchema:
    """The table's schema with its columns in publication order: dimensions, then measures."""
    if (scope, name) == ("restricted", "enterprises"):
        return _enterprises_schema()
    model = TABLES[(scope, name)]
    schema = model.to_schema()
    if not issubclass(model, Measures):  # declared in publication order already
        return schema
    measures = [c for c in YearOnYear.to_schema().columns if c in schema.columns]
    dimensions = [c for c in schema.columns if c not in measures]
    return pa.DataFrameSchema(columns={c: schema.columns[c] for c in (*dimensions, *measures)},
                              checks=schema.checks, strict=True, ordered=True, name=name)


#: §6: how a frame enterprise without a return was imputed (null for a return).
IMPUTATIONS = ("ratio", "donor")
#: Required form columns an imputed enterprise has no value for: they are not imputed (§6), and
#: its name comes from the frame, which may lack it.
NOT_IMPUTED = ("enterprise_name", "employees", "revenue", "contact_name", "contact_phone",
               "submitted_at")


def _enterprises_schema() -> pa.DataFrameSchema:
    """§4 restricted `enterprises`: every accepted return with every form column as validated,
    plus tabulation codes; and every imputed enterprise of the frame (§6)."""
    from schemas.form import FORM_COLUMNS

    columns = {
        c.name: pa.Column(c.dtype, nullable=not c.required or c.name in NOT_IMPUTED, metadata={
            "en": f"survey form column {c.name}" + (f" ({c.unit})" if c.unit else ""),
            "zh": c.label_zh + (f"（{c.unit}）" if c.unit else "")})
        for c in FORM_COLUMNS.values()
    }
    extra = {
        "city_code": ("the city (设区市) of region_code", "所属设区市代码"),
        "section_code": ("GB/T 4754 section of industry_code", "行业门类"),
        "division_code": ("GB/T 4754 division of industry_code", "行业大类"),
        "warnings": ("W rule ids the return was accepted with", "有效报表的警告规则编号"),
        "cell_status": ("per form column: R as reported, N normalised, B blank, I imputed "
                        "(survey-form §5)",
                        "各字段取值方式：R 原样，N 经规范化，B 空白按默认值，I 插补"),
        "imputation": ("ratio or donor for an imputed frame enterprise without a return "
                       "(monitoring-tables.md §6); null for a return",
                       "插补方法：ratio 按上年报表与趋势，donor 按供体；有效报表为空"),
        "donor_credit_code": ("the donor whose values were copied (donor imputation only)",
                              "供体企业的统一社会信用代码（仅供体插补）"),
        "source_file": ("file the return came from; null for an imputed enterprise",
                        "来源文件；插补企业为空"),
        "source_row": ("row in that file (header = row 1); null for an imputed enterprise",
                       "来源行号（表头为第 1 行）；插补企业为空"),
    }
    for column, (en, zh) in extra.items():
        columns[column] = pa.Column(
            nullable=column in ("warnings", "imputation", "donor_credit_code", "source_file",
                                "source_row"),
            checks=[pa.Check.isin(list(IMPUTATIONS))] if column == "imputation" else None,
            metadata={"en": en, "zh": zh})
    required = [c.name for c in FORM_COLUMNS.values() if c.required]
    imputed = pl.col("imputation").is_not_null()
    complete = pa.Check(
        lambda data: data.lazyframe.select(
            pl.when(imputed).then(
                pl.all_horizontal(pl.col("source_file", "source_row").is_null())
                & (pl.col("donor_credit_code").is_not_null() == (pl.col("imputation") == "donor")))
            .otherwise(pl.all_horizontal(pl.col(*required, "source_file", "source_row")
                                         .is_not_null())
                       & pl.col("donor_credit_code").is_null())
            .alias("complete")),
        name="returns_complete_imputations_sourced",
        error="a return lacks a required column or its source, or an imputed enterprise has one")
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="enterprises",
                              unique=["credit_code"], checks=[complete])


def published_tables() -> list[tuple[str, str]]:
    return [*TABLES, ("restricted", "enterprises")]


def descriptions(scope: str, name: str) -> dict[str, dict[str, str]]:
    """Column → {"en": …, "zh": …} for a published table."""
    return {c: dict(col.metadata or {}) for c, col in table_schema(scope, name).columns.items()}
