"""A column's exact SQL type (``Entity.sql_types``): which values it holds, how they travel.

ddl.py writes the declared type into the table. Before a batch loads, the rows whose value
the type cannot hold (a string longer than ``varchar(40)``, a number outside
``numeric(12,2)``, or with more decimal places than it keeps, which PostgreSQL would round
without a word) become ``database_error`` rejects naming the value: a value is loaded as it
is or not at all. The rest travel in the type the column takes: a float bound for a
``numeric(p,s)`` column as a decimal of that scale (binary COPY cannot write a float into
numeric), an integer bound for ``smallint`` or ``integer`` in that width.

Other declared types (``text``, ``date``, a bare ``numeric``...) are written into the DDL
and left to the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from columnar_etl.contracts import ERROR_MESSAGE
from columnar_etl.declare import ROW_ID

__all__ = ["Declared", "misfits", "written"]

_LENGTH = re.compile(
    r"(?:character\s+varying|varchar|character|char)\s*\(\s*(\d+)\s*\)", re.IGNORECASE
)
_NUMERIC = re.compile(r"(?:numeric|decimal)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", re.IGNORECASE)
_INTEGERS: dict[str, type[pl.DataType]] = {
    "smallint": pl.Int16,
    "int2": pl.Int16,
    "integer": pl.Int32,
    "int": pl.Int32,
    "int4": pl.Int32,
}
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
        if (width := _INTEGERS.get(text.lower())) is not None:
            return cls(column, text, integer=width)
        return None

    def misfit(self, dtype: pl.DataType) -> pl.Expr | None:
        """True where the column's value (of ``dtype``) does not fit the type as it is."""
        value = pl.col(self.column)
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


def _declared(sql_types: Mapping[str, str], frame: pl.DataFrame) -> list[Declared]:
    found = (Declared.parse(column, sql) for column, sql in sql_types.items())
    return [d for d in found if d is not None and d.column in frame.columns]


def misfits(rows: pl.DataFrame, sql_types: Mapping[str, str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``rows`` whose values fit their columns' declared types, and the others as
    (ROW_ID, message) naming the first value that does not fit."""
    declared_here = _declared(sql_types, rows)
    if not declared_here:  # nothing to check: every row fits, and no copy of the batch is made
        return rows, pl.DataFrame(schema={ROW_ID: pl.UInt32, ERROR_MESSAGE: pl.String})
    messages = []
    for declared in declared_here:
        misfit = declared.misfit(rows.schema[declared.column])
        if misfit is not None:
            shown = pl.col(declared.column).cast(pl.String)
            says = pl.format(f"{declared.column}: {{}} does not fit {declared.sql}", shown)
            messages.append(pl.when(misfit.fill_null(False)).then(says))
    messages.append(pl.lit(None, pl.String))  # no misfit found: the row fits
    marked = rows.with_columns(pl.coalesce(messages).alias(ERROR_MESSAGE))
    refused = marked[ERROR_MESSAGE].is_not_null()
    return (
        marked.filter(~refused).drop(ERROR_MESSAGE),
        marked.filter(refused).select(ROW_ID, ERROR_MESSAGE),
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
