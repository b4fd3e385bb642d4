"""The migration ledger in the target: migration_jobs, migration_batches, migration_errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from columnar_etl.dialects import DIALECTS
from columnar_etl.errors import AlreadyCommittedError, TargetError
from columnar_etl.extract import BatchRange, KeyRange
from columnar_etl.target import Target

__all__ = [
    "COUNTS",
    "NOT_WRITTEN_BY_A_JOB",
    "Batch",
    "add_batches",
    "add_to_job_fact",
    "batch_error",
    "claim_batch",
    "complete_batch",
    "create_job",
    "earlier_batches",
    "fail_batch",
    "finish_job",
    "has_batches",
    "interrupt_job",
    "job_configuration",
    "job_counts",
    "jobs_overview",
    "open_batches",
    "record_job_facts",
    "require_ledger",
    "resumable_job",
    "start_job",
]

#: Where every extracted row ends: extracted = loaded + rejected + filtered + skipped_existing.
#: ``updated`` is the part of ``loaded`` that overwrote an earlier job's row (--on-conflict
#: update): those rows keep the etl_job_id of the job that inserted them.
COUNTS = ("extracted", "loaded", "rejected", "filtered", "skipped_existing", "updated")
_NOW = "CURRENT_TIMESTAMP"

#: SQL condition on a target row aliased ``t``: the tool did not write it, as no job the ledger
#: knows did (its etl_job_id is NULL, or of no job here). Such a row is never "already there".
NOT_WRITTEN_BY_A_JOB = "NOT EXISTS (SELECT 1 FROM migration_jobs j WHERE j.id = t.etl_job_id)"


@dataclass(frozen=True)
class Batch:
    """A planned batch of a job, as the ledger holds it."""

    id: int
    batch_number: int
    start_id: int
    end_id: int
    records_count: int
    retry_count: int
    key_range: str | None = None
    """A key range (KeyRange as JSON), for a table not keyed by one integer."""

    @property
    def range(self) -> BatchRange:
        keys = None if self.key_range is None else KeyRange.from_json(self.key_range)
        return BatchRange(self.batch_number, self.start_id, self.end_id, self.records_count, keys)


def require_ledger(target: Target, job_id: int | None = None) -> None:
    """Fail clearly when the target has no ledger yet, or not this job."""
    if not target.has_table("migration_jobs"):
        raise TargetError(f"{target.url} has no migration ledger: nothing has run there yet")
    if job_id is not None and not target.scalar(
        "SELECT COUNT(*) FROM migration_jobs WHERE id = ?", (job_id,)
    ):
        raise TargetError(f"no job {job_id} in {target.url} (see etl status)")


def create_job(
    target: Target,
    entity: str,
    table: str,
    configuration: dict[str, Any],
    ranges: Sequence[BatchRange] = (),
    *,
    supersedes: int | None = None,
) -> int:
    """A new pending job with its batch plan, in one transaction (a job stopped between the
    two would resume with nothing to do and close as completed); ``configuration`` must
    already be redacted. ``supersedes``: the unfinished job ``--fresh`` leaves behind, closed
    as failed in the same transaction (only an entity's latest job is resumed, so it would
    stay open for good)."""
    job_id = int(
        target.scalar(
            "INSERT INTO migration_jobs (name, entity, source_system, target_table, "
            f"configuration) VALUES (?, ?, ?, ?, {target.json('?')}) RETURNING id",
            (f"Migrate {entity}", entity, "legacy_database", table, json.dumps(configuration)),
        )
    )
    if supersedes is not None and _status(target, supersedes) in _OPEN:
        message = f"superseded by job {job_id} (--fresh)"
        _close_job(target, supersedes, "failed", message, job_counts(target, supersedes))
    add_batches(target, job_id, ranges)
    return job_id


def _status(target: Target, job_id: int) -> str | None:
    return target.scalar("SELECT status FROM migration_jobs WHERE id = ?", (job_id,))


def job_configuration(target: Target, job_id: int) -> dict[str, Any]:
    """The configuration a job was created with (and the facts it recorded then)."""
    text = target.scalar(
        "SELECT CAST(configuration AS TEXT) FROM migration_jobs WHERE id = ?", (job_id,)
    )
    return json.loads(text) if text else {}


def record_job_facts(target: Target, job_id: int, facts: dict[str, Any]) -> None:
    """Set ``facts`` in the job's configuration, in the caller's transaction."""
    # The row lock first (PostgreSQL): another connection's batch of the job that adds to a
    # fact waits, then reads what this one wrote.
    target.execute(f"UPDATE migration_jobs SET updated_at = {_NOW} WHERE id = ?", (job_id,))
    merged = job_configuration(target, job_id) | facts
    target.execute(
        f"UPDATE migration_jobs SET configuration = {target.json('?')} WHERE id = ?",
        (json.dumps(merged), job_id),
    )


def add_to_job_fact(target: Target, job_id: int, key: str, n: int) -> None:
    """Add ``n`` to a count among the job's facts, in the caller's transaction (a batch's:
    the count commits with the rows it counts, or not at all)."""
    target.execute(f"UPDATE migration_jobs SET updated_at = {_NOW} WHERE id = ?", (job_id,))
    record_job_facts(target, job_id, {key: int(job_configuration(target, job_id).get(key, 0)) + n})


#: Statuses of a job that has not closed (its row does not hold its counts yet).
_OPEN = ("pending", "in_progress", "interrupted")


def resumable_job(target: Target, entity: str) -> int | None:
    """The entity's latest job when it did not finish (failed, interrupted, or never started)."""
    row = target.query(
        "SELECT id, status FROM migration_jobs WHERE entity = ? AND deleted_at IS NULL "
        "ORDER BY id DESC LIMIT 1",
        (entity,),
    )
    if row.height and row["status"][0] in ("pending", "in_progress", "failed", "interrupted"):
        return int(row["id"][0])
    return None


def add_batches(target: Target, job_id: int, ranges: Sequence[BatchRange]) -> None:
    """Record the job's plan and total, and commit."""
    for r in ranges:
        target.execute(
            "INSERT INTO migration_batches (migration_job_id, batch_number, start_id, end_id, "
            "records_count, key_range) VALUES (?, ?, ?, ?, ?, ?)",
            (
                job_id,
                r.batch_number,
                r.start_id,
                r.end_id,
                r.records_count,
                None if r.keys is None else r.keys.to_json(),
            ),
        )
    target.execute(
        "UPDATE migration_jobs SET total_records = ?, updated_at = CURRENT_TIMESTAMP WHERE id = ?",
        (sum(r.records_count for r in ranges), job_id),
    )
    target.commit()


def has_batches(target: Target, job_id: int) -> bool:
    """Whether the job has a batch plan. A job of an older version could be stopped after its
    row was written and before its plan; resumed as it was, it would close with nothing done."""
    planned = target.scalar(
        "SELECT COUNT(*) FROM migration_batches WHERE migration_job_id = ?", (job_id,)
    )
    return bool(planned)


def start_job(target: Target, job_id: int) -> None:
    target.execute(
        f"UPDATE migration_jobs SET status = 'in_progress', started_at = COALESCE(started_at, "
        f"{_NOW}), completed_at = NULL, error_message = NULL, updated_at = {_NOW} WHERE id = ?",
        (job_id,),
    )
    target.commit()


def open_batches(target: Target, job_id: int) -> list[Batch]:
    """The job's batches that have not completed, in id order."""
    rows = target.query(
        "SELECT id, batch_number, start_id, end_id, records_count, retry_count, key_range "
        "FROM migration_batches WHERE migration_job_id = ? AND status <> 'completed' "
        "ORDER BY batch_number",
        (job_id,),
    )
    return [
        Batch(**{k: v if k == "key_range" else int(v) for k, v in row.items()})
        for row in rows.to_dicts()
    ]


def complete_batch(
    target: Target, batch: Batch, counts: dict[str, int], retries: int, key_hash: str | None = None
) -> None:
    """Mark a batch completed with its counts and the hash of its source keys
    (:func:`~columnar_etl.extract.key_hash`), inside the caller's batch transaction.

    Raises AlreadyCommittedError, and the caller rolls back, when another transaction
    completed the batch meanwhile: the row's lock makes the two wait for each other, and only
    the first commits (see :func:`claim_batch`).
    """
    marked = target.scalar(
        f"UPDATE migration_batches SET status = 'completed', completed_at = {_NOW}, "
        f"updated_at = {_NOW}, error_details = NULL, retry_count = ?, source_key_hash = ?, "
        + ", ".join(f"{name} = ?" for name in COUNTS)
        + " WHERE id = ? AND status <> 'completed' RETURNING id",
        (retries, key_hash, *(counts[name] for name in COUNTS), batch.id),
    )
    if marked is None:
        raise AlreadyCommittedError(f"batch {batch.batch_number} committed in another attempt")


def earlier_batches(target: Target, job_id: int, batch: Batch) -> tuple[int, int]:
    """(not yet completed, failed) among the job's batches before ``batch``; a fresh snapshot
    each call, for a Ray task waiting for its turn to commit."""
    row = target.query(
        "SELECT CAST(SUM(CASE WHEN status <> 'completed' THEN 1 ELSE 0 END) AS BIGINT) AS open, "
        "CAST(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed "
        "FROM migration_batches WHERE migration_job_id = ? AND batch_number < ?",
        (job_id, batch.batch_number),
    )
    target.rollback()
    return int(row["open"][0] or 0), int(row["failed"][0] or 0)


def claim_batch(target: Target, batch: Batch) -> dict[str, int] | None:
    """Open the batch's transaction by locking its ledger row, the batch's commit marker.

    Returns the batch's counts when it has already committed: an attempt whose COMMIT reply
    was lost, or a Ray task run again after its worker died, may well have committed, and the
    batch must not be loaded twice (the transaction is then rolled back). Otherwise None, and
    the row stays locked until this transaction ends: another attempt at the same batch
    (a lost connection's transaction still committing on the server) waits for it, then sees
    its outcome.
    """
    row = target.query(
        "SELECT status, " + ", ".join(COUNTS) + " FROM migration_batches WHERE id = ?"
        f"{DIALECTS[target.dialect].for_update}",
        (batch.id,),
    )
    if row.height and row["status"][0] == "completed":
        target.rollback()
        return {name: int(row[name][0]) for name in COUNTS}
    return None


def fail_batch(target: Target, batch: Batch, error: str, retries: int) -> None:
    """Record a batch's failure in its own transaction (the batch's own work was rolled back)."""
    target.execute(
        f"UPDATE migration_batches SET status = 'failed', error_details = ?, retry_count = ?, "
        f"updated_at = {_NOW} WHERE id = ?",
        (error, retries, batch.id),
    )
    target.commit()


def batch_error(target: Target, batch: Batch) -> str:
    """The error a failed batch recorded (:func:`fail_batch`), or '' where none is."""
    error = target.scalar("SELECT error_details FROM migration_batches WHERE id = ?", (batch.id,))
    return str(error or "")


def interrupt_job(target: Target, job_id: int) -> None:
    """Mark a job stopped by the user; the next run of its entity resumes it."""
    target.execute(
        f"UPDATE migration_jobs SET status = 'interrupted', error_message = ?, updated_at = {_NOW} "
        "WHERE id = ?",
        ("interrupted by the user", job_id),
    )
    target.commit()


def job_counts(target: Target, job_id: int) -> dict[str, int]:
    """Counts summed over the job's completed batches."""
    sums = ", ".join(f"CAST(COALESCE(SUM({name}), 0) AS BIGINT) AS {name}" for name in COUNTS)
    row = target.query(
        f"SELECT {sums} FROM migration_batches WHERE migration_job_id = ? AND status = 'completed'",
        (job_id,),
    )
    return {name: int(row[name][0]) for name in COUNTS}


def finish_job(target: Target, job_id: int, error: str | None = None) -> tuple[str, dict[str, int]]:
    """Close a job: completed when every batch completed, failed otherwise."""
    counts = job_counts(target, job_id)
    open_count = target.scalar(
        "SELECT COUNT(*) FROM migration_batches WHERE migration_job_id = ? "
        "AND status <> 'completed'",
        (job_id,),
    )
    status = "completed" if int(open_count) == 0 and error is None else "failed"
    _close_job(target, job_id, status, error, counts)
    target.commit()
    return status, counts


def _close_job(
    target: Target, job_id: int, status: str, error: str | None, counts: dict[str, int]
) -> None:
    """Write a job's final status and counts (in the caller's transaction)."""
    target.execute(
        f"UPDATE migration_jobs SET status = ?, completed_at = {_NOW}, updated_at = {_NOW}, "
        "error_message = ?, processed_records = ?, failed_records = ?, "
        + ", ".join(f"{name} = ?" for name in COUNTS)
        + " WHERE id = ?",
        (
            status,
            error,
            counts["loaded"],
            counts["rejected"],
            *(counts[name] for name in COUNTS),
            job_id,
        ),
    )


def jobs_overview(target: Target) -> pl.DataFrame:
    """Every live job with percent complete and its batches by status (``etl status``)."""
    # A job's row gets its counts when it closes; until then they are its committed batches'.
    counts = ", ".join(
        f"CASE WHEN j.status IN ({', '.join(map(repr, _OPEN))}) THEN CAST(COALESCE(SUM(CASE "
        f"WHEN b.status = 'completed' THEN b.{name} ELSE 0 END), 0) AS BIGINT) ELSE j.{name} "
        f"END AS {name}"
        for name in COUNTS
    )
    jobs = target.query(
        f"SELECT j.id, j.entity, j.status, j.total_records, {counts}, j.error_message, "
        # PostgreSQL sums bigints to numeric, which Arrow cannot type: cast back.
        "CAST(SUM(CASE WHEN b.status = 'completed' THEN b.records_count ELSE 0 END) AS BIGINT) "
        "AS done, "
        "CAST(SUM(CASE WHEN b.status = 'completed' THEN 1 ELSE 0 END) AS BIGINT) "
        "AS batches_completed, "
        "CAST(SUM(CASE WHEN b.status = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS batches_failed, "
        "CAST(SUM(CASE WHEN b.status IN ('pending', 'in_progress') THEN 1 ELSE 0 END) AS BIGINT) "
        "AS batches_pending "
        "FROM migration_jobs j LEFT JOIN migration_batches b ON b.migration_job_id = j.id "
        "WHERE j.deleted_at IS NULL GROUP BY j.id, j.entity, j.status, j.total_records, "
        "j.extracted, j.loaded, j.rejected, j.filtered, j.skipped_existing, j.updated, "
        "j.error_message "
        "ORDER BY j.id"
    )
    done = pl.col("done").fill_null(0).cast(pl.Float64)
    total = pl.col("total_records").cast(pl.Float64)
    percent = pl.when(total > 0).then(done / total * 100).otherwise(0.0)
    return jobs.with_columns(percent=percent.round(1))
