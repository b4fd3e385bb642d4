"""Ctrl-C during a run: stop at a batch boundary, never in the middle of a driver call.

A KeyboardInterrupt raised at an arbitrary bytecode can land inside a database driver (an
ADBC statement half-created, a Ray callback) and leave handles that fail noisily when they
are garbage-collected; and while an ADBC call runs on the main thread, the driver swaps in its
own SIGINT handler that cancels the call, which fails the batch instead of stopping the run.
So while a run is under way, Ctrl-C only sets a flag, database work runs off the main thread
(see :func:`off_main_thread`), and the loops check the flag where nothing is open.

A second Ctrl-C ends the process at once, as a kill would: the batches in flight roll back
with their connections, the job stays ``in_progress``, and the next run resumes it (the
guarantees after a kill, docs/reliability.md).

A run takes SIGTERM the same way: it is how Kubernetes, systemd, Airflow and Dagster stop a
task before their grace period ends in SIGKILL. The process then exits 143 (128 + SIGTERM).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import TypeVar

__all__ = ["Stop", "ctrl_c_as_flag", "off_main_thread"]

log = logging.getLogger("columnar_etl")

T = TypeVar("T")


class Stop(threading.Event):
    """Set by Ctrl-C (or SIGTERM, in a run); ``check()`` raises KeyboardInterrupt once it is
    set."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int = signal.SIGINT
        """The signal that set it."""
        self._claim: Callable[[], object] = lambda: None

    def check(self) -> None:
        if self.is_set():
            raise KeyboardInterrupt

    @property
    def exit_code(self) -> int:
        """128 + the signal, as a shell reports a process that signal ended: 130 after
        Ctrl-C, 143 after SIGTERM."""
        return 128 + self.signum

    @property
    def stopped(self) -> str:
        """How the run was stopped, for its one line."""
        if self.signum == signal.SIGINT:
            return "interrupted"
        return f"interrupted by {signal.Signals(self.signum).name}"

    def reclaim(self) -> None:
        """Handle the signals again after a library took one over (``ray.init`` installs a
        SIGTERM handler that exits at once); main thread only."""
        self._claim()


#: What the first Ctrl-C of a run logs: stopping can take as long as a batch's commit.
RUN_NOTICE = "stopping after the batches being committed; Ctrl-C again to stop at once"


#: What a second Ctrl-C of a run prints as it ends the process.
RUN_AGAIN = "interrupted again: stopped at once; run again to resume"


@contextlib.contextmanager
def ctrl_c_as_flag(
    notice: str | None = RUN_NOTICE, again: str = RUN_AGAIN, *, sigterm: bool = False
) -> Iterator[Stop]:
    """While inside, the first Ctrl-C sets the yielded flag (logging ``notice``, if any) and a
    second ends the process, printing ``again``. With ``sigterm``, SIGTERM does the same,
    without the notice: an orchestrator reads the one line the run ends with.

    Outside the main thread signals cannot be handled, and the flag is never set.
    """
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    last_words = f"{again}\n".encode()
    signals = (signal.SIGINT, signal.SIGTERM) if sigterm else (signal.SIGINT,)

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            # Only async-signal-safe calls: this may run while logging holds its lock.
            os.write(2, last_words)
            os._exit(128 + signum)
        stop.signum = signum
        stop.set()
        if notice and signum == signal.SIGINT:
            log.warning(notice)

    def claim() -> dict[int, object]:
        return {signum: signal.signal(signum, handler) for signum in signals}

    previous = claim()
    stop._claim = claim
    try:
        yield stop
    finally:
        # Once stopping, the handler stays for the rest of the process: a second signal while
        # the job is marked or the process exits still ends it cleanly, never with a traceback.
        if not stop.is_set():
            for signum, before in previous.items():
                signal.signal(signum, before)  # type: ignore[arg-type]


def off_main_thread(work: Callable[[], T]) -> T:
    """``work()`` on a thread of its own, waited for (directly when already off the main
    thread); its exception is raised here."""
    if threading.current_thread() is not threading.main_thread():
        return work()
    with ThreadPoolExecutor(1, thread_name_prefix="etl-run") as one:
        return one.submit(work).result()
