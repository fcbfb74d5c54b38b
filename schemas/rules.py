"""The form's rules as data (schemas/rules.csv): ids, severities and messages in both languages."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

RULES_PATH = Path(__file__).resolve().parent / "rules.csv"


@cache
def rules() -> dict[str, dict[str, str]]:
    """Rule id → its row in schemas/rules.csv (severity, messages)."""
    with open(RULES_PATH, encoding="utf-8", newline="") as f:
        return {row["rule_id"]: row for row in csv.DictReader(f)}
