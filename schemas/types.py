"""How a received text cell is read as its form type (polars expressions for the normaliser)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import polars as pl

#: GB 32100-2015 alphabet; a character's value is its position.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = [pow(3, i, 31) for i in range(17)]
CREDIT_CODE_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{18}$"

#: Accepted date-time layouts (survey form §2 D), tried in order.
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d",
)
DATETIME_TZ_FORMATS = ("%Y-%m-%dT%H:%M:%S%:z", "%Y-%m-%dT%H:%M%:z", "%Y-%m-%d %H:%M:%S%:z")
LOCAL_TZ = "Asia/Shanghai"
#: A character NFKC may change: anything but ASCII and the CJK unified ideographs (U+4E00-9FFF,
#: which have no compatibility decomposition).
NFKC_STABLE_OUTSIDE = r"[^\x00-\x7f\x{4e00}-\x{9fff}]"


def cleaned(received: pl.DataFrame) -> pl.DataFrame:
    """Every column NFKC-normalised and trimmed; blank becomes null."""
    # NFKC is the costliest step and changes neither ASCII nor the CJK unified ideographs that
    # make up most names: run it only on the cells holding anything else.
    non_ascii = received.select(pl.all().str.len_bytes() != pl.all().str.len_chars())
    for name in [c for c in non_ascii.columns if non_ascii[c].any()]:
        column = received[name]
        rows = non_ascii[name].fill_null(False).arg_true()
        rows = rows.filter(column.gather(rows).str.contains(NFKC_STABLE_OUTSIDE))
        received = received.with_columns(
            column.scatter(rows, column.gather(rows).str.normalize("NFKC")))
    trimmed = received.select(pl.all().str.strip_chars())
    return trimmed.select(pl.when(pl.all() != "").then(pl.all()))


class Reading(NamedTuple):
    """How a column of a parsed kind is read: fast, for plain cells as received, and full."""

    fast: Callable[[pl.Expr], pl.Expr]
    full: Callable[[pl.Expr], pl.Expr]


def read_columns(received: pl.DataFrame, readings: dict[str, Reading]
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(cleaned texts, values) of received columns: the fast reading on every cell as received,
    then cleaning and the full reading only where the fast one found nothing.

    Most cells are plain ("12", "2026-02-03 10:00:00"), and a cell the fast reading takes is
    ASCII with no space around it, so cleaning would leave it as it is: cleaning every cell and
    trying every accepted layout on it costs several times more.
    """
    values = received.select(reading.fast(pl.col(name)).alias(name)
                             for name, reading in readings.items())
    rest = received.select(
        pl.any_horizontal(values[name].is_null() & pl.col(name).is_not_null() for name in readings)
    ).to_series().arg_true()
    if not len(rest):
        return received.select(list(readings)), values
    # The rows holding any such cell, whole (a plain cell reads the same either way), at once:
    # every polars query costs about a millisecond, so not one per column.
    text = cleaned(received[rest].select(list(readings)))
    value = text.select(pl.coalesce(reading.fast(pl.col(name)), reading.full(pl.col(name)))
                        for name, reading in readings.items())
    return (pl.DataFrame(received[name].scatter(rest, text[name]) for name in readings),
            pl.DataFrame(values[name].scatter(rest, value[name]) for name in readings))


def _plain_whole(text: pl.Expr) -> pl.Expr:
    return text.cast(pl.Int64, strict=False)


def _plain_amount(text: pl.Expr) -> pl.Expr:
    number = text.cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number.round(2))


def _plain_datetime(text: pl.Expr) -> pl.Expr:
    # The layout's exact length: the reader would also take the time with a space before it.
    return pl.when(text.str.len_bytes() == 19).then(
        text.str.to_datetime(DATETIME_FORMATS[0], strict=False, time_unit="us"))


def without_separators(text: pl.Expr) -> pl.Expr:
    return text.str.replace_all(",", "", literal=True)


def as_number(text: pl.Expr) -> pl.Expr:
    """A finite decimal, or null; thousands separators dropped."""
    number = without_separators(text).cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number)


def as_whole(text: pl.Expr) -> pl.Expr:
    """A whole number (2 and 2.0 alike), or null for text and fractions."""
    number = as_number(text)
    return pl.when(number == number.floor()).then(number).cast(pl.Int64, strict=False)


def as_amount(text: pl.Expr) -> pl.Expr:
    return as_number(text).round(2)


def as_datetime(text: pl.Expr) -> pl.Expr:
    """Local (Asia/Shanghai) wall-clock time, or null when no accepted layout reads it."""
    naive = [text.str.to_datetime(f, strict=False, time_unit="us") for f in DATETIME_FORMATS]
    zoned = [
        text.str.to_datetime(f, strict=False, time_unit="us")
        .dt.convert_time_zone(LOCAL_TZ)
        .dt.replace_time_zone(None)
        for f in DATETIME_TZ_FORMATS
    ]
    return pl.coalesce(*naive, *zoned)


#: The readings of the parsed kinds (survey-form §2), by kind.
READINGS = {
    "integer": Reading(_plain_whole, as_whole),
    "count": Reading(_plain_whole, as_whole),
    "amount": Reading(_plain_amount, as_amount),
    "datetime": Reading(_plain_datetime, as_datetime),
}


def as_enum(text: pl.Expr, labels: dict[str, str]) -> pl.Expr:
    """The English value of an enum cell (Chinese labels and any letter case accepted), or null."""
    lookup = {**{v: v for v in labels.values()}, **labels}
    return text.str.to_lowercase().replace_strict(lookup, default=None, return_dtype=pl.Utf8)


def as_credit_code(text: pl.Expr) -> pl.Expr:
    return text.str.to_uppercase()


_CODE_VALUES = np.full(256, -1, dtype=np.int64)
_CODE_VALUES[np.frombuffer(CREDIT_CODE_ALPHABET.encode("ascii"), dtype=np.uint8)] = np.arange(31)


def credit_code_check_ok(codes: pl.Series) -> pl.Series:
    """Whether the check character (position 18) is the one GB 32100 computes from the first 17;
    null for a code not of the form (E004's concern).

    Vectorised over the codes' bytes with numpy: slicing 17 one-character strings per code in
    polars costs about ten times more.
    """
    rows = (codes.str.len_bytes() == 18).fill_null(False).arg_true()
    result = pl.Series(codes.name, [None] * len(codes), dtype=pl.Boolean)
    if len(rows) == 0:
        return result
    joined = codes.gather(rows).str.join("").item().encode("utf-8")
    values = _CODE_VALUES[np.frombuffer(joined, dtype=np.uint8).reshape(-1, 18)]
    expected = (31 - values[:, :17] @ np.array(CREDIT_CODE_WEIGHTS) % 31) % 31
    # A byte outside the alphabet (value -1) makes the code malformed: no verdict (null).
    in_alphabet = (values >= 0).all(axis=1)
    return result.scatter(rows.filter(pl.Series(in_alphabet)),
                          pl.Series((expected == values[:, 17])[in_alphabet]))
