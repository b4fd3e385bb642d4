"""A legacy database holding every type, per source dialect, and a value-by-value comparator.

:func:`write` fills a real PostgreSQL database, MariaDB database or SQLite file with:

* ``every_type``: an integer key and one column per type of the dialect, a first row of
  NULLs, then edge values (extremes, unsigned, decimals past 38 digits, ±1e300 and
  denormals, infinities, NULL versus empty, unicode, zero bytes, dates before 1970 and
  before Christ, time zones) in three rows. Every one of these values
  must land as it is.
* ``dirty``: values no target type can hold as they are (a MySQL zero date, a real that
  needs more decimals than its column keeps): each such row must be a reject whose reason
  names the column (:data:`REJECTED`), the clean row must land.
* ``text_keyed``, ``composite_keyed``, ``keyless``: keys of every shape (a text key of mixed
  case and script, a key of two columns, no key at all with a repeated row).

:func:`compare` reads the source and the target back, each with a client of its own (not
connectorx), and compares them value by value. Only representation is normalised, never a
value: each side's exact text of a value (PostgreSQL's ``c::text``, SQLite's stored value,
MariaDB's own rendering) is cast by PostgreSQL into the column's target type and its text
there compared, so ``1e300`` and ``1e+300`` are the same value and ``1.50`` and ``1.5`` of a
``numeric(10,2)`` too, while ``0.1`` and ``0.10000000000000001`` are not.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as pg_dbapi
import pyarrow as pa

from columnar_etl.config import DatabaseUrl
from columnar_etl.extract import Source
from columnar_etl.typemap import Carry, table_rules
from mariadbserver import connect as mariadb_connect

__all__ = ["REJECTED", "TABLES", "Table", "compare", "write"]


@dataclass(frozen=True)
class Table:
    """One legacy table: its columns (name, the source's SQL type) and rows of SQL literals."""

    name: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[str, ...], ...]
    key: tuple[str, ...] = ()

    def create(self, quote: str) -> str:
        columns = ", ".join(f"{quote}{name}{quote} {kind}" for name, kind in self.columns)
        key = ", ".join(f"{quote}{k}{quote}" for k in self.key)
        return f"CREATE TABLE {self.name} ({columns}" + (f", PRIMARY KEY ({key}))" if key else ")")

    def inserts(self, quote: str) -> list[str]:
        names = ", ".join(f"{quote}{name}{quote}" for name, _ in self.columns)
        return [f"INSERT INTO {self.name} ({names}) VALUES ({', '.join(row)})" for row in self.rows]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


def _typed(
    name: str, key: tuple[str, str], columns: Mapping[str, tuple[str, tuple[str, ...]]]
) -> Table:
    """A table keyed by ``key`` (name, type): a row of NULLs first (key 0: a batch whose
    first row is NULL everywhere), then the columns' values, row by row (keys 1, 2...)."""
    count = len(next(iter(columns.values()))[1])
    rows = [("0", *("NULL" for _ in columns))]
    rows += [(str(n + 1), *(values[n] for _, values in columns.values())) for n in range(count)]
    spec = ((key[0], key[1]), *((c, kind) for c, (kind, _) in columns.items()))
    return Table(name, spec, tuple(rows), (key[0],))


def _keys(text: str, integer: str) -> tuple[Table, ...]:
    """The tables of every key shape, in the dialect's ``text`` and ``integer`` types."""
    words = ("'a'", "'A'", "'é'", "'Zoë 🦀'", "'b b'", "' '", "'z'")
    text_keyed = Table(
        "text_keyed",
        (("code", text), ("note", text)),
        tuple((w, f"'note {n}'" if n % 3 else "NULL") for n, w in enumerate(words)),
        ("code",),
    )
    composite = Table(
        "composite_keyed",
        (("a", integer), ("b", text), ("note", text)),
        tuple((str(n % 3), w, f"'{n}'") for n, w in enumerate(words)),
        ("a", "b"),
    )
    keyless = Table(
        "keyless",
        (("n", integer), ("note", text)),
        (("1", "'x'"), ("1", "'x'"), ("2", "NULL"), ("NULL", "''"), ("3", "'Zoë'")),
    )
    return (text_keyed, composite, keyless)


# -- PostgreSQL -----------------------------------------------------------------------------

_PG_TYPES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "si": ("smallint", ("-32768", "32767", "0")),
    "i": ("integer", ("-2147483648", "2147483647", "0")),
    "bi": ("bigint", ("-9223372036854775808", "9223372036854775807", "0")),
    "n102": ("numeric(10,2)", ("-99999999.99", "0.01", "1.50")),
    "n2012": ("numeric(20,12)", ("1.123456789012", "-99999999.999999999999", "0")),
    "n500": ("numeric(50,0)", ("9" * 50, "-1", "0")),
    # Past 2**96 / 10**10 once given connectorx's 10 decimals, though of 28 digits or fewer.
    "n200": ("numeric(20,0)", ("7922816251426433760", "-" + "9" * 20, "0")),
    "n2800": ("numeric(28,0)", ("9" * 28, "1", "-1")),
    "n6530": (
        "numeric(65,30)",
        ("12345678901234567890123456789012345.123456789012345678901234567891", "-1e-30", "0"),
    ),
    "nu": ("numeric", ("1e-40", "'NaN'", "-" + "1234567890" * 5 + ".5")),
    "f4": ("real", ("1.4e-45", "'-Infinity'", "3.4028235e38")),
    "f4b": ("real", ("'Infinity'", "-1e-40", "1e-40")),
    "f8": ("double precision", ("1e300", "-4.9e-324", "2.2250738585072014e-308")),
    "f8b": ("double precision", ("'Infinity'", "'-Infinity'", "-1e300")),
    "ch": ("char(5)", ("'ab  '", "''", "'é'")),
    "vc": ("varchar(20)", ("'Zoë 🦀'", "'  x '", "''")),
    "tx": ("text", ("E'a\\\\b\\nc'", "''", "'NULL'")),
    "bo": ("boolean", ("true", "false", "true")),
    "da": ("date", ("'0044-03-15 BC'", "'infinity'", "'1969-12-31'")),
    "da2": ("date", ("'-infinity'", "'2020-03-15'", "'0001-01-01'")),
    "da3": ("date", ("'5874897-12-31'", "'4713-01-01 BC'", "'10000-01-01'")),
    "tm": ("time(6)", ("'24:00:00'", "'12:34:56.789012'", "'00:00:00'")),
    "ttz": ("timetz", ("'12:00:00+05:30'", "'00:00:00-12'", "'23:59:59.999999+14'")),
    "ts": (
        "timestamp(6)",
        ("'0001-01-01 00:00:00 BC'", "'9999-12-31 23:59:59.999999'", "'1969-07-20 20:17:40'"),
    ),
    "tz": ("timestamptz", ("'1969-07-20 20:17:40.123456+00'", "'infinity'", "'1900-01-01+01'")),
    "tz2": (
        "timestamptz(3)",
        ("'2021-03-28 04:30:00.123+02'", "'294276-12-31 23:59:59+00'", "'-infinity'"),
    ),
    "iv": ("interval", ("'1 year 2 mons 3 days 04:05:06.789'", "'-178000000 years'", "'0'")),
    "ba": ("bytea", ("'\\x00ff00'", "''", "'\\x00'")),
    "js": ("json", ('\'{"b": 1, "a": [1, 2.50, "ü"], "a": 2}\'', "'null'", "'[]'")),
    "jb": ("jsonb", ('\'{"b": 1, "a": [1, 2.50]}\'', "'\"x\"'", "'{}'")),
    "uu": (
        "uuid",
        (
            "'123e4567-e89b-12d3-a456-426614174000'",
            "'00000000-0000-0000-0000-000000000000'",
            "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
        ),
    ),
    "ai": ("integer[]", ("'{1,NULL,3}'", "'{}'", "'{{1,2},{3,4}}'")),
    "at": ("text[]", ('\'{"a,b",NULL,""}\'', "'{{1,2},{3,4}}'", "'{\"Zoë\"}'")),
    "en": ("mood", ("'happy'", "'sad'", "'happy'")),
    # Their text follows the session's DateStyle and TimeZone: see LEGACY_SETTINGS.
    "dr": ("daterange", ("'[2020-03-05,2020-03-10)'", "'empty'", "'(,2020-01-31]'")),
    "tr": (
        "tstzrange",
        (
            "'[2020-03-05 10:00+00,2020-03-06 11:00:00.5+00)'",
            "'(,)'",
            "'[1969-07-20 20:17+05:30,)'",
        ),
    ),
    "af": (
        "double precision[]",
        ("'{0.1,1e300,NULL}'", "'{}'", "'{-4.9e-324,2.2250738585072014e-308}'"),
    ),
}

#: A legacy PostgreSQL database's own defaults, each of which changes the text of some value
#: above (day before month, 'IST' for +05:30, 15 digits of a double, escaped bytes, '-1-0'
#: for an interval): a source session must not take them.
LEGACY_SETTINGS = (
    "DateStyle = 'SQL, DMY'",
    "TimeZone = 'Asia/Kolkata'",
    "IntervalStyle = 'sql_standard'",
    "extra_float_digits = 0",
    "bytea_output = 'escape'",
)

# -- MariaDB --------------------------------------------------------------------------------

_MARIADB_TYPES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "ti": ("TINYINT", ("-128", "127", "0")),
    "tiu": ("TINYINT UNSIGNED", ("0", "255", "1")),
    "si": ("SMALLINT", ("-32768", "32767", "0")),
    "siu": ("SMALLINT UNSIGNED", ("65535", "0", "1")),
    "mi": ("MEDIUMINT", ("-8388608", "8388607", "0")),
    "miu": ("MEDIUMINT UNSIGNED", ("16777215", "0", "1")),
    "i": ("INT", ("-2147483648", "2147483647", "0")),
    "iu": ("INT UNSIGNED", ("4294967295", "0", "1")),
    "bi": ("BIGINT", ("-9223372036854775808", "9223372036854775807", "0")),
    "biu": ("BIGINT UNSIGNED", ("18446744073709551615", "9223372036854775808", "0")),
    "d102": ("DECIMAL(10,2)", ("-99999999.99", "0.01", "1.50")),
    "d2810": ("DECIMAL(28,10)", ("999999999999999999.9999999999", "-0.0000000001", "0")),
    "d2012": ("DECIMAL(20,12)", ("1.123456789012", "-99999999.999999999999", "0")),
    "d200": ("DECIMAL(20,0)", ("7922816251426433760", "-" + "9" * 20, "0")),
    "d6530": (
        "DECIMAL(65,30)",
        ("12345678901234567890123456789012345.123456789012345678901234567891", "-1e-30", "0"),
    ),
    "f4": ("FLOAT", ("1.4e-45", "-3.4028235e38", "0.1")),
    "f8": ("DOUBLE", ("1e300", "-4.9e-324", "0.1")),
    "f8b": ("DOUBLE", ("-1e300", "2.2250738585072014e-308", "-0.0")),
    "ch": ("CHAR(5)", ("'ab  '", "''", "'é'")),
    "vc": ("VARCHAR(20)", ("'Zoë 🦀'", "'  x '", "''")),
    "tx": ("TEXT", ("CONCAT('a', CHAR(92), 'b', CHAR(10), 'c')", "''", "'NULL'")),
    "b1": ("TINYINT(1)", ("1", "0", "1")),
    "da": ("DATE", ("'1000-01-01'", "'1969-12-31'", "'9999-12-31'")),
    "tm": ("TIME(6)", ("'00:00:00'", "'12:34:56.789012'", "'23:59:59.999999'")),
    "dt": (
        "DATETIME(6)",
        ("'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'", "'1969-07-20 20:17:40'"),
    ),
    # The server's zone is +02:00 (mariadbserver.py): 00:00:01 and 03:14:07 UTC.
    "ts": (
        "TIMESTAMP(6) NULL",
        ("'1970-01-01 02:00:01'", "'2038-01-19 05:14:07.999999'", "'2021-03-28 04:30:00'"),
    ),
    "yr": ("YEAR", ("1901", "0", "2155")),
    "bl": ("BLOB", ("x'00ff00'", "x''", "x'00'")),
    "bn": ("BINARY(4)", ("x'0001'", "x'c328'", "x''")),
    "bt": ("BIT(8)", ("b'10000001'", "0", "b'11111111'")),
    "js": ("JSON", ('\'{"a": [1, 2.50, "ü"]}\'', "'null'", "'[]'")),
    "uu": (
        "UUID",
        (
            "'123e4567-e89b-12d3-a456-426614174000'",
            "'00000000-0000-0000-0000-000000000000'",
            "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
        ),
    ),
    "en": ("ENUM('a','b c','')", ("'b c'", "''", "'a'")),
    "st": ("SET('x','y','z')", ("'x,z'", "''", "'y'")),
}

# -- SQLite ---------------------------------------------------------------------------------

_SQLITE_TYPES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "i": ("INTEGER", ("-9223372036854775808", "9223372036854775807", "0")),
    "ti": ("TINYINT", ("-128", "127", "0")),
    # NUMERIC affinity keeps these as reals; each is exact at its column's scale.
    "n": ("NUMERIC(20,12)", ("'1.123456789012'", "'0.000000000001'", "'12345678.1234'")),
    "d": ("DECIMAL(10,2)", ("0.1", "12.5", "-99999999.99")),
    "nu": ("NUMERIC", ("0.1", "12345678901234567890", "'1e-40'")),
    "r": ("REAL", ("1e300", "-4.9e-324", "-1e300")),
    "f": ("FLOAT", ("9e999", "1.5", "-9e999")),
    "tx": ("TEXT", ("'a\\b' || char(10) || 'c'", "''", "'Zoë 🦀'")),
    "vc": ("VARCHAR(3)", ("'longer than 3'", "'Zoë 🦀'", "''")),
    "bo": ("BOOLEAN", ("1", "'true'", "0")),
    "da": ("DATE", ("'1969-12-31'", "'2020-02-29'", "'1000-01-01'")),
    "tm": ("TIME", ("'12:34:56.789'", "'00:00:00'", "'23:59:59'")),
    "dt": (
        "DATETIME",
        ("'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'", "'2021-03-28 04:30:00'"),
    ),
    "bl": ("BLOB", ("x'00ff00'", "x''", "x'00'")),
    "js": ("JSON", ("'{\"a\": [1, 2.50]}'", "'null'", "'[]'")),
    "uu": (
        "UUID",
        (
            "'123e4567-e89b-12d3-a456-426614174000'",
            "'00000000-0000-0000-0000-000000000000'",
            "'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'",
        ),
    ),
}

#: Dirty rows (row 1, 2...: the key ``id``), each with one value no target type holds as it
#: is, and a clean last row.
_DIRTY: Mapping[str, Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "mysql": {
        "da": ("DATE", ("'0000-00-00'", "'2020-00-15'", "NULL", "NULL", "'2020-01-15'")),
        "dt": ("DATETIME", ("NULL", "'0000-00-00 00:00:00'", "NULL", "NULL", "NULL")),
        "b1": ("TINYINT(1)", ("1", "0", "2", "1", "0")),  # MySQL's boolean holding 2
        "tm": ("TIME", ("NULL", "NULL", "NULL", "'-838:59:59'", "'23:59:59'")),
    },
    "sqlite": {
        "da": ("DATE", ("'0000-00-00'", *(("'2020-01-15'",) * 6))),
        # 0.125 needs 3 decimals; 'abc' is no number.
        "d": ("DECIMAL(10,2)", ("1", "0.125", "'abc'", "2", "3", "4", "5")),
        "bo": ("BOOLEAN", ("1", "0", "1", "2", "0", "1", "0")),
        "tm": ("TIME", ("NULL", "NULL", "NULL", "NULL", "'25:00'", "NULL", "'12:00'")),
        # An offset the cast into a timestamp would drop silently.
        "dt": ("DATETIME", (*(("NULL",) * 5), "'2021-03-28T04:30:00+02:00'", "'2021-03-28'")),
    },
    # NaN and -0 land in PostgreSQL; SQLite would keep NULL and 0: rejects there.
    "postgresql": {
        "f4": ("real", ("'NaN'", "'-0'", "1.5")),
        "f8": ("double precision", ("'-0'", "'NaN'", "-1.5")),
    },
}

_PG_REFUSED = "refused by the target database"

#: Per source and target dialect: the ``dirty`` rows (by key) that must be rejected, and the
#: start of each one's reason.
REJECTED: Mapping[tuple[str, str], Mapping[str, str]] = {
    ("mysql", "postgresql"): dict.fromkeys("1234", _PG_REFUSED),
    ("mysql", "sqlite"): {
        "1": "da: 0000-00-00 does not fit date",
        "2": "da: 2020-00-15 does not fit date",
        "3": "b1: 2 does not fit boolean",
        "4": "tm: -838:59:59 does not fit time",
    },
    ("sqlite", "postgresql"): {
        "1": _PG_REFUSED,
        "2": "d: 0.125 does not fit numeric(10,2)",
        "3": "d: abc does not fit numeric(10,2)",
        "4": _PG_REFUSED,
        "5": _PG_REFUSED,
        "6": _PG_REFUSED,
    },
    ("sqlite", "sqlite"): {
        "1": "da: 0000-00-00 does not fit date",
        "2": "d: 0.125 does not fit numeric(10,2)",
        "3": "d: abc does not fit numeric(10,2)",
        "4": "bo: 2 does not fit boolean",
        "5": "tm: 25:00 does not fit time",
        "6": "dt: with a time zone: 2021-03-28T04:30:00+02:00 does not fit timestamp",
    },
    ("postgresql", "postgresql"): {},
    ("postgresql", "sqlite"): {
        "1": "f4: NaN: the target keeps no NaN",
        "2": "f4: -0.0: the target keeps no negative zero",
    },
}


def _tables(dialect: str) -> tuple[Table, ...]:
    typed = {"postgresql": _PG_TYPES, "mysql": _MARIADB_TYPES, "sqlite": _SQLITE_TYPES}[dialect]
    text, integer = {
        "postgresql": ("text", "integer"),
        # Case-sensitive keys: the default collation holds 'a' and 'A' for one key.
        "mysql": ("VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "INT"),
        "sqlite": ("TEXT", "INTEGER"),
    }[dialect]
    every = _typed("every_type", ("id", integer), typed)
    dirty = _typed("dirty", ("id", integer), _DIRTY[dialect])
    return (every, dirty, *_keys(text, integer))


#: The tables of each source dialect.
TABLES: Mapping[str, tuple[Table, ...]] = {d: _tables(d) for d in ("postgresql", "mysql", "sqlite")}


def _dialect(url: str) -> str:
    return DatabaseUrl.parse(url, what="legacy", source=True).dialect


def write(url: str) -> tuple[Table, ...]:
    """Create and fill the legacy tables of ``url``'s dialect in that (empty) database."""
    dialect = _dialect(url)
    tables = TABLES[dialect]
    if dialect == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            for table in tables:
                for sql in (table.create('"'), *table.inserts('"')):
                    conn.execute(sql)
        conn.close()
    elif dialect == "mysql":
        with mariadb_connect(url) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")  # a legacy server's: zero dates go in
            for table in tables:
                for sql in (table.create("`"), *table.inserts("`")):
                    cur.execute(sql)
    else:
        with pg_dbapi.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
            for table in tables:
                for sql in (table.create('"'), *table.inserts('"')):
                    cur.execute(sql)
    return tables


# -- reading back ---------------------------------------------------------------------------

#: A row as compared: each column's canonical text (None for NULL), in the table's order.
Row = tuple[str | None, ...]

_SESSION = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, MDY'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
)


def _pg_texts(url: str, table: str, columns: Sequence[str]) -> list[list[str | None]]:
    """Each row's ``c::text`` in a session of fixed settings (UTC, ISO, shortest floats)."""
    select = ", ".join(f'"{c}"::text' for c in columns)
    with pg_dbapi.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        for setting in _SESSION:
            cur.execute(setting)
        cur.execute(f'SELECT {select} FROM "{table}"')
        return [list(row) for row in cur.fetchall()]


def _python_text(value: object) -> str | None:
    """A value a Python client read, as exact text PostgreSQL's input reads back."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, float):
        return {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(repr(value), repr(value))
    return str(value)  # int, Decimal: every digit


def _sqlite_texts(url: str, table: str, columns: Sequence[str]) -> list[list[str | None]]:
    select = ", ".join(f'"{c}"' for c in columns)
    with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
        rows = conn.execute(f'SELECT {select} FROM "{table}"').fetchall()
    conn.close()
    return [[_python_text(v) for v in row] for row in rows]


def _mariadb_texts(
    url: str, table: str, columns: Sequence[str], kinds: Mapping[str, str]
) -> list[list[str | None]]:
    """MariaDB's values as exact text: temporals as the server writes them (a timestamp in
    UTC), floats as doubles (a FLOAT's text has 6 digits), bits as binary digits, bytes and
    decimals through the client's bytes and Decimals."""

    def read(column: str) -> str:
        kind, c = kinds[column].lower(), f"`{column}`"
        if kind.startswith("timestamp"):
            return f"CONCAT(CAST({c} AS CHAR), '+00')"
        if kind.startswith(("date", "time")):
            return f"CAST({c} AS CHAR)"
        if kind.startswith("float"):
            return f"CAST({c} AS DOUBLE)"
        if kind.startswith("bit"):
            return f"LPAD(BIN({c}), {kind[4:-1]}, '0')"
        return c

    with mariadb_connect(url) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION time_zone = '+00:00'")
        cur.execute(f"SELECT {', '.join(read(c) for c in columns)} FROM `{table}`")
        rows = cur.fetchall()
    return [[_python_text(v) for v in row] for row in rows]


def _canonical(pg_url: str, rows: list[list[str | None]], targets: Sequence[str]) -> list[Row]:
    """``rows`` of exact texts, each cast by PostgreSQL into its column's target type and
    written back as that type's text (in the fixed session); a value the type cannot hold
    is ``<refused: text>``."""
    if not rows:
        return []
    names = [f"c{i}" for i in range(len(targets))]
    data = pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})
    with pg_dbapi.connect(pg_url, autocommit=True) as conn, conn.cursor() as cur:
        for setting in _SESSION:
            cur.execute(setting)
        cur.adbc_ingest("etl_compare", data, mode="create", temporary=True)
        columns = [
            _cast_column(cur, name, target, [r[i] for r in rows])
            for i, (name, target) in enumerate(zip(names, targets, strict=True))
        ]
    return list(zip(*columns, strict=True))


def _cast_column(
    cur: pg_dbapi.Cursor, name: str, target: str, texts: list[str | None]
) -> list[str | None]:
    """Column ``name`` of the staged texts cast to ``target``: in one query, or value by
    value where some value is refused (``<refused: text>``) or would be rounded by the cast
    into a ``numeric(p,s)`` (``<rounded: text>``): the comparator changes no value."""
    kept = f"{{}}::{target} = {{}}::numeric" if target.startswith("numeric(") else "TRUE"
    try:
        cur.execute(f"SELECT {name}::{target}::text, {kept.format(name, name)} FROM etl_compare")
        rows = cur.fetchall()
        if all(k is not False for _, k in rows):
            return [text for text, _ in rows]
    except pg_dbapi.Error:
        pass
    out: list[str | None] = []
    for text in texts:
        try:
            cur.execute(
                f"SELECT $1::text::{target}::text, {kept.format('$1::text', '$1::text')}", (text,)
            )
            value, as_is = cur.fetchone()
            out.append(value if as_is is not False else f"<rounded: {text}>")
        except pg_dbapi.Error:
            out.append(f"<refused: {text}>")
    return out


def _texts(url: str, table: str, columns: Sequence[str], kinds: Mapping[str, str]) -> list:
    dialect = _dialect(url)
    if dialect == "postgresql":
        return _pg_texts(url, table, columns)
    if dialect == "sqlite":
        return _sqlite_texts(url, table, columns)
    return _mariadb_texts(url, table, columns, kinds)


@dataclass(frozen=True)
class Compared:
    """One table compared: its rows on each side, by key (keyless: counted)."""

    table: str
    source: Mapping[Row, Row] | Counter[Row]
    target: Mapping[Row, Row] | Counter[Row]
    repeated: int = 0
    """Target rows whose key another target row holds too."""

    def differences(self, rejected: Sequence[str] = ()) -> list[str]:
        """Each key whose row differs, or is on one side only (``rejected``: source keys,
        as text, whose rows must be absent from the target), one line each."""
        if isinstance(self.source, Counter):
            return (
                []
                if self.source == self.target
                else [f"{self.table}: {self.source} != {self.target}"]
            )
        lines = [f"{self.table}: {self.repeated} rows repeat a key"] if self.repeated else []
        for key in sorted({*self.source, *self.target}, key=repr):
            expected = None if key[0] in rejected else self.source.get(key)
            got = self.target.get(key)
            if expected != got:
                lines.append(f"{self.table} {key}: source {expected} != target {got}")
        return lines


def compare(source_url: str, target_url: str, pg_url: str, table: Table) -> Compared:
    """``table`` read from the source and from the target (a table of the same name and
    columns), each value as the canonical text of its target type (cast by the PostgreSQL
    database ``pg_url``)."""
    source = Source(DatabaseUrl.parse(source_url, what="source", source=True))
    rules = table_rules(source.read, source.url.dialect, table.name)
    carried = {c: r for c, r in rules.items() if isinstance(r, Carry)}
    targets = [carried[c].target for c in table.names]
    kinds = dict(table.columns)
    sides = [
        _canonical(pg_url, _texts(url, table.name, table.names, kinds), targets)
        for url in (source_url, target_url)
    ]
    if not table.key:
        return Compared(table.name, Counter(sides[0]), Counter(sides[1]))
    at = [table.names.index(k) for k in table.key]
    by_key = [{tuple(row[i] for i in at): row for row in side} for side in sides]
    return Compared(table.name, by_key[0], by_key[1], len(sides[1]) - len(by_key[1]))
