"""What ``etl verify`` and ``etl status`` print for a person: tables that fit the screen.

A terminal gets rich's rendering at its own width. Anything else (a pipe, a file, a test)
gets plain text, as wide as ``COLUMNS`` says or 100 columns, the width of a common terminal:
the figures wrap inside their column, and ``--json`` carries all of them, unabridged. A table
is never narrower than its values, on a terminal or not: a narrower screen wraps its lines.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from typing import Any

import polars as pl
import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from columnar_etl.verify import Check, VerifyReport

__all__ = ["FIT_WIDTH", "by_type", "print_report", "print_status", "show"]

#: Plain output's width when ``COLUMNS`` does not say: a common terminal's.
FIT_WIDTH = 100
#: Plain output that is not asked to fit (the run summary) stays one line per row.
_UNWRAPPED = 400


def show(*items: Table | str, fit: bool = False) -> None:
    """Rich on a terminal. Otherwise plain lines: ``fit`` wraps them at ``COLUMNS`` (default
    100); without it they stay unwrapped, one per table row."""
    lines = [Text(item) if isinstance(item, str) else item for item in items]
    console = Console(highlight=False)
    if console.is_terminal:
        console.width = _whole(lines, console.width)
        for line in lines:
            console.print(line)
        return
    buffer = io.StringIO()
    width = _plain_width() if fit else _UNWRAPPED
    plain = Console(file=buffer, width=width, highlight=False)
    plain.width = _whole(lines, width)
    for line in lines:
        plain.print(line)
    typer.echo("\n".join(line.rstrip() for line in buffer.getvalue().splitlines()).lstrip("\n"))


def _whole(lines: list[Table | Text], width: int) -> int:
    """``width``, or more where a table needs it, having set each column that does not
    wrap no narrower than its widest value: narrower, rich would cut values short (16538
    shown as 165…) and wrap headers a letter per line. A line longer than the screen is
    wrapped by the terminal instead, whole."""
    tables = [line for line in lines if isinstance(line, Table)]
    for table in tables:
        for column in table.columns:
            if column.no_wrap:
                texts = [column.header, *column.cells]
                column.min_width = max(_shown_width(text) for text in texts)
    # Measured on a console that asks for no width: the real one caps what it measures.
    unbounded = Console(file=io.StringIO(), width=_UNWRAPPED)
    return max([width, *(unbounded.measure(t).minimum for t in tables)])


def _shown_width(cell: object) -> int:
    """The cells a table's cell takes on screen: a string's markup (``[green]``) takes none."""
    return Text.from_markup(cell).cell_len if isinstance(cell, str) else cell_len(str(cell))


def _plain_width() -> int:
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else FIT_WIDTH


def _ids(values: list[str], shown: int = 5) -> str:
    more = f" ... ({len(values) - shown} more; --json lists all)" if len(values) > shown else ""
    return ", ".join(values[:shown]) + more


def by_type(counts: Mapping[str, int | None]) -> str:
    return ", ".join(f"{k} {'?' if v is None else v}" for k, v in counts.items())


def _batch_span(batch: Mapping[str, Any]) -> str:
    """A batch's range: its ids, or for a table keyed otherwise its keys."""
    if batch.get("keys"):
        keys = json.loads(batch["keys"])
        return f"keys {keys['start']}..{keys['stop']}"
    return f"ids {batch['start_id']}-{batch['end_id']}"


def _key_changes(f: Mapping[str, Any]) -> str:
    """The source_rows check's comparison of keys per batch range, in a few words."""
    text = f"; key ranges compared: {f['batches_checked']}"
    changed = [
        f"{b['batch_number']} ({_batch_span(b)}: {b['rows_then']} rows then, {b['rows_now']} now)"
        for b in f["changed_batches"]
    ]
    if changed:
        text += f", changed since: batch {_ids(changed, shown=3)}"
    if f["rows_outside_plan"]:
        ids = ", ".join(str(i) for i in f["ids_outside_plan"][:5])
        shown = f" (ids {ids}{', ...' if f['rows_outside_plan'] > 5 else ''})" if ids else ""
        text += f"; rows in no batch's range: {f['rows_outside_plan']}{shown}"
    return text


def _figures(check: Check) -> str:
    """One line of a check's figures for the human table (--json has all of them)."""
    f = check.figures
    if check.name == "integrity":
        text = (
            f"score {f['integrity_score']:.1f}% ({f['actual_records']} of "
            f"{f['expected_records']} rows), duplicate legacy ids {f['duplicate_legacy_ids']}"
        )
        if f["job_status"] != "completed":
            text += f"; job {f['job_status']}"
        return text + (f"; rejects: {by_type(f['error_summary'])}" if f["error_summary"] else "")
    if check.name == "row_count":
        return (
            f"expected {f['expected_records']}, actual {f['actual_records']}, "
            f"missing {f['missing_records']}, extra {f['extra_records']}"
        )
    if check.name == "conservation":
        return (
            f"extracted {f['extracted']} = loaded {f['loaded']} + rejected {f['rejected']} + "
            f"filtered {f['filtered']} + skipped {f['skipped_existing']} "
            f"({f['loaded_rejected_filtered_skipped']}); rejects recorded {f['rejects_recorded']}"
        )
    if check.name == "source_rows":
        rows = "?" if f["source_rows"] is None else f["source_rows"]
        text = f"{f['source_table']} rows in the source {rows}, extracted {f['extracted']}"
        text += _key_changes(f) if "changed_batches" in f else ""
        return text + (f" ({check.reason})" if check.reason else "")
    if check.name == "rows_present":
        text = (
            f"{f['table']} rows {f['table_rows']}, the job placed {f['placed']} (loaded "
            f"{f['loaded']} + already present {f['skipped_existing']})"
        )
        return text + (f"; at least {f['missing_at_least']} gone" if f["missing_at_least"] else "")
    if check.name == "foreign_rows":
        text = f"{f['table']}: {f['foreign_rows']} rows the tool did not write"
        shared = f.get("shared_legacy_ids")
        if shared:
            text += f", {len(shared)} with a source record's legacy_id: {_ids(shared)}"
        return text + (f" ({check.reason})" if check.reason else "")
    if check.name == "orphans":
        text = (
            f"{f['reference']}: {f['rows']} rows, {f['linked']} linked, {f['orphans']} orphans "
            f"({by_type(f['orphans_by_reason'])}), unlinked {f['unlinked']}, "
            f"mislinked {f['mislinked']}"
        )
        return text + (f"; orphans: {_ids(f['orphan_legacy_ids'])}" if f["orphans"] else "")
    if check.name == "duplicate_keys":
        return _duplicate_keys(f)
    if check.name == "job_completed":
        return f"latest job {f['latest_job']}: {f['status']}"
    return by_type(f)


def _duplicate_keys(f: Mapping[str, Any]) -> str:
    """Duplicates per key; the keys a unique index rules out are named, not their index."""
    enforced = f.get("enforced_by_unique_index", {})
    counts = by_type({k: v for k, v in f.items() if k != "enforced_by_unique_index"})
    return counts + (f" (a unique index enforces {', '.join(enforced)})" if enforced else "")


def print_report(report: VerifyReport) -> None:
    """The checks as a table whose figures wrap in their column, then the verdict."""
    title = f"etl verify\ntarget {report.target}\nsource {report.source or 'not given'}"
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("check", "entity", "job", "status"):
        table.add_column(column, no_wrap=column != "entity", overflow="fold")
    table.add_column("figures", overflow="fold", ratio=1)
    style = {"passed": "green", "failed": "bold red", "not_checked": "yellow"}
    for check in report.checks:
        job = "" if check.job_id is None else str(check.job_id)
        status = f"[{style[check.status]}]{check.status}[/]"
        table.add_row(check.name, check.entity or "", job, status, _figures(check))
    failed = sum(c.passed is False for c in report.checks)
    unchecked = sum(c.passed is None for c in report.checks)
    show(
        table,
        f"verify: {report.status} ({len(report.checks)} checks, {failed} failed, "
        f"{unchecked} not checked)",
        fit=True,
    )


def print_status(jobs: pl.DataFrame) -> None:
    """One row per job: progress, batches by status, and its rows by outcome."""
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("job", justify="right", no_wrap=True)
    table.add_column("entity", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("complete", justify="right", no_wrap=True)
    table.add_column("batches", overflow="fold")
    for column in ("loaded", "rejected", "filtered", "skipped"):
        table.add_column(column, justify="right", no_wrap=True)
    for job in jobs.to_dicts():
        table.add_row(
            str(job["id"]), job["entity"], job["status"], f"{job['percent']:.1f}%",
            _batches(job), str(job["loaded"]), str(job["rejected"]), str(job["filtered"]),
            str(job["skipped_existing"]),
        )  # fmt: skip
    show(table, fit=True)


def _batches(job: Mapping[str, Any]) -> str:
    """ "4 done", with the failed and pending ones only when there are some."""
    parts = [f"{job['batches_completed']} done"]
    parts += [f"{job[f'batches_{s}']} {s}" for s in ("failed", "pending") if job[f"batches_{s}"]]
    return ", ".join(parts)
