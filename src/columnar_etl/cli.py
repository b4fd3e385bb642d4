"""The ``etl`` command: parses options, calls the library, formats output; nothing else."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from typer._click.exceptions import ClickException  # typer vendors click since 0.22

from columnar_etl import ledger, pipeline
from columnar_etl.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_TARGET_FILE,
    DEFAULT_WORKERS,
    DatabaseUrl,
    RunConfig,
    one_line,
)
from columnar_etl.errors import EtlError
from columnar_etl.legacy import write_legacy
from columnar_etl.progress import progress_reporter
from columnar_etl.target import Target

app = typer.Typer(
    help="Migrate a legacy database into PostgreSQL, columnar and bounded in memory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def _target_url(target: str | None) -> DatabaseUrl:
    default = f"sqlite://{Path.cwd() / DEFAULT_TARGET_FILE}"
    return DatabaseUrl.parse(target or default, what="target (--target / DATABASE_URL)")


SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source", envvar="LEGACY_DATABASE_URL", help="Legacy database URL.", show_default=False
    ),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        envvar="DATABASE_URL",
        help=f"Target database URL [default: sqlite:///./{DEFAULT_TARGET_FILE}]",
        show_default=False,
    ),
]


@app.command()
def run(
    entity: Annotated[str, typer.Option("--entity", help="customers, products, orders or all")],
    source: SourceOpt = None,
    target: TargetOpt = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", envvar="MIGRATION_BATCH_SIZE")
    ] = DEFAULT_BATCH_SIZE,
    workers: Annotated[
        int, typer.Option("--workers", envvar="MAX_CONCURRENT_BATCHES")
    ] = DEFAULT_WORKERS,
    max_retries: Annotated[int, typer.Option("--max-retries", envvar="MAX_RETRIES")] = 3,
    log_level: Annotated[str, typer.Option("--log-level", envvar="LOG_LEVEL")] = "WARNING",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write nothing.")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start a new job.")] = False,
    on_conflict: Annotated[str, typer.Option("--on-conflict", help="skip or update")] = "skip",
    output_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Migrate an entity (or all of them) from the legacy database into the target."""
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        _fail(f"unknown log level {log_level!r}; use DEBUG, INFO, WARNING or ERROR", 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    pipeline.raise_for_missing(entity)
    if not source:
        _fail("no source: pass --source or set LEGACY_DATABASE_URL", 2)
    config = RunConfig(
        source=DatabaseUrl.parse(source, what="source (--source / LEGACY_DATABASE_URL)"),
        target=_target_url(target),
        batch_size=batch_size,
        workers=workers,
        max_retries=max_retries,
        on_conflict=on_conflict,  # type: ignore[arg-type]
        fresh=fresh,
        dry_run=dry_run,
    )
    if output_json:
        results = pipeline.run(config, entity)
    else:
        with progress_reporter() as report:
            results = pipeline.run(config, entity, report)
    if output_json:
        typer.echo(json.dumps([r.__dict__ for r in results], indent=2, default=str))
    else:
        _print_results(results)
    if any(r.status == "failed" or not r.conserved for r in results):
        failed = [r for r in results if r.status == "failed"]
        _fail("; ".join(f"{r.entity}: {r.error}" for r in failed) or "counts do not add up")


@app.command()
def status(target: TargetOpt = None) -> None:
    """List migration jobs with percent complete and batches by status."""
    with Target(_target_url(target), create=False) as t:
        ledger.require_ledger(t)
        jobs = ledger.jobs_overview(t)
    if jobs.is_empty():
        typer.echo("no jobs yet")
        return
    for job in jobs.to_dicts():
        typer.echo(
            f"job {job['id']} {job['entity']}: {job['status']} {job['percent']:.1f}% complete, "
            f"batches completed {job['batches_completed']}, failed {job['batches_failed']}, "
            f"pending {job['batches_pending']}; loaded {job['loaded']}, rejected "
            f"{job['rejected']}, filtered {job['filtered']}, skipped {job['skipped_existing']}"
        )


@app.command()
def rejects(
    job: Annotated[int, typer.Option("--job", help="Job id (see etl status).")],
    target: TargetOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="FILE.parquet or FILE.csv")] = None,
) -> None:
    """Show or export a job's rejected rows with their reasons."""
    if out is not None and out.suffix not in (".parquet", ".csv"):
        _fail("--out must end in .parquet or .csv", 2)
    with Target(_target_url(target), create=False) as t:
        ledger.require_ledger(t, job)
        frame = pipeline.rejects_frame(t, job)
    if out is None:
        for row in frame.to_dicts():
            typer.echo(f"{row['record_id']}\t{row['error_type']}\t{row['error_message']}")
        typer.echo(f"{frame.height} rejects", err=True)
        return
    if out.suffix == ".parquet":
        frame.write_parquet(out)
    else:
        frame.write_csv(out)
    typer.echo(f"wrote {frame.height} rejects to {out}")


def _print_results(results: list[pipeline.JobResult]) -> None:
    for r in results:
        rejects = ", ".join(f"{k} {v}" for k, v in r.rejected_by_type.items()) or "none"
        typer.echo(
            f"{r.entity}: {r.status} (job {r.job_id}) extracted {r.counts['extracted']}, "
            f"loaded {r.counts['loaded']}, rejected {r.counts['rejected']} ({rejects}), "
            f"filtered {r.counts['filtered']}, skipped {r.counts['skipped_existing']}"
        )
        if not r.conserved:
            typer.echo(f"{r.entity}: COUNTS DO NOT ADD UP: {r.counts}", err=True)


@app.command()
def generate(
    rows: Annotated[int, typer.Option("--rows", help="Legacy orders to generate.")],
    out: Annotated[
        str, typer.Option("--out", help="Empty legacy database: sqlite:///PATH or postgresql://")
    ],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same tables.")] = 42,
) -> None:
    """Write a deterministic, realistically messy legacy database (customers, products, orders)."""
    url = DatabaseUrl.parse(out, what="output (--out)")
    with progress_reporter() as report:
        sizes = write_legacy(url, rows, seed, report)
    typer.echo(
        f"generated {url}: {sizes['customers']:,} customers, {sizes['products']:,} products, "
        f"{sizes['orders']:,} orders (seed {seed})"
    )


@app.command()
def demo(
    rows: Annotated[int, typer.Option("--rows", help="Legacy orders to generate.")] = 20_000,
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo databases go.")] = Path(
        "columnar_etl_demo"
    ),
) -> None:
    """Generate a messy legacy SQLite database and migrate it into an embedded SQLite target."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("legacy.db", "target.db"):
        (directory / name).unlink(missing_ok=True)
    source = DatabaseUrl.parse(f"sqlite://{directory.absolute() / 'legacy.db'}", what="source")
    target = DatabaseUrl.parse(f"sqlite://{directory.absolute() / 'target.db'}", what="target")
    sizes = write_legacy(source, rows)
    typer.echo(f"generated legacy database {source}: {sizes}")
    with progress_reporter() as report:
        results = pipeline.run(RunConfig(source=source, target=target), "all", report)
    _print_results(results)
    typer.echo(f"target: {target}")


def main() -> None:
    """Entry point: any error becomes one line on stderr and a non-zero exit, not a traceback."""
    try:
        code = app(standalone_mode=False, prog_name="etl")
    except ClickException as exc:  # bad options, unknown command: typer's usage errors
        message = exc.format_message()
        if message:  # empty when typer already printed the help
            typer.echo(f"error: {one_line(message)} (see etl --help)", err=True)
        sys.exit(exc.exit_code)
    except EtlError as exc:
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted: committed batches are kept; run again to resume", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug or an unforeseen driver error: still one line, no secrets
        logging.getLogger("columnar_etl").debug("unexpected error", exc_info=True)
        first = (str(exc).strip().splitlines() or [""])[0]
        typer.echo(f"error: unexpected {type(exc).__name__}: {one_line(first)}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
