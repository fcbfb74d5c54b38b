"""Imputation of unit non-response (monitoring-tables.md §6): a pure function of frames.

The methods are those of Statistics Canada's Banff system (its ESTIMATOR procedure with a
"previous value × trend" ratio algorithm, then DONORIMP) and of the ONS Statistical Methods
Library's ratio imputation for business surveys: a non-respondent that answered last year gets
last year's values moved by the trend of its imputation class, worked out on the matched pairs
(enterprises that answered in both years); one that did not gets every value of one donor of the
same class, chosen reproducibly. Banff itself pins duckdb, pyarrow and pandas below the versions
this project needs, so §6 is implemented here, column by column, over whole frames.
"""

from __future__ import annotations

import duckdb
import polars as pl

from pipeline.sql import statement
from schemas.form import FORM_COLUMNS, STANDARD_LEVELS
from schemas.tables import MAGNITUDES

#: A class's trend is used only when this many matched pairs make it.
MIN_PAIRS = 10
#: Ratio imputation classes, finest first: section × size class, the section, the province.
RATIO_CLASSES = (("section_code", "size_class"), ("section_code",), ())
COUNTS = tuple(m for m in MAGNITUDES if FORM_COLUMNS[m].kind == "count")
#: What an imputed enterprise gets: every magnitude and its award (§6).
IMPUTED_COLUMNS = (*MAGNITUDES, "innovation_award")
#: What the solver needs of a recipient (a frame enterprise without a return) and of a return.
RECIPIENT_COLUMNS = ("credit_code", "city_code", "section_code", "size_class")
RETURN_COLUMNS = (*RECIPIENT_COLUMNS, *IMPUTED_COLUMNS)


def impute(recipients: pl.DataFrame, returns: pl.DataFrame,
           previous: pl.DataFrame | None) -> pl.DataFrame:
    """Every recipient imputed: credit_code, the magnitudes, innovation_award, imputation
    (`ratio` or `donor`) and donor_credit_code.

    recipients: frame enterprises without an accepted return this year (credit_code, city_code,
    section_code, size_class, from the frame). returns: this year's accepted returns
    (RETURN_COLUMNS). previous: last year's accepted returns (credit_code and IMPUTED_COLUMNS),
    or None before the first year. A recipient with no return last year and no accepted
    enterprise this year to copy from is left out: there is nothing to impute it from.
    """
    recipients = recipients.select(RECIPIENT_COLUMNS)
    if previous is None:
        previous = returns.select("credit_code", *IMPUTED_COLUMNS).clear()
    previous = previous.select("credit_code", *IMPUTED_COLUMNS)
    answered = recipients.join(previous, on="credit_code", how="semi")
    ratio = ratio_imputation(answered, returns, previous)
    donor = donor_imputation(recipients.join(previous, on="credit_code", how="anti"), returns)
    return pl.concat([ratio, donor], how="vertical").sort("credit_code")


def trends(returns: pl.DataFrame, previous: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    """Per class (keys; () for the province) and magnitude: Σ this year ÷ Σ last year over the
    matched pairs, null where the class has under MIN_PAIRS pairs or a zero denominator. A
    pair's class is that of its return of this year."""
    pairs = returns.select(*keys, "credit_code", *MAGNITUDES).join(
        previous.select("credit_code", *MAGNITUDES), on="credit_code", suffix="_last")
    sums = [pl.len().alias("pairs"),
            *(pl.col(m).sum().alias(m) for m in MAGNITUDES),
            *(pl.col(f"{m}_last").sum().alias(f"{m}_last") for m in MAGNITUDES)]
    per_class = pairs.group_by(keys).agg(sums) if keys else pairs.select(sums)
    enough = pl.col("pairs") >= MIN_PAIRS
    return per_class.select(*keys, *(
        pl.when(enough & (pl.col(f"{m}_last") != 0))
        .then(pl.col(m).cast(pl.Float64) / pl.col(f"{m}_last"))
        .alias(f"trend_{m}") for m in MAGNITUDES))


def ratio_imputation(recipients: pl.DataFrame, returns: pl.DataFrame,
                     previous: pl.DataFrame) -> pl.DataFrame:
    """Last year's value × the trend of the recipient's class (section × size class, then the
    section, then the province, then 1), rounded as the form stores it; led within involved."""
    frame = recipients.join(previous, on="credit_code")
    for level, keys in enumerate(RATIO_CLASSES):
        found = trends(returns, previous, keys).rename(
            {f"trend_{m}": f"trend_{m}_{level}" for m in MAGNITUDES})
        frame = frame.join(found, on=keys, how="left") if keys else frame.join(found,
                                                                                how="cross")
    levels = range(len(RATIO_CLASSES))
    frame = frame.with_columns(
        _rounded(m, pl.col(m) * pl.coalesce(*(pl.col(f"trend_{m}_{i}") for i in levels),
                                             pl.lit(1.0)))
        for m in MAGNITUDES)
    # E009 holds for an imputed return too: involved includes led.
    frame = frame.with_columns(
        pl.max_horizontal(f"{level}_involved", f"{level}_led").alias(f"{level}_involved")
        for level in STANDARD_LEVELS)
    return frame.select("credit_code", *IMPUTED_COLUMNS,
                        imputation=pl.lit("ratio"), donor_credit_code=pl.lit(None, pl.Utf8))


def _rounded(column: str, value: pl.Expr) -> pl.Expr:
    # Halves up (values are >= 0): counts to whole numbers, amounts to 2 decimals (survey-form §2).
    if column in COUNTS:
        return value.round(0, mode="half_away_from_zero").cast(pl.Int64).alias(column)
    return value.round(2, mode="half_away_from_zero").alias(column)


def donor_imputation(recipients: pl.DataFrame, returns: pl.DataFrame) -> pl.DataFrame:
    """Every value of one donor: an accepted enterprise of the recipient's city × section × size
    class, relaxed to section × size, size, then the province while the class has none; the
    first by sha256 of `<recipient>|<candidate>` (sql/donors.sql)."""
    con = duckdb.connect()
    try:
        con.register("recipients", recipients.select(RECIPIENT_COLUMNS).to_arrow())
        con.register("candidates", returns.select(RECIPIENT_COLUMNS).to_arrow())
        donors = con.sql(statement("donors")).pl()
    finally:
        con.close()
    values = returns.select(pl.col("credit_code").alias("donor_credit_code"), *IMPUTED_COLUMNS)
    return donors.join(values, on="donor_credit_code").select(
        "credit_code", *IMPUTED_COLUMNS, imputation=pl.lit("donor"),
        donor_credit_code=pl.col("donor_credit_code"))
