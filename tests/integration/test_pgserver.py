"""The throwaway PostgreSQL server really works, with a real password over TCP."""

from __future__ import annotations

from urllib.parse import urlsplit

import adbc_driver_postgresql.dbapi as pg_dbapi
import connectorx as cx
import pyarrow as pa
import pytest

from pgserver import ETL_PASSWORD, ETL_USER, PostgresServer

AUTH_ERROR = r"(?i)password|authentication"


def test_adbc_round_trip_as_password_role(pg_url: str) -> None:
    parts = urlsplit(pg_url)
    assert parts.hostname == "127.0.0.1" and parts.username == ETL_USER
    assert parts.password == ETL_PASSWORD
    table = pa.table(
        {"id": pa.array([1, 2, 3], pa.int64()), "name": pa.array(["a", None, "ü"], pa.string())}
    )
    with pg_dbapi.connect(pg_url) as conn:
        with conn.cursor() as cur:
            cur.execute("select current_user, inet_server_addr()::text")
            assert cur.fetchone() == (ETL_USER, "127.0.0.1/32")
            cur.adbc_ingest("roundtrip", table, mode="create")
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("select id, name from roundtrip order by id")
            back = cur.fetch_arrow_table()
    assert back.to_pylist() == table.to_pylist()


def test_connectorx_reads_with_password_url(pg_url: str) -> None:
    with pg_dbapi.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("create table t (id bigint primary key, v text)")
        cur.execute("insert into t values (1, 'x'), (2, 'y')")
        conn.commit()
    got = cx.read_sql(
        pg_url, "select id, v, current_user as who from t order by id", return_type="arrow"
    )
    assert got.column("id").to_pylist() == [1, 2]
    assert got.column("v").to_pylist() == ["x", "y"]
    assert got.column("who").to_pylist() == [ETL_USER, ETL_USER]


def test_password_is_enforced(pg_server: PostgresServer, pg_database: str) -> None:
    bad = pg_server.url(pg_database, password="wrong-password")
    with pytest.raises(Exception, match=AUTH_ERROR):
        pg_dbapi.connect(bad).close()
    # (not checked with connectorx: its r2d2 pool retries a failed login for 30 s)
    # the superuser (trust) works without a password, the etl role does not
    admin = pg_dbapi.connect(pg_server.url(pg_database, user="postgres"))
    admin.close()
    with pytest.raises(Exception, match=AUTH_ERROR):
        pg_dbapi.connect(pg_server.url(pg_database, password="")).close()
