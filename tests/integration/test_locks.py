"""A lock held by another session never hangs a run in silence (issue 15, finding 6).

A second session holds a lock; the run either does not need it (another table: it completes
without waiting) or gives up after ``--lock-timeout`` and its retries with one line naming
the table and the holder's pid, saying on stderr meanwhile what it waits for. Released, the
rerun completes.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as pg_dbapi
import pytest

from columnar_etl.config import DatabaseUrl
from columnar_etl.legacy import write_legacy
from pgserver import SUPERUSER, PostgresServer
from tests.helpers import etl, legacy_sqlite

ROWS = 600
#: Short waits: 1 s per try, 1 retry (after the 0.5 s backoff).
QUICK = ("--lock-timeout", "1", "--max-retries", "1")
#: Before the fix the run waited forever: this bounds the test, not the run's behaviour.
HANG = 90


@pytest.fixture(scope="module")
def pg_pair(pg_server: PostgresServer) -> Iterator[tuple[str, str, str, str]]:
    """(source, target, source as superuser, target as superuser): a generated legacy
    PostgreSQL database and a target that every entity was already migrated into."""
    names = [pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    source, target = (pg_server.url(n) for n in names)
    write_legacy(DatabaseUrl.parse(source, what="source"), ROWS, seed=5)
    first = etl("run", "--entity", "all", "--source", source, "--target", target)
    assert first.returncode == 0, first.stderr
    yield source, target, *(pg_server.url(n, user=SUPERUSER) for n in names)
    for name in names:
        pg_server.drop_database(name)


@contextmanager
def holding(url: str, *statements: str) -> Iterator[int]:
    """A second session that ran ``statements`` in an open transaction; its pid. Rolled
    back and closed on the way out, whatever happened."""
    conn: Any = pg_dbapi.connect(url)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            cur.execute("SELECT pg_backend_pid()")
            pid = int(cur.fetchone()[0])
        yield pid
    finally:
        conn.rollback()
        conn.close()


def run_customers(
    source: str, target: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = etl(
        "run", "--entity", "customers", "--source", source, "--target", target, *extra,
        timeout=HANG,
    )  # fmt: skip
    return done, time.monotonic() - started


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_lock_on_a_table_the_run_does_not_load_does_not_hold_it(
    pg_pair: tuple[str, str, str, str],
) -> None:
    source, target, _, target_admin = pg_pair
    update = "UPDATE products SET name = name WHERE id = (SELECT MIN(id) FROM products)"
    with holding(target_admin, update):
        done, took = run_customers(source, target, "--fresh", *QUICK)
    assert done.returncode == 0, done.stderr
    assert "waiting for a lock" not in done.stderr
    assert took < HANG / 2


def test_the_schema_step_restores_only_the_tables_of_the_run(
    pg_pair: tuple[str, str, str, str],
) -> None:
    """What a killed fast-path job of products left dropped (an index, the primary key) is
    brought back by the next products run, not by a customers run, which would wait for the
    application's lock on products to do it."""
    source, target, _, target_admin = pg_pair
    dropped = (
        "DROP INDEX idx_products_category",
        "ALTER TABLE products DROP CONSTRAINT products_pkey",
    )
    conn: Any = pg_dbapi.connect(target_admin)
    try:
        with conn.cursor() as cur:
            for statement in dropped:
                cur.execute(statement)
        conn.commit()
    finally:
        conn.close()
    update = "UPDATE products SET name = name WHERE id = (SELECT MIN(id) FROM products)"
    with holding(target_admin, update):
        done, _ = run_customers(source, target, "--fresh", *QUICK)
    assert done.returncode == 0, done.stderr
    assert products_key_and_index(target_admin) == (0, 0)
    products = etl("run", "--entity", "products", "--source", source, "--target", target)
    assert products.returncode == 0, products.stderr
    assert products_key_and_index(target_admin) == (1, 1)


def products_key_and_index(url: str) -> tuple[int, int]:
    """(products' primary keys, its idx_products_category indexes)."""
    conn: Any = pg_dbapi.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT COUNT(*) FROM pg_constraint WHERE conrelid = 'products'::regclass "
                "AND contype = 'p'), (SELECT COUNT(*) FROM pg_class "
                "WHERE relname = 'idx_products_category')"
            )
            key, index = cur.fetchone()
        return int(key), int(index)
    finally:
        conn.rollback()
        conn.close()


#: An application's open transaction that changed one loaded customer.
UPDATE_CUSTOMER = "UPDATE customers SET name = name WHERE id = (SELECT MIN(id) FROM customers)"


def test_an_open_transaction_on_the_run_table_holds_no_schema_step(
    pg_pair: tuple[str, str, str, str],
) -> None:
    """The schema step asks for no index that exists: CREATE INDEX IF NOT EXISTS would wait
    for the application's transaction (and queue its next statements behind the wait)."""
    source, target, _, target_admin = pg_pair
    with holding(target_admin, UPDATE_CUSTOMER):
        done, _ = run_customers(source, target, "--fresh", *QUICK)
    assert done.returncode == 0, done.stderr
    assert "waiting for a lock" not in done.stderr


@pytest.mark.parametrize(
    ("statement", "options", "mode"),
    [
        # The table itself: the job's first read of it (is the table empty?) waits.
        ("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE", (), "AccessExclusiveLock"),
        # One row: a batch updating it waits, is retried, then the job stops.
        (UPDATE_CUSTOMER, ("--on-conflict", "update"), "RowExclusiveLock"),
    ],
    ids=["table", "row"],
)
def test_a_lock_on_the_run_table_stops_the_run_naming_its_holder(
    pg_pair: tuple[str, str, str, str], statement: str, options: tuple[str, ...], mode: str
) -> None:
    source, target, _, target_admin = pg_pair
    with holding(target_admin, statement) as pid:
        done, took = run_customers(source, target, "--fresh", *options, *QUICK)
    assert done.returncode == 1, done.stderr
    [line] = error_lines(done.stderr)
    assert "gave up waiting for a lock in the target after 2 tries" in line
    assert f"customers held by pid {pid} ({mode}" in line
    assert "waiting for a lock on customers" in done.stderr or "lock timeout" in done.stderr
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr
    assert took < 30
    rerun, _ = run_customers(source, target, *options, *QUICK)  # resumes the job, if any
    assert rerun.returncode == 0, rerun.stderr


def test_a_lock_on_the_source_table_stops_the_run_naming_it(
    pg_pair: tuple[str, str, str, str],
) -> None:
    source, target, source_admin, _ = pg_pair
    with holding(source_admin, "LOCK TABLE customers IN ACCESS EXCLUSIVE MODE") as pid:
        done, took = run_customers(source, target, "--fresh", *QUICK)
    assert done.returncode == 1, done.stderr
    [line] = error_lines(done.stderr)
    assert "gave up waiting for a lock in the source" in line
    assert f"customers held by pid {pid} (AccessExclusiveLock" in line
    assert "waiting for a lock on customers" in done.stderr  # said while it retried
    assert took < 30
    rerun, _ = run_customers(source, target, *QUICK)
    assert rerun.returncode == 0, rerun.stderr


def test_a_lock_on_an_sqlite_target_stops_the_run(tmp_path: Path) -> None:
    source = str(legacy_sqlite(tmp_path, ROWS, seed=5))
    target = f"sqlite://{tmp_path / 'target.db'}"
    assert etl("run", "--entity", "all", "--source", source, "--target", target).returncode == 0
    # Another process writing to the file (SQLite's locks are per process).
    script = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "c.execute('UPDATE products SET name = name WHERE id = 1')\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "target.db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done, took = run_customers(source, target, "--fresh", *QUICK)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1, done.stderr
    [line] = error_lines(done.stderr)
    assert "gave up waiting for a lock in the target" in line
    assert f"the SQLite file {tmp_path / 'target.db'}" in line
    assert took < 25  # the busy timeout was 30 s
    rerun, _ = run_customers(source, target, *QUICK)
    assert rerun.returncode == 0, rerun.stderr
