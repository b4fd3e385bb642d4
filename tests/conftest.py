"""Shared fixtures: throwaway PostgreSQL and MariaDB servers, per-test databases, SQLite paths."""

from __future__ import annotations

import atexit
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from columnar_etl.config import DatabaseUrl
from columnar_etl.legacy import write_legacy
from mariadbserver import MariaDBServer
from pgserver import SUPERUSER, PostgresServer, ThrowawayServer

S = TypeVar("S", bound=ThrowawayServer)


def _serve(server: S) -> Iterator[S]:
    """``server`` started, then stopped (at exit too, should the session be interrupted)."""
    atexit.register(server.stop)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the whole session (stopped at exit even if interrupted)."""
    yield from _serve(PostgresServer())


@pytest.fixture
def pg_database(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, uniquely named database owned by the ``etl`` role; dropped afterwards."""
    name = pg_server.create_database(f"t_{uuid.uuid4().hex[:16]}")
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def pg_url(pg_server: PostgresServer, pg_database: str) -> str:
    """URL of the per-test database for the password role ``etl`` (scram-sha-256)."""
    return pg_server.url(pg_database)


@pytest.fixture
def pg_admin_url(pg_server: PostgresServer, pg_database: str) -> str:
    """URL of the per-test database for the superuser (trust auth, no password)."""
    return pg_server.url(pg_database, user=SUPERUSER)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """One MariaDB server for the whole session, started only by the tests that ask for it
    (stopped at exit even if interrupted)."""
    yield from _serve(MariaDBServer())


@pytest.fixture
def mariadb_url(mariadb_server: MariaDBServer) -> Iterator[str]:
    """``mysql://`` URL of a fresh, uniquely named MariaDB database for the password account
    ``etl``; dropped afterwards."""
    name = mariadb_server.create_database(f"t_{uuid.uuid4().hex[:16]}")
    yield mariadb_server.url(name)
    mariadb_server.drop_database(name)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """A fresh (not yet existing) SQLite database file path."""
    return tmp_path / "legacy.sqlite"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseUrl]:
    """A new, empty database of each dialect (a SQLite file, or a PostgreSQL database that is
    dropped afterwards)."""
    if request.param == "sqlite":
        yield DatabaseUrl.parse(f"sqlite://{tmp_path / 'empty.db'}", what="test")
        return
    yield DatabaseUrl.parse(request.getfixturevalue("pg_url"), what="test")


#: Orders in the generated legacy database of ``urls`` (customers and products to match).
URLS_ROWS = 3_000


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[DatabaseUrl, DatabaseUrl]]:
    """A generated legacy database (seed 7) and an empty target, both SQLite or both PostgreSQL."""
    if request.param == "sqlite":
        source = DatabaseUrl.parse(f"sqlite://{tmp_path / 'legacy.db'}", what="source")
        target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
        write_legacy(source, URLS_ROWS, seed=7)
        yield source, target
        return
    server = request.getfixturevalue("pg_server")
    names = [server.create_database(f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    source = DatabaseUrl.parse(server.url(names[0]), what="source")
    target = DatabaseUrl.parse(server.url(names[1]), what="target")
    write_legacy(source, URLS_ROWS, seed=7)
    yield source, target
    for name in names:
        server.drop_database(name)
