"""Exactly once under faults that leave the client unsure whether a batch committed.

A lost reply to COMMIT (the server committed, the client saw the connection close) and a full
SQLite disk (SQLite rolled the transaction back by itself): after each, no key is loaded twice,
every row is accounted for, a rerun exits 0 and changes nothing, and ``etl verify`` passes.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from columnar_etl import pipeline
from columnar_etl.config import DatabaseUrl, RunConfig
from columnar_etl.errors import TargetFullError
from columnar_etl.target import Target
from pgproxy import CommitReplyCutter
from pgserver import PostgresServer
from tests.helpers import etl, legacy_sqlite

ROWS = 6_000
#: Per entity: its table, the batch size that cuts the legacy table into several batches, and
#: the path a fresh job takes (orders: straight COPY; customers: staged and merged).
CASES = {"orders": 1_000, "customers": 150}
ERRORS = (
    "SELECT record_id, error_type, error_message FROM migration_errors ORDER BY record_id, "
    "error_type, error_message"
)
JOB = (
    "SELECT status, extracted, loaded, rejected, filtered, skipped_existing, updated "
    "FROM migration_jobs ORDER BY id"
)


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(legacy_sqlite(tmp_path_factory.mktemp("exactly_once"), ROWS, seed=15))


@pytest.fixture
def new_database(pg_server: PostgresServer) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        made.append(pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}"))
        return made[-1]

    yield make
    for name in made:
        pg_server.drop_database(name)


def _snapshot(url: str, table: str) -> dict[str, pl.DataFrame]:
    with Target(DatabaseUrl.parse(url, what="test")) as t:
        columns = [c for c in t.query(f"SELECT * FROM {table} LIMIT 0").columns
                   if c not in ("id", "etl_job_id", "customer_id")]  # fmt: skip
        rows = t.query(f"SELECT {', '.join(columns)} FROM {table} ORDER BY legacy_id")
        return {"rows": rows, "errors": t.query(ERRORS), "job": t.query(JOB)}


def _run(entity: str, legacy: str, target: str) -> str:
    args = ("run", "--entity", entity, "--source", legacy, "--target", target,
            "--batch-size", str(CASES[entity]), "--max-retries", "3")  # fmt: skip
    done = etl(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("entity", list(CASES))
def test_a_lost_reply_to_commit_never_loads_a_batch_twice(
    pg_server: PostgresServer, new_database, legacy: str, entity: str
) -> None:
    clean = pg_server.url(new_database())
    _run(entity, legacy, clean)
    expected = _snapshot(clean, entity)

    faulty = pg_server.url(new_database())
    with CommitReplyCutter(("127.0.0.1", pg_server.port), cut_after=2, every=3) as proxy:
        through = faulty.replace(f":{pg_server.port}/", f":{proxy.port}/")
        _run(entity, legacy, f"{through}?sslmode=disable&gssencmode=disable")
    assert proxy.cuts >= 2  # the fault happened, more than once

    got = _snapshot(faulty, entity)
    assert got["rows"]["legacy_id"].is_duplicated().sum() == 0
    assert got["rows"].equals(expected["rows"])
    assert got["errors"].equals(expected["errors"])
    assert got["job"].equals(expected["job"])

    _run(entity, legacy, faulty)  # a second run changes nothing
    again = _snapshot(faulty, entity)
    assert again["rows"].equals(expected["rows"])
    second = again["job"].row(1, named=True)
    assert (second["status"], second["loaded"]) == ("completed", 0), second
    verified = etl("verify", "--source", legacy, "--target", faulty)
    assert verified.returncode == 0 and " 0 failed" in verified.stdout, verified.stdout


def _sqlite_rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute(sql).fetchall(), key=repr)


@pytest.mark.parametrize("entity", list(CASES))
def test_a_full_sqlite_disk_commits_nothing_outside_a_batch(
    legacy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entity: str
) -> None:
    """SQLite rolls a transaction back by itself when the disk is full, and its driver then
    committed each later statement at once: bisection probes and retries left rows with no
    ledger row, and every later run failed on the unique index."""
    clean = tmp_path / "clean.db"
    _run(entity, legacy, f"sqlite://{clean}")
    [(pages,)] = _sqlite_rows(clean, "PRAGMA page_count")

    # A disk that fills about halfway through: every connection the run opens sees it.
    connect = Target._connect

    def small_disk(self: Target) -> object:
        conn = connect(self)
        with conn.cursor() as cur:
            cur.execute(f"PRAGMA max_page_count = {int(pages * 0.6)}")
        return conn

    monkeypatch.setattr(Target, "_connect", small_disk)
    target = tmp_path / "target.db"
    config = RunConfig(
        DatabaseUrl.parse(legacy, what="source"),
        DatabaseUrl.parse(f"sqlite://{target}", what="target"),
        batch_size=CASES[entity],
        retry_backoff=0.01,
    )
    with pytest.raises(TargetFullError, match="full"):
        pipeline.run(config, entity)
    monkeypatch.undo()

    loaded = "SELECT COALESCE(SUM(loaded), 0) FROM migration_batches WHERE status = 'completed'"
    [(in_batches,)] = _sqlite_rows(target, loaded)
    [(rows, keys)] = _sqlite_rows(
        target, f"SELECT COUNT(*), COUNT(DISTINCT legacy_id) FROM {entity}"
    )
    assert 0 < rows == keys == in_batches  # only whole batches, each once

    _run(entity, legacy, f"sqlite://{target}")  # space freed: the rerun resumes
    table = f"SELECT * FROM {entity}"
    strip = lambda rows: sorted((r[1:-1] for r in rows), key=repr)  # noqa: E731 (id, etl_job_id)
    assert strip(_sqlite_rows(target, table)) == strip(_sqlite_rows(clean, table))
    errors = "SELECT record_id, error_type, error_message FROM migration_errors"
    assert _sqlite_rows(target, errors) == _sqlite_rows(clean, errors)
    counts = "SELECT extracted, loaded, rejected, filtered, skipped_existing FROM migration_jobs"
    assert _sqlite_rows(target, counts) == _sqlite_rows(clean, counts)
    verified = etl("verify", "--source", legacy, "--target", f"sqlite://{target}")
    assert verified.returncode == 0 and "verify: passed" in verified.stdout, verified.stdout
