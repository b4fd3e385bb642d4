"""Where a job's batches run, behind one interface: threads of this process, or Ray tasks.

The pipeline opens the job and its load plan, then hands the batches to the executor the run
names (``--executor``). Every executor commits each batch exactly once with batch.py's
functions, so the guarantees are the same whichever runs. Implementations depend on this
module, never the other way round, and each is imported only when a run asks for it: Ray is
an optional dependency.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from columnar_etl import ledger
    from columnar_etl.config import RunConfig
    from columnar_etl.declare import Entity
    from columnar_etl.extract import Source
    from columnar_etl.interrupt import Stop
    from columnar_etl.target import Target

__all__ = ["EXECUTORS", "Batches", "Committed", "Executor", "executor"]

#: Called with each committed batch's counts, in batch order.
Committed = Callable[[dict[str, int]], None]


@dataclass(frozen=True)
class Batches:
    """A job's open batches, and what committing them needs."""

    target: Target
    """The run's connection, which holds its run lock."""
    source: Source
    entity: Entity
    job_id: int
    batches: list[ledger.Batch]
    config: RunConfig
    direct: bool
    """The job's fast path (load.LoadPlan.direct): its batches cannot collide, so the order
    they commit in does not matter."""


class Executor(Protocol):
    """Runs a job's batches."""

    main_thread: bool
    """Whether the run must drive it from the main thread (Ray); else the run works off the
    main thread, where ADBC cannot take Ctrl-C over (interrupt.py)."""

    def run_batches(self, work: Batches, committed: Committed, stop: Stop) -> ledger.Batch | None:
        """Commit ``work``'s batches, calling ``committed`` with each one's counts; the batch
        that failed after its retries, or None. ``stop`` (Ctrl-C) is checked between
        batches."""
        ...


#: Executors by the name ``--executor`` gives them: (module, class), imported when chosen.
EXECUTORS = {
    "local": ("columnar_etl.local_executor", "LocalExecutor"),
    "ray": ("columnar_etl.ray_executor", "RayExecutor"),
}


def executor(name: str) -> Executor:
    """The executor called ``name`` (a key of :data:`EXECUTORS`, as RunConfig checks)."""
    module, cls = EXECUTORS[name]
    return getattr(importlib.import_module(module), cls)()
