"""Exactly once under faults that leave the client unsure whether a batch committed.

A lost reply to COMMIT (the server committed, the client saw the connection close) and a full
SQLite disk (SQLite rolled the transaction back by itself): after each, no key is loaded twice,
every row is accounted for, a rerun exits 0 and changes nothing, and ``etl verify`` passes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import polars as pl
import pytest

from columnar_etl.config import DatabaseUrl
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
