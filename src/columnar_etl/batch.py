"""One batch, start to finish: read it, transform and validate it, commit it exactly once.

The local executor (local_executor.py) and the Ray executor (ray_executor.py) both run
batches with these functions, so both keep the same guarantees: every attempt reads the
batch's commit marker first, errors are classed by the target's database, and a batch's rows,
rejects and ledger row commit in one transaction.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future

import polars as pl

from columnar_etl import ledger
from columnar_etl.config import RunConfig, first_line
from columnar_etl.contracts import split
from columnar_etl.declare import Entity
from columnar_etl.errors import ContractError, EtlError, TargetFullError, TargetShapeError
from columnar_etl.extract import Source
from columnar_etl.load import commit_batch
from columnar_etl.locks import LockWaits, is_lock_timeout
from columnar_etl.target import Fault, Target

__all__ = ["error_text", "load_with_retries", "prepare", "transform_batch"]

log = logging.getLogger("columnar_etl")


def prepare(source: Source, entity: Entity, batch: ledger.Batch, config: RunConfig):
    """Read one batch by its id range and split it (valid rows, rejects, filtered)."""
    frame = source.read_batch(entity.source, batch.range)
    return frame, split(frame, entity, config.source_as_of)


def transform_batch(frame: pl.DataFrame, entity: Entity, config: RunConfig):
    """Split a batch already read (the streamed path), as :func:`prepare` does."""
    return frame, split(frame, entity, config.source_as_of)


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc, default='')}"


#: Seconds a retry waits for a target that refuses connections (a restarting server) before
#: the attempt counts as failed.
RECONNECT_WAIT = 30.0


def load_with_retries(
    target: Target,
    source: Source,
    entity: Entity,
    job_id: int,
    batch: ledger.Batch,
    future: Future,
    config: RunConfig,
    direct: bool = False,
) -> dict[str, int] | None:
    """Commit one batch exactly once, retrying with backoff; its counts, None when it failed.

    Every attempt first reads the batch's commit marker, its ledger row (on a revived
    connection after a failure): an attempt whose COMMIT reply was lost may have committed,
    and then the batch is done. Raises TargetFullError, after recording the batch as failed
    where it can, when the target cannot take writes: retrying would only fail again; and a
    LockTimeoutError naming the holder when a lock kept it waiting on every try.
    """
    error, last = "", None
    for attempt in range(config.max_retries + 1):
        try:
            if attempt:  # the failure may have been the connection itself: a restart
                target.revive(wait=RECONNECT_WAIT)
            done = ledger.claim_batch(target, batch)
            if done is not None:
                if attempt:
                    log.warning(
                        "batch %s of %s had committed before the error: not loaded again",
                        batch.batch_number,
                        entity.name,
                    )
                return done
            frame, result = (
                future.result() if attempt == 0 else prepare(source, entity, batch, config)
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
                direct=direct,
            )
        except (TargetShapeError, ContractError):  # every attempt would fail the same way
            target.rollback()
            raise
        except Exception as exc:  # the batch runner: record, back off, retry
            target.rollback()
            error, last = error_text(exc), exc
            if target.fault(exc) is Fault.STORAGE and not isinstance(exc, EtlError):
                _record_failure(target, batch, error, attempt)
                raise TargetFullError(
                    f"{entity.name}: batch {batch.batch_number} could not be written, nothing "
                    f"of it was kept: {first_line(exc)}; fix the target (space, permissions, "
                    "the table) and run again to resume"
                ) from None
            log.warning(
                "batch %s of %s failed (attempt %s): %s",
                batch.batch_number,
                entity.name,
                attempt + 1,
                error,
            )
            if attempt < config.max_retries:
                time.sleep(config.retry_backoff * 2**attempt)
    _record_failure(target, batch, error, config.max_retries)
    if last is not None and is_lock_timeout(last):
        waits = LockWaits(entity, source, config, log.warning, target=target)
        raise waits.gave_up(last, config.max_retries + 1)
    return None


def _record_failure(target: Target, batch: ledger.Batch, error: str, retries: int) -> None:
    """Mark the batch failed, if the target still takes that much."""
    try:
        ledger.fail_batch(target, batch, error, retries)
    except Exception:  # the drivers' own error classes: the target may be full or gone
        target.rollback()
