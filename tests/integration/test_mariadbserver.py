"""The throwaway MariaDB server really works: a real password over TCP, on loopback only."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import connectorx as cx
import pymysql
import pytest

from mariadbserver import ETL_PASSWORD, ETL_USER, SERVER_TIME_ZONE, MariaDBServer, connect


def test_etl_account_writes_and_connectorx_reads(mariadb_url: str) -> None:
    parts = urlsplit(mariadb_url)
    assert parts.hostname == "127.0.0.1" and parts.username == ETL_USER
    assert parts.password == ETL_PASSWORD
    with connect(mariadb_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(10))")
        cur.executemany("INSERT INTO t VALUES (%s, %s)", [(1, "x"), (2, None), (3, "ü")])
        cur.execute("SELECT CURRENT_USER(), @@time_zone")
        assert cur.fetchone() == (f"{ETL_USER}@127.0.0.1", SERVER_TIME_ZONE)
    got = cx.read_sql(mariadb_url, "SELECT id, v FROM t ORDER BY id", return_type="arrow")
    assert got.column("id").to_pylist() == [1, 2, 3]
    assert got.column("v").to_pylist() == ["x", None, "ü"]


def test_password_is_enforced(mariadb_server: MariaDBServer, mariadb_url: str) -> None:
    dbname = urlsplit(mariadb_url).path.lstrip("/")
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        connect(mariadb_server.url(dbname, password="wrong-password")).close()


def test_listens_on_loopback_only(mariadb_server: MariaDBServer) -> None:
    assert mariadb_server.sql("SELECT @@bind_address, @@port").split() == [
        "127.0.0.1",
        str(mariadb_server.port),
    ]
    with socket.create_connection(("127.0.0.1", mariadb_server.port), timeout=5):
        pass
    outward = _outward_address()
    if outward is not None:  # a machine with only loopback has nothing more to check
        with pytest.raises(OSError):
            socket.create_connection((outward, mariadb_server.port), timeout=5).close()


def test_runs_as_its_own_user(mariadb_server: MariaDBServer) -> None:
    """As root, the server runs as the ``mysql`` OS user, never as root."""
    pid = int((mariadb_server.datadir.parent / "mariadbd.pid").read_text())
    uid = int(
        next(
            line.split()[1]
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("Uid:")
        )
    )
    assert uid != 0


def _outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address
