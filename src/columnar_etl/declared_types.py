"""A column's exact SQL type (``Entity.sql_types``): which values it holds, how they travel.

ddl.py writes the declared type into the table. Before a batch loads, the rows whose value
the type cannot hold (a string longer than ``varchar(40)``, a number outside
``numeric(12,2)``, or with more decimal places than it keeps, which PostgreSQL would round
without a word) become ``database_error`` rejects naming the value: a value is loaded as it
is or not at all. The rest travel in the type the column takes: a float bound for a
``numeric(p,s)`` column as a decimal of that scale (binary COPY cannot write a float into
numeric), an integer bound for ``smallint`` or ``integer`` in that width.

Where the target casts text into its declared type as it loads (PostgreSQL), that cast
checks a date, a time or a boolean carried as text. A target that keeps text as it is
(SQLite, whose columns have affinities) would keep a MySQL zero date as the text
``0000-00-00``: there, text bound for a ``date``, ``time``, ``timestamp`` or ``boolean``
column must be a value of that type (a real calendar day, a time within the day, a
PostgreSQL boolean word) or the row is a reject. Such a target keeps no NaN (it stores
NULL) and no negative zero (it stores 0) in a float column either: those are rejects too.

Other declared types (``text``, a bare ``numeric``...) are written into the DDL and left to
the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from columnar_etl.contracts import ERROR_MESSAGE
from columnar_etl.declare import ROW_ID
from columnar_etl.dialects import INTEGER_TYPES, NUMBER_TYPE

__all__ = ["Declared", "misfits", "written"]

_LENGTH = re.compile(
    r"(?:character\s+varying|varchar|character|char)\s*\(\s*(\d+)\s*\)", re.IGNORECASE
)
_NUMERIC = re.compile(r"(?:numeric|decimal)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", re.IGNORECASE)
#: The integer types narrower than a bigint: their width is checked as well.
_NARROW = {name: width for name, width in INTEGER_TYPES.items() if width != pl.Int64}
#: Polars keeps decimals of at most this many digits.
_MAX_DIGITS = 38


@dataclass(frozen=True)
class Declared:
    """What one declared type says about the values of its column."""

    column: str
    sql: str
    length: int | None = None
    """Characters a ``varchar(n)`` or ``char(n)`` holds."""
    precision: int | None = None
    """Digits a ``numeric(p,s)`` holds, ``scale`` of them after the point."""
    scale: int = 0
    digits: int | None = None
    """The declared precision itself, which text carrying a number may use in full (Polars'
    decimals stop at 38 digits, ``precision``)."""
    integer: type[pl.DataType] | None = None
    """The width of a ``smallint`` or ``integer``."""
    form: str | None = None
    """``date``, ``time``, ``timestamp`` or ``boolean``: text bound for such a column must
    be a value of it, where the target keeps text as it is."""

    @classmethod
    def parse(cls, column: str, sql: str) -> Declared | None:
        """The limits ``sql`` puts on a value, or None when it puts none we check."""
        text = sql.strip()
        if found := _LENGTH.fullmatch(text):
            return cls(column, text, length=int(found[1]))
        if found := _NUMERIC.fullmatch(text):
            precision, scale = int(found[1]), int(found[2] or 0)
            if not precision > 0 or scale > precision:
                return None  # PostgreSQL 15's numeric(2,3): left to the database
            # Polars carries 38 digits at most: a value needing more is refused, not cut.
            limited = min(precision, _MAX_DIGITS)
            return cls(column, text, precision=limited, scale=scale, digits=precision)
        if (width := _NARROW.get(text.lower())) is not None:
            return cls(column, text, integer=width)
        if found := _TEMPORAL.fullmatch(text):
            return cls(column, text, form=_FORMS[found[1].lower()])
        if found := NUMBER_TYPE.fullmatch(text):
            return cls(column, text, form="integer" if found[1] else "float")
        return None

    def misfit(self, dtype: pl.DataType, kept_as_text: bool = False) -> pl.Expr | None:
        """True where the column's value (of ``dtype``) does not fit the type as it is;
        ``kept_as_text``: the target stores text as it is, uncast (see the module)."""
        value = pl.col(self.column)
        if self.integer is not None and kept_as_text and dtype == pl.String:
            return value.is_not_null() & ~_is_integer(value, self.integer)
        if self.form is not None and kept_as_text and dtype == pl.String:
            return value.is_not_null() & ~_TEXT_FORMS[self.form](value.str.strip_chars())
        if self.length is not None and dtype == pl.String:
            return value.str.len_chars() > self.length
        if self.integer is not None and dtype.is_integer():
            return value.is_not_null() & value.cast(self.integer, strict=False).is_null()
        if self.digits is not None and dtype == pl.String:
            return value.is_not_null() & ~self._number_text_fits(value)
        if self.precision is None or not dtype.is_numeric():
            return None
        limit = 10 ** (self.precision - self.scale)
        if dtype.is_integer():
            return value.cast(pl.Float64).abs() >= limit  # exact for the limits that matter
        within = value.abs() < limit  # false for NaN and infinities too
        exact = pl.when(within).then(value).cast(self._decimal()).cast(pl.Float64) == value
        return value.is_not_null() & ~(within & exact)

    def travel(self, dtype: pl.DataType, decimals: bool) -> pl.Expr | None:
        """The column as it is written (its value unchanged), where the type wants another
        Arrow type than the contract's: ``decimals`` when the driver writes decimals."""
        value = pl.col(self.column)
        if self.integer is not None and dtype.is_integer():
            return value.cast(self.integer)
        if self.precision is not None and decimals and dtype.is_numeric():
            return value.cast(self._decimal())
        return None

    def _number_text_fits(self, text: pl.Expr) -> pl.Expr:
        """Whether number text (as a source writes a decimal: no exponent) is a value the
        declared ``numeric(p,s)`` holds as it is: at most p-s digits before the point, s
        after it (trailing zeros aside: 1.50 is 1.5), or NaN. A cast would round the rest."""
        assert self.digits is not None
        whole = self.digits - self.scale
        fraction = rf"(\.\d{{0,{self.scale}}}0*)?" if self.scale else r"(\.0*)?"
        number = rf"^[+-]?0*\d{{0,{whole}}}{fraction}$"
        trimmed = text.str.strip_chars()
        fits = trimmed.str.contains(number) & trimmed.str.contains(r"\d")
        return fits | trimmed.str.to_lowercase().eq("nan")

    def _decimal(self) -> pl.Decimal:
        return pl.Decimal(self.precision or _MAX_DIGITS, self.scale)


#: A declared date, time, timestamp or boolean (``time(6) with time zone``, ``timestamptz``).
_TEMPORAL = re.compile(
    r"(date|time|timetz|timestamp|timestamptz|boolean|bool)\s*(\(\s*\d+\s*\))?"
    r"(\s+with(out)?\s+time\s+zone)?",
    re.IGNORECASE,
)
_FORMS = {
    "date": "date",
    "time": "time",
    "timetz": "time",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
    "boolean": "boolean",
    "bool": "boolean",
}
_CLOCK = r"(\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?"
_OFFSET = r"(?:[+-]\d\d(?::?\d\d)?|Z)?"
_DAY = r"(\d{4,})-(\d\d?)-(\d\d?)"


def _calendar_day(year: pl.Expr, month: pl.Expr, day: pl.Expr, bc: pl.Expr) -> pl.Expr:
    """Whether the parts name a day of the proleptic Gregorian calendar (1 BC is leap)."""
    # The astronomical year, moved by whole 400-year cycles to stay positive.
    cycle = pl.when(bc).then(1 - year).otherwise(year) + 400_000
    leap = ((cycle % 4 == 0) & (cycle % 100 != 0)) | (cycle % 400 == 0)
    days = (
        pl.when(month == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )
    return month.is_between(1, 12) & day.is_between(1, days) & ((year > 0) | ~bc)


def _clock(hour: pl.Expr, minute: pl.Expr, second: pl.Expr, text: pl.Expr) -> pl.Expr:
    """Whether the parts are a time within a day (24:00:00 is its end, as PostgreSQL says)."""
    second = second.fill_null(0)
    within = (hour < 24) & (minute < 60) & (second < 60)
    end = (hour == 24) & (minute == 0) & (second == 0) & ~text.str.contains(r"\.\d*[1-9]")
    return within | end


def _parts(text: pl.Expr, pattern: str) -> pl.Expr:
    return text.str.extract_groups(pattern)


def _is_date(text: pl.Expr) -> pl.Expr:
    parts = _parts(text, f"^{_DAY}( BC)?$")
    number = [parts.struct.field(str(n)).cast(pl.Int64) for n in (1, 2, 3)]
    bc = parts.struct.field("4").is_not_null()
    infinite = text.is_in(["infinity", "-infinity"])
    return infinite | _calendar_day(*number, bc).fill_null(False)


def _is_time(text: pl.Expr) -> pl.Expr:
    parts = _parts(text, f"^{_CLOCK}{_OFFSET}$")
    number = [parts.struct.field(str(n)).cast(pl.Int64) for n in (1, 2, 3)]
    return _clock(*number, text).fill_null(False)


def _is_timestamp(text: pl.Expr) -> pl.Expr:
    parts = _parts(text, f"^{_DAY}(?:[ T]{_CLOCK})?{_OFFSET}( BC)?$")
    number = [parts.struct.field(str(n)).cast(pl.Int64) for n in range(1, 7)]
    bc = parts.struct.field("7").is_not_null()
    clock = _clock(number[3].fill_null(0), number[4].fill_null(0), number[5], text)
    infinite = text.is_in(["infinity", "-infinity"])
    return infinite | (_calendar_day(*number[:3], bc) & clock).fill_null(False)


def _is_boolean(text: pl.Expr) -> pl.Expr:
    words = ["t", "true", "y", "yes", "on", "1", "f", "false", "n", "no", "off", "0"]
    return text.str.to_lowercase().is_in(words)


def _is_integer(text: pl.Expr, width: type[pl.DataType] = pl.Int64) -> pl.Expr:
    """Plain integer text within ``width`` (a bigint's, unless narrower)."""
    return text.str.contains(r"^[+-]?\d+$") & text.cast(width, strict=False).is_not_null()


def _is_float(text: pl.Expr) -> pl.Expr:
    """A finite decimal number, as a double's text is written (no NaN, no infinity: their
    text would be kept as text)."""
    return text.str.contains(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


_TEXT_FORMS = {
    "integer": _is_integer,
    "float": _is_float,
    "date": _is_date,
    "time": _is_time,
    "timestamp": _is_timestamp,
    "boolean": _is_boolean,
}


def _declared(sql_types: Mapping[str, str], frame: pl.DataFrame) -> list[Declared]:
    found = (Declared.parse(column, sql) for column, sql in sql_types.items())
    return [d for d in found if d is not None and d.column in frame.columns]


def misfits(
    rows: pl.DataFrame, sql_types: Mapping[str, str], kept_as_text: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``rows`` whose values fit their columns' declared types, and the others as
    (ROW_ID, message) naming the first value that does not fit. ``kept_as_text``: the
    target stores text as it is and keeps no NaN or negative zero (SQLite)."""
    checks = [
        (declared, misfit)
        for declared in _declared(sql_types, rows)
        if (misfit := declared.misfit(rows.schema[declared.column], kept_as_text)) is not None
    ]
    unkept = (
        [_unkept_float(c) for c, t in rows.schema.items() if t.is_float()] if kept_as_text else []
    )
    if not checks and not unkept:  # nothing to check: no copy of the batch is made
        return rows, pl.DataFrame(schema={ROW_ID: pl.UInt32, ERROR_MESSAGE: pl.String})
    messages = []
    for declared, misfit in checks:
        shown = pl.col(declared.column).cast(pl.String)
        says = pl.format(f"{declared.column}: {{}} does not fit {declared.sql}", shown)
        messages.append(pl.when(misfit.fill_null(False)).then(says))
    messages += unkept
    messages.append(pl.lit(None, pl.String))  # no misfit found: the row fits
    marked = rows.with_columns(pl.coalesce(messages).alias(ERROR_MESSAGE))
    refused = marked[ERROR_MESSAGE].is_not_null()
    return (
        marked.filter(~refused).drop(ERROR_MESSAGE),
        marked.filter(refused).select(ROW_ID, ERROR_MESSAGE),
    )


def _unkept_float(column: str) -> pl.Expr:
    """The message for a float the target would not keep as it is: NaN (stored as NULL),
    -0.0 (stored as 0)."""
    value = pl.col(column)
    negative_zero = (value == 0) & (pl.lit(1.0) / value < 0)
    return (
        pl.when(value.is_nan())
        .then(pl.lit(f"{column}: NaN: the target keeps no NaN (it would store NULL)"))
        .when(negative_zero)
        .then(pl.lit(f"{column}: -0.0: the target keeps no negative zero (it would store 0)"))
    )


def written(rows: pl.DataFrame, sql_types: Mapping[str, str], decimals: bool) -> pl.DataFrame:
    """``rows`` (which fit, see :func:`misfits`) in the Arrow types their declared columns
    take; ``decimals``: the driver writes decimals (else a number travels as it is)."""
    casts = (d.travel(rows.schema[d.column], decimals) for d in _declared(sql_types, rows))
    rows = rows.with_columns(cast for cast in casts if cast is not None)
    if decimals:
        return rows
    # A driver that takes no decimals (SQLite) gets their exact digits as text.
    return rows.with_columns(pl.col(pl.Decimal).cast(pl.String))
