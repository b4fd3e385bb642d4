"""Undoing one job: its target rows go, the job is marked rolled_back, its rejects stay.

Everything happens in one target transaction. Rolling back rows that rows of another entity
point at through a declared reference (orders at their customers) is refused, naming those
rows, unless forced, which unlinks them: they become orphans, as if the rows they point at had
never been loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from columnar_etl import ledger
from columnar_etl.config import first_line
from columnar_etl.declare import Entity
from columnar_etl.errors import EtlError, RollbackRefusedError, TargetError
from columnar_etl.migration import Migration, load_migration
from columnar_etl.target import Target

__all__ = ["RollbackResult", "rollback_job"]

#: Per job of the referencing entity: its rows whose link points at the job's rows.
_POINTING = (
    "SELECT r.etl_job_id AS job_id, COUNT(*) AS n FROM {child} r JOIN {parent} p "
    "ON p.{key} = r.{column} WHERE p.etl_job_id = ? GROUP BY r.etl_job_id ORDER BY r.etl_job_id"
)


@dataclass(frozen=True)
class RollbackResult:
    """What ``rollback_job`` changed."""

    job_id: int
    entity: str
    target_table: str
    deleted: int
    """Target rows of the job deleted."""
    unlinked: dict[str, int]
    """Per referencing entity, its rows whose link was cleared (only with force)."""
    rejects_kept: int
    """The job's rows in migration_errors, left for the record."""

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)


def _refusal(job_id: int, entity: Entity, child: str, blocking: dict[int, int]) -> Exception:
    total = sum(blocking.values())
    jobs = ", ".join(f"{child} job {job}: {n}" for job, n in blocking.items())
    return RollbackRefusedError(
        f"refusing to roll back job {job_id} ({entity.name}): {total} loaded {child} point at "
        f"its {entity.name} ({jobs}); roll those back first, or pass --force to unlink them "
        "(they become orphans)",
        blocking,
    )


def _unlink_dependents(target: Target, job_id: int, entity: Entity, migration: Migration,
                       force: bool) -> dict[str, int]:  # fmt: skip
    """Clear the links that point at the job's rows (refused unless ``force``)."""
    unlinked: dict[str, int] = {}
    for child, index in migration.referencing(entity.name):
        reference = child.references[index]
        parent = entity.target_table
        # Through the link it fills, or (sets=None) the key its column holds.
        key, column = (
            (entity.primary_key, reference.sets)
            if reference.sets is not None
            else (reference.key, reference.column)
        )
        sql = _POINTING.format(child=child.target_table, parent=parent, key=key, column=column)
        rows = target.query(sql, (job_id,)).to_dicts()
        blocking = {int(r["job_id"]): int(r["n"]) for r in rows}
        if blocking and not force:
            raise _refusal(job_id, entity, child.name, blocking)
        if blocking and reference.sets is not None:  # else they point at nothing now
            target.execute(
                f"UPDATE {child.target_table} SET {reference.sets} = NULL WHERE {reference.sets} "
                f"IN (SELECT {entity.primary_key} FROM {parent} WHERE etl_job_id = ?)",
                (job_id,),
            )
            unlinked[child.name] = unlinked.get(child.name, 0) + sum(blocking.values())
    return unlinked


#: Later live jobs of the same entity that counted rows as already present, or updated them
#: (updated rows keep the etl_job_id of the job that inserted them): some may be rows of the
#: job being rolled back, which they would count as there after they are gone.
_SKIPPED_LATER = (
    "SELECT j.id AS job_id, CAST(SUM(b.skipped_existing + b.updated) AS BIGINT) AS n "
    "FROM migration_jobs j JOIN migration_batches b ON b.migration_job_id = j.id "
    "WHERE j.entity = ? AND j.id > ? AND j.status <> 'rolled_back' AND j.deleted_at IS NULL "
    "AND b.status = 'completed' GROUP BY j.id "
    "HAVING SUM(b.skipped_existing + b.updated) > 0 ORDER BY j.id"
)


def _refuse_if_skipped_later(target: Target, job_id: int, entity: Entity) -> None:
    """Refuse when later jobs counted rows as already present (or updated them) and this job
    still has rows: after the rollback those jobs would count rows that are gone."""
    rows = target.query(_SKIPPED_LATER, (entity.name, job_id)).to_dicts()
    if not rows or not _count(target, f"{entity.target_table} WHERE etl_job_id = ?", job_id):
        return
    jobs = ", ".join(f"job {r['job_id']}: {r['n']}" for r in rows)
    raise RollbackRefusedError(
        f"refusing to roll back job {job_id} ({entity.name}): later jobs counted rows as "
        f"already present, or updated rows, that may be its own ({jobs}); they would count "
        "rows that are gone. "
        "Roll those back first, or pass --force (etl verify then fails rows_present until the "
        "entity is run again)"
    )


def _count(target: Target, where: str, job_id: int) -> int:
    return int(target.scalar(f"SELECT COUNT(*) FROM {where}", (job_id,)))


def rollback_job(
    target: Target, job_id: int, force: bool = False, migration: Migration | None = None
) -> RollbackResult:
    """Delete the job's rows (by etl_job_id) and mark it rolled_back, atomically; refused
    while a run of the job's entity holds the target."""
    migration = migration or load_migration()
    ledger.require_ledger(target, job_id)
    found = target.query("SELECT entity, status FROM migration_jobs WHERE id = ?", (job_id,))
    job = found.row(0, named=True)
    entity = migration.get(job["entity"])
    if job["status"] == "rolled_back":
        raise RollbackRefusedError(f"job {job_id} ({entity.name}) is already rolled back")
    # Not while a run of the entity writes its rows (the lock lasts until ``target`` closes).
    target.lock_run(entity.name)
    table = entity.target_table
    try:
        if not force:
            _refuse_if_skipped_later(target, job_id, entity)
        unlinked = _unlink_dependents(target, job_id, entity, migration, force)
        deleted = _count(target, f"{table} WHERE etl_job_id = ?", job_id)
        target.execute(f"DELETE FROM {table} WHERE etl_job_id = ?", (job_id,))
        target.execute(
            "UPDATE migration_jobs SET status = 'rolled_back', updated_at = CURRENT_TIMESTAMP "
            "WHERE id = ?",
            (job_id,),
        )
        kept = _count(target, "migration_errors WHERE migration_job_id = ?", job_id)
        target.commit()
    except EtlError:
        target.rollback()
        raise
    except Exception as exc:  # the driver's own error classes
        target.rollback()
        raise TargetError(f"cannot roll back job {job_id}: {first_line(exc)}") from None
    return RollbackResult(job_id, entity.name, table, deleted, unlinked, kept)
