"""The code lists the rules check against, read once from schemas/reference/."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

REFERENCE_DIR = Path(__file__).parent / "reference"
#: Zhejiang's own code in regions.csv: the province's rows, and its office's workbook.
PROVINCE = "330000"
SIZE_RULE_SECTIONS = ["B", "C", "D"]


@cache
def _rows(name: str) -> tuple[dict[str, str], ...]:
    with open(REFERENCE_DIR / name, encoding="utf-8", newline="") as f:
        return tuple(csv.DictReader(f))


def regions() -> tuple[dict[str, str], ...]:
    return _rows("zhejiang_regions.csv")


def industries() -> tuple[dict[str, str], ...]:
    return _rows("industry_gbt4754_2017.csv")


@cache
def county_codes() -> list[str]:
    return [r["code"] for r in regions() if r["level"] == "county"]


@cache
def industry_classes() -> list[str]:
    return [r["code"] for r in industries() if r["level"] == "class"]


@cache
def class_sections() -> dict[str, str]:
    """Industry class (4 digits) → section letter."""
    parent = {r["code"]: r["parent_code"] for r in industries()}
    sections = {}
    for code in industry_classes():
        node = code
        while parent.get(node):
            node = parent[node]
        sections[code] = node
    return sections


@cache
def size_thresholds() -> dict[str, dict[str, float]]:
    """{'large': {'employees': 1000, 'revenue': 40000}, 'medium': …, 'small': …}."""
    out: dict[str, dict[str, float]] = {"large": {}, "medium": {}, "small": {}}
    for row in _rows("size_thresholds_2017.csv"):
        for size in out:
            out[size][row["indicator"]] = float(row[f"{size}_min"])
    return out
