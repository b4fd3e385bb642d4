"""Every type of each source dialect, with edge values, read through the type map and cast
into its PostgreSQL target type: the value that lands is the value the source holds.

Per dialect: one table holding every type (two rows of edge values and a row of NULLs) in a
real MariaDB server, PostgreSQL server or SQLite file; its catalog gives each column's rule
(``typemap.carry``); connectorx reads each column as the rule says; each value read is cast
by PostgreSQL to the rule's target type, and its text there is compared with what the
source holds. MariaDB and SQLite: the PostgreSQL text expected of each value is written out
here; PostgreSQL: the source's own ``col::text``, read with another client (ADBC). A value
the target type cannot hold (a zero date) must fail its cast: a reject, never a NULL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg_dbapi
import polars as pl
import pytest

from columnar_etl.config import DatabaseUrl
from columnar_etl.extract import Source
from columnar_etl.typemap import Carry, Refuse, refusals, select_list, table_rules
from mariadbserver import connect

REJECT = "<reject>"
"""Expected of a value the target type cannot hold: its cast fails."""

#: name: (source type, (SQL of row 1, SQL of row 2), (PostgreSQL text of each, or REJECT))
MARIADB: Mapping[str, tuple[str, tuple[str, str], tuple[str, str]]] = {
    "ti": ("TINYINT", ("-128", "127"), ("-128", "127")),
    "tiu": ("TINYINT UNSIGNED", ("0", "255"), ("0", "255")),
    "si": ("SMALLINT", ("-32768", "32767"), ("-32768", "32767")),
    "siu": ("SMALLINT UNSIGNED", ("65535", "0"), ("65535", "0")),
    "mi": ("MEDIUMINT", ("-8388608", "8388607"), ("-8388608", "8388607")),
    "miu": ("MEDIUMINT UNSIGNED", ("16777215", "0"), ("16777215", "0")),
    "i": ("INT", ("-2147483648", "2147483647"), ("-2147483648", "2147483647")),
    "iu": ("INT UNSIGNED", ("4294967295", "0"), ("4294967295", "0")),
    "bi": (
        "BIGINT",
        ("-9223372036854775808", "9223372036854775807"),
        ("-9223372036854775808", "9223372036854775807"),
    ),
    "biu": (
        "BIGINT UNSIGNED",
        ("18446744073709551615", "9223372036854775808"),
        ("18446744073709551615", "9223372036854775808"),
    ),
    "d102": ("DECIMAL(10,2)", ("-99999999.99", "0.01"), ("-99999999.99", "0.01")),
    "d2810": (
        "DECIMAL(28,10)",
        ("999999999999999999.9999999999", "-0.0000000001"),
        ("999999999999999999.9999999999", "-0.0000000001"),
    ),
    "d2012": (
        "DECIMAL(20,12)",
        ("1.123456789012", "-99999999.999999999999"),
        ("1.123456789012", "-99999999.999999999999"),
    ),
    "d6530": (
        "DECIMAL(65,30)",
        ("12345678901234567890123456789012345.123456789012345678901234567891", "-1e-30"),
        (
            "12345678901234567890123456789012345.123456789012345678901234567891",
            "-0.000000000000000000000000000001",
        ),
    ),
    "f4": ("FLOAT", ("1.4e-45", "-3.4028235e38"), ("1e-45", "-3.4028235e+38")),
    "f8": ("DOUBLE", ("1e300", "-4.9e-324"), ("1e+300", "-5e-324")),
    "f8b": (
        "DOUBLE",
        ("-1e300", "2.2250738585072014e-308"),
        ("-1e+300", "2.2250738585072014e-308"),
    ),
    "ch": ("CHAR(5)", ("'ab  '", "''"), ("ab", "")),
    "vc": ("VARCHAR(20)", ("'Zoë 🦀'", "'  x '"), ("Zoë 🦀", "  x ")),
    "tx": ("TEXT", ("CONCAT('a', CHAR(92), 'b', CHAR(10), 'c')", "''"), ("a\\b\nc", "")),
    "b1": ("TINYINT(1)", ("1", "0"), ("true", "false")),
    "b2": ("BOOLEAN", ("2", "-1"), (REJECT, REJECT)),
    "da": ("DATE", ("'1000-01-01'", "'0000-00-00'"), ("1000-01-01", REJECT)),
    "da2": ("DATE", ("'1969-12-31'", "'2020-00-15'"), ("1969-12-31", REJECT)),
    "tm": ("TIME(6)", ("'-838:59:59'", "'12:34:56.789012'"), (REJECT, "12:34:56.789012")),
    "dt": (
        "DATETIME(6)",
        ("'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'"),
        ("1000-01-01 00:00:00", "9999-12-31 23:59:59.999999"),
    ),
    "dtz": (
        "DATETIME",
        ("'0000-00-00 00:00:00'", "'1969-07-20 20:17:40'"),
        (REJECT, "1969-07-20 20:17:40"),
    ),
    # The server's zone is +02:00 (mariadbserver.py): these are 00:00:01 and 03:14:07 UTC.
    "ts": (
        "TIMESTAMP(6) NULL",
        ("'1970-01-01 02:00:01'", "'2038-01-19 05:14:07.999999'"),
        ("1970-01-01 00:00:01+00", "2038-01-19 03:14:07.999999+00"),
    ),
    "tsz": (
        "TIMESTAMP NULL",
        ("'0000-00-00 00:00:00'", "'2021-03-28 04:30:00'"),
        (REJECT, "2021-03-28 02:30:00+00"),
    ),
    "yr": ("YEAR", ("1901", "0"), ("1901", "0")),
    "bl": ("BLOB", ("x'00ff00'", "x''"), ("\\x00ff00", "\\x")),
    "bn": ("BINARY(4)", ("x'0001'", "x'c328'"), ("\\x00010000", "\\xc3280000")),
    "bt": ("BIT(8)", ("b'10000001'", "0"), ("10000001", "00000000")),
    "js": ("JSON", ('\'{"a": [1, 2.50, "ü"]}\'', "'null'"), ('{"a": [1, 2.50, "ü"]}', "null")),
    "uu": (
        "UUID",
        ("'123e4567-e89b-12d3-a456-426614174000'", "'00000000-0000-0000-0000-000000000000'"),
        ("123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-000000000000"),
    ),
    "en": ("ENUM('a','b c','')", ("'b c'", "''"), ("b c", "")),
    "st": ("SET('x','y','z')", ("'x,z'", "''"), ("x,z", "")),
}

SQLITE: Mapping[str, tuple[str, tuple[str, str], tuple[str, str]]] = {
    "i": (
        "INTEGER",
        ("-9223372036854775808", "9223372036854775807"),
        ("-9223372036854775808", "9223372036854775807"),
    ),
    "ti": ("TINYINT", ("-128", "127"), ("-128", "127")),
    # SQLite kept -99999999.999999999999 as the integer -100000000 (what it holds), which has
    # one digit more than numeric(20,12) allows before the point: a reject, not a rounding.
    "n": (
        "NUMERIC(20,12)",
        ("'1.123456789012'", "'-99999999.999999999999'"),
        ("1.123456789012", REJECT),
    ),
    "d": ("DECIMAL(10,2)", ("0.1", "'abc'"), ("0.10", REJECT)),
    "r": ("REAL", ("1e300", "-4.9e-324"), ("1e+300", "-5e-324")),
    "f": ("FLOAT", ("9e999", "1.5"), ("Infinity", "1.5")),
    "tx": ("TEXT", ("'a\\b' || char(10) || 'c'", "''"), ("a\\b\nc", "")),
    "vc": ("VARCHAR(3)", ("'longer than 3'", "'Zoë 🦀'"), ("longer than 3", "Zoë 🦀")),
    "bo": ("BOOLEAN", ("1", "'true'"), ("true", "true")),
    "bo2": ("BOOLEAN", ("2", "0"), (REJECT, "false")),
    "da": ("DATE", ("'1969-12-31'", "'0000-00-00'"), ("1969-12-31", REJECT)),
    "tm": ("TIME", ("'12:34:56.789'", "'25:00'"), ("12:34:56.789", REJECT)),
    "dt": (
        "DATETIME",
        ("'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'"),
        ("1000-01-01 00:00:00", "9999-12-31 23:59:59.999999"),
    ),
    "dt2": (
        "TIMESTAMP",
        ("'2021-03-28T04:30:00+02:00'", "'2021-03-28 04:30:00'"),
        (REJECT, "2021-03-28 04:30:00"),
    ),
    "bl": ("BLOB", ("x'00ff00'", "x''"), ("\\x00ff00", "\\x")),
    "js": ("JSON", ("'{\"a\": [1, 2.50]}'", "'null'"), ('{"a": [1, 2.50]}', "null")),
    "uu": (
        "UUID",
        ("'123e4567-e89b-12d3-a456-426614174000'", "x'00'"),
        ("123e4567-e89b-12d3-a456-426614174000", REJECT),
    ),
}

#: name: (source type, (SQL of row 1, SQL of row 2)); expected: the source's own text.
POSTGRES: Mapping[str, tuple[str, tuple[str, str]]] = {
    "si": ("smallint", ("-32768", "32767")),
    "i": ("integer", ("-2147483648", "2147483647")),
    "bi": ("bigint", ("-9223372036854775808", "9223372036854775807")),
    "n102": ("numeric(10,2)", ("-99999999.99", "0.01")),
    "n2810": ("numeric(28,10)", ("999999999999999999.9999999999", "-0.0000000001")),
    "n2012": ("numeric(20,12)", ("1.123456789012", "-99999999.999999999999")),
    "n500": ("numeric(50,0)", ("9" * 50, "-1")),
    "nu": ("numeric", ("1e-40", "'NaN'")),
    "f4": ("real", ("1.4e-45", "'-Infinity'")),
    "f4b": ("real", ("3.4028235e38", "'NaN'")),
    "f8": ("double precision", ("1e300", "-4.9e-324")),
    "f8b": ("double precision", ("'Infinity'", "'-0'")),
    "ch": ("char(5)", ("'ab  '", "''")),
    "vc": ("varchar(20)", ("'Zoë 🦀'", "'  x '")),
    "tx": ("text", ("E'a\\\\b\\nc'", "''")),
    "bo": ("boolean", ("true", "false")),
    "da": ("date", ("'0044-03-15 BC'", "'infinity'")),
    "tm": ("time(6)", ("'24:00:00'", "'12:34:56.789012'")),
    "ttz": ("timetz", ("'12:00:00+05:30'", "'00:00:00-12'")),
    "ts": ("timestamp(6)", ("'0001-01-01 00:00:00 BC'", "'9999-12-31 23:59:59.999999'")),
    "tz": ("timestamptz", ("'1969-07-20 20:17:40.123456+00'", "'infinity'")),
    "tz2": ("timestamptz(3)", ("'2021-03-28 04:30:00.123+02'", "'294276-12-31 23:59:59+00'")),
    "iv": ("interval", ("'1 year 2 mons 3 days 04:05:06.789'", "'-178000000 years'")),
    "ba": ("bytea", ("'\\x00ff00'", "''")),
    "js": ("json", ('\'{"b": 1, "a": [1, 2.50, "ü"], "a": 2}\'', "'null'")),
    "jb": ("jsonb", ('\'{"b": 1, "a": [1, 2.50]}\'', "'\"x\"'")),
    "uu": (
        "uuid",
        ("'123e4567-e89b-12d3-a456-426614174000'", "'00000000-0000-0000-0000-000000000000'"),
    ),
    "ai": ("integer[]", ("'{1,NULL,3}'", "'{}'")),
    "at": ("text[]", ('\'{"a,b",NULL,""}\'', "'{{1,2},{3,4}}'")),
    "en": ("mood", ("'happy'", "'sad'")),
    "ip": ("inet", ("'::1'", "'10.0.0.1/8'")),
    "mo": ("money", ("'12.34'", "'-1'")),
}


def _table_sql(quote: str, columns: Mapping[str, tuple[str, ...]], extra: str = "") -> list[str]:
    """CREATE TABLE t (id, every column, ``extra``) and its three rows (the last all NULL)."""
    ddl = ", ".join(f"{quote}{name}{quote} {spec[0]}" for name, spec in columns.items())
    names = ", ".join(f"{quote}{name}{quote}" for name in columns)
    rows = [
        f"INSERT INTO t (id, {names}) "
        f"VALUES ({n + 1}, {', '.join(spec[1][n] for spec in columns.values())})"
        for n in range(2)
    ]
    create = f"CREATE TABLE t (id INTEGER PRIMARY KEY, {ddl}{extra})"
    return [create, *rows, "INSERT INTO t (id) VALUES (3)"]


def read_through_map(source: Source) -> tuple[dict[str, Carry | Refuse], pl.DataFrame]:
    """Table ``t``'s rule per column (from the catalog), and its carried columns as read."""
    rules = table_rules(source.read, source.url.dialect, "t")
    carried = {c: rule for c, rule in rules.items() if isinstance(rule, Carry)}
    frame = source.read(f"SELECT {select_list(source.url.dialect, carried)} FROM t ORDER BY id")
    return rules, frame.cast({c: rule.dtype for c, rule in carried.items()})


def _as_text(value: object) -> str:
    """A value read into Polars, as PostgreSQL's input text of it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that is the very double (inf, nan, -0.0 too)
    return str(value)  # int, Decimal (every digit), str


def landed(pg_url: str, rules: Mapping[str, Carry], frame: pl.DataFrame) -> dict[str, list]:
    """Each read value cast to its column's target type by PostgreSQL, as its text there
    (REJECT where the cast fails; None for NULL)."""
    out: dict[str, list] = {}
    with pg_dbapi.connect(pg_url, autocommit=True) as conn, conn.cursor() as cur:
        _target_session(cur)
        for name, rule in rules.items():
            out[name] = []
            for value in frame[name].to_list():
                if value is None:
                    out[name].append(None)
                    continue
                try:
                    cur.execute(f"SELECT $1::text::{rule.target}::text", (_as_text(value),))
                    out[name].append(cur.fetchone()[0])
                except pg_dbapi.Error:
                    out[name].append(REJECT)
    return out


def _target_session(cur: pg_dbapi.Cursor) -> None:
    """The settings of the target's session: UTC and ISO, whatever the database says."""
    for setting in ("TimeZone = 'UTC'", "DateStyle = 'ISO, MDY'", "IntervalStyle = 'postgres'"):
        cur.execute(f"SET {setting}")


def _carried(rules: Mapping[str, Carry | Refuse]) -> dict[str, Carry]:
    return {c: rule for c, rule in rules.items() if isinstance(rule, Carry) and c != "id"}


def _expected(columns: Mapping[str, tuple[str, tuple[str, str], tuple[str, str]]]) -> dict:
    return {name: [*spec[2], None] for name, spec in columns.items()}


# -- MariaDB --------------------------------------------------------------------------------


@pytest.fixture
def mariadb_source(mariadb_url: str) -> Source:
    with connect(mariadb_url) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")  # a legacy server's: zero dates go in
        for sql in _table_sql("`", MARIADB, ", geo POINT"):
            cur.execute(sql)
        cur.execute("UPDATE t SET geo = POINT(1, 2) WHERE id = 1")
    return Source(DatabaseUrl.parse(mariadb_url, what="source", source=True))


def test_mariadb_every_type_lands_exactly(mariadb_source: Source, pg_url: str) -> None:
    rules, frame = read_through_map(mariadb_source)
    assert isinstance(rules["geo"], Refuse) and "spatial" in rules["geo"].reason
    [refused] = refusals("t", rules)
    assert refused.startswith("source table 't', column 'geo': point: spatial"), refused
    carried = _carried(rules)
    assert set(carried) == set(MARIADB)
    assert landed(pg_url, carried, frame) == _expected(MARIADB)


def test_mariadb_reads_as_text_only_what_connectorx_gets_wrong(mariadb_source: Source) -> None:
    rules = _carried(read_through_map(mariadb_source)[0])
    as_text = {c for c, rule in rules.items() if rule.as_text}
    assert as_text == {"biu", "d2012", "d6530", "b1", "b2", "da", "da2", "tm", "dt", "dtz"} | {
        "ts",
        "tsz",
        "bl",
        "bn",
        "bt",
    }
    assert rules["biu"].target == "numeric(20)" and rules["d2012"].target == "numeric(20,12)"
    assert rules["ts"].target == "timestamptz(6)" and rules["tiu"].target == "smallint"
    # MariaDB's JSON is a longtext with a json_valid() check: its catalog says longtext.
    assert rules["js"].target == "text"


# -- SQLite ---------------------------------------------------------------------------------


@pytest.fixture
def sqlite_source(tmp_path: Path) -> Source:
    path = tmp_path / "types.db"
    with sqlite3.connect(path) as conn:
        for sql in _table_sql('"', SQLITE, ', "untyped"'):
            conn.execute(sql)
    conn.close()
    return Source(DatabaseUrl.parse(f"sqlite://{path}", what="source"))


def test_sqlite_every_type_lands_exactly(sqlite_source: Source, pg_url: str) -> None:
    rules, frame = read_through_map(sqlite_source)
    assert isinstance(rules["untyped"], Refuse) and "no declared type" in rules["untyped"].reason
    carried = _carried(rules)
    assert set(carried) == set(SQLITE)
    assert landed(pg_url, carried, frame) == _expected(SQLITE)


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def pg_source(pg_server, pg_url: str) -> Iterator[Source]:
    with pg_dbapi.connect(pg_url, autocommit=True) as conn, conn.cursor() as cur:
        # A source whose text forms differ from the target's: its reads must not depend on it.
        cur.execute("SELECT current_database()")
        database = cur.fetchone()[0]
        cur.execute(f"ALTER DATABASE \"{database}\" SET DateStyle = 'SQL, DMY'")
        cur.execute(f"ALTER DATABASE \"{database}\" SET IntervalStyle = 'sql_standard'")
        cur.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
        cur.execute("CREATE TYPE pair AS (a integer, b text)")
        for sql in _table_sql('"', POSTGRES, ", pr pair"):
            cur.execute(sql)
    yield Source(DatabaseUrl.parse(pg_url, what="source"))


def _source_text(pg_url: str, columns: Sequence[str]) -> dict[str, list]:
    """Each column's own text rendering, read by ADBC (not connectorx), as the target's
    session (UTC, ISO) renders it."""
    select = ", ".join(f'"{c}"::text' for c in columns)
    with pg_dbapi.connect(pg_url, autocommit=True) as conn, conn.cursor() as cur:
        _target_session(cur)
        cur.execute(f"SELECT {select} FROM t ORDER BY id")
        rows = cur.fetchall()
    return {c: [row[i] for row in rows] for i, c in enumerate(columns)}


def test_postgres_every_type_lands_exactly(pg_source: Source, pg_url: str) -> None:
    rules, frame = read_through_map(pg_source)
    assert isinstance(rules["pr"], Refuse) and "user-defined" in rules["pr"].reason
    carried = _carried(rules)
    assert set(carried) == set(POSTGRES)
    got = landed(pg_url, carried, frame)
    expected = _source_text(pg_url, list(POSTGRES))
    expected["ch"] = [v if v is None else v.rstrip() for v in expected["ch"]]
    assert got == expected
    as_text = {c for c, rule in carried.items() if rule.as_text}
    native = {"si", "i", "bi", "n102", "n2810", "f4", "f4b", "f8", "f8b", "ch", "vc", "tx"}
    assert set(carried) - as_text == native | {"bo", "uu"}
    assert carried["en"].target == "text" and carried["ai"].target == "integer[]"


def test_sqlite_reals_in_numeric_columns_read_as_their_shortest_exact_text(
    tmp_path: Path,
) -> None:
    """A real in a decimal(p,s) column is read with s decimals where that text gives back
    the very double (0.1 is 0.10), else as its shortest text, which the scale then refuses
    (0.125 in a decimal(10,2)); a bare numeric's real is its shortest text (not the
    0.10000000000000001 of 17 digits)."""
    path = tmp_path / "reals.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, d DECIMAL(10,2), n NUMERIC)")
        rows = [(0.1, 0.1), (0.125, 1e-40), (12.5, 2.0**0.5), ("abc", 7), (1e300, "x")]
        conn.executemany("INSERT INTO t (d, n) VALUES (?, ?)", rows)
    conn.close()
    source = Source(DatabaseUrl.parse(f"sqlite://{path}", what="source"))
    _, frame = read_through_map(source)
    # 1e300 is 1 and 300 zeros: too many digits for decimal(10,2), which the load refuses.
    assert frame["d"].to_list() == ["0.10", "0.125", "12.50", "abc", "1" + "0" * 300 + ".00"]
    assert frame["n"].to_list() == ["0.1", "1e-40", "1.4142135623730951", "7", "x"]


def test_postgres_dates_carry_their_era_only_before_christ(pg_server, pg_url: str) -> None:
    """A target that keeps text as it is (SQLite) holds 2020-03-15, not 2020-03-15 AD."""
    with pg_dbapi.connect(pg_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id integer PRIMARY KEY, d date, ts timestamp, tz timestamptz)")
        cur.execute(
            "INSERT INTO t VALUES (1, '2020-03-15', '2020-03-15 01:02:03', '2020-03-15 01:02+02'),"
            " (2, '0044-03-15 BC', '0001-12-31 23:59:59 BC', '0001-01-01 00:00+00 BC')"
        )
    _, frame = read_through_map(Source(DatabaseUrl.parse(pg_url, what="source")))
    assert frame.select("d", "ts", "tz").rows() == [
        ("2020-03-15", "2020-03-15 01:02:03.000000", "2020-03-14 23:02:00.000000+00"),
        ("0044-03-15 BC", "0001-12-31 23:59:59.000000 BC", "0001-01-01 00:00:00.000000+00 BC"),
    ]
