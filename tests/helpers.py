"""What the integration tests share: running the ``etl`` command as a user would."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from columnar_etl.config import DatabaseUrl
from columnar_etl.legacy import write_legacy
from columnar_etl.target import Target

#: Environment variables that stand in for ``etl run`` options: a developer's own settings
#: must not leak into the tests.
OPTION_ENV = (
    "LEGACY_DATABASE_URL",
    "DATABASE_URL",
    "MIGRATION_BATCH_SIZE",
    "MAX_CONCURRENT_BATCHES",
    "MAX_RETRIES",
    "LOG_LEVEL",
    "ETL_EXECUTOR",
    "RAY_ADDRESS",
    "LEGACY_TIMEZONE",
    "ETL_LOCK_TIMEOUT",
    "ENABLE_PROGRESS_TRACKING",
)


def legacy_sqlite(folder: Path, rows: int, seed: int) -> DatabaseUrl:
    """A generated legacy SQLite database ``folder/legacy.db`` with ``rows`` orders."""
    url = DatabaseUrl.parse(f"sqlite://{folder / 'legacy.db'}", what="source")
    write_legacy(url, rows, seed=seed)
    return url


def etl(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m columnar_etl ARGS`` in a clean environment plus ``env``; never raises on exit."""
    clean = {k: v for k, v in os.environ.items() if k not in OPTION_ENV}
    return subprocess.run(
        [sys.executable, "-m", "columnar_etl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
        cwd=cwd,
    )


COMPLETED = "SELECT COUNT(*) FROM migration_batches WHERE status = 'completed'"


def completed_batches(target: Path | str) -> int:
    """Batches the target's ledger holds as completed (0 before the ledger exists, or while
    the server is away): an SQLite file, or a PostgreSQL URL."""
    if isinstance(target, str):
        return pg_completed(target)
    if not target.exists():  # connecting would create it
        return 0
    try:
        with sqlite3.connect(target, timeout=30) as conn:
            return int(conn.execute(COMPLETED).fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def pg_completed(url: str) -> int:
    """:func:`completed_batches` of a PostgreSQL target."""
    try:
        with Target(DatabaseUrl.parse(url, what="t")) as t:
            return int(t.scalar(COMPLETED)) if t.has_table("migration_batches") else 0
    except Exception:  # the server is restarting
        return 0


def start_and_stop(
    args: tuple[str, ...] | list[str],
    target: Path | str,
    after: int,
    sig: int,
    timeout: float = 300,
    times: int = 1,
    delay: float = 0.0,
) -> tuple[int, str]:
    """Start ``etl ARGS``, send ``sig`` (``times`` times, 50 ms apart) ``delay`` seconds after
    ``after`` more batches of ``target`` (an SQLite file or a PostgreSQL URL) completed; its
    exit code and stderr."""
    before = completed_batches(target)
    proc = subprocess.Popen(
        [sys.executable, "-m", "columnar_etl", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if completed_batches(target) >= before + after:
                break
            time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, "the run finished before it could be stopped"
        for n in range(times):
            if n:
                time.sleep(0.05)
            proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr


#: The built-in migration's tables and the columns a run decides.
RUN_TABLES = {
    "customers": "legacy_id, name, email, phone, status, created_at",
    "products": "legacy_id, sku, name, price, category, active",
    "orders": "legacy_id, customer_legacy_id, customer_id IS NULL AS orphan, order_number, total, "
    "status, order_date",
}
ERRORS = (
    "SELECT record_id, error_type, error_message FROM migration_errors "
    "ORDER BY record_id, error_type, error_message"
)


def run_snapshot(url: DatabaseUrl) -> dict[str, pl.DataFrame]:
    """The built-in migration's tables, rejects and job counts in ``url``, in a fixed order."""
    with Target(url) as t:
        frames = {
            table: t.query(f"SELECT {columns} FROM {table} ORDER BY legacy_id")
            for table, columns in RUN_TABLES.items()
        }
        frames["errors"] = t.query(ERRORS)
        frames["counts"] = t.query(
            "SELECT entity, status, extracted, loaded, rejected, filtered, skipped_existing "
            "FROM migration_jobs ORDER BY entity"
        )
    return frames
