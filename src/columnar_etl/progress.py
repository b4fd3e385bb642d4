"""Progress display for long runs: a rich bar per entity on a terminal, plain lines otherwise.

The pipeline only calls ``report(entity, done, total)``, and ``report.waiting(entity, text)``
where the callback has it (what a run waits for, such as another session's lock); how that is
shown is decided here, so notebooks and tests can pass their own callback or none at all.
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


class _Plain:
    """One line per report: for pipes, files and CI logs."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.started: dict[str, tuple[float, int]] = {}

    def __call__(self, entity: str, done: int, total: int) -> None:
        begun, resumed_at = self.started.setdefault(entity, (time.monotonic(), done))
        pct = 100.0 * done / total if total else 100.0
        rate = (done - resumed_at) / max(time.monotonic() - begun, 1e-9)
        self._line(f"{entity}: {done:,}/{total:,} rows ({pct:.1f}%, {rate:,.0f} rows/s)")

    def waiting(self, entity: str, text: str) -> None:
        """Say what ``entity``'s run is waiting for."""
        self._line(f"{entity}: {text}")

    def _line(self, text: str) -> None:
        print(text, file=self.stream)
        self.stream.flush()


class _Bars:
    """A live bar per entity; while a run waits, its bar's description says for what."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}  # reported
        self.waits: dict[str, TaskID] = {}  # shown while waiting, not reported yet

    def __call__(self, entity: str, done: int, total: int) -> None:
        if entity in self.tasks:
            self.bar.update(self.tasks[entity], completed=done, total=total, description=entity)
        elif entity in self.waits:  # shown while it waited: its clock starts now
            task = self.tasks[entity] = self.waits.pop(entity)
            self.bar.reset(task, total=total, completed=done, description=entity, resumed_at=done)
        else:
            self.tasks[entity] = self.bar.add_task(
                entity, total=total, completed=done, resumed_at=done
            )

    def waiting(self, entity: str, text: str) -> None:
        """Show what ``entity``'s run is waiting for until its next report."""
        task = self.tasks.get(entity, self.waits.get(entity))  # ids start at 0
        if task is None:
            task = self.waits[entity] = self.bar.add_task(entity, total=None)
        self.bar.update(task, description=f"{entity}: {text}", refresh=True)


@contextmanager
def progress_reporter(
    stream: IO[str] | None = None, *, force_terminal: bool | None = None
) -> Iterator[Report]:
    """A progress callback for ``pipeline.run``: a live bar on a terminal, log lines otherwise;
    either has ``waiting(entity, text)`` too."""
    stream = stream if stream is not None else sys.stderr
    interactive = stream.isatty() if force_terminal is None else force_terminal
    if not interactive:
        yield _Plain(stream)
        return
    console = Console(file=stream, force_terminal=True)
    with _bar(console) as bar:
        yield _Bars(bar)
