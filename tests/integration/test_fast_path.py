"""The fast path on a fresh target table: COPY straight in, secondary indexes rebuilt at the end.

Whatever path a job takes, the target must end the same: the same rows, rejects and counts,
every index present, nothing lost or doubled by a kill and a resume.
"""

from __future__ import annotations

import random
import signal
import string
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import polars as pl
import pytest

from columnar_etl import entities, ledger, load, pipeline
from columnar_etl.config import DatabaseUrl, RunConfig
from columnar_etl.errors import TargetError
from columnar_etl.legacy import write_legacy
from columnar_etl.target import Target

AS_OF = datetime(2026, 1, 1)
ROWS = 5_000
ORDERS = (
    "SELECT legacy_id, customer_legacy_id, order_number, total, status, order_date, "
    "CAST(items AS TEXT) AS items FROM orders WHERE legacy_id <> 'sentinel' ORDER BY legacy_id"
)
ERRORS = (
    "SELECT record_id, error_type, error_message, CAST(source_data AS TEXT) AS source_data "
    "FROM migration_errors WHERE migration_job_id = ? ORDER BY record_id, error_type"
)
INDEXES = {
    "postgresql": "SELECT indexname AS name FROM pg_indexes WHERE tablename = ?",
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
    "AND sql IS NOT NULL",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def make_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[Callable[[], DatabaseUrl]]:
    """Makes new, empty databases of one dialect."""
    made: list[str] = []
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None

    def make() -> DatabaseUrl:
        name = f"t_{uuid.uuid4().hex[:12]}"
        if server is None:
            return DatabaseUrl.parse(f"sqlite://{tmp_path / name}.db", what="test")
        made.append(server.create_database(name))
        return DatabaseUrl.parse(server.url(name), what="test")

    yield make
    for name in made:
        assert server is not None
        server.drop_database(name)


@pytest.fixture
def legacy(make_url: Callable[[], DatabaseUrl]) -> DatabaseUrl:
    url = make_url()
    write_legacy(url, ROWS, seed=3)
    return url


@pytest.fixture
def pg_target(pg_url: str) -> DatabaseUrl:
    """The test's own PostgreSQL database (conftest's ``pg_url``), target schema applied."""
    url = DatabaseUrl.parse(pg_url, what="test")
    with Target(url) as t:
        t.apply_schema()
    return url


def _config(source: DatabaseUrl, target: DatabaseUrl, **kw: Any) -> RunConfig:
    base = {"batch_size": 400, "workers": 2, "max_retries": 1, "retry_backoff": 0.01}
    return RunConfig(source=source, target=target, as_of=AS_OF, **{**base, **kw})


def _snapshot(target: DatabaseUrl, job_id: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    with Target(target) as t:
        return t.query(ORDERS), t.query(ERRORS, (job_id,))


def _indexes(target: DatabaseUrl, table: str = "orders") -> set[str]:
    with Target(target) as t:
        return set(t.query(INDEXES[t.dialect], (table,))["name"].to_list())


@pytest.fixture
def appends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows each direct COPY sent (the fast path was taken when this is not empty)."""
    sent: list[int] = []
    original = load._append_rows

    def spy(target: Target, entity: Any, job_id: int, rows: pl.DataFrame) -> None:
        sent.append(rows.height)
        original(target, entity, job_id, rows)

    monkeypatch.setattr(load, "_append_rows", spy)
    return sent


def test_fresh_table_and_non_empty_table_give_identical_rows(
    legacy: DatabaseUrl, make_url: Callable[[], DatabaseUrl], appends: list[int]
) -> None:
    fresh, seeded = make_url(), make_url()
    [fast] = pipeline.run(_config(legacy, fresh), "orders")
    assert fast.status == "completed" and fast.conserved
    assert sum(appends) == fast.counts["loaded"]

    # Another job's row makes the table non-empty: the job stages and merges instead.
    with Target(seeded) as t:
        t.apply_schema()
        t.execute(
            "INSERT INTO orders (legacy_id, customer_legacy_id, order_number, total, status, "
            "order_date, etl_job_id) VALUES ('sentinel', '1', 'X', 1.0, 'pending', "
            "'2024-01-01 00:00:00', 999)"
        )
        t.commit()
    appends.clear()
    [merged] = pipeline.run(_config(legacy, seeded), "orders")
    assert merged.status == "completed" and appends == []

    assert merged.counts == fast.counts
    for ours, theirs in zip(
        _snapshot(fresh, fast.job_id), _snapshot(seeded, merged.job_id), strict=True
    ):
        assert ours.height > 0 and ours.equals(theirs)
    with Target(fresh) as t:
        assert ledger.job_configuration(t, fast.job_id)[load.EMPTY_AT_START] is True
    with Target(seeded) as t:
        assert ledger.job_configuration(t, merged.job_id)[load.EMPTY_AT_START] is False
    assert _indexes(fresh) == _indexes(seeded)


def test_indexes_are_dropped_during_the_fast_job_and_rebuilt_after(
    legacy: DatabaseUrl, make_url: Callable[[], DatabaseUrl], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = make_url()
    with Target(target) as t:
        t.apply_schema()
    full = _indexes(target)
    # The secondary indexes and, on the direct path, the unique legacy_id index and (on
    # PostgreSQL; SQLite's is the rowid) the primary key's. PostgreSQL's job-id index is a
    # block-range one, made as such again.
    secondary = {"idx_orders_customer_id", "idx_orders_order_date", "idx_orders_legacy_id"}
    secondary.add("idx_orders_etl_job_id")
    if target.dialect == "postgresql":
        secondary.add("orders_pkey")
    assert secondary <= full
    seen: list[set[str]] = []
    original = load.complete_batch

    def watch(t: Target, *args: Any) -> None:
        seen.append(_indexes(target))
        original(t, *args)

    monkeypatch.setattr(load, "complete_batch", watch)
    [result] = pipeline.run(_config(legacy, target), "orders")
    assert result.status == "completed"
    assert seen and all(during == full - secondary for during in seen)
    assert _indexes(target) == full
    if target.dialect == "postgresql":  # rebuilt as declared: a block-range index
        with Target(target) as t:
            method = t.scalar(
                "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                "WHERE c.relname = 'idx_orders_etl_job_id'"
            )
        assert method == "brin"


def test_a_failed_fast_job_keeps_its_indexes_and_resumes_on_the_merge_path_when_others_wrote(
    legacy: DatabaseUrl,
    make_url: Callable[[], DatabaseUrl],
    monkeypatch: pytest.MonkeyPatch,
    appends: list[int],
) -> None:
    clean, target = make_url(), make_url()
    [reference] = pipeline.run(_config(legacy, clean), "orders")
    original = load.complete_batch
    calls = []

    def fail_the_fourth(t: Target, batch: ledger.Batch, *args: Any) -> None:
        calls.append(batch.batch_number)
        if batch.batch_number == 4:
            raise RuntimeError("injected failure")
        original(t, batch, *args)

    monkeypatch.setattr(load, "complete_batch", fail_the_fourth)
    [failed] = pipeline.run(_config(legacy, target, workers=1), "orders")
    assert failed.status == "failed" and 0 < failed.counts["loaded"] < reference.counts["loaded"]
    assert _indexes(target) == _indexes(clean)  # a failed job still ends with all indexes
    monkeypatch.setattr(load, "complete_batch", original)

    # Rows of another job appeared meanwhile: direct COPY could now collide, so no fast path.
    with Target(target) as t:
        t.execute(
            "INSERT INTO orders (legacy_id, customer_legacy_id, order_number, total, status, "
            "order_date, etl_job_id) VALUES ('sentinel', '1', 'X', 1.0, 'pending', "
            "'2024-01-01 00:00:00', 999)"
        )
        t.commit()
    appends.clear()
    [resumed] = pipeline.run(_config(legacy, target), "orders")
    assert resumed.job_id == failed.job_id and resumed.status == "completed"
    assert appends == [] and resumed.counts == reference.counts
    for ours, theirs in zip(
        _snapshot(target, resumed.job_id), _snapshot(clean, reference.job_id), strict=True
    ):
        assert ours.equals(theirs)
    assert _indexes(target) == _indexes(clean)


def test_only_legacy_id_keyed_entities_copy_straight_in(
    make_url: Callable[[], DatabaseUrl],
) -> None:
    target = make_url()
    with Target(target) as t:
        t.apply_schema()
        for name, table, direct in (("customers", "customers", False), ("orders", "orders", True)):
            entity = entities.get(name)
            config = {load.EMPTY_AT_START: t.is_empty(table)}
            job_id = ledger.create_job(t, name, table, config)
            with load.loading(t, entity, job_id, pending=True) as plan:
                assert plan.direct is direct
                assert plan.deferred  # customers' one secondary index, by job
                assert not set(plan.deferred) & _indexes(target, table)
                # The direct path builds the unique legacy_id index at the end; the merge
                # path needs its unique indexes to find collisions.
                assert (f"idx_{table}_legacy_id" in plan.deferred) is direct
                # And the primary key, on PostgreSQL (SQLite's is the rowid itself).
                dropped = direct and t.dialect == "postgresql"
                assert (f"{table}_pkey" in plan.deferred) is dropped
                assert _primary_key(t, table) == ([] if dropped else ["id"])
                # Autovacuum is paused on either path while the empty table fills (PostgreSQL).
                assert _autovacuum_paused(t, table) is (t.dialect == "postgresql")
            assert set(plan.deferred) <= _indexes(target, table)
            assert _primary_key(t, table) == ["id"]
            assert not _autovacuum_paused(t, table)


def _autovacuum_paused(t: Target, table: str) -> bool:
    if t.dialect == "sqlite":
        return False
    options = t.scalar("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = "
                       "CAST(? AS regclass)", (table,))  # fmt: skip
    return "autovacuum_enabled=false" in (options or "")


def _primary_key(t: Target, table: str) -> list[str]:
    """The columns of ``table``'s primary key, as the database itself declares it."""
    if t.dialect == "sqlite":
        found = t.query("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (table,))
    else:
        found = t.query(
            "SELECT a.attname AS name FROM pg_constraint c JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
            "WHERE c.conrelid = CAST(? AS regclass) AND c.contype = 'p'",
            (table,),
        )
    return found["name"].to_list()


def test_the_schema_step_brings_back_what_a_killed_fast_job_paused(
    make_url: Callable[[], DatabaseUrl],
) -> None:
    with Target(make_url()) as t:
        t.apply_schema()
        if t.dialect == "sqlite":  # the rowid: never dropped; no autovacuum
            assert t.schema_primary_key("orders") is None and not t.pause_autovacuum("orders")
            return
        assert t.schema_primary_key("orders") == "orders_pkey"
        t.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
        assert t.pause_autovacuum("orders")
        t.commit()
        assert _primary_key(t, "orders") == [] and _autovacuum_paused(t, "orders")
        t.apply_schema()
        assert _primary_key(t, "orders") == ["id"] and not _autovacuum_paused(t, "orders")
        t.apply_schema()  # and again: idempotent
        assert _primary_key(t, "orders") == ["id"] and not _autovacuum_paused(t, "orders")


def test_a_key_left_built_as_its_unique_index_becomes_the_key_as_it_is(pg_target) -> None:
    # What a job killed after building its key's index, before the schema step made it the
    # key, leaves behind: the step makes that index the key, without building it again.
    with Target(pg_target) as t:
        t.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
        t.execute("CREATE UNIQUE INDEX orders_pkey ON orders (id)")
        t.commit()
        built = t.scalar("SELECT CAST(CAST('orders_pkey' AS regclass) AS oid)")
        t.apply_schema()
        assert _primary_key(t, "orders") == ["id"]
        assert t.scalar("SELECT CAST(CAST('orders_pkey' AS regclass) AS oid)") == built


def _waiting_builds(t: Target) -> int:
    """Sessions waiting to build an index on orders (for the lock another session holds)."""
    return int(
        t.scalar(
            "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND l.relation = CAST('orders' AS regclass) "
            "AND a.query LIKE 'CREATE %INDEX%'"
        )
    )


def test_deferred_indexes_are_built_at_once_each_on_a_connection(pg_target) -> None:
    deferred = ["orders_pkey", "idx_orders_customer_id", "idx_orders_etl_job_id"]
    with Target(pg_target) as t, Target(pg_target) as writer, Target(pg_target) as watch:
        t.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
        for name in deferred[1:]:
            t.execute(f"DROP INDEX {name}")
        t.commit()
        # An open write holds every build at its table lock: all of them wait there at once.
        writer.execute("LOCK TABLE orders IN ROW EXCLUSIVE MODE")
        building = threading.Thread(target=t.build_indexes, args=("orders", deferred, 3))
        building.start()
        deadline = time.monotonic() + 5
        while _waiting_builds(watch) < len(deferred) and time.monotonic() < deadline:
            watch.rollback()
            time.sleep(0.05)
        waiting = _waiting_builds(watch)
        writer.rollback()
        building.join()
        assert waiting == len(deferred)
        assert set(deferred) <= _indexes(pg_target)
        assert _primary_key(t, "orders") == []  # the index only: the schema step makes it
        t.apply_schema()
        assert _primary_key(t, "orders") == ["id"]


def test_one_writer_databases_leave_the_builds_to_the_schema_step(tmp_path) -> None:
    # SQLite locks the whole file for a writer: builds side by side would only queue.
    url = DatabaseUrl.parse(f"sqlite://{tmp_path / 'one.db'}", what="test")
    deferred = ["idx_orders_customer_id", "idx_orders_order_date"]
    with Target(url) as t:
        t.apply_schema()
        for name in deferred:
            t.execute(f"DROP INDEX {name}")
        t.commit()
        t.build_indexes("orders", deferred, 3)
        assert not set(deferred) & _indexes(url)
        t.apply_schema()
    assert set(deferred) <= _indexes(url)


def test_a_failed_build_is_named_and_the_others_are_kept(pg_target) -> None:
    with Target(pg_target) as t:
        t.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
        t.execute("DROP INDEX idx_orders_customer_id")
        # Two rows with one id: the key cannot be built.
        for _ in range(2):
            t.execute(
                "INSERT INTO orders (id, legacy_id, customer_legacy_id, order_number, "
                "order_date, total, status, etl_job_id) "
                "VALUES (7, ?, 'c', 'n', '2026-01-01', 1, 'pending', 1)",
                (uuid.uuid4().hex,),
            )
        t.commit()
        with pytest.raises(
            TargetError, match=r"indexes of orders: .*could not create unique index .orders_pkey."
        ):
            t.build_indexes("orders", ["orders_pkey", "idx_orders_customer_id"], 2)
        assert "idx_orders_customer_id" in _indexes(pg_target)
        assert "orders_pkey" not in _indexes(pg_target)


@pytest.mark.parametrize(("configured", "building"), [(None, "256MB"), ("1GB", "1GB")])
def test_a_build_sorts_in_256mb_unless_the_server_gives_more(
    pg_target, pg_admin_url, configured, building
) -> None:
    # The default 64 MB spilled a 2M-row key's sort to disk (see benchmarks.md).
    if configured:
        with Target(DatabaseUrl.parse(pg_admin_url, what="test")) as admin:
            database = admin.scalar("SELECT current_database()")
            admin.execute(f"ALTER DATABASE {database} SET maintenance_work_mem = '{configured}'")
            admin.commit()
    with Target(pg_target) as t:
        # What a build connection (one of its own, as each build has) sorts in.
        seen = "CREATE TABLE seen AS SELECT current_setting('maintenance_work_mem') AS v"
        assert t._build(seen) is None
        assert t.scalar("SELECT v FROM seen") == building
        assert t.scalar("SELECT current_setting('maintenance_work_mem')") == (configured or "64MB")


def test_killed_fast_job_resumes_to_the_clean_result(pg_server, tmp_path) -> None:
    names = [pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}") for _ in range(3)]
    legacy, clean, killed = (DatabaseUrl.parse(pg_server.url(n), what="test") for n in names)
    try:
        write_legacy(legacy, 20_000, seed=9)
        args = ["run", "--entity", "orders", "--source", legacy.url, "--batch-size", "500"]
        done = subprocess.run(
            [sys.executable, "-m", "columnar_etl", *args, "--target", clean.url],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        proc = subprocess.Popen(
            [sys.executable, "-m", "columnar_etl", *args, "--target", killed.url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        completed = "SELECT COUNT(*) FROM migration_batches WHERE status = 'completed'"
        deadline = time.monotonic() + 120
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                with Target(killed) as t:
                    if t.has_table("migration_batches") and int(t.scalar(completed)) >= 5:
                        break
                time.sleep(0.02)
            assert proc.poll() is None, "the run finished before it could be killed"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        with Target(killed) as t:
            assert (
                5
                <= int(t.scalar(completed))
                < int(t.scalar("SELECT COUNT(*) FROM migration_batches"))
            )
        resumed = subprocess.run(
            [sys.executable, "-m", "columnar_etl", *args, "--target", killed.url],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr
        with Target(killed) as t:
            assert int(t.scalar("SELECT COUNT(*) FROM migration_jobs")) == 1
        for ours, theirs in zip(_snapshot(killed, 1), _snapshot(clean, 1), strict=True):
            assert ours.height > 0 and ours.equals(theirs)
        counts = (
            "SELECT extracted, loaded, rejected, filtered, skipped_existing FROM migration_jobs"
        )
        with Target(killed) as a, Target(clean) as b:
            assert a.query(counts).equals(b.query(counts))
        assert _indexes(killed) == _indexes(clean)
        with Target(killed) as t:
            assert _primary_key(t, "orders") == ["id"]
            assert not _autovacuum_paused(t, "orders")
    finally:
        for name in names:
            pg_server.drop_database(name)


def test_unique_index_is_found_only_when_it_guarantees_the_key(
    make_url: Callable[[], DatabaseUrl],
) -> None:
    """verify skips its duplicate scan only for an index that makes duplicates impossible."""
    with Target(make_url()) as t:
        t.execute("CREATE TABLE k (a TEXT, b TEXT, c TEXT, d TEXT)")
        t.execute("CREATE UNIQUE INDEX k_a ON k (a)")
        t.execute("CREATE UNIQUE INDEX k_b_partial ON k (b) WHERE b <> 'x'")
        t.execute("CREATE UNIQUE INDEX k_cd ON k (c, d)")
        t.execute("CREATE INDEX k_d ON k (d)")
        t.commit()
        assert t.unique_index("k", "a") == "k_a"
        for column in ("b", "c", "d"):
            assert t.unique_index("k", column) is None, column
        t.execute("DROP INDEX k_a")
        t.commit()
        assert t.unique_index("k", "a") is None


def test_schema_steps_at_once_do_not_deadlock_over_a_job_s_deferred_key(
    pg_target: DatabaseUrl,
) -> None:
    """Two runs' schema steps found the same dropped key while a batch held the table: one of
    them failed with a deadlock until schema steps took turns."""
    url = pg_target
    with Target(url) as t:
        for index in t.schema_indexes("orders", unique=True):
            t.execute(f"DROP INDEX {index}")
        t.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
        t.pause_autovacuum("orders")
        t.commit()
    errors: list[str] = []

    def schema_step() -> None:
        try:
            with Target(url) as t:
                t.apply_schema()
        except Exception as exc:  # what the test looks for
            errors.append(str(exc))

    with Target(url) as lane:
        lane.execute("LOCK TABLE orders IN ROW EXCLUSIVE MODE")  # a batch in flight
        steps = [threading.Thread(target=schema_step) for _ in range(2)]
        for step in steps:
            step.start()
        time.sleep(1.5)
        lane.rollback()
    for step in steps:
        step.join(60)
    assert errors == []
    with Target(url) as t:
        assert _primary_key(t, "orders") == ["id"] and not _autovacuum_paused(t, "orders")


def test_another_run_s_schema_step_leaves_a_running_job_s_deferred_table_alone(
    pg_target: DatabaseUrl, tmp_path
) -> None:
    """Another entity's run starting while a fast orders job loads: its schema step used to
    rebuild the job's indexes and key mid-load. Now it restores only what no live job holds."""
    target = pg_target
    legacy = DatabaseUrl.parse(f"sqlite://{tmp_path / 'legacy.db'}", what="test")
    write_legacy(legacy, 2_000, seed=4)
    with Target(target) as t:
        t.execute("ALTER TABLE customers DROP CONSTRAINT customers_pkey")  # a killed job's
        t.commit()
    full = _indexes(target)
    during: list[tuple[set[str], list[str], bool]] = []

    def other_run_starts(entity: str, done: int, total: int) -> None:
        if done and not during:
            with Target(target) as other:
                other.apply_schema()
                during.append(
                    (
                        _indexes(target),
                        _primary_key(other, "customers"),
                        _autovacuum_paused(other, "orders"),
                    )
                )

    config = _config(legacy, target, workers=1)
    [result] = pipeline.run(config, "orders", progress=other_run_starts)
    assert result.status == "completed" and during
    indexes, customers_key, paused = during[0]
    assert "orders_pkey" not in indexes and "idx_orders_legacy_id" not in indexes
    assert paused  # the job's table: left alone
    assert customers_key == ["id"]  # what no live job holds: restored
    assert _indexes(target) == full  # and the job restored its own at its end
    with Target(target) as t:
        assert _primary_key(t, "orders") == ["id"] and not _autovacuum_paused(t, "orders")


def _deferral_holders(t: Target, table: str) -> list[int]:
    """Server pids holding the deferral lock on ``table`` in ``t``'s database."""
    sql = (
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid::text::bigint"
        " = ? AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    key = zlib.crc32(f"columnar_etl:deferred:{table}".encode())
    return t.query(sql, (key,))["pid"].to_list()


def test_a_deferral_lock_in_another_database_does_not_stop_a_restore(
    pg_server, pg_target: DatabaseUrl
) -> None:
    """Advisory locks are per database: a job on another target of the same server must not
    make this one skip its restore (its own job would then close without its key)."""
    name = pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    elsewhere = DatabaseUrl.parse(pg_server.url(name), what="test")
    try:
        with Target(elsewhere) as other:
            other.hold_deferred("orders")
            other.commit()
            with Target(pg_target) as t:
                t.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
                t.commit()
                t.apply_schema()
                assert _primary_key(t, "orders") == ["id"]
    finally:
        pg_server.drop_database(name)


def test_a_job_dropping_what_it_defers_waits_for_a_schema_step_already_under_way(
    pg_target: DatabaseUrl,
) -> None:
    """The schema step looked for deferral locks before the job took its own; had the job's
    drops run while the step waited on another table, the step would rebuild them after."""
    entity = entities.get("orders")
    with Target(pg_target) as job, Target(pg_target) as blocker:
        job_id = ledger.create_job(job, "orders", "orders", {load.EMPTY_AT_START: True})
        job.commit()
        blocker.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        step = threading.Thread(target=lambda: Target(pg_target).apply_schema())
        step.start()
        time.sleep(0.5)  # the step has looked for locks and waits on customers
        plan: list[load.LoadPlan] = []
        planning = threading.Thread(
            target=lambda: plan.append(load._plan(job, entity, job_id, pending=True))
        )
        planning.start()
        time.sleep(0.5)
        blocker.rollback()
        step.join(60)
        planning.join(60)
        assert plan and plan[0].direct and "orders_pkey" in plan[0].deferred
        assert "orders_pkey" not in _indexes(pg_target)  # still deferred after the step
        assert "idx_orders_legacy_id" not in _indexes(pg_target)


def test_revive_takes_the_locks_back_even_after_a_failed_attempt(
    pg_target: DatabaseUrl,
) -> None:
    with Target(pg_target) as job, Target(pg_target) as admin:
        job.lock_run("orders")
        job.hold_deferred("orders")
        job.commit()
        [first] = _deferral_holders(admin, "orders")
        squatter = Target(pg_target)
        admin.scalar("SELECT pg_terminate_backend(CAST(? AS integer))", (first,))
        admin.commit()
        key = zlib.crc32(b"columnar_etl:deferred:orders")
        assert squatter.scalar("SELECT pg_try_advisory_lock(?)", (key,))
        failed: list[BaseException] = []

        def revive() -> None:
            try:
                job.revive()  # reconnected, but the lock is someone else's for now
            except Exception as exc:  # what the test looks for
                failed.append(exc)

        attempt = threading.Thread(target=revive, daemon=True)
        attempt.start()
        attempt.join(30)
        assert not attempt.is_alive(), "revive waited for a lock instead of failing"
        assert isinstance(failed[0], TargetError) and "still held" in str(failed[0])
        squatter.close()
        job.revive()  # the connection works now: the locks must still come back
        [again] = _deferral_holders(admin, "orders")
        assert again != first and again == job.scalar("SELECT pg_backend_pid()")


RUN_ORDERS = (sys.executable, "-m", "columnar_etl", "run", "--entity", "orders")


def test_a_refused_second_run_leaves_the_running_job_s_table_alone(pg_server, tmp_path) -> None:
    names = [pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    legacy, target = (DatabaseUrl.parse(pg_server.url(n), what="test") for n in names)
    try:
        write_legacy(legacy, 200, seed=2)
        with Target(target) as running:
            running.apply_schema()
            running.lock_run("orders")  # a fast job is loading: its key is dropped
            running.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
            running.commit()
            second = subprocess.run(
                [*RUN_ORDERS, "--source", legacy.url, "--target", target.url],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert second.returncode != 0 and "already running" in second.stderr
            assert _primary_key(running, "orders") == []  # not brought back under the job
    finally:
        for name in names:
            pg_server.drop_database(name)


def test_a_value_too_long_for_an_index_is_a_reject_not_a_failed_job(pg_server) -> None:
    """A category past the btree entry limit (about 2.7 kB): the fast path keeps the index on
    free text, so the database refuses that row alone, as the merge path would."""
    names = [pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    legacy, target = (DatabaseUrl.parse(pg_server.url(n), what="test") for n in names)
    try:
        write_legacy(legacy, 500, seed=4)
        long = "".join(random.Random(5).choices(string.ascii_lowercase, k=8000))
        with Target(legacy) as t:
            t.execute(
                "UPDATE products SET category = ? WHERE product_id = "
                "(SELECT MIN(product_id) FROM products)",
                (long,),
            )
            t.commit()
            victim = str(t.scalar("SELECT MIN(product_id) FROM products"))
        with Target(target) as t:
            t.apply_schema()
            assert "idx_products_category" in t.free_text_indexes("products")
            assert "idx_orders_legacy_id" not in t.free_text_indexes("orders")
        [result] = pipeline.run(_config(legacy, target), "products")
        assert result.status == "completed"
        assert result.rejected_by_type.get("database_error") == 1
        with Target(target) as t:
            refused = t.query(
                "SELECT record_id, error_message FROM migration_errors "
                "WHERE error_type = 'database_error'"
            )
            assert refused["record_id"].to_list() == [victim]
            assert "index row size" in refused["error_message"][0]
            assert "idx_products_category" in _indexes(target, "products")
    finally:
        for name in names:
            pg_server.drop_database(name)
