"""The ``etl`` command: parses options, calls the library, formats output; nothing else."""

from __future__ import annotations

import functools
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import typer
from adbc_driver_manager import AdbcStatusCode
from rich import box
from rich.table import Table
from typer._click.exceptions import ClickException  # typer vendors click since 0.22

from columnar_etl import ledger, pipeline
from columnar_etl.api import MIGRATION_FILE, init_migration
from columnar_etl.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_TARGET_FILE,
    DEFAULT_WORKERS,
    DatabaseUrl,
    RunConfig,
    first_line,
    one_line,
)
from columnar_etl.envfile import load_env_file
from columnar_etl.errors import (
    CommandInterruptedError,
    ConfigError,
    EtlError,
    InterruptedRunError,
)
from columnar_etl.extract import Source
from columnar_etl.helptext import ConventionalHelpGroup
from columnar_etl.interrupt import ctrl_c_as_flag, off_main_thread
from columnar_etl.launch import EXIT_INTERRUPTED
from columnar_etl.legacy import check_size, write_legacy
from columnar_etl.link import LinkResult, link
from columnar_etl.migration import Migration, load_migration
from columnar_etl.progress import progress_reporter
from columnar_etl.render import by_type, print_report, print_status, show
from columnar_etl.rollback import rollback_job
from columnar_etl.scaffold import describe
from columnar_etl.target import Target
from columnar_etl.verify import verify as verify_target

app = typer.Typer(
    cls=ConventionalHelpGroup,
    help="Migrate a legacy database into PostgreSQL, columnar and bounded in memory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


P = ParamSpec("P")
R = TypeVar("R")


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def _target_url(target: str | None) -> DatabaseUrl:
    default = f"sqlite://{Path.cwd() / DEFAULT_TARGET_FILE}"
    return DatabaseUrl.parse(target or default, what="target (--target / DATABASE_URL)")


def _stopped_by_ctrl_c(exc: BaseException) -> bool:
    """Whether Ctrl-C caused ``exc``. While an ADBC call runs on the main thread the driver's
    own SIGINT handler cancels it: the call fails CANCELLED (PostgreSQL), or with the cancel's
    own error raised from KeyboardInterrupt (SQLite: NOT_IMPLEMENTED), often wrapped in ours."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cancelled = getattr(current, "status_code", None) == AdbcStatusCode.CANCELLED
        if cancelled or isinstance(current, KeyboardInterrupt):
            return True
        current = current.__cause__ or current.__context__
    return False


def _on_ctrl_c(outcome: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Ctrl-C in the command becomes one line, "interrupted: ``outcome``", and exit 130. Here
    and not in main(): typer turns a KeyboardInterrupt into a bare exit 130 before main sees
    it, and only the command knows what an interruption left behind."""

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return command(*args, **kwargs)
            except BaseException as exc:
                if isinstance(exc, CommandInterruptedError) or not _stopped_by_ctrl_c(exc):
                    raise
                raise CommandInterruptedError(f"interrupted: {outcome}") from None

        return guarded

    return decorate


#: Job ids are int64 in the ledger: a bigger number is a typo, refused as a usage error.
JOB_IDS = {"min": 1, "max": 2**63 - 1}

SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        envvar="LEGACY_DATABASE_URL",
        help="Legacy database URL: postgresql://, mysql:// (MariaDB too) or sqlite:///PATH.",
        show_default=False,
        metavar="URL",
    ),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        envvar="DATABASE_URL",
        help=f"Target database URL [default: sqlite://./{DEFAULT_TARGET_FILE}]",
        show_default=False,
        metavar="URL",
    ),
]
MigrationOpt = Annotated[
    str | None,
    typer.Option(
        "--migration",
        envvar="ETL_MIGRATION",
        help="Python file, folder or module declaring the entities "
        "[default: the built-in customers, products, orders]",
        show_default=False,
        metavar="PATH|MODULE",
    ),
]


@app.command("init")
@_on_ctrl_c("etl init writes its folder last, at once: nothing was written")
def init_command(
    source: SourceOpt = None,
    out: Annotated[
        Path,
        typer.Option("--out", help="New or empty folder the migration is written into."),
    ] = Path("migration"),
    tables: Annotated[
        str | None,
        typer.Option("--tables", help="Only these tables, comma-separated.", metavar="A,B"),
    ] = None,
) -> None:
    """Write a runnable migration of the legacy database: an entity per table."""
    if not source:
        _fail("no source: pass --source or set LEGACY_DATABASE_URL", 2)
    only = None if tables is None else [t.strip() for t in tables.split(",") if t.strip()]
    if only == []:
        _fail(f"--tables {tables!r} names no table: pass names separated by commas", 2)
    scaffold = init_migration(source, out, only)
    for line in describe(scaffold):
        typer.echo(line)
    typer.echo(
        f"wrote {out / MIGRATION_FILE}: {_entities(len(scaffold.entities))}. Edit the "
        f"transforms, then: etl run --migration {shlex.quote(str(out))} --entity all"
    )


def _entities(n: int) -> str:
    return "1 entity" if n == 1 else f"{n} entities"


@app.command()
@_on_ctrl_c("committed batches are kept; run again to resume")
def run(
    entity: Annotated[str, typer.Option("--entity", help="An entity of the migration, or all")],
    source: SourceOpt = None,
    target: TargetOpt = None,
    migration: MigrationOpt = None,
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
    progress: Annotated[
        bool,
        typer.Option(
            "--progress/--no-progress",
            envvar="ENABLE_PROGRESS_TRACKING",
            help="Show progress on stderr (a bar on a terminal, else a line per batch).",
        ),
    ] = True,
    executor: Annotated[
        str, typer.Option("--executor", envvar="ETL_EXECUTOR", help="local or ray")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", envvar="RAY_ADDRESS", help="Ray cluster; default: a local instance"
        ),
    ] = None,
    source_timezone: Annotated[
        str,
        typer.Option(
            "--source-timezone",
            envvar="LEGACY_TIMEZONE",
            help="IANA time zone of the legacy timestamps, which hold none",
        ),
    ] = "UTC",
    no_fast_path: Annotated[
        bool,
        typer.Option("--no-fast-path", help="Merge even into an empty table (keep its indexes)."),
    ] = False,
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout",
            envvar="ETL_LOCK_TIMEOUT",
            help="Seconds to wait for a lock another session holds before retrying "
            "(then stop naming it); 0: no limit",
        ),
    ] = DEFAULT_LOCK_TIMEOUT,
) -> None:
    """Migrate an entity (or all of them) from the legacy database into the target."""
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        _fail(f"unknown log level {log_level!r}; use DEBUG, INFO, WARNING or ERROR", 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    declared = pipeline.raise_for_missing(entity, migration)
    if not source:
        _fail("no source: pass --source or set LEGACY_DATABASE_URL", 2)
    config = RunConfig(
        source=DatabaseUrl.parse(
            source, what="source (--source / LEGACY_DATABASE_URL)", source=True
        ),
        target=_target_url(target),
        batch_size=batch_size,
        workers=workers,
        max_retries=max_retries,
        on_conflict=on_conflict,  # type: ignore[arg-type]
        fresh=fresh,
        dry_run=dry_run,
        executor=executor,  # type: ignore[arg-type]
        ray_address=ray_address,
        source_timezone=source_timezone,
        fast_path=not no_fast_path,
        lock_timeout=lock_timeout,
        migration=migration,
    )
    if output_json or not progress:
        results = pipeline.run(config, entity)
    else:
        with progress_reporter() as report:
            results = pipeline.run(config, entity, report)
    if output_json:
        typer.echo(json.dumps(results.to_dicts(), indent=2))
    else:
        _print_results(results, declared)
    if any(r.status == "failed" or not r.conserved for r in results):
        failed = [r for r in results if r.status == "failed"]
        _fail("; ".join(f"{r.entity}: {r.error}" for r in failed) or "counts do not add up")


@app.command()
@_on_ctrl_c("the target is unchanged (etl status only reads it)")
def status(
    target: TargetOpt = None,
    migration: MigrationOpt = None,
    output_json: Annotated[bool, typer.Option("--json", help="Print every job as JSON.")] = False,
) -> None:
    """List migration jobs with percent complete and batches by status."""
    load_migration(migration)  # checked like every command's; the ledger names the entities
    with Target(_target_url(target), create=False) as t:
        ledger.require_ledger(t)
        jobs = ledger.jobs_overview(t)
    if output_json:
        typer.echo(json.dumps(jobs.to_dicts(), indent=2, default=str))
    elif jobs.is_empty():
        typer.echo("no jobs yet")
    else:
        print_status(jobs)


@app.command()
@_on_ctrl_c("the target is unchanged (etl rejects only reads it)")
def rejects(
    job: Annotated[int, typer.Option("--job", help="Job id (see etl status).", **JOB_IDS)],
    target: TargetOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="FILE.parquet or FILE.csv")] = None,
    migration: MigrationOpt = None,
) -> None:
    """Show or export a job's rejected rows with their reasons."""
    load_migration(migration)  # checked like every command's; a reject keeps its source row
    if out is not None:
        _check_out(out)
    with Target(_target_url(target), create=False) as t:
        ledger.require_ledger(t, job)
        frame = pipeline.rejects_frame(t, job)
    if out is None:
        for row in frame.to_dicts():
            typer.echo(f"{row['record_id']}\t{row['error_type']}\t{row['error_message']}")
        typer.echo(f"{frame.height} rejects", err=True)
        return
    try:
        if out.suffix.lower() == ".parquet":
            frame.write_parquet(out)
        else:
            frame.write_csv(out)
    except OSError as exc:  # the folder went away, no permission, disk full
        raise ConfigError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {frame.height} rejects to {out}")


def _check_out(out: Path) -> None:
    """Refuse an ``--out`` that cannot be written, before the target is read."""
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError("--out must end in .parquet or .csv")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; name a file in it")


@app.command("link")
@_on_ctrl_c("etl link changes every reference in one transaction or none; run it again")
def link_command(
    target: TargetOpt = None,
    migration: MigrationOpt = None,
    output_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Point every row of every declared reference at the row it references (orders at their
    customers in the built-in example)."""
    declared = load_migration(migration)
    with Target(_target_url(target), create=False) as t:
        results = link(t, declared)
    if output_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    if not results:
        typer.echo("no references declared: nothing to link")
    for result in results:
        typer.echo(_link_line(result))


def _link_line(result: LinkResult) -> str:
    return (
        f"{result.label}: linked {result.linked} of {result.rows} rows ({result.updated} "
        f"changed); {result.orphans} orphans (the row they reference was filtered, rejected "
        "or never existed; etl verify lists them)"
    )


@app.command("verify")
@_on_ctrl_c("the target is unchanged (etl verify only reads it)")
def verify_command(
    job: Annotated[int | None, typer.Option("--job", help="Check one job only.", **JOB_IDS)] = None,
    entity: Annotated[
        str | None, typer.Option("--entity", help="Check one entity only (all: every one).")
    ] = None,
    source: SourceOpt = None,
    target: TargetOpt = None,
    migration: MigrationOpt = None,
    output_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the target against the ledger and the source; exit 1 when a check fails."""
    declared = load_migration(migration)
    if job is not None and entity is not None:
        _fail("--job and --entity exclude each other", 2)
    entity = None if entity == "all" else entity  # the word etl run takes, and the default
    legacy = None  # without a source the source re-count is reported "not checked"
    if source:
        legacy = Source(
            DatabaseUrl.parse(source, what="source (--source / LEGACY_DATABASE_URL)", source=True)
        )
    with Target(_target_url(target), create=False) as t:
        report = verify_target(t, legacy, job_id=job, entity=entity, migration=declared)
    if output_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(report)
    if not report.passed:
        raise typer.Exit(1)


@app.command("rollback")
@_on_ctrl_c(
    "a rollback is one transaction: the job is rolled back whole or not at all "
    "(etl status shows which)"
)
def rollback_command(
    job: Annotated[int, typer.Option("--job", help="Job id (see etl status).", **JOB_IDS)],
    force: Annotated[
        bool, typer.Option("--force", help="Unlink rows of other entities that point at them.")
    ] = False,
    target: TargetOpt = None,
    migration: MigrationOpt = None,
) -> None:
    """Delete a job's target rows and mark it rolled_back; its rejects are kept."""
    declared = load_migration(migration)
    with Target(_target_url(target), create=False) as t:
        result = rollback_job(t, job, force=force, migration=declared)
    unlinked = "".join(f", unlinked {n} {name}" for name, n in result.unlinked.items())
    typer.echo(
        f"rolled back job {result.job_id} ({result.entity}): deleted {result.deleted} rows "
        f"from {result.target_table}{unlinked}; its {result.rejects_kept} rejects are kept"
    )


def _print_results(results: list[pipeline.JobResult], migration: Migration) -> None:
    """The reference's migration summary: per entity success, rejects, filtered, skipped and
    total; the relationships line; each job's integrity status with its score."""
    table = Table(title="MIGRATION SUMMARY", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("entity", "job", "status", "success", "rejected"):
        table.add_column(column, justify="right" if column in ("job", "success") else "left")
    for column in ("filtered", "skipped", "total"):
        table.add_column(column, justify="right")
    for r in results:
        rejected = str(r.counts["rejected"])
        if r.rejected_by_type:
            rejected += f" ({by_type(r.rejected_by_type)})"
        c = r.counts
        job = "" if r.job_id is None else str(r.job_id)
        table.add_row(
            r.entity, job, r.status, str(c["loaded"]), rejected, str(c["filtered"]),
            str(c["skipped_existing"]), str(c["extracted"]),
        )  # fmt: skip
    lines: list[Table | str] = [table]
    links = getattr(results, "links", None)
    if links is not None:
        lines += [f"Relationships: {_link_line(one)}" for one in links]
    elif any(r.job_id is not None and migration.get(r.entity).references for r in results):
        lines.append("Relationships: not linked by this run (etl link does it)")
    checked = getattr(results, "integrity", {})
    if checked:
        lines.append("Integrity checks:")
        for item in checked.values():
            # The rows a failed job left are whole; the job is not.
            unfinished = "" if item.job_status == "completed" else f"; the job {item.job_status}"
            lines.append(
                f"  {item.entity} (job {item.migration_job_id}): {item.status} "
                f"(Score: {item.integrity_score:.1f}%{unfinished})"
            )
    show(*lines)
    for r in results:
        if not r.conserved:
            typer.echo(f"{r.entity}: COUNTS DO NOT ADD UP: {r.counts}", err=True)


@app.command()
@_on_ctrl_c("etl generate writes all its rows in one transaction or none; run it again")
def generate(
    rows: Annotated[int, typer.Option("--rows", help="Legacy orders to generate.")],
    out: Annotated[
        str,
        typer.Option(
            "--out", help="Empty legacy database: sqlite:///PATH or postgresql://", metavar="URL"
        ),
    ],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same tables.")] = 42,
) -> None:
    """Write a deterministic, realistically messy legacy database (customers, products, orders)."""
    url = DatabaseUrl.parse(out, what="output (--out)")
    sizes = _write_legacy(url, rows, seed)
    typer.echo(
        f"generated {url}: {sizes['customers']:,} customers, {sizes['products']:,} products, "
        f"{sizes['orders']:,} orders (seed {seed})"
    )


#: What stopping the demo leaves: nothing it keeps (it deletes its databases when it starts).
DEMO_STOPPED = "etl demo starts over when run again"


@app.command()
@_on_ctrl_c(DEMO_STOPPED)
def demo(
    rows: Annotated[int, typer.Option("--rows", help="Legacy orders to generate.")] = 20_000,
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo databases go.")] = Path(
        "columnar_etl_demo"
    ),
) -> None:
    """Generate a messy legacy SQLite database, migrate it into an SQLite file, verify both."""
    check_size(rows)  # before anything is written
    directory = _demo_folder(directory.absolute())
    source = DatabaseUrl.parse(f"sqlite://{directory / 'legacy.db'}", what="source")
    target = DatabaseUrl.parse(f"sqlite://{directory / 'target.db'}", what="target")
    for name in ("legacy.db", "target.db"):
        (directory / name).unlink(missing_ok=True)
    sizes = _write_legacy(source, rows)
    typer.echo(
        f"generated {source}: {sizes['customers']:,} customers, {sizes['products']:,} products, "
        f"{sizes['orders']:,} orders"
    )
    try:
        with progress_reporter() as report:
            results = pipeline.run(RunConfig(source=source, target=target), "all", report)
    except InterruptedRunError as exc:  # "run again to resume" is untrue: the demo restarts
        raise CommandInterruptedError(f"interrupted: {DEMO_STOPPED}", exc.exit_code) from None
    _print_results(results, load_migration())
    typer.echo("")
    with Target(target, create=False) as t:
        verified = verify_target(t, Source(source))
    print_report(verified)
    typer.echo(
        f"\nExplore: etl status --target {target}\n"
        f"         etl rejects --job 3 --target {target}\n"
        f"         etl verify --json --source {source} --target {target}"
    )
    if not verified.passed:
        raise typer.Exit(1)


def _write_legacy(url: DatabaseUrl, rows: int, seed: int = 42) -> dict[str, int]:
    """:func:`write_legacy` with progress, stopped by Ctrl-C between chunks: off the main
    thread, as a run does, since on it the SQLite driver's SIGINT handler took the signal
    during an ingest and, unable to cancel it, dropped it (the command ran on to the end)."""
    # No notice: the next chunk, a fraction of a second away, stops it with one line. Ended
    # at once, the transaction dies with the process: nothing is kept either way.
    again = "interrupted again: stopped at once; nothing was written"
    with progress_reporter() as report, ctrl_c_as_flag(notice=None, again=again) as stop:

        def step(table: str, done: int, total: int) -> None:
            stop.check()  # KeyboardInterrupt: the transaction rolls back with its connection
            report(table, done, total)

        return off_main_thread(lambda: write_legacy(url, rows, seed, step))


def _demo_folder(directory: Path) -> Path:
    """``directory``, created if need be; a ConfigError when it is a file or cannot be made."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"--dir {directory} is not a folder") from None
    except OSError as exc:  # a file in the path, no permission, read-only disk
        raise ConfigError(f"cannot create --dir {directory}: {exc.strerror or exc}") from None
    return directory


def _quiet_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    # A second Ctrl-C can leave a driver handle half-closed; its failing __del__ at exit is
    # noise after the one line we print, so it goes to the debug log, not the terminal.
    logging.getLogger("columnar_etl").debug(
        "ignored in %r: %r", unraisable.object, unraisable.exc_value
    )


def _ignore_ctrl_c() -> None:
    # Stopping already: at interpreter shutdown Python resets its SIGINT handler to the
    # system default, and one more press would kill the process (exit -2) mid-teardown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def main() -> None:
    """Entry point: any error becomes one line on stderr and a non-zero exit, not a traceback."""
    sys.unraisablehook = _quiet_unraisable
    try:
        load_env_file(os.environ)  # ./.env: before the options read their variables
        code = app(standalone_mode=False, prog_name="etl")
    except ClickException as exc:  # bad options, unknown command: typer's usage errors
        message = exc.format_message()
        if message:  # empty when typer already printed the help
            typer.echo(f"error: {one_line(message)} (see etl --help)", err=True)
        sys.exit(exc.exit_code)
    except EtlError as exc:
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        if isinstance(exc, CommandInterruptedError):
            _ignore_ctrl_c()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except Exception as exc:  # a bug or an unforeseen driver error: still one line, no secrets
        logging.getLogger("columnar_etl").debug("unexpected error", exc_info=True)
        first = first_line(exc, default="")
        typer.echo(f"error: unexpected {type(exc).__name__}: {one_line(first)}", err=True)
        sys.exit(1)
    # No command exits 130 itself: this is typer's exit for a Ctrl-C outside a command's body.
    if code == EXIT_INTERRUPTED:
        typer.echo("interrupted", err=True)
        _ignore_ctrl_c()
    sys.exit(code if isinstance(code, int) else 0)
