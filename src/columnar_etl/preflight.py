"""What a run checks in the entity's target table before it writes anything.

The table must have the declared shape (:meth:`Target.shape_differences`): a missing column
or an undeclared NOT NULL one used to turn every row into a ``database_error`` reject of a
"completed" job. And rows the tool did not write (foreign rows: no ``etl_job_id``, or one of
no job in the ledger) are never taken for the migration's own: where one holds the legacy id
of a source record, the run refuses unless told to take it over (``--on-conflict update``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import polars as pl

from columnar_etl.config import DatabaseUrl
from columnar_etl.declare import Entity, SourceSpec
from columnar_etl.errors import (
    ConfigError,
    ForeignRowsError,
    KeylessChangedError,
    TargetError,
    TargetShapeError,
)
from columnar_etl.extract import KeyRange, Source, source_key_hash
from columnar_etl.ledger import NOT_WRITTEN_BY_A_JOB
from columnar_etl.target import Target

__all__ = [
    "FOREIGN_ROWS",
    "FOREIGN_ROWS_SHARED",
    "KEYLESS_LOADED_BY",
    "ForeignRows",
    "before_loading",
    "check_apart",
    "check_shape",
    "foreign_rows",
    "schema_failure",
    "source_ids",
]

log = logging.getLogger("columnar_etl")

#: Keys in a job's stored configuration: the foreign rows its table held when it started, and
#: how many of them had the legacy id of a source record.
FOREIGN_ROWS, FOREIGN_ROWS_SHARED = "foreign_rows", "foreign_rows_sharing_source_keys"
#: Key in a job's stored configuration: the earlier job that loaded this keyless table from
#: the very rows it holds now; the job then loads nothing and counts them skipped_existing.
KEYLESS_LOADED_BY = "keyless_rows_loaded_by_job"
#: Legacy ids a message shows; ``etl verify --json`` lists more.
SHOWN = 5


def check_apart(source: DatabaseUrl, target: DatabaseUrl, entity: Entity) -> None:
    """Refuse to load ``entity`` into the very table it reads."""
    if source == target and entity.target_table == entity.source.table:
        raise ConfigError(
            f"{entity.name} would write into its own source table {entity.source.table}: the "
            f"source and the target are the same database ({target}); nothing was written: "
            "give another database as the target"
        )


def check_shape(target: Target, entity: Entity) -> None:
    """Refuse, before anything is written, a table that is not as declared."""
    table = entity.target_table
    differences = target.shape_differences(table)
    if differences:
        raise TargetShapeError(
            f"target table {table} is not as declared: {'; '.join(differences)}; nothing was "
            f"written: change the table to match (or drop it for etl to create) and run again"
        )


def schema_failure(target: Target, entity: Entity, failed: TargetError) -> TargetError:
    """What to say of a schema step that ``failed``: a table not as declared fails it in the
    database's own words (an index on a column it lacks), so name what differs, when that
    is why."""
    try:
        check_shape(target, entity)
    except TargetShapeError as differs:
        return differs
    except TargetError:
        pass  # the comparison failed too: the schema step's error says more
    return failed


@dataclass(frozen=True)
class ForeignRows:
    """The rows of a target table the tool did not write."""

    table: str
    count: int
    shared: list[str] | None
    """Their legacy ids that are ids of source records, in id order (None: no source read)."""

    def examples(self) -> str:
        """A few of the shared legacy ids, for one line."""
        shared = self.shared or []
        more = f", ... ({len(shared) - SHOWN} more)" if len(shared) > SHOWN else ""
        return ", ".join(shared[:SHOWN]) + more


def source_ids(source: Source, spec: SourceSpec) -> pl.DataFrame:
    """The source table's ids as legacy ids (text, as rejects record them: see
    ``SourceSpec.record_id``), each once: only ids cross databases. None for a keyless table."""
    return source.record_ids(spec).drop_nulls().rename("legacy_id").unique().to_frame()


def foreign_rows(target: Target, entity: Entity, source: Source | None) -> ForeignRows:
    """Count ``entity``'s foreign rows; with ``source``, which share a legacy id with it.

    The ids are compared here, in Polars, not in SQL: nothing read from either database is
    pasted into a statement. The source is read only when there are foreign rows."""
    table = entity.target_table
    where = f"FROM {table} t WHERE {NOT_WRITTEN_BY_A_JOB}"
    count = int(target.scalar(f"SELECT COUNT(*) {where}"))
    if source is None:
        return ForeignRows(table, count, None)
    record = entity.record_key
    if not count or record not in entity.target_columns:  # nothing to match them by
        return ForeignRows(table, count, [])
    theirs = target.query(f"SELECT t.{record} AS legacy_id {where}")
    target.rollback()
    shared = theirs.select(pl.col("legacy_id").cast(pl.String)).join(
        source_ids(source, entity.source), on="legacy_id", how="semi"
    )
    in_order = shared.sort(pl.col("legacy_id").cast(pl.Int64, strict=False), "legacy_id")
    return ForeignRows(table, count, in_order["legacy_id"].to_list())


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def before_loading(
    target: Target, entity: Entity, source: Source, on_conflict: str
) -> dict[str, Any]:
    """Refuse to load ``entity`` into a table of the wrong shape, or one whose foreign rows
    hold source records' legacy ids unless ``on_conflict`` is ``update`` (they are then
    taken over); the facts a new job records."""
    check_shape(target, entity)
    found = foreign_rows(target, entity, source)
    shared = found.shared or []
    if shared and on_conflict != "update":
        raise ForeignRowsError(
            f"{found.table} holds {_rows(found.count)} the tool did not write (no etl_job_id, "
            f"or a job the ledger does not know); {len(shared):,} of them have the legacy_id "
            f"of a source record ({found.examples()}): run with --on-conflict update to take "
            "them over (rows of earlier jobs are then updated too), or remove them"
        )
    if found.count:
        log.warning(
            "%s holds %s the tool did not write; the %s with a source record's legacy_id are "
            "taken over where that record loads, the others are left as they are (etl verify "
            "reports those)",
            found.table,
            _rows(found.count),
            len(shared),
        )
    facts = {FOREIGN_ROWS: found.count, FOREIGN_ROWS_SHARED: len(shared)}
    if not entity.source.key_columns:
        facts[KEYLESS_LOADED_BY] = keyless_loaded_by(target, entity, source)
    return facts


def keyless_loaded_by(target: Target, entity: Entity, source: Source) -> int | None:
    """The job that loaded ``entity``'s keyless table from the rows the source holds now
    (the same hash of its rows), or None when no job that is not rolled back loaded it. A
    job that loaded other rows is refused: they cannot be told apart from the new ones."""
    loaded = target.query(
        "SELECT j.id AS job_id, b.source_key_hash AS hash FROM migration_jobs j "
        "JOIN migration_batches b ON b.migration_job_id = j.id "
        "WHERE j.entity = ? AND j.status = 'completed' AND j.deleted_at IS NULL "
        "AND j.loaded > 0 AND b.status = 'completed' ORDER BY j.id DESC LIMIT 1",
        (entity.name,),
    )
    target.rollback()
    if not loaded.height:
        return None
    job_id, then = loaded.row(0)
    rows = source.range_keys(entity.source, KeyRange(None, None))
    if source_key_hash(entity.source, rows) == then:
        return int(job_id)
    raise KeylessChangedError(
        f"{entity.name} has no key, and job {job_id} loaded it from rows that have changed "
        "since: they cannot be matched one by one, so loading again would duplicate them; "
        f"roll that job back (etl rollback --job {job_id}) and run again to load it anew"
    )
