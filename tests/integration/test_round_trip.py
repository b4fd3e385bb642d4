"""Issue 17's round trips: a legacy database of every type (tests/legacy_catalog.py), from
each source dialect, through ``etl init`` and ``etl run --migration`` into PostgreSQL and
into SQLite, compared value by value with the source.

Each row lands as it is or is a reject whose reason names its column and value (a zero
date, a real with more decimals than its column keeps; NaN and -0 into SQLite, which would
keep NULL and 0); a second run changes nothing; ``etl verify`` passes. A run killed with
SIGKILL and rerun ends equal to the clean run.
"""

from __future__ import annotations

import signal
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg_dbapi
import pytest

from columnar_etl.config import DatabaseUrl
from columnar_etl.target import Target
from legacy_catalog import LEGACY_SETTINGS, REJECTED, TABLES, compare, write
from tests.helpers import etl, start_and_stop

#: What a run leaves in the target's ledger besides ids: each job's counts.
JOBS = (
    "SELECT entity, extracted, loaded, rejected, filtered, skipped_existing "
    "FROM migration_jobs ORDER BY id"
)


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def legacy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(dialect, URL) of a legacy database holding :data:`legacy_catalog.TABLES`."""
    dialect = request.param
    if dialect == "sqlite":
        url = f"sqlite://{tmp_path / 'legacy.db'}"
    elif dialect == "mysql":
        url = request.getfixturevalue("mariadb_url")
    else:
        server = request.getfixturevalue("pg_server")
        name = server.create_database(f"t_{uuid.uuid4().hex[:12]}")
        url = server.url(name)
        with pg_dbapi.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            for setting in LEGACY_SETTINGS:
                cur.execute(f"ALTER DATABASE {name} SET {setting}")
    write(url)
    yield dialect, url
    if dialect == "postgresql":
        server.drop_database(name)


@pytest.fixture(params=["postgresql", "sqlite"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(dialect, URL) of an empty target database."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite://{tmp_path / 'target.db'}"
        return
    server = request.getfixturevalue("pg_server")
    name = server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    yield "postgresql", server.url(name)
    server.drop_database(name)


def _rows(url: str, sql: str) -> list[tuple]:
    with Target(DatabaseUrl.parse(url, what="test")) as t:
        return t.query(sql).rows()


def _init(source: str, folder: Path) -> Path:
    out = folder / "migration"
    done = etl("init", "--source", source, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def _differences(dialect: str, source: str, target: str, pg_url: str, into: str) -> list[str]:
    """Every value that differs between source and target, table by table (the rows that
    must be rejects must be absent)."""
    found = []
    for table in TABLES[dialect]:
        rejected = list(REJECTED[dialect, into]) if table.name == "dirty" else []
        found += compare(source, target, pg_url, table).differences(rejected)
    return found


def _rejects(target: str, migration: Path) -> dict[str, str]:
    """The ``dirty`` table's rejects as ``etl rejects`` prints them: record id -> reason."""
    [(job,)] = _rows(target, "SELECT MIN(id) FROM migration_jobs WHERE entity = 'dirty'")
    shown = etl("rejects", "--job", str(job), "--target", target, "--migration", str(migration))
    assert shown.returncode == 0, shown.stderr
    lines = [line.split("\t") for line in shown.stdout.splitlines()]
    return {record: reason for record, _, reason in lines}


def test_every_type_lands_exactly(
    legacy: tuple[str, str], target: tuple[str, str], pg_url: str, tmp_path: Path
) -> None:
    (dialect, source), (into, target_url) = legacy, target
    migration = _init(source, tmp_path)
    where = ("--migration", str(migration), "--source", source, "--target", target_url)
    ran = etl("run", "--entity", "all", *where, "--no-progress")
    assert ran.returncode == 0, ran.stderr

    assert _differences(dialect, source, target_url, pg_url, into) == []
    rejects = _rejects(target_url, migration)
    expected = REJECTED[dialect, into]
    assert sorted(rejects) == sorted(expected), rejects
    for record, reason in expected.items():
        assert rejects[record].startswith(reason), rejects[record]

    # A second run loads nothing more and leaves every value as it was.
    first = _rows(target_url, JOBS)
    again = etl("run", "--entity", "all", *where, "--no-progress")
    assert again.returncode == 0, again.stderr
    second = _rows(target_url, JOBS)[len(first) :]
    assert [job[2] for job in second] == [0] * len(first), second
    assert [job[0] for job in second] == [job[0] for job in first]
    assert _differences(dialect, source, target_url, pg_url, into) == []

    checked = etl("verify", *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("target", ["postgresql"], indirect=True)
def test_a_run_killed_mid_way_then_rerun_equals_the_clean_run(
    legacy: tuple[str, str], target: tuple[str, str], pg_url: str, tmp_path: Path
) -> None:
    """From each source dialect into PostgreSQL, a batch a row: killed twice with SIGKILL,
    the rerun ends with the values, rejects and counts of a clean run into another
    PostgreSQL database."""
    dialect, source = legacy
    migration = _init(source, tmp_path)

    def args(target: str) -> tuple[str, ...]:
        return ("run", "--entity", "all", "--migration", str(migration), "--source", source,
                "--target", target, "--batch-size", "1", "--no-progress")  # fmt: skip

    clean = target[1]
    assert etl(*args(clean)).returncode == 0
    killed = pg_url
    for after in (3, 9):  # into every_type, then into dirty and text_keyed
        code, _ = start_and_stop(args(killed), killed, after, signal.SIGKILL)
        assert code == -signal.SIGKILL
    rerun = etl(*args(killed))
    assert rerun.returncode == 0, rerun.stderr

    assert _differences(dialect, source, killed, pg_url, "postgresql") == []
    loaded = (
        "SELECT entity, CAST(SUM(loaded) AS INTEGER) FROM migration_jobs "
        "GROUP BY entity ORDER BY entity"
    )
    assert _rows(killed, loaded) == _rows(clean, loaded)
    errors = "SELECT DISTINCT record_id, error_type FROM migration_errors ORDER BY record_id"
    assert _rows(killed, errors) == _rows(clean, errors)
    verified = etl("verify", *args(killed)[3:9])
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_comparator_finds_a_changed_value(pg_url: str, tmp_path: Path) -> None:
    """The comparator itself can fail: a double one unit in the last place away, a decimal
    rounded, a row missing, a row repeated, each is found."""
    source, copy = (f"sqlite://{tmp_path / name}" for name in ("legacy.db", "copy.db"))
    for url in (source, copy):
        write(url)
    with sqlite3.connect(tmp_path / "copy.db") as conn:
        conn.execute("UPDATE every_type SET r = 1.0000000000000002e300 WHERE id = 1")
        conn.execute("UPDATE every_type SET d = 0.11 WHERE id = 1")
        conn.execute("DELETE FROM text_keyed WHERE code = 'A'")
        conn.execute("INSERT INTO keyless VALUES (1, 'x')")
    conn.close()
    every, _, text_keyed, _, keyless = TABLES["sqlite"]
    [changed] = compare(source, copy, pg_url, every).differences()
    assert "'1e+300'" in changed and "'1.0000000000000002e+300'" in changed, changed
    assert "'0.10'" in changed and "'0.11'" in changed, changed
    [missing] = compare(source, copy, pg_url, text_keyed).differences()
    assert missing.startswith("text_keyed ('A',)"), missing
    assert compare(source, copy, pg_url, keyless).differences() != []
    assert compare(source, source, pg_url, every).differences() == []
