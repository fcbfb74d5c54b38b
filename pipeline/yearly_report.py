"""The year's report for the provincial leadership (published/report/<year>/index.html): one
static page in Chinese built from the published public tables only, its charts rendered to
inline SVG at build time, so it needs no network and no JavaScript."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl

from pipeline.config import Settings
from pipeline.errors import SurveyError
from pipeline.publish import add_report
from schemas.rules import rules
from schemas.tables import AMOUNT_UNIT, PROVINCE, TOTAL, indicators

TEMPLATES = Path(__file__).parent / "templates"
#: Debian's fonts-noto-cjk: registered with the chart renderer so that Chinese labels are
#: measured with the font the page asks for.
CJK_FONT_DIR = Path("/usr/share/fonts/opentype/noto")
CJK_FONT = "Noto Sans CJK SC"
#: Indicators shown city by city, by industry section and by size class.
MAIN_INDICATORS = ("enterprises_leading", "national_led", "group_led", "std_staff",
                   "std_spending")
HIDDEN = "—"
#: A page that fetches nothing: no script, no request, only its own inline styles.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                           "base-uri 'none'; form-action 'none'")


@dataclass(frozen=True)
class Published:
    """The public tables of a year (last year's values are in their prev_value) and its
    manifest."""

    year: int
    tables: dict[str, pl.DataFrame]
    manifest: dict


def read_published(published: Path, year: int) -> Published:
    """The public tables of `year` from a published snapshot."""
    # Resolved once: a publication swapping the link meanwhile leaves this snapshot whole.
    published = published.resolve()
    manifest_path = published / "manifest" / f"{year}.json"
    if not manifest_path.exists():
        raise SurveyError(f"{year} is not published: no {manifest_path}")
    tables = {}
    for name in ("headline", "by_region", "by_industry", "by_size", "data_quality",
                 "data_quality_rules"):
        tables[name] = pl.read_parquet(
            published / "public" / name / f"survey_year={year}" / "data.parquet", glob=False)
    indicators_path = published / "public" / "indicators" / "data.parquet"
    tables["indicators"] = (pl.read_parquet(indicators_path, glob=False)
                            if indicators_path.exists() else indicators())
    return Published(year, tables, json.loads(manifest_path.read_text("utf-8")))


def write_yearly_report(settings: Settings, year: int) -> dict:
    """Build the year's report from the published snapshot and swap it in beside the tables."""
    published = read_published(settings.published_dir, year)
    page = render(published)
    snapshot = add_report(settings, year, {"index.html": page.encode("utf-8")})
    return {"path": str(settings.published_dir / "report" / str(year) / "index.html"),
            "snapshot": snapshot.name, "bytes": len(page.encode("utf-8"))}


# Building the page (pure: tables in, HTML out) ------------------------------------------------


def render(published: Published) -> str:
    """The report's HTML: every figure from the public tables, hidden cells as —."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["number"] = _number
    template = environment.get_template("yearly_report.html")
    return template.render(csp=CONTENT_SECURITY_POLICY, hidden=HIDDEN, **_sections(published))


def _sections(p: Published) -> dict:
    t, year = p.tables, p.year
    names = {r["indicator"]: r for r in t["indicators"].iter_rows(named=True)}
    headline = [{**names[r["indicator"]], **r} for r in t["headline"].iter_rows(named=True)]
    cities = t["by_region"].filter(pl.col("region_level") == "city")
    counties = t["by_region"].filter(pl.col("region_level") == "county")
    sections = t["by_industry"].filter(pl.col("industry_level") == "section")
    quality = t["data_quality"]
    province = quality.filter(pl.col("region_code") == PROVINCE).row(0, named=True)
    disclosure = p.manifest["disclosure"]
    return {
        "year": year,
        "previous_year": year - 1,
        "headline": headline,
        "headline_chart": _svg(_change_chart(headline)),
        "city_table": _wide(cities, "region_name", MAIN_INDICATORS, names),
        "city_charts": [_svg(_bar_chart(cities, "region_name", i, names))
                        for i in MAIN_INDICATORS],
        "leading_counties": _leading(counties, "national_involved", names),
        "leading_counties_by_count": _leading(counties, "enterprises_leading", names),
        "section_table": _wide(sections, "industry_name", MAIN_INDICATORS, names),
        "section_chart": _svg(_bar_chart(sections, "industry_name", "enterprises_leading",
                                         names)),
        "size_table": _wide(t["by_size"].with_columns(size_name=pl.col("size_class").replace(
            SIZE_NAMES)), "size_name", MAIN_INDICATORS, names),
        "response_chart": _svg(_response_chart(quality)),
        "response_table": quality.filter(pl.col("region_level") == "city").join(
            cities.filter(pl.col("indicator") == "enterprises_reporting").select(
                "region_code", "region_name"), on="region_code").sort("region_code").to_dicts(),
        "province": province,
        "quarantined": _quarantined(p.manifest),
        "frequent_rules": _frequent_rules(t["data_quality_rules"]),
        "disclosure": disclosure,
        "hidden_cells": sum(disclosure["hidden"].values()),
        "population": p.manifest.get("population") or {},
        "manifest": p.manifest,
    }


SIZE_NAMES = {TOTAL: "合计", "large": "大型", "medium": "中型", "small": "小型", "micro": "微型"}


def _number(value: float | None, unit: str = "") -> str:
    """A value as the tables mean it: amounts (万元) with 2 decimals, counts whole, — hidden."""
    if value is None:
        return HIDDEN
    return f"{value:,.2f}" if unit == AMOUNT_UNIT else f"{value:,.0f}"


def _wide(frame: pl.DataFrame, label: str, shown: tuple[str, ...], names: dict) -> dict:
    """Rows of `label` × columns of indicators, with their units, for a table."""
    rows = []
    for key, group in frame.group_by(label, maintain_order=True):
        values = dict(zip(group["indicator"], group["value"], strict=True))
        rows.append({"label": key[0], "cells": [
            _number(values.get(i), names[i]["unit"]) for i in shown]})
    return {"columns": [names[i] for i in shown], "rows": rows}


def _leading(counties: pl.DataFrame, indicator: str, names: dict) -> list[dict]:
    """The ten counties with the largest free values of an indicator."""
    free = counties.filter((pl.col("indicator") == indicator) & (pl.col("conf_status") == "F")
                           & (pl.col("value") > 0))
    return [{"name": r["region_name"], "value": _number(r["value"], names[indicator]["unit"]),
             "indicator": names[indicator]}
            for r in free.sort("value", "region_code", descending=[True, False]).head(10)
            .iter_rows(named=True)]


def _quarantined(manifest: dict) -> list[dict]:
    """Files set aside whole, by F rule: how many, and the rule's message."""
    counts: dict[str, int] = {}
    for entry in manifest["inputs"]:
        if entry["status"] == "quarantined":
            counts[entry["rule"]] = counts.get(entry["rule"], 0) + 1
    return [{"rule": rule, "files": n, "message": rules()[rule]["message_zh"]}
            for rule, n in sorted(counts.items())]


def _frequent_rules(rule_rows: pl.DataFrame) -> list[dict]:
    """The province's ten most frequent row findings."""
    province = rule_rows.filter(pl.col("region_code") == PROVINCE).sort(
        "rows", "rule_id", descending=[True, False]).head(10)
    return [{**r, "message": rules()[r["rule_id"]]["message_zh"]}
            for r in province.iter_rows(named=True)]


# Charts: Altair specifications rendered to SVG by vl-convert ----------------------------------


@cache
def _renderer():
    import vl_convert

    if CJK_FONT_DIR.is_dir():
        vl_convert.register_font_directory(str(CJK_FONT_DIR))
    return vl_convert


def _svg(chart) -> str:
    """The chart as an inline SVG element (no XML prolog, no script)."""
    spec = chart.configure(font=CJK_FONT).configure_view(stroke=None).to_dict()
    svg = _renderer().vegalite_to_svg(spec)
    if "<script" in svg.lower():  # never: vega writes shapes and text only
        raise SurveyError("a chart's SVG holds a script")
    return svg


def _bar_chart(frame: pl.DataFrame, label: str, indicator: str, names: dict):
    """Horizontal bars of one indicator by `label`; a hidden value has no bar."""
    import altair as alt

    meta = names[indicator]
    rows = frame.filter(pl.col("indicator") == indicator).select(
        pl.col(label).alias("label"), "value", "conf_status").to_dicts()
    data = [{"label": r["label"], "value": r["value"]} for r in rows
            if r["value"] is not None]
    return alt.Chart(alt.Data(values=data), title=f"{meta['name_zh']}（{meta['unit']}）").mark_bar(
        color="#2b6cb0").encode(
        x=alt.X("value:Q", title=meta["unit"]),
        y=alt.Y("label:N", title=None, sort=[r["label"] for r in rows]),
    ).properties(width=320, height=alt.Step(16))


def _change_chart(headline: list[dict]):
    """Change on last year (%) of each free headline indicator that has one."""
    import altair as alt

    data = [{"label": r["name_zh"], "value": r["yoy_pct"]} for r in headline
            if r["yoy_pct"] is not None]
    return alt.Chart(alt.Data(values=data), title="主要指标同比增长（%）").mark_bar().encode(
        x=alt.X("value:Q", title="同比（%）"),
        y=alt.Y("label:N", title=None, sort=None),
        color=alt.condition("datum.value >= 0", alt.value("#2f855a"), alt.value("#c53030")),
    ).properties(width=360, height=alt.Step(16))


def _response_chart(quality: pl.DataFrame):
    import altair as alt

    from schemas import reference

    city_names = {r["code"]: r["name"] for r in reference.regions()}
    data = [{"label": city_names[r["region_code"]], "value": round(100 * r["response_rate"], 1)}
            for r in quality.filter(pl.col("region_level") == "city").sort("region_code")
            .iter_rows(named=True) if r["response_rate"] is not None]
    return alt.Chart(alt.Data(values=data), title="各设区市回收率（%）").mark_bar(
        color="#805ad5").encode(
        x=alt.X("value:Q", title="回收率（%）", scale=alt.Scale(domain=[0, 100])),
        y=alt.Y("label:N", title=None, sort=None),
    ).properties(width=320, height=alt.Step(16))
