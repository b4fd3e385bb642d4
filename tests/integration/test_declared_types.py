"""Exact SQL types declared by a migration (``Entity.sql_types``) load as declared, on the
fast path and the merge path, into PostgreSQL and SQLite: a value the type cannot hold is a
``database_error`` reject naming it, never a value rounded or cut."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from columnar_etl.config import DatabaseUrl
from columnar_etl.target import Target
from tests.helpers import etl

MIGRATION = str(Path(__file__).parent.parent / "charges_migration.py")

CHARGES = [
    (1, "A1", "12.50", 3),
    (2, "B2", "1.005", 1),  # three decimals: numeric(8,2) would round it to 1.01 (or 1.00)
    (3, "TOO-LONG-CODE", "1.00", 1),  # 13 characters into varchar(8)
    (4, "C3", "1000000", 1),  # 7 digits before the point: numeric(8,2) holds 6
    (5, "D4", "999999.99", 2),  # the largest numeric(8,2) holds
    (6, "E5", "0.1", 40000),  # past smallint
    (7, "F6", "-3", None),
    (8, "G7", "2.5", -32768),  # the smallest smallint
]
LOADED = [
    ("1", "A1", "12.50", 3),
    ("5", "D4", "999999.99", 2),
    ("7", "F6", "-3.00", None),
    ("8", "G7", "2.50", -32768),
]
REJECTS = [
    ("2", "database_error", "fee: 1.005 does not fit numeric(8,2)"),
    ("3", "database_error", "code: TOO-LONG-CODE does not fit varchar(8)"),
    ("4", "database_error", "fee: 1000000.0 does not fit numeric(8,2)"),
    ("6", "database_error", "qty: 40000 does not fit smallint"),
]


def _legacy(folder: Path) -> str:
    path = folder / "till.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE till_charges (charge_id INTEGER PRIMARY KEY, code TEXT, fee TEXT, "
            "qty INTEGER)"
        )
        conn.executemany("INSERT INTO till_charges VALUES (?, ?, ?, ?)", CHARGES)
    return f"sqlite://{path}"


def _rows(url: DatabaseUrl, sql: str) -> list[tuple]:
    with Target(url) as t:
        return t.query(sql).rows()


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "merge-path"])
def test_declared_types_load_exactly_or_refuse_the_row(
    empty_url: DatabaseUrl, tmp_path: Path, fast_path: bool
) -> None:
    source = _legacy(tmp_path)
    where = ("--migration", MIGRATION, "--target", empty_url.url)
    path = () if fast_path else ("--no-fast-path",)
    done = etl("run", "--entity", "charges", "--source", source, "--batch-size", "3", *where, *path)
    assert done.returncode == 0, done.stderr

    jobs = _rows(
        empty_url,
        "SELECT extracted, loaded, rejected, configuration FROM migration_jobs ORDER BY id",
    )
    assert [job[:3] for job in jobs] == [(8, 4, 4)]
    assert ('"fast_path_taken": true' in jobs[0][3]) is fast_path
    # Every value as declared: the fee with its two decimals (PostgreSQL's numeric keeps
    # them; SQLite keeps the number, printed here with two).
    fee = "CAST(fee AS TEXT)" if empty_url.dialect == "postgresql" else "printf('%.2f', fee)"
    loaded = _rows(empty_url, f"SELECT legacy_id, code, {fee}, qty FROM charges ORDER BY id")
    assert sorted(loaded) == LOADED
    rejects = _rows(
        empty_url,
        "SELECT record_id, error_type, error_message FROM migration_errors ORDER BY record_id",
    )
    assert rejects == REJECTS

    checked = etl("verify", "--source", source, *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # Again, updating what is there (the merge path's UPDATE): the same values, the same
    # refusals.
    again = etl("run", "--entity", "charges", "--source", source, "--on-conflict", "update", *where)
    assert again.returncode == 0, again.stderr
    jobs = _rows(empty_url, "SELECT loaded, rejected, updated FROM migration_jobs ORDER BY id")
    assert jobs[-1] == (4, 4, 4)
    loaded = _rows(empty_url, f"SELECT legacy_id, code, {fee}, qty FROM charges ORDER BY id")
    assert sorted(loaded) == LOADED


def test_the_table_has_the_declared_types(empty_url: DatabaseUrl, tmp_path: Path) -> None:
    source = _legacy(tmp_path)
    done = etl(
        "run", "--entity", "charges", "--source", source, "--migration", MIGRATION,
        "--target", empty_url.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if empty_url.dialect == "postgresql":
        sql = (
            "SELECT column_name, CAST(format_type(atttypid, atttypmod) AS TEXT) "
            "FROM information_schema.columns c JOIN pg_attribute a "
            "ON a.attrelid = CAST('charges' AS regclass) AND a.attname = c.column_name "
            "WHERE c.table_name = 'charges' AND column_name IN ('code', 'fee', 'qty') "
            "ORDER BY column_name"
        )
        expected = [("code", "character varying(8)"), ("fee", "numeric(8,2)"), ("qty", "smallint")]
    else:
        sql = (
            "SELECT name, type FROM pragma_table_info('charges') "
            "WHERE name IN ('code', 'fee', 'qty') ORDER BY name"
        )
        expected = [("code", "varchar(8)"), ("fee", "numeric(8,2)"), ("qty", "smallint")]
    assert _rows(empty_url, sql) == expected


#: Values carried as text (as ``etl init`` reads what connectorx would change) into exact
#: PostgreSQL types, which the database casts as they load.
TEXT_CARRIED = """
import pandera.polars as pa
import polars as pl

from columnar_etl import FILTERED, TRANSFORM_ERRORS, Entity, SourceSpec, carry_row_id

COLUMNS = ["amount", "uid", "span", "bytes", "at", "tags", "code"]
SOURCE = SourceSpec("exotic", "id", {"id": pl.Int64} | {c: pl.String for c in COLUMNS})


def transform(lf):
    return lf.select(
        carry_row_id(),
        SOURCE.record_id().alias("legacy_id"),
        *COLUMNS,
        **{FILTERED: pl.lit(False), TRANSFORM_ERRORS: pl.lit(None, pl.String)},
    )


def contract(as_of):
    return pa.DataFrameSchema(
        {"legacy_id": pa.Column(pl.String)}
        | {c: pa.Column(pl.String, nullable=True) for c in COLUMNS}
    )


exotic = Entity(
    "exotic", SOURCE, transform, contract, "exotic",
    sql_types={
        "amount": "numeric(40,20)", "uid": "uuid", "span": "interval", "bytes": "bytea",
        "at": "timestamptz", "tags": "text[]", "code": "varchar(4)",
    },
)
"""
EXOTIC = [
    (
        1,
        "12345678901234567890.12345678901234567890",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "1 year 2 mons 3 days 04:05:06.789",
        "\\x00ff00",
        "1969-07-20 20:17:40+00",
        '{a,"b c",NULL}',
        "abcd",
    ),
    (
        2,
        "-0.00000000000000000001",
        None,
        "-00:00:01",
        "\\x",
        "2024-02-29 23:59:59.999999+00",
        "{}",
        "",
    ),
    (3, "1.000000000000000000001", None, None, None, None, None, None),  # 21 decimals
    (4, "2", None, None, None, None, None, "toolong"),  # past varchar(4)
    (5, "3", "not-a-uuid", None, None, None, None, None),  # the database refuses it
]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "merge-path"])
def test_text_carried_values_land_in_their_exact_types(
    empty_url: DatabaseUrl, tmp_path: Path, fast_path: bool
) -> None:
    """On PostgreSQL the text becomes the declared type, value for value (compared as the
    database writes each type back); on SQLite it stays the source's text. What the type
    cannot hold is a reject with its reason, never a value rounded or cut."""
    legacy = tmp_path / "exotic.db"
    with sqlite3.connect(legacy) as conn:
        conn.execute(
            "CREATE TABLE exotic (id INTEGER PRIMARY KEY, amount TEXT, uid TEXT, span TEXT, "
            "bytes TEXT, at TEXT, tags TEXT, code TEXT)"
        )
        conn.executemany("INSERT INTO exotic VALUES (?, ?, ?, ?, ?, ?, ?, ?)", EXOTIC)
    migration = tmp_path / "exotic_migration.py"
    migration.write_text(TEXT_CARRIED)
    fast = () if fast_path else ("--no-fast-path",)
    done = etl(
        "run", "--entity", "exotic", "--source", f"sqlite://{legacy}", "--migration",
        str(migration), "--target", empty_url.url, *fast,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    columns = ["amount", "uid", "span", "bytes", "at", "tags", "code"]
    if empty_url.dialect == "postgresql":
        with Target(empty_url) as t:
            t.execute("SET TIME ZONE 'UTC'")
            t.execute("SET IntervalStyle = 'postgres'")
            shown = ", ".join(f"CAST({c} AS TEXT)" for c in columns)
            rows = t.query(f"SELECT legacy_id, {shown} FROM exotic ORDER BY legacy_id").rows()
    else:
        rows = _rows(
            empty_url, f"SELECT legacy_id, {', '.join(columns)} FROM exotic ORDER BY legacy_id"
        )
    # SQLite checks no uuid: there the text is kept as the source wrote it.
    checked = empty_url.dialect == "postgresql"
    loaded = EXOTIC[:2] if checked else [EXOTIC[0], EXOTIC[1], EXOTIC[4]]
    assert [tuple(r) for r in rows] == [(str(r[0]), *r[1:]) for r in loaded]
    rejects = _rows(
        empty_url, "SELECT record_id, error_message FROM migration_errors ORDER BY record_id"
    )
    assert [r[0] for r in rejects] == (["3", "4", "5"] if checked else ["3", "4"])
    assert rejects[0][1] == "amount: 1.000000000000000000001 does not fit numeric(40,20)"
    assert rejects[1][1] == "code: toolong does not fit varchar(4)"
    if checked:
        assert "invalid input syntax for type uuid" in rejects[2][1]
