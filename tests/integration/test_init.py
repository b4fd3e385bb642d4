"""``etl init`` against real sources: a PostgreSQL, a MariaDB and an SQLite database with a
key of every shape, scaffolded, run into PostgreSQL and into SQLite, compared row by row."""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from columnar_etl.config import DatabaseUrl
from columnar_etl.dialects import DIALECTS
from columnar_etl.target import Target
from mariadbserver import MariaDBServer, connect
from tests.helpers import etl

#: (table, its DDL's body with {q} quoting names, its rows); the target's names follow.
TABLES: list[tuple[str, str, list[tuple]]] = [
    (
        "members",  # an integer primary key
        "{id} integer PRIMARY KEY, {name} varchar(40) NOT NULL, {note} text",
        [(1, "Ada", "x"), (2, "Bob", None), (3, "Zoë 🦀", "it's")],
    ),
    (
        "books",  # a text primary key
        "{isbn} varchar(20) PRIMARY KEY, {title} text",
        [("b1", "T1"), ("b 2", "T2")],
    ),
    (
        "loans",  # a composite primary key, and foreign keys to both
        "{member_id} integer NOT NULL, {isbn} varchar(20) NOT NULL, {n} integer NOT NULL, "
        "{fee} numeric(10,2), PRIMARY KEY ({member_id}, {isbn}, {n}), "
        "FOREIGN KEY ({member_id}) REFERENCES {members} ({id}), "
        "FOREIGN KEY ({isbn}) REFERENCES {books} ({isbn})",
        [(1, "b1", 1, 1.5), (1, "b1", 2, None), (2, "b 2", 1, 0.01)],
    ),
    (
        "visits",  # no key at all: a repeated row is two visits
        "{member_id} integer, {note} text",
        [(1, "a"), (1, "a"), (None, "b")],
    ),
    (
        "tags",  # no primary key: its unique NOT NULL column is the key
        "{code} varchar(10) NOT NULL UNIQUE, {label} text",
        [("x", "X"), ("y", None)],
    ),
    (
        "Order Details",  # names a target cannot take as they are
        "{Order ID} integer PRIMARY KEY, {select} varchar(10), {Unit Price} numeric(10,2)",
        [(10, "s", 2.25)],
    ),
]
#: The source table's columns and the target's, as `etl init` names them.
COLUMNS = {
    "members": (["id", "name", "note"], "members", ["id", "name", "note"]),
    "books": (["isbn", "title"], "books", ["isbn", "title"]),
    "loans": (["member_id", "isbn", "n", "fee"], "loans", ["member_id", "isbn", "n", "fee"]),
    "visits": (["member_id", "note"], "visits", ["member_id", "note"]),
    "tags": (["code", "label"], "tags", ["code", "label"]),
    "Order Details": (
        ["Order ID", "select", "Unit Price"],
        "order_details",
        ["order_id", "select_", "unit_price"],
    ),
}
INDEX = "CREATE INDEX {visits_member} ON {visits} ({member_id})"


class Quoted(dict):
    """``{name}`` in DDL as the dialect quotes ``name``."""

    def __init__(self, quote: Callable[[str], str]) -> None:
        super().__init__()
        self.quote = quote

    def __missing__(self, key: str) -> str:
        return self.quote(key)


def statements(dialect: str) -> list[tuple[str, tuple | None]]:
    """The DDL and inserts of the legacy database, in the dialect's quoting and
    placeholders."""
    quote = DIALECTS[dialect].quote
    names = Quoted(quote)
    mark = "%s" if dialect == "mysql" else "?"
    out: list[tuple[str, tuple | None]] = []
    for table, body, rows in TABLES:
        out.append((f"CREATE TABLE {quote(table)} ({body.format_map(names)})", None))
        out += [
            (f"INSERT INTO {quote(table)} VALUES ({', '.join([mark] * len(r))})", r) for r in rows
        ]
    out.append((INDEX.format_map(names), None))
    return out


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def legacy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Reader]]:
    """A legacy database of each source dialect holding TABLES, and how to read it."""
    if request.param == "sqlite":
        path = tmp_path / "legacy.db"
        with sqlite3.connect(path) as conn:
            for sql, values in statements("sqlite"):
                conn.execute(sql, values or ())
        yield f"sqlite://{path}", lambda sql: sqlite3.connect(path).execute(sql).fetchall()
    elif request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        with Target(DatabaseUrl.parse(url, what="test")) as t:
            for sql, values in statements("postgresql"):
                t.execute(sql, values) if values else t.execute(sql)
            t.commit()
        yield url, lambda sql: _target_rows(url, sql)
    else:
        url = request.getfixturevalue("mariadb_url")
        with connect(url) as conn, conn.cursor() as cur:
            for sql, values in statements("mysql"):
                cur.execute(sql, values)
            conn.commit()

        def read(sql: str) -> list[tuple]:
            with connect(url) as conn, conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())

        yield url, read


Reader = Callable[[str], list[tuple]]


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty target database of each dialect."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'target.db'}"
        return
    server = request.getfixturevalue("pg_server")
    name = server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    yield server.url(name)
    server.drop_database(name)


def _target_rows(url: str, sql: str) -> list[tuple]:
    with Target(DatabaseUrl.parse(url, what="test")) as t:
        return t.query(sql).rows()


def _pg(url: str, *statements: str) -> None:
    """Runs ``statements`` on the PostgreSQL database ``url``, then commits."""
    with Target(DatabaseUrl.parse(url, what="test")) as t:
        for sql in statements:
            t.execute(sql)
        t.commit()


def _my(url: str, *statements: str) -> None:
    """Runs ``statements`` on the MySQL database ``url``, then commits."""
    with connect(url) as conn, conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
        conn.commit()


def _refused(source: str, tmp_path: Path, *args: str, code: int = 1) -> str:
    """The one line ``etl init`` of ``source`` fails with, having written nothing."""
    out = tmp_path / "refused"
    done = etl("init", "--source", source, "--out", str(out), *args)
    assert done.returncode == code, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert not out.exists()
    return line


def _init_and_run(source: str, target: str, out: Path, *init: str) -> str:
    """``etl init`` of ``source`` into ``out`` (``init``: more options), then ``etl run
    --entity all`` of it into ``target``, each asserted to succeed: what init printed."""
    done = etl("init", "--source", source, "--out", str(out), *init)
    assert done.returncode == 0, done.stderr
    where = ("--migration", str(out), "--source", source, "--target", target)
    ran = etl("run", "--entity", "all", *where, "--no-progress")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return done.stdout


def _same(value: object) -> object:
    """A value as compared: a number by its value (1.50 is 1.5, the text '1.50' too)."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return Decimal(str(value)).normalize()
    except InvalidOperation:
        return value


def _table(rows: list[tuple]) -> list[tuple]:
    return sorted((tuple(_same(v) for v in row) for row in rows), key=repr)


def test_init_then_run_copies_every_table_faithfully(
    legacy: tuple[str, Reader], target: str, tmp_path: Path
) -> None:
    source, read_source = legacy
    out = tmp_path / "my_migration"
    done = etl("init", "--source", source, "--out", str(out))
    assert done.returncode == 0, done.stderr
    said = done.stdout
    assert "members: 3 rows, key id (primary key)" in said or "members: ? rows" in said, said
    assert "key isbn (primary key)" in said
    assert "key member_id, isbn, n (primary key)" in said
    assert "visits: " in said and "keyless: no primary key" in said
    assert "key code (unique, not null)" in said
    assert "'Order Details' -> order_details" in said
    assert sorted(p.name for p in out.iterdir()) == ["migration.py"]
    _ruff_clean(out)

    where = ("--migration", str(out), "--source", source, "--target", target)
    ran = etl("run", "--entity", "all", *where, "--no-progress")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    dialect = DIALECTS[DatabaseUrl.parse(source, what="s", source=True).dialect]
    loaded = {}
    for table, (columns, entity, target_columns) in COLUMNS.items():
        selected = ", ".join(dialect.quote(c) for c in columns)
        expected = _table(read_source(f"SELECT {selected} FROM {dialect.quote(table)}"))
        got = _target_rows(target, f"SELECT {', '.join(target_columns)} FROM {entity}")
        assert _table(got) == expected, table
        loaded[entity] = _target_rows(target, f"SELECT * FROM {entity} ORDER BY 1")

    checked = etl("verify", *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    again = etl("run", "--entity", "all", *where, "--no-progress")
    assert again.returncode == 0, again.stdout + again.stderr
    for entity, rows in loaded.items():
        assert _target_rows(target, f"SELECT * FROM {entity} ORDER BY 1") == rows, entity


#: A target table's columns: the legacy key of one column is its primary key; a composite
#: key is also legacy_id's text, beside a generated key, as a keyless table has one.
TARGETS = {
    "members": ["id", "name", "note", "etl_job_id"],
    "books": ["isbn", "title", "etl_job_id"],
    "loans": ["etl_id", "legacy_id", "member_id", "isbn", "n", "fee", "etl_job_id"],
    "visits": ["etl_id", "member_id", "note", "etl_job_id"],
}


def test_a_changed_row_updates_by_its_own_key_in_place(
    sqlite_legacy: str, target: str, tmp_path: Path
) -> None:
    """A key of one column is the target's primary key and how the engine knows a record:
    a second run with --on-conflict update rewrites the changed rows in place (an integer
    key, a text key, and a composite key's legacy_id), adds the new ones, and skips none."""
    out = tmp_path / "m"
    assert etl("init", "--source", sqlite_legacy, "--out", str(out)).returncode == 0
    where = ("--migration", str(out), "--source", sqlite_legacy, "--target", target)
    ran = etl("run", "--entity", "all", *where, "--no-progress")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with Target(DatabaseUrl.parse(target, what="test")) as t:
        shapes = {name: t.query(f"SELECT * FROM {name} LIMIT 0").columns for name in TARGETS}
    assert shapes == TARGETS  # no second key column where the legacy key is one column
    with sqlite3.connect(sqlite_legacy.removeprefix("sqlite://")) as conn:
        conn.execute("UPDATE members SET name = 'Ada L.' WHERE id = 1")
        conn.execute("INSERT INTO members VALUES (4, 'Cy', NULL)")
        conn.execute("UPDATE books SET title = 'T1b' WHERE isbn = 'b1'")
        conn.execute("UPDATE loans SET fee = 2.5 WHERE member_id = 1 AND n = 1")
    again = etl("run", "--entity", "all", *where, "--no-progress", "--on-conflict", "update")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _target_rows(target, "SELECT id, name FROM members ORDER BY id") == [
        (1, "Ada L."),
        (2, "Bob"),
        (3, "Zoë 🦀"),
        (4, "Cy"),
    ]
    assert _target_rows(target, "SELECT isbn, title FROM books ORDER BY isbn") == [
        ("b 2", "T2"),
        ("b1", "T1b"),
    ]
    fees = _target_rows(target, "SELECT n, fee FROM loans WHERE member_id = 1 ORDER BY n")
    assert [(n, _same(fee)) for n, fee in fees] == [(1, _same("2.5")), (2, None)]
    jobs = _target_rows(
        target,
        "SELECT j.entity, SUM(b.updated) AS u, SUM(b.skipped_existing) AS s "
        "FROM migration_batches b "
        "JOIN migration_jobs j ON j.id = b.migration_job_id "
        "WHERE j.id IN (SELECT MAX(id) FROM migration_jobs GROUP BY entity) GROUP BY j.entity",
    )
    updated = {entity: (int(u), int(s)) for entity, u, s in jobs}
    # Every row of a table is its batch's: unchanged rows are rewritten with themselves.
    assert updated["members"] == (3, 0) and updated["books"] == (2, 0), updated
    assert updated["loans"] == (3, 0), updated
    checked = etl("verify", *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _ruff_clean(folder: Path) -> None:
    """The generated code passes ruff's checks (the project's rule set) and its format, run
    from the folder as a user would (here, this repository's src/ would make columnar_etl
    an import of the first party)."""
    ruff = shutil.which("ruff")
    assert ruff, "ruff is a dev dependency"
    rules = "E,F,W,I,B,UP,SIM,RUF"
    for args in (["check", "--select", rules], ["format", "--check"]):
        done = subprocess.run(
            [ruff, *args, "--isolated", "."], capture_output=True, text=True, cwd=folder
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def sqlite_legacy(tmp_path: Path) -> str:
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as conn:
        for sql, values in statements("sqlite"):
            conn.execute(sql, values or ())
    return f"sqlite://{path}"


def test_an_empty_sqlite_table_is_scaffolded_and_run(tmp_path: Path) -> None:
    """The count of values of another storage class is NULL over no rows."""
    path = tmp_path / "empty.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n REAL, v TEXT)")
    target = f"sqlite://{tmp_path / 't.db'}"
    said = _init_and_run(f"sqlite://{path}", target, tmp_path / "m")
    assert "t: 0 rows, key id (primary key)" in said
    assert _target_rows(target, "SELECT COUNT(*) FROM t") == [(0,)]


#: SQLite text that PostgreSQL's casts would read as another value, or in part.
ODD_DATES = {
    2: ("today", None, None),
    3: ("epoch", "now", "2020-01-01 10:00 PST"),
    4: ("J2451187", "10:00 EST", "2020-01-01 10:00:00.1234567"),
    5: ("2020-01-01 10:00", "12:00:00.1234567", "allballs"),
    6: ("20200315", "24:00:00+00:00", "2021-03-28T04:30:00+02:00"),
}


def test_sqlite_dates_in_plain_form_land_and_any_other_is_a_reject(
    target: str, tmp_path: Path
) -> None:
    """A SQLite date is any text; a target's cast reads 'today', 'epoch', a zone's name, a
    seventh decimal: each would land as another value, so each is a reject naming the form."""
    path = tmp_path / "dates.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, da DATE, tm TIME, dt DATETIME)")
        plain = (1, "2020-02-29", "23:59:59.999999", "2020-02-29T00:00")
        conn.executemany("INSERT INTO d VALUES (?, ?, ?, ?)", [plain, (7, None, None, None)])
        conn.executemany(
            "INSERT INTO d VALUES (?, ?, ?, ?)", [(k, *v) for k, v in ODD_DATES.items()]
        )
        conn.execute("INSERT INTO d VALUES (8, 20200315, '12:00', '2020-01-01 10:00:00')")
    _init_and_run(f"sqlite://{path}", target, tmp_path / "m")
    got = _target_rows(target, "SELECT id, da, tm, dt FROM d ORDER BY id")
    pg = target.startswith("postgresql")
    assert [tuple(str(v) if v is not None else None for v in row) for row in got] == [
        # A SQLite target keeps the text as it was.
        ("1", "2020-02-29", "23:59:59.999999", "2020-02-29" + (" 00:00:00" if pg else "T00:00")),
        ("7", None, None, None),
    ]
    rejects = tmp_path / "rejects.csv"
    assert etl("rejects", "--job", "1", "--out", str(rejects), "--target", target).returncode == 0
    with rejects.open(encoding="utf-8", newline="") as f:
        said = {int(row["record_id"]): row["error_message"] for row in csv.DictReader(f)}
    assert sorted(said) == [2, 3, 4, 5, 6, 8], said
    for record, values in (*ODD_DATES.items(), (8, ("20200315",))):
        shown = [v for v in values if v is not None]
        assert any(v in said[record] for v in shown), (record, said[record])
        assert "not of the form" in said[record] or "with a time zone" in said[record]


def test_invalid_utf8_rejects_its_row_alone_beside_columns_read_as_text(
    target: str, tmp_path: Path
) -> None:
    """A batch holding invalid UTF-8 is read again as hex: a column read through an
    expression (a NUMERIC, a DATE) was taken for invalid too, and every row was a reject. A
    blob in a TEXT column (which failed the whole read) is the text of its bytes where they
    are UTF-8, else a reject showing them."""
    path = tmp_path / "bytes.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, n NUMERIC, d DATE, b TEXT)")
        conn.execute(
            "INSERT INTO t VALUES (1, 'ok', 1.5, '2020-01-01', X'6869'), "
            "(2, CAST(X'FF' AS TEXT), 2, '2020-01-02', 'x'), (3, 'fine', NULL, NULL, NULL), "
            "(4, 'four', 4, NULL, X'FF00')"
        )
    said = _init_and_run(f"sqlite://{path}", target, tmp_path / "m")
    assert "t.b: TEXT -> text: values of another kind in it (2): a blob is" in said
    got = _target_rows(target, "SELECT id, a, n, d, b FROM t ORDER BY id")
    assert [(i, a, _same(n), None if d is None else str(d), b) for i, a, n, d, b in got] == [
        (1, "ok", _same("1.5"), "2020-01-01", "hi"),
        (3, "fine", None, None, None),
    ]
    rejects = tmp_path / "rejects.csv"
    assert etl("rejects", "--job", "1", "--out", str(rejects), "--target", target).returncode == 0
    with rejects.open(encoding="utf-8", newline="") as f:
        said = {row["record_id"]: row for row in csv.DictReader(f)}
    assert {k: row["error_message"] for k, row in said.items()} == {
        "2": "a: invalid UTF-8 in the source",
        "4": "b: invalid UTF-8 in the source",
    }
    assert json.loads(said["4"]["source_data"])["b"] == "<invalid UTF-8: FF00>"


def test_a_folder_that_is_not_empty_is_refused_and_left_as_it_is(
    sqlite_legacy: str, tmp_path: Path
) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    done = etl("init", "--source", sqlite_legacy, "--out", str(out))
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "is not empty" in line and str(out) in line
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_tables_names_the_tables_and_an_unknown_one_is_refused(
    sqlite_legacy: str, tmp_path: Path
) -> None:
    out = tmp_path / "two"
    done = etl("init", "--source", sqlite_legacy, "--out", str(out), "--tables", "books,loans")
    assert done.returncode == 0, done.stderr
    text = (out / "migration.py").read_text()
    assert "BOOKS = SourceSpec(" in text and "LOANS = SourceSpec(" in text
    assert "MEMBERS" not in text
    # The foreign key to members, which is not read, is said to be left out.
    assert "loans(member_id) -> members: not declared" in done.stdout
    missing = tmp_path / "missing"
    refused = etl(
        "init", "--source", sqlite_legacy, "--out", str(missing), "--tables", "books,nope"
    )
    assert refused.returncode != 0
    [line] = refused.stderr.strip().splitlines()
    assert "'nope'" in line, line
    assert not missing.exists()


def test_a_type_that_cannot_be_carried_is_refused_before_writing(
    pg_url: str, tmp_path: Path
) -> None:
    _pg(
        pg_url,
        "CREATE TYPE edition AS (year int, printing int)",
        "CREATE TABLE odd_books (isbn text PRIMARY KEY, title edition)",
        "CREATE TABLE odd_shelves (id int PRIMARY KEY, first edition, last edition)",
    )
    line = _refused(pg_url, tmp_path)
    # Every refused column at once, each with its table: not one per rerun.
    assert line.startswith("error: 3 columns: "), line
    refused = [("odd_books", "title"), ("odd_shelves", "first"), ("odd_shelves", "last")]
    for table, column in refused:
        assert f"source table '{table}', column '{column}': edition" in line, line
    assert "nothing was written" in line
    # Types no declaration can name, an array of an enum: refused, never a failed schema.
    _pg(
        pg_url,
        "CREATE TYPE shade AS ENUM ('dark', 'light')",
        'CREATE TABLE odd_marks (id int PRIMARY KEY, c "char", n numeric(5,-3), s shade[], '
        "b bpchar)",
    )
    line = _refused(pg_url, tmp_path, "--tables", "odd_marks")
    assert line.startswith("error: 3 columns: "), line
    assert "column 'c': \"char\": no PostgreSQL type to carry it as" in line, line
    assert "column 'n': numeric(5,-3): no PostgreSQL type to carry it as" in line, line
    assert "column 's': shade[]: an array of a user-defined type is not carried" in line, line


def test_types_of_no_length_land_as_text_or_blank_padded(
    pg_url: str, mariadb_url: str, target: str, tmp_path: Path
) -> None:
    """MySQL's CHAR(0) and VARCHAR(0) hold '' or NULL (PostgreSQL has no char(0)); an
    unbounded PostgreSQL bpchar keeps its spaces."""
    _my(
        mariadb_url,
        "CREATE TABLE zero_width (id int PRIMARY KEY, c char(0), v varchar(0))",
        "INSERT INTO zero_width VALUES (1, '', NULL), (2, NULL, '')",
    )
    _pg(
        pg_url,
        "CREATE TABLE padded (id int PRIMARY KEY, b bpchar)",
        "INSERT INTO padded VALUES (1, 'ab  '), (2, NULL)",
    )
    for source, table, expected in (
        (mariadb_url, "zero_width", [(1, "", None), (2, None, "")]),
        (pg_url, "padded", [(1, "ab  "), (2, None)]),
    ):
        _init_and_run(source, target, tmp_path / table, "--tables", table)
        got = _target_rows(target, f"SELECT * FROM {table} ORDER BY id")
        assert [row[:-1] for row in got] == expected  # etl_job_id last


def test_an_unanalyzed_table_shows_unknown_rows_and_text_carried_columns_say_why(
    pg_url: str, tmp_path: Path
) -> None:
    with Target(DatabaseUrl.parse(pg_url, what="test")) as t:
        t.execute("CREATE TABLE spans (id bigint PRIMARY KEY, span interval, amount numeric)")
        t.execute("INSERT INTO spans VALUES (1, '1 day', 1.5)")
        t.commit()
    out = tmp_path / "spans"
    done = etl("init", "--source", pg_url, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "spans: ? rows, key id (primary key)" in done.stdout, done.stdout
    assert "spans.span: interval -> interval: " in done.stdout
    assert "spans.amount: numeric -> numeric: " in done.stdout


def test_no_source_or_a_file_for_a_folder_is_one_line(sqlite_legacy: str, tmp_path: Path) -> None:
    unset = etl("init", "--out", str(tmp_path / "m"))
    assert unset.returncode == 2
    assert unset.stderr.strip() == "error: no source: pass --source or set LEGACY_DATABASE_URL"
    a_file = tmp_path / "file.py"
    a_file.write_text("")
    done = etl("init", "--source", sqlite_legacy, "--out", str(a_file))
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "is a file" in line and a_file.read_text() == ""


def test_an_unsigned_bigint_key_of_mariadb_is_read_as_it_is(
    mariadb_url: str, target: str, tmp_path: Path
) -> None:
    """The common AUTO_INCREMENT key: a key (not a keyless table), every id exact."""
    big = 2**63 - 1
    with connect(mariadb_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE accounts (id bigint unsigned AUTO_INCREMENT PRIMARY KEY)")
        cur.execute(
            "CREATE TABLE entries (id bigint unsigned PRIMARY KEY, account bigint unsigned, "
            "FOREIGN KEY (account) REFERENCES accounts (id))"
        )
        cur.executemany("INSERT INTO accounts VALUES (%s)", [(1,), (big,)])
        cur.executemany("INSERT INTO entries VALUES (%s, %s)", [(5, big), (big, 1), (6, None)])
        conn.commit()
    out = tmp_path / "m"
    done = etl("init", "--source", mariadb_url, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "accounts: " in done.stdout and "key id (primary key)" in done.stdout
    assert "keys read as they are:\n  accounts.id: bigint(20) unsigned -> numeric(20)" in (
        done.stdout
    )
    where = ("--migration", str(out), "--source", mariadb_url, "--target", target)
    ran = etl("run", "--entity", "all", *where, "--no-progress")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    got = _target_rows(target, "SELECT id, account FROM entries")
    assert _table(got) == _table([(5, big), (big, 1), (6, None)])
    assert etl("verify", *where).returncode == 0
    # Again: the target's numeric(20) keys are compared with the new rows', each skipped.
    again = etl("run", "--entity", "all", *where, "--no-progress", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    skipped = {job["entity"]: job["counts"] for job in json.loads(again.stdout)}
    assert {e: (c["skipped_existing"], c["loaded"]) for e, c in skipped.items()} == {
        "accounts": (2, 0),
        "entries": (3, 0),
    }


def test_an_unsigned_id_past_bigint_stops_the_run_naming_it(
    mariadb_url: str, tmp_path: Path
) -> None:
    _my(
        mariadb_url,
        "CREATE TABLE u (id bigint unsigned PRIMARY KEY, v int)",
        "INSERT INTO u VALUES (1, 1), (9223372036854775808, 2)",
    )
    out = tmp_path / "m"
    assert etl("init", "--source", mariadb_url, "--out", str(out)).returncode == 0
    target = f"sqlite://{tmp_path / 't.db'}"
    where = ("--migration", str(out), "--source", mariadb_url, "--target", target)
    ran = etl("run", "--entity", "all", *where, "--no-progress")
    assert ran.returncode == 1
    [line] = ran.stderr.strip().splitlines()
    assert "source table 'u', key column 'id': its values 1..9223372036854775808" in line


def test_one_table_is_one_entity(sqlite_legacy: str, tmp_path: Path) -> None:
    done = etl("init", "--source", sqlite_legacy, "--out", str(tmp_path / "m"), "--tables", "tags")
    assert done.returncode == 0, done.stderr
    assert ": 1 entity. Edit the transforms" in done.stdout, done.stdout


def test_tables_repeated_or_spaced_are_each_read_once(sqlite_legacy: str, tmp_path: Path) -> None:
    out = tmp_path / "m"
    done = etl(
        "init", "--source", sqlite_legacy, "--out", str(out), "--tables", " books, books,,loans "
    )
    assert done.returncode == 0, done.stderr
    text = (out / "migration.py").read_text()
    assert text.count('BOOKS = SourceSpec(\n    "books"') == 1, text
    assert "books_2" not in text and "books_2" not in done.stdout, done.stdout
    assert "wrote " in done.stdout and ": 2 entities." in done.stdout


@pytest.mark.parametrize("tables", ["", " , ,"])
def test_tables_naming_no_table_is_a_usage_error(
    sqlite_legacy: str, tmp_path: Path, tables: str
) -> None:
    line = _refused(sqlite_legacy, tmp_path, "--tables", tables, code=2)
    assert "--tables" in line and "no table" in line, line


def test_a_postgresql_parent_table_is_read_without_its_childrens_rows(
    pg_url: str, tmp_path: Path
) -> None:
    """A read of an inheritance parent includes its children's rows: each row must be
    copied once, by its own table's entity."""
    _pg(
        pg_url,
        'CREATE TABLE "Parent Row" (id int PRIMARY KEY, v text)',
        'CREATE TABLE kid (extra text) INHERITS ("Parent Row")',
        "INSERT INTO \"Parent Row\" VALUES (1, 'p')",
        "INSERT INTO kid VALUES (2, 'k', 'e')",
    )
    out = tmp_path / "m"
    done = etl("init", "--source", pg_url, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "only their own rows:\n  Parent Row: tableoid = " in done.stdout, done.stdout
    _ruff_clean(out)
    target = f"sqlite://{tmp_path / 't.db'}"
    where = ("--migration", str(out), "--source", pg_url, "--target", target)
    ran = etl("run", "--entity", "all", *where, "--no-progress")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert _target_rows(target, "SELECT id, v FROM parent_row") == [(1, "p")]
    assert _target_rows(target, "SELECT id, v, extra FROM kid") == [(2, "k", "e")]
    checked = etl("verify", *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("grant", "hidden"),
    [("", "'id', 'salary'"), ("GRANT SELECT (id) ON payroll TO etl", "'salary'")],
)
def test_columns_the_user_cannot_read_are_refused_not_left_out(
    pg_admin_url: str, pg_url: str, tmp_path: Path, grant: str, hidden: str
) -> None:
    """The catalog's column list shows only what the user may read: a column left out of
    it would never be copied, and nothing would say so."""
    created = ["CREATE TABLE payroll (id int PRIMARY KEY, salary int)"]
    _pg(pg_admin_url, *created, "REVOKE ALL ON payroll FROM etl", *([grant] if grant else []))
    line = _refused(pg_url, tmp_path)
    assert "'payroll'" in line and hidden in line and "SELECT" in line, line
    assert "s3cret" not in line


def test_a_table_of_no_columns_is_refused(pg_url: str, tmp_path: Path) -> None:
    _pg(pg_url, "CREATE TABLE marks ()", "INSERT INTO marks DEFAULT VALUES")
    line = _refused(pg_url, tmp_path)
    assert "'marks'" in line and "no columns" in line, line


@pytest.fixture(scope="module")
def folding_mariadb_url() -> Iterator[str]:
    """A database of a MariaDB server that keeps table names in lower case and compares them
    so (``lower_case_table_names=1``, Windows' default)."""
    with MariaDBServer(options=("--lower-case-table-names=1",)) as server:
        yield server.url(server.create_database("legacy"))


def test_tables_names_a_table_in_any_case_where_the_server_folds_case(
    folding_mariadb_url: str, tmp_path: Path
) -> None:
    _my(
        folding_mariadb_url,
        "CREATE TABLE `Customers` (`ID` int PRIMARY KEY)",
        "CREATE TABLE `ORDERS` (`OrderID` int PRIMARY KEY)",
    )
    out = tmp_path / "m"
    tables = "Customers,ORDERS,orders"
    done = etl("init", "--source", folding_mariadb_url, "--out", str(out), "--tables", tables)
    assert done.returncode == 0, done.stderr
    assert "customers: 0 rows" in done.stdout and "orders: 0 rows" in done.stdout, done.stdout
    assert ": 2 entities." in done.stdout
    line = _refused(folding_mariadb_url, tmp_path, "--tables", "Customerz")
    assert "no table 'Customerz'" in line, line


def test_sqlite_names_in_another_case_find_their_table_and_column(tmp_path: Path) -> None:
    """SQLite compares names ignoring ASCII case, and keeps a foreign key as it was spelled:
    ``--tables`` and the foreign key find ``Parent`` and its ``id`` all the same."""
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE Parent (id integer PRIMARY KEY);"
            "CREATE TABLE child (id integer PRIMARY KEY, p integer,"
            " FOREIGN KEY (P) REFERENCES PARENT (ID));"
            "INSERT INTO Parent VALUES (1); INSERT INTO child VALUES (1, 1);"
        )
    source, out = f"sqlite://{path}", tmp_path / "m"
    done = etl("init", "--source", source, "--out", str(out), "--tables", "CHILD,parent")
    assert done.returncode == 0, done.stderr
    assert "left out" not in done.stdout, done.stdout
    assert 'references=(Reference("p", to="parent.id"),)' in (out / "migration.py").read_text()
    target = f"sqlite://{tmp_path / 't.db'}"
    where = ("--migration", str(out), "--source", source, "--target", target)
    ran = etl("run", "--entity", "all", *where, "--no-progress")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert _target_rows(target, "SELECT id, p FROM child") == [(1, 1)]


def test_the_command_it_suggests_runs_as_printed(sqlite_legacy: str, tmp_path: Path) -> None:
    """A folder with a space in its name is quoted in the suggested ``etl run``."""
    out = tmp_path / "my migration"
    done = etl("init", "--source", sqlite_legacy, "--out", str(out), "--tables", "tags")
    assert done.returncode == 0, done.stderr
    suggested = done.stdout.strip().splitlines()[-1].partition("then: ")[2]
    assert shlex.split(suggested) == ["etl", "run", "--migration", str(out), "--entity", "all"]


def test_a_view_in_tables_is_refused_saying_it_is_a_view(
    sqlite_legacy: str, tmp_path: Path
) -> None:
    path = sqlite_legacy.removeprefix("sqlite://")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIEW busy AS SELECT member_id FROM loans")
    line = _refused(sqlite_legacy, tmp_path, "--tables", "books,busy")
    assert "'busy' is a view" in line, line


def test_postgresql_views_and_foreign_tables_are_named_as_such(pg_url: str, tmp_path: Path) -> None:
    _pg(
        pg_url,
        "CREATE TABLE t (id int PRIMARY KEY)",
        "CREATE VIEW v AS SELECT id FROM t",
        "CREATE MATERIALIZED VIEW mv AS SELECT id FROM t",
    )
    line = _refused(pg_url, tmp_path, "--tables", "v,mv")
    assert "'v' is a view" in line and "'mv' is a materialized view" in line, line


def test_a_mysql_enum_lands_as_text_and_a_value_outside_it_is_a_reject(
    mariadb_url: str, tmp_path: Path
) -> None:
    """enum -> text with a check: '' (what a non-strict MySQL keeps for an invalid value) is
    a reject naming the enum, never a new label in the target."""
    with connect(mariadb_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE tickets (id int PRIMARY KEY, state enum('new','it''s done'))")
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("INSERT INTO tickets VALUES (1, 'new'), (2, 'it''s done'), (3, NULL)")
        cur.execute("INSERT INTO tickets VALUES (4, 'no such state')")  # kept as ''
        conn.commit()
    out = tmp_path / "m"
    assert etl("init", "--source", mariadb_url, "--out", str(out)).returncode == 0
    target = f"sqlite://{tmp_path / 't.db'}"
    where = ("--migration", str(out), "--source", mariadb_url, "--target", target)
    ran = etl("run", "--entity", "all", *where, "--no-progress", "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    got = _target_rows(target, "SELECT id, state FROM tickets")
    assert _table(got) == _table([(1, "new"), (2, "it's done"), (3, None)])
    rejects = tmp_path / "rejects.csv"
    assert etl("rejects", "--job", "1", "--out", str(rejects), "--target", target).returncode == 0
    assert "state: not one of the enum's values" in rejects.read_text(encoding="utf-8")


def test_a_mysql_enum_or_set_is_never_a_key_and_every_row_is_copied(
    mariadb_url: str, tmp_path: Path
) -> None:
    """MySQL sorts an enum by its position and a set by its bits, but compares both as text:
    ranges of such a key missed rows and repeated others. init leaves such keys out; a
    migration declaring one is stopped before reading."""
    _my(
        mariadb_url,
        "CREATE TABLE ek (e enum('z','a','m','b') PRIMARY KEY, v int)",
        "INSERT INTO ek VALUES ('z', 1), ('a', 2), ('m', 3), ('b', 4)",
        "CREATE TABLE sk (s set('z','a') NOT NULL, n int NOT NULL, PRIMARY KEY (s, n))",
        "INSERT INTO sk VALUES ('z', 1), ('a', 1), ('z,a', 1)",
    )
    out = tmp_path / "m"
    done = etl("init", "--source", mariadb_url, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "ek: 4 rows, keyless: primary key (e): e is an enum, which MySQL sorts" in (
        done.stdout
    ), done.stdout
    assert "keyless: primary key (s, n): s is a set, which MySQL sorts by its bits" in (done.stdout)
    target = f"sqlite://{tmp_path / 't.db'}"
    where = ("--migration", str(out), "--source", mariadb_url, "--target", target)
    ran = etl("run", "--entity", "all", *where, "--no-progress", "--batch-size", "1")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert _table(_target_rows(target, "SELECT e, v FROM ek")) == _table(
        [("z", 1), ("a", 2), ("m", 3), ("b", 4)]
    )
    assert _table(_target_rows(target, "SELECT s, n FROM sk")) == _table(
        [("z", 1), ("a", 1), ("z,a", 1)]
    )
    # Declared by hand, the enum key stops the run before anything is read.
    code = (out / "migration.py").read_text()
    keyed = code.replace('"ek",\n    None,', '"ek",\n    "e",')
    assert keyed != code, code
    (out / "migration.py").write_text(keyed)
    again = etl("run", "--entity", "ek", *where, "--no-progress", "--fresh")
    assert again.returncode == 1
    [line] = again.stderr.strip().splitlines()
    assert "source table 'ek', key column 'e' is an enum, which MySQL sorts" in line, line


def test_a_value_postgresql_refuses_in_a_copy_names_its_column(
    mariadb_url: str, pg_url: str, tmp_path: Path
) -> None:
    """PostgreSQL's text holds no NUL: the row is a reject naming the column the COPY
    refused, not only the server's words."""
    _my(
        mariadb_url,
        "CREATE TABLE notes (id int PRIMARY KEY, title varchar(20), body varchar(20))",
        "INSERT INTO notes VALUES (1, 'a', 'ok'), (2, 'b', CONCAT('x', CHAR(0), 'y'))",
    )
    target = pg_url
    _init_and_run(mariadb_url, target, tmp_path / "m")
    assert _target_rows(target, "SELECT id, body FROM notes") == [(1, "ok")]
    rejects = tmp_path / "rejects.csv"
    assert etl("rejects", "--job", "1", "--out", str(rejects), "--target", target).returncode == 0
    with rejects.open(encoding="utf-8", newline="") as f:
        [row] = list(csv.DictReader(f))
    said = row["error_message"]
    assert said.startswith("refused by the target database (column body): "), said
    assert "0x00" in said, said


def test_sqlite_generated_columns_are_copied_with_the_rest(tmp_path: Path) -> None:
    """pragma_table_info hides a generated column; its values are data all the same."""
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, "
            "twice INTEGER GENERATED ALWAYS AS (id * 2) VIRTUAL, "
            "loud TEXT AS (upper(name)) STORED)"
        )
        conn.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "ab"), (2, None)])
    source, target = f"sqlite://{path}", f"sqlite://{tmp_path / 't.db'}"
    out = tmp_path / "m"
    assert etl("init", "--source", source, "--out", str(out)).returncode == 0
    ran = etl(
        "run",
        "--entity",
        "all",
        "--migration",
        str(out),
        "--source",
        source,
        "--target",
        target,
        "--no-progress",
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    got = _target_rows(target, "SELECT id, name, twice, loud FROM items")
    assert _table(got) == _table([(1, "ab", 2, "AB"), (2, None, 4, None)])


def test_sqlite_numbers_stored_as_text_are_rejects_not_a_failed_read(
    target: str, tmp_path: Path
) -> None:
    """SQLite keeps 'oops' in an INTEGER column; read as it is, connectorx fails the whole
    read. etl init counts such values and reads the column as text: each one is a reject
    with its reason, the numbers land as numbers."""
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER, price REAL)")
        rows = [(1, 5, 1.5), (2, "oops", 2.5), (3, 4, "cheap"), (4, -7, 0.1), (5, None, None)]
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    source = f"sqlite://{path}"
    out = tmp_path / "m"
    done = etl("init", "--source", source, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "t.qty: INTEGER -> bigint: values of another kind in it (1)" in done.stdout
    where = ("--migration", str(out), "--source", source, "--target", target)
    ran = etl("run", "--entity", "all", *where, "--no-progress", "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    got = _target_rows(target, "SELECT id, qty, price FROM t")
    assert _table(got) == _table([(1, 5, 1.5), (4, -7, 0.1), (5, None, None)])
    assert all(isinstance(q, int) for _, q, _ in got if q is not None)
    reasons = [r[0] for r in _target_rows(target, "SELECT error_message FROM migration_errors")]
    assert len(reasons) == 2 and any("oops" in r for r in reasons), reasons
    assert any("cheap" in r for r in reasons), reasons
