"""extract -> transform -> validate -> load, per job: its batches, retries and resume.

A run opens each entity's job (or resumes it), plans how it loads (load.loading: the fast
path on a fresh table), and hands the batches to the executor the run names
(executors.py: threads of this process, or Ray tasks); then it links the references and
checks every job's integrity.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

import polars as pl

from columnar_etl import ledger
from columnar_etl.batch import error_text, load_with_retries, prepare
from columnar_etl.config import RunConfig, first_line
from columnar_etl.contracts import ERROR_TYPE, Split, check_contract, in_memory_collects, split
from columnar_etl.declare import Entity
from columnar_etl.errors import (
    InterruptedRunError,
    TargetError,
)
from columnar_etl.executors import Batches, executor
from columnar_etl.extract import Source
from columnar_etl.interrupt import Stop, ctrl_c_as_flag, off_main_thread
from columnar_etl.link import LinkResult, link
from columnar_etl.load import facts_at_start, loading
from columnar_etl.locks import LockWaits
from columnar_etl.migration import Migration, load_migration
from columnar_etl.preflight import before_loading, check_apart, schema_failure
from columnar_etl.target import Target
from columnar_etl.verify import JobIntegrity, error_summary
from columnar_etl.verify import integrity as check_integrity

__all__ = [
    "JobResult",
    "RunResults",
    "load_with_retries",
    "prepare",
    "raise_for_missing",
    "rejected_by_type",
    "rejects_frame",
    "run",
    "run_entity",
]

log = logging.getLogger("columnar_etl")

T = TypeVar("T")

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


def _dry_run(source: Source, entity: Entity, config: RunConfig) -> JobResult:
    counts = dict.fromkeys(ledger.COUNTS, 0)
    by_type: dict[str, int] = {}
    for batch in source.plan(entity.source, config.batch_size):
        frame = source.read_batch(entity.source, batch)
        result: Split = split(frame, entity, config.source_as_of)
        counts["extracted"] += frame.height
        counts["loaded"] += result.valid.height
        counts["rejected"] += result.rejects.height
        counts["filtered"] += result.filtered
        for kind, n in result.rejects.group_by(ERROR_TYPE).len().iter_rows():
            by_type[kind] = by_type.get(kind, 0) + n
    return JobResult(entity.name, None, "dry_run", counts, by_type)


def rejected_by_type(target: Target, job_id: int) -> dict[str, int]:
    """Rejects of a job per error_type."""
    return error_summary(target, job_id).get(job_id, {})


def _run_batches(
    target: Target,
    source: Source,
    entity: Entity,
    job_id: int,
    batches: list[ledger.Batch],
    config: RunConfig,
    progress: Progress | None,
    total: int,
    stop: Stop,
) -> str | None:
    """Commit ``batches``; the error that stopped them, or None when all committed; ``stop``
    (Ctrl-C) is checked between batches."""
    done = total - sum(b.records_count for b in batches)

    def committed(counts: dict[str, int]) -> None:
        nonlocal done
        done += counts["extracted"]
        if progress:
            progress(entity.name, done, total)

    # The index builds at the end take up to one connection per worker of the run.
    with loading(
        target,
        entity,
        job_id,
        pending=bool(batches),
        fast_path=config.fast_path,
        connections=config.workers,
    ) as plan:
        work = Batches(target, source, entity, job_id, batches, config, plan.direct)
        failed = executor(config.executor).run_batches(work, committed, stop)
    return _failed(target, failed, config) if failed else None


def _failed(target: Target, batch: ledger.Batch, config: RunConfig) -> str:
    """The run's one line for a batch that failed: which, and why (the operator should not
    have to dig the reason out of the ledger)."""
    said = f"batch {batch.batch_number} failed after {config.max_retries} retries"
    recorded = ledger.batch_error(target, batch)
    if not recorded:  # the target was gone when the batch failed, as it may be now
        return f"{said}; the target could not record why: see the warnings above"
    return f"{said}: {first_line(RuntimeError(recorded))}"


def _interruptible(config: RunConfig, work: Callable[[Stop], T]) -> T:
    """``work`` with Ctrl-C and SIGTERM as a flag (interrupt.py), off the main thread where
    ADBC would take SIGINT over; Ray wants its driver on the main thread, where the flag
    still works."""
    with ctrl_c_as_flag(sigterm=True) as stop, in_memory_collects():
        try:
            if executor(config.executor).main_thread:
                return work(stop)
            return off_main_thread(lambda: work(stop))
        except KeyboardInterrupt:
            # Stopped before a job's batches began (waiting for a lock): nothing half done.
            raise InterruptedRunError(
                f"{stop.stopped}: committed batches are kept; run again to resume",
                stop.exit_code,
            ) from None


def run_entity(config: RunConfig, name: str, progress: Progress | None = None) -> JobResult:
    """Migrate one entity: resume its unfinished job or start one; returns the job's outcome."""
    return _interruptible(config, lambda stop: _run_entity(config, name, progress, stop))


def _job_clock(config: RunConfig, target: Target, job_id: int) -> RunConfig:
    """``config`` with the clock and source time zone job ``job_id`` was created with (the
    Ray executor's tasks get them too, with the configuration)."""
    resumed = config.with_clock_of(ledger.job_configuration(target, job_id))
    if resumed.source_timezone != config.source_timezone:
        log.warning(
            "job %s keeps the source time zone it was created with, %s, not %s "
            "(--fresh starts a new job)",
            job_id,
            resumed.source_timezone,
            config.source_timezone,
        )
    return resumed


def _run_entity(config: RunConfig, name: str, progress: Progress | None, stop: Stop) -> JobResult:
    entity = load_migration(config.migration).get(name)
    check_apart(config.source, config.target, entity)
    source = Source(config.source, config.lock_timeout)
    waits = LockWaits(entity, source, config, lambda text: _waiting(progress, name, text), stop)
    waits.patiently(lambda: source.check(entity.source))
    check_contract(entity, config.source_as_of)
    if config.dry_run:
        return _dry_run(source, entity, config)
    with Target.for_run(config) as target:
        waits = replace(waits, target=target)
        # The lock first: a second run of the entity is refused before its schema step could
        # bring back what the running job deferred (its indexes, key and autovacuum).
        target.lock_run(entity.name)
        try:
            waits.patiently(lambda: target.apply_schema(tables=(entity.target_table,)))
        except TargetError as failed:
            raise schema_failure(target, entity, failed) from None
        job_id, config = waits.patiently(lambda: _open_job(target, source, entity, config))
        waits.patiently(lambda: ledger.start_job(target, job_id))
        batches = ledger.open_batches(target, job_id)
        done = ledger.job_counts(target, job_id)["extracted"]
        total = done + sum(b.records_count for b in batches)
        if progress:
            progress(entity.name, done, total)
        try:
            error = _run_batches(
                target, source, entity, job_id, batches, config, progress, total, stop
            )
        except KeyboardInterrupt:
            # Ctrl-C: the batch being committed rolled back (or had committed); mark the job.
            target.rollback()
            ledger.interrupt_job(target, job_id)
            raise InterruptedRunError(
                f"{stop.stopped}: {entity.name} job {job_id} stopped; its committed batches "
                "are kept and running the same command again resumes it",
                stop.exit_code,
            ) from None
        except Exception as exc:
            # Close the job as failed rather than leave it in_progress for good (its committed
            # batches stay, and a rerun resumes it); the error itself goes on to the caller.
            with contextlib.suppress(Exception):
                target.rollback()
                ledger.finish_job(target, job_id, error_text(exc))
            raise
        try:
            status, counts = ledger.finish_job(target, job_id, error)
        except Exception as exc:  # most likely the target went away for good
            raise TargetError(
                f"{entity.name} job {job_id} stopped ({error or 'while finishing'}) and could "
                f"not be closed in the ledger: {error_text(exc)}; run again to resume"
            ) from None
        result = JobResult(
            entity.name, job_id, status, counts, rejected_by_type(target, job_id), error
        )
    if not result.conserved:
        log.error("COUNTS DO NOT ADD UP for job %s: %s", job_id, counts)
    return result


def _open_job(
    target: Target, source: Source, entity: Entity, config: RunConfig
) -> tuple[int, RunConfig]:
    """The entity's unfinished job (``--fresh``: a new one superseding it) with its batch
    plan, and the configuration it runs with (a resumed job keeps its own clock); what it
    writes is one transaction, so a step that gave up can be tried again. The table is
    checked first (preflight.before_loading): a refusal leaves no job behind."""
    unfinished = ledger.resumable_job(target, entity.name)
    found = before_loading(target, entity, source, config.on_conflict)
    job_id = None if config.fresh else unfinished
    if job_id is None:
        plan = source.plan(entity.source, config.batch_size)
        facts = facts_at_start(target, entity, config.fast_path)
        configuration = {**config.describe(), **facts, **found}
        created = ledger.create_job(
            target, entity.name, entity.target_table, configuration, plan, supersedes=unfinished
        )
        return created, config
    log.info("resuming job %s for %s", job_id, entity.name)
    config = _job_clock(config, target, job_id)
    if not ledger.has_batches(target, job_id):
        ledger.add_batches(target, job_id, source.plan(entity.source, config.batch_size))
    return job_id, config


def _waiting(progress: Progress | None, entity: str, text: str) -> None:
    """Say what ``entity``'s run waits for: on the progress display where it can show it (a
    reporter's ``waiting``), else as a warning (stderr)."""
    show = getattr(progress, "waiting", None)
    if show is None:
        log.warning("%s: %s", entity, text)
    else:
        show(entity, text)


class RunResults(list[JobResult]):
    """The jobs of one run in order (a list, as before), plus what was checked after them."""

    def __init__(
        self,
        results: Iterable[JobResult] = (),
        links: list[LinkResult] | None = None,
        integrity: dict[int, JobIntegrity] | None = None,
    ) -> None:
        super().__init__(results)
        self.links = links
        """Every declared reference after linking: set when ``all`` completed (``etl link``
        does it alone)."""
        self.integrity = integrity or {}
        """The reference's integrity check of each job of the run, by job id."""

    def to_dicts(self) -> list[dict[str, Any]]:
        """The jobs as plain data: what ``etl run --json`` prints."""
        return [asdict(result) for result in self]


def run(config: RunConfig, name: str, progress: Progress | None = None) -> RunResults:
    """Run one entity, or ``all`` of them in reference order and then link every declared
    reference; every job of the run is integrity-checked against the target. The entities
    are those of ``config.migration`` (default: the built-in customers, products, orders)."""
    return _interruptible(config, lambda stop: _run(config, name, progress, stop))


def _run(config: RunConfig, name: str, progress: Progress | None, stop: Stop) -> RunResults:
    migration = load_migration(config.migration)
    names = migration.names() if name == "all" else (migration.get(name).name,)
    results = RunResults()
    for each in names:
        _stop_between(stop, results, f"before {each}")
        result = _run_entity(config, each, progress, stop)
        results.append(result)
        if result.status == "failed":
            break
    if config.dry_run:
        return results
    with Target.for_run(config) as target:
        if name == "all" and all(r.status == "completed" for r in results):
            _stop_between(stop, results, "before linking the references")
            results.links = link(target, migration)
        job_ids = [r.job_id for r in results if r.job_id is not None]
        checked = check_integrity(target, job_ids, migration)
        results.integrity = {i.migration_job_id: i for i in checked}
    return results


def _stop_between(stop: Stop, results: RunResults, where: str) -> None:
    """A Ctrl-C that came while a job finished stops the run here, between whole steps."""
    if stop.is_set():
        done = ", ".join(f"{r.entity} (job {r.job_id})" for r in results) or "nothing"
        raise InterruptedRunError(
            f"{stop.stopped} {where}; completed: {done}; run again (or `etl link`) to continue",
            stop.exit_code,
        )


def rejects_frame(target: Target, job_id: int) -> pl.DataFrame:
    """A job's rejects, for ``etl rejects``."""
    return target.query(
        # source_data as text: json/jsonb arrive as an Arrow extension type CSV cannot hold.
        "SELECT record_id, error_type, error_message, CAST(source_data AS TEXT) AS source_data "
        # Batch by batch: ids come in blocks per session, and batches commit on several.
        "FROM migration_errors WHERE migration_job_id = ? ORDER BY batch_id, id",
        (job_id,),
    )


def raise_for_missing(name: str, migration: str | None = None) -> Migration:
    """Validate an entity name early (``all`` included) so the CLI can fail before connecting;
    the migration it belongs to."""
    found = load_migration(migration)
    if name != "all":
        found.get(name)
    return found
