"""The ``etl`` command on SQLite files: dry run, status, rejects export, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from columnar_etl import pipeline
from columnar_etl.config import DatabaseUrl, RunConfig
from columnar_etl.target import Target
from tests.helpers import etl, legacy_sqlite

ROWS = 4_000


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> DatabaseUrl:
    """One generated legacy SQLite database shared by the tests of this module (read only)."""
    return legacy_sqlite(tmp_path_factory.mktemp("legacy"), ROWS, seed=3)


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path, timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_dry_run_writes_nothing_and_reports_the_real_counts(
    legacy: DatabaseUrl, tmp_path: Path
) -> None:
    target = tmp_path / "target.db"
    dry = etl(
        *("run", "--entity", "orders", "--source", str(legacy)),
        *("--target", f"sqlite://{target}", "--dry-run", "--json"),
    )
    assert dry.returncode == 0, dry.stderr
    assert not target.exists()
    [planned] = pipeline.run(
        RunConfig(source=legacy, target=DatabaseUrl.parse(f"sqlite://{target}", what="t")),
        "orders",
    )
    [report] = json.loads(dry.stdout)
    assert report["status"] == "dry_run"
    assert report["counts"] == planned.counts
    assert report["rejected_by_type"] == planned.rejected_by_type


def test_status_and_rejects_export(legacy: DatabaseUrl, tmp_path: Path) -> None:
    target = f"sqlite://{tmp_path / 'target.db'}"
    done = etl("run", "--entity", "products", "--source", str(legacy), "--target", target)
    assert done.returncode == 0, done.stderr
    # Not a terminal: progress comes as plain lines, the last one at 100%.
    assert "products:" in done.stderr and "(100.0%," in done.stderr.splitlines()[-1]

    status = etl("status", "--target", target)
    assert status.returncode == 0
    row = next(line.split() for line in status.stdout.splitlines() if "products" in line)
    assert row[:5] == ["1", "products", "completed", "100.0%", "1"], status.stdout

    with Target(DatabaseUrl.parse(target, what="t")) as t:
        expected = t.query(
            "SELECT record_id, error_type, error_message FROM migration_errors "
            "WHERE migration_job_id = 1 ORDER BY id"
        )
    assert expected.height > 0
    for suffix, read in ((".csv", pl.read_csv), (".parquet", pl.read_parquet)):
        out = tmp_path / f"rejects{suffix}"
        exported = etl("rejects", "--job", "1", "--target", target, "--out", str(out))
        assert exported.returncode == 0, exported.stderr
        frame = read(out, **({"infer_schema": False} if suffix == ".csv" else {}))
        assert frame.select("record_id", "error_type", "error_message").equals(expected)
        assert frame["source_data"].str.contains('"product_id"').all()
    shown = etl("rejects", "--job", "1", "--target", target)
    assert len(shown.stdout.splitlines()) == expected.height
    wrong = etl("rejects", "--job", "1", "--target", target, "--out", str(tmp_path / "x.txt"))
    assert wrong.returncode == 2 and "must end in .parquet or .csv" in wrong.stderr


def test_killed_run_resumes_to_the_uninterrupted_result(
    legacy: DatabaseUrl, tmp_path: Path
) -> None:
    clean = tmp_path / "clean.db"
    killed = tmp_path / "killed.db"
    args = ["run", "--entity", "orders", "--source", str(legacy), "--batch-size", "100"]
    assert etl(*args, "--target", f"sqlite://{clean}").returncode == 0

    proc = subprocess.Popen(
        [sys.executable, "-m", "columnar_etl", *args, "--target", f"sqlite://{killed}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    completed = "SELECT COUNT(*) FROM migration_batches WHERE status = 'completed'"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if killed.exists():
                try:
                    if _count(killed, completed) >= 3:
                        break
                except sqlite3.OperationalError:
                    pass  # the schema is not there yet
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    batches = _count(killed, "SELECT COUNT(*) FROM migration_batches")
    assert 3 <= _count(killed, completed) < batches

    resumed = etl(*args, "--target", f"sqlite://{killed}")
    assert resumed.returncode == 0, resumed.stderr
    assert _count(killed, "SELECT COUNT(*) FROM migration_jobs") == 1
    query = "SELECT legacy_id, order_number, total, status, order_date, items FROM orders"
    errors = "SELECT record_id, error_type, error_message FROM migration_errors"
    for sql in (query, errors):
        with sqlite3.connect(clean) as a, sqlite3.connect(killed) as b:
            assert sorted(a.execute(sql).fetchall()) == sorted(b.execute(sql).fetchall())
    counts = "SELECT extracted, loaded, rejected, filtered, skipped_existing FROM migration_jobs"
    with sqlite3.connect(clean) as a, sqlite3.connect(killed) as b:
        assert a.execute(counts).fetchall() == b.execute(counts).fetchall()


def test_generate_is_deterministic_byte_for_byte(tmp_path: Path, pg_url: str) -> None:
    files = [tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"]
    for path, seed in zip(files, ("9", "9", "10"), strict=True):
        made = etl("generate", "--rows", "3000", "--seed", seed, "--out", f"sqlite://{path}")
        assert made.returncode == 0, made.stderr
        assert "600 customers, 150 products, 3,000 orders (seed" in made.stdout
    assert files[0].read_bytes() == files[1].read_bytes()
    assert files[0].read_bytes() != files[2].read_bytes()

    # The same seed into PostgreSQL gives the same rows, value for value.
    made = etl("generate", "--rows", "3000", "--seed", "9", "--out", pg_url)
    assert made.returncode == 0 and "s3cret" not in made.stdout + made.stderr
    sqlite_url = DatabaseUrl.parse(f"sqlite://{files[0]}", what="a")
    postgres_url = DatabaseUrl.parse(pg_url, what="b")
    for table, key in (
        ("customers", "customer_id"),
        ("products", "product_id"),
        ("orders", "order_id"),
    ):
        frames = []
        for url in (sqlite_url, postgres_url):
            with Target(url) as t:
                frames.append(t.query(f"SELECT * FROM {table} ORDER BY {key}"))
        a, b = frames
        assert a.height > 0
        assert a.cast(b.schema).equals(b), table  # SQLite reports its own integer widths

    again = etl("generate", "--rows", "10", "--out", f"sqlite://{files[0]}")
    assert again.returncode == 2 and "already holds legacy rows" in again.stderr
