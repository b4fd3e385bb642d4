"""Loading one batch into the target in ONE transaction: rows, rejects and the ledger row.

Unique keys are resolved here. Batches commit in id order (see pipeline), and within a batch
rows are sorted by legacy id, so "the lower legacy id wins" holds whatever order the batches
were extracted in: a later row colliding with a row of the same job is a ``duplicate`` reject
naming the winner; a row whose legacy id an earlier job loaded is ``skipped_existing`` (or
updates that row with ``on_conflict="update"``); a row whose other unique key (email, sku)
another record holds is a ``duplicate`` reject naming it, whichever job loaded it. A row
no job in the ledger wrote is never "already there": with ``on_conflict="update"`` it is
taken over (overwritten, made this job's, counted as loaded), else a ``duplicate`` reject.

The fast path (:func:`loading`): a job that found its table empty, with no foreign key
pointing at it and the fast path not turned off (``--no-fast-path``), records so, drops the
table's secondary indexes and pauses autovacuum on it until it ends, and, when the record key
(``legacy_id``, or the source's own key column) is the only unique key, also drops that key's
index and the primary key and COPYs rows straight into the table (JSON parsed by the server)
instead of staging and merging.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import polars as pl

from columnar_etl import declared_types
from columnar_etl.config import first_line
from columnar_etl.contracts import ERROR_MESSAGE, ERROR_TYPE, Split
from columnar_etl.declare import ROW_ID, Entity
from columnar_etl.errors import ConservationError, TargetError, TargetShapeError
from columnar_etl.extract import source_key_hash
from columnar_etl.ledger import (
    NOT_WRITTEN_BY_A_JOB,
    Batch,
    add_to_job_fact,
    complete_batch,
    job_configuration,
    record_job_facts,
)
from columnar_etl.preflight import KEYLESS_LOADED_BY
from columnar_etl.target import Fault, Target

__all__ = [
    "EMPTY_AT_START",
    "FAST_PATH",
    "FAST_PATH_DECLINED",
    "TABLE_FAULT_ROWS",
    "TAKEN_OVER",
    "LoadPlan",
    "commit_batch",
    "facts_at_start",
    "loading",
    "within_batch_duplicates",
]

log = logging.getLogger("columnar_etl")

_STAGE, _DROP = "etl_stage", "etl_stage_drop"


#: (ROW_ID, error_message) of rows a batch loses: none. ROW_ID is the row's position in the
#: batch's source frame, so a loser finds its own source row (and its id) even where the
#: source repeats its key.
_NO_ROWS = pl.DataFrame(schema={ROW_ID: pl.UInt32, ERROR_MESSAGE: pl.String})


def _source_order(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in the order of its source rows (ROW_ID), which the source read in key order:
    the first of rows sharing a unique key value is the one with the lower key, as the source
    orders keys (text by its collation), and among rows of a repeated key the first read."""
    positions = frame[ROW_ID]
    # Valid rows keep their source order: checking that costs a fraction of sorting again.
    if (positions.slice(1) > positions.head(-1)).all():
        return frame
    return frame.sort(ROW_ID)


def _duplicate_message(key: pl.Expr, value: pl.Expr, winner: pl.Expr, record: str) -> pl.Expr:
    """``duplicate email 'a@b.c' (kept legacy_id 17)``: the winner by its ``record`` key."""
    parts = [pl.lit("duplicate "), key, pl.lit(" '"), value.cast(pl.String)]
    kept = winner.cast(pl.String)
    return pl.concat_str(*parts, pl.lit(f"' (kept {record} "), kept, pl.lit(")"))


def within_batch_duplicates(
    valid: pl.DataFrame, keys: tuple[str, ...], record: str = "legacy_id"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the row with the lowest source key per unique key value (the first row of a
    repeated key); the others become (ROW_ID, message) naming the winner by its ``record``
    key. ``valid`` without ROW_ID is numbered here."""
    if ROW_ID not in valid.columns:
        valid = valid.with_row_index(ROW_ID)
    kept = _source_order(valid)
    losers = [_NO_ROWS]
    for key in keys:
        is_dup = kept[key].is_not_null() & ~kept[key].is_first_distinct()
        if not is_dup.any():  # the usual case: no message to build
            continue
        winner = pl.col(record).first().over(key).cast(pl.String)
        marked = kept.with_columns(
            _duplicate_message(pl.lit(key), pl.col(key), winner, record).alias(ERROR_MESSAGE),
            dup=is_dup,
        )
        losers.append(marked.filter("dup").select(ROW_ID, ERROR_MESSAGE))
        kept = marked.filter(~pl.col("dup")).drop("dup", ERROR_MESSAGE)
    return kept, pl.concat(losers)


def _collisions(target: Target, entity: Entity, job_id: int) -> pl.DataFrame:
    """Staged rows whose unique key already exists in the target: who holds it, from which job."""
    parts, record = [], entity.record_key
    for key in entity.unique_keys:
        found = target.query(
            f"SELECT s.{record} AS legacy_id, t.{record} AS holder, t.etl_job_id AS holder_job, "
            f"CASE WHEN {NOT_WRITTEN_BY_A_JOB} THEN 1 ELSE 0 END AS foreign_holder, "
            f"s.{key} AS value FROM {_STAGE} s JOIN {entity.target_table} t ON t.{key} = s.{key}"
        )
        # SQLite types an empty result as it likes: cast every column explicitly.
        parts.append(
            found.select(
                pl.col("legacy_id", "holder", "value").cast(pl.String),
                pl.col("holder_job").cast(pl.Int64),
                pl.col("foreign_holder").cast(pl.Boolean),
                pl.lit(key).alias("key"),
            )
        )
    hits = pl.concat(parts)
    same_job = (pl.col("holder_job") == job_id).fill_null(False)
    # Per staged row, its first collision in key order decides: the record key (the record
    # itself is there) before any other key.
    return hits.with_columns(same_job=same_job).unique(
        "legacy_id", keep="first", maintain_order=True
    )


def _written(target: Target, entity: Entity, columns: list[str], staged: str = "") -> list[str]:
    """How staged ``columns`` (of the stage aliased ``staged``) are written into the table:
    as they are, JSON parsed, or text cast into its exact declared type
    (Dialect.cast_on_load)."""
    schema, written = entity.target_schema(), []
    for column in columns:
        value = f"{staged}.{column}" if staged else column
        declared = entity.sql_types.get(column)
        if column in entity.json_columns:
            value = target.json(value)
        elif target.sql_dialect.cast_on_load(declared, schema[column][0]):
            value = f"CAST({value} AS {declared})"
        written.append(value)
    return written


def _cast_on_load(target: Target, entity: Entity) -> bool:
    """Whether some column travels as text the database casts (no straight COPY then)."""
    cast = target.sql_dialect.cast_on_load
    return any(cast(entity.sql_types.get(c), t) for c, (t, _) in entity.target_schema().items())


def _insert_staged(target: Target, entity: Entity, job_id: int) -> None:
    columns = entity.target_columns
    select = ", ".join(_written(target, entity, list(columns)))
    target.execute(
        f"INSERT INTO {entity.target_table} ({', '.join(columns)}, etl_job_id) "
        f"SELECT {select}, ? FROM {_STAGE}",
        (job_id,),
    )


def _update_staged(
    target: Target, entity: Entity, action: str = "update", job_id: int | None = None
) -> None:
    """Overwrite the target rows of the staged rows marked ``action``; with ``job_id`` they
    become that job's (taken over from no job the ledger knows)."""
    record = entity.record_key
    columns = [c for c in entity.target_columns if c != record]
    written = _written(target, entity, columns, "s")
    assignments = ", ".join(f"{c} = {value}" for c, value in zip(columns, written, strict=True))
    owner: tuple[int, ...] = ()
    if job_id is not None:
        assignments, owner = f"{assignments}, etl_job_id = ?", (job_id,)
    target.execute(
        f"UPDATE {entity.target_table} SET {assignments} FROM {_STAGE} s "
        f"WHERE {entity.target_table}.{record} = s.{record} "
        f"AND s.{record} IN (SELECT {record} FROM {_DROP} WHERE action = ?)",
        (*owner, action),
    )


def _record_rejects(target: Target, job_id: int, batch: Batch, rejects: pl.DataFrame) -> None:
    if rejects.is_empty():
        return
    rows = rejects.select(
        pl.lit(job_id, pl.Int64).alias("migration_job_id"),
        pl.lit(batch.id, pl.Int64).alias("batch_id"),
        "record_id",
        ERROR_TYPE,
        ERROR_MESSAGE,
        "source_data",
    )
    target.append("migration_errors", rows, json_columns=("source_data",))


class _Outcome(NamedTuple):
    """What loading a set of validated rows did, besides inserting the rest."""

    duplicates: pl.DataFrame  # (ROW_ID, error_message): lost to a row another batch loaded
    skipped: int
    updated: int
    taken_over: int = 0  # rows no job wrote, now this job's (loaded, not updated)


_EMPTY = _Outcome(_NO_ROWS, 0, 0)


def _append_rows(target: Target, entity: Entity, job_id: int, rows: pl.DataFrame) -> None:
    """The fast path: binary COPY straight into the table, JSON parsed by the server."""
    rows = rows.with_columns(etl_job_id=pl.lit(job_id, pl.Int64))
    target.append(entity.target_table, rows, json_columns=entity.json_columns)


def _load_rows(
    target: Target,
    entity: Entity,
    job_id: int,
    rows: pl.DataFrame,
    on_conflict: str,
    direct: bool = False,
) -> _Outcome:
    """Stage ``rows``, settle key collisions against the target, insert the rest; ``direct``
    (see :func:`plan_job`): nothing can collide, COPY them straight into the table."""
    decimals = target.sql_dialect.decimals
    data = declared_types.written(rows.drop(ROW_ID, strict=False), entity.sql_types, decimals)
    if direct and not _cast_on_load(target, entity):
        _append_rows(target, entity, job_id, data)
        return _EMPTY
    target.ingest(_STAGE, data)
    if direct:  # nothing can collide: only the casts the database makes on the way in
        _insert_staged(target, entity, job_id)
        return _EMPTY
    hits = _collisions(target, entity, job_id) if entity.unique_keys else None
    if hits is None or not hits.height:
        _insert_staged(target, entity, job_id)
        return _EMPTY
    # Skipped (or updated) only when the record itself is there: another record holding the
    # row's email or sku makes it a duplicate, whichever job loaded that record, as it is
    # when both are in one batch (before, the outcome depended on the batch size).
    # A row no job wrote is never "already there": taken over when told to update, else (it
    # came after the run's check, see preflight) the staged row is a duplicate reject.
    update = pl.lit(on_conflict == "update")
    action = (
        pl.when(pl.col("same_job") | (pl.col("key") != entity.record_key))
        .then(pl.lit("duplicate"))
        .when(pl.col("foreign_holder"))
        .then(pl.when(update).then(pl.lit("take_over")).otherwise(pl.lit("duplicate")))
        .when(update)
        .then(pl.lit("update"))
        .otherwise(pl.lit("skip"))
    )
    hits = hits.with_columns(action=action)
    # Typed as the stage's record key, which the statements below compare it with.
    record = entity.record_key
    dropped = hits.select(pl.col("legacy_id").cast(rows.schema[record]).alias(record), "action")
    target.ingest(_DROP, dropped)
    updated = int((hits["action"] == "update").sum())
    taken_over = int((hits["action"] == "take_over").sum())
    if updated:
        _update_staged(target, entity)
    if taken_over:
        _update_staged(target, entity, "take_over", job_id)
        add_to_job_fact(target, job_id, TAKEN_OVER, taken_over)
    target.execute(f"DELETE FROM {_STAGE} WHERE {record} IN (SELECT {record} FROM {_DROP})")
    _insert_staged(target, entity, job_id)
    duplicates = (
        hits.filter(pl.col("action") == "duplicate")
        # The record key is unique in a batch's rows; the hits have it as text.
        .join(rows.select(ROW_ID, legacy_id=pl.col(record).cast(pl.String)), on="legacy_id")
        .select(
            ROW_ID,
            _duplicate_message(pl.col("key"), pl.col("value"), pl.col("holder"), record).alias(
                ERROR_MESSAGE
            ),
        )
    )
    skipped = int((hits["action"] == "skip").sum())
    return _Outcome(duplicates, skipped, updated, taken_over)


#: The column PostgreSQL names where a COPY refused a value (a NUL in text, say).
_COPY_COLUMN = re.compile(r"CONTEXT:\s+COPY \S+, line \d+, column (\w+)")


def _refused(
    target: Target,
    entity: Entity,
    job_id: int,
    rows: pl.DataFrame,
    on_conflict: str,
    exc: Exception,
    direct: bool = False,
) -> pl.DataFrame:
    """The rows of ``rows`` (whose load just failed with ``exc``) that the database refuses.

    Bisects as pgloader does: each half is tried in a transaction that is always rolled back,
    so the batch still commits once. Only a refusal of rows bisects (see :func:`_rows_fault`);
    anything else re-raises.
    """
    if rows.height == 1:
        column = _COPY_COLUMN.search(str(exc))
        where = f" (column {column[1]})" if column else ""
        message = f"refused by the target database{where}: {first_line(exc)}"
        return rows.select(ROW_ID, pl.lit(message).alias(ERROR_MESSAGE))
    found = [_NO_ROWS]
    half = rows.height // 2
    for part in (rows.slice(0, half), rows.slice(half)):
        try:
            _load_rows(target, entity, job_id, part, on_conflict, direct)
        except Exception as failure:  # the database's refusal, in its driver's error class
            target.rollback()
            if not _rows_fault(target, failure):
                raise
            found.append(_refused(target, entity, job_id, part, on_conflict, failure, direct))
        else:
            target.rollback()
    return pl.concat(found)


def _rows_fault(target: Target, exc: Exception) -> bool:
    """Whether ``exc`` (its transaction rolled back) is a refusal of some rows, which bisecting
    finds: a lost connection, a full disk or a table of another shape is not, and is raised
    for the whole batch to be retried or the run stopped (pipeline.load_with_retries)."""
    return target.fault(exc) is Fault.ROW and target.ping()


def _load_or_bisect(
    target: Target,
    entity: Entity,
    job_id: int,
    rows: pl.DataFrame,
    on_conflict: str,
    direct: bool = False,
) -> tuple[_Outcome, pl.DataFrame]:
    """Load ``rows`` in the batch's transaction; rows the database refuses are left out."""
    try:
        return _load_rows(target, entity, job_id, rows, on_conflict, direct), _NO_ROWS
    except Exception as exc:
        target.rollback()
        if not _rows_fault(target, exc):
            raise
        refused = _refused(target, entity, job_id, rows, on_conflict, exc, direct)
        if refused.is_empty():
            raise  # the set fails but no row alone does: not a row problem, retry the batch
    rest = rows.join(refused, on=ROW_ID, how="anti")
    outcome = (
        _load_rows(target, entity, job_id, rest, on_conflict, direct) if rest.height else _EMPTY
    )
    return outcome, refused


#: PostgreSQL text and jsonb cannot hold NUL: in rejects it is stored as the four characters \x00.
_NUL, _NUL_TEXT = "\x00", "\\x00"


def _without_nul(column: pl.Expr) -> pl.Expr:
    return column.str.replace_all(_NUL, _NUL_TEXT, literal=True)


def _with_source_json(frame: pl.DataFrame, entity: Entity) -> pl.DataFrame:
    """``frame`` keyed by ``record_id``, with its untouched source row as JSON text."""
    columns = frame.select(entity.source.columns).with_columns(_without_nul(pl.col(pl.String)))
    return frame.select(
        entity.source.record_id().alias("record_id"),
        columns.select(pl.struct(pl.all()).struct.json_encode().alias("source_data")).to_series(),
        *(c for c in (ERROR_TYPE, ERROR_MESSAGE, ROW_ID) if c in frame.columns),
    )


def _rejects(
    source: pl.DataFrame, split: Split, entity: Entity, by_loader: dict[str, pl.DataFrame]
) -> pl.DataFrame:
    """Rule rejects plus the loader's (duplicates, database refusals), with their source rows."""
    columns = ["record_id", ERROR_TYPE, ERROR_MESSAGE, "source_data"]
    by_loader = {kind: rows for kind, rows in by_loader.items() if rows.height}
    if not by_loader and not split.rejects.height:  # most batches: nothing to encode
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    parts = [_with_source_json(split.rejects, entity).select(columns)]
    if not by_loader:
        return parts[0].with_columns(_without_nul(pl.col(ERROR_MESSAGE)))
    # Only the loader's rejects need their source row: encode those, not the whole batch. By
    # position, not id: where the source repeats an id, each loser has its own row.
    positions = pl.concat([rows[ROW_ID] for rows in by_loader.values()]).implode()
    wanted = source.with_row_index(ROW_ID).filter(pl.col(ROW_ID).is_in(positions))
    source_json = _with_source_json(wanted, entity).select(ROW_ID, "record_id", "source_data")
    for error_type, rows in by_loader.items():
        found = rows.join(source_json, on=ROW_ID)
        parts.append(
            found.select(
                "record_id",
                pl.lit(error_type).alias(ERROR_TYPE),
                ERROR_MESSAGE,
                "source_data",
            )
        )
    # Messages can quote values (duplicate keys, the database's own words).
    return pl.concat(parts).with_columns(_without_nul(pl.col(ERROR_MESSAGE)))


def commit_batch(
    target: Target,
    entity: Entity,
    job_id: int,
    batch: Batch,
    source: pl.DataFrame,
    split: Split,
    *,
    on_conflict: str = "skip",
    retries: int = 0,
    direct: bool = False,
) -> dict[str, int]:
    """Load one batch and mark it completed, atomically; returns its counts.

    ``direct`` is the job's :class:`LoadPlan` fast path: rows go straight into the table.
    """
    valid = split.valid.with_columns(split.valid_rows.alias(ROW_ID))
    kept, duplicates = within_batch_duplicates(valid, entity.unique_keys, entity.record_key)
    # A value its declared SQL type cannot hold is refused here: the database would round it.
    kept_as_text = target.sql_dialect.affinities
    kept, misfits = declared_types.misfits(kept, entity.sql_types, kept_as_text)
    outcome, refused = _EMPTY, _NO_ROWS
    if kept.height and _keyless_loaded_before(target, entity, job_id):
        outcome = _Outcome(_NO_ROWS, kept.height, 0)  # the very rows an earlier job loaded
    elif kept.height:
        outcome, refused = _load_or_bisect(target, entity, job_id, kept, on_conflict, direct)
        _stop_if_the_table_refuses(entity, batch, kept, refused)
    refused = pl.concat([misfits, refused])
    duplicates = pl.concat([duplicates, outcome.duplicates])
    rejects = _rejects(source, split, entity, {"duplicate": duplicates, "database_error": refused})
    _record_rejects(target, job_id, batch, rejects)
    counts = {
        "extracted": source.height,
        # Updated rows count as loaded: the target holds this batch's version of them.
        "loaded": split.valid.height - duplicates.height - refused.height - outcome.skipped,
        "rejected": rejects.height,
        "filtered": split.filtered,
        "skipped_existing": outcome.skipped,
        "updated": outcome.updated,
    }
    _check_conserved(batch, counts)
    complete_batch(target, batch, counts, retries, source_key_hash(entity.source, source))
    target.commit()
    return counts


def _keyless_loaded_before(target: Target, entity: Entity, job_id: int) -> bool:
    """Whether ``entity`` is keyless and an earlier job loaded the rows its source holds now
    (preflight.keyless_loaded_by, recorded when the job started)."""
    if entity.source.key_columns:
        return False
    return job_configuration(target, job_id).get(KEYLESS_LOADED_BY) is not None


#: A batch of at least this many rows that the database refuses whole, every row with the same
#: error, is refused by the table (a constraint, trigger or column no row can satisfy), not by
#: its rows: the job stops rather than reject them all. A few rows can all fail by chance.
TABLE_FAULT_ROWS = 10


def _stop_if_the_table_refuses(
    entity: Entity, batch: Batch, rows: pl.DataFrame, refused: pl.DataFrame
) -> None:
    """Raise TargetShapeError (not retried, nothing recorded) when ``refused`` is all of
    ``rows`` with one message."""
    if rows.height < TABLE_FAULT_ROWS or refused.height < rows.height:
        return
    messages = refused[ERROR_MESSAGE].unique()
    if messages.len() == 1:
        raise TargetShapeError(
            f"{entity.target_table} refused all {rows.height} rows of batch "
            f"{batch.batch_number} with the same error, so the table is at fault, not the rows "
            f"({messages[0]}); nothing of the batch was written: fix the table and run again"
        )


def _check_conserved(batch: Batch, counts: dict[str, int]) -> None:
    """Refuse to commit a batch whose rows do not each land in exactly one place: a bug, but
    one that must fail the batch (rolled back, retried, then failed), not pass unnoticed."""
    placed = sum(counts[k] for k in ("loaded", "rejected", "filtered", "skipped_existing"))
    if placed != counts["extracted"]:
        raise ConservationError(
            f"batch {batch.batch_number}: {counts['extracted']} rows extracted but {placed} "
            f"placed ({counts}); nothing of it was committed"
        )


# -- the fast path on a fresh table -------------------------------------------------------------

#: Keys in a job's stored configuration: the target table held no row when the job started;
#: whether the job takes the fast path, and why not; rows no job wrote that it took over.
EMPTY_AT_START = "target_table_empty_at_start"
FAST_PATH, FAST_PATH_DECLINED = "fast_path_taken", "fast_path_declined"
TAKEN_OVER = "foreign_rows_taken_over"


class LoadPlan(NamedTuple):
    """How a job loads its batches, from facts fixed when the job started."""

    direct: bool
    """COPY straight into the table, no staging and no collision check: the table was empty
    when the job started and its record key is its only unique key, so batches (disjoint id
    ranges, deduplicated within) cannot collide."""
    deferred: tuple[str, ...]
    """Indexes dropped for the job and rebuilt at its end: the secondary ones, and on the
    direct path the record key's unique index too (maintaining it row by row doubled the time
    of a 2M-row COPY; building it at the end is the guard, as it fails on a duplicate) and,
    where the DDL restores it (PostgreSQL), the primary key."""
    autovacuum_paused: bool = False
    """Autovacuum is off on the table until the job ends (PostgreSQL)."""


def facts_at_start(target: Target, entity: Entity, fast_path: bool = True) -> dict[str, Any]:
    """What a new job records in its configuration for :func:`loading` (and a resume) to use:
    whether the table was empty, and whether the job takes the fast path or why not
    (``fast_path``: the run allows it)."""
    empty = target.is_empty(entity.target_table)
    declined = _declined(target, entity, fast_path) or (None if empty else "table not empty")
    return {EMPTY_AT_START: empty, FAST_PATH: declined is None, FAST_PATH_DECLINED: declined}


def _declined(target: Target, entity: Entity, fast_path: bool) -> str | None:
    """Why the fast path must step aside whatever the table holds, or None."""
    if not fast_path:
        return "turned off (--no-fast-path)"
    # Their foreign keys hang on the primary key and unique indexes the fast path drops.
    dependents = target.dependents(entity.target_table)
    if dependents:
        return f"foreign keys point at {entity.target_table} from {', '.join(dependents)}"
    return None


def _plan(
    target: Target, entity: Entity, job_id: int, pending: bool, fast_path: bool = True
) -> LoadPlan:
    table = entity.target_table
    facts = job_configuration(target, job_id)
    # Jobs of an older version recorded only whether the table was empty.
    if not pending or not facts.get(FAST_PATH, facts.get(EMPTY_AT_START, False)):
        return LoadPlan(False, ())
    # A resumed job's table may have gained other rows since (a --fresh run in between, rows
    # no job wrote, NULL etl_job_id included), or dependents, or the run turned the fast path
    # off: then only the merge path.
    others = target.scalar(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} "
        "WHERE etl_job_id IS NULL OR etl_job_id <> ? LIMIT 1) AS one",
        (job_id,),
    )
    declined = _declined(target, entity, fast_path) or ("other rows in table" if others else None)
    if declined:
        log.info("%s: job %s leaves the fast path: %s", table, job_id, declined)
        record_job_facts(target, job_id, {FAST_PATH: False, FAST_PATH_DECLINED: declined})
        target.commit()
        return LoadPlan(False, ())
    # Only indexes our DDL declares: apply_schema is how they come back, even after a kill,
    # and before anything else can write to the table.
    direct = entity.unique_keys in ((entity.record_key,), ())
    # Not while another run's schema step restores: it could have looked for our lock before
    # we took it, and rebuild what we drop. The commit first lets go of the table we read.
    target.commit()
    target.schema_turn()
    target.hold_deferred(table)  # other runs' schema steps leave what we defer to us
    # Not an index over free text: with it present, a value too long for the index fails its
    # row, which is then a database_error reject; built at the end, it failed the whole job.
    # A block-range one goes too: kept, it cost the COPY 0.8 s of server CPU on 2M rows, built
    # at the end 0.4 s.
    keep = target.free_text_indexes(table)
    deferred = [name for name in target.schema_indexes(table, unique=direct) if name not in keep]
    for name in deferred:
        target.execute(f"DROP INDEX IF EXISTS {name}")
    # The primary key too (an id sequence's btree grown row by row cost a quarter of the
    # COPY's server time): nothing reads or writes the table by id until the job ends.
    primary = target.schema_primary_key(table) if direct else None
    if primary:
        target.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {primary}")
        deferred.append(primary)
    # Autovacuum scanned the growing table, then held up the index builds for a second.
    paused = target.pause_autovacuum(table)
    target.commit()
    return LoadPlan(direct, tuple(deferred), paused)


def _restore(target: Target, table: str, plan: LoadPlan, connections: int = 1) -> None:
    if not plan.deferred and not plan.autovacuum_paused:
        return
    target.revive()  # the last batch may have failed on a connection the server lost
    log.info("rebuilding %s", ", ".join(plan.deferred))
    started = time.perf_counter()
    target.build_indexes(table, plan.deferred, connections)
    target.apply_schema(tables=(table,))  # CREATE INDEX IF NOT EXISTS: the ones deferred
    target.release_deferred(table)
    log.info("rebuilt the indexes in %.1f s", time.perf_counter() - started)


@contextlib.contextmanager
def loading(
    target: Target,
    entity: Entity,
    job_id: int,
    *,
    pending: bool,
    fast_path: bool = True,
    connections: int = 1,
) -> Iterator[LoadPlan]:
    """The job's :class:`LoadPlan` for its ``pending`` batches (``fast_path``: the run allows
    it); deferred indexes are rebuilt on the way out, up to ``connections`` at once. Should
    that fail, or the process die, the next run's ``apply_schema`` rebuilds them before
    anything else happens, and a job is never closed without them."""
    plan = _plan(target, entity, job_id, pending, fast_path)
    if plan.deferred:
        log.info("%s: loading without %s until the job ends", entity.target_table, plan.deferred)
    try:
        yield plan
    except BaseException:
        with contextlib.suppress(Exception):
            _restore(target, entity.target_table, plan, connections)
        raise
    try:
        _restore(target, entity.target_table, plan, connections)
    except TargetError as exc:  # the job stays open: its indexes come back before it closes
        raise TargetError(
            f"{entity.target_table}: the committed batches are kept but the indexes deferred "
            f"for the job could not be rebuilt ({exc}); run again to resume"
        ) from None
