"""Progress display for long runs: a rich bar per entity on a terminal, plain lines otherwise.

The pipeline only calls ``report(entity, done, total)``; how that is shown is decided here, so
notebooks and tests can pass their own callback or none at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:  # the engine is not needed at run time, only its callback type
    from columnar_etl.pipeline import Progress as Report


__all__ = ["progress_reporter"]


class _RowsPerSecond(ProgressColumn):
    """Rows/s over the whole task (rich's own speed column is in bytes)."""

    def render(self, task: Task) -> Text:
        # Rows a resumed job had already done before this run do not count towards the rate.
        moved = task.completed - task.fields.get("resumed_at", 0)
        elapsed = task.elapsed or 0.0
        if not elapsed or moved <= 0:
            return Text("- rows/s", style="progress.data.speed")
        return Text(f"{moved / elapsed:,.0f} rows/s", style="progress.data.speed")


def _bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        _RowsPerSecond(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _plain(stream: IO[str]) -> Report:
    started: dict[str, tuple[float, int]] = {}

    def report(entity: str, done: int, total: int) -> None:
        begun, resumed_at = started.setdefault(entity, (time.monotonic(), done))
        pct = 100.0 * done / total if total else 100.0
        rate = (done - resumed_at) / max(time.monotonic() - begun, 1e-9)
        print(f"{entity}: {done:,}/{total:,} rows ({pct:.1f}%, {rate:,.0f} rows/s)", file=stream)
        stream.flush()

    return report


@contextmanager
def progress_reporter(
    stream: IO[str] | None = None, *, force_terminal: bool | None = None
) -> Iterator[Report]:
    """A progress callback for ``pipeline.run``: a live bar on a terminal, log lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    interactive = stream.isatty() if force_terminal is None else force_terminal
    if not interactive:
        yield _plain(stream)
        return
    console = Console(file=stream, force_terminal=True)
    tasks: dict[str, TaskID] = {}
    with _bar(console) as bar:

        def report(entity: str, done: int, total: int) -> None:
            if entity not in tasks:
                tasks[entity] = bar.add_task(entity, total=total, completed=done, resumed_at=done)
            bar.update(tasks[entity], completed=done, total=total)

        yield report
