"""The year's report (published/report/<year>/index.html) as a person opens it: from disk in
headless Chromium with no network, every section there, Chinese set in a CJK font, each chart's
SVG with its data points, hidden cells as — and data escaped."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import polars as pl
import pytest
from conftest import YEARS

from pipeline.yearly_report import CJK_FONT, HIDDEN, read_published, render, write_yearly_report
from schemas.tables import PROVINCE

#: Debian's chromium, installed by `make chromium` (which `make test` runs first).
CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = ("headline", "cities", "counties", "industries", "quality", "methods")


@pytest.fixture(scope="module")
def report_page(two_years) -> tuple:
    settings, _ = two_years
    written = write_yearly_report(settings, YEARS[-1])
    return settings, Path(written["path"])


def by_region(settings, year: int) -> pl.DataFrame:
    return pl.read_parquet(settings.published_dir / "public" / "by_region"
                           / f"survey_year={year}" / "data.parquet")


def test_the_report_is_published_in_the_snapshot_and_fetches_nothing(report_page):
    settings, page = report_page
    assert page.resolve().is_relative_to(settings.published_dir.resolve())
    assert stat.S_IMODE(page.stat().st_mode) == 0o644
    html = page.read_text("utf-8")
    assert "Content-Security-Policy" in html and "default-src &#39;none&#39;" in html
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    # Every published table is still read alongside it.
    assert (settings.published_dir / "public" / "headline" / f"survey_year={YEARS[-1]}"
            / "data.parquet").exists()


def test_data_from_the_tables_is_escaped(report_page):
    settings, _ = report_page
    published = read_published(settings.published_dir, YEARS[-1])
    hostile = "<script>alert(1)</script>"
    published.tables["by_region"] = published.tables["by_region"].with_columns(
        region_name=pl.when(pl.col("region_code") == "330100").then(pl.lit(hostile))
        .otherwise(pl.col("region_name")))
    html = render(published)
    assert hostile not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package")
    with sync_playwright() as playwright:
        # As root (CI) Chromium refuses to start with its sandbox.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


def test_chromium_shows_every_section_offline_in_a_cjk_font(report_page, browser, tmp_path):
    settings, path = report_page
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests, problems = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: message.type in ("error", "warning")
            and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert [url for url in requests if not url.startswith("file://")] == []
    assert problems == []
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    for section in SECTIONS:
        assert page.locator(f"#{section}").is_visible(), section
    assert f"{YEARS[0]} 年" in page.locator("#headline th").all_inner_texts()

    # The title's Chinese is set in a CJK font, glyph for glyph (no boxes, no fallback).
    cdp = page.context.new_cdp_session(page)
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    title = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "h1"})["nodeId"]
    cdp.send("CSS.enable")
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": title})["fonts"]
    cjk = [f for f in fonts if "CJK" in f["familyName"]]
    assert cjk and cjk[0]["familyName"].startswith(CJK_FONT.removesuffix(" SC")), fonts
    chinese = sum(1 for c in page.locator("h1").inner_text() if "\u4e00" <= c <= "\u9fff")
    assert sum(f["glyphCount"] for f in cjk) >= chinese
    page.close()


def bars(page, chart: int) -> dict[str, float]:
    """label → value of each bar of the chart-th inline SVG, from the marks' own labels."""
    found = {}
    for label in page.locator(".chart svg").nth(chart).locator(
            '[aria-roledescription="bar"]').evaluate_all("bars => bars.map(b => b.ariaLabel)"):
        value, name = re.match(r"^[^:]+: ([^;]+); label: (.+)$", label).groups()
        found[name] = float(value.replace(",", "").replace("−", "-"))
    return found


def test_each_chart_holds_its_data_points_and_a_hidden_cell_is_a_dash(report_page, browser):
    settings, path = report_page
    page = browser.new_page()
    page.goto(path.as_uri())
    assert page.locator(".chart svg").count() == 8
    cities = by_region(settings, YEARS[-1]).filter(pl.col("region_level") == "city")
    # Chart 1 is the first indicator city by city: a bar for each free city, with its value.
    leading = cities.filter(pl.col("indicator") == "enterprises_leading")
    assert bars(page, 1) == dict(zip(leading["region_name"], leading["value"], strict=True))
    staff = cities.filter(pl.col("indicator") == "std_staff")
    free = staff.filter(pl.col("conf_status") == "F")
    assert bars(page, 4) == dict(zip(free["region_name"], free["value"], strict=True))
    # In the city table a hidden cell is —, never a number.
    rows = page.locator("#cities table tr")
    header = rows.nth(0).locator("th").all_inner_texts()
    column = next(i for i, h in enumerate(header) if h.startswith("专兼职标准化工作人员"))
    for i in range(1, rows.count()):
        cells = rows.nth(i).locator("td").all_inner_texts()
        row = staff.filter(pl.col("region_name") == cells[0]).row(0, named=True)
        expected = HIDDEN if row["conf_status"] == "C" else f"{row['value']:,.0f}"
        assert cells[column] == expected, cells[0]
    # The response rate chart: one bar per city, as data_quality has it.
    quality = pl.read_parquet(settings.published_dir / "public" / "data_quality"
                              / f"survey_year={YEARS[-1]}" / "data.parquet")
    rates = quality.filter(pl.col("region_level") == "city")
    assert len(bars(page, 7)) == rates.height
    province = quality.filter(pl.col("region_code") == PROVINCE).row(0, named=True)
    assert f"{province['rows_read']:,}" in page.locator("#quality").inner_text()
    page.close()
