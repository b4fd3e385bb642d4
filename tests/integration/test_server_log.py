"""A clean run leaves nothing in the PostgreSQL server's log a DBA would have to look at."""

from __future__ import annotations

import re

from columnar_etl.config import DatabaseUrl
from columnar_etl.legacy import write_legacy
from pgserver import PostgresServer
from tests.helpers import etl

#: A server log line at the levels a DBA watches (the default prefix: time and pid first).
NOISE = re.compile(r"\b(WARNING|ERROR|FATAL|PANIC):  ")


def _noise(lines: list[str]) -> list[str]:
    return [line for line in lines if NOISE.search(line)]


def test_the_log_check_sees_a_warning(pg_server: PostgresServer) -> None:
    """The check below can fail: a warning the server logs is found."""
    mark = pg_server.log_mark()
    pg_server.psql("BEGIN; BEGIN; ROLLBACK;")  # "there is already a transaction in progress"
    assert any(
        "already a transaction in progress" in line for line in _noise(pg_server.log_since(mark))
    )


def test_a_clean_run_logs_no_warning_or_error(pg_server: PostgresServer) -> None:
    """Every batch used to log "there is already a transaction in progress" twice: the
    driver sent BEGIN inside the batch's transaction after a bulk load and after a query
    whose rows were not read."""
    source, target = (pg_server.create_database(f"log_{name}") for name in ("source", "target"))
    try:
        source_url, target_url = pg_server.url(source), pg_server.url(target)
        write_legacy(DatabaseUrl.parse(source_url, what="source"), 3_000, seed=3)
        mark = pg_server.log_mark()
        run = etl("run", "--entity", "all", "--source", source_url, "--target", target_url,
                  "--batch-size", "500")  # fmt: skip
        assert run.returncode == 0, run.stderr
        # Again, into the loaded target: every batch merges (no fast path) and skips.
        again = etl("run", "--entity", "all", "--fresh", "--source", source_url, "--target",
                    target_url, "--batch-size", "500")  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert _noise(pg_server.log_since(mark)) == []
    finally:
        for name in (source, target):
            pg_server.drop_database(name)
