"""MySQL/MariaDB as a source: a real MariaDB server read through ``Source`` (connectorx)."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from columnar_etl import mysqlwire
from columnar_etl.config import DatabaseUrl
from columnar_etl.declare import SourceSpec
from columnar_etl.dialects import MYSQL
from columnar_etl.errors import SourceError
from columnar_etl.extract import Source
from mariadbserver import ETL_PASSWORD, connect
from pgserver import free_port
from tests.helpers import etl
from tests.integration import test_user_migration as user

# Names a double-quoting reader would get wrong: a backtick, a double quote, a reserved word.
TABLE = 'cust`omers "old"'
ROWS = [
    (1, "Ada", "x"),
    (2, None, "it's"),
    (3, "Zoë 🦀", "back\\slash"),
    (5, "", "line\nbreak"),
    (8, "Grace", None),
]
# A filter value that ends a quoted literal where a backslash escapes the quote after it.
INJECTION = "\\' OR 1=1 -- "


@pytest.fixture
def source(mariadb_url: str) -> Source:
    """A ``Source`` over a MariaDB database holding ``TABLE`` with ``ROWS``."""
    table = MYSQL.quote(TABLE)
    with connect(mariadb_url) as conn, conn.cursor() as cur:
        cur.execute(
            f'CREATE TABLE {table} (`order` INT PRIMARY KEY, `na"me` VARCHAR(40), note TEXT)'
        )
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)", ROWS)
    return Source(DatabaseUrl.parse(mariadb_url, what="source", source=True))


def spec(**filters: object) -> SourceSpec:
    schema = {"order": pl.Int64(), 'na"me': pl.String(), "note": pl.String()}
    return SourceSpec(TABLE, "order", schema, **filters)  # type: ignore[arg-type]


def test_checks_counts_plans_and_reads_a_mariadb_table(source: Source) -> None:
    source.check(spec())
    assert source.count(spec()) == len(ROWS)
    plan = source.plan(spec(), batch_size=2)
    assert [(b.start_id, b.end_id, b.records_count) for b in plan] == [
        (1, 2, 2),
        (3, 7, 2),
        (8, 8, 1),
    ]
    frames = [source.read_batch(spec(), batch) for batch in plan]
    assert pl.concat(frames).rows() == ROWS
    streamed = [frame for _, frame in source.stream(spec(), plan, rows_per_read=1)]
    assert pl.concat(streamed).rows() == ROWS


def test_missing_table_or_column_is_a_source_error(source: Source) -> None:
    with pytest.raises(SourceError, match="missing columns: nope"):
        source.check(SourceSpec(TABLE, "order", {"order": pl.Int64(), "nope": pl.String()}))
    with pytest.raises(SourceError, match="not found"):
        source.check(SourceSpec("absent", "id", {"id": pl.Int64()}))


def test_a_filter_value_with_backslash_and_quote_stays_a_value(source: Source) -> None:
    filtered = spec(where="note <> :bad OR note IS NULL", params={"bad": INJECTION})
    assert source.count(filtered) == len(ROWS)
    kept = spec(where="note = :v", params={"v": "back\\slash"})
    assert source.count(kept) == 1


@pytest.mark.parametrize("sql_mode", ["", "NO_BACKSLASH_ESCAPES", "ANSI_QUOTES"])
def test_literals_read_back_the_same_under_every_sql_mode(mariadb_url: str, sql_mode: str) -> None:
    values = ["plain", "it's", "back\\slash", "\\'", "\\", "'\\''", "Zoë 🦀", ""]
    with connect(mariadb_url) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = %s", (sql_mode,))
        for value in values:
            cur.execute(f"SELECT {MYSQL.literal(value)} AS {MYSQL.quote('v`')}")
            assert cur.fetchone() == (value,)


def test_probe_fails_fast_in_one_line_where_no_mysql_answers(mariadb_url: str) -> None:
    """connectorx's pool would retry for 30 s; the probe reads the server's greeting only."""
    mysqlwire.probe(DatabaseUrl.parse(mariadb_url, what="source", source=True))
    closed = f"mysql://etl:s3cret@127.0.0.1:{free_port()}/x"
    with listening(b"\x05\x00\x00\x00hello") as port:
        not_mysql = DatabaseUrl.parse(
            f"mysql://etl:s3cret@127.0.0.1:{port}/x", what="s", source=True
        )
        with pytest.raises(SourceError, match="does not answer as MySQL/MariaDB"):
            mysqlwire.probe(not_mysql, timeout=5)
    started = time.monotonic()
    with pytest.raises(SourceError, match="cannot connect to source mysql://etl:\\*\\*\\*@") as e:
        Source(DatabaseUrl.parse(closed, what="source", source=True)).check(spec())
    assert time.monotonic() - started < 5 and "\n" not in str(e.value)


def test_a_wrong_password_fails_at_once_in_one_line(mariadb_url: str) -> None:
    """connectorx's pool would retry a refused login for 30 s; the probe logs in itself."""
    wrong = mariadb_url.replace(ETL_PASSWORD, "not-the-Pa55word")
    assert wrong != mariadb_url
    started = time.monotonic()
    with pytest.raises(SourceError, match="Access denied for user 'etl'") as e:
        Source(DatabaseUrl.parse(wrong, what="source", source=True)).check(spec())
    message = str(e.value)
    assert time.monotonic() - started < 5 and "\n" not in message
    assert "not-the-Pa55word" not in message and ETL_PASSWORD not in message
    unknown_db = mariadb_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(SourceError, match="no_such_db"):
        mysqlwire.probe(DatabaseUrl.parse(unknown_db, what="source", source=True))


@contextlib.contextmanager
def listening(greeting: bytes) -> Iterator[int]:
    """A port on 127.0.0.1 whose first connection is sent ``greeting`` and closed."""
    with socket.create_server(("127.0.0.1", 0)) as server:

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(greeting)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        yield server.getsockname()[1]
        thread.join(timeout=10)


def test_a_panic_of_connectorx_is_a_source_error(mariadb_url: str) -> None:
    """connectorx panics on a MySQL zero date read as a date (typemap reads it as text)."""
    with connect(mariadb_url) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("CREATE TABLE z (id INT PRIMARY KEY, d DATE)")
        cur.execute("INSERT INTO z VALUES (1, '0000-00-00')")
    source = Source(DatabaseUrl.parse(mariadb_url, what="source", source=True))
    with pytest.raises(SourceError, match="cannot read source"):
        source.read("SELECT d FROM z")


def test_etl_run_and_verify_from_mariadb(mariadb_url: str, tmp_path: Path) -> None:
    """A user's migration (tests/library_migration.py) from MariaDB into SQLite: the same
    outcome as from SQLite (test_user_migration.py), and verify passes against the source."""
    with connect(mariadb_url) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE lib_members (member_no BIGINT PRIMARY KEY, full_name TEXT, "
            "joined TEXT, state TEXT)"
        )
        # Keys of every shape; MariaDB compares the text keys in its own (case-blind)
        # collation, which orders them as its ranges need.
        cur.execute(
            "CREATE TABLE lib_books (isbn VARCHAR(32) PRIMARY KEY, title TEXT, published TEXT)"
        )
        cur.execute(
            "CREATE TABLE lib_loans (member_no BIGINT, isbn VARCHAR(32), loaned_on VARCHAR(10), "
            "fee TEXT, PRIMARY KEY (member_no, isbn, loaned_on))"
        )
        cur.execute("CREATE TABLE lib_visits (member_no BIGINT, visited TEXT, note TEXT)")
        cur.executemany("INSERT INTO lib_members VALUES (%s, %s, %s, %s)", user.MEMBERS)
        cur.executemany("INSERT INTO lib_books VALUES (%s, %s, %s)", user.BOOKS)
        cur.executemany("INSERT INTO lib_loans VALUES (%s, %s, %s, %s)", user.LOANS)
        cur.executemany("INSERT INTO lib_visits VALUES (%s, %s, %s)", user.VISITS)
    target = f"sqlite://{tmp_path / 'target.db'}"
    where = ("--migration", user.MIGRATION, "--target", target)
    done = etl("run", "--entity", "all", "--source", mariadb_url, "--batch-size", "3", *where)
    assert done.returncode == 0, done.stderr
    assert ETL_PASSWORD not in done.stdout + done.stderr
    with sqlite3.connect(tmp_path / "target.db") as conn:
        jobs = conn.execute(
            "SELECT entity, extracted, loaded, rejected, filtered FROM migration_jobs ORDER BY id"
        ).fetchall()
        names = conn.execute("SELECT legacy_id, name FROM members ORDER BY legacy_id").fetchall()
    assert jobs == [job[:5] for job in user.JOBS]
    assert names == [("1", "Ada Lovelace"), ("5", "Grace Hopper"), ("7", "Alan Turing")]
    checked = etl("verify", "--source", mariadb_url, *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr
