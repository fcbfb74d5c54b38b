"""The reference oracle: each row's findings and outcome, in plain Python, straight from the
survey-form contract (survey-form.md §2-§4), independent of the pipeline's polars code."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from schemas import reference
from schemas.form import AWARD_LABELS, FORM_COLUMNS, SIZE_LABELS
from schemas.types import CREDIT_CODE_ALPHABET, CREDIT_CODE_WEIGHTS

# Form facts, taken from the schema so a renamed column cannot silently drift from the truth.
COLUMNS: list[str] = list(FORM_COLUMNS)
COUNT_COLS = [c for c, m in FORM_COLUMNS.items() if m.kind == "count"]
AMOUNT_COLS = [c for c, m in FORM_COLUMNS.items() if m.kind == "amount"]
LEVELS = ("intl", "national", "industry", "local", "group")

COUNT_MAX, EMPLOYEES_MAX = 100_000, 2_000_000
NAME_MIN, NAME_MAX = 2, 100
TENFOLD, TENFOLD_FLOOR = 10, 20
PHONE_RE = re.compile(r"(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})")
CODE_VALUE = {ch: i for i, ch in enumerate(CREDIT_CODE_ALPHABET)}
ENUM_LOOKUP = {
    "size_class": {**{v: v for v in SIZE_LABELS.values()}, **SIZE_LABELS},
    "innovation_award": {**{v: v for v in AWARD_LABELS.values()}, **AWARD_LABELS},
}


# GB 32100-2015 credit codes (survey-form.md §4).


def check_character(first17: str) -> str:
    total = sum(CODE_VALUE[ch] * w for ch, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def credit_code_ok(code: str) -> bool:
    """Well formed and the check character right (what a clean row must satisfy)."""
    return (
        len(code) == 18
        and all(ch in CODE_VALUE for ch in code)
        and check_character(code[:17]) == code[17]
    )


# Reading a cell, then the rules of one row, then the outcomes of a year's rows.

_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DT_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[ T]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?([+-][0-9]{2}:[0-9]{2})?)?"
)
_BAD = "bad"  # marker in a cell's comparison key: unreadable, compared by its cleaned text


def _clean(raw: Any) -> str | None:
    """NFKC, trimmed; blank is None. Numbers (XLSX, JSON) are shown as Python shows them."""
    if raw is None:
        return None
    return _clean_text(raw) if isinstance(raw, str) else _clean_text(repr(raw))


@lru_cache(maxsize=1 << 18)
def _clean_text(text: str) -> str | None:
    return unicodedata.normalize("NFKC", text).strip() or None


def _number(raw: Any) -> float | None:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    text = _clean(raw)
    if text is None:
        return None
    text = text.replace(",", "")
    if not _NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _datetime(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        return raw
    text = _clean(raw)
    m = _DT_RE.fullmatch(text or "")
    if not m:
        return None
    y, mo, d, hh, mi, ss, off = m.groups()
    try:
        value = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0))
    except ValueError:
        return None
    if off:
        sign = 1 if off[0] == "+" else -1
        offset = timedelta(hours=int(off[1:3]), minutes=int(off[4:6])) * sign
        value = value - offset + timedelta(hours=8)  # to Asia/Shanghai wall-clock time
    return value


def _read_cell(col: str, raw: Any) -> tuple[Any, str | None, Any]:
    # The cache key keeps the type: 1, 1.0 and "1" are different cells.
    return _read_cell_typed(col, type(raw), raw)


@lru_cache(maxsize=1 << 18)
def _read_cell_typed(col: str, _type: type, raw: Any) -> tuple[Any, str | None, Any]:
    """(typed value or None, E001/E002/None, comparison key) for one received cell."""
    meta = FORM_COLUMNS[col]
    text = _clean(raw)
    if text is None:
        if meta.blank == "required":
            return None, "E001", None
        if meta.blank == "zero":
            return (0 if meta.kind == "count" else 0.0), None, (0 if meta.kind == "count" else 0.0)
        if meta.blank == "none":
            return "none", None, "none"
        return None, None, None  # rd_expenditure: not reported stays null
    kind = meta.kind
    if kind in ("count", "integer"):
        x = _number(raw)
        if x is None or x != int(x):
            return None, "E002", (_BAD, text)
        return int(x), None, int(x)
    if kind == "amount":
        x = _number(raw)
        if x is None:
            return None, "E002", (_BAD, text)
        return round(x, 2), None, round(x, 2)
    if kind == "datetime":
        d = _datetime(raw)
        if d is None:
            return None, "E002", (_BAD, text)
        return d, None, d
    if kind == "enum":
        value = ENUM_LOOKUP[col].get(text.lower())
        # An unknown option is kept out of other checks (no comparison with a non-value).
        return value, (None if value else "E008"), (value if value else (_BAD, text))
    if kind == "credit_code":
        return text.upper(), None, text.upper()
    return text, None, text


def _exceeds(values: dict[str, Any], column: str, bound: str) -> bool:
    """column > bound, where both were read (a null operand triggers nothing)."""
    value, limit = values[column], values[bound]
    return value is not None and limit is not None and value > limit


class Oracle:
    """Findings of one row, per the survey-form rules, with last year's accepted counts."""

    def __init__(self, year: int, previous: dict[str, dict[str, int]] | None):
        self.year = year
        self.previous = previous or {}
        self.counties = set(reference.county_codes())
        self.classes = set(reference.industry_classes())
        self.sections = reference.class_sections()
        self.opens, self.closes = datetime(year + 1, 1, 1), datetime(year + 1, 4, 1)

    def expected_size(self, employees: int, revenue: float) -> str:
        thresholds = reference.size_thresholds()
        for size in ("large", "medium", "small"):
            floor = thresholds[size]
            if employees >= floor["employees"] and revenue >= floor["revenue"]:
                return size
        return "micro"

    def check(self, cells: dict[str, Any]) -> tuple[set[str], tuple, dict[str, Any]]:
        v: dict[str, Any] = {}
        found: set[str] = set()
        key = []
        for col in COLUMNS:
            value, err, k = _read_cell(col, cells.get(col))
            v[col] = value
            key.append(k)
            if err:
                found.add(err)
        # E003: out of range
        for col in COUNT_COLS:
            x = v[col]
            ceiling = EMPLOYEES_MAX if col == "employees" else COUNT_MAX
            if x is not None and (x < 0 or x > ceiling):
                found.add("E003")
        for col in AMOUNT_COLS:
            if v[col] is not None and v[col] < 0:
                found.add("E003")
        name = v["enterprise_name"]
        if name is not None and not NAME_MIN <= len(name) <= NAME_MAX:
            found.add("E003")
        code = v["credit_code"]
        if code is not None:
            if len(code) != 18 or any(ch not in CODE_VALUE for ch in code):
                found.add("E004")
            else:
                if check_character(code[:17]) != code[17]:
                    found.add("E005")
                if code[2:4] != "33":
                    found.add("W103")
        if v["region_code"] is not None and v["region_code"] not in self.counties:
            found.add("E006")
        if v["industry_code"] is not None and v["industry_code"] not in self.classes:
            found.add("E007")
        if any(_exceeds(v, f"{lv}_led", f"{lv}_involved") for lv in LEVELS):
            found.add("E009")
        if _exceeds(v, "std_staff", "employees"):
            found.add("E010")
        if v["survey_year"] is not None and v["survey_year"] != self.year:
            found.add("E011")
        if _exceeds(v, "std_spending", "revenue"):
            found.add("W101")
        section = self.sections.get(v["industry_code"]) if v["industry_code"] else None
        if (
            section in reference.SIZE_RULE_SECTIONS
            and v["size_class"] is not None
            and v["employees"] is not None
            and v["revenue"] is not None
            and v["size_class"] != self.expected_size(v["employees"], v["revenue"])
        ):
            found.add("W102")
        at = v["submitted_at"]
        if at is not None and not self.opens <= at < self.closes:
            found.add("W104")
        if _exceeds(v, "leader_standards", "enterprise_declared"):
            found.add("W105")
        last = self.previous.get(code) if code else None
        if last:
            for col in COUNT_COLS:
                x, before = v[col], last.get(col)
                if (
                    x is not None
                    and before is not None
                    and x > TENFOLD * before
                    and x >= TENFOLD_FLOOR
                ):
                    found.add("W106")
        phone = v["contact_phone"]
        if phone is not None and not PHONE_RE.fullmatch(re.sub(r"[\s()]", "", phone)):
            found.add("W107")
        return found, tuple(key), v


def decide(
    rows: list[tuple[str, int, set[str], tuple, dict[str, Any]]],
) -> list[tuple[str, str]]:
    """Outcome and rule ids for rows given in (file name, row) order: D202, then D201."""
    outcome: list[str | None] = [None] * len(rows)
    first_of: dict[tuple, int] = {}
    for i, (_, _, _, key, _) in enumerate(rows):
        if key in first_of:
            outcome[i] = "duplicate"
        else:
            first_of[key] = i
    best: dict[str, int] = {}
    for i, (name, row, found, _, v) in enumerate(rows):
        if outcome[i] is not None:
            continue
        if any(r.startswith("E") for r in found):
            outcome[i] = "rejected"
            continue
        code = v["credit_code"]
        j = best.get(code)
        if j is None or (v["submitted_at"], name, row) > (
            rows[j][4]["submitted_at"],
            rows[j][0],
            rows[j][1],
        ):
            best[code] = i
    winners = set(best.values())
    result = []
    for i, (_, _, found, _, _) in enumerate(rows):
        if outcome[i] is None:
            outcome[i] = "accepted" if i in winners else "superseded"
        if outcome[i] == "duplicate":
            ids = ["D202"]
        elif outcome[i] == "superseded":
            ids = ["D201"]
        elif outcome[i] == "rejected":
            ids = sorted(found)
        else:
            ids = sorted(r for r in found if r.startswith("W"))
        result.append((outcome[i], ";".join(ids)))
    return result

