"""Which PostgreSQL type each source column becomes, and how it is read so that no value
changes on the way.

connectorx (0.4.6) carries many types exactly, but not all: it rounds decimals to 10 places,
fails past 18 digits before the point, on MySQL zero dates, on PostgreSQL ``infinity`` and dates
before Christ, panics on ``interval``, ``timetz`` and ``money``, re-serialises JSON
(``2.50`` becomes ``2.5``), reads MySQL ``timestamp`` as the server's wall clock without its
zone and PostgreSQL ``time '24:00'`` as midnight. A column of such a type is read as text by
a SQL expression of the source (``{c}`` is the quoted column), exact by construction, and
cast back to its PostgreSQL type by the target: a value the target type cannot hold (a zero
date, an unsigned value past the range) then fails that cast and becomes a reject with its
reason, never a silent NULL. Measured in ``tests/integration/test_typemap.py``; the table is
in ``docs/types.md``.

One table per source dialect, keyed by the type's name as the catalog gives it
(:func:`catalog_sql`); within a name the first rule whose condition holds applies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import polars as pl

from columnar_etl.declare import SourceSpec, is_sql_type, key_dtype
from columnar_etl.dialects import DIALECTS
from columnar_etl.errors import SourceError

__all__ = [
    "NATIVE",
    "Carry",
    "ColumnType",
    "Refuse",
    "carry",
    "catalog_sql",
    "column_type",
    "every_refusal",
    "raise_for_uncarried",
    "refusals",
    "select_list",
    "sqlite_apart_count",
    "sqlite_read_apart",
    "table_rules",
]

NATIVE = "{c}"
"""The read expression of a column connectorx carries exactly as it is."""


@dataclass(frozen=True)
class ColumnType:
    """A source column's type as its catalog states it."""

    name: str
    """The type's name, lower case, without length or precision: ``decimal``, ``tinyint(1)``
    (MySQL's boolean), ``timestamp with time zone``, ``array``, ``enum``."""
    length: int | None = None
    """Characters of a char/varchar, bits of a MySQL bit."""
    precision: int | None = None
    """Digits of a decimal (None: unconstrained), fractional second digits of a time type."""
    scale: int | None = None
    unsigned: bool = False
    labels: tuple[str, ...] = ()
    """The values an enum may hold, in order (the scaffold checks for them)."""
    spelled: str = ""
    """The catalog's full spelling (``bigint(20) unsigned``, ``integer[]``): for messages, and
    as the target type where PostgreSQL reads PostgreSQL."""


@dataclass(frozen=True)
class Carry:
    """How one column is read, and what it becomes in PostgreSQL."""

    target: str
    """The PostgreSQL type (``{length}``, ``{precision}``, ``{scale}``, ``{spelled}`` filled
    in from the column by :func:`carry`)."""
    dtype: pl.DataType
    """The Polars dtype of the column once read (cast exactly from what connectorx gives)."""
    read: str = NATIVE
    """The source SQL that reads the column (``{c}``: the quoted column name)."""
    why: str = ""
    """Why the column is read as text rather than as it is."""
    when: Callable[[ColumnType], bool] | None = None
    """The columns of the type this rule is for (None: every one)."""
    unordered: str = ""
    """Where set, why the source sorts the type's values otherwise than it compares them:
    such a column is never (part of) a key, since batches are key ranges it compares."""

    @property
    def as_text(self) -> bool:
        return self.read != NATIVE

    @property
    def keyable(self) -> bool:
        """Whether a column read so can be (part of) a key: read as it is, as an integer or
        text, which the source sorts as it compares."""
        return not self.as_text and not self.unordered and key_dtype(self.dtype)

    def select(self, quoted: str) -> str:
        """The read expression of the column ``quoted``, named as the column."""
        return quoted if not self.as_text else f"{self.read.format(c=quoted)} AS {quoted}"


@dataclass(frozen=True)
class Refuse:
    """A type the tool does not carry: ``etl init`` and ``etl run`` stop before loading."""

    reason: str
    when: Callable[[ColumnType], bool] | None = None
    declared_too: bool = True
    """Whether ``etl run`` refuses it too, where a migration declares the column's dtype
    itself (SQLite's untyped column is then read as declared)."""


Rule = Carry | Refuse


def carry(dialect: str, column: ColumnType) -> Carry | Refuse:
    """The rule for ``column`` of a ``dialect`` source, its target type filled in."""
    rules = TYPEMAPS[dialect].get(column.name) or FALLBACK[dialect]
    rule = next(r for r in rules if r.when is None or r.when(column))
    if isinstance(rule, Refuse):
        return replace(rule, reason=rule.reason.format(t=column.spelled or column.name))
    fields = {
        "length": column.length,
        "precision": column.precision,
        "scale": column.scale,
        "spelled": column.spelled,
    }
    read = rule.read.format(c="{c}", **fields)
    target = rule.target.format(**fields)
    if not is_sql_type(target):  # '"char"', numeric(5,-3): no declaration could name it
        said = f"{column.spelled or column.name}: no PostgreSQL type to carry it as"
        return Refuse(said, declared_too=False)
    return replace(rule, target=target, read=read, when=None)


def raise_for_unordered_keys(spec: SourceSpec, rules: Mapping[str, Rule]) -> None:
    """Stop before reading where a key column's values are sorted otherwise than compared
    (``Carry.unordered``): its key ranges would miss rows and repeat others."""
    for column in spec.key_columns:
        rule = rules.get(column)
        if isinstance(rule, Carry) and rule.unordered:
            raise SourceError(
                f"source table {spec.table!r}, key column {column!r} is {rule.unordered}: "
                "batches by its ranges would miss rows; declare another key, or none"
            )


def table_rules(
    read: Callable[[str], pl.DataFrame], dialect: str, table: str
) -> dict[str, Carry | Refuse]:
    """Each column of source table ``table``, in order, with its rule, from the source's
    catalog (``read`` runs a query on the source: ``Source.read``)."""
    catalog = read(catalog_sql(dialect, DIALECTS[dialect].literal(table)))
    return {
        str(row["name"]): carry(dialect, column_type(dialect, row))
        for row in catalog.rows(named=True)
    }


def refusals(table: str, rules: Mapping[str, Carry | Refuse]) -> list[str]:
    """Each column of ``table`` whose type is refused, as ``source table 't', column 'c':
    why``."""
    return [
        _refusal(table, column, rule) for column, rule in rules.items() if isinstance(rule, Refuse)
    ]


def _refusal(table: str, column: str, rule: Refuse) -> str:
    return f"source table {table!r}, column {column!r}: {rule.reason}"


def every_refusal(found: Sequence[str]) -> str:
    """One line of the ``found`` refusals: the one, or how many and each."""
    return found[0] if len(found) == 1 else f"{len(found)} columns: {'; '.join(found)}"


def raise_for_uncarried(spec: SourceSpec, rules: Mapping[str, Carry | Refuse]) -> None:
    """What ``etl run`` checks before loading anything: a SourceError naming the first
    column ``spec`` reads (as it is: not through its own ``read_as``) whose type the tool
    does not carry at all."""
    for column in spec.columns:
        rule = rules.get(column)
        if isinstance(rule, Refuse) and rule.declared_too and column not in spec.read_as:
            raise SourceError(_refusal(spec.table, column, rule))


def select_list(dialect: str, rules: Mapping[str, Carry]) -> str:
    """The SELECT list reading ``rules``' columns as they say, each under its own name."""
    quote = DIALECTS[dialect].quote
    return ", ".join(rule.select(quote(column)) for column, rule in rules.items())


# -- conditions ----------------------------------------------------------------------------


def _fits_connectorx_decimal(column: ColumnType) -> bool:
    """connectorx reads a decimal as decimal128(38, 10) through a 96-bit decimal, rescaled
    to 10 decimals: exact while the value times 10**10 stays under 2**96, so at most 18
    digits before the point and 10 after (measured: (20,12) rounds; 7922816251426433760 in a
    (20,0) fails the read, one less passes)."""
    p, s = column.precision, column.scale
    return p is not None and s is not None and 0 <= s <= 10 and p - s <= 18


def _unsigned(column: ColumnType) -> bool:
    return column.unsigned


def _precise(column: ColumnType) -> bool:
    return column.precision is not None


def _timed(target: str, read: str, why: str) -> tuple[Rule, ...]:
    """Text rules for a time type: with its fractional digits where the catalog gives them."""
    precise = Carry(f"{target}({{precision}})", pl.String(), read, why, when=_precise)
    return (precise, replace(precise, target=target, when=None))


# -- MySQL / MariaDB ---------------------------------------------------------------------

_MYSQL_TEXT = "CAST({c} AS CHAR)"
# UTC from the epoch, not CONVERT_TZ: in a zone with summer time, the hour that repeats in
# autumn has two instants behind one wall-clock time. A zero timestamp stays '0000-00-00...'
# (UNIX_TIMESTAMP would make it 1970) so that the target's cast refuses it.
_MYSQL_UTC = (
    "CASE WHEN CAST({c} AS CHAR) LIKE '0000-00-00%' THEN CAST({c} AS CHAR) ELSE "
    "DATE_FORMAT(TIMESTAMPADD(MICROSECOND, ROUND(UNIX_TIMESTAMP({c}) * 1000000), "
    "TIMESTAMP'1970-01-01 00:00:00'), '%Y-%m-%d %H:%i:%s.%f+00') END"
)
# '\x' + hex: PostgreSQL's own text form of bytea. CHAR(92) is the backslash, spelled so that
# no sql_mode (NO_BACKSLASH_ESCAPES or not) reads it otherwise.
_MYSQL_HEX = "CONCAT(CHAR(92 USING utf8mb4), 'x', LOWER(HEX({c})))"
_ZERO_DATES = (
    "connectorx fails the whole read on a zero date ('0000-00-00'); as text, the target's "
    "cast makes each one a reject with its reason"
)
_BINARY = Carry(
    "bytea",
    pl.String(),
    _MYSQL_HEX,
    "connectorx gives large_binary, which the ADBC PostgreSQL driver does not ingest",
)
_MYSQL_TEXTS = Carry("text", pl.String())
# CHAR(0) and VARCHAR(0) hold '' or NULL; PostgreSQL has no length 0.
_ZERO_LENGTH = Carry("text", pl.String(), when=lambda c: c.length == 0)
_ENUM_ORDER = "an enum, which MySQL sorts by its position in the list, not as text"
_SET_ORDER = "a set, which MySQL sorts by its bits, not as text"
_SPATIAL = Refuse("{t}: spatial types are not carried (no PostGIS target is assumed)")

MYSQL: Mapping[str, tuple[Rule, ...]] = {
    "tinyint(1)": (
        Carry(
            "boolean",
            pl.String(),
            _MYSQL_TEXT,
            "MySQL's boolean is a tinyint that may hold 2 or -1: as text, only 0 and 1 cast "
            "to boolean and any other value is a reject, not true",
        ),
    ),
    "tinyint": (Carry("smallint", pl.Int16()),),
    "smallint": (Carry("integer", pl.Int32(), when=_unsigned), Carry("smallint", pl.Int16())),
    "mediumint": (Carry("integer", pl.Int32()),),
    "int": (Carry("bigint", pl.Int64(), when=_unsigned), Carry("integer", pl.Int32())),
    "bigint": (
        Carry(
            "numeric(20)",
            pl.String(),
            _MYSQL_TEXT,
            "up to 18446744073709551615: past bigint, and PostgreSQL has no unsigned type",
            when=_unsigned,
        ),
        Carry("bigint", pl.Int64()),
    ),
    "decimal": (
        Carry("numeric({precision},{scale})", pl.Decimal(38, 10), when=_fits_connectorx_decimal),
        Carry(
            "numeric({precision},{scale})",
            pl.String(),
            _MYSQL_TEXT,
            "more than 18 digits before the point or 10 after: connectorx fails or rounds",
        ),
    ),
    "float": (Carry("real", pl.Float32()),),
    "double": (Carry("double precision", pl.Float64()),),
    "char": (_ZERO_LENGTH, Carry("char({length})", pl.String())),
    "varchar": (_ZERO_LENGTH, Carry("varchar({length})", pl.String())),
    **dict.fromkeys(("tinytext", "text", "mediumtext", "longtext"), (_MYSQL_TEXTS,)),
    "json": (Carry("jsonb", pl.String()),),
    # ORDER BY sorts an enum by its position in the list, a set by its bits; a comparison
    # with a value compares text: a key range of them would miss rows and repeat others.
    "enum": (Carry("text", pl.String(), unordered=_ENUM_ORDER),),
    "set": (Carry("text", pl.String(), unordered=_SET_ORDER),),
    "uuid": (Carry("uuid", pl.String()),),
    "year": (Carry("smallint", pl.Int16()),),
    "date": (Carry("date", pl.String(), _MYSQL_TEXT, _ZERO_DATES),),
    "datetime": _timed("timestamp", _MYSQL_TEXT, _ZERO_DATES),
    "timestamp": _timed(
        "timestamptz",
        _MYSQL_UTC,
        "connectorx gives the session's wall clock without its zone (and fails on a zero "
        "date): read as UTC text from the epoch",
    ),
    "time": _timed(
        "time",
        _MYSQL_TEXT,
        "a duration of -838..838 hours that connectorx fails on; as text, a value outside a "
        "day is a reject",
    ),
    **dict.fromkeys(
        ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"), (_BINARY,)
    ),
    "bit": (
        Carry(
            "bit({length})",
            pl.String(),
            "LPAD(BIN({c}), {length}, '0')",
            "connectorx gives the bits as bytes",
        ),
    ),
    **dict.fromkeys(
        (
            "geometry",
            "point",
            "linestring",
            "polygon",
            "multipoint",
            "multilinestring",
            "multipolygon",
            "geometrycollection",
        ),
        (_SPATIAL,),
    ),
}

# -- PostgreSQL -------------------------------------------------------------------------------

_PG_TEXT = "{c}::text"
_PG_SAME = Carry(
    "{spelled}",
    pl.String(),
    _PG_TEXT,
    "connectorx fails or changes it; PostgreSQL reads its own text form back exactly",
)


def _pg_dated(value: str, form: str) -> Carry:
    """A timestamp as text of one form, its microseconds always written (a ``timestamptz``
    given as ``value`` in UTC): a target that keeps the text as it is (SQLite) holds one
    form per column. The era is written for dates before Christ only: such a target holds
    2020-03-15, not 2020-03-15 AD. ``infinity`` has no to_char(); its text is the same in
    every style. (A date is read as its own text: to_char() would cast it to a timestamp.)"""
    read = (
        f"CASE WHEN NOT isfinite({{c}}) THEN {{c}}::text "
        f"WHEN {value} < '0001-01-01' THEN to_char({value}, '{form} BC') "
        f"ELSE to_char({value}, '{form}') END"
    )
    why = "connectorx fails on infinity, dates BC and past year 262143"
    return Carry("{spelled}", pl.String(), read, why)


POSTGRES: Mapping[str, tuple[Rule, ...]] = {
    "smallint": (Carry("smallint", pl.Int16()),),
    "integer": (Carry("integer", pl.Int32()),),
    "bigint": (Carry("bigint", pl.Int64()),),
    "numeric": (
        Carry("numeric({precision},{scale})", pl.Decimal(38, 10), when=_fits_connectorx_decimal),
        Carry(
            "{spelled}",
            pl.String(),
            _PG_TEXT,
            "more than 18 digits before the point or 10 after, or unconstrained (NaN too): "
            "connectorx rounds or fails",
        ),
    ),
    "real": (Carry("real", pl.Float32()),),
    "double precision": (Carry("double precision", pl.Float64()),),
    "character": (
        Carry("char({length})", pl.String(), when=lambda c: c.length is not None),
        Carry("bpchar", pl.String()),
    ),
    "character varying": (
        Carry("varchar({length})", pl.String(), when=lambda c: c.length is not None),
        Carry("varchar", pl.String()),
    ),
    "text": (Carry("text", pl.String()),),
    "boolean": (Carry("boolean", pl.Boolean()),),
    "uuid": (Carry("uuid", pl.String()),),
    "json": (Carry("json", pl.String(), _PG_TEXT, "connectorx re-serialises it"),),
    "jsonb": (Carry("jsonb", pl.String(), _PG_TEXT, "connectorx turns 2.50 into 2.5"),),
    "bytea": (
        Carry("bytea", pl.String(), _PG_TEXT, "large_binary is not ingested by ADBC PostgreSQL"),
    ),
    # Its own text in the session's ISO DateStyle (Dialect.text_settings): to_char() would
    # cast it to a timestamp, which ends in 294276 where a date goes on to 5874897.
    "date": (Carry("date", pl.String(), _PG_TEXT, "connectorx fails on infinity and dates BC"),),
    "time without time zone": (replace(_PG_SAME, why="connectorx reads 24:00:00 as 00:00:00"),),
    "timestamp without time zone": (_pg_dated("{c}", "YYYY-MM-DD HH24:MI:SS.US"),),
    "timestamp with time zone": (
        _pg_dated("{c} AT TIME ZONE 'UTC'", 'YYYY-MM-DD HH24:MI:SS.US"+00"'),
    ),
    "enum": (
        Carry("text", pl.String(), _PG_TEXT, "the target has no such type; its label as text"),
    ),
    "user-defined": (Refuse("{t}: a user-defined type other than an enum is not carried"),),
    # The target has no such element type (an enum's array among them).
    "user-defined array": (Refuse("{t}: an array of a user-defined type is not carried"),),
}

# -- SQLite -------------------------------------------------------------------------------
# SQLite keeps any value in any column, under the affinity its declared type gives
# (https://sqlite.org/datatype3.html): the declared length or width is no fact about the data.
# A value connectorx cannot read as the column's type fails the read, loudly.

_SQLITE_TEXT = "CAST({c} AS TEXT)"
# A real as the shortest text that gives back the very double (0.1, not the
# 0.10000000000000001 of 17 digits): 15, 16 or 17 significant digits; CAST AS TEXT keeps 15
# whether or not they are enough. The '!' that lets printf write 17 digits also writes 1e-40
# as 1.0e-40, a digit more for a numeric: the '.0' is dropped.
_SQLITE_SHORTEST = (
    "replace(CASE WHEN CAST(printf('%!.15g', {c}) AS REAL) = {c} THEN printf('%!.15g', {c}) "
    "WHEN CAST(printf('%!.16g', {c}) AS REAL) = {c} THEN printf('%!.16g', {c}) "
    "ELSE printf('%!.17g', {c}) END, '.0e', 'e')"
)
_SQLITE_NUMBER = (
    f"CASE WHEN typeof({{c}}) = 'real' THEN {_SQLITE_SHORTEST} ELSE CAST({{c}} AS TEXT) END"
)
# A real in a column of declared scale s: written with s decimals where that text gives back
# the very double (0.1 is 0.10, the value that was meant; SQLite's printf writes 16
# significant digits, then zeros), else as its shortest text, which the scale then refuses
# (0.125 in a decimal(10,2): a reject naming it), never a rounding.
_SQLITE_SCALED = (
    "CASE WHEN typeof({c}) = 'real' AND CAST(printf('%.{scale}f', {c}) AS REAL) = {c} "
    "THEN printf('%.{scale}f', {c}) "
    f"WHEN typeof({{c}}) = 'real' THEN {_SQLITE_SHORTEST} ELSE CAST({{c}} AS TEXT) END"
)
# SQLite keeps a date as any text, and PostgreSQL's cast reads more than dates: 'today',
# 'epoch', 'J2451187', a zone's abbreviation (dropped by a cast to timestamp), a seventh
# decimal of a second (rounded), a time after a date (dropped by a cast to date). Only the
# plain ISO forms are read as they are; any other value gets a prefix that makes the cast
# fail, so that it is a reject saying why, never another instant.
_SQLITE_OFFSET = (
    "{c} GLOB '*[+-][0-9][0-9]:[0-9][0-9]' OR {c} GLOB '*[+-][0-9][0-9][0-9][0-9]' "
    "OR {c} GLOB '*[Zz]'"
)
_DATE_FORMS = ("9999-99-99",)
_TIME_FORMS = ("99:99", "99:99:99", *(f"99:99:99.{'9' * n}" for n in range(1, 7)))
_DATETIME_FORMS = (
    *_DATE_FORMS,
    *(f"{d}{t}{h}" for d in _DATE_FORMS for t in " T" for h in _TIME_FORMS),
)


def _sqlite_plain(forms: Sequence[str], shape: str) -> str:
    """The read of a SQLite date, time or datetime column: its text where it has one of
    ``forms`` ('9' a digit), else the text after a prefix naming ``shape``."""
    plain = " OR ".join(f"{{c}} GLOB '{form.replace('9', '[0-9]')}'" for form in forms)
    return (
        f"CASE WHEN {{c}} IS NULL THEN NULL WHEN typeof({{c}}) = 'text' AND ({plain}) THEN {{c}} "
        f"WHEN {_SQLITE_OFFSET} THEN 'with a time zone: ' || {{c}} "
        f"ELSE 'not of the form {shape}: ' || CAST({{c}} AS TEXT) END"
    )


_SQLITE_DATES = "text in its plain ISO form; any other is a reject naming the form"

SQLITE: Mapping[str, tuple[Rule, ...]] = {
    "integer": (Carry("bigint", pl.Int64()),),
    "real": (Carry("double precision", pl.Float64()),),
    "text": (Carry("text", pl.String()),),
    "blob": (
        Carry(
            "bytea",
            pl.String(),
            # hex(NULL) is '' in SQLite: NULL must stay NULL, not an empty bytea.
            "CASE WHEN {c} IS NULL THEN NULL ELSE '\\x' || lower(hex({c})) END",
            "large_binary is not ingested by ADBC PostgreSQL",
        ),
    ),
    "numeric": (
        Carry(
            "numeric({precision},{scale})",
            pl.String(),
            _SQLITE_SCALED,
            "SQLite keeps it as an integer or a double: its text, every digit of it",
            when=lambda c: c.precision is not None and c.scale is not None,
        ),
        Carry("numeric", pl.String(), _SQLITE_NUMBER, "see numeric(p,s)"),
    ),
    "boolean": (
        Carry(
            "boolean",
            pl.String(),
            _SQLITE_TEXT,
            "any value may stand there: as text, only 0/1/true/false cast, the rest is a reject",
        ),
    ),
    "date": (Carry("date", pl.String(), _sqlite_plain(_DATE_FORMS, "YYYY-MM-DD"), _SQLITE_DATES),),
    "time": (
        Carry(
            "time", pl.String(), _sqlite_plain(_TIME_FORMS, "HH:MM[:SS[.ffffff]]"), _SQLITE_DATES
        ),
    ),
    "datetime": (
        Carry(
            "timestamp",
            pl.String(),
            _sqlite_plain(_DATETIME_FORMS, "YYYY-MM-DD[ HH:MM[:SS[.ffffff]]]"),
            _SQLITE_DATES,
        ),
    ),
    "json": (
        Carry(
            "jsonb",
            pl.String(),
            _SQLITE_TEXT,
            "connectorx knows no JSON column's type and fails where its first value is NULL",
        ),
    ),
    "uuid": (Carry("uuid", pl.String(), _SQLITE_TEXT, "a uuid may be stored as a blob"),),
    "": (
        Refuse(
            "{t}: a column with no declared type holds any kind of value; declare its type",
            declared_too=False,
        ),
    ),
}

#: A SQLite column read as it is fails connectorx's whole read where it holds a value of
#: another storage class too (text in an INTEGER column, a blob in a TEXT one). Such a column
#: is read as text: the target's cast (into SQLite, the form check of declared_types) then
#: makes each value that is no number of the type a reject; a blob's bytes are its text where
#: they are UTF-8, else a reject (Source.read_batch). By target type: the storage classes
#: read as they are, the text read otherwise, and what becomes of the others.
_SQLITE_APART: Mapping[str, tuple[str, str, str]] = {
    "bigint": ("'integer'", _SQLITE_TEXT, "each is a reject unless a number"),
    "double precision": ("'real', 'integer'", _SQLITE_NUMBER, "each is a reject unless a number"),
    "text": ("'text'", _SQLITE_TEXT, "a blob is the UTF-8 text of its bytes, else a reject"),
}


def sqlite_apart_count(rule: Carry | Refuse) -> str | None:
    """SQL (``{c}``: the quoted column) counting the values of a SQLite column that ``rule``
    could not read as it is; None where ``rule`` reads text anyway."""
    if not isinstance(rule, Carry) or rule.as_text or rule.target not in _SQLITE_APART:
        return None
    # COALESCE: the SUM over an empty table is a NULL whose type connectorx cannot infer.
    kinds = _SQLITE_APART[rule.target][0]
    return f"COALESCE(SUM(typeof({{c}}) NOT IN ({kinds}, 'null')), 0)"


def sqlite_read_apart(rule: Carry, count: int) -> Carry:
    """``rule`` for a SQLite column holding ``count`` values of another storage class."""
    _, read, then = _SQLITE_APART[rule.target]
    return Carry(
        rule.target, pl.String(), read, f"values of another kind in it ({count:,}): {then}"
    )


TYPEMAPS: Mapping[str, Mapping[str, tuple[Rule, ...]]] = {
    "mysql": MYSQL,
    "postgresql": POSTGRES,
    "sqlite": SQLITE,
}

#: For a type the table does not name. PostgreSQL: a built-in type (inet, interval, arrays,
#: timetz, money, xml...) is read as its text and cast back to itself.
FALLBACK: Mapping[str, tuple[Rule, ...]] = {
    "mysql": (Refuse("{t}: no known way to carry this MySQL/MariaDB type"),),
    "postgresql": (_PG_SAME,),
    "sqlite": (Carry("text", pl.String()),),
}

# -- catalogs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _ColumnCatalog:
    """How one database lists a table's columns, and how each row of the list is read."""

    sql: str
    """One row per column of table ``{table}`` (a literal), in order."""
    column: Callable[[Mapping[str, object]], ColumnType]
    """A row of ``sql`` as a :class:`ColumnType`."""


def _server_column(row: Mapping[str, object]) -> ColumnType:
    """A row of a server's catalog: name, type (the name :data:`TYPEMAPS` keys by), spelled,
    length, precision, scale, is_unsigned (0/1) and, for an enum, its labels."""

    def number(key: str) -> int | None:
        value = row.get(key)
        return None if value is None else int(value)  # type: ignore[call-overload]

    return ColumnType(
        name=str(row["type"]),
        length=number("length"),
        precision=number("precision"),
        scale=number("scale"),
        unsigned=bool(row.get("is_unsigned")),
        labels=_labels(row),
        spelled=str(row["spelled"]),
    )


def _sqlite_column(row: Mapping[str, object]) -> ColumnType:
    """A row of SQLite's catalog: its name and the type as declared, read by affinity."""
    return sqlite_type(str(row["spelled"] or ""))


_CATALOG = {
    "mysql": _ColumnCatalog(
        "SELECT column_name AS name, "
        "CASE WHEN column_type LIKE 'tinyint(1)%' THEN 'tinyint(1)' ELSE data_type END AS type, "
        "column_type AS spelled, "
        "CASE WHEN data_type = 'bit' THEN numeric_precision "
        "ELSE character_maximum_length END AS length, "
        "COALESCE(datetime_precision, numeric_precision) AS `precision`, "
        "numeric_scale AS scale, column_type LIKE '% unsigned%' AS is_unsigned "
        "FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND table_name = {table} ORDER BY ordinal_position",
        _server_column,
    ),
    "postgresql": _ColumnCatalog(
        "SELECT c.column_name AS name, "
        "CASE WHEN t.typtype = 'e' THEN 'enum' WHEN c.data_type = 'ARRAY' AND EXISTS ("
        "SELECT 1 FROM pg_type e WHERE e.oid = t.typelem "
        "AND e.typnamespace <> 'pg_catalog'::regnamespace) THEN 'user-defined array' "
        "WHEN c.data_type = 'ARRAY' THEN 'array' "
        "ELSE lower(c.data_type) END AS type, "
        "format_type(a.atttypid, a.atttypmod) AS spelled, "
        "c.character_maximum_length AS length, "
        "CASE WHEN c.data_type = 'numeric' THEN c.numeric_precision "
        "ELSE c.datetime_precision END AS precision, "
        "c.numeric_scale AS scale, 0 AS is_unsigned, "
        "CASE WHEN t.typtype = 'e' THEN (SELECT array_to_json(array_agg(e.enumlabel "
        "ORDER BY e.enumsortorder))::text FROM pg_enum e WHERE e.enumtypid = t.oid) "
        "END AS labels "
        "FROM information_schema.columns c "
        "JOIN pg_attribute a ON a.attrelid = to_regclass(quote_ident(c.table_name)) "
        "AND a.attname = c.column_name "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE c.table_schema = current_schema() AND c.table_name = {table} "
        "ORDER BY c.ordinal_position",
        _server_column,
    ),
    # table_xinfo: a generated column (hidden 2 or 3) holds data too; table_info hides it.
    "sqlite": _ColumnCatalog(
        "SELECT name, type AS spelled FROM pragma_table_xinfo({table}) "
        "WHERE hidden <> 1 ORDER BY cid",
        _sqlite_column,
    ),
}


def catalog_sql(dialect: str, table_literal: str) -> str:
    """The query listing the columns of a table (its name already a literal of the
    dialect) with what :func:`column_type` needs."""
    return _CATALOG[dialect].sql.format(table=table_literal)


def column_type(dialect: str, row: Mapping[str, object]) -> ColumnType:
    """A row of :func:`catalog_sql` as a :class:`ColumnType`."""
    return _CATALOG[dialect].column(row)


#: One value of MySQL's ``enum('a','it''s')`` spelling (a quote doubled within it).
_MYSQL_LABEL = re.compile(r"'((?:[^']|'')*)'")


def _labels(row: Mapping[str, object]) -> tuple[str, ...]:
    """An enum's values: PostgreSQL's catalog lists them as JSON, MySQL's spells them."""
    listed = row.get("labels")
    if listed is not None:
        return tuple(json.loads(str(listed)))
    spelled = str(row["spelled"])
    if row["type"] != "enum" or not spelled.startswith("enum("):
        return ()
    return tuple(v.replace("''", "'") for v in _MYSQL_LABEL.findall(spelled))


_DECLARED = re.compile(r"^\s*(?P<name>[^(]*?)\s*(?:\((?P<args>[^)]*)\))?\s*$")


def sqlite_type(declared: str) -> ColumnType:
    """A declared SQLite type by the affinity rules of https://sqlite.org/datatype3.html
    (section 3.1), with the names whose values need their own reading (boolean, dates, json,
    uuid) kept apart."""
    match = _DECLARED.match(declared)
    base = (match["name"] if match else declared).lower()
    args = (
        [int(a) for a in (match["args"] or "").split(",") if a.strip().isdigit()] if match else []
    )
    precision, scale = [*args, None, None][:2]
    for name in ("boolean", "datetime", "timestamp", "date", "time", "json", "uuid"):
        if name in base.split():
            kept = "datetime" if name == "timestamp" else name
            return ColumnType(kept, spelled=declared)
    if "int" in base:
        name = "integer"
    elif any(word in base for word in ("char", "clob", "text")):
        name = "text"
    elif base == "" or "blob" in base:
        name = "blob" if "blob" in base else ""
    elif any(word in base for word in ("real", "floa", "doub")):
        name = "real"
    else:
        name = "numeric"
    return ColumnType(name, precision=precision, scale=scale, spelled=declared)
