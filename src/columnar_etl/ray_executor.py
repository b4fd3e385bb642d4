"""Running a job's batches as Ray tasks, on a local Ray instance or a cluster.

Each task reads its id range, transforms, validates and commits the batch exactly as the local
executor does (same code, one target transaction with its rejects and its ledger row), so the
exactly-once, resume and duplicate rules hold unchanged:

- the driver plans the batches, owns the job row, and keeps at most ``workers`` tasks in flight,
  submitted in batch order;
- when the order of commits matters (any load but the fast path into an empty table), a task
  transforms in parallel but waits for the batches before it to commit first, so the lower
  legacy id still wins every collision;
- a task re-run by Ray after its worker died finds its batch completed in the ledger, if the
  commit had happened, and does not load it again (ledger.claim_batch, as for every retry).

Ray is an optional dependency (``pip install 'columnar-etl[ray]'``), imported only here.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from columnar_etl import ledger
from columnar_etl.batch import load_with_retries, prepare
from columnar_etl.config import RunConfig
from columnar_etl.contracts import in_memory_collects
from columnar_etl.errors import ConfigError
from columnar_etl.executors import Batches, Committed
from columnar_etl.extract import Source
from columnar_etl.interrupt import Stop
from columnar_etl.migration import load_migration
from columnar_etl.target import Target

__all__ = ["RayExecutor", "run_batches"]

log = logging.getLogger("columnar_etl")

#: Seconds between looks at the ledger while a task waits for its turn to commit.
_TURN_POLL = 0.05
#: Seconds to let tasks in flight finish when the run stops early.
_SETTLE_TIMEOUT = 300


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray executor needs Ray: pip install 'columnar-etl[ray]'") from None
    return ray


def _reachable(address: str) -> None:
    """Fail in seconds on a dead address; Ray itself keeps retrying for minutes."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return  # let Ray interpret it
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc}") from None


#: Ray Client connections tried before giving up on the client server's start-up race.
_CLIENT_ATTEMPTS = 4


def _client_server_died(exc: Exception) -> bool:
    """Whether the Ray Client server's per-client process died as it was forked: an open Ray
    bug (ray-project/ray#63202, a few percent of connections) that leaves nothing behind, so
    connecting again is safe."""
    return "Starting Ray client server failed" in str(exc)


def _start(ray: Any, address: str | None) -> None:
    if ray.is_initialized():
        return
    if address:
        _reachable(address)
    for attempt in range(1, _CLIENT_ATTEMPTS + 1):
        try:
            # No address: a local instance on this machine's cores (workers inherit our env).
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
            return
        except Exception as exc:  # ConnectionError, ValueError... Ray's own variety
            if attempt < _CLIENT_ATTEMPTS and _client_server_died(exc):
                log.warning("the Ray Client server failed to start a session; connecting again")
                time.sleep(attempt)
                continue
            where = address or "a local Ray instance"
            hint = _token_hint() if address else ""
            raise ConfigError(f"cannot start or reach {where}: {exc}{hint}") from None


def _token_hint() -> str:
    """What to check when a cluster refused us: Ray says only "timeout" or "failed to
    connect" when the cause is a missing or wrong token (docs/ray.md, token authentication)."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return " (if the cluster uses token authentication: is its token in ~/.ray/auth_token "
        "or RAY_AUTH_TOKEN here?)"
    return (
        " (if the cluster uses token authentication: set RAY_AUTH_MODE=token and give this "
        "machine the cluster's token, see docs/ray.md)"
    )


def _wait_for_turn(target: Target, job_id: int, batch: ledger.Batch) -> bool:
    """Block until every earlier batch committed; False when one of them failed."""
    while True:
        still_open, failed = ledger.earlier_batches(target, job_id, batch)
        if failed:
            return False
        if not still_open:
            return True
        time.sleep(_TURN_POLL)


# A Ray worker runs one task at a time: the process-wide setting is this task's alone.
@in_memory_collects()
def _batch_task(
    config: RunConfig, entity_name: str, job_id: int, batch: ledger.Batch, direct: bool
) -> dict[str, int] | None:
    """One batch, start to finish, inside a Ray worker; None when it failed after retries."""
    entity = load_migration(config.migration).get(entity_name)
    source = Source(config.source, config.lock_timeout)
    prepared: Future = Future()
    try:
        prepared.set_result(prepare(source, entity, batch, config))  # in parallel with others
    except Exception as exc:  # retried inside load_with_retries, as locally
        prepared.set_exception(exc)
    with Target.for_run(config) as target:
        if not direct and not _wait_for_turn(target, job_id, batch):
            return None
        return load_with_retries(target, source, entity, job_id, batch, prepared, config, direct)


def run_batches(
    config: RunConfig,
    entity_name: str,
    job_id: int,
    batches: list[ledger.Batch],
    direct: bool,
    committed: Callable[[dict[str, int]], None],
    stop: Stop,
) -> ledger.Batch | None:
    """Run ``batches`` as Ray tasks, ``config.workers`` at a time; the batch that failed, if any.

    ``committed`` is called with each batch's counts, in batch order; ``stop`` (Ctrl-C) is
    checked between them.
    """
    ray = _ray()
    _start(ray, config.ray_address)
    stop.reclaim()  # ray.init takes SIGTERM over with a handler that exits at once
    # A worker lost mid-batch is re-run by Ray; its uncommitted transaction died with it.
    task = ray.remote(max_retries=max(config.max_retries, 1), retry_exceptions=False)(_batch_task)
    todo = iter(batches)
    in_flight: deque[tuple[ledger.Batch, Any]] = deque()

    def submit() -> None:
        for batch in todo:
            in_flight.append((batch, task.remote(config, entity_name, job_id, batch, direct)))
            return

    for _ in range(config.workers):
        submit()
    # Never a KeyboardInterrupt inside Ray's own callbacks (that can take the driver down
    # with a core dump): Ctrl-C is the flag (interrupt.py), checked here.
    try:
        while in_flight:
            batch, ref = in_flight[0]
            ready, _ = ray.wait([ref], timeout=0.2)
            stop.check()
            if not ready:
                continue
            try:
                counts = ray.get(ref)
            except ray.exceptions.RayError:  # the task died more often than max_retries
                counts = None
            in_flight.popleft()
            if counts is None:
                return batch
            committed(counts)
            submit()
        return None
    finally:
        _settle(ray, [ref for _, ref in in_flight])


class RayExecutor:
    """Batches run as Ray tasks (``--executor ray``)."""

    # Ray wants its driver on the main thread, where the Ctrl-C flag still works.
    main_thread = True

    def run_batches(self, work: Batches, committed: Committed, stop: Stop) -> ledger.Batch | None:
        """:func:`run_batches` for the executor interface (executors.Executor)."""
        return run_batches(
            work.config, work.entity.name, work.job_id, work.batches, work.direct, committed, stop
        )


def _settle(ray: Any, refs: list[Any]) -> None:
    """Stopping early (a failed batch, Ctrl-C): let the tasks in flight commit or roll back.

    Waiting rather than cancelling: a task behind a failed batch returns at once, the others
    finish their one batch; cancelling them trips a Ray bug at shutdown ("Tried to complete
    task that was not pending") that kills the driver.
    """
    if not refs:
        return
    _, stuck = ray.wait(refs, num_returns=len(refs), timeout=_SETTLE_TIMEOUT)
    for ref in stuck:
        ray.cancel(ref, force=True)
