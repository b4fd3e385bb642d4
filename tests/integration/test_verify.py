"""Linking, ``etl verify``, ``etl rollback`` and the run summary, on real SQLite and PostgreSQL.

Every expected figure is computed here, independently of the code under test: from the legacy
rows through the row-wise oracle (tests/oracle.py), and from plain SQL on the target.
"""

from __future__ import annotations

import dataclasses
import json
import signal
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from columnar_etl import entities, pipeline
from columnar_etl.config import DatabaseUrl, RunConfig
from columnar_etl.errors import RollbackRefusedError
from columnar_etl.extract import Source
from columnar_etl.rollback import rollback_job
from columnar_etl.target import Target
from tests import oracle
from tests.helpers import etl, legacy_sqlite, start_and_stop

AS_OF = datetime(2026, 1, 1)
ROWS = 3_000
JUDGE = {"customers": oracle.customer, "products": oracle.product, "orders": oracle.order}


def _config(urls: tuple[DatabaseUrl, DatabaseUrl]) -> RunConfig:
    source, target = urls
    return RunConfig(
        source=source, target=target, batch_size=700, max_retries=0, retry_backoff=0.01, as_of=AS_OF
    )


def _verify(target: DatabaseUrl, *args: str) -> tuple[int, dict[str, Any]]:
    done = etl("verify", "--json", "--target", target.url, *args)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def _checks(report: dict[str, Any], name: str) -> dict[Any, dict[str, Any]]:
    """Checks called ``name``, by job id (or entity for table checks)."""
    return {
        c["job_id"] if c["job_id"] is not None else c["entity"]: c
        for c in report["checks"]
        if c["name"] == name
    }


# -- the independent expectation ------------------------------------------------------------
@dataclass
class Expected:
    """What the oracle says one entity's migration does to the legacy table."""

    source_ids: set[str] = field(default_factory=set)
    loaded: dict[str, dict[str, Any]] = field(default_factory=dict)  # legacy_id -> row
    rejected: dict[str, str] = field(default_factory=dict)  # legacy_id -> error_type
    filtered: int = 0

    @property
    def by_type(self) -> dict[str, int]:
        return dict(sorted(Counter(self.rejected.values()).items()))


def _expected(source: DatabaseUrl, name: str) -> Expected:
    entity = entities.get(name)
    frame = Source(source).read(f"SELECT * FROM {entity.source.table}")
    frame = frame.cast(dict(entity.source.schema), strict=False).sort(entity.source.id_column)  # type: ignore[arg-type]
    seen: dict[str, set[object]] = {key: set() for key in entity.unique_keys}
    result = Expected()
    for record in frame.to_dicts():
        legacy_id = str(record[entity.source.id_column])
        result.source_ids.add(legacy_id)
        outcome = JUDGE[name](record, AS_OF)
        if outcome.kind == "filtered":
            result.filtered += 1
        elif outcome.kind != "valid":
            result.rejected[legacy_id] = outcome.kind
        elif any(outcome.row[key] in seen[key] for key in entity.unique_keys):  # type: ignore[index]
            result.rejected[legacy_id] = "duplicate"
        else:
            row = outcome.row or {}
            for key in entity.unique_keys:
                seen[key].add(row[key])
            result.loaded[legacy_id] = row
    return result


def _expected_orphans(customers: Expected, orders: Expected) -> dict[str, Any]:
    orphans: list[str] = []
    reasons = Counter()
    for legacy_id, row in orders.loaded.items():
        customer = row["customer_legacy_id"]
        if customer in customers.loaded:
            continue
        orphans.append(legacy_id)
        if customer in customers.rejected:
            reasons["referenced_rejected"] += 1
        elif customer not in customers.source_ids:
            reasons["referenced_not_in_source"] += 1
        else:
            reasons["referenced_not_loaded"] += 1
    return {
        "reference": "orders.customer_legacy_id -> customers.legacy_id",
        "rows": len(orders.loaded),
        "linked": len(orders.loaded) - len(orphans),
        "orphans": len(orphans),
        "unlinked": 0,
        "mislinked": 0,
        "orphans_by_reason": {
            "referenced_rejected": reasons["referenced_rejected"],
            "referenced_not_in_source": reasons["referenced_not_in_source"],
            "referenced_not_loaded": reasons["referenced_not_loaded"],
        },
        "orphan_legacy_ids": sorted(orphans, key=int),
    }


def _one(target: DatabaseUrl, sql: str, params: tuple[Any, ...] = ()) -> int:
    with Target(target) as t:
        return int(t.scalar(sql, params))


# -- tests ----------------------------------------------------------------------------------
def test_run_all_links_and_every_verify_figure_is_the_independent_count(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    source, target = urls
    results = pipeline.run(_config(urls), "all")
    assert [r.status for r in results] == ["completed"] * 3
    expected = {name: _expected(source, name) for name in entities.names()}
    orphans = _expected_orphans(expected["customers"], expected["orders"])
    assert orphans["orphans"] > 0 and orphans["linked"] > 0
    assert all(orphans["orphans_by_reason"].values()), orphans["orphans_by_reason"]

    # Linking: counts, and each order points at the customer with its legacy id.
    assert results.links is not None
    [link] = results.links
    assert (link.rows, link.linked, link.orphans) == (
        orphans["rows"],
        orphans["linked"],
        orphans["orphans"],
    )
    assert link.updated == orphans["linked"]
    wrong = _one(
        target,
        "SELECT COUNT(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id "
        "WHERE (o.customer_id IS NULL) <> (c.id IS NULL) "
        "OR (c.id IS NOT NULL AND c.legacy_id <> o.customer_legacy_id)",
    )
    assert wrong == 0
    # Linking again changes nothing.
    again = etl("link", "--json", "--target", target.url)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == [
        {
            "reference": orphans["reference"],
            "sets": "orders.customer_id",
            "rows": orphans["rows"],
            "linked": orphans["linked"],
            "orphans": orphans["orphans"],
            "updated": 0,
        }
    ]

    code, report = _verify(target, "--source", source.url)
    assert code == 0, report["failed"]
    assert report["status"] == "passed" and report["not_checked"] == []
    password = urlsplit(source.url).password
    assert not password or password not in json.dumps(report)
    jobs = {r.entity: r.job_id for r in results}
    integrity = _checks(report, "integrity")
    conservation = _checks(report, "conservation")
    source_rows = _checks(report, "source_rows")
    row_count = _checks(report, "row_count")
    duplicates = _checks(report, "duplicate_keys")
    for name, job_id in jobs.items():
        e = expected[name]
        loaded, extracted = len(e.loaded), len(e.source_ids)
        assert _one(target, f"SELECT COUNT(*) FROM {name} WHERE etl_job_id = ?", (job_id,)) == (
            loaded
        )
        assert integrity[job_id]["figures"] == {
            "migration_job_id": job_id,
            "entity": name,
            "job_status": "completed",
            "expected_records": loaded,
            "actual_records": loaded,
            "missing_records": 0,
            "extra_records": 0,
            "duplicate_legacy_ids": 0,
            "error_summary": e.by_type,
            "integrity_score": 100.0,
            "status": "passed",
        }
        assert row_count[job_id]["figures"]["missing_records"] == 0
        figures = conservation[job_id]["figures"]
        assert {k: figures[k] for k in ("extracted", "loaded", "rejected", "filtered")} == {
            "extracted": extracted,
            "loaded": loaded,
            "rejected": len(e.rejected),
            "filtered": e.filtered,
        }
        assert figures["skipped_existing"] == 0
        assert figures["rejects_recorded"] == len(e.rejected)
        assert figures["rejects_outside_the_jobs_batches"] == 0
        assert figures["loaded_rejected_filtered_skipped"] == extracted
        assert source_rows[job_id]["passed"] is True
        assert source_rows[job_id]["figures"]["source_rows"] == extracted
        assert source_rows[job_id]["figures"]["extracted"] == extracted
        assert "no source-side WHERE" in source_rows[job_id]["figures"]["scope"]
        keys = entities.get(name).unique_keys
        figures = duplicates[name]["figures"]
        assert {k: figures[k] for k in keys} == dict.fromkeys(keys, 0)
        present = _checks(report, "rows_present")[job_id]
        assert present["passed"] is True
        assert present["figures"]["table_rows"] == _one(target, f"SELECT COUNT(*) FROM {name}")
        assert present["figures"]["placed"] == loaded
        # Every key has its unique index here: the database rules duplicates out.
        assert set(figures["enforced_by_unique_index"]) == set(keys)
    assert _checks(report, "orphans")["orders"]["figures"] == orphans

    # Without a source the source check is "not checked", not passed; the rest still runs.
    code, report = _verify(target)
    assert code == 0 and report["status"] == "incomplete" and report["source"] is None
    assert {c["status"] for c in _checks(report, "source_rows").values()} == {"not_checked"}
    by_reason = _checks(report, "orphans")["orders"]["figures"]["orphans_by_reason"]
    assert by_reason == {
        "referenced_rejected": orphans["orphans_by_reason"]["referenced_rejected"],
        "referenced_not_in_source": None,
        "referenced_not_loaded": None,
    }

    # --job and --entity narrow the report.
    code, report = _verify(target, "--job", str(jobs["products"]))
    assert code == 0
    names = ("integrity", "row_count", "conservation", "source_rows", "rows_present")
    assert {(c["entity"], c["name"]) for c in report["checks"]} == {
        ("products", name) for name in (*names, "duplicate_keys", "foreign_rows")
    }
    code, report = _verify(target, "--entity", "orders")
    assert code == 0 and {c["entity"] for c in report["checks"]} == {"orders"}
    assert "orphans" in {c["name"] for c in report["checks"]}


def test_verify_fails_on_changes_behind_the_tools_back(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    source, target = urls
    results = pipeline.run(_config(urls), "all")
    jobs = {r.entity: r.job_id for r in results}
    loaded = {r.entity: r.counts["loaded"] for r in results}
    code, _ = _verify(target, "--source", source.url)
    assert code == 0

    # One order deleted: the reference's rule still passes (>= 95%), the exact count does not.
    with Target(target) as t:
        victim = t.scalar("SELECT MIN(legacy_id) FROM orders")
        t.execute("DELETE FROM orders WHERE legacy_id = ?", (victim,))
        t.commit()
    code, report = _verify(target, "--source", source.url)
    assert code == 1 and report["status"] == "failed"
    integrity = _checks(report, "integrity")[jobs["orders"]]
    assert integrity["passed"] is True
    assert integrity["figures"]["missing_records"] == 1
    assert (
        integrity["figures"]["integrity_score"] == (loaded["orders"] - 1) / loaded["orders"] * 100
    )
    row_count = _checks(report, "row_count")[jobs["orders"]]
    assert row_count["passed"] is False and row_count["figures"]["missing_records"] == 1
    # The rows the job placed are not all there any more either.
    assert report["failed"] == [
        f"row_count (job {jobs['orders']})",
        f"rows_present (job {jobs['orders']})",
    ]
    assert _checks(report, "rows_present")[jobs["orders"]]["figures"]["missing_at_least"] == 1
    human = etl("verify", "--target", target.url)
    assert human.returncode == 1 and "failed" in human.stdout and "row_count" in human.stdout

    # A duplicate legacy id after dropping the unique index; a wrong link.
    with Target(target) as t:
        t.execute("DROP INDEX idx_customers_legacy_id")
        t.execute(
            "INSERT INTO customers (legacy_id, name, email, phone, address, status, created_at, "
            "updated_at, etl_job_id) SELECT legacy_id, name, 'copy-' || email, phone, address, "
            "status, created_at, updated_at, etl_job_id FROM customers WHERE id = "
            "(SELECT MIN(id) FROM customers)"
        )
        t.execute(
            "UPDATE orders SET customer_id = (SELECT MAX(id) FROM customers) WHERE id = "
            "(SELECT MIN(id) FROM orders WHERE customer_id IS NOT NULL "
            "AND customer_id <> (SELECT MAX(id) FROM customers))"
        )
        t.commit()
    code, report = _verify(target)
    assert code == 1
    customers = _checks(report, "integrity")[jobs["customers"]]
    assert customers["passed"] is False
    assert customers["figures"]["duplicate_legacy_ids"] == 1
    assert customers["figures"]["extra_records"] == 1
    # Without its index legacy_id is counted by a scan; email still has its index.
    assert _checks(report, "duplicate_keys")["customers"]["figures"] == {
        "legacy_id": 1,
        "email": 0,
        "enforced_by_unique_index": {"email": "idx_customers_email"},
    }
    assert _checks(report, "duplicate_keys")["customers"]["passed"] is False
    orphans = _checks(report, "orphans")["orders"]
    assert orphans["passed"] is False and orphans["figures"]["mislinked"] == 1

    # A ledger that does not add up fails conservation.
    with Target(target) as t:
        t.execute(
            "UPDATE migration_batches SET loaded = loaded + 1 WHERE id = "
            "(SELECT MIN(id) FROM migration_batches WHERE migration_job_id = ?)",
            (jobs["products"],),
        )
        t.commit()
    code, report = _verify(target, "--job", str(jobs["products"]))
    assert code == 1
    conservation = _checks(report, "conservation")[jobs["products"]]
    assert conservation["passed"] is False
    assert conservation["figures"]["job_row_matches_batches"] is False

    # A reject moved onto another job's batch: each job's count still adds up, but the
    # reject no longer names a batch of its job (the ledger has no foreign key to stop it).
    with Target(target) as t:
        t.execute(
            "UPDATE migration_errors SET batch_id = (SELECT MIN(id) FROM migration_batches "
            "WHERE migration_job_id = ?) WHERE id = (SELECT MIN(id) FROM migration_errors "
            "WHERE migration_job_id = ?)",
            (jobs["products"], jobs["customers"]),
        )
        t.commit()
    code, report = _verify(target, "--job", str(jobs["customers"]))
    assert code == 1
    conservation = _checks(report, "conservation")[jobs["customers"]]
    assert conservation["passed"] is False
    assert conservation["figures"]["rejects_outside_the_jobs_batches"] == 1
    assert conservation["figures"]["rejects_recorded"] == conservation["figures"]["rejected"]


def test_rollback_refuses_then_forces_and_a_rerun_restores(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    source, target = urls
    results = pipeline.run(_config(urls), "all")
    jobs = {r.entity: r.job_id for r in results}
    assert results.links is not None
    linked = results.links[0].linked
    rejects = _one(
        target,
        "SELECT COUNT(*) FROM migration_errors WHERE migration_job_id = ?",
        (jobs["customers"],),
    )
    customers_before = _one(target, "SELECT COUNT(*) FROM customers")

    # Orders point at the job's customers: refused, naming them; nothing changed.
    with Target(target) as t, pytest.raises(RollbackRefusedError) as refused:
        rollback_job(t, jobs["customers"])
    assert refused.value.blocking == {jobs["orders"]: linked}
    refusal = etl("rollback", "--job", str(jobs["customers"]), "--target", target.url)
    assert refusal.returncode == 1
    assert f"{linked} loaded orders" in refusal.stderr
    assert f"orders job {jobs['orders']}: {linked}" in refusal.stderr
    assert "--force" in refusal.stderr and len(refusal.stderr.strip().splitlines()) == 1
    assert _one(target, "SELECT COUNT(*) FROM customers") == customers_before
    assert _one(target, "SELECT COUNT(customer_id) FROM orders") == linked

    # --force unlinks them, deletes the rows, marks the job; rejects stay.
    forced = etl("rollback", "--job", str(jobs["customers"]), "--force", "--target", target.url)
    assert forced.returncode == 0, forced.stderr
    assert f"deleted {customers_before} rows from customers" in forced.stdout
    assert f"unlinked {linked} orders" in forced.stdout
    assert _one(target, "SELECT COUNT(*) FROM customers") == 0
    assert _one(target, "SELECT COUNT(customer_id) FROM orders") == 0
    assert (
        _one(
            target,
            "SELECT COUNT(*) FROM migration_errors WHERE migration_job_id = ?",
            (jobs["customers"],),
        )
        == rejects
    )
    with Target(target) as t:
        status = t.scalar("SELECT status FROM migration_jobs WHERE id = ?", (jobs["customers"],))
    assert status == "rolled_back"
    again = etl("rollback", "--job", str(jobs["customers"]), "--target", target.url)
    assert again.returncode == 1 and "already rolled back" in again.stderr

    code, report = _verify(target, "--source", source.url)
    assert code == 0, report["failed"]
    rolled = _checks(report, "integrity")[jobs["customers"]]["figures"]
    assert (rolled["expected_records"], rolled["actual_records"]) == (0, 0)
    assert rolled["job_status"] == "rolled_back"
    assert jobs["customers"] not in _checks(report, "source_rows")
    orphans = _checks(report, "orphans")["orders"]["figures"]
    assert orphans["orphans"] == orphans["rows"] == results[2].counts["loaded"]

    # Orders roll back without --force; then a rerun loads both again and relinks.
    orders = etl("rollback", "--job", str(jobs["orders"]), "--target", target.url)
    assert orders.returncode == 0, orders.stderr
    assert _one(target, "SELECT COUNT(*) FROM orders") == 0
    rerun = pipeline.run(_config(urls), "all")
    assert [r.counts["loaded"] for r in rerun] == [
        results[0].counts["loaded"],
        0,
        results[2].counts["loaded"],
    ]
    assert rerun.links is not None and rerun.links[0].linked == linked
    assert all(i.status == "passed" for i in rerun.integrity.values())
    code, report = _verify(target, "--source", source.url)
    assert code == 0, report["failed"]


def test_run_prints_the_migration_summary(tmp_path: Path) -> None:
    source = legacy_sqlite(tmp_path, 1_000, seed=3)
    target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
    done = etl("run", "--entity", "all", "--source", source.url, "--target", target.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "MIGRATION SUMMARY"
    with Target(target) as t:
        jobs = t.query(
            "SELECT id, entity, loaded, rejected, filtered, skipped_existing, extracted "
            "FROM migration_jobs ORDER BY id"
        ).to_dicts()
        linked = int(t.scalar("SELECT COUNT(customer_id) FROM orders"))
        orders = int(t.scalar("SELECT COUNT(*) FROM orders"))
    for job in jobs:
        head = [job["entity"], str(job["id"])]
        [row] = [line.split() for line in lines if line.split()[:2] == head]
        assert row[:5] == [
            job["entity"],
            str(job["id"]),
            "completed",
            str(job["loaded"]),
            str(job["rejected"]),
        ]
        assert row[-3:] == [
            str(job["filtered"]),
            str(job["skipped_existing"]),
            str(job["extracted"]),
        ]
    assert (
        "Relationships: orders.customer_legacy_id -> customers.legacy_id: "
        f"linked {linked} of {orders} rows ({linked} changed); {orders - linked} orphans"
        in done.stdout
    )
    for job in jobs:
        assert f"  {job['entity']} (job {job['id']}): passed (Score: 100.0%)" in lines
    # verify takes run's word for every entity, with the same report as without it.
    code, everything = _verify(target, "--source", source.url)
    assert (code, everything) == _verify(target, "--source", source.url, "--entity", "all")
    assert code == 0 and everything["status"] == "passed", everything


def test_rows_a_later_job_found_present_must_still_be_there(tmp_path: Path) -> None:
    """A rerun counts the rows as already present; rolling back the job that loaded them
    leaves the rerun's count standing over an empty table: verify says so."""
    source = legacy_sqlite(tmp_path, 300, seed=5)
    target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
    config = RunConfig(source=source, target=target, as_of=AS_OF)
    [first] = pipeline.run(config, "products")
    [second] = pipeline.run(config, "products")
    assert second.counts["skipped_existing"] == first.counts["loaded"] > 0
    code, report = _verify(target, "--source", source.url)
    assert code == 0, report["failed"]
    # Only the latest completed job answers for the source's rows and the table's.
    assert _checks(report, "source_rows")[first.job_id]["passed"] is None
    assert "read the source table later" in _checks(report, "source_rows")[first.job_id]["reason"]
    assert set(_checks(report, "rows_present")) == {second.job_id}

    with Target(target) as t:
        # Refused unless forced: the later job counts the rows as present.
        with pytest.raises(RollbackRefusedError, match=f"job {second.job_id}: "):
            rollback_job(t, first.job_id)
        assert t.scalar("SELECT COUNT(*) FROM products") == first.counts["loaded"]
    with Target(target) as t:
        rollback_job(t, first.job_id, force=True)
    code, report = _verify(target, "--source", source.url)
    assert code == 1 and report["failed"] == [f"rows_present (job {second.job_id})"]
    figures = _checks(report, "rows_present")[second.job_id]["figures"]
    assert figures["table_rows"] == 0
    assert figures["missing_at_least"] == first.counts["loaded"]


def test_rollback_refuses_a_job_whose_rows_a_later_job_updated(tmp_path: Path) -> None:
    source = legacy_sqlite(tmp_path, 300, seed=5)
    target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
    config = RunConfig(source=source, target=target, as_of=AS_OF)
    [first] = pipeline.run(config, "products")
    [second] = pipeline.run(dataclasses.replace(config, on_conflict="update"), "products")
    assert second.counts["updated"] == first.counts["loaded"] > 0
    with Target(target) as t, pytest.raises(RollbackRefusedError, match="or updated rows"):
        rollback_job(t, first.job_id)
    with Target(target) as t:
        assert t.scalar("SELECT COUNT(*) FROM products") == first.counts["loaded"]


# -- the source's ids per batch range -------------------------------------------------------
_COPY_ORDER = (
    "INSERT INTO orders (order_id, customer_id, order_number, order_total, status, order_date, "
    "order_items) SELECT ?, customer_id, order_number, order_total, status, order_date, "
    "order_items FROM orders WHERE order_id = ?"
)


def _replace_order(source: DatabaseUrl, gone: int, new: int) -> None:
    """In one transaction of the source: order ``new`` added (a copy of ``gone``), ``gone``
    deleted. The table keeps its row count."""
    with Target(source, create=False) as t:
        t.execute(_COPY_ORDER, (new, gone))
        t.execute("DELETE FROM orders WHERE order_id = ?", (gone,))
        t.commit()


def _batch(target: DatabaseUrl, job_id: int, number: int) -> dict[str, int]:
    """A batch's range and rows extracted, as the ledger holds them."""
    with Target(target) as t:
        row = t.query(
            "SELECT start_id, end_id, extracted FROM migration_batches "
            "WHERE migration_job_id = ? AND batch_number = ?",
            (job_id, number),
        ).row(0, named=True)
    return {k: int(v) for k, v in row.items()}


def _changed(target: DatabaseUrl, job_id: int, number: int, rows_now: int) -> dict[str, int]:
    """The entry verify is expected to give for batch ``number``, now holding ``rows_now``."""
    batch = _batch(target, job_id, number)
    return {
        "batch_number": number,
        "start_id": batch["start_id"],
        "end_id": batch["end_id"],
        "rows_then": batch["extracted"],
        "rows_now": rows_now,
    }


def _source_check(report: dict[str, Any], job_id: int) -> dict[str, Any]:
    return _checks(report, "source_rows")[job_id]


def test_verify_finds_source_ids_that_changed_behind_equal_counts(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    """The counts of the source and of the job agree after each change below; only the ids
    per batch range tell that rows the job extracted are gone and others never reached it."""
    source, target = urls
    [job] = pipeline.run(_config(urls), "orders")
    batches = _one(target, "SELECT COUNT(*) FROM migration_batches WHERE migration_job_id = ?",
                   (job.job_id,))  # fmt: skip
    assert batches >= 3
    code, report = _verify(target, "--source", source.url)
    assert code == 0, report["failed"]
    figures = _source_check(report, job.job_id)["figures"]
    assert figures["batches_checked"] == batches and figures["batches_not_checked"] == 0
    assert figures["changed_batches"] == [] and figures["rows_outside_plan"] == 0

    # A row changed in place keeps its id: verify compares ids only, and passes.
    with Target(source, create=False) as t:
        t.execute("UPDATE orders SET status = 'changed since' WHERE order_id = "
                  "(SELECT MAX(order_id) FROM orders)")  # fmt: skip
        t.commit()
    code, report = _verify(target, "--source", source.url)
    assert code == 0 and _source_check(report, job.job_id)["passed"] is True

    # An id of batch 2 replaced by an unused id inside its range: every count holds, per
    # batch too; the hash of the batch's ids does not.
    second = _batch(target, job.job_id, 2)
    held = (
        Source(source)
        .read(
            f"SELECT order_id FROM orders WHERE order_id >= {second['start_id']} "
            f"AND order_id <= {second['end_id']}"
        )["order_id"]
        .to_list()
    )
    unused = next(i for i in range(second["start_id"], second["end_id"]) if i not in set(held))
    _replace_order(source, gone=max(held), new=unused)
    code, report = _verify(target, "--source", source.url)
    assert code == 1 and report["failed"] == [f"source_rows (job {job.job_id})"]
    figures = _source_check(report, job.job_id)["figures"]
    assert figures["source_rows"] == figures["extracted"] == job.counts["extracted"]
    assert figures["changed_batches"] == [_changed(target, job.job_id, 2, len(held))]
    assert figures["rows_outside_plan"] == 0

    # The finding: one transaction adds an order above the last batch's end and
    # deletes the lowest. Batch 1 lost a row, and the new one is in no batch's range.
    lowest = _one(source, "SELECT MIN(order_id) FROM orders")
    new = _one(source, "SELECT MAX(order_id) FROM orders") + 1
    _replace_order(source, gone=lowest, new=new)
    assert _one(source, "SELECT COUNT(*) FROM orders") == job.counts["extracted"]
    code, report = _verify(target, "--source", source.url)
    assert code == 1 and report["failed"] == [f"source_rows (job {job.job_id})"]
    figures = _source_check(report, job.job_id)["figures"]
    assert figures["source_rows"] == figures["extracted"]  # the old check's figures agree
    first = _batch(target, job.job_id, 1)
    assert first["start_id"] == lowest
    assert figures["changed_batches"] == [
        _changed(target, job.job_id, 1, first["extracted"] - 1),
        _changed(target, job.job_id, 2, len(held)),
    ]
    assert figures["rows_outside_plan"] == 1 and figures["ids_outside_plan"] == [new]
    human = etl("verify", "--source", source.url, "--target", target.url)
    assert human.returncode == 1, human.stderr
    line = _table_row(human.stdout, "source_rows")
    assert f"changed since: batch 1 (ids {lowest}-{first['end_id']}: " in line
    assert f"rows in no batch's range: 1 (ids {new})" in line


def test_verify_finds_source_ids_changed_while_the_job_ran(tmp_path: Path) -> None:
    """The source changes between two parts of one job (stopped by Ctrl-C, then resumed): the
    batches read after the change agree with the source, the one read before does not."""
    source = legacy_sqlite(tmp_path, 2_000, seed=11)
    target = tmp_path / "target.db"
    args = ("run", "--entity", "orders", "--source", source.url, "--target", f"sqlite://{target}",
            "--batch-size", "200")  # fmt: skip
    code, stderr = start_and_stop(args, target, 1, signal.SIGINT)
    assert code == 130, stderr
    target_url = DatabaseUrl.parse(f"sqlite://{target}", what="target")
    with Target(target_url) as t:
        [(job_id, status)] = t.query("SELECT id, status FROM migration_jobs").rows()
        done = t.scalar("SELECT COUNT(*) FROM migration_batches WHERE status = 'completed'")
    # Batch 1 was read before the change, the last of the 10 after.
    assert status == "interrupted" and 1 <= done < 10
    # A table half migrated is no finished migration, whatever its rows' checks say.
    code, report = _verify(target_url, "--source", source.url)
    assert code == 1 and "job_completed (orders)" in report["failed"], report["failed"]
    said = _checks(report, "job_completed")["orders"]["figures"]
    assert said == {"latest_job": job_id, "status": "interrupted"}
    lowest = _one(source, "SELECT MIN(order_id) FROM orders")
    new = _one(source, "SELECT MAX(order_id) FROM orders") + 1
    _replace_order(source, gone=lowest, new=new)
    resumed = etl(*args)
    assert resumed.returncode == 0, resumed.stderr
    code, report = _verify(target_url, "--source", source.url)
    assert code == 1 and report["failed"] == [f"source_rows (job {job_id})"]
    figures = _source_check(report, job_id)["figures"]
    assert figures["source_rows"] == figures["extracted"] == 2_000
    first = _batch(target_url, job_id, 1)
    assert figures["changed_batches"] == [_changed(target_url, job_id, 1, first["extracted"] - 1)]
    assert figures["ids_outside_plan"] == [new]


def test_a_ledger_of_an_earlier_version_is_upgraded_and_its_batches_are_not_checked(
    urls: tuple[DatabaseUrl, DatabaseUrl],
) -> None:
    """A ledger written before batches recorded their keys: verify reads it as it is (no
    hash: not checked, not failed), the schema step adds the column, idempotently, and the
    batches' counts are still compared range by range."""
    source, target = urls
    [job] = pipeline.run(_config(urls), "orders")
    with Target(target) as t:
        t.execute("ALTER TABLE migration_batches DROP COLUMN source_key_hash")
        t.commit()
    for _ in ("before the schema step", "after it"):
        code, report = _verify(target, "--source", source.url)
        assert code == 0 and report["status"] == "incomplete", report
        check = _source_check(report, job.job_id)
        assert check["passed"] is None and "an earlier version" in check["reason"]
        assert check["figures"]["batches_checked"] == 0
        with Target(target) as t:
            t.apply_schema()
            t.apply_schema()  # a second time: the column is there, and is left alone
            assert t.has_column("migration_batches", "source_key_hash")
            assert t.scalar("SELECT COUNT(source_key_hash) FROM migration_batches") == 0
    lowest = _one(source, "SELECT MIN(order_id) FROM orders")
    new = _one(source, "SELECT MAX(order_id) FROM orders") + 1
    _replace_order(source, gone=lowest, new=new)
    code, report = _verify(target, "--source", source.url)
    assert code == 1 and report["failed"] == [f"source_rows (job {job.job_id})"]
    figures = _source_check(report, job.job_id)["figures"]
    first = _batch(target, job.job_id, 1)
    assert figures["changed_batches"] == [_changed(target, job.job_id, 1, first["extracted"] - 1)]
    assert figures["rows_outside_plan"] == 1


def _table_row(printed: str, check: str) -> str:
    """The figures of ``check``'s row in verify's table, its wrapped lines joined again."""
    lines = printed.splitlines()
    first = next(i for i, x in enumerate(lines) if x.lstrip().startswith(check))
    rows = [lines[first]]
    for line in lines[first + 1 :]:
        if not line.startswith(" " * 10) or not line.strip():
            break
        rows.append(line)
    return " ".join(" ".join(row.split()) for row in rows)
