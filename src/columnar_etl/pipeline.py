"""extract -> transform -> validate -> load, per batch; concurrency, retries and resume.

Workers extract and transform batches ahead (connectorx, Polars and ADBC release the GIL);
the calling thread commits them strictly in batch order on one target connection, which is
what makes "the lower legacy id wins" independent of timing. At most ``workers`` batches are
in memory at once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from columnar_etl import entities, ledger
from columnar_etl.config import RunConfig, redact
from columnar_etl.contracts import ERROR_TYPE, Split, split
from columnar_etl.entities import Entity
from columnar_etl.extract import Source
from columnar_etl.load import commit_batch
from columnar_etl.target import Target

__all__ = [
    "JobResult",
    "raise_for_missing",
    "rejected_by_type",
    "rejects_frame",
    "run",
    "run_entity",
]

log = logging.getLogger("columnar_etl")

#: Called after each committed batch with (entity, rows extracted so far, rows in scope).
Progress = Callable[[str, int, int], None]


@dataclass
class JobResult:
    """What one entity's run did."""

    entity: str
    job_id: int | None
    status: str
    counts: dict[str, int]
    rejected_by_type: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def conserved(self) -> bool:
        c = self.counts
        rest = c["loaded"] + c["rejected"] + c["filtered"] + c["skipped_existing"]
        return c["extracted"] == rest


def _prepare(source: Source, entity: Entity, batch: ledger.Batch, config: RunConfig):
    frame = source.read_batch(entity.source, batch.range)
    return frame, split(frame, entity, config.as_of)


def _prepared(
    pool: ThreadPoolExecutor,
    source: Source,
    entity: Entity,
    batches: list[ledger.Batch],
    config: RunConfig,
) -> Iterator[tuple[ledger.Batch, Future]]:
    """Batches in order with their extraction running ahead, at most ``workers`` in flight."""
    queue: deque[tuple[ledger.Batch, Future]] = deque()
    pending = iter(batches)
    for batch in pending:
        queue.append((batch, pool.submit(_prepare, source, entity, batch, config)))
        if len(queue) >= config.workers:
            break
    while queue:
        yield queue.popleft()
        for batch in pending:
            queue.append((batch, pool.submit(_prepare, source, entity, batch, config)))
            break


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(f"{type(exc).__name__}: {text[0] if text else ''}")


def _load_with_retries(
    target: Target,
    source: Source,
    entity: Entity,
    job_id: int,
    batch: ledger.Batch,
    future: Future,
    config: RunConfig,
) -> dict[str, int] | None:
    """Commit one batch, retrying extraction and load with backoff; None when it failed."""
    error = ""
    for attempt in range(config.max_retries + 1):
        try:
            frame, result = (
                future.result() if attempt == 0 else _prepare(source, entity, batch, config)
            )
            return commit_batch(
                target,
                entity,
                job_id,
                batch,
                frame,
                result,
                on_conflict=config.on_conflict,
                retries=attempt,
            )
        except Exception as exc:  # the batch runner: record, back off, retry
            target.rollback()
            error = _error_text(exc)
            log.warning(
                "batch %s of %s failed (attempt %s): %s",
                batch.batch_number,
                entity.name,
                attempt + 1,
                error,
            )
            if attempt < config.max_retries:
                time.sleep(config.retry_backoff * 2**attempt)
    try:
        ledger.fail_batch(target, batch, error, config.max_retries)
    except Exception:
        target.rollback()
    return None


def _dry_run(source: Source, entity: Entity, config: RunConfig) -> JobResult:
    counts = dict.fromkeys(ledger.COUNTS, 0)
    by_type: dict[str, int] = {}
    for batch in source.plan(entity.source, config.batch_size):
        frame = source.read_batch(entity.source, batch)
        result: Split = split(frame, entity, config.as_of)
        counts["extracted"] += frame.height
        counts["loaded"] += result.valid.height
        counts["rejected"] += result.rejects.height
        counts["filtered"] += result.filtered
        for kind, n in result.rejects.group_by(ERROR_TYPE).len().iter_rows():
            by_type[kind] = by_type.get(kind, 0) + n
    return JobResult(entity.name, None, "dry_run", counts, by_type)


def rejected_by_type(target: Target, job_id: int) -> dict[str, int]:
    """Rejects of a job per error_type."""
    rows = target.query(
        "SELECT error_type, COUNT(*) AS n FROM migration_errors WHERE migration_job_id = ? "
        "GROUP BY error_type ORDER BY error_type",
        (job_id,),
    )
    return {row["error_type"]: int(row["n"]) for row in rows.to_dicts()}


def run_entity(config: RunConfig, name: str, progress: Progress | None = None) -> JobResult:
    """Migrate one entity: resume its unfinished job or start one; returns the job's outcome."""
    entity = entities.get(name)
    source = Source(config.source)
    source.check(entity.source)
    if config.dry_run:
        return _dry_run(source, entity, config)
    with Target(config.target) as target:
        target.apply_schema()
        job_id = None if config.fresh else ledger.resumable_job(target, entity.name)
        if job_id is None:
            job_id = ledger.create_job(target, entity.name, entity.target_table, config.describe())
            ledger.add_batches(target, job_id, source.plan(entity.source, config.batch_size))
        else:
            log.info("resuming job %s for %s", job_id, entity.name)
        ledger.start_job(target, job_id)
        batches = ledger.open_batches(target, job_id)
        done = ledger.job_counts(target, job_id)["extracted"]
        total = done + sum(b.records_count for b in batches)
        error = None
        if progress:
            progress(entity.name, done, total)
        with ThreadPoolExecutor(max_workers=config.workers) as pool:
            for batch, future in _prepared(pool, source, entity, batches, config):
                counts = _load_with_retries(target, source, entity, job_id, batch, future, config)
                if counts is None:
                    error = f"batch {batch.batch_number} failed after {config.max_retries} retries"
                    break
                done += counts["extracted"]
                if progress:
                    progress(entity.name, done, total)
        status, counts = ledger.finish_job(target, job_id, error)
        result = JobResult(
            entity.name, job_id, status, counts, rejected_by_type(target, job_id), error
        )
    if not result.conserved:
        log.error("COUNTS DO NOT ADD UP for job %s: %s", job_id, counts)
    return result


def run(config: RunConfig, name: str, progress: Progress | None = None) -> list[JobResult]:
    """Run one entity, or ``all`` of them in order (customers, products, orders)."""
    names = entities.names() if name == "all" else (entities.get(name).name,)
    results = []
    for each in names:
        result = run_entity(config, each, progress)
        results.append(result)
        if result.status == "failed":
            break
    return results


def rejects_frame(target: Target, job_id: int) -> pl.DataFrame:
    """A job's rejects, for ``etl rejects``."""
    return target.query(
        # source_data as text: jsonb arrives as an Arrow extension type CSV cannot hold.
        "SELECT record_id, error_type, error_message, CAST(source_data AS TEXT) AS source_data "
        "FROM migration_errors WHERE migration_job_id = ? ORDER BY id",
        (job_id,),
    )


def raise_for_missing(name: str) -> None:
    """Validate an entity name early (``all`` included) so the CLI can fail before connecting."""
    if name != "all":
        entities.get(name)
