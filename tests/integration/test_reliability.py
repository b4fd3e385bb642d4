"""Faults and misuse during a run: kills, Ctrl-C, concurrent runs. Nothing lost, nothing twice."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from columnar_etl import pipeline
from columnar_etl.config import DatabaseUrl, RunConfig
from columnar_etl.errors import RunLockedError
from columnar_etl.interrupt import RUN_AGAIN
from columnar_etl.target import Target
from pgserver import PostgresServer
from tests.helpers import etl, legacy_sqlite, pg_completed, start_and_stop

ROWS = 4_000
ORDERS = "SELECT legacy_id, order_number, total, status, order_date, items FROM orders"
ERRORS = "SELECT record_id, error_type, error_message FROM migration_errors"
COUNTS = "SELECT extracted, loaded, rejected, filtered, skipped_existing FROM migration_jobs"


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(legacy_sqlite(tmp_path_factory.mktemp("reliability"), ROWS, seed=21))


@pytest.fixture(scope="module")
def clean(legacy: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The target of one uninterrupted run: what every faulty run must end up equal to."""
    path = tmp_path_factory.mktemp("clean") / "clean.db"
    assert etl(*run_args(legacy, path)).returncode == 0
    return path


def run_args(legacy: str, target: Path) -> tuple[str, ...]:
    return ("run", "--entity", "orders", "--source", legacy, "--target", f"sqlite://{target}",
            "--batch-size", "100")  # fmt: skip


def assert_same_as(clean: Path, target: Path) -> None:
    for sql in (ORDERS, ERRORS):
        with sqlite3.connect(clean) as a, sqlite3.connect(target) as b:
            assert sorted(a.execute(sql).fetchall()) == sorted(b.execute(sql).fetchall()), sql
    with sqlite3.connect(clean) as a, sqlite3.connect(target) as b:
        assert a.execute(COUNTS).fetchall() == b.execute(COUNTS).fetchall()
        dupes = "SELECT COUNT(*) - COUNT(DISTINCT record_id) FROM migration_errors"
        assert b.execute(dupes).fetchone()[0] == 0


def test_sigkill_at_random_points_then_resume(legacy: str, clean: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.db"
    args = run_args(legacy, target)
    points = random.Random(1234).sample(range(1, 8), 3)  # batches to let through before each kill
    for after in points:
        # Sometimes the kill lands between batches, sometimes in the middle of one.
        time.sleep(random.Random(after).random() * 0.05)
        code, _ = start_and_stop(args, target, after, signal.SIGKILL)
        assert code == -signal.SIGKILL
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT COUNT(*) FROM migration_jobs").fetchone()[0] == 1
    assert etl(*args).returncode == 0
    assert_same_as(clean, target)
    verified = etl("verify", "--source", legacy, "--target", f"sqlite://{target}")
    assert verified.returncode == 0 and "verify: passed" in verified.stdout, verified.stdout


@pytest.mark.parametrize("presses", [1, 2], ids=["once", "twice"])
def test_ctrl_c_stops_cleanly_marks_the_job_and_resumes(
    legacy: str, clean: Path, tmp_path: Path, presses: int
) -> None:
    """Once: the run stops after the batch being committed and marks the job interrupted.
    Twice: the process ends at once, as a kill would (unless the job was marked already).
    Either way exit 130, no traceback, whole batches only, and a re-run completes."""
    target = tmp_path / "target.db"
    args = run_args(legacy, target)
    code, stderr = start_and_stop(args, target, 2, signal.SIGINT, times=presses)
    assert code == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert "Exception" not in stderr, stderr
    assert "stopping after the batches being committed" in stderr
    with sqlite3.connect(target) as conn:
        [(status,)] = conn.execute("SELECT status FROM migration_jobs").fetchall()
        done = conn.execute(
            "SELECT SUM(loaded) FROM migration_batches WHERE status = 'completed'"
        ).fetchone()[0]
        rows = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    assert status == "interrupted" if presses == 1 else status in ("interrupted", "in_progress")
    assert rows == done  # only whole batches: nothing half-written
    assert etl(*args).returncode == 0
    assert_same_as(clean, target)


#: A progress line of a run whose stderr is not a terminal (progress.py).
PROGRESS = re.compile(r"^\w+: [\d,]+/[\d,]+ rows \(")


def _stop_lines(stderr: str) -> list[str]:
    """What a stopped run said, progress lines left out."""
    return [line for line in stderr.splitlines() if not PROGRESS.match(line)]


def _job_status(target: Path | str) -> tuple[str, int, int]:
    """The one job's status, the rows its completed batches loaded, and the orders table's."""
    url = target if isinstance(target, str) else f"sqlite://{target}"
    with Target(DatabaseUrl.parse(url, what="t")) as t:
        [status] = t.query("SELECT status FROM migration_jobs")["status"].to_list()
        done = t.scalar("SELECT SUM(loaded) FROM migration_batches WHERE status = 'completed'")
        return status, int(done), int(t.scalar("SELECT COUNT(*) FROM orders"))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_sigterm_stops_like_ctrl_c_and_the_rerun_resumes(
    legacy: str, clean: Path, tmp_path: Path, dialect: str, request: pytest.FixtureRequest
) -> None:
    """What an orchestrator sends to stop a task: the run stops after the batches being
    committed, marks the job interrupted, says so in one line and exits 143."""
    target: Path | str = tmp_path / "target.db"
    if dialect == "postgresql":
        target = request.getfixturevalue("pg_url")
    url = target if isinstance(target, str) else f"sqlite://{target}"
    args = ("run", "--entity", "orders", "--source", legacy, "--target", url,
            "--batch-size", "100")  # fmt: skip
    code, stderr = start_and_stop(args, target, 2, signal.SIGTERM)
    assert code == 143, stderr
    [line] = _stop_lines(stderr)
    assert line.startswith("error: interrupted by SIGTERM: orders job 1 stopped;"), line
    assert "run" in line and "again resumes it" in line, line
    status, done, rows = _job_status(target)
    assert status == "interrupted" and rows == done > 0  # whole batches only
    rerun = etl(*args)
    assert rerun.returncode == 0, rerun.stderr
    if isinstance(target, str):
        _assert_same_rows(clean, target)
    else:
        assert_same_as(clean, target)


def test_a_second_sigterm_ends_the_run_at_once(legacy: str, clean: Path, tmp_path: Path) -> None:
    """As a kill would: no waiting for the batches in flight; the job stays in_progress (or
    was marked already) and the next run resumes it."""
    target = tmp_path / "target.db"
    args = run_args(legacy, target)
    code, stderr = start_and_stop(args, target, 2, signal.SIGTERM, times=2)
    # Ended by our handler (143), or by the default one Python restores as it exits.
    assert code in (143, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr, stderr
    status, done, rows = _job_status(target)
    assert status in ("interrupted", "in_progress") and rows == done
    if status == "in_progress":  # ended before the job could be marked: said so
        assert stderr.splitlines()[-1] == RUN_AGAIN, stderr
    assert etl(*args).returncode == 0
    assert_same_as(clean, target)


def test_ctrl_c_during_a_database_call_still_stops_the_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """While an ADBC call runs on the main thread the driver swaps in its own SIGINT handler
    and cancels the call (a failed batch, retried: the run went on). Database work therefore
    runs off the main thread; presses at random moments within batches of real size."""
    folder = tmp_path_factory.mktemp("ctrl_c_big")
    legacy = str(legacy_sqlite(folder, 200_000, seed=5))
    delays = random.Random(77)
    for attempt in range(4):
        target = folder / f"target{attempt}.db"
        args = ("run", "--entity", "orders", "--source", legacy, "--target",
                f"sqlite://{target}", "--batch-size", "10000")  # fmt: skip
        delay = delays.uniform(0, 0.5)  # the run has 20 batches: it is still going
        code, stderr = start_and_stop(args, target, 1, signal.SIGINT, delay=delay)
        assert code == 130 and "Traceback" not in stderr, stderr
        with sqlite3.connect(target) as conn:
            [(status,)] = conn.execute("SELECT status FROM migration_jobs").fetchall()
        assert status == "interrupted", stderr


def test_a_second_run_of_the_same_entity_refuses(legacy: str, empty_url: DatabaseUrl) -> None:
    target = empty_url  # the database both runs target
    source = DatabaseUrl.parse(legacy, what="source")
    config = RunConfig(source=source, target=target, batch_size=500)
    holder = Target(target)
    try:
        holder.apply_schema()
        holder.lock_run("orders")  # as a run in progress would
        with pytest.raises(RunLockedError, match="already running"):
            pipeline.run(config, "orders")
        env = {**os.environ, "LEGACY_DATABASE_URL": legacy, "DATABASE_URL": target.url}
        cli = subprocess.run(
            [sys.executable, "-m", "columnar_etl", "run", "--entity", "orders"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert cli.returncode == 1 and "another etl run of orders" in cli.stderr
        assert len(cli.stderr.strip().splitlines()) == 1
        assert holder.scalar("SELECT COUNT(*) FROM orders") == 0
        assert holder.scalar("SELECT COUNT(*) FROM migration_jobs") == 0
    finally:
        holder.close()
    # The lock dies with its holder: now the run goes through, once.
    [result] = pipeline.run(config, "orders")
    assert result.status == "completed" and result.counts["loaded"] > 0
    with Target(target) as t:
        assert t.scalar("SELECT COUNT(*) FROM orders") == result.counts["loaded"]


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, since the test stops it (the session one stays up)."""
    with PostgresServer() as server:
        yield server


def _start_run(legacy: str, url: str, *extra: str) -> subprocess.Popen[str]:
    args = ("run", "--entity", "orders", "--source", legacy, "--target", url, "--batch-size", "100")
    return subprocess.Popen(
        [sys.executable, "-m", "columnar_etl", *args, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_batches(proc: subprocess.Popen[str], url: str, n: int) -> None:
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and pg_completed(url) < n:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before the server could be stopped"


def _assert_same_rows(clean: Path, url: str) -> None:
    with sqlite3.connect(clean) as conn:
        expected_ids = sorted(r[0] for r in conn.execute("SELECT legacy_id FROM orders"))
        expected_errors = sorted(conn.execute(ERRORS).fetchall())
        expected_counts = conn.execute(COUNTS).fetchall()
    with Target(DatabaseUrl.parse(url, what="t")) as t:
        ids = sorted(t.query("SELECT legacy_id FROM orders")["legacy_id"].to_list())
        errors = sorted(t.query(ERRORS).rows())
        counts = t.query(COUNTS).rows()
    assert ids == expected_ids and errors == expected_errors and counts == expected_counts


def test_target_restart_mid_run_retries_and_completes(
    legacy: str, clean: Path, own_server: PostgresServer
) -> None:
    url = own_server.url(own_server.create_database("restart"))
    proc = _start_run(legacy, url)
    _wait_for_batches(proc, url, 3)
    own_server.pause()
    # Longer than the default retries' backoff (0.5 + 1 + 2 s): a retry waits for the server.
    time.sleep(6.0)
    own_server.resume()
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    assert "failed (attempt 1)" in stderr  # it did hit the outage, and retried
    _assert_same_rows(clean, url)


def test_target_left_down_fails_clearly_and_resumes_later(
    legacy: str, clean: Path, own_server: PostgresServer
) -> None:
    url = own_server.url(own_server.create_database("down"))
    proc = _start_run(legacy, url, "--max-retries", "2")
    _wait_for_batches(proc, url, 3)
    own_server.pause()
    _, stderr = proc.communicate(timeout=300)
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1, stderr[-2000:]
    assert "run again to resume" in lines[0] and "Traceback" not in stderr
    assert "s3cret" not in stderr
    own_server.resume()
    again = _start_run(legacy, url)
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr[-2000:]
    with Target(DatabaseUrl.parse(url, what="t")) as t:
        assert t.scalar("SELECT COUNT(*) FROM migration_jobs") == 1  # resumed, not restarted
    _assert_same_rows(clean, url)
