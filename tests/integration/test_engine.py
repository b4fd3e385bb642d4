"""End-to-end migrations against real databases: SQLite files and the suite's PostgreSQL."""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import datetime
from pathlib import Path

import pandera.polars as pa
import polars as pl
import pytest

from columnar_etl import batch as batch_runner
from columnar_etl import entities, extract, ledger, pipeline
from columnar_etl.config import DatabaseUrl, RunConfig
from columnar_etl.errors import InterruptedRunError, SourceError
from columnar_etl.extract import Source
from columnar_etl.legacy import write_legacy
from columnar_etl.target import Target
from tests import oracle
from tests.helpers import etl, legacy_sqlite

AS_OF = datetime(2026, 1, 1)
ROWS = 3_000
JUDGE = {"customers": oracle.customer, "products": oracle.product, "orders": oracle.order}


def _config(urls: tuple[DatabaseUrl, DatabaseUrl], **kw: object) -> RunConfig:
    source, target = urls
    base = {"batch_size": 700, "workers": 2, "max_retries": 1, "retry_backoff": 0.01}
    return RunConfig(source=source, target=target, as_of=AS_OF, **{**base, **kw})  # type: ignore[arg-type]


def _target_rows(target: DatabaseUrl, table: str) -> pl.DataFrame:
    with Target(target) as t:
        return t.query(f"SELECT legacy_id, etl_job_id FROM {table} ORDER BY legacy_id")


def _expected_loaded(source: DatabaseUrl, name: str) -> set[str]:
    """Legacy ids the oracle says load: valid rows, lowest legacy id first per unique key."""
    entity = entities.get(name)
    frame = Source(source).read(f"SELECT * FROM {entity.source.table}")
    frame = frame.cast(dict(entity.source.schema), strict=False).sort(entity.source.id_column)  # type: ignore[arg-type]
    seen: dict[str, set[object]] = {key: set() for key in entity.unique_keys}
    loaded = set()
    for record in frame.to_dicts():
        outcome = JUDGE[name](record, AS_OF)
        if outcome.kind != "valid":
            continue
        row = outcome.row
        if any(row[key] in seen[key] for key in entity.unique_keys):
            continue
        for key in entity.unique_keys:
            seen[key].add(row[key])
        loaded.add(row["legacy_id"])
    return loaded


def test_all_entities_match_oracle_and_counts_add_up(urls: tuple[DatabaseUrl, DatabaseUrl]) -> None:
    results = pipeline.run(_config(urls), "all")
    assert [r.status for r in results] == ["completed"] * 3
    for result in results:
        assert result.conserved, result.counts
        assert result.counts["extracted"] > 0
        rows = _target_rows(urls[1], result.entity)
        assert set(rows["legacy_id"]) == _expected_loaded(urls[0], result.entity)
        assert rows.height == result.counts["loaded"]
    customers = results[0]
    assert customers.counts["filtered"] > 0 and customers.rejected_by_type["duplicate"] > 0

    # Rejects carry the untouched source row and a reason.
    with Target(urls[1]) as t:
        errors = t.query(
            "SELECT record_id, error_type, error_message, source_data FROM migration_errors "
            "WHERE migration_job_id = ?",
            (results[2].job_id,),
        )
    assert errors.height == results[2].counts["rejected"]
    sample = errors.row(0, named=True)
    source_row = json.loads(sample["source_data"])
    assert str(source_row["order_id"]) == sample["record_id"] and sample["error_message"]
    # Kept as written, keys in the source's column order (jsonb would sort them by length).
    assert list(source_row) == list(entities.get("orders").source.columns)

    # A second run changes nothing and reports the rows as skipped_existing.
    again = pipeline.run(_config(urls), "all")
    for first, second in zip(results, again, strict=True):
        assert second.counts["loaded"] == 0
        assert second.counts["skipped_existing"] == first.counts["loaded"]
        assert _target_rows(urls[1], first.entity)["etl_job_id"].unique().to_list() == [
            first.job_id
        ]


def test_duplicate_winner_does_not_depend_on_workers(tmp_path: Path) -> None:
    source = legacy_sqlite(tmp_path, ROWS, seed=11)
    outcomes = []
    for workers in (1, 3):
        target = DatabaseUrl.parse(f"sqlite://{tmp_path / f't{workers}.db'}", what="target")
        config = RunConfig(
            source=source, target=target, batch_size=97, workers=workers, as_of=AS_OF
        )
        [result] = pipeline.run(config, "customers")
        assert result.rejected_by_type["duplicate"] > 0
        with Target(target) as t:
            outcomes.append(t.query("SELECT legacy_id, email FROM customers ORDER BY legacy_id"))
    assert outcomes[0].equals(outcomes[1])
    assert set(outcomes[0]["legacy_id"]) == _expected_loaded(source, "customers")


def _engine_affinity() -> str | None:
    return pl.Config.state(if_set=True).get("POLARS_ENGINE_AFFINITY")


def test_a_run_validates_on_the_in_memory_engine_and_puts_the_setting_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = legacy_sqlite(tmp_path, 300, seed=5)
    target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
    seen: list[str | None] = []
    validate = pa.DataFrameSchema.validate

    def spy(self: pa.DataFrameSchema, *args: object, **kwargs: object) -> object:
        seen.append(_engine_affinity())
        return validate(self, *args, **kwargs)

    monkeypatch.setattr(pa.DataFrameSchema, "validate", spy)
    before = _engine_affinity()
    config = RunConfig(source=source, target=target, batch_size=100, workers=2, as_of=AS_OF)
    [result] = pipeline.run(config, "orders")
    assert result.status == "completed"
    assert seen and set(seen) == {"in-memory"}
    assert _engine_affinity() == before


def test_resume_after_failed_batch_gives_uninterrupted_result(tmp_path: Path) -> None:
    source = legacy_sqlite(tmp_path, ROWS, seed=5)
    clean = DatabaseUrl.parse(f"sqlite://{tmp_path / 'clean.db'}", what="target")
    broken = DatabaseUrl.parse(f"sqlite://{tmp_path / 'broken.db'}", what="target")
    kw = {"batch_size": 400, "max_retries": 1, "retry_backoff": 0.01, "as_of": AS_OF}
    [reference] = pipeline.run(RunConfig(source=source, target=clean, **kw), "orders")  # type: ignore[arg-type]

    # Make one batch in the middle fail for real, inside the target, on every attempt: its
    # ledger row refuses to be marked completed (a failing row would only be bisected out).
    with Target(broken) as t:
        t.apply_schema()
        t.execute(
            "CREATE TRIGGER boom BEFORE UPDATE ON migration_batches "
            "WHEN NEW.batch_number = 4 AND NEW.status = 'completed' "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
        t.commit()
    [failed] = pipeline.run(RunConfig(source=source, target=broken, **kw), "orders")  # type: ignore[arg-type]
    assert failed.status == "failed" and "batch 4 failed after 1 retries" in (failed.error or "")
    assert "injected failure" in (failed.error or ""), "the run's error says why"
    partial = _target_rows(broken, "orders").height
    assert 0 < partial < reference.counts["loaded"]

    with Target(broken) as t:
        t.execute("DROP TRIGGER boom")
        t.commit()
    [resumed] = pipeline.run(RunConfig(source=source, target=broken, **kw), "orders")  # type: ignore[arg-type]
    assert resumed.job_id == failed.job_id and resumed.status == "completed"
    assert resumed.counts == reference.counts
    assert (
        _target_rows(broken, "orders")["legacy_id"].to_list()
        == _target_rows(clean, "orders")["legacy_id"].to_list()
    )
    with Target(broken) as t:
        dupes = t.scalar(
            "SELECT COUNT(*) FROM (SELECT record_id FROM migration_errors "
            "GROUP BY migration_job_id, record_id HAVING COUNT(*) > 1) d"
        )
    assert int(dupes) == 0


def test_sparse_skewed_ids_give_full_batches(tmp_path: Path) -> None:
    url = DatabaseUrl.parse(f"sqlite://{tmp_path / 'sparse.db'}", what="source")
    ids = (
        list(range(1, 50))
        + [10_000_000 + i for i in range(0, 30, 3)]
        + [9_000_000_000, 9_000_000_001]
    )
    frame = pl.DataFrame({"order_id": ids}).with_columns(
        customer_id=pl.lit(1, pl.Int64),
        order_number=pl.lit(None, pl.String),
        order_total=pl.lit("1.00"),
        status=pl.lit("1"),
        order_date=pl.lit("2023-01-01"),
        order_items=pl.lit("P1:1:1.00"),
    )
    with Target(url) as t:
        t.apply_schema("legacy")
        t.ingest("orders", frame, append=True)
        t.commit()
    source = Source(url)
    plan = source.plan(entities.get("orders").source, 7)
    assert [b.records_count for b in plan[:-1]] == [7] * (len(plan) - 1)
    read = [source.read_batch(entities.get("orders").source, b).height for b in plan]
    assert read == [b.records_count for b in plan] and sum(read) == len(ids)


def _legacy_orders_with_ids(url: DatabaseUrl, ids: list[int | None]) -> None:
    frame = pl.DataFrame({"order_id": ids}).with_columns(
        customer_id=pl.lit(1, pl.Int64),
        order_number=pl.lit("N"),
        order_total=pl.int_range(pl.len()).cast(pl.String),  # one per row, for a unique key
        status=pl.lit("1"),
        order_date=pl.lit("2023-01-01"),
        order_items=pl.lit("P1:1:1.00"),
    )
    with Target(url) as t:
        t.execute("CREATE TABLE orders (order_id BIGINT, customer_id BIGINT, "
                  "order_number TEXT, order_total TEXT, status TEXT, order_date TEXT, "
                  "order_items TEXT)")  # fmt: skip
        t.ingest("orders", frame, append=True)
        t.commit()


@pytest.mark.parametrize("size", [1, 2, 3, 4, 100])
def test_plan_keeps_repeated_ids_in_one_batch_and_counts_each_batch_exactly(
    empty_url: DatabaseUrl, size: int
) -> None:
    """Ids need not be unique (no primary key in this legacy table): a batch takes every row
    of its last id, and each batch's count is what reading its range gives."""
    url = empty_url
    ids = [9, 1, 2, 2, 2, 3, 4, 4, 5, 6, 7, 7, 7, 7, 7, 8, 10, 11, 12, 40, 41]
    _legacy_orders_with_ids(url, ids)
    source, spec = Source(url), entities.get("orders").source
    plan = source.plan(spec, size)
    assert [b.batch_number for b in plan] == list(range(1, len(plan) + 1))
    assert plan[0].start_id == min(ids) and plan[-1].end_id == max(ids)
    # Contiguous ranges: a row added to the source later still falls in exactly one batch.
    assert all(a.end_id + 1 == b.start_id for a, b in itertools.pairwise(plan))
    read = [source.read_batch(spec, b) for b in plan]
    assert [frame.height for frame in read] == [b.records_count for b in plan]
    assert sorted(v for frame in read for v in frame["order_id"]) == sorted(ids)
    # Every batch but the last holds at least `size` rows, and more only to keep an id whole.
    for batch, frame in zip(plan[:-1], read[:-1], strict=True):
        assert batch.records_count >= size
        if batch.records_count > size:
            assert ids.count(frame["order_id"][-1]) > 1
    assert plan[-1].records_count <= size or ids.count(plan[-1].end_id) > 1


@pytest.mark.parametrize("page", [1, 2, 3, 1000])
def test_plan_is_the_same_with_and_without_an_index_on_the_id(
    empty_url: DatabaseUrl, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    """The database's plan query (index on the id) and the paged reading of id counts (none)."""
    monkeypatch.setattr(extract, "PLAN_ROWS", page)
    ids = [9, 1, 2, 2, 2, 3, 4, 4, 5, 6, 7, 7, 7, 7, 7, 8, 10, 11, 12, 40, 41, -5]
    _legacy_orders_with_ids(empty_url, ids)
    source, spec = Source(empty_url), entities.get("orders").source
    assert source._id_index(spec) == (False, False)
    without = {size: source.plan(spec, size) for size in (1, 2, 3, 4, 7, 100)}
    with Target(empty_url) as t:
        t.execute("CREATE INDEX legacy_orders_id ON orders (order_id)")
        t.commit()
    assert source._id_index(spec) == (True, False)
    for size, plan in without.items():
        assert source.plan(spec, size) == plan, size
        assert sum(b.records_count for b in plan) == len(ids)


UNIQUE_IDS = [9, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 40, 41, -5, 1000, 1001]
REPEATED_IDS = [9, 1, 2, 2, 2, 3, 4, 4, 5, 6, 7, 7, 7, 7, 7, 8, 10, 11, 12, 40, 41, -5]


@pytest.mark.parametrize(
    ("key", "ids", "unique"),
    [
        ("CREATE UNIQUE INDEX legacy_orders_id ON orders (order_id)", UNIQUE_IDS, True),
        ("ALTER TABLE orders ADD PRIMARY KEY (order_id)", UNIQUE_IDS, "postgresql"),
        ("CREATE INDEX legacy_orders_id ON orders (order_id)", UNIQUE_IDS, False),
        # Unique over two columns: the id itself repeats.
        ("CREATE UNIQUE INDEX legacy_orders_id ON orders (order_id, order_total)", [], False),
    ],
)
def test_plan_over_a_unique_id_counts_only_the_last_batch_and_gives_the_same_plan(
    empty_url: DatabaseUrl, key: str, ids: list[int], unique: bool | str
) -> None:
    """A unique index on the id alone lets the plan skip counting the full batches; the plan
    must still be the one counting everything gives, each count what reading the batch gives."""
    if unique == "postgresql":  # SQLite cannot add a primary key to an existing table
        if empty_url.dialect != "postgresql":
            return
        unique = True
    if not ids:
        ids = REPEATED_IDS
    _legacy_orders_with_ids(empty_url, ids)
    source, spec = Source(empty_url), entities.get("orders").source
    counted = {size: source.plan(spec, size) for size in (1, 2, 3, 4, 7, 17, 100)}
    with Target(empty_url) as t:
        t.execute(key)
        t.commit()
    assert source._id_index(spec) == (True, unique)
    for size, plan in counted.items():
        assert source.plan(spec, size) == plan, size
        read = [source.read_batch(spec, b).height for b in plan]
        assert read == [b.records_count for b in plan] and sum(read) == len(ids)


def test_plan_counts_every_batch_when_inheritance_children_share_the_table(pg_url: str) -> None:
    """PostgreSQL: a unique index on the parent does not cover a child table, whose rows the
    parent's queries read too; the ids then repeat across them."""
    url = DatabaseUrl.parse(pg_url, what="test")
    _legacy_orders_with_ids(url, UNIQUE_IDS)
    with Target(url) as t:
        t.execute("CREATE UNIQUE INDEX legacy_orders_id ON orders (order_id)")
        t.execute("CREATE TABLE more_orders () INHERITS (orders)")
        t.execute("INSERT INTO more_orders SELECT * FROM orders WHERE order_id < 8")
        t.commit()
    source, spec = Source(url), entities.get("orders").source
    assert source._id_index(spec) == (True, False)
    plan = source.plan(spec, 3)
    read = [source.read_batch(spec, b).height for b in plan]
    assert read == [b.records_count for b in plan] and sum(read) == len(UNIQUE_IDS) + 8


def test_plan_sees_the_rowid_and_primary_keys_as_indexes(tmp_path: Path) -> None:
    url = DatabaseUrl.parse(f"sqlite://{tmp_path / 'keys.db'}", what="source")
    write_legacy(url, 50, seed=1)  # order_id INTEGER PRIMARY KEY: the rowid
    assert Source(url).plan(entities.get("orders").source, 7)  # planned by the query
    assert Source(url)._id_index(entities.get("orders").source) == (True, True)


def test_plan_of_an_empty_table_is_empty(empty_url: DatabaseUrl) -> None:
    _legacy_orders_with_ids(empty_url, [])
    assert Source(empty_url).plan(entities.get("orders").source, 3) == []


def test_plan_refuses_rows_without_an_id_instead_of_losing_them(empty_url: DatabaseUrl) -> None:
    url = empty_url
    _legacy_orders_with_ids(url, [None, *range(1, 11), None])  # SQLite sorts NULL first
    with pytest.raises(SourceError, match="2 rows of source table 'orders' have no 'order_id'"):
        Source(url).plan(entities.get("orders").source, 3)


def test_cli_bad_input_is_one_line_and_never_shows_passwords(tmp_path: Path, pg_server) -> None:
    unknown = etl("run", "--entity", "invoices", "--source", "sqlite:///x.db")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    assert "valid entities: customers, products, orders" in unknown.stderr
    malformed = etl("run", "--entity", "orders", "--source", "mssql://u:hunter2@h/db")
    assert malformed.returncode == 2 and "hunter2" not in malformed.stderr + malformed.stdout
    missing = etl(
        "run",
        "--entity",
        "orders",
        "--source",
        f"sqlite://{tmp_path / 'nope.db'}",
        "--target",
        f"sqlite://{tmp_path / 't.db'}",
    )
    assert missing.returncode != 0 and "not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    wrong = pg_server.url("postgres", password="wrong-Secret-9")
    denied = etl(
        "run",
        "--entity",
        "orders",
        "--source",
        f"sqlite://{tmp_path / 'nope.db'}",
        env={"DATABASE_URL": wrong},
    )
    assert denied.returncode != 0 and "wrong-Secret-9" not in denied.stderr + denied.stdout
    assert "Traceback" not in denied.stderr
    zero = etl("run", "--entity", "orders", "--source", "sqlite:///x.db", "--batch-size", "0")
    assert zero.returncode == 2 and "batch-size must be a positive integer" in zero.stderr


def test_on_conflict_update_overwrites_earlier_rows(urls: tuple[DatabaseUrl, DatabaseUrl]) -> None:
    source, target = urls
    [first] = pipeline.run(_config(urls), "customers")
    before = _target_rows(target, "customers")
    victim = before["legacy_id"][0]
    with Target(source) as legacy:
        legacy.execute(
            "UPDATE customers SET customer_name = ? WHERE customer_id = ?",
            ("Renamed Person", int(victim)),
        )
        legacy.commit()

    [skipping] = pipeline.run(_config(urls), "customers")
    assert skipping.counts["skipped_existing"] == first.counts["loaded"]
    assert skipping.counts["updated"] == 0

    [updating] = pipeline.run(_config(urls, on_conflict="update"), "customers")
    assert updating.status == "completed" and updating.conserved
    assert updating.counts["loaded"] == updating.counts["updated"] == first.counts["loaded"]
    assert updating.counts["skipped_existing"] == 0
    with Target(target) as t:
        names = t.query("SELECT legacy_id, name, etl_job_id FROM customers ORDER BY legacy_id")
    # Rows keep the job that inserted them; the new value is there; nothing was added.
    assert names.select("legacy_id", "etl_job_id").equals(before)
    assert names.filter(pl.col("legacy_id") == victim)["name"].to_list() == ["Renamed Person"]


def test_rows_the_database_refuses_are_bisected_out(urls: tuple[DatabaseUrl, DatabaseUrl]) -> None:
    source, target = urls
    with Target(target) as t:
        t.apply_schema()
        if t.dialect == "postgresql":
            t.execute("ALTER TABLE orders ADD CONSTRAINT no_sevens CHECK (legacy_id NOT LIKE '%7')")
        else:
            t.execute(
                "CREATE TRIGGER no_sevens BEFORE INSERT ON orders WHEN NEW.legacy_id LIKE '%7' "
                "BEGIN SELECT RAISE(ABORT, 'no_sevens'); END"
            )
        t.commit()
    [result] = pipeline.run(_config(urls), "orders")
    assert result.status == "completed" and result.conserved
    expected = _expected_loaded(source, "orders")
    refused = {i for i in expected if i.endswith("7")}
    assert refused and result.rejected_by_type["database_error"] == len(refused)
    assert set(_target_rows(target, "orders")["legacy_id"]) == expected - refused
    assert result.counts["loaded"] == len(expected - refused)
    with Target(target) as t:
        errors = t.query(
            "SELECT record_id, error_message FROM migration_errors "
            "WHERE error_type = 'database_error'"
        )
    assert set(errors["record_id"]) == refused
    assert errors["error_message"].str.contains("no_sevens").all()


@pytest.mark.parametrize("batch_size", [1, 100])
def test_each_copy_of_a_repeated_source_id_is_one_row_somewhere(
    tmp_path: Path, empty_url: DatabaseUrl, batch_size: int
) -> None:
    """A legacy table without a primary key may repeat an id: the first copy loads, every
    later copy is one duplicate reject carrying its own source row (not every copy's)."""
    source = DatabaseUrl.parse(f"sqlite://{tmp_path / 'legacy.db'}", what="source")
    _legacy_orders_with_ids(source, [1, 2, 2, 5, 5, 5, 5, 7])  # order_total: the row's position
    config = RunConfig(source=source, target=empty_url, batch_size=batch_size, as_of=AS_OF)
    [result] = pipeline.run(config, "orders")
    assert result.counts["extracted"] == 8 and result.conserved
    assert (result.counts["loaded"], result.counts["rejected"]) == (4, 4)
    with Target(empty_url) as t:
        loaded = t.query("SELECT legacy_id, total FROM orders ORDER BY legacy_id")
        rejects = t.query(
            "SELECT record_id, error_type, CAST(source_data AS TEXT) AS source_data "
            "FROM migration_errors ORDER BY id"
        )
    # The first copy of each id wins: its total is its position in the source.
    assert loaded.rows() == [("1", 0.0), ("2", 1.0), ("5", 3.0), ("7", 7.0)]
    assert rejects["error_type"].unique().to_list() == ["duplicate"]
    lost = sorted(
        (row["record_id"], json.loads(row["source_data"])["order_total"])
        for row in rejects.iter_rows(named=True)
    )
    assert lost == [("2", "2"), ("5", "4"), ("5", "5"), ("5", "6")]


def test_a_batch_whose_counts_do_not_add_up_is_not_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = legacy_sqlite(tmp_path, 200, seed=3)
    target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
    real = batch_runner.split

    def miscounted(*args: object) -> object:
        result = real(*args)  # type: ignore[arg-type]
        return result._replace(filtered=result.filtered + 1)

    monkeypatch.setattr(batch_runner, "split", miscounted)
    config = RunConfig(source=source, target=target, max_retries=1, retry_backoff=0.01)
    [result] = pipeline.run(config, "customers")
    assert result.status == "failed" and result.counts["extracted"] == 0
    with Target(target) as t:
        assert t.scalar("SELECT COUNT(*) FROM customers") == 0
        assert t.scalar("SELECT COUNT(*) FROM migration_errors") == 0
        error = t.scalar("SELECT error_details FROM migration_batches")
    assert "rows extracted but" in error and "nothing of it was committed" in error


def _sqlite_pair(tmp_path: Path, rows: int = 300) -> tuple[DatabaseUrl, DatabaseUrl]:
    source = legacy_sqlite(tmp_path, rows, seed=4)
    return source, DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")


def _customers(source: DatabaseUrl) -> int:
    return Source(source).count(entities.get("customers").source)


def test_a_run_stopped_while_planning_leaves_no_job_and_the_next_run_loads_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = _sqlite_pair(tmp_path)
    config = RunConfig(source=source, target=target, batch_size=50, as_of=AS_OF)

    def stopped(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Source, "plan", stopped)
        with pytest.raises(InterruptedRunError):
            pipeline.run(config, "customers")
    with Target(target) as t:
        assert t.scalar("SELECT COUNT(*) FROM migration_jobs") == 0
    [result] = pipeline.run(config, "customers")
    assert result.status == "completed" and result.counts["extracted"] == _customers(source) > 0


def test_a_job_left_without_its_plan_is_planned_when_resumed(tmp_path: Path) -> None:
    """A ledger written by an older version can hold a job whose plan never got written."""
    source, target = _sqlite_pair(tmp_path)
    with Target(target) as t:
        t.apply_schema()
        entity = entities.get("customers")
        job_id = ledger.create_job(t, entity.name, entity.target_table, {})
    config = RunConfig(source=source, target=target, batch_size=50, as_of=AS_OF)
    [result] = pipeline.run(config, "customers")
    assert result.job_id == job_id and result.status == "completed"
    assert result.counts["extracted"] == _customers(source) > 0 and result.conserved


def test_an_error_that_stops_a_run_closes_its_job_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = _sqlite_pair(tmp_path)

    def broken(*args: object, **kwargs: object) -> object:
        raise SourceError("the source went away")

    monkeypatch.setattr(pipeline, "_run_batches", broken)
    with pytest.raises(SourceError):
        pipeline.run(RunConfig(source=source, target=target, as_of=AS_OF), "customers")
    with Target(target) as t:
        job = t.query("SELECT status, error_message FROM migration_jobs").row(0)
    assert job[0] == "failed" and "the source went away" in job[1]


def test_a_rerun_gives_the_same_outcome_for_every_batch_size(tmp_path: Path) -> None:
    """Skipped means the record itself is there: a customer whose email another customer
    holds is a duplicate in the rerun too, whether the two share a batch or not."""
    source = legacy_sqlite(tmp_path, 3000, seed=11)
    reruns = {}
    for batch_size in (7, 100_000):
        target = DatabaseUrl.parse(f"sqlite://{tmp_path / f't{batch_size}.db'}", what="target")
        config = RunConfig(source=source, target=target, batch_size=batch_size, as_of=AS_OF)
        [first] = pipeline.run(config, "customers")
        [second] = pipeline.run(config, "customers")
        assert first.rejected_by_type["duplicate"] > 0 and second.conserved
        assert second.counts["skipped_existing"] == first.counts["loaded"]
        assert second.rejected_by_type == first.rejected_by_type
        reruns[batch_size] = (second.counts, second.rejected_by_type)
    assert reruns[7] == reruns[100_000]


def test_status_counts_an_unfinished_job_by_its_committed_batches(tmp_path: Path) -> None:
    source, target = _sqlite_pair(tmp_path)
    config = RunConfig(source=source, target=target, batch_size=20, as_of=AS_OF)
    [result] = pipeline.run(config, "customers")
    with Target(target) as t:
        # What a killed run leaves: batches committed, the job row never closed.
        t.execute(
            "UPDATE migration_jobs SET status = 'in_progress', "
            + ", ".join(f"{name} = 0" for name in ledger.COUNTS)
        )
        t.execute("UPDATE migration_batches SET status = 'pending' WHERE batch_number = 1")
        first = t.query("SELECT extracted FROM migration_batches WHERE batch_number = 1").item()
        t.commit()
        [row] = ledger.jobs_overview(t).to_dicts()
    assert row["status"] == "in_progress" and row["batches_pending"] == 1
    assert row["extracted"] == result.counts["extracted"] - first > 0
    assert row["loaded"] > 0 and row["rejected"] + row["filtered"] > 0


def test_a_fresh_run_closes_the_unfinished_job_it_leaves_behind(tmp_path: Path) -> None:
    source, target = _sqlite_pair(tmp_path)
    config = RunConfig(source=source, target=target, batch_size=20, as_of=AS_OF)
    [old] = pipeline.run(config, "customers")
    with Target(target) as t:  # as a killed run leaves it
        t.execute("UPDATE migration_jobs SET status = 'in_progress', loaded = 0")
        t.execute("UPDATE migration_batches SET status = 'pending' WHERE batch_number = 3")
        t.commit()
        kept = ledger.job_counts(t, old.job_id)
    [new] = pipeline.run(dataclasses.replace(config, fresh=True), "customers")
    assert new.job_id != old.job_id and new.status == "completed"
    with Target(target) as t:
        row = t.query(
            "SELECT status, error_message, loaded FROM migration_jobs WHERE id = ?", (old.job_id,)
        ).row(0)
    assert row == ("failed", f"superseded by job {new.job_id} (--fresh)", kept["loaded"])


def test_a_fresh_run_supersedes_atomically_and_leaves_a_closed_failure_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = _sqlite_pair(tmp_path)
    config = RunConfig(source=source, target=target, batch_size=20, as_of=AS_OF)
    [old] = pipeline.run(config, "customers")
    with Target(target) as t:  # as a killed run leaves it
        t.execute("UPDATE migration_jobs SET status = 'in_progress'")
        t.commit()
    fresh = dataclasses.replace(config, fresh=True)

    def broken(*args: object) -> None:
        raise SourceError("the plan could not be written")

    with monkeypatch.context() as patch:  # the new job's plan fails: nothing of it is kept
        patch.setattr(ledger, "add_batches", broken)
        with pytest.raises(SourceError):
            pipeline.run(fresh, "customers")
    with Target(target) as t:
        assert t.query("SELECT id, status FROM migration_jobs").rows() == [
            (old.job_id, "in_progress")
        ]
        # A job that failed on its own keeps its own error when a fresh run leaves it behind.
        t.execute("UPDATE migration_jobs SET status = 'failed', error_message = 'batch 3 died'")
        t.commit()
    pipeline.run(fresh, "customers")
    with Target(target) as t:
        status = t.query("SELECT status, error_message FROM migration_jobs WHERE id = ?",
                         (old.job_id,)).row(0)  # fmt: skip
    assert status == ("failed", "batch 3 died")
