"""The local executor: the batches' reads, transforms and commits overlap in threads.

A reader thread streams the source, workers transform and validate batches ahead
(connectorx, Polars and ADBC release the GIL), and the calling thread commits them strictly
in batch order on the run's target connection, which is what makes "the lower legacy id wins"
independent of timing. About ``workers`` batches are in memory at once. On the fast path
nothing can collide, so batches commit on LOAD_LANES connections at once where the database
takes several writers, and PostgreSQL parses their JSON on as many cores.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from columnar_etl import ledger
from columnar_etl.batch import load_with_retries, prepare, transform_batch
from columnar_etl.executors import Batches, Committed
from columnar_etl.interrupt import Stop
from columnar_etl.target import Target

__all__ = ["LOAD_LANES", "LocalExecutor"]

log = logging.getLogger("columnar_etl")


class LocalExecutor:
    """Batches run by threads of this process (the default executor)."""

    main_thread = False

    def run_batches(self, work: Batches, committed: Committed, stop: Stop) -> ledger.Batch | None:
        """Commit ``work``'s batches in batch order (see the module); the one that failed."""
        config = work.config
        pool = ThreadPoolExecutor(max_workers=config.workers)
        try:
            with contextlib.closing(_prepared(pool, work)) as prepared:
                lanes = work.target.sql_dialect.concurrent_writers and config.workers > 1
                if work.direct and lanes:
                    return _commit_in_lanes(work, prepared, committed, stop)
                for batch, future in prepared:
                    stop.check()
                    counts = load_with_retries(
                        work.target,
                        work.source,
                        work.entity,
                        work.job_id,
                        batch,
                        future,
                        config,
                        work.direct,
                    )
                    if counts is None:
                        return batch
                    committed(counts)
            return None
        finally:
            # Batches extracted ahead are dropped, not waited for, when we stop early.
            pool.shutdown(wait=True, cancel_futures=True)


def _by_range(
    pool: ThreadPoolExecutor, work: Batches, batches: list[ledger.Batch]
) -> Iterator[tuple[ledger.Batch, Future]]:
    """``batches`` in order, each read by its own range query ahead, ``workers`` in flight."""
    source, entity, config = work.source, work.entity, work.config
    ahead: deque[tuple[ledger.Batch, Future]] = deque()
    pending = iter(batches)
    for batch in pending:
        ahead.append((batch, pool.submit(prepare, source, entity, batch, config)))
        if len(ahead) >= config.workers:
            break
    while ahead:
        yield ahead.popleft()
        for batch in pending:
            ahead.append((batch, pool.submit(prepare, source, entity, batch, config)))
            break


def _offer(ahead: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` once there is room; False when the consumer has gone."""
    while not stop.is_set():
        try:
            ahead.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _prepared(pool: ThreadPoolExecutor, work: Batches) -> Iterator[tuple[ledger.Batch, Future]]:
    """Batches in order with their (rows, split) computing ahead while the caller loads.

    One thread streams the rows (:meth:`Source.stream`: a query per run of batches, not per
    batch), ``workers`` threads transform and validate, the caller commits: the three overlap,
    and at most ``workers`` batches wait between them. If the stream breaks, the batches it did
    not deliver are read one range at a time (a batch whose read fails is retried as usual).
    """
    source, entity, config, batches = work.source, work.entity, work.config, work.batches
    ahead: queue.Queue = queue.Queue(maxsize=max(1, config.workers - 1))
    stop = threading.Event()
    by_number = {b.batch_number: b for b in batches}

    def read() -> None:
        try:
            for batch, frame in source.stream(entity.source, [b.range for b in batches]):
                future = pool.submit(transform_batch, frame, entity, config)
                del frame
                if not _offer(ahead, (by_number[batch.batch_number], future), stop):
                    return
        except BaseException as exc:  # handed to the consumer, which falls back
            _offer(ahead, exc, stop)
        else:
            _offer(ahead, None, stop)

    reader = threading.Thread(target=read, name="etl-extract", daemon=True)
    reader.start()
    delivered = 0
    try:
        while True:
            item = ahead.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                log.warning("streaming %s stopped (%s); reading by range", entity.name, item)
                yield from _by_range(pool, work, batches[delivered:])
                return
            delivered += 1
            yield item
    finally:
        stop.set()
        reader.join()


#: Connections committing at once on the fast path (see _commit_in_lanes).
LOAD_LANES = 2


def _commit_in_lanes(
    work: Batches,
    prepared: Iterator[tuple[ledger.Batch, Future]],
    committed: Committed,
    stop: Stop,
) -> ledger.Batch | None:
    """The fast path's commits, LOAD_LANES at a time, each lane its own connection.

    Nothing can collide on the fast path, so the order batches commit in does not matter, and
    the server parses the rows' JSON on as many cores. Each batch is still one transaction
    with its rejects and its ledger row; a failed batch stops new ones, the others finish.
    """
    config, timeout = work.config, work.config.lock_timeout
    others = (Target(config.target, lock_timeout=timeout) for _ in range(LOAD_LANES - 1))
    lanes = [work.target, *others]
    free: queue.Queue[Target] = queue.Queue()
    for lane in lanes:
        free.put(lane)
    running: deque[tuple[ledger.Batch, Future]] = deque()

    def commit(lane: Target, batch: ledger.Batch, future: Future) -> dict[str, int] | None:
        try:
            return load_with_retries(
                lane, work.source, work.entity, work.job_id, batch, future, config, True
            )
        finally:
            free.put(lane)

    def settle(wait: bool) -> ledger.Batch | None:
        while running and (wait or running[0][1].done()):
            batch, outcome = running.popleft()
            counts = outcome.result()
            if counts is None:
                return batch
            committed(counts)
        return None

    try:
        with ThreadPoolExecutor(len(lanes), thread_name_prefix="etl-load") as loaders:
            failed = None
            for batch, future in prepared:
                lane = free.get()
                stop.check()  # the lanes in flight still commit or roll back whole
                running.append((batch, loaders.submit(commit, lane, batch, future)))
                failed = settle(wait=False)
                if failed:
                    break
            return failed or settle(wait=True)
    finally:
        for lane in lanes[1:]:
            lane.close()
