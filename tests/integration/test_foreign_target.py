"""Target tables the tool did not make as declared, or did not fill alone (issue 15: 3-5).

Each case runs ``etl`` as a user would, on SQLite and PostgreSQL: the run refuses with one
line before writing, or steps aside and says so; once the situation is resolved the rerun
exits 0 and ``etl verify`` passes, with no key loaded twice and every row accounted for.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from columnar_etl import ddl, entities, ledger, load, pipeline
from columnar_etl.config import DatabaseUrl, RunConfig
from columnar_etl.dialects import DIALECTS
from columnar_etl.errors import TargetShapeError
from columnar_etl.target import Target
from tests.helpers import etl, legacy_sqlite

BATCH = "500"


def _run(source: DatabaseUrl, target: DatabaseUrl, entity: str, *extra: str):
    return etl(
        "run", "--entity", entity, "--source", source.url, "--target", target.url,
        "--batch-size", BATCH, *extra,
    )  # fmt: skip


def _verify(source: DatabaseUrl, target: DatabaseUrl, entity: str) -> tuple[int, dict]:
    done = etl(
        "verify", "--json", "--entity", entity, "--source", source.url, "--target", target.url
    )
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def _error_line(stderr: str) -> str:
    """The run's last stderr line: its one-line error."""
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), stderr
    return last


def _create_declared(
    target: DatabaseUrl, table: str, old: str, new: str, *, schema: bool = True
) -> None:
    """Create ``table`` from our own DDL with ``old`` replaced by ``new``, then (``schema``)
    the rest of the schema around it: a table someone made by hand, almost as declared."""
    with Target(target) as t:
        create = ddl.table_statements(entities.get(table), DIALECTS[t.dialect])[0]
        changed = re.sub(old, new, create)
        assert changed != create
        t.execute(changed)
        t.commit()
        if schema:
            t.apply_schema()


def _job(target: DatabaseUrl, entity: str) -> dict:
    """The entity's latest job: status, counts and configuration."""
    with Target(target) as t:
        row = t.query(
            "SELECT id, status, extracted, loaded, rejected, filtered, skipped_existing, "
            "updated, CAST(configuration AS TEXT) AS configuration FROM migration_jobs "
            "WHERE entity = ? ORDER BY id DESC LIMIT 1",
            (entity,),
        ).row(0, named=True)
    row["configuration"] = json.loads(row["configuration"])
    return row


def _jobs(target: DatabaseUrl) -> int:
    with Target(target) as t:
        return int(t.scalar("SELECT COUNT(*) FROM migration_jobs"))


def _assert_clean(target: DatabaseUrl, table: str, entity: str) -> None:
    """No legacy id twice, and the latest job's counts add up."""
    with Target(target) as t:
        total, distinct = t.query(
            f"SELECT COUNT(*) AS n, COUNT(DISTINCT legacy_id) AS d FROM {table}"
        ).row(0)
    assert total == distinct
    job = _job(target, entity)
    assert job["status"] == "completed"
    parts = ("loaded", "rejected", "filtered", "skipped_existing")
    assert job["extracted"] == sum(job[p] for p in parts) > 0


def _check(report: dict, name: str) -> dict:
    [found] = [c for c in report["checks"] if c["name"] == name]
    return found


# -- 3. the target's shape is checked before writing ---------------------------------------
def test_a_table_missing_a_declared_column_is_refused_before_anything_is_written(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    source, target = urls
    _create_declared(target, "products", r"\n\s*description[^\n]*", "")
    refused = _run(source, target, "products")
    line = _error_line(refused.stderr)
    assert refused.returncode == 1
    assert "products is not as declared" in line and "column description" in line
    assert _jobs(target) == 0
    with Target(target) as t:
        assert t.scalar("SELECT COUNT(*) FROM products") == 0
        t.execute("ALTER TABLE products ADD COLUMN description text NOT NULL DEFAULT ''")
        t.commit()
    again = _run(source, target, "products")
    assert again.returncode == 0, again.stderr
    assert _job(target, "products")["loaded"] > 0
    _assert_clean(target, "products", "products")
    code, report = _verify(source, target, "products")
    assert code == 0, report["failed"]


def test_a_table_missing_an_indexed_column_is_named_not_the_failed_index(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    """The schema step's CREATE INDEX on a column the table lacks used to be the error."""
    source, target = urls
    # The schema step would fail on this table: it is not created around it.
    _create_declared(target, "products", r",\n\s*etl_job_id[^\n]*", "", schema=False)
    refused = _run(source, target, "products")
    line = _error_line(refused.stderr)
    assert refused.returncode == 1, refused.stderr
    assert "products is not as declared: column etl_job_id (" in line
    assert re.search(r"etl_job_id \((integer|bigint)\) is missing", line)
    assert "CREATE INDEX" not in line
    with Target(target) as t:
        assert t.scalar("SELECT COUNT(*) FROM products") == 0
        assert not t.has_table("migration_jobs")  # the schema step wrote nothing


def test_the_source_as_target_is_refused_before_anything_is_written(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    source, _ = urls
    with Target(source) as t:
        before = t.scalar("SELECT COUNT(*) FROM products")
    refused = _run(source, source, "products")
    line = _error_line(refused.stderr)
    assert refused.returncode == 2, refused.stderr
    assert "would write into its own source table products" in line
    with Target(source) as t:
        assert t.scalar("SELECT COUNT(*) FROM products") == before
        assert not t.has_table("migration_jobs")


def test_an_undeclared_not_null_column_is_refused_and_extra_defaulted_ones_are_not(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    source, target = urls
    _create_declared(target, "customers", r"(\n\s*etl_job_id)", r"\n    tenant_id int NOT NULL,\1")
    refused = _run(source, target, "customers")
    line = _error_line(refused.stderr)
    assert refused.returncode == 1 and "customers is not as declared" in line
    assert "column tenant_id (integer NOT NULL, no default) is not declared" in line
    assert _jobs(target) == 0
    with Target(target) as t:
        assert t.scalar("SELECT COUNT(*) FROM customers") == 0
        t.execute("ALTER TABLE customers DROP COLUMN tenant_id")
        # The tool names its columns: one that fills itself, or takes NULL, stays the user's.
        t.execute("ALTER TABLE customers ADD COLUMN region text NOT NULL DEFAULT 'eu'")
        t.execute("ALTER TABLE customers ADD COLUMN note text")
        t.commit()
    again = _run(source, target, "customers")
    assert again.returncode == 0, again.stderr
    _assert_clean(target, "customers", "customers")
    with Target(target) as t:
        assert t.query("SELECT DISTINCT region FROM customers")["region"].to_list() == ["eu"]
    code, report = _verify(source, target, "customers")
    assert code == 0, report["failed"]


def test_every_kind_of_shape_difference_is_named(empty_url: DatabaseUrl) -> None:
    with Target(empty_url) as t:
        t.apply_schema()
        assert all(not t.shape_differences(n) for n in ("customers", "products", "orders"))
        t.execute("ALTER TABLE orders DROP COLUMN items")
        t.execute("ALTER TABLE orders ADD COLUMN items bigint")  # another type
        t.execute("DROP INDEX idx_orders_customer_id")  # not a key: not a difference
        t.execute("CREATE UNIQUE INDEX orders_number ON orders (order_number)")
        t.commit()
        found = t.shape_differences("orders")
    declared = "jsonb" if empty_url.dialect == "postgresql" else "text"
    assert found == [
        f"column items is {'bigint' if declared == 'jsonb' else 'integer'}, declared {declared}",
        "unique (order_number) is not declared",
    ]


def test_a_table_that_refuses_every_row_of_a_batch_stops_the_job(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    """The shape is right but a constraint refuses any row: that is not 3,000 rejects."""
    source, target = urls
    with Target(target) as t:
        t.apply_schema()
        if t.dialect == "postgresql":
            t.execute("ALTER TABLE orders ADD CONSTRAINT closed CHECK (legacy_id = 'none')")
        else:
            t.execute(
                "CREATE TRIGGER closed BEFORE INSERT ON orders "
                "BEGIN SELECT RAISE(ABORT, 'closed'); END"
            )
        t.commit()
    stopped = _run(source, target, "orders")
    line = _error_line(stopped.stderr)
    assert stopped.returncode == 1 and "refused all" in line and "closed" in line
    with Target(target) as t:
        assert t.scalar("SELECT COUNT(*) FROM orders") == 0
        assert t.scalar("SELECT COUNT(*) FROM migration_errors") == 0  # no rejects recorded
        assert t.scalar("SELECT COUNT(*) FROM migration_batches WHERE status = 'completed'") == 0
        assert _job(target, "orders")["status"] == "failed"
        if t.dialect == "postgresql":
            t.execute("ALTER TABLE orders DROP CONSTRAINT closed")
        else:
            t.execute("DROP TRIGGER closed")
        t.commit()
    again = _run(source, target, "orders")
    assert again.returncode == 0, again.stderr
    _assert_clean(target, "orders", "orders")
    code, report = _verify(source, target, "orders")
    assert code == 0, report["failed"]


def test_a_batch_refused_whole_in_process_raises_the_shape_error(tmp_path: Path) -> None:
    """The library raises it as such (no retries: max_retries would only repeat it)."""
    source = legacy_sqlite(tmp_path, 200, seed=3)
    target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
    with Target(target) as t:
        t.apply_schema()
        t.execute(
            "CREATE TRIGGER closed BEFORE INSERT ON customers BEGIN SELECT RAISE(ABORT, 'x'); END"
        )
        t.commit()
    config = RunConfig(source=source, target=target, max_retries=3, retry_backoff=5.0)
    with pytest.raises(TargetShapeError, match="refused all"):
        pipeline.run(config, "customers")  # with retries, 5 + 10 + 20 s of backoff


# -- 4. the fast path steps aside ----------------------------------------------------------
def test_the_fast_path_steps_aside_for_a_table_other_tables_point_at(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    source, target = urls
    with Target(target) as t:
        t.apply_schema()
        t.execute(
            "CREATE TABLE shipments (id bigint PRIMARY KEY, order_id bigint REFERENCES orders(id))"
        )
        t.commit()
    done = _run(source, target, "orders")
    assert done.returncode == 0, done.stderr
    facts = _job(target, "orders")["configuration"]
    assert facts[load.EMPTY_AT_START] is True and facts[load.FAST_PATH] is False
    assert "shipments.order_id" in facts[load.FAST_PATH_DECLINED]
    _assert_clean(target, "orders", "orders")
    code, report = _verify(source, target, "orders")
    assert code == 0, report["failed"]


def test_no_fast_path_turns_it_off_and_the_job_says_so(
    urls: tuple[DatabaseUrl, DatabaseUrl], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = urls
    done = _run(source, target, "orders", "--no-fast-path")
    assert done.returncode == 0, done.stderr
    facts = _job(target, "orders")["configuration"]
    assert facts["fast_path"] is False  # the run's setting
    assert facts[load.FAST_PATH] is False
    assert facts[load.FAST_PATH_DECLINED] == "turned off (--no-fast-path)"
    _assert_clean(target, "orders", "orders")
    code, report = _verify(source, target, "orders")
    assert code == 0, report["failed"]


def test_a_resumed_fast_job_leaves_the_fast_path_when_told_to(tmp_path: Path) -> None:
    """Resumed with --no-fast-path (or after dependents appeared): merged, and recorded."""
    source = legacy_sqlite(tmp_path, 300, seed=3)
    target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
    config = RunConfig(source=source, target=target, batch_size=100)
    with Target(target) as t:
        t.apply_schema()
        job_id = ledger.create_job(
            t, "orders", "orders", load.facts_at_start(t, entities.get("orders"))
        )
        t.commit()
        assert ledger.job_configuration(t, job_id)[load.FAST_PATH] is True
    [result] = pipeline.run(dataclasses.replace(config, fast_path=False), "orders")
    assert result.job_id == job_id and result.status == "completed"
    with Target(target) as t:
        facts = ledger.job_configuration(t, job_id)
    assert facts[load.FAST_PATH] is False
    assert facts[load.FAST_PATH_DECLINED] == "turned off (--no-fast-path)"


# -- 5. rows the tool did not write --------------------------------------------------------
def _loadable(source: DatabaseUrl, tmp_path: Path, entity: str = "customers") -> list[str]:
    """Legacy ids of the entity's records a run loads (by a run into a scratch target)."""
    scratch = DatabaseUrl.parse(f"sqlite://{tmp_path / f'scratch_{entity}.db'}", what="target")
    pipeline.run(RunConfig(source=source, target=scratch), entity)
    with Target(scratch) as t:
        ids = t.query(f"SELECT legacy_id FROM {entity}")["legacy_id"]
    return sorted(ids.to_list(), key=int)


def test_rows_the_tool_did_not_write_are_refused_then_taken_over_and_verified(
    urls: tuple[DatabaseUrl, DatabaseUrl], tmp_path: Path
) -> None:
    source, target = urls
    first, second = _loadable(source, tmp_path)[:2]
    # A table made by hand whose etl_job_id takes NULL (looser than declared: accepted).
    _create_declared(target, "customers", r"etl_job_id\s+bigint NOT NULL", "etl_job_id bigint")
    with Target(target) as t:
        for legacy_id, job in ((first, None), (second, 999), ("app-1", None)):
            t.execute(
                "INSERT INTO customers (legacy_id, name, email, created_at, etl_job_id) "
                "VALUES (?, 'Someone Else', ?, '2020-01-01 00:00:00', ?)",
                (legacy_id, f"someone.{legacy_id}@else.invalid", job),
            )
        t.commit()

    # verify reports them (it used to crash on the NULL etl_job_id) and fails on the two.
    code, report = _verify(source, target, "customers")
    foreign = _check(report, "foreign_rows")
    assert code == 1 and foreign["status"] == "failed"
    assert foreign["figures"]["foreign_rows"] == 3
    assert foreign["figures"]["shared_legacy_ids"] == [first, second]

    refused = _run(source, target, "customers")
    line = _error_line(refused.stderr)
    assert refused.returncode == 1
    assert "customers holds 3 rows the tool did not write" in line
    assert f"2 of them have the legacy_id of a source record ({first}, {second})" in line
    assert "--on-conflict update" in line
    assert _jobs(target) == 0

    taken = _run(source, target, "customers", "--on-conflict", "update")
    assert taken.returncode == 0, taken.stderr
    job = _job(target, "customers")
    facts = job["configuration"]
    assert facts["foreign_rows"] == 3 and facts["foreign_rows_sharing_source_keys"] == 2
    assert facts[load.TAKEN_OVER] == 2
    assert job["skipped_existing"] == 0 and job["updated"] == 0
    with Target(target) as t:
        rows = t.query(
            "SELECT legacy_id, name, etl_job_id FROM customers WHERE legacy_id IN (?, ?, ?) "
            "ORDER BY legacy_id",
            (first, second, "app-1"),
        )
    by_id = {r["legacy_id"]: r for r in rows.to_dicts()}
    assert by_id["app-1"]["name"] == "Someone Else" and by_id["app-1"]["etl_job_id"] is None
    for legacy_id in (first, second):  # the source's version, now this job's
        assert by_id[legacy_id]["name"] != "Someone Else"
        assert by_id[legacy_id]["etl_job_id"] == job["id"]
    _assert_clean(target, "customers", "customers")

    code, report = _verify(source, target, "customers")
    assert code == 0, report["failed"]
    foreign = _check(report, "foreign_rows")
    assert foreign["figures"]["foreign_rows"] == 1 and foreign["status"] == "passed"

    rerun = _run(source, target, "customers")  # the app's own row shares no key: no refusal
    assert rerun.returncode == 0, rerun.stderr
    again = _job(target, "customers")
    assert again["loaded"] == 0 and again["skipped_existing"] == job["loaded"]
    code, report = _verify(source, target, "customers")
    assert code == 0, report["failed"]


def test_a_row_no_job_wrote_is_never_skipped_as_already_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One that appears after the run's check (here: between the check and the load, under a
    job id no ledger knows) is a duplicate reject, not skipped_existing."""
    source = legacy_sqlite(tmp_path, 200, seed=3)
    target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
    [first] = _loadable(source, tmp_path)[:1]
    real = pipeline.facts_at_start  # called after the checks, as the job is created

    def then_a_foreign_row(t: Target, *args: object) -> dict:
        facts = real(t, *args)  # type: ignore[arg-type]
        t.execute(
            "INSERT INTO customers (legacy_id, name, email, created_at, etl_job_id) "
            "VALUES (?, 'Someone Else', 'someone@else.invalid', '2020-01-01 00:00:00', 999)",
            (first,),
        )
        t.commit()
        return facts

    monkeypatch.setattr(pipeline, "facts_at_start", then_a_foreign_row)
    [result] = pipeline.run(RunConfig(source=source, target=target), "customers")
    assert result.status == "completed" and result.conserved
    assert result.counts["skipped_existing"] == 0
    with Target(target) as t:
        errors = t.query(
            "SELECT record_id, error_type FROM migration_errors WHERE record_id = ?", (first,)
        )
        name = t.scalar("SELECT name FROM customers WHERE legacy_id = ?", (first,))
    assert errors.rows() == [(first, "duplicate")] and name == "Someone Else"


def test_a_resumed_fast_job_merges_once_a_row_no_job_wrote_appeared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its NULL etl_job_id must count as another row: a direct COPY would load its legacy id
    a second time (the unique index is dropped on the fast path) instead of taking it over."""
    source = legacy_sqlite(tmp_path, 300, seed=3)
    target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
    last = _loadable(source, tmp_path, "orders")[-1]  # in the last batch
    _create_declared(target, "orders", r"etl_job_id\s+bigint NOT NULL", "etl_job_id bigint")
    original = load.complete_batch

    def fail_the_second(t: Target, batch: ledger.Batch, *args: object) -> None:
        if batch.batch_number == 2:
            raise RuntimeError("injected failure")
        original(t, batch, *args)  # type: ignore[arg-type]

    config = RunConfig(source=source, target=target, batch_size=100, max_retries=0)
    with monkeypatch.context() as patch:
        patch.setattr(load, "complete_batch", fail_the_second)
        [failed] = pipeline.run(config, "orders")
    assert failed.status == "failed"
    with Target(target) as t:
        assert ledger.job_configuration(t, failed.job_id)[load.FAST_PATH] is True
        t.execute(
            "INSERT INTO orders (legacy_id, customer_legacy_id, order_number, total, status, "
            "order_date, etl_job_id) VALUES (?, '1', 'X', 1.0, 'pending', "
            "'2024-01-01 00:00:00', NULL)",
            (last,),
        )
        t.commit()
    [resumed] = pipeline.run(dataclasses.replace(config, on_conflict="update"), "orders")
    assert resumed.job_id == failed.job_id and resumed.status == "completed"
    _assert_clean(target, "orders", "orders")
    with Target(target) as t:
        facts = ledger.job_configuration(t, resumed.job_id)
        owner = t.scalar("SELECT etl_job_id FROM orders WHERE legacy_id = ?", (last,))
    assert facts[load.FAST_PATH] is False and facts[load.TAKEN_OVER] == 1
    assert owner == resumed.job_id
