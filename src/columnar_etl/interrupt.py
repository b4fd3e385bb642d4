"""Ctrl-C during a run: stop at a batch boundary, never in the middle of a driver call.

A KeyboardInterrupt raised at an arbitrary bytecode can land inside a database driver (an
ADBC statement half-created, a Ray callback) and leave handles that fail noisily when they
are garbage-collected. So while batches run, Ctrl-C only sets a flag; the loops check it
where nothing is open and raise KeyboardInterrupt there themselves.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Stop", "ctrl_c_as_flag"]

log = logging.getLogger("columnar_etl")


class Stop(threading.Event):
    """Set by Ctrl-C; ``check()`` raises KeyboardInterrupt once it is set."""

    def check(self) -> None:
        if self.is_set():
            raise KeyboardInterrupt


@contextlib.contextmanager
def ctrl_c_as_flag(*, twice_stops_now: bool = True) -> Iterator[Stop]:
    """While inside, the first Ctrl-C sets the yielded flag; with ``twice_stops_now`` a second
    one raises KeyboardInterrupt at once (the batch being committed rolls back).

    Outside the main thread signals cannot be handled, and the flag is never set.
    """
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and twice_stops_now:
            raise KeyboardInterrupt
        if not stop.is_set():
            hint = "; Ctrl-C again to stop at once" if twice_stops_now else ""
            log.warning("stopping after the batches being committed%s", hint)
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
