"""Type, normalise and judge raw rows against the form: every finding of every row, vectorised."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from pipeline.config import Settings
from pipeline.ingest import RAW_META_COLUMNS
from pipeline.valid import has_valid_returns, scan_valid_returns
from schemas import types
from schemas.form import (
    AWARD_LABELS,
    COUNT_COLUMNS,
    FORM_COLUMNS,
    SIZE_LABELS,
    UNREADABLE,
    FormColumn,
    previous_of,
    return_schema,
    text_of,
)
from schemas.rules import rules

FINDING = pl.Struct({"rule_id": pl.Utf8, "severity": pl.Utf8, "column_name": pl.Utf8,
                     "value_received": pl.Utf8})
_ENUM_LABELS = {"size_class": SIZE_LABELS, "innovation_award": AWARD_LABELS}
_BLANK_VALUES = {"zero": {"count": 0, "amount": 0.0}, "none": {"enum": "none"}}
#: Survey-form §5: R as reported, N normalised, B blank (read as 0 or its default). An Enum, not
#: text: a million rows carry 33 of these each, and strings cost several times more to build,
#: write and read.
CELL_STATUS = pl.Enum(["R", "N", "B"])
# pandera collects a query per check (about a hundred); the streaming engine's start-up cost per
# query is several times the in-memory engine's, and dominates small batches. Set for the
# process, once: a `pl.Config` block per validation would be undone by another thread's.
pl.Config.set_engine_affinity("in-memory")


def previous_year_counts(settings: Settings, year: int) -> pl.DataFrame | None:
    """Last year's accepted counts per credit code (rule W106), or None before the first year."""
    if not has_valid_returns(settings, year - 1):
        return None
    return (
        scan_valid_returns(settings, year - 1)
        .filter(pl.col("outcome") == "accepted")
        .select("credit_code", *(pl.col(c).alias(previous_of(c)) for c in COUNT_COLUMNS))
        .unique("credit_code", keep="first")
        .collect()
    )


def _typed(column: FormColumn, text: pl.Series, value: pl.Series | None) -> pl.Series:
    """A column's values: read already (value) for the parsed kinds, else from its text."""
    kind = column.kind
    if kind == "enum":
        value = types.as_enum(text, _ENUM_LABELS[column.name])
    elif kind == "credit_code":
        value = types.as_credit_code(text)
    elif value is None:
        value = text
    blank_value = _BLANK_VALUES.get(column.blank, {}).get(kind)
    if blank_value is not None:
        value = value.set(text.is_null(), blank_value)
    return value.cast(column.dtype).alias(column.name)


def _status(column: FormColumn) -> pl.Expr:
    """The cell's CELL_STATUS; null where no value was read."""
    raw, text, value = pl.col(f"{column.name}__raw"), pl.col(text_of(column.name)), pl.col(
        column.name)
    changed = raw != text
    if column.kind in ("count", "amount"):
        changed = changed | text.str.contains(",", literal=True)
    elif column.kind in ("enum", "credit_code"):
        changed = changed | (value != text)
    return (
        pl.when(text.is_null()).then(pl.lit(None if column.required else "B", dtype=CELL_STATUS))
        .when(value.is_null()).then(pl.lit(None, dtype=CELL_STATUS))
        .when(changed).then(pl.lit("N", dtype=CELL_STATUS))
        .otherwise(pl.lit("R", dtype=CELL_STATUS))
        .alias(column.name)
    )


def normalise(raw: pl.DataFrame, year: int) -> pl.DataFrame:
    """Typed values, their cleaned text (…__text) and per-cell status, for checking."""
    columns = list(FORM_COLUMNS.values())
    readings = {c.name: types.READINGS[c.kind] for c in columns if c.kind in types.READINGS}
    texts, values = types.read_columns(raw.select(list(readings)), readings)
    texts = pl.concat([texts, types.cleaned(raw.select(c.name for c in columns
                                                       if c.name not in readings))],
                      how="horizontal")
    if UNREADABLE not in raw.columns:  # raw frames made without it (tests build such frames)
        raw = raw.with_columns(pl.Series(UNREADABLE, [[]], dtype=pl.List(pl.Utf8))
                               .new_from_index(0, raw.height))
    frame = raw.with_columns(
        *(texts[c.name].alias(text_of(c.name)) for c in columns),
        *(pl.col(c.name).alias(f"{c.name}__raw") for c in columns),
    )
    frame = frame.with_columns(*(_typed(c, texts[c.name], values.get_column(c.name, default=None))
                                 for c in columns),
                               pl.lit(year, dtype=pl.Int64).alias("expected_year"))
    if (frame[UNREADABLE].list.len() > 0).any():
        # Such a cell's text is what was received (say, JSON text), never a value: E002 says so.
        frame = frame.with_columns(
            pl.when(pl.col(UNREADABLE).list.contains(c.name)).then(None)
            .otherwise(pl.col(c.name)).alias(c.name) for c in columns)
    frame = frame.with_columns(pl.struct(_status(c) for c in columns).alias("cell_status"))
    return frame.drop(f"{c.name}__raw" for c in columns).with_columns(_unread_text(frame))


def _unread_text(frame: pl.DataFrame) -> pl.Series:
    """The cleaned text of cells that did not read, so D202 can compare rows where no typed
    value exists; null for the (many) rows where every cell read."""
    unread = [pl.col(c).is_null() & pl.col(text_of(c)).is_not_null() for c in FORM_COLUMNS]
    rows = frame.select(pl.any_horizontal(unread)).to_series().arg_true()
    text = pl.Series("unread_text", [None] * frame.height, dtype=pl.Utf8)
    if len(rows):
        joined = frame[rows].select(pl.concat_str(
            [pl.when(u).then(pl.col(text_of(c))).otherwise(pl.lit("")) for c, u in
             zip(FORM_COLUMNS, unread, strict=True)], separator="\x1f")).to_series()
        text = text.scatter(rows, joined)
    return text


def failure_findings(frame: pl.DataFrame) -> pl.DataFrame:
    """Every finding of every row: (row index, rule_id, column_name), from lazy validation."""
    # W106 needs last year's return: without any (the first year), its checks are left out.
    with_previous = any(c.startswith(previous_of("")) for c in frame.columns)
    # No rule reads the cells' status, and pandera rebuilds the frame's schema hundreds of times
    # a validation: a struct of 33 enums made that about a third of its fixed cost.
    frame = frame.drop("cell_status", strict=False)
    try:
        return_schema(with_previous).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return pl.DataFrame(schema={"index": pl.Int64, "rule_id": pl.Utf8,
                                    "column_name": pl.Utf8})
    findings = cases.select(pl.col("index").cast(pl.Int64), pl.col("check").alias("rule_id"),
                            pl.col("column").alias("column_name"))
    unknown = set(findings["rule_id"].unique()) - set(rules())
    if unknown or findings["index"].null_count():
        raise RuntimeError(f"validation failed outside the form's rules: {sorted(unknown)}\n"
                           f"{cases.filter(~pl.col('check').is_in(list(rules())))}")
    return findings


def check_returns(raw: pl.DataFrame, year: int,
                  previous: pl.DataFrame | None = None) -> pl.DataFrame:
    """Raw rows → typed rows with cell_status, findings, warnings and rejected."""
    frame = normalise(raw, year)
    if previous is not None:
        frame = frame.join(previous, on="credit_code", how="left", coalesce=True,
                           maintain_order="left")
    findings = failure_findings(frame)
    severity = {rule_id: row["severity"] for rule_id, row in rules().items()}
    received = [
        raw.select(pl.col(column).gather(group["index"]).alias("value_received"))
        .with_columns(index=group["index"], rule_id=group["rule_id"],
                      column_name=pl.lit(column))
        for (column,), group in findings.group_by("column_name")
    ]
    detail = (
        pl.concat(received, how="diagonal") if received
        else findings.with_columns(value_received=pl.lit(None, dtype=pl.Utf8))
    )
    per_row = (
        detail.with_columns(severity=pl.col("rule_id").replace_strict(severity))
        .sort("index", "rule_id", "column_name")
        .group_by("index", maintain_order=True)
        .agg(
            findings=pl.struct("rule_id", "severity", "column_name", "value_received"),
            rejected=(pl.col("severity") == "E").any(),
            warnings=pl.col("rule_id").filter(pl.col("severity") == "W")
            .unique(maintain_order=True),
        )
    )
    checked = (
        frame.select(*RAW_META_COLUMNS, *FORM_COLUMNS, "cell_status", "unread_text")
        .with_row_index("index")
        .with_columns(pl.col("index").cast(pl.Int64))
        .join(per_row, on="index", how="left", maintain_order="left")
        .with_columns(
            pl.col("findings").fill_null(pl.lit([], dtype=pl.List(FINDING))),
            pl.col("rejected").fill_null(False),
            pl.col("warnings").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))),
        )
        .drop("index")
    )
    return checked
