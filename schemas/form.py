"""The survey form (version 2025) as pandera models: columns, types and every E/W rule by id.

Each check is named by its rule id (schemas/rules.csv holds the messages), so a pandera failure
case is a finding: (row index, column, rule id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from schemas import reference
from schemas.types import CREDIT_CODE_PATTERN, credit_code_check_ok

FORM_VERSION = "2025"

SIZE_LABELS = {"大型": "large", "中型": "medium", "小型": "small", "微型": "micro"}
AWARD_LABELS = {"无": "none", "县级": "county", "市级": "city", "省级": "province"}
STANDARD_LEVELS = ("intl", "national", "industry", "local", "group")

SECTION_BC_COUNT_MAX = 100_000
EMPLOYEES_MAX = 2_000_000
NAME_LENGTH = (2, 100)
PHONE_PATTERN = r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$"
TENFOLD, TENFOLD_FLOOR = 10, 20
#: Kinds read from text by parsing; a cell of these that does not parse is E002.
PARSED_KINDS = ("integer", "count", "amount", "datetime")
#: Raw and normalised rows: the form columns whose cell the reader could not take as one value
#: (JSON Lines: a nested value, a key named twice). Such a cell is E002 whatever its kind.
UNREADABLE = "unreadable_columns"
#: The form columns, leaving out what the validator adds beside them (…__text, previous_…).
FORM_COLUMN_PATTERN = r"^(?!previous_)(?!expected_year$)(?!.*__text$).*$"


def text_of(column: str) -> str:
    """The cleaned received text of a column, kept beside its typed value while checking."""
    return f"{column}__text"


def previous_of(column: str) -> str:
    """Last year's accepted value of a count column, for W106."""
    return f"previous_{column}"


def _col(label_zh: str, kind: str, section: str, *, unit: str = "", blank: str = "required",
         **checks) -> object:
    """A form column; kind is the survey-form type, blank says what an empty cell means."""
    return pa.Field(
        nullable=True,
        title=label_zh,
        metadata={"label_zh": label_zh, "unit": unit, "kind": kind, "section": section,
                  "blank": blank},
        **checks,
    )


def _count(label_zh: str, section: str, unit: str = "项") -> object:
    return _col(label_zh, "count", section, unit=unit, blank="zero")


class SurveyReturn(pa.DataFrameModel):
    """One return, typed; a null is a cell already reported missing (E001) or unreadable (E002)."""

    # A. Identification
    survey_year: int | None = _col("统计年度", "integer", "A")
    credit_code: str | None = _col("统一社会信用代码", "credit_code", "A")
    enterprise_name: str | None = _col("企业名称", "text", "A")
    region_code: str | None = _col("所在地行政区划代码", "code", "A")
    industry_code: str | None = _col("国民经济行业代码", "code", "A")
    size_class: str | None = _col("企业规模", "enum", "A")
    employees: int | None = _col("从业人员期末人数", "count", "A", unit="人")
    revenue: float | None = _col("营业收入", "amount", "A", unit="万元")
    # B. Standards worked on during the survey year
    intl_led: int | None = _count("主导制修订国际标准", "B")
    intl_involved: int | None = _count("参与制修订国际标准（含主导）", "B")
    national_led: int | None = _count("主导制修订国家标准", "B")
    national_involved: int | None = _count("参与制修订国家标准（含主导）", "B")
    industry_led: int | None = _count("主导制修订行业标准", "B")
    industry_involved: int | None = _count("参与制修订行业标准（含主导）", "B")
    local_led: int | None = _count("主导制修订地方标准", "B")
    local_involved: int | None = _count("参与制修订地方标准（含主导）", "B")
    group_led: int | None = _count("主导制修订团体标准", "B")
    group_involved: int | None = _count("参与制修订团体标准（含主导）", "B")
    enterprise_declared: int | None = _count("自我声明公开企业标准", "B")
    zhejiang_made: int | None = _count("主导制定“浙江制造”标准", "B")
    leader_standards: int | None = _count("入选企业标准“领跑者”", "B")
    patents_in_standards: int | None = _count("融入标准的专利", "B", unit="件")
    # C. Standardisation capacity
    intl_tc_posts: int | None = _count("担任国际标准化技术机构职务", "C", unit="个")
    national_tc_members: int | None = _count("全国专业标准化技术委员会委员", "C", unit="人")
    intl_registered_experts: int | None = _count("国际标准组织注册专家", "C", unit="人")
    std_staff: int | None = _count("专兼职标准化工作人员", "C", unit="人")
    std_spending: float | None = _col("标准化经费投入", "amount", "C", unit="万元", blank="zero")
    innovation_award: str | None = _col("标准创新贡献奖", "enum", "C", blank="none")
    financing_amount: float | None = _col(
        "标准融资增信获得融资额", "amount", "C", unit="万元", blank="zero")
    rd_expenditure: float | None = _col("研发经费支出", "amount", "C", unit="万元", blank="null")
    # D. Return metadata
    contact_name: str | None = _col("填报人", "text", "D")
    contact_phone: str | None = _col("联系电话", "text", "D")
    submitted_at: datetime | None = _col("填报时间", "datetime", "D")

    # Context the validator adds beside the form: the year being processed, last year's counts.
    expected_year: int | None = pa.Field(nullable=True)

    class Config:
        strict = False
        coerce = False

    @pa.check(FORM_COLUMN_PATTERN, regex=True, name="E001")
    def present(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(text_of(data.key)).is_not_null())

    @pa.check(FORM_COLUMN_PATTERN, regex=True, name="E002")
    def readable(cls, data: PolarsData) -> pl.LazyFrame:
        readable = pl.lit(True)
        if FORM_COLUMNS[data.key].kind in PARSED_KINDS:
            readable = pl.col(text_of(data.key)).is_null() | pl.col(data.key).is_not_null()
        # Any other kind by the reader's mark only, not by a null value: an enum that is not one
        # of its values is null too, and is E008, not E002.
        if UNREADABLE in data.lazyframe.collect_schema().names():
            readable = readable & ~pl.col(UNREADABLE).list.contains(data.key)
        return data.lazyframe.select(readable.alias(data.key))

    @pa.check(FORM_COLUMN_PATTERN, regex=True, name="E003")
    def in_range(cls, data: PolarsData) -> pl.LazyFrame:
        column = FORM_COLUMNS[data.key]
        value = pl.col(data.key)
        if column.kind == "count":
            ceiling = EMPLOYEES_MAX if column.name == "employees" else SECTION_BC_COUNT_MAX
            return data.lazyframe.select(value.is_between(0, ceiling))
        if column.kind == "amount":
            return data.lazyframe.select(value >= 0)
        return data.lazyframe.select(value.str.len_chars().is_between(*NAME_LENGTH))

    @pa.check("credit_code", name="E004")
    def credit_code_alphabet(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).str.contains(CREDIT_CODE_PATTERN))

    @pa.check("credit_code", name="E005")
    def credit_code_check(cls, data: PolarsData) -> pl.LazyFrame:
        right = pl.col(data.key).map_batches(credit_code_check_ok, return_dtype=pl.Boolean)
        return data.lazyframe.select(right.fill_null(True))

    @pa.check("region_code", name="E006")
    def current_county(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in(reference.county_codes()))

    @pa.check("industry_code", name="E007")
    def industry_class(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in(reference.industry_classes()))

    @pa.check("size_class", "innovation_award", name="E008")
    def known_option(cls, data: PolarsData) -> pl.LazyFrame:
        # The normaliser maps every accepted label to its value, anything else to null.
        return data.lazyframe.select(
            pl.col(text_of(data.key)).is_null() | pl.col(data.key).is_not_null())

    @pa.check(*(f"{level}_led" for level in STANDARD_LEVELS), name="E009")
    def led_within_involved(cls, data: PolarsData) -> pl.LazyFrame:
        involved = data.key.removesuffix("_led") + "_involved"
        return data.lazyframe.select(pl.col(data.key) <= pl.col(involved))

    @pa.check("std_staff", name="E010")
    def staff_within_employees(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key) <= pl.col("employees"))

    @pa.check("survey_year", name="E011")
    def year_processed(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key) == pl.col("expected_year"))

    @pa.check("std_spending", name="W101")
    def spending_within_revenue(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key) <= pl.col("revenue"))

    @pa.check("size_class", name="W102")
    def size_rules(cls, data: PolarsData) -> pl.LazyFrame:
        sections = pl.col("industry_code").replace_strict(
            reference.class_sections(), default=None, return_dtype=pl.Utf8)
        applies = (sections.is_in(reference.SIZE_RULE_SECTIONS)
                   & pl.col("employees").is_not_null() & pl.col("revenue").is_not_null())
        return data.lazyframe.select(
            (pl.col(data.key) == statistical_size_class()) | ~applies.fill_null(False))

    @pa.check("credit_code", name="W103")
    def registered_in_zhejiang(cls, data: PolarsData) -> pl.LazyFrame:
        code = pl.col(data.key)
        return data.lazyframe.select(
            (code.str.slice(2, 2) == "33") | ~code.str.contains(CREDIT_CODE_PATTERN))

    @pa.check("submitted_at", name="W104")
    def in_collection_window(cls, data: PolarsData) -> pl.LazyFrame:
        opens = pl.datetime(pl.col("expected_year") + 1, 1, 1)
        closes = pl.datetime(pl.col("expected_year") + 1, 4, 1)
        value = pl.col(data.key)
        return data.lazyframe.select((value >= opens) & (value < closes))

    @pa.check("leader_standards", name="W105")
    def leaders_within_declared(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key) <= pl.col("enterprise_declared"))

    @pa.check(FORM_COLUMN_PATTERN, regex=True, name="W106")
    def no_tenfold_jump(cls, data: PolarsData) -> pl.LazyFrame:
        previous = previous_of(data.key)
        if previous not in data.lazyframe.collect_schema().names():
            return data.lazyframe.select(pl.lit(True).alias(data.key))
        value = pl.col(data.key)
        jump = (value > TENFOLD * pl.col(previous)) & (value >= TENFOLD_FLOOR)
        return data.lazyframe.select(~jump)

    @pa.check("contact_phone", name="W107")
    def phone_like(cls, data: PolarsData) -> pl.LazyFrame:
        digits = pl.col(data.key).str.replace_all(r"[\s()]", "")
        return data.lazyframe.select(digits.str.contains(PHONE_PATTERN))


#: survey-form §6: the columns of a survey frame, frame/<year>.csv.
FRAME_COLUMNS = ("credit_code", "enterprise_name", "region_code", "industry_code", "size_class")


class SurveyFrame(pa.DataFrameModel):
    """A row of the survey frame, normalised as a return's cells are. A row failing a check is
    N402: it cannot be placed or matched, so it is left out of the population (monitoring-tables
    §6) and listed for follow-up."""

    credit_code: str | None = pa.Field(nullable=True)
    enterprise_name: str | None = pa.Field(nullable=True)
    region_code: str | None = pa.Field(nullable=True)
    industry_code: str | None = pa.Field(nullable=True)
    size_class: str | None = pa.Field(nullable=True)

    class Config:
        strict = False
        coerce = False

    @pa.check("credit_code", name="N402")
    def valid_credit_code(cls, data: PolarsData) -> pl.LazyFrame:
        # E004 and E005 as for a return: the alphabet and length, then the check character.
        code = pl.col(data.key)
        right = code.map_batches(credit_code_check_ok, return_dtype=pl.Boolean)
        return data.lazyframe.select(
            (code.str.contains(CREDIT_CODE_PATTERN) & right).fill_null(False))

    @pa.check("region_code", name="N402")
    def county(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in(reference.county_codes())
                                     .fill_null(False))

    @pa.check("industry_code", name="N402")
    def industry(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in(reference.industry_classes())
                                     .fill_null(False))

    @pa.check("size_class", name="N402")
    def size(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in(list(SIZE_LABELS.values()))
                                     .fill_null(False))


def statistical_size_class() -> pl.Expr:
    """The 2017 size class: the largest class whose employee and revenue bounds are both met."""
    employees, revenue = pl.col("employees"), pl.col("revenue")
    expr = pl.lit("micro")
    for size in ("small", "medium", "large"):
        floor = reference.size_thresholds()[size]
        expr = pl.when((employees >= floor["employees"]) & (revenue >= floor["revenue"])).then(
            pl.lit(size)).otherwise(expr)
    return expr


@dataclass(frozen=True)
class FormColumn:
    name: str
    label_zh: str
    unit: str
    kind: str
    section: str
    blank: str
    dtype: object

    @property
    def required(self) -> bool:
        return self.blank == "required"


def _form_columns() -> dict[str, FormColumn]:
    schema = SurveyReturn.to_schema()
    columns = {}
    for name, column in schema.columns.items():
        meta = (column.metadata or {})
        if not meta:
            continue
        columns[name] = FormColumn(name=name, dtype=column.dtype.type, **meta)
    return columns


#: The form's columns in form order, by canonical English name.
FORM_COLUMNS: dict[str, FormColumn] = _form_columns()
COUNT_COLUMNS = [c.name for c in FORM_COLUMNS.values() if c.kind == "count"]

#: The columns a rule declared for the whole form concerns; it is not run on the others.
RULE_SCOPE = {
    "E001": lambda c: c.required,
    # E002 runs on every column: its check says what is unreadable for each kind.
    "E003": lambda c: c.kind in ("count", "amount") or c.name == "enterprise_name",
    "W106": lambda c: c.kind == "count",
}


@cache
def return_schema(with_previous: bool = True) -> pa.DataFrameSchema:
    """SurveyReturn as a schema, each form-wide rule kept on the columns in its scope only, and
    W106 only with last year's counts beside the rows to check."""
    schema = SurveyReturn.to_schema()
    scoped = {
        name: {"checks": [check for check in column.checks if (
            check.name not in RULE_SCOPE or RULE_SCOPE[check.name](FORM_COLUMNS[name]))
            and (with_previous or check.name != "W106")]}
        for name, column in schema.columns.items() if name in FORM_COLUMNS
    }
    return schema.update_columns(scoped)
